"""An OpenAI Agents SDK agent whose risky tool calls wait for a hitl reviewer.

Run it (offline: a scripted model plays the LLM), then decide in another terminal:

    python examples/openai_agents_example.py --store /tmp/hitl.db
    hitl --store /tmp/hitl.db ls
    hitl --store /tmp/hitl.db approve 1            # or: deny 1 --reason "not now"

Without ``--store`` (or ``HITL_STORE``) it uses a fresh temporary store, never your configured one;
the `hitl` commands to decide are printed. In a store of yours it adds the two tools only if the
store does not configure them, and leaves your settings as they are.

With ``--live`` it uses a real OpenAI model instead (needs OPENAI_API_KEY).
Requires: pip install openai-agents  (tested with 0.24.0)
"""

from __future__ import annotations

import argparse
import asyncio

from _support import example_store, set_up_policy  # examples/_support.py: a throwaway store by default
from agents import Agent, function_tool, set_tracing_disabled
from agents.items import ToolCallOutputItem
from agents.testing import ScriptedModel, assistant_message, function_call

from hitl_tui.integrations.openai_agents import HitlApprovals
from hitl_tui.models import Capability, Risk, Stage
from hitl_tui.sdk import Gate


@function_tool
def service_status(service: str) -> str:
    """Report a service's health."""
    return f"{service}: healthy, 3 replicas"


@function_tool
def deploy(service: str, version: str, env: str) -> str:
    """Deploy a version of a service to an environment."""
    return f"{service} {version} is live in {env}"


def scripted_model() -> ScriptedModel:
    return ScriptedModel(
        [
            [function_call("service_status", {"service": "api"}, call_id="call_status")],
            [function_call("deploy", {"service": "api", "version": "1.4.0", "env": "prod"}, call_id="call_deploy")],
            [assistant_message("api is healthy; the deploy tool's result above says whether it ran.")],
        ]
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="hitl store (default: HITL_STORE, else a fresh temporary one)")
    parser.add_argument("--live", action="store_true", help="use a real OpenAI model (needs OPENAI_API_KEY)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for a reviewer")
    args = parser.parse_args()
    if not args.live:
        set_tracing_disabled(True)

    store = example_store(args.store)
    # The policy: status checks run on their own, deploys need a human.
    policy = [
        Capability(tool="service_status", stage=Stage.autonomous, risk=Risk.low),
        Capability(tool="deploy", stage=Stage.approval, irreversible=True, risk=Risk.high),
    ]
    await set_up_policy(store, policy, "openai_agents_example")
    gate = Gate.connect(agent="ops-bot", store=store)
    async with gate:
        approvals = HitlApprovals(gate, timeout=args.timeout)
        agent = Agent(
            name="ops",
            instructions="Check the service, then deploy api 1.4.0 to prod.",
            tools=[service_status, deploy],
            model=None if args.live else scripted_model(),
        )
        approvals.gate_tools(agent)
        print(f"deploy needs approval: run `{gate.command_prefix} ls` and approve or deny it", flush=True)
        result = await approvals.run(agent, "Ship api 1.4.0 to prod.")
    for item in result.new_items:  # what each tool call returned, or why it did not run
        if isinstance(item, ToolCallOutputItem):
            print(f"tool result: {item.output}")
    print("final:", result.final_output)


if __name__ == "__main__":
    asyncio.run(main())
