"""Autonomy over a real `hitl serve`: records from the HTTP event log, accepting a suggestion, and the
flag watcher on the SSE feed (an admin token demotes; a reviewer token may not, and keeps watching)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hitl_tui.autonomy import Autonomy, Dismissals, Suggestion, watch_flags
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


async def test_the_flag_watcher_on_the_sse_feed(team: Team, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(datetime.now(UTC) - timedelta(hours=2))
    store = SQLiteStore(_db(team), clock=clock)
    admin, reviewer = team.backend("root"), team.backend("alice")
    stop = asyncio.Event()
    demoted: list[Suggestion] = []
    got = asyncio.Event()

    def on_result(s: Suggestion) -> None:
        demoted.append(s)
        got.set()

    caplog.set_level(logging.WARNING, logger="hitl_tui.autonomy.demotion")
    try:
        await capability(store, "rm", Stage.autonomous)
        before = await store.last_seq()
        # a reviewer's console may not change stages: its watcher logs the refusal and goes on
        watching = asyncio.create_task(watch_flags(reviewer, AutonomySettings(), stop))
        await asyncio.sleep(0.5)  # subscribed at the log's end
        item = await store.log_review(ReviewCreate(agent="bot", tool="rm", result="rm -rf build"))
        await store.mark_review(item.id, ReviewMark(verdict="flagged", note="too much"), "bob")
        for _ in range(400):
            if "could not demote" in caplog.text:
                break
            await asyncio.sleep(0.05)
        assert f"could not demote after review #{item.id} was flagged" in caplog.text
        assert (await store.get_capability("rm")).stage is Stage.autonomous
        assert not watching.done()

        # an admin's watcher started from before the flag replays it from the log and demotes
        admin_watch = asyncio.create_task(
            watch_flags(admin, AutonomySettings(), stop, on_result=on_result, after_seq=before)
        )
        await asyncio.wait_for(got.wait(), 20)
        assert [(s.tool, s.applied, s.review_id) for s in demoted] == [("rm", True, item.id)]
        cap = await store.get_capability("rm")
        assert cap.stage is Stage.approval
        assert cap.history[-1].reason == f"auto-demoted: review #{item.id} flagged by bob: too much"
        assert not watching.done() and not admin_watch.done()
        stop.set()
        await asyncio.wait_for(asyncio.gather(watching, admin_watch), 20)
        assert len((await store.get_capability("rm")).history) == 2  # demoted once
    finally:
        stop.set()
        await admin.close()
        await reviewer.close()
        await store.close()
