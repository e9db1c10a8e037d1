"""The console's live path does only the work a change needs (issue #7, the round trip's tail).

A new request costs one list read and one frame: the tab count comes from the list's own read,
an event with the same data again re-renders nothing, the table's styles are derived once and
re-derived when focus or theme change them, and the start-up heap is kept out of the garbage
collector's full collections while the console runs (and given back when it ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.geometry import Region
from textual.message import Message

from hitl_tui.backend.local import LocalBackend
from hitl_tui.config import Settings
from hitl_tui.console import HitlConsole
from hitl_tui.console.widgets.approvals import ApprovalsPane
from hitl_tui.console.widgets.virtual_table import VirtualTable
from hitl_tui.models import DecisionIn, EscalationCreate, RequestCreate, RequestStatus, Risk
from tests.console_data import OTHER, REVIEWER, build, open_backend
from tests.test_console import settle, until

pytestmark = pytest.mark.timeout(60)


class CountingBackend(LocalBackend):
    """The real LocalBackend, noting which list reads it serves (count reads ask for one row)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads: list[tuple[str, int]] = []

    async def list_requests(self, *args: Any, **kwargs: Any) -> Any:
        self.reads.append(("requests", kwargs.get("limit", 100)))
        return await super().list_requests(*args, **kwargs)

    async def list_escalations(self, *args: Any, **kwargs: Any) -> Any:
        self.reads.append(("escalations", kwargs.get("limit", 100)))
        return await super().list_escalations(*args, **kwargs)

    async def list_reviews(self, *args: Any, **kwargs: Any) -> Any:
        self.reads.append(("reviews", kwargs.get("limit", 100)))
        return await super().list_reviews(*args, **kwargs)


@pytest.fixture
async def backend(db_path: Path, clock: Any) -> AsyncIterator[CountingBackend]:
    seed = open_backend(db_path, clock)
    await build(seed, clock)
    await seed.close()
    b = CountingBackend(open_backend(db_path, clock).store, actor=REVIEWER)
    yield b
    await b.close()


@pytest.fixture
async def other(db_path: Path, clock: Any, backend: LocalBackend) -> AsyncIterator[LocalBackend]:
    b = open_backend(db_path, clock, actor=OTHER)
    yield b
    await b.close()


class Console:
    def __init__(self, backend: Any, clock: Any) -> None:
        self.app = HitlConsole(backend, Settings(reviewer=REVIEWER), clock=clock)
        self.messages: list[Message] = []

    def of(self, kind: type[Message]) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind)]


@contextlib.asynccontextmanager
async def _opened(c: Console) -> AsyncIterator[Any]:
    async with c.app.run_test(size=(120, 40), message_hook=c.messages.append) as pilot:
        await c.app.wait_settled()
        await pilot.pause()
        yield pilot


def pane(app: HitlConsole) -> ApprovalsPane:
    return app.query_one(ApprovalsPane)


async def test_the_pending_count_comes_with_the_list_not_a_query_of_its_own(
    backend: CountingBackend, other: LocalBackend, clock: Any
) -> None:
    c = Console(backend, clock)
    async with _opened(c) as pilot:
        table = pane(c.app).table
        before = table.total
        assert c.app.counts.pending == before
        backend.reads.clear()
        new = await other.create_request(RequestCreate(agent="x", tool="rotate_keys", risk=Risk.low))
        await until(pilot, lambda: table.total == before + 1)
        await settle(c.app, pilot)
        assert c.app.counts.pending == before + 1 and backend.reads == []  # from the event alone
        await other.decide(new.id, DecisionIn(decision="approve"))
        await until(pilot, lambda: table.total == before)
        await settle(c.app, pilot)
        assert c.app.counts.pending == before
        assert ("requests", table.page_size) in backend.reads  # the list's read brought the count:
        assert ("requests", 1) not in backend.reads  # no count query of its own,
        assert not [r for r in backend.reads if r[0] != "requests"]  # nor of the other panes' counts


async def test_a_filtered_list_still_counts_every_pending_request(
    backend: CountingBackend, other: LocalBackend, clock: Any
) -> None:
    c = Console(backend, clock)
    async with _opened(c) as pilot:
        p = pane(c.app)
        pending = c.app.counts.pending
        await pilot.press("slash", *"tool:rotate_keys", "enter")
        await settle(c.app, pilot)
        assert p.table.total == 0 and not p.counts_pending
        backend.reads.clear()
        await other.create_request(RequestCreate(agent="x", tool="deploy", risk=Risk.low))
        await until(pilot, lambda: c.app.counts.pending == pending + 1)
        assert ("requests", 1) in backend.reads  # the list no longer holds every pending request
        assert p.table.total == 0  # and the filtered list is unchanged


async def test_an_escalation_recounts_only_escalations(
    backend: CountingBackend, other: LocalBackend, clock: Any
) -> None:
    c = Console(backend, clock)
    async with _opened(c) as pilot:
        waiting = c.app.counts.escalations
        backend.reads.clear()
        await other.create_escalation(EscalationCreate(agent="x", message="stuck on the migration"))
        await until(pilot, lambda: c.app.counts.escalations == waiting + 1)
        await settle(c.app, pilot)
        assert ("escalations", 1) in backend.reads
        assert ("requests", 1) not in backend.reads and ("reviews", 1) not in backend.reads


async def test_the_same_data_again_is_no_news(backend: CountingBackend, other: LocalBackend, clock: Any) -> None:
    c = Console(backend, clock)
    async with _opened(c) as pilot:
        p = pane(c.app)
        table = p.table
        shown = table.cursor_item
        assert shown is not None and p.detail.request == shown
        highlighted = len(c.of(VirtualTable.Highlighted))
        reloaded = len(c.of(VirtualTable.Reloaded))
        # a reload reads the same rows again: nothing to announce
        backend.reads.clear()
        table.reload()
        await settle(c.app, pilot)
        assert backend.reads and len(c.of(VirtualTable.Reloaded)) > reloaded
        assert table.cursor_item == shown
        # nor is the same data from an event (a fresh, equal object)
        assert table.update_item(shown.model_copy(deep=True))
        await settle(c.app, pilot)
        assert table.cursor_item is not shown and table.cursor_item == shown
        assert len(c.of(VirtualTable.Highlighted)) == highlighted
        # new data for the row under the cursor is announced, and the detail shows it
        await other.decide(shown.id, DecisionIn(decision="deny", reason="not now"))
        await until(pilot, lambda: p.detail.request is not None and p.detail.request.status is RequestStatus.denied)
        assert len(c.of(VirtualTable.Highlighted)) > highlighted


async def test_the_cursor_row_restyles_on_focus_and_theme(backend: CountingBackend, clock: Any) -> None:
    c = Console(backend, clock)
    async with _opened(c) as pilot:
        table = pane(c.app).table
        width = table.size.width
        y = table.cursor - int(table.scroll_y) + 1

        def cursor_line() -> Any:
            return table.render_lines(Region(0, y, width, 1))[0]

        def styles(strip: Any) -> set[Any]:
            return {seg.style for seg in strip}

        assert table.has_focus
        focused = cursor_line()
        assert cursor_line().text == focused.text and styles(cursor_line()) == styles(focused)
        c.app.set_focus(None)
        await pilot.pause()
        blurred = cursor_line()
        assert blurred.text == focused.text and styles(blurred) != styles(focused)
        table.focus()
        await pilot.pause()
        assert styles(cursor_line()) == styles(focused)
        c.app.theme = "textual-light" if c.app.theme != "textual-light" else "textual-dark"
        await pilot.pause()
        assert styles(cursor_line()) != styles(focused)


async def test_the_start_up_heap_is_frozen_while_the_console_runs(backend: CountingBackend, clock: Any) -> None:
    assert gc.get_freeze_count() == 0
    c = Console(backend, clock)
    async with _opened(c) as pilot:
        await until(pilot, lambda: gc.get_freeze_count() > 0)
        frozen = gc.get_freeze_count()
        await pilot.press("down", "up", "2", "1")
        await settle(c.app, pilot)
        assert gc.get_freeze_count() <= frozen  # once, at start-up (frozen objects may still die)
    assert gc.get_freeze_count() == 0  # given back: collectable again


async def test_a_new_request_shows_from_its_event_in_its_place_without_a_read(
    backend: CountingBackend, other: LocalBackend, clock: Any
) -> None:
    c = Console(backend, clock)
    async with _opened(c) as pilot:
        table = pane(c.app).table
        before = [i.id for i in table.loaded_items()]
        backend.reads.clear()
        new = await other.create_request(RequestCreate(agent="x", tool="wipe_disk", risk=Risk.high))
        await until(pilot, lambda: table.index_of(new.id) is not None)
        await settle(c.app, pilot)
        assert backend.reads == []  # the event was enough: the rows are the last read plus every event since
        page = await other.list_requests(RequestStatus.pending, limit=table.page_size)
        assert [i.id for i in table.loaded_items()] == [r.id for r in page.items]  # where the stores' order puts it
        assert sorted(r.id for r in page.items) == sorted([*before, new.id])
        assert table.total == page.total == c.app.counts.pending


async def test_a_read_in_flight_when_a_request_arrives_is_read_again(
    backend: CountingBackend, other: LocalBackend, clock: Any
) -> None:
    c = Console(backend, clock)
    async with _opened(c) as pilot:
        table = pane(c.app).table
        gate = asyncio.Event()
        read = backend.list_requests

        async def held(*args: Any, **kwargs: Any) -> Any:  # this read answers only once the gate opens
            page = await read(*args, **kwargs)
            await gate.wait()
            return page

        backend.list_requests = held  # type: ignore[method-assign]
        victim = table.item_at(table.row_count - 1)
        table.reload()  # in flight, and about to be out of date:
        await until(pilot, lambda: table.reading and backend.reads != [])
        await other.decide(victim.id, DecisionIn(decision="deny", reason="stale"))
        new = await other.create_request(RequestCreate(agent="x", tool="wipe_disk", risk=Risk.critical))
        await until(pilot, lambda: table.index_of(new.id) is not None)  # shown while the read is held
        swapped: list[bool] = []  # from now on, does every set of rows shown hold it?
        swap = table._swap

        def noting(pages: dict[int, list[Any]], total: int, **kwargs: Any) -> None:
            swapped.append(any(i.id == new.id for page in pages.values() for i in page))
            swap(pages, total, **kwargs)

        table._swap = noting  # type: ignore[method-assign]
        backend.reads.clear()
        gate.set()
        await until(pilot, lambda: not table.reading and backend.reads != [])  # read again
        await settle(c.app, pilot)
        page = await other.list_requests(RequestStatus.pending, limit=table.page_size)
        assert [i.id for i in table.loaded_items()] == [r.id for r in page.items]
        assert table.index_of(victim.id) is None and table.total == page.total == c.app.counts.pending
        assert swapped and all(swapped)  # the older read was dropped, never shown over the new row


async def test_a_request_decided_before_the_console_saw_it_does_not_stay(
    backend: CountingBackend, other: LocalBackend, clock: Any
) -> None:
    c = Console(backend, clock)
    async with _opened(c) as pilot:
        table = pane(c.app).table
        total = table.total
        new = await other.create_request(RequestCreate(agent="x", tool="wipe_disk", risk=Risk.critical))
        await other.decide(new.id, DecisionIn(decision="deny", reason="no"))
        await until(pilot, lambda: c.app.feed.last_seq is not None and c.app.feed.last_seq >= new.id)
        await settle(c.app, pilot)
        await until(pilot, lambda: table.index_of(new.id) is None and table.total == total)


async def test_the_clock_tick_repaints_only_rows_whose_text_moved(backend: CountingBackend, clock: Any) -> None:
    c = Console(backend, clock)
    async with _opened(c) as pilot:
        table = pane(c.app).table
        painted: list[int] = []  # table lines rendered, frame after frame
        render_line = table.render_line

        def counting(y: int) -> Any:
            painted.append(y)
            return render_line(y)

        table.render_line = counting  # type: ignore[method-assign]
        table.refresh()
        await settle(c.app, pilot)
        assert painted  # the hook sees the table's frames
        assert table.refresh_changed() == 0  # the same clock: every row reads as painted
        painted.clear()
        c.app._tick()
        await pilot.pause(0.1)
        assert painted == []  # a quiet list repaints nothing
        clock.advance(1)  # countdowns under an hour show seconds
        expiring = [i for i in table.loaded_items() if i.expires_at is not None]
        assert expiring
        c.app._tick()
        await pilot.pause(0.1)
        assert painted and len(set(painted)) < table.size.height  # those rows, not the whole table


async def test_the_detail_re_renders_on_the_tick_only_when_its_countdown_moves(
    backend: CountingBackend, other: LocalBackend, clock: Any
) -> None:
    c = Console(backend, clock)
    async with _opened(c) as pilot:
        p = pane(c.app)
        new = await other.create_request(RequestCreate(agent="x", tool="wipe_disk", risk=Risk.critical, timeout_s=7200))
        await until(pilot, lambda: p.table.index_of(new.id) is not None)
        p.table.move_cursor(p.table.index_of(new.id))
        await settle(c.app, pilot)
        assert p.detail.request is not None and p.detail.request.id == new.id
        shows: list[int] = []
        show = p.detail.show

        def counting(req: Any, now: Any, reviewer: str) -> None:
            shows.append(req.id)
            show(req, now, reviewer)

        p.detail.show = counting  # type: ignore[method-assign]
        clock.advance(150)  # "created ... (2m ago)", "expires in 1h57m" (30 s into both minutes)
        c.app._tick()
        assert shows == [new.id]
        clock.advance(1)  # neither moves in a second
        c.app._tick()
        assert shows == [new.id]
        clock.advance(60)  # a minute later both do
        c.app._tick()
        assert shows == [new.id, new.id]
        assert "1h56m" in str(p.detail._body.render())
