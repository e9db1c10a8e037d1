"""Prometheus metrics in the text exposition format (hand-written: three series need no library).

* ``hitl_requests_pending``: pending requests in the store, read when scraped;
* ``hitl_decisions_total{outcome}``: requests settled since this process started, by outcome
  (approved, denied, expired, cancelled), counted from the change feed;
* ``hitl_decision_latency_seconds``: time from filing to settling, as a histogram;
* ``hitl_long_polls_active``: agents waiting on this process right now;
* ``hitl_store_write_batches_total`` / ``hitl_store_writes_total`` (SQLite): transactions this
  process committed and the writes they carried (their ratio is the mean group-commit size), and
  ``hitl_store_commit_seconds_total``, the time those COMMITs took (the fsync, mostly).

The counters follow the shared event log, so every replica on one PostgreSQL counts every
decision: aggregate replicas with ``max()``, not ``sum()``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime

from ..models import Event, EventKind

log = logging.getLogger("hitl_tui.server")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)
OUTCOMES = ("approved", "denied", "expired", "cancelled")
_SETTLING = {EventKind.request_decided, EventKind.request_expired, EventKind.request_cancelled}


def _fmt(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if value != int(value) else str(int(value))


class Metrics:
    def __init__(self) -> None:
        self.decisions = dict.fromkeys(OUTCOMES, 0)
        self.bucket_counts = [0] * len(LATENCY_BUCKETS)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.long_polls = 0  # waits in progress right now

    def observe_event(self, ev: Event) -> None:
        if ev.kind not in _SETTLING:
            return
        status = ev.payload.get("status")
        if status not in self.decisions:
            return
        self.decisions[status] += 1
        try:
            created = datetime.fromisoformat(ev.payload["created_at"])
            settled = datetime.fromisoformat(ev.payload.get("decided_at") or ev.at.isoformat())
        except (KeyError, TypeError, ValueError):
            return
        self.observe_latency(max(0.0, (settled - created).total_seconds()))

    def observe_latency(self, seconds: float) -> None:
        self.latency_sum += seconds
        self.latency_count += 1
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.bucket_counts[i] += 1

    def render(self, pending: int, store: object | None = None) -> str:
        lines = [
            "# HELP hitl_requests_pending Approval requests waiting for a decision.",
            "# TYPE hitl_requests_pending gauge",
            f"hitl_requests_pending {pending}",
            "# HELP hitl_long_polls_active Agents waiting on this server right now (open long-polls).",
            "# TYPE hitl_long_polls_active gauge",
            f"hitl_long_polls_active {self.long_polls}",
            "# HELP hitl_decisions_total Approval requests settled since this server started, by outcome.",
            "# TYPE hitl_decisions_total counter",
        ]
        lines += [f'hitl_decisions_total{{outcome="{o}"}} {n}' for o, n in self.decisions.items()]
        lines += [
            "# HELP hitl_decision_latency_seconds Time from filing a request to its decision.",
            "# TYPE hitl_decision_latency_seconds histogram",
        ]
        lines += [
            f'hitl_decision_latency_seconds_bucket{{le="{_fmt(b)}"}} {n}'
            for b, n in zip(LATENCY_BUCKETS, self.bucket_counts, strict=True)
        ]
        lines += [
            f'hitl_decision_latency_seconds_bucket{{le="+Inf"}} {self.latency_count}',
            f"hitl_decision_latency_seconds_sum {_fmt(self.latency_sum)}",
            f"hitl_decision_latency_seconds_count {self.latency_count}",
        ]
        batches, writes = getattr(store, "write_batches", None), getattr(store, "writes_committed", None)
        if isinstance(batches, int) and isinstance(writes, int):
            lines += [
                "# HELP hitl_store_write_batches_total Write transactions committed by this server (group commits).",
                "# TYPE hitl_store_write_batches_total counter",
                f"hitl_store_write_batches_total {batches}",
                "# HELP hitl_store_writes_total Writes committed by this server, over all its write transactions.",
                "# TYPE hitl_store_writes_total counter",
                f"hitl_store_writes_total {writes}",
                "# HELP hitl_store_commit_seconds_total Time this server's write transactions spent committing.",
                "# TYPE hitl_store_commit_seconds_total counter",
                f"hitl_store_commit_seconds_total {_fmt(float(getattr(store, 'commit_seconds', 0.0)))}",
            ]
        return "\n".join(lines) + "\n"


async def follow_feed(backend: object, metrics: Metrics) -> None:
    """Count settled requests from the change feed for as long as the server runs; when the
    store goes away, retry with backoff and resume where it left off (nothing counted twice)."""
    from ..backend.local import LocalBackend

    assert isinstance(backend, LocalBackend)
    last: int | None = None
    delay = 0.5
    while True:
        try:
            if last is None:
                last = await backend.last_seq()
            async for ev in backend.subscribe(last, kinds=_SETTLING):
                last = ev.seq
                delay = 0.5
                metrics.observe_event(ev)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # keep counting once the store is back
            log.warning("metrics: change feed interrupted (%s); retrying in %.1fs", exc, delay)
        await asyncio.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 30.0)
