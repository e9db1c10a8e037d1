"""Pattern 2, confidence thresholds: the agent rates each planned action; >= 90 runs on its own,
>= 60 waits for approval, below 60 goes to a human who takes over.

    python examples/confidence_plan.py --store /tmp/hitl.db
"""

from __future__ import annotations

import asyncio

from _support import ConsoleNotifier, backend, load_preset, options, reviewer

from hitl_tui.models import DecisionIn
from hitl_tui.sdk import Gate

# What a planning model answered to "Format: ACTION | CONFIDENCE | REASON" (no LLM needed here).
PLAN = """\
ACTION | CONFIDENCE | REASON
format_code {"path": "src/"} | 98 | pure formatting
create_github_issue {"title": "Login test is flaky"} | 93 | seen 5 failures this week
create_github_issue {"title": "Rewrite auth module"} | 72 | might duplicate an epic
create_github_issue {"title": "Drop the users table?"} | 35 | not sure this is what was asked
"""

TOOLS = {
    "format_code": lambda path: f"formatted {path}",
    "create_github_issue": lambda title: f"opened issue {title!r}",
}


async def approve(rev, req) -> None:
    await rev.decide(req.id, DecisionIn(decision="approve", reason="looks right"))


async def main() -> None:
    opts = options(__doc__)
    await load_preset(opts.store)  # create_github_issue is confidence-routed in the seed preset
    gate = Gate(
        backend(opts.store, "planner"),
        "planner",
        notifiers=[ConsoleNotifier()],
        command_prefix=f"hitl --store {opts.store}",
    )
    async with reviewer(opts.store, "bea", on_request=approve, manual=opts.manual):
        report = await gate.plan(PLAN, TOOLS, timeout=600)
    for step in report.steps:
        outcome = step.result if step.ran else step.refusal.reason
        print(f"{step.action.confidence:>3}  {step.route.value:<18} {step.status:<10} {outcome}")
    for problem in report.problems:
        print(f"line {problem.line} skipped: {problem.why}")
    await gate.backend.close()


if __name__ == "__main__":
    asyncio.run(main())
