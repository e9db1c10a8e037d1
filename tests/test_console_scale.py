"""The capability pane on a long event log: 400,000 events (200 of the console's 2,000-event slices)
folded a slice at a time while keys work, then kept current by reading only what is new. Slow:
``-m slow``. The slice mechanics do not depend on the size: a longer log is only more slices."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hitl_tui.config import Settings
from hitl_tui.console import HitlConsole
from hitl_tui.console.widgets.capabilities import CapabilitiesPane
from hitl_tui.models import DecisionIn, RequestStatus
from hitl_tui.store.base import event_hash
from tests.console_data import NOW, OTHER, REVIEWER, Clock, build, open_backend

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

HISTORY = 400_000  # 200 slices of the real fold (held between two of them while keys are pressed)
DAYS = 25


@pytest.fixture(autouse=True)
def _dismissals_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITL_AUTONOMY_FILE", str(tmp_path / "dismissed.json"))


def append_decisions(path: Path, template: dict[str, Any], count: int) -> None:
    """Append ``count`` approvals of ``template``'s tool to the log, hash chain intact, in one transaction:
    each one ``i % DAYS`` days before NOW, decided 40 s after it was asked, at confidence 95."""
    conn = sqlite3.connect(path)
    try:
        seq, prev = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        rows = []
        for i in range(count):
            seq += 1
            decided = NOW - timedelta(days=i % DAYS, seconds=i % 3600 + 1)
            created = decided - timedelta(seconds=40)
            payload = {
                **template,
                "id": 10_000_000 + i,
                "confidence": 95,
                "created_at": created.isoformat().replace("+00:00", "Z"),
                "decided_at": decided.isoformat().replace("+00:00", "Z"),
            }
            text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
            at = decided.timestamp()
            h = event_hash(prev, seq, at, "request.decided", f"request:{payload['id']}", OTHER, text)
            rows.append((seq, at, "request.decided", f"request:{payload['id']}", OTHER, text, prev, h))
            prev = h
        conn.executemany(
            "INSERT INTO events(seq, at, kind, subject, actor, payload, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?)",
            rows,
        )
        conn.commit()
    finally:
        conn.close()


async def test_a_long_event_log_folds_in_slices_and_then_incrementally(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    clock = Clock()
    writer = open_backend(path, clock)
    await build(writer, clock)
    first = next(e for e in await writer.events_after(0, 1000) if e.kind == "request.decided")
    await writer.close()
    append_decisions(path, first.payload, HISTORY)

    backend = open_backend(path, clock)
    other = open_backend(path, clock, actor=OTHER)
    try:
        app = HitlConsole(backend, Settings(reviewer=REVIEWER), clock=clock)
        # The real fold, held between two slices while the keys below are pressed: on a fast machine
        # the whole log could otherwise be folded before the third key lands (seen once in CI).
        keys_done = asyncio.Event()
        fold_slice = app.evidence.autonomy.refresh

        async def held(**kwargs: Any) -> int:
            if app.evidence.folding:  # a slice was folded and the loop given back: wait for the keys
                await keys_done.wait()
            return await fold_slice(**kwargs)

        app.evidence.autonomy.refresh = held  # type: ignore[method-assign]
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("4")
            pane = app.query_one(CapabilitiesPane)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 600
            while not app.evidence.folding:  # a fold in one go (no slices) never shows as folding
                assert loop.time() < deadline - 480, "the log was not folded a slice at a time"
                await pilot.pause(0.01)
            # the log is being read: the reviewer still moves around and the title says what happens
            await pilot.press("1")
            assert app.active_pane.PANE_ID == "approvals" and app.evidence.folding
            await pilot.press("4", "j")
            assert app.active_pane.PANE_ID == "capabilities" and app.evidence.folding
            assert "reading the event log" in str(pane.query_one("ListBox").border_title)
            keys_done.set()
            while app.evidence.folding or "deploy" not in pane.evidence:
                assert loop.time() < deadline
                await pilot.pause(0.05)
            record = pane.evidence["deploy"].record
            assert record.approved == HISTORY + 2 and record.denied == 1  # plus build's own two and one
            assert record.median_decision_s == 40
            assert app.evidence.events_read == await backend.last_seq()

            # live from here: one more decision costs the new events, not another million
            read = app.evidence.events_read
            pending = (await other.list_requests(RequestStatus.pending, tool="deploy")).items[0]
            await other.decide(pending.id, DecisionIn(decision="approve", reason="ship it"))
            while pane.evidence["deploy"].record.approved != HISTORY + 3:
                assert loop.time() < deadline
                await pilot.pause(0.02)
            assert app.evidence.events_read - read == await backend.last_seq() - read
    finally:
        await other.close()
        await backend.close()
