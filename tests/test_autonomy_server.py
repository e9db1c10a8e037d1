"""Autonomy over a real `hitl serve`: records from the HTTP event log, accepting a suggestion, and the
flag watcher: the server demotes on a flag itself; other watchers on the SSE feed stay idempotent."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hitl_tui.autonomy import Autonomy, Dismissals, watch_flags
from hitl_tui.config import AutonomySettings
from hitl_tui.models import ReviewCreate, ReviewMark, Stage
from hitl_tui.store.sqlite import SQLiteStore

from .conftest import FakeClock
from .server_utils import Team
from .server_utils import server as server  # fixtures, re-exported
from .server_utils import team as team
from .test_autonomy_support import approvals, capability

FEW = AutonomySettings(min_approvals=3)


def _db(team: Team) -> Path:
    return Path(team.server.store_url.removeprefix("sqlite:///"))


async def test_records_suggestions_and_accept_over_http(team: Team, tmp_path: Path) -> None:
    clock = FakeClock(datetime.now(UTC) - timedelta(hours=2))
    store = SQLiteStore(_db(team), clock=clock)  # a second process on the server's store file
    try:
        await capability(store, "deploy")
        await approvals(store, clock, "deploy", 3, after=30)
    finally:
        await store.close()
    backend = team.backend("root")
    try:
        autonomy = Autonomy(backend, FEW, dismissals=Dismissals(backend.describe(), tmp_path / "d.json"))
        assert await autonomy.refresh() > 0
        [s] = autonomy.suggestions()
        assert s.evidence == "3 approved, 0 denied, 0 edited, 0 flagged in 30 days; median decision 30 s"
        cap = await autonomy.accept(s, reason="over http")
        assert cap.stage is Stage.autonomous
        assert cap.history[-1].reason == f"accepted suggestion: {s.evidence} (over http)"
        assert await autonomy.refresh() == 1  # just the stage change
        assert autonomy.suggestions() == []
    finally:
        await backend.close()


async def test_the_server_demotes_on_a_flag_and_other_watchers_stay_idempotent(
    team: Team, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(datetime.now(UTC) - timedelta(hours=2))
    store = SQLiteStore(_db(team), clock=clock)
    admin, reviewer = team.backend("root"), team.backend("alice")
    stop = asyncio.Event()
    caplog.set_level(logging.WARNING, logger="hitl_tui.autonomy.demotion")
    try:
        await capability(store, "rm", Stage.autonomous)
        before = await store.last_seq()
        # a reviewer's console watches too (it may not change stages itself)
        watching = asyncio.create_task(watch_flags(reviewer, AutonomySettings(), stop))
        await asyncio.sleep(0.5)  # subscribed at the log's end
        item = await store.log_review(ReviewCreate(agent="bot", tool="rm", result="rm -rf build"))
        await store.mark_review(item.id, ReviewMark(verdict="flagged", note="too much"), "bob")
        # `hitl serve` runs its own flag watcher ([autonomy] demote_on_flag = "act"): it demotes
        for _ in range(400):
            cap = await store.get_capability("rm")
            if cap.stage is Stage.approval:
                break
            await asyncio.sleep(0.05)
        assert cap.stage is Stage.approval
        assert (cap.history[-1].actor, cap.history[-1].reason) == (
            "system",
            f"auto-demoted: review #{item.id} flagged by bob: too much",
        )
        # an admin's watcher replaying the log from before the flag finds it done already
        admin_watch = asyncio.create_task(watch_flags(admin, AutonomySettings(), stop, after_seq=before))
        await asyncio.sleep(1.0)
        assert not watching.done() and not admin_watch.done()
        assert "could not demote" not in caplog.text  # the reviewer's watcher had nothing left to do
        stop.set()
        await asyncio.wait_for(asyncio.gather(watching, admin_watch), 20)
        assert len((await store.get_capability("rm")).history) == 2  # demoted exactly once
    finally:
        stop.set()
        await admin.close()
        await reviewer.close()
        await store.close()
