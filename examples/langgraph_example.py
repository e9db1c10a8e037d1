"""A LangChain agent with HumanInTheLoopMiddleware whose pauses are answered by hitl reviewers.

Run it (offline: a scripted chat model plays the LLM), then decide in another terminal:

    python examples/langgraph_example.py --store /tmp/hitl.db
    hitl --store /tmp/hitl.db ls
    hitl --store /tmp/hitl.db approve 1 --args '{"to": "team@example.com", "subject": "Q3", "body": "draft"}'
    hitl --store /tmp/hitl.db deny 2 --reason "keep the file"

Requires: pip install langchain langgraph  (tested with langchain 1.5.2, langgraph 1.2.24)
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from hitl_tui.integrations.langchain import InterruptResolver
from hitl_tui.sdk import Gate


class ScriptedChatModel(GenericFakeChatModel):
    """langchain_core's fake chat model, accepting tools (it answers from its script regardless)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


@tool
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email."""
    return f"email '{subject}' sent to {to}"


@tool
def delete_file(path: str) -> str:
    """Delete a file."""
    return f"{path} deleted"


def scripted_model() -> ScriptedChatModel:
    calls = [
        {"name": "send_email", "args": {"to": "all@example.com", "subject": "Q3", "body": "draft"}, "id": "c1"},
        {"name": "delete_file", "args": {"path": "reports/q3-draft.pdf"}, "id": "c2"},
    ]
    return ScriptedChatModel(messages=iter([AIMessage(content="", tool_calls=calls), AIMessage(content="Done.")]))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="hitl store (default: HITL_STORE / the configured one)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for a reviewer")
    args = parser.parse_args()

    agent = create_agent(
        scripted_model(),
        tools=[send_email, delete_file],
        middleware=[
            HumanInTheLoopMiddleware(
                interrupt_on={"send_email": True, "delete_file": {"allowed_decisions": ["approve", "reject"]}}
            )
        ],
        checkpointer=InMemorySaver(),
    )
    async with Gate.connect(agent="mail-assistant", store=args.store) as gate:
        resolver = InterruptResolver(gate, timeout=args.timeout)
        print(f"the agent pauses for review: run `{gate.command_prefix} ls` and decide", flush=True)
        final = await resolver.run(
            agent,
            {"messages": [{"role": "user", "content": "Send the Q3 draft to everyone, then delete it."}]},
            {"configurable": {"thread_id": "example-1"}},
        )
    for message in final["messages"]:
        if isinstance(message, ToolMessage):
            print(f"tool {message.name}: {message.content}")
    print("final:", final["messages"][-1].content)


if __name__ == "__main__":
    asyncio.run(main())
