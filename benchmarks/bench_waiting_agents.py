"""4. Waiting agents: 10,000 agents (quick: 500) wait at once on one ``hitl serve`` process, then a
reviewer decides every request over HTTP.

The agents run in a separate process (``benchmarks/agents_proc.py``: each files its own request and
long-polls for it on its own connection); the reviewer decides from this process on 32 keep-alive
connections. Reported: server RSS while they all wait (target <= 1 GB), that every agent got its
decision, the time from the last decision (acknowledged) to the last agent unblocked, and each
agent's own decision -> unblocked latency.

Baseline (same run): the same with 100 agents (quick: 50), so the ratio shows what scale costs the waiters.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import ROOT, Result, Server, env, make_result, make_tokens, ms, pct, sqlite_url
from .rawhttp import Conn

NAME = "waiting_agents"
TITLE = "Waiting agents"


async def _decide_all(port: int, token: str, ids: list[int]) -> dict[int, float]:
    acked: dict[int, float] = {}
    queue = list(reversed(ids))

    async def worker() -> None:
        c = await Conn("127.0.0.1", port, token).open()
        try:
            while queue:
                rid = queue.pop()
                status, body = await c.request("POST", f"/v1/requests/{rid}/decision", {"decision": "approve"})
                assert status == 200, (status, body)
                acked[rid] = time.monotonic()
        finally:
            c.close()

    await asyncio.gather(*(worker() for _ in range(32)))
    return acked


def one_run(agents: int, work: Path) -> dict[str, Any]:
    store = sqlite_url(work / f"wait-{agents}.db")
    tokens = make_tokens(store, {"bot": "agent", "alice": "reviewer"})
    with Server(store, work) as server:
        idle_rss = server.rss_kib() / 1024
        args = json.dumps({"port": server.port, "token": tokens["bot"], "admin": tokens["alice"], "agents": agents})
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.agents_proc", args], env=env(), cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            t0 = time.monotonic()
            line = proc.stdout.readline() if proc.stdout else ""
            if not line:
                raise RuntimeError(f"agents failed: {proc.stderr.read() if proc.stderr else ''}")
            ids = json.loads(line)["ids"]
            ready_s = time.monotonic() - t0
            time.sleep(0.5)
            waiting_rss = server.rss_kib() / 1024
            acked = asyncio.run(_decide_all(server.port, tokens["alice"], ids))
            out, _err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
        peak_rss = server.rss_kib("VmHWM") / 1024
    result = json.loads(out.strip().splitlines()[-1])
    unblocked = {int(k): v for k, v in result["unblocked"].items()}
    per_agent = [unblocked[i] - acked[i] for i in ids if i in unblocked]
    return {
        "agents": agents,
        "decided": len(acked),
        "unblocked": len(unblocked),
        "all_approved": result["statuses"] == {"approved": agents},
        "setup_s": ready_s,
        "decide_all_s": max(acked.values()) - min(acked.values()),
        "last_decision_to_last_unblocked_ms": ms(max(unblocked.values()) - max(acked.values())),
        "decision_to_unblocked_p50_ms": ms(pct(per_agent, 50)),
        "decision_to_unblocked_p99_ms": ms(pct(per_agent, 99)),
        "server_rss_idle_mb": idle_rss,
        "server_rss_waiting_mb": waiting_rss,
        "server_rss_peak_mb": peak_rss,
    }


def run(quick: bool) -> list[Result]:
    n = 500 if quick else 10_000
    with tempfile.TemporaryDirectory(prefix="bench-waiting-") as tmp:
        work = Path(tmp)
        base = one_run(50 if quick else 100, work)
        ours = one_run(n, work)
    return [
        make_result(
            f"waiting agents ({n:,} on one server)",
            {k: v for k, v in ours.items()},
            {f"{k}": v for k, v in base.items() if k != "all_approved"},
            ratio=ours["decision_to_unblocked_p50_ms"] / base["decision_to_unblocked_p50_ms"],
            ratio_of=f"decision -> unblocked p50 with {n:,} agents / with {base['agents']} agents",
            target="every agent receives its decision; server RSS <= 1 GB; last decision -> last unblocked reported",
            checks={
                "every agent got its decision": ours["unblocked"] == n and ours["all_approved"],
                "server RSS <= 1 GB": ours["server_rss_peak_mb"] <= 1024,
            },
            notes=[f"{n:,} agents in a separate process, each with its own long-poll connection; "
                   "decisions from 32 reviewer connections"],
        )
    ]
