"""OpenAI Agents SDK runs, offline with the SDK's own ScriptedModel: the policy pauses the run, a
reviewer decides in the store (another backend on the same SQLite file), the run resumes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message, function_call

from hitl_tui.backend.local import LocalBackend
from hitl_tui.integrations.openai_agents import HitlApprovals, load_state, save_state
from hitl_tui.models import Capability, DecisionIn, RequestStatus, Rule, RuleEffect, Stage
from hitl_tui.sdk import Gate
from hitl_tui.store.sqlite import SQLiteStore

set_tracing_disabled(True)  # offline: no trace export


class Ops:
    """The agent's tools, recording what really ran."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, dict[str, Any]]] = []

    def tools(self) -> list[Any]:
        @function_tool
        def deploy(env: str) -> str:
            """Deploy the current build to an environment."""
            self.ran.append(("deploy", {"env": env}))
            return f"deployed to {env}"

        @function_tool
        def lookup(service: str) -> str:
            """Look up a service's status."""
            self.ran.append(("lookup", {"service": service}))
            return f"{service} is healthy"

        return [deploy, lookup]


@pytest.fixture
async def backends(tmp_path: Path) -> AsyncIterator[tuple[LocalBackend, LocalBackend]]:
    path = tmp_path / "hitl.db"
    agent_side = LocalBackend(SQLiteStore(path), actor="ops-bot")
    reviewer = LocalBackend(SQLiteStore(path), actor="alice")
    await reviewer.put_capability(Capability(tool="lookup", stage=Stage.autonomous))
    await reviewer.put_capability(Capability(tool="deploy", stage=Stage.approval))
    yield agent_side, reviewer
    await agent_side.close()
    await reviewer.close()


def make_agent(ops: Ops, approvals: HitlApprovals, steps: list[Any]) -> tuple[Agent[Any], ScriptedModel]:
    model = ScriptedModel(steps)
    agent = Agent(name="ops", instructions="Operate the services.", tools=ops.tools(), model=model)
    return approvals.gate_tools(agent), model


async def decide_next(reviewer: LocalBackend, decision: DecisionIn, after_seq: int = 0) -> int:
    """As a reviewer: wait (on the change feed) for the next request, then decide it."""
    async with asyncio.timeout(30):
        feed = reviewer.subscribe(after_seq=after_seq)
        async for ev in feed:
            if ev.kind == "request.created":
                await feed.aclose()
                rid = int(ev.subject.split(":")[1])
                await reviewer.decide(rid, decision)
                return rid
    raise AssertionError("no request was filed")


def tool_outputs(model: ScriptedModel) -> dict[str, str]:
    """The function-call outputs the model was sent on its last call, by call id."""
    last = model.last_call
    assert last is not None
    items = last.input if isinstance(last.input, list) else []
    return {i["call_id"]: i["output"] for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"}


async def test_autonomous_runs_approval_pauses_then_resumes(backends: tuple[LocalBackend, LocalBackend]) -> None:
    agent_side, reviewer = backends
    ops = Ops()
    approvals = HitlApprovals(Gate(agent_side, "ops-bot"))
    agent, model = make_agent(
        ops,
        approvals,
        [
            [function_call("lookup", {"service": "api"}, call_id="c1")],
            [function_call("deploy", {"env": "prod"}, call_id="c2")],
            [assistant_message("prod is live")],
        ],
    )
    decider = asyncio.create_task(decide_next(reviewer, DecisionIn(decision="approve", reason="release window")))
    result = await approvals.run(agent, "check the api, then ship to prod")
    rid = await decider
    assert result.final_output == "prod is live"
    assert ops.ran == [("lookup", {"service": "api"}), ("deploy", {"env": "prod"})]
    req = await reviewer.get_request(rid)
    assert (req.agent, req.tool, req.args, req.status) == ("ops-bot", "deploy", {"env": "prod"}, RequestStatus.approved)
    assert tool_outputs(model)["c2"] == "deployed to prod"
    model.assert_complete()


async def test_denied_call_is_rejected_with_the_reason(backends: tuple[LocalBackend, LocalBackend]) -> None:
    agent_side, reviewer = backends
    ops = Ops()
    approvals = HitlApprovals(Gate(agent_side, "ops-bot"))
    agent, model = make_agent(
        ops,
        approvals,
        [[function_call("deploy", {"env": "prod"}, call_id="d1")], [assistant_message("ok, not deploying")]],
    )
    decider = asyncio.create_task(decide_next(reviewer, DecisionIn(decision="deny", reason="code freeze")))
    result = await approvals.run(agent, "ship it")
    await decider
    assert result.final_output == "ok, not deploying"
    assert ops.ran == []
    assert "code freeze" in tool_outputs(model)["d1"] and "denied" in tool_outputs(model)["d1"]


async def test_reviewer_edit_is_sent_back_and_the_edited_call_runs_once(
    backends: tuple[LocalBackend, LocalBackend],
) -> None:
    agent_side, reviewer = backends
    ops = Ops()
    approvals = HitlApprovals(Gate(agent_side, "ops-bot"))
    agent, model = make_agent(
        ops,
        approvals,
        [
            [function_call("deploy", {"env": "prod"}, call_id="e1")],
            [function_call("deploy", {"env": "staging"}, call_id="e2")],  # the model follows the instruction
            [assistant_message("deployed to staging instead")],
        ],
    )
    edit = DecisionIn(decision="approve", reason="staging first", edited_args={"env": "staging"})
    decider = asyncio.create_task(decide_next(reviewer, edit))
    result = await approvals.run(agent, "ship it")
    await decider
    assert result.final_output == "deployed to staging instead"
    assert ops.ran == [("deploy", {"env": "staging"})]
    outputs = tool_outputs(model)
    assert "changed arguments" in outputs["e1"] and '{"env": "staging"}' in outputs["e1"]
    assert outputs["e2"] == "deployed to staging"
    assert (await reviewer.list_requests(None)).total == 1  # the edited call needed no second request
    # the pre-approval was used up: the same call again pauses for a human
    assert await approvals.needs_approval("deploy")(None, {"env": "staging"}, "e3") is True


async def test_blocked_by_rule_is_rejected_without_a_request(backends: tuple[LocalBackend, LocalBackend]) -> None:
    agent_side, reviewer = backends
    await reviewer.set_rules(
        [Rule(pattern='deploy({"env":"prod"})', effect=RuleEffect.deny, reason="bots never ship prod")]
    )
    ops = Ops()
    approvals = HitlApprovals(Gate(agent_side, "ops-bot"))
    agent, model = make_agent(
        ops, approvals, [[function_call("deploy", {"env": "prod"}, call_id="b1")], [assistant_message("blocked")]]
    )
    result = await approvals.run(agent, "ship it")
    assert result.final_output == "blocked" and ops.ran == []
    assert "bots never ship prod" in tool_outputs(model)["b1"]
    assert (await reviewer.list_requests(None)).total == 0


async def test_paused_run_survives_a_restart(tmp_path: Path, backends: tuple[LocalBackend, LocalBackend]) -> None:
    agent_side, reviewer = backends
    ops = Ops()
    approvals = HitlApprovals(Gate(agent_side, "ops-bot"))
    agent, _ = make_agent(ops, approvals, [[function_call("deploy", {"env": "prod"}, call_id="r1")]])
    result = await Runner.run(agent, "ship it", hooks=approvals.hooks)
    assert [i.name for i in result.interruptions] == ["deploy"]
    state = result.to_state()
    filed = await approvals.resolve(state, wait=False)  # file the request, do not wait
    assert [o.status for o in filed] == ["pending"]
    saved = tmp_path / "run.json"
    saved.write_text(save_state(state))
    await agent_side.close()

    await reviewer.decide(filed[0].request_id, DecisionIn(decision="approve"))

    # "another process": a new backend, gate, agent and model; the run continues from the file
    fresh_backend = LocalBackend(SQLiteStore(tmp_path / "hitl.db"), actor="ops-bot")
    try:
        approvals2 = HitlApprovals(Gate(fresh_backend, "ops-bot"))
        agent2, model2 = make_agent(ops, approvals2, [[assistant_message("shipped after restart")]])
        state2 = await load_state(agent2, saved.read_text())
        outcomes = await approvals2.resolve(state2)
        assert [(o.status, o.request_id) for o in outcomes] == [("approved", filed[0].request_id)]
        final = await Runner.run(agent2, state2, hooks=approvals2.hooks)
        assert final.final_output == "shipped after restart"
        assert ops.ran == [("deploy", {"env": "prod"})]
        assert (await reviewer.list_requests(None)).total == 1
        model2.assert_complete()
    finally:
        await fresh_backend.close()


async def test_review_route_logs_the_result(backends: tuple[LocalBackend, LocalBackend]) -> None:
    agent_side, reviewer = backends
    await reviewer.put_capability(Capability(tool="lookup", stage=Stage.autonomous, review_after=True))
    ops = Ops()
    approvals = HitlApprovals(Gate(agent_side, "ops-bot"))
    agent, _ = make_agent(
        ops, approvals, [[function_call("lookup", {"service": "db"}, call_id="v1")], [assistant_message("db ok")]]
    )
    result = await approvals.run(agent, "how is the db?")
    assert result.final_output == "db ok"
    items = (await reviewer.list_reviews()).items
    assert [(i.agent, i.tool, i.args, i.result) for i in items] == [
        ("ops-bot", "lookup", {"service": "db"}, "db is healthy")
    ]


async def test_lost_store_pauses_and_then_rejects(tmp_path: Path) -> None:
    """Fail closed: with the store gone, the call pauses and the resolver rejects it."""
    broken = LocalBackend(SQLiteStore(tmp_path / "gone.db"), actor="ops-bot")
    await broken.store.close()
    ops = Ops()
    approvals = HitlApprovals(Gate(broken, "ops-bot"))
    agent, model = make_agent(
        ops, approvals, [[function_call("lookup", {"service": "api"}, call_id="x1")], [assistant_message("gave up")]]
    )
    result = await approvals.run(agent, "status?")
    assert result.final_output == "gave up" and ops.ran == []
    assert tool_outputs(model)["x1"].startswith("Not approved (error)")
