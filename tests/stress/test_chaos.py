"""The chaos run: 700 requests (2,000 with ``HITL_CHAOS_REQUESTS=2000``) from 50 concurrent agents,
4 reviewers racing to decide them, and ``hitl serve`` SIGKILLed and restarted 6 times while it all
happens, on SQLite and on PostgreSQL. Every fault kind runs at either size: kills spread over the
run, requests whose deadline races the reviewers, held requests that must expire, lost answers
retried with the same idempotency key, lost decisions retried by reviewers.

Agents are real ``Gate`` s over ``HttpBackend`` (one agent token each); the gated tool records every
run. An agent that loses its answer retries with the same idempotency key, a reviewer whose
decision got no answer retries the same decision. Afterwards, read straight from the store:

* every request reached exactly one terminal state, through exactly one terminal event;
* no request was decided twice, and no two reviewers were both told they decided one;
* every agent got exactly the recorded outcome; the tool ran once for each approved request and
  never for any other (an expired request never ran);
* the event log runs 1..N without a gap and the audit chain verifies (``hitl audit verify`` too).

The figures are printed at the end (``-s``) and go into docs/reliability.md (run at the full size:
``HITL_CHAOS_REQUESTS=2000 HITL_CHAOS_REPORT=file.jsonl python -m pytest -n 0 tests/stress -s``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hitl_tui.backend.http import HttpBackend
from hitl_tui.errors import Conflict, NotFound, StoreUnavailable
from hitl_tui.models import ApprovalRequest, DecisionIn, RequestStatus, TokenRole
from hitl_tui.sdk import Gate, NotApproved

from ..conftest import HITL, POSTGRES_DSN, _postgres_available
from ..server_utils import ServerProcess, server_env, sqlite_url

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

AGENTS = 50
#: the suite's size; the documented figures use 2,000 (a multiple of AGENTS, so every agent files as many)
REQUESTS = int(os.environ.get("HITL_CHAOS_REQUESTS", "700"))
REVIEWERS = 4
KILLS = 6  # at least 5, spread over the run
SHORT_DEADLINE_S = 1.5  # every 10th request: reviewers may or may not beat it
HOLD_DEADLINE_S = 2.0  # every 25th request: reviewers leave it alone, so it must expire
NORMAL_DEADLINE_S = 90.0
ATTEMPTS = 20  # an agent retries a lost answer this many times (same idempotency key)
assert REQUESTS % AGENTS == 0 and REQUESTS // (KILLS + 1) >= AGENTS, "HITL_CHAOS_REQUESTS: a multiple of 50, >= 350"


@dataclass
class Tally:
    started: float = field(default_factory=time.monotonic)
    agent_outcome: dict[str, str] = field(default_factory=dict)  # key -> what the agent was finally told
    agent_rid: dict[str, int] = field(default_factory=dict)
    runs: Counter[str] = field(default_factory=Counter)  # key -> times the tool ran
    acks: list[tuple[str, int, str]] = field(default_factory=list)  # (reviewer, request id, status) on 200
    conflicts: int = 0
    reviewer_retries: int = 0
    agent_retries: int = 0
    kills: int = 0
    done: int = 0


async def _make_tokens(store_url: str) -> dict[str, str]:
    from hitl_tui.cli.serve import open_store_at
    from hitl_tui.server.credentials import hash_token, new_token

    names = [(f"agent{i:02d}", TokenRole.agent) for i in range(AGENTS)]
    names += [(f"rev{i}", TokenRole.reviewer) for i in range(REVIEWERS)]
    names += [("root", TokenRole.admin)]
    out: dict[str, str] = {}
    store = open_store_at(store_url)
    try:
        for name, role in names:
            out[name] = new_token()
            await store.create_token(name, role, hash_token(out[name]), "chaos")
    finally:
        await store.close()
    return out


def _deadline(i: int) -> tuple[float, bool]:
    if i % 25 == 0:
        return HOLD_DEADLINE_S, True
    if i % 10 == 0:
        return SHORT_DEADLINE_S, False
    return NORMAL_DEADLINE_S, False


async def _agent(name: str, token: str, url: str, count: int, offset: int, tally: Tally) -> None:
    async with Gate(HttpBackend(url, token, reconnect_for=60.0), name) as gate:
        for n in range(count):
            i = offset + n
            key = f"{name}-{i}"
            timeout, hold = _deadline(i)

            def tool(key: str = key, **_: Any) -> str:
                tally.runs[key] += 1
                return key

            result: Any = None
            for attempt in range(ATTEMPTS):
                result = await gate.run(
                    "deploy",
                    {"key": key},
                    tool,
                    summary="hold" if hold else f"deploy {i}",
                    timeout=timeout,
                    idempotency_key=key,
                )
                if not (isinstance(result, NotApproved) and result.status == "error"):
                    break
                tally.agent_retries += 1  # the answer was lost (server down): ask again, same key
                await asyncio.sleep(min(0.2 * (attempt + 1), 2.0))
            if isinstance(result, NotApproved):
                tally.agent_outcome[key] = result.status
                if result.request_id is not None:
                    tally.agent_rid[key] = result.request_id
            else:
                assert result == key
                tally.agent_outcome[key] = "approved"
            tally.done += 1


async def _reviewer(name: str, token: str, url: str, tally: Tally, stop: asyncio.Event, seed: int) -> None:
    rng = random.Random(seed)
    async with HttpBackend(url, token, reconnect_for=60.0) as me:
        while not stop.is_set():
            try:
                page = await me.list_requests(RequestStatus.pending, limit=50)
            except StoreUnavailable:
                await asyncio.sleep(0.1)
                continue
            todo = [r for r in page.items if r.summary != "hold"]
            if not todo:
                await asyncio.sleep(0.02)
                continue
            for req in todo:  # every reviewer walks the same list: they race for the same requests
                verdict = DecisionIn(decision=rng.choice(["approve", "approve", "deny"]), reason=f"{name} says so")
                for _ in range(ATTEMPTS):
                    try:
                        got = await me.decide(req.id, verdict)
                    except Conflict:
                        tally.conflicts += 1
                        break
                    except NotFound:
                        break
                    except StoreUnavailable:  # no answer: the decision may or may not have landed
                        tally.reviewer_retries += 1
                        await asyncio.sleep(0.2)
                        continue
                    if got.status is not RequestStatus.pending:
                        tally.acks.append((name, req.id, got.status.value))
                    break
                if stop.is_set():
                    return


async def _killer(proc: ServerProcess, tally: Tally, stop: asyncio.Event) -> None:
    """SIGKILL the server each time another slice of the requests has settled, then restart it."""
    step = REQUESTS // (KILLS + 1)
    while tally.kills < KILLS and not stop.is_set():
        if tally.done >= step * (tally.kills + 1):
            proc.kill()
            tally.kills += 1
            await asyncio.sleep(0.3)  # agents and reviewers hit a dead port for a moment
            await asyncio.to_thread(proc.start, 60.0)
        await asyncio.sleep(0.05)


async def _read_back(store_url: str) -> tuple[list[ApprovalRequest], list[Any], Any]:
    from hitl_tui.cli.serve import open_store_at

    store = open_store_at(store_url)
    try:
        requests: list[ApprovalRequest] = []
        while True:
            page = await store.list_requests(None, offset=len(requests), limit=1000)
            requests += page.items
            if len(page.items) < 1000:
                break
        events: list[Any] = []
        while True:
            batch = await store.events_after(events[-1].seq if events else 0, 1000)
            events += batch
            if len(batch) < 1000:
                break
        return requests, events, await store.verify_audit()
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path, "chaos.db")
        return
    why = _postgres_available()
    if why:
        pytest.skip(why)
    from hitl_tui.store.postgres import create_test_schema, drop_test_schema

    assert POSTGRES_DSN
    schema = await create_test_schema(POSTGRES_DSN)
    sep = "&" if "?" in POSTGRES_DSN else "?"
    yield f"{POSTGRES_DSN}{sep}schema={schema}"
    await drop_test_schema(POSTGRES_DSN, schema)


async def test_chaos_run(store_url: str, tmp_path: Path) -> None:
    tokens = await _make_tokens(store_url)
    proc = ServerProcess(store_url, tmp_path)
    await asyncio.to_thread(proc.start, 60.0)
    tally = Tally()
    stop = asyncio.Event()
    try:
        per_agent = REQUESTS // AGENTS
        reviewers = [
            asyncio.create_task(_reviewer(f"rev{i}", tokens[f"rev{i}"], proc.url, tally, stop, i))
            for i in range(REVIEWERS)
        ]
        killer = asyncio.create_task(_killer(proc, tally, stop))
        agents = [
            asyncio.create_task(
                _agent(f"agent{a:02d}", tokens[f"agent{a:02d}"], proc.url, per_agent, a * per_agent, tally)
            )
            for a in range(AGENTS)
        ]
        await asyncio.wait_for(asyncio.gather(*agents), 360)
        stop.set()
        await asyncio.gather(*reviewers, killer)
        elapsed = time.monotonic() - tally.started
    finally:
        stop.set()
        proc.stop()
    assert proc.log().count("Traceback") == 0, proc.log()[-3000:]

    requests, events, audit = await _read_back(store_url)
    by_id = {r.id: r for r in requests}
    by_key = {r.idempotency_key: r for r in requests}

    # exactly the requests the agents filed: retries never made a second one
    assert len(requests) == REQUESTS and len(by_key) == REQUESTS
    # exactly one terminal state each, reached through exactly one terminal event
    terminal_events: Counter[str] = Counter()
    decided_events: Counter[str] = Counter()
    for ev in events:
        if ev.kind in ("request.decided", "request.expired", "request.cancelled"):
            terminal_events[ev.subject] += 1
        if ev.kind == "request.decided":
            decided_events[ev.subject] += 1
    for r in requests:
        assert r.status is not RequestStatus.pending, r
        assert terminal_events[f"request:{r.id}"] == 1, (r.id, terminal_events[f"request:{r.id}"])
    assert max(decided_events.values()) == 1  # no decision recorded twice
    # what each reviewer was told is what the store holds; never two winners for one request
    winners: dict[int, set[str]] = defaultdict(set)
    for reviewer, rid, status in tally.acks:
        assert by_id[rid].status.value == status and by_id[rid].decided_by == reviewer, (reviewer, rid, status)
        winners[rid].add(reviewer)
    assert all(len(w) == 1 for w in winners.values())
    # every agent got exactly the recorded outcome; the tool ran once per approval, never otherwise
    unanswered = 0
    for key, r in by_key.items():
        told = tally.agent_outcome[key]
        if told == "error":  # its answer was lost every time: it must not have run
            unanswered += 1
            assert tally.runs[key] == 0
            continue
        assert told == r.status.value, (key, told, r.status.value)
        assert tally.runs[key] == (1 if r.status is RequestStatus.approved else 0), (key, tally.runs[key])
        if r.summary == "hold":
            assert r.status in (RequestStatus.expired, RequestStatus.cancelled), r  # never approved
    # the log: 1..N without a gap, and the chain verifies, through the API code and the CLI
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert audit.ok, audit.problems[:5]
    cli = subprocess.run(
        [*HITL, "--store", store_url, "audit", "verify"],
        env=server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0 and f"{len(events)} events verified" in cli.stdout, cli.stdout + cli.stderr
    assert tally.kills >= 5

    statuses = Counter(r.status.value for r in requests)
    figures = {
        "store": "postgresql" if store_url.startswith("postgresql") else "sqlite",
        "requests": len(requests),
        "agents": AGENTS,
        "reviewers": REVIEWERS,
        "sigkills": tally.kills,
        "seconds": round(elapsed, 1),
        "statuses": dict(sorted(statuses.items())),
        "events": len(events),
        "reviewer_conflicts_409": tally.conflicts,
        "reviewer_retries": tally.reviewer_retries,
        "agent_retries": tally.agent_retries,
        "agents_left_without_answer": unanswered,
        "tool_runs": sum(tally.runs.values()),
        "audit_ok": audit.ok,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    print("\nchaos figures:", json.dumps(figures))
    report = os.environ.get("HITL_CHAOS_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(figures) + "\n")
