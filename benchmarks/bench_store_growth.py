"""7. Store growth: listing pending requests and reading "events after N" with 1,000,000 events in
the log, against the same reads with 10,000 events (quick: 100,000 vs 10,000).

The scratch databases are built by the real store (``SQLiteStore`` runs its migrations on open),
then filled with direct SQL inserts in one transaction (the same columns the store writes; the
hash chain is not computed, so ``verify_audit`` would flag these rows: this is about read paths
only). Each database holds the same 1,000 pending requests; the rest of the log is decided
requests (a ``request.created`` and a ``request.decided`` event each). The reads go through the
real store API. ``EXPLAIN QUERY PLAN`` shows the index each read uses.

Target: the 1,000,000-event reads stay flat: p50 <= 1.5 x the 10,000-event p50, and no full scan.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import Result, make_result, median, ms, pct

NAME = "store_growth"
TITLE = "Store growth"
PENDING = 1000
T0 = time.time() - 2_000_000.0  # recent rows; pending ones expire in 30 days


def build(path: Path, events: int) -> float:
    """A store with ``events`` events (``events // 2`` requests, ``PENDING`` of them pending)."""
    from hitl_tui.store.sqlite import SQLiteStore

    SQLiteStore(path).close_sync()  # the real schema, by the store's own migrations
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")  # scratch data: durability is not what is measured
    conn.execute("BEGIN")
    n_req = events // 2
    args = json.dumps({"path": "/srv/app/config.yaml", "mode": "rw"})

    def requests() -> Any:
        for i in range(1, n_req + 1):
            pending = i > n_req - PENDING
            risk = ("low", "medium", "high", "critical")[i % 4]
            yield (i, f"agent-{i % 50}", f"tool_{i % 40}", args, f"summary {i}", risk, i % 4,
                   "pending" if pending else ("approved" if i % 3 else "denied"), T0 + i,
                   T0 + 30 * 86400 if pending else None, None if pending else T0 + i + 30,
                   None if pending else "alice")

    conn.executemany(
        "INSERT INTO requests(id, agent, tool, args, summary, risk, risk_rank, status, created_at, expires_at, "
        "decided_at, decided_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        requests(),
    )

    def event_rows() -> Any:
        seq = 0
        for i in range(1, n_req + 1):
            for kind in ("request.created", "request.decided"):
                seq += 1
                payload = json.dumps({"id": i, "tool": f"tool_{i % 40}", "status": "pending"})
                yield (seq, T0 + i, kind, f"request:{i}", "alice", payload, f"{seq - 1:064x}", f"{seq:064x}")

    conn.executemany(
        "INSERT INTO events(seq, at, kind, subject, actor, payload, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?)",
        event_rows(),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - started


def plans(path: Path, last: int) -> dict[str, str]:
    conn = sqlite3.connect(path)
    out = {}
    queries = {
        "list_pending": ("SELECT * FROM requests WHERE status = ? ORDER BY risk_rank DESC, id DESC LIMIT ? OFFSET ?",
                         ("pending", 100, 0)),
        "count_pending": ("SELECT COUNT(*) FROM requests WHERE status = ?", ("pending",)),
        "events_after": ("SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (last - 100, 1000)),
        "last_seq": ("SELECT COALESCE(MAX(seq), 0) FROM events", ()),
        "events_by_subject": ("SELECT seq FROM events WHERE subject = ? ORDER BY seq", ("request:5",)),
    }
    for name, (sql, params) in queries.items():
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        out[name] = "; ".join(r[-1] for r in rows)
    conn.close()
    return out


def full_scan(plan: str) -> bool:
    return any(part.strip().startswith("SCAN") and "USING" not in part for part in plan.split(";"))


async def measure(paths: list[Path], reps: int) -> list[dict[str, list[float]]]:
    """The reads on each store, interleaved (one of each per round), so noise hits all alike."""
    from hitl_tui.models import RequestStatus
    from hitl_tui.store.sqlite import SQLiteStore

    stores = [SQLiteStore(p) for p in paths]
    outs: list[dict[str, list[float]]] = [
        {"list_pending": [], "events_after_tail": [], "events_after_middle": [], "last_seq": []} for _ in paths
    ]
    try:
        lasts = [await s.last_seq() for s in stores]
        for store, last in zip(stores, lasts, strict=True):
            for _ in range(5):  # warm the page cache
                await store.list_requests(RequestStatus.pending, limit=100)
                await store.events_after(last - 100, 1000)
        for _ in range(reps):
            for store, last, out in zip(stores, lasts, outs, strict=True):
                t = time.perf_counter()
                page = await store.list_requests(RequestStatus.pending, limit=100)
                out["list_pending"].append(time.perf_counter() - t)
                assert page.total == PENDING and len(page.items) == 100
                t = time.perf_counter()
                evs = await store.events_after(last - 100, 1000)
                out["events_after_tail"].append(time.perf_counter() - t)
                assert len(evs) == 100
                t = time.perf_counter()
                evs = await store.events_after(last // 2, 100)
                out["events_after_middle"].append(time.perf_counter() - t)
                assert len(evs) == 100
                t = time.perf_counter()
                await store.last_seq()
                out["last_seq"].append(time.perf_counter() - t)
    finally:
        for store in stores:
            await store.close()
    return outs


def run(quick: bool) -> list[Result]:
    big_n = 100_000 if quick else 1_000_000
    small_n = 10_000
    reps = 100 if quick else 400
    with tempfile.TemporaryDirectory(prefix="bench-growth-") as tmp:
        small, big = Path(tmp) / "small.db", Path(tmp) / "big.db"
        build(small, small_n)
        build_s = build(big, big_n)
        small_t, big_t = asyncio.run(measure([small, big], reps))
        big_plans = plans(big, big_n)
        size_mb = big.stat().st_size / 1e6
    figures: dict[str, Any] = {"events": big_n, "db_mb": size_mb, "build_s": build_s}
    baseline: dict[str, Any] = {"events": small_n}
    checks: dict[str, bool] = {}
    ratios = []
    for key in ("list_pending", "events_after_tail", "events_after_middle", "last_seq"):
        b, s = median(big_t[key]), median(small_t[key])
        figures[f"{key}_p50_ms"] = ms(b)
        figures[f"{key}_p99_ms"] = ms(pct(big_t[key], 99))
        baseline[f"{key}_p50_ms"] = ms(s)
        ratios.append(b / s)
        # sub-millisecond reads: allow 0.2 ms of absolute noise besides the 1.5x
        checks[f"{key} flat (<= 1.5x or +0.2 ms)"] = b <= 1.5 * s or b - s <= 0.0002
    for name, plan in big_plans.items():
        figures[f"plan_{name}"] = plan
        checks[f"{name} uses an index"] = not full_scan(plan)
    return [
        make_result(
            f"store growth ({big_n:,} vs {small_n:,} events)",
            figures,
            baseline,
            ratio=max(ratios),
            ratio_of=f"worst read p50 at {big_n:,} events / at {small_n:,} events",
            target="reads at 1,000,000 events stay flat (p50 <= 1.5x the 10,000-event p50), every read indexed",
            checks=checks,
            notes=["scratch stores: schema by the store's migrations, rows by direct SQL inserts (no hash chain)"],
        )
    ]
