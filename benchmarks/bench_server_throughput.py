"""3. Server throughput: approval requests created per second over HTTP, 32 concurrent clients.

A real ``hitl serve`` (uvloop + httptools) on a SQLite store and on a PostgreSQL store; the load
generator runs in another process (``wrk`` with a Lua script for the POST body when installed,
else an asyncio client). Every request is authenticated with an agent token and validated.

Baselines in the same run:

* a no-op FastAPI endpoint with the same body validation (``RequestCreate``) and the same server
  settings (``benchmarks/noop_app.py``): our rate as a fraction of it (target >= 60%);
* the raw single-row insert-and-commit rate of ``sqlite3`` with the store's durability settings
  (WAL, ``synchronous=FULL``), one commit per row.

Durability: right after the load the server is SIGKILLed (no shutdown), the store reopened and its
rows counted: every acknowledged (2xx) request must be there.

Group commit: the server's ``/metrics`` (SQLite) count its write transactions and the writes they
carried, and the time spent committing; read before and after the load, they give the mean batch
size and the mean COMMIT (fsync) time under load.

Target: >= 2,000 requests/s on SQLite with 2 cores, and >= 60% of the no-op endpoint.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import (
    Result,
    Server,
    drop_pg_schema,
    env,
    free_port,
    fresh_pg_schema,
    make_result,
    make_tokens,
    postgres_available,
    sqlite_url,
)
from .loadgen import load, wrk_available

NAME = "server_throughput"
TITLE = "Server throughput"
CONNECTIONS = 32
BODY = json.dumps(
    {"agent": "bot", "tool": "deploy", "args": {"env": "prod", "service": "api", "version": "1.4.2"},
     "summary": "deploy api 1.4.2 to prod", "risk": "high", "confidence": 72}
)


def raw_sqlite_rate(path: Path, seconds: float) -> float:
    """Single-row insert + commit per row, WAL + synchronous=FULL (the store's settings)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, agent TEXT, tool TEXT, args TEXT, status TEXT)")
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t(agent, tool, args, status) VALUES (?,?,?,?)", ("bot", "deploy", BODY, "pending"))
        conn.execute("COMMIT")
        n += 1
    took = time.perf_counter() - start
    conn.close()
    return n / took


def count_requests(store_url: str) -> int:
    from hitl_tui.cli.serve import open_store_at

    async def go() -> int:
        store = open_store_at(store_url)
        try:
            page = await store.list_requests(None, limit=1)
            return page.total
        finally:
            await store.close()

    return asyncio.run(go())


def store_counters(url: str, token: str) -> dict[str, float]:
    """The group-commit counters from /metrics (absent on PostgreSQL: then empty)."""
    import httpx

    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30).text
    out = {}
    for name in ("hitl_store_write_batches_total", "hitl_store_writes_total", "hitl_store_commit_seconds_total"):
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        if m:
            out[name] = float(m.group(1))
    return out


def measure_server(store_url: str, workdir: Path, seconds: float) -> dict[str, Any]:
    tokens = make_tokens(store_url, {"bot": "agent"})
    server = Server(store_url, workdir).start()
    try:
        load(f"{server.url}/v1/requests", BODY, tokens["bot"], CONNECTIONS, 1.0)  # warm up (and fill a little)
        before = count_requests(store_url)
        counters = store_counters(server.url, tokens["bot"])
        stats = load(f"{server.url}/v1/requests", BODY, tokens["bot"], CONNECTIONS, seconds)
        after = store_counters(server.url, tokens["bot"])
        if counters and after:
            batches = after["hitl_store_write_batches_total"] - counters["hitl_store_write_batches_total"]
            writes = after["hitl_store_writes_total"] - counters["hitl_store_writes_total"]
            commit_s = after["hitl_store_commit_seconds_total"] - counters["hitl_store_commit_seconds_total"]
            stats["mean_batch"] = writes / batches if batches else 0.0
            stats["commit_ms_mean"] = 1000 * commit_s / batches if batches else 0.0
        rss = server.rss_kib() / 1024
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.send_signal(signal.SIGKILL)  # a crash: nothing gets flushed on the way out
            server.proc.wait(10)
    stored = count_requests(store_url) - before
    stats["stored_after_kill"] = stored
    stats["durable"] = stored >= stats["ok"]
    stats["rss_mb"] = rss
    return stats


def measure_noop(workdir: Path, seconds: float) -> dict[str, Any]:
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.noop_app", str(port)], env=env(),
                            cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        give_up = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > give_up:
                    raise
                time.sleep(0.05)
        load(f"http://127.0.0.1:{port}/v1/requests", BODY, None, CONNECTIONS, 1.0)
        return load(f"http://127.0.0.1:{port}/v1/requests", BODY, None, CONNECTIONS, seconds)
    finally:
        proc.terminate()
        proc.wait(10)


def run(quick: bool) -> list[Result]:
    seconds = 2.0 if quick else 10.0
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        work = Path(tmp)
        noop = measure_noop(work, seconds)
        raw = raw_sqlite_rate(work / "raw.db", min(seconds, 3.0))
        ours = measure_server(sqlite_url(work / "server.db"), work, seconds)
        # the baseline again, after: noise shows as a spread (skipped when quick)
        noop_after = noop if quick else measure_noop(work, seconds)
        noop_rate = (noop["rate"] + noop_after["rate"]) / 2
        gen = "wrk" if wrk_available() else "asyncio client"
        base = {"noop_fastapi_req_s": noop_rate, "noop_before_req_s": noop["rate"],
                "noop_after_req_s": noop_after["rate"], "noop_p50_ms": noop["p50_ms"],
                "raw_sqlite_commit_per_s": raw}
        figs = {"req_s": ours["rate"], "p50_ms": ours["p50_ms"], "p99_ms": ours["p99_ms"],
                "acknowledged": ours["ok"], "non2xx": ours["non2xx"], "errors": ours["errors"],
                "stored_after_sigkill": ours["stored_after_kill"], "server_rss_mb": ours["rss_mb"],
                "fraction_of_noop": ours["rate"] / noop_rate, "x_raw_sqlite_commits": ours["rate"] / raw,
                "mean_write_batch": ours.get("mean_batch", 0.0), "commit_ms_mean": ours.get("commit_ms_mean", 0.0)}
        results.append(
            make_result(
                "server throughput (SQLite)",
                figs,
                base,
                ratio=ours["rate"] / noop_rate,
                ratio_of="our req/s / no-op FastAPI endpoint req/s",
                target=">= 2,000 req/s and >= 60% of the no-op endpoint; every acknowledged request durable",
                checks={">= 2000 req/s": ours["rate"] >= 2000, ">= 60% of no-op": ours["rate"] >= 0.6 * noop_rate,
                        "all acknowledged stored after SIGKILL": ours["durable"], "no errors": ours["non2xx"] == 0},
                notes=[f"{CONNECTIONS} connections, {seconds:.0f} s, load generator: {gen} (separate process)"],
            )
        )
        why_not = postgres_available()
        if why_not is None:
            url, schema = fresh_pg_schema()
            try:
                pg = measure_server(url, work, seconds)
            finally:
                drop_pg_schema(schema)
            results.append(
                make_result(
                    "server throughput (PostgreSQL)",
                    {"req_s": pg["rate"], "p50_ms": pg["p50_ms"], "p99_ms": pg["p99_ms"], "acknowledged": pg["ok"],
                     "non2xx": pg["non2xx"], "stored_after_sigkill": pg["stored_after_kill"],
                     "fraction_of_noop": pg["rate"] / noop_rate},
                    {"noop_fastapi_req_s": noop_rate},
                    ratio=pg["rate"] / noop_rate,
                    ratio_of="our req/s / no-op FastAPI endpoint req/s",
                    target="reported (the 2,000/s target is for SQLite); every acknowledged request durable",
                    checks={"all acknowledged stored after SIGKILL": pg["durable"], "no errors": pg["non2xx"] == 0},
                    notes=[f"{CONNECTIONS} connections, {seconds:.0f} s, PostgreSQL on loopback (same 2 cores)"],
                )
            )
        else:
            results.append(
                make_result("server throughput (PostgreSQL)", {"skipped": why_not}, {}, ratio=None, ratio_of="",
                            target="reported", checks={"PostgreSQL reachable": False},
                            notes=[f"PostgreSQL not reachable: {why_not}"])
            )
    return results
