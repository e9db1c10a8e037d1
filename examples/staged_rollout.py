"""Pattern 5, staged rollout: capabilities go disabled -> approval -> autonomous as trust grows,
and back down when something goes wrong; every change records who and why.

    python examples/staged_rollout.py --store /tmp/hitl.db
    hitl --store /tmp/hitl.db stages history delete_branch
"""

from __future__ import annotations

import asyncio

from _support import backend, load_preset, options, reviewer

from hitl_tui.errors import Conflict
from hitl_tui.models import DecisionIn, Stage
from hitl_tui.sdk import Gate


async def approve(rev, req) -> None:
    await rev.decide(req.id, DecisionIn(decision="approve"))


async def main() -> None:
    opts = options(__doc__)
    await load_preset(opts.store, "rollout")  # the seed's CAPABILITY_STAGES table
    gate = Gate(backend(opts.store, "lead"), "dev-bot", command_prefix=f"hitl --store {opts.store}")
    admin = gate.backend  # one process here; in production the lead runs `hitl promote` or the console
    delete_branch = lambda name: f"deleted {name}"  # noqa: E731

    async with reviewer(opts.store, "erik", on_request=approve, manual=opts.manual):
        print("disabled: ", await gate.run("delete_branch", {"name": "old"}, delete_branch))
        await admin.set_stage("delete_branch", Stage.approval, reason="two weeks without incident")
        print("approval: ", await gate.run("delete_branch", {"name": "old"}, delete_branch, timeout=600))
        await admin.set_stage("delete_branch", Stage.autonomous, reason="100 approvals, no denials")
        print("autonomous:", await gate.run("delete_branch", {"name": "stale"}, delete_branch))
        await admin.set_stage("delete_branch", Stage.approval, reason="deleted a release branch by mistake")
    try:
        await admin.set_stage("deploy", Stage.autonomous, reason="let it ship")
    except Conflict as refused:
        print("refused:", refused.message)
    for h in (await admin.get_capability("delete_branch")).history:
        print(f"  {h.actor}: {h.from_stage} -> {h.to_stage} ({h.reason})")
    await gate.backend.close()


if __name__ == "__main__":
    asyncio.run(main())
