"""LangChain agents with HumanInTheLoopMiddleware and plain LangGraph interrupts, offline: a fake chat
model, an in-memory checkpointer, a reviewer deciding in the store, the graph resumed to the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypedDict

import pytest

pytest.importorskip("langchain")

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from hitl_tui.backend.local import LocalBackend
from hitl_tui.integrations.langchain import InterruptNotResolved, InterruptResolver, policy_interrupt_on
from hitl_tui.models import Capability, DecisionIn, MessageRole, Stage
from hitl_tui.sdk import Gate, SyncGate
from hitl_tui.store.sqlite import SQLiteStore


class ToolCallingFake(GenericFakeChatModel):
    """langchain_core's scripted chat model; agents bind tools to it, which changes nothing."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


RAN: list[tuple[str, dict[str, Any]]] = []


@tool
def send_email(to: str, body: str) -> str:
    """Send an email."""
    RAN.append(("send_email", {"to": to, "body": body}))
    return f"sent to {to}"


@tool
def delete_file(path: str) -> str:
    """Delete a file."""
    RAN.append(("delete_file", {"path": path}))
    return f"deleted {path}"


@tool
def lookup(service: str) -> str:
    """Look up a service."""
    RAN.append(("lookup", {"service": service}))
    return f"{service} ok"


@pytest.fixture(autouse=True)
def _clear_ran() -> None:
    RAN.clear()


@pytest.fixture
async def backends(tmp_path: Path) -> AsyncIterator[tuple[LocalBackend, LocalBackend]]:
    path = tmp_path / "hitl.db"
    agent_side = LocalBackend(SQLiteStore(path), actor="researcher")
    reviewer = LocalBackend(SQLiteStore(path), actor="alice")
    yield agent_side, reviewer
    await agent_side.close()
    await reviewer.close()


def two_calls() -> ToolCallingFake:
    return ToolCallingFake(
        messages=iter(
            [
                AIMessage(
                    content="",
                    tool_calls=[
                        {"name": "send_email", "args": {"to": "all@corp.com", "body": "hi"}, "id": "call_1"},
                        {"name": "delete_file", "args": {"path": "/srv/report.pdf"}, "id": "call_2"},
                    ],
                ),
                AIMessage(content="finished"),
            ]
        )
    )


async def review(reviewer: LocalBackend, decisions: dict[str, DecisionIn]) -> list[int]:
    """As a reviewer: decide each request as it arrives (by tool name), from the change feed."""
    done: list[int] = []
    async with asyncio.timeout(30):
        feed = reviewer.subscribe(after_seq=0)
        async for ev in feed:
            if ev.kind != "request.created":
                continue
            rid = int(ev.subject.split(":")[1])
            req = await reviewer.get_request(rid)
            await reviewer.decide(rid, decisions[req.tool])
            done.append(rid)
            if len(done) == len(decisions):
                await feed.aclose()
                return done
    raise AssertionError("not every request arrived")


def tool_messages(state: dict[str, Any]) -> dict[str, str]:
    return {m.tool_call_id: str(m.content) for m in state["messages"] if isinstance(m, ToolMessage)}


@pytest.mark.parametrize("mode", ["batched", "per_call"])
async def test_agent_pauses_reviewers_decide_and_it_resumes(
    backends: tuple[LocalBackend, LocalBackend], mode: str
) -> None:
    agent_side, reviewer = backends
    hitl = HumanInTheLoopMiddleware(
        interrupt_on={"send_email": True, "delete_file": {"allowed_decisions": ["approve", "reject"]}},
        interrupt_mode=mode,  # type: ignore[arg-type]
    )
    agent = create_agent(two_calls(), tools=[send_email, delete_file], middleware=[hitl], checkpointer=InMemorySaver())
    resolver = InterruptResolver(Gate(agent_side, "researcher"))
    decisions = {
        "send_email": DecisionIn(decision="approve", edited_args={"to": "team@corp.com", "body": "hi"}),
        "delete_file": DecisionIn(decision="deny", reason="keep the report"),
    }
    reviewing = asyncio.create_task(review(reviewer, decisions))
    config = {"configurable": {"thread_id": f"t-{mode}"}}
    final = await resolver.run(
        agent, {"messages": [{"role": "user", "content": "mail everyone, drop the report"}]}, config
    )
    await reviewing

    assert final["messages"][-1].content == "finished"
    assert RAN == [("send_email", {"to": "team@corp.com", "body": "hi"})]
    outputs = tool_messages(final)
    assert "sent to team@corp.com" in outputs["call_1"]
    assert "keep the report" in outputs["call_2"]
    assert not (await agent.aget_state(config)).interrupts
    requests = (await reviewer.list_requests(None)).items
    assert {(r.tool, r.agent) for r in requests} == {("send_email", "researcher"), ("delete_file", "researcher")}


async def test_edit_on_a_tool_that_refuses_edits_is_a_rejection(backends: tuple[LocalBackend, LocalBackend]) -> None:
    agent_side, reviewer = backends
    resolver = InterruptResolver(Gate(agent_side, "researcher"))
    reviewing = asyncio.create_task(
        review(reviewer, {"delete_file": DecisionIn(decision="approve", edited_args={"path": "/tmp/x"})})
    )
    decision = await resolver.decide_action("delete_file", {"path": "/srv/a"}, ["approve", "reject"], key="k1")
    await reviewing
    assert decision["type"] == "reject" and "/tmp/x" in decision["message"]
    assert RAN == []


async def test_policy_decides_which_calls_pause(tmp_path: Path, backends: tuple[LocalBackend, LocalBackend]) -> None:
    agent_side, reviewer = backends
    await reviewer.put_capability(Capability(tool="lookup", stage=Stage.autonomous))
    (tmp_path / "empty.toml").write_text("")  # not the user's config (a missing file named is an error)
    sync_gate = SyncGate.connect("researcher", store=tmp_path / "hitl.db", config=tmp_path / "empty.toml")
    try:
        model = ToolCallingFake(
            messages=iter(
                [
                    AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"service": "db"}, "id": "c1"}]),
                    AIMessage(content="db is fine"),
                ]
            )
        )
        hitl = HumanInTheLoopMiddleware(interrupt_on=policy_interrupt_on(sync_gate, ["lookup", "delete_file"]))
        agent = create_agent(model, tools=[lookup, delete_file], middleware=[hitl], checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "p1"}}
        final = await InterruptResolver(Gate(agent_side, "researcher")).run(
            agent, {"messages": [{"role": "user", "content": "check db"}]}, config
        )
    finally:
        sync_gate.close()
    assert final["messages"][-1].content == "db is fine"
    assert RAN == [("lookup", {"service": "db"})]
    assert (await reviewer.list_requests(None)).total == 0  # autonomous: nobody was asked


class Plan(TypedDict, total=False):
    region: str


def region_graph() -> Any:
    def choose(state: Plan) -> Plan:
        return {"region": interrupt({"question": "Which region should I deploy to?", "options": ["eu", "us"]})}

    builder = StateGraph(Plan)
    builder.add_node("choose", choose)
    builder.add_edge(START, "choose")
    builder.add_edge("choose", END)
    return builder.compile(checkpointer=InMemorySaver())


async def test_plain_interrupt_is_answered_by_a_human(backends: tuple[LocalBackend, LocalBackend]) -> None:
    agent_side, reviewer = backends
    resolver = InterruptResolver(Gate(agent_side, "planner"))

    async def reply() -> None:
        async with asyncio.timeout(30):
            feed = reviewer.subscribe(after_seq=0)
            async for ev in feed:
                if ev.kind == "escalation.opened":
                    eid = int(ev.subject.split(":")[1])
                    esc = await reviewer.get_escalation(eid)
                    assert esc.message == "Which region should I deploy to?" and '"eu"' in (esc.context or "")
                    await reviewer.post_message(eid, "eu", role=MessageRole.human)
                    await feed.aclose()
                    return

    replying = asyncio.create_task(reply())
    final = await resolver.run(region_graph(), {}, {"configurable": {"thread_id": "g1"}})
    await replying
    assert final == {"region": "eu"}


async def test_plain_interrupt_without_answer_stays_paused(backends: tuple[LocalBackend, LocalBackend]) -> None:
    agent_side, _ = backends
    graph = region_graph()
    config = {"configurable": {"thread_id": "g2"}}
    resolver = InterruptResolver(Gate(agent_side, "planner"), question_timeout=0.2)
    with pytest.raises(InterruptNotResolved, match="no answer"):
        await resolver.run(graph, {}, config)
    assert (await graph.aget_state(config)).interrupts  # still paused, nothing guessed
