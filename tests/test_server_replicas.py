"""Two `hitl serve` replicas on one PostgreSQL schema: what is filed through one and decided through
the other reaches an agent waiting on the first and a console following the second; racing
decisions through both settle exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hitl_tui.backend.http import HttpBackend
from hitl_tui.models import DecisionIn, EventKind, RequestCreate, RequestStatus

from .conftest import POSTGRES_DSN, _postgres_available
from .server_utils import ServerProcess, Team

pytestmark = pytest.mark.postgres


class Replicas:
    def __init__(self, a: Team, b: Team) -> None:
        self.a, self.b = a, b


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[Replicas]:
    why = _postgres_available()
    if why:
        pytest.skip(why)
    from hitl_tui.store.postgres import create_test_schema, drop_test_schema

    assert POSTGRES_DSN
    schema = await create_test_schema(POSTGRES_DSN)
    sep = "&" if "?" in POSTGRES_DSN else "?"
    url = f"{POSTGRES_DSN}{sep}schema={schema}"
    procs: list[ServerProcess] = []
    try:
        with ThreadPoolExecutor(2) as pool:  # start both at once
            procs = list(pool.map(lambda d: ServerProcess(url, tmp_path / d).start(),
                                  [_mkdir(tmp_path / "a"), _mkdir(tmp_path / "b")]))
        a = Team(procs[0])  # tokens live in the shared schema: both replicas accept them
        yield Replicas(a, Team(procs[1], tokens=a.tokens))
    finally:
        for p in procs:
            p.stop()
        await drop_test_schema(POSTGRES_DSN, schema)


def _mkdir(p: Path) -> str:
    p.mkdir(parents=True, exist_ok=True)
    return p.name


async def test_filed_on_one_decided_on_the_other(replicas: Replicas) -> None:
    agent: HttpBackend = replicas.a.backend("bot")
    console: HttpBackend = replicas.b.backend("alice")
    try:
        start = await console.last_seq()
        feed = console.subscribe(start)
        r = await agent.create_request(RequestCreate(agent="bot", tool="Bash", args={"command": "deploy"}))
        waiting = asyncio.create_task(agent.wait_for_request(r.id, timeout=60))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        decided = await console.decide(r.id, DecisionIn(decision="approve", reason="via replica b"))
        assert decided.status is RequestStatus.approved
        got = await asyncio.wait_for(waiting, 60)  # replica a heard it through the shared change feed
        assert got.status is RequestStatus.approved and got.decided_by == "alice"
        seen = []
        async with contextlib.aclosing(feed):
            async for ev in feed:
                seen.append(ev.kind)
                if ev.kind is EventKind.request_decided:
                    break
        assert seen == [EventKind.request_created, EventKind.request_decided]
    finally:
        await agent.close()
        await console.close()


async def test_racing_decisions_through_two_replicas_settle_once(replicas: Replicas) -> None:
    async with replicas.a.backend("root") as root, replicas.a.backend("alice") as alice, \
            replicas.b.backend("bob") as bob:
        ids = [(await root.create_request(RequestCreate(agent="bot", tool="Bash"))).id for _ in range(10)]

        async def decide(backend: HttpBackend, rid: int, verdict: str) -> str:
            try:
                await backend.decide(rid, DecisionIn(decision=verdict))  # type: ignore[arg-type]
                return "won"
            except Exception as exc:  # the loser's error is the point
                return type(exc).__name__

        for rid in ids:
            outcomes = await asyncio.gather(decide(alice, rid, "approve"), decide(bob, rid, "deny"))
            assert sorted(outcomes) == ["Conflict", "won"], outcomes
        events = await root.events_after(0)
    decided = [e.subject for e in events if e.kind is EventKind.request_decided]
    assert sorted(decided) == sorted(f"request:{r}" for r in ids)
