"""Pattern 1, approval gates: risky tools wait for a human; the answer may edit the arguments.

python examples/approval_gate.py --store /tmp/hitl.db
"""

from __future__ import annotations

import asyncio

from _support import ConsoleNotifier, backend, load_preset, options, reviewer, show

from hitl_tui.models import DecisionIn
from hitl_tui.sdk import Gate


async def deploy(env: str, version: str) -> str:
    return f"deployed {version} to {env}"


async def send_customer_email(to: str, subject: str) -> str:
    return f"emailed {to}: {subject}"


async def human(rev, req) -> None:  # the scripted reviewer's judgement
    if req.tool == "deploy":  # approve, but pin the version that passed QA
        await rev.decide(req.id, DecisionIn(decision="approve", edited_args={**req.args, "version": "1.4.2"}))
    else:
        await rev.decide(req.id, DecisionIn(decision="deny", reason="the subject line has a typo"))


async def main() -> None:
    opts = options(__doc__)
    await load_preset(opts.store)  # deploy and send_customer_email need approval
    gate = Gate(
        backend(opts.store, "deploy-bot"),
        "deploy-bot",
        notifiers=[ConsoleNotifier()],
        command_prefix=f"hitl --store {opts.store}",
    )
    async with reviewer(opts.store, "alice", on_request=human, manual=opts.manual):
        show("read_logs", await gate.run("read_logs", {"path": "/var/log/app"}, lambda path: f"read {path}"))
        show("deploy", await gate.run("deploy", {"env": "prod", "version": "1.4.3-rc1"}, deploy, timeout=600))
        refusal = await gate.run(
            "send_customer_email", {"to": "ceo@example.com", "subject": "Wellcome"}, send_customer_email, timeout=600
        )
        show("send_customer_email", refusal.to_dict())
    await gate.backend.close()


if __name__ == "__main__":
    asyncio.run(main())
