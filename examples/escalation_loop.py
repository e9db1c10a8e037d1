"""Pattern 3, escalation flows: when the agent says it is stuck, a human replies with guidance
and the agent runs again with it (or the human takes over).

    python examples/escalation_loop.py --store /tmp/hitl.db
"""

from __future__ import annotations

import asyncio

from _support import ConsoleNotifier, backend, options, reviewer

from hitl_tui.sdk import EscalationOutcome, Gate


def scripted_agent(task: str, guidance: str | None = None) -> str:
    """Stands in for Runner.run(agent, message): stuck without guidance, done with it."""
    if guidance is None:
        return f"I don't have enough context to {task}: which region is production?"
    return f"Done: {task} in {guidance.split()[-1].rstrip('.')}"


async def answer(rev, esc) -> None:  # the scripted human replies once
    await rev.post_message(esc.id, "Production is eu-west-1.")


async def main() -> None:
    opts = options(__doc__)
    gate = Gate(
        backend(opts.store, "ops-bot"),
        "ops-bot",
        notifiers=[ConsoleNotifier()],
        command_prefix=f"hitl --store {opts.store}",
    )
    task = "rotate the TLS certificates"
    output = scripted_agent(task)
    print("agent:", output)
    async with reviewer(opts.store, "carl", on_escalation=answer, manual=opts.manual):
        if gate.needs_escalation(output):
            help_ = await gate.escalate(output, context=f"task: {task}", timeout=600)
            if help_.outcome is EscalationOutcome.guidance:
                print("human:", help_.reply)
                output = scripted_agent(task, help_.reply)
                await gate.follow_up(help_.escalation_id, output, wait=False)
                await gate.resolve(help_.escalation_id, "finished with the guidance")
            else:
                print(f"no guidance ({help_.outcome.value}): {help_.reason}")
    print("agent:", output)
    await gate.backend.close()


if __name__ == "__main__":
    asyncio.run(main())
