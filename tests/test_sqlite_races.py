"""Exactly one decision under real contention: many threads and several processes on one file."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import sqlite3
import threading
from pathlib import Path

from hitl_tui.errors import Conflict
from hitl_tui.models import DecisionIn, EventKind, RequestCreate, RequestStatus
from hitl_tui.store.sqlite import SQLiteStore

N_REQUESTS = 60


def _seed(path: Path, n: int) -> list[int]:
    async def go() -> list[int]:
        s = SQLiteStore(path)
        try:
            return [
                (await s.create_request(RequestCreate(agent="bot", tool="deploy", timeout_s=600))).id for _ in range(n)
            ]
        finally:
            await s.close()

    return asyncio.run(go())


def _race(path: str, reviewer: str, ids: list[int], out: mp.Queue) -> None:  # runs in a child process
    async def go() -> tuple[list[int], list[str]]:
        s = SQLiteStore(path)
        won, errors = [], []
        try:
            for rid in ids:
                decision = "deny" if reviewer.endswith(("1", "3")) else "approve"
                try:
                    await s.decide(rid, DecisionIn(decision=decision, reason=reviewer), reviewer)
                    won.append(rid)
                except Conflict:
                    pass
                except Exception as exc:  # anything else (e.g. "database is locked") is a failure
                    errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            await s.close()
        return won, errors

    out.put((reviewer, *asyncio.run(go())))


def _check(path: Path, ids: list[int], wins: dict[str, list[int]]) -> None:
    all_wins = [rid for w in wins.values() for rid in w]
    assert sorted(all_wins) == sorted(ids), "every request decided exactly once"
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT id, status, decided_by, decision_reason FROM requests").fetchall()
        kinds = [r[0] for r in conn.execute("SELECT kind FROM events")]
    finally:
        conn.close()
    winner = {rid: who for who, w in wins.items() for rid in w}
    for rid, status, decided_by, reason in rows:
        assert status in (RequestStatus.approved, RequestStatus.denied)
        assert decided_by == winner[rid] == reason
    assert kinds.count(EventKind.request_decided.value) == len(ids)


def test_racing_processes_decide_each_request_once(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    ids = _seed(path, N_REQUESTS)
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(path), f"rev{i}", ids, out)) for i in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    errors = [e for _, _, errs in results for e in errs]
    assert errors == []
    _check(path, ids, {who: won for who, won, _ in results})

    async def verify() -> bool:
        s = SQLiteStore(path)
        try:
            return (await s.verify_audit()).ok
        finally:
            await s.close()

    assert asyncio.run(verify())


def test_racing_threads_decide_each_request_once(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    ids = _seed(path, N_REQUESTS)
    wins: dict[str, list[int]] = {}
    errors: list[str] = []

    def worker(reviewer: str) -> None:
        async def go() -> None:
            s = SQLiteStore(path)  # its own connection, like another process
            won = []
            try:
                for rid in ids:
                    try:
                        await s.decide(rid, DecisionIn(decision="approve", reason=reviewer), reviewer)
                        won.append(rid)
                    except Conflict:
                        pass
                    except Exception as exc:
                        errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                await s.close()
            wins[reviewer] = won

        asyncio.run(go())

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    _check(path, ids, wins)
