"""The approval gate end to end on a real SQLite file, decided from other processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from hitl_tui.errors import InvalidInput
from hitl_tui.models import DecisionIn, EscalationStatus, RequestStatus, Rule, RuleEffect, Stage
from hitl_tui.sdk import Gate, NotApproved, SyncGate
from tests.test_sdk_support import (
    approve_in_other_process,
    hitl,
    load_preset,
    open_local,
    wait_pending,
)


@pytest.fixture
async def setup(cli_env: dict[str, str]) -> Any:
    """An agent's gate and an admin backend on the same file the CLI subprocesses use."""
    path = Path(cli_env["HITL_STORE"])
    admin = open_local(path, "admin")
    await load_preset(admin)
    gate = Gate(open_local(path, "bot"), "bot")
    yield gate, admin, cli_env
    await gate.backend.close()
    await admin.close()


class Calls:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def __call__(self, **kw: Any) -> str:
        self.seen.append(kw)
        return f"done {sorted(kw.items())}"


async def test_autonomous_tool_runs_without_a_request(setup: Any) -> None:
    gate, admin, _ = setup
    fn = Calls()
    assert await gate.run("read_logs", {"path": "/var/log/app"}, fn) == "done [('path', '/var/log/app')]"
    assert fn.seen == [{"path": "/var/log/app"}]
    assert (await admin.list_requests(None)).total == 0


async def test_waiting_agent_is_approved_from_another_process_with_edited_args(setup: Any) -> None:
    gate, admin, env = setup
    fn = Calls()
    run = asyncio.create_task(gate.run("deploy", {"env": "prod", "version": "1.2"}, fn, summary="ship 1.2"))
    rid = await wait_pending(admin, "deploy")
    assert not run.done() and fn.seen == []
    code, _, err = await hitl(env, "--as", "alice", "approve", str(rid), "--args", '{"env": "staging"}')
    assert code == 0, err
    assert await asyncio.wait_for(run, 60) == "done [('env', 'staging')]"
    assert fn.seen == [{"env": "staging"}]
    req = await admin.get_request(rid)
    assert req.status is RequestStatus.approved and req.decided_by == "alice"
    assert req.summary == "ship 1.2" and req.policy_reason and "approval" in req.policy_reason
    assert req.irreversible and req.risk.value == "high"


async def test_denied_from_another_process_is_a_structured_refusal(setup: Any) -> None:
    gate, admin, env = setup
    fn = Calls()
    run = asyncio.create_task(gate.run("send_customer_email", {"to": "a@example.com"}, fn))
    rid = await wait_pending(admin, "send_customer_email")
    code, _, err = await hitl(env, "--as", "carol", "deny", str(rid), "--reason", "wrong customer")
    assert code == 0, err
    result = await asyncio.wait_for(run, 60)
    assert isinstance(result, NotApproved)
    assert result.to_dict() == {
        "error": "Action not approved",
        "action": "send_customer_email",
        "status": "denied",
        "reason": "denied by carol: wrong customer",
    }
    assert result.request_id == rid and result.decided_by == "carol"
    assert fn.seen == []


async def test_no_decision_before_the_deadline_expires(setup: Any) -> None:
    gate, admin, _ = setup
    fn = Calls()
    result = await gate.run("deploy", {"env": "prod"}, fn, timeout=0.5)
    assert isinstance(result, NotApproved) and result.status == "expired"
    assert (await admin.get_request(result.request_id)).status is RequestStatus.expired
    assert fn.seen == []


async def test_disabled_stage_and_deny_rule_block_naming_why(setup: Any) -> None:
    gate, admin, _ = setup
    await admin.set_stage("deploy", Stage.disabled, "admin", "incident")
    await admin.set_rules([Rule(pattern="read_logs(/etc/*)", effect=RuleEffect.deny, reason="secrets")], "admin")
    blocked = await gate.run("deploy", {"env": "prod"}, Calls())
    assert isinstance(blocked, NotApproved) and blocked.status == "blocked"
    assert "disabled" in blocked.reason
    denied = await gate.run("read_logs", {"path": "/etc/shadow"}, Calls())
    assert isinstance(denied, NotApproved) and denied.status == "blocked"
    assert "read_logs(/etc/*)" in denied.reason and "secrets" in denied.reason
    assert (await admin.list_requests(None)).total == 0


async def test_review_route_runs_then_logs_truncated_result(setup: Any) -> None:
    gate, admin, _ = setup
    cap = await admin.get_capability("format_code")
    await admin.put_capability(cap.model_copy(update={"review_after": True}), "admin")
    gate.settings.review.result_limit = 10
    result = await gate.run("format_code", {"path": "a.py"}, lambda path: "x" * 25)
    assert result == "x" * 25
    items = (await admin.list_reviews(None)).items
    assert len(items) == 1
    item = items[0]
    assert (item.tool, item.agent, item.args, item.reviewed) == ("format_code", "bot", {"path": "a.py"}, False)
    assert item.result == "x" * 10 and item.result_length == 25 and item.truncated


async def test_approval_with_review_after_logs_what_ran(setup: Any) -> None:
    """db_migration: approved by a second backend in another process, then logged for review."""
    gate, admin, _ = setup
    path = str(Path(admin.store.path))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        pending = pool.apply_async(approve_in_other_process, (path, "db_migration", "dana", {"version": 8}))
        result = await gate.run("db_migration", {"version": 7}, lambda version: f"migrated to {version}")
        rid = await asyncio.to_thread(pending.get, 120)
    assert result == "migrated to 8"
    items = (await admin.list_reviews(None, tool="db_migration")).items
    assert [(i.args, i.result, i.request_id) for i in items] == [({"version": 8}, "migrated to 8", rid)]


async def test_low_confidence_escalates_to_a_human(setup: Any) -> None:
    gate, admin, _ = setup
    fn = Calls()
    result = await gate.run("create_github_issue", {"title": "flaky test"}, fn, confidence=40, summary="file a bug")
    assert isinstance(result, NotApproved) and result.status == "escalated"
    assert result.to_dict()["status"] == "escalated"
    esc = await admin.get_escalation(result.escalation_id)
    assert esc.status is EscalationStatus.open and esc.agent == "bot"
    assert "file a bug" in esc.message and "create_github_issue" in (esc.context or "")
    assert fn.seen == []


async def test_decorator_binds_positional_arguments_and_runs_with_edits(setup: Any) -> None:
    gate, admin, _ = setup
    ran: list[tuple[str, int]] = []

    @gate.tool("deploy", summary=lambda a: f"deploy {a['env']}")
    async def deploy(env: str, replicas: int = 2) -> str:
        ran.append((env, replicas))
        return f"{env}x{replicas}"

    task = asyncio.create_task(deploy("prod"))
    rid = await wait_pending(admin, "deploy")
    req = await admin.get_request(rid)
    assert req.args == {"env": "prod", "replicas": 2} and req.summary == "deploy prod"
    await admin.decide(rid, DecisionIn(decision="approve", edited_args={"env": "prod", "replicas": 1}), "erin")
    assert await asyncio.wait_for(task, 60) == "prodx1"
    assert ran == [("prod", 1)]
    assert deploy.tool_name == "deploy"


async def test_store_disappearing_mid_wait_fails_closed(setup: Any) -> None:
    gate, admin, _ = setup
    fn = Calls()
    run = asyncio.create_task(gate.run("deploy", {"env": "prod"}, fn, timeout=600))
    rid = await wait_pending(admin, "deploy")
    path = Path(admin.store.path)
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(path) + suffix)
        if p.exists():
            os.unlink(p)
    result = await asyncio.wait_for(run, 60)
    assert isinstance(result, NotApproved) and result.status == "error"
    assert result.request_id == rid and "store" in result.reason
    assert fn.seen == []


async def test_same_idempotency_key_reuses_the_decided_request(setup: Any) -> None:
    gate, admin, _ = setup
    task = asyncio.create_task(gate.run("deploy", {"env": "prod"}, Calls(), idempotency_key="run-42"))
    rid = await wait_pending(admin, "deploy")
    await admin.decide(rid, DecisionIn(decision="deny", reason="no"), "erin")
    first = await task
    again = await gate.run("deploy", {"env": "prod"}, Calls(), idempotency_key="run-42")
    assert isinstance(first, NotApproved) and isinstance(again, NotApproved)
    assert again.request_id == rid and again.status == "denied"
    assert (await admin.list_requests(None)).total == 1


async def test_cancelled_agent_withdraws_its_request(setup: Any) -> None:
    gate, admin, _ = setup
    task = asyncio.create_task(gate.run("deploy", {"env": "prod"}, Calls()))
    rid = await wait_pending(admin, "deploy")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await admin.get_request(rid)).status is RequestStatus.cancelled


async def test_bad_input_is_refused_before_anything_is_written(setup: Any) -> None:
    gate, admin, _ = setup
    with pytest.raises(InvalidInput):
        await gate.run("deploy", {"when": float("nan")}, Calls())
    with pytest.raises(InvalidInput):
        await gate.run("deploy", {}, Calls(), confidence=101)
    assert (await admin.list_requests(None)).total == 0


async def test_tool_errors_propagate_and_are_logged_under_review(setup: Any) -> None:
    gate, admin, _ = setup
    cap = await admin.get_capability("read_logs")
    await admin.put_capability(cap.model_copy(update={"review_after": True}), "admin")

    def broken(path: str) -> str:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        await gate.run("read_logs", {"path": "x"}, broken)
    [item] = (await admin.list_reviews(None)).items
    assert "disk on fire" in item.result


def test_sync_gate_waits_in_its_own_loop_and_runs_in_the_caller_thread(cli_env: dict[str, str]) -> None:
    path = Path(cli_env["HITL_STORE"])

    async def seed() -> None:
        admin = open_local(path)
        await load_preset(admin)
        await admin.close()

    asyncio.run(seed())
    threads: list[str] = []
    with SyncGate.connect("sync-bot", store=path, notifiers=()) as gate:

        @gate.tool("deploy")
        def deploy(env: str) -> str:
            threads.append(threading.current_thread().name)
            return f"deployed {env}"

        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            pending = pool.apply_async(approve_in_other_process, (str(path), "deploy", "frank"))
            assert deploy("prod") == "deployed prod"
            pending.get(120)
        assert threads == [threading.current_thread().name]
        assert gate.run("read_logs", {"path": "p"}, lambda path: path.upper()) == "P"
        refused = gate.run("deploy", {"env": "prod"}, lambda env: env, timeout=0.5)
        assert isinstance(refused, NotApproved) and refused.status == "expired"
    with pytest.raises(RuntimeError, match="closed"):
        gate.run("read_logs", {"path": "p"}, lambda path: path)
