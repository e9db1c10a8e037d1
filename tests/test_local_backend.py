"""LocalBackend: the event hub, waiting on decisions, subscriptions, policy caching, failing closed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hitl_tui.backend.local import LocalBackend
from hitl_tui.errors import StoreUnavailable
from hitl_tui.models import (
    Capability,
    DecisionIn,
    EscalationCreate,
    EscalationStatus,
    EventKind,
    MessageRole,
    RequestCreate,
    RequestStatus,
    Route,
    Stage,
)
from hitl_tui.store.sqlite import SQLiteStore

from .conftest import ROOT


@pytest.fixture
async def backend(db_path: Path):
    b = LocalBackend(SQLiteStore(db_path), actor="alice")
    yield b
    await b.close()


def req(**kw) -> RequestCreate:
    return RequestCreate(**{"agent": "bot", "tool": "deploy", "args": {"v": 1}, "timeout_s": 60, **kw})


async def test_wait_returns_decision_made_by_another_backend(db_path: Path, backend: LocalBackend) -> None:
    other = LocalBackend(SQLiteStore(db_path), actor="bob")
    try:
        r = await backend.create_request(req())
        waiter = asyncio.create_task(backend.wait_for_request(r.id, timeout=30))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        await other.decide(r.id, DecisionIn(decision="approve", edited_args={"v": 2}))
        done = await asyncio.wait_for(waiter, 10)
        assert done.status is RequestStatus.approved and done.decided_by == "bob"
        assert done.effective_args == {"v": 2}
    finally:
        await other.close()


async def test_wait_returns_decision_made_by_another_process(db_path: Path, backend: LocalBackend) -> None:
    r = await backend.create_request(req())
    waiter = asyncio.create_task(backend.wait_for_request(r.id, timeout=60))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HITL_CONFIG": str(db_path.parent / "none.toml")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hitl_tui",
        "--store",
        str(db_path),
        "--as",
        "carol",
        "deny",
        str(r.id),
        "--reason",
        "wrong window",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    done = await asyncio.wait_for(waiter, 20)
    assert done.status is RequestStatus.denied
    assert (done.decided_by, done.decision_reason) == ("carol", "wrong window")


async def test_wait_expires_at_deadline_exactly_once(backend: LocalBackend) -> None:
    r = await backend.create_request(req(timeout_s=0.3))
    done = await asyncio.wait_for(backend.wait_for_request(r.id), 10)
    assert done.status is RequestStatus.expired
    again = await backend.wait_for_request(r.id)
    assert again.status is RequestStatus.expired
    events = [e for e in await backend.events_after(0) if e.kind is EventKind.request_expired]
    assert len(events) == 1


async def test_wait_with_short_timeout_returns_pending(backend: LocalBackend) -> None:
    r = await backend.create_request(req(timeout_s=600))
    got = await backend.wait_for_request(r.id, timeout=0.1)
    assert got.status is RequestStatus.pending


async def test_many_waiters_share_one_hub(backend: LocalBackend) -> None:
    reqs = [await backend.create_request(req()) for _ in range(200)]
    waiters = [asyncio.create_task(backend.wait_for_request(r.id, timeout=60)) for r in reqs]
    await asyncio.sleep(0.1)
    for r in reqs:
        await backend.decide(r.id, DecisionIn(decision="approve"))
    done = await asyncio.wait_for(asyncio.gather(*waiters), 30)
    assert all(d.status is RequestStatus.approved for d in done)
    assert not backend._waiters  # every waiter cleaned up after itself


async def test_fail_closed_when_store_file_disappears(db_path: Path, backend: LocalBackend) -> None:
    r = await backend.create_request(req(timeout_s=600))
    waiter = asyncio.create_task(backend.wait_for_request(r.id, timeout=60))
    await asyncio.sleep(0.05)
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(db_path) + suffix)
        if p.exists():
            p.unlink()
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(waiter, 15)


async def test_subscribe_replays_backlog_then_goes_live_without_duplicates(backend: LocalBackend) -> None:
    first = await backend.create_request(req())
    await backend.decide(first.id, DecisionIn(decision="approve"))
    seen: list[int] = []

    async def consume() -> None:
        async for ev in backend.subscribe(after_seq=0):
            seen.append(ev.seq)
            if len(seen) == 4:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    second = await backend.create_request(req())
    await backend.decide(second.id, DecisionIn(decision="deny", reason="no"))
    await asyncio.wait_for(task, 10)
    assert seen == [1, 2, 3, 4]


async def test_escalation_wait_gets_human_reply_and_takeover(backend: LocalBackend) -> None:
    e = await backend.create_escalation(EscalationCreate(agent="bot", message="I need access to prod"))
    waiter = asyncio.create_task(backend.wait_for_escalation(e.id, seen_messages=1, timeout=30))
    await asyncio.sleep(0.05)
    await backend.post_message(e.id, "bot", author="bot", role=MessageRole.agent)  # not a human reply
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await backend.post_message(e.id, "use the read replica")
    got = await asyncio.wait_for(waiter, 10)
    assert got.last_human_message.text == "use the read replica"
    waiter = asyncio.create_task(backend.wait_for_escalation(e.id, seen_messages=len(got.messages), timeout=30))
    await asyncio.sleep(0.05)
    await backend.set_escalation_status(e.id, EscalationStatus.taken_over)
    assert (await asyncio.wait_for(waiter, 10)).status is EscalationStatus.taken_over


async def test_evaluate_follows_stage_changes_live(db_path: Path, backend: LocalBackend) -> None:
    await backend.put_capability(Capability(tool="deploy", stage=Stage.approval))
    assert (await backend.evaluate("deploy", {})).route is Route.approval
    other = LocalBackend(SQLiteStore(db_path), actor="bob")
    try:
        await other.set_stage("deploy", Stage.disabled, reason="incident")
    finally:
        await other.close()
    for _ in range(200):  # the hub invalidates the cached policy when the change event arrives
        if (await backend.evaluate("deploy", {})).route is Route.blocked:
            break
        await asyncio.sleep(0.01)
    assert (await backend.evaluate("deploy", {})).route is Route.blocked
