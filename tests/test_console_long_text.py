"""Long agent text in the console: the detail panels are bounded, ``v`` shows everything.

A detail panel re-renders on each countdown tick and live update, so it shows at most about
``DETAIL_CHARS`` characters whatever an agent sent, cuts with a ``… N more characters`` marker and
says ``press v to view all``. ``v`` opens a viewer that renders only the rows on screen, where the
last character of a 1 MB argument is reachable with ``end``. All of it stays sanitised, literal text.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from textual.app import App, ComposeResult
from textual.pilot import Pilot

from hitl_tui.backend.local import LocalBackend
from hitl_tui.config import Settings
from hitl_tui.console.adapters import json_content, safe_json
from hitl_tui.console.preview import DETAIL_CHARS, SHOWN_IN_PART, VIEW_ALL, json_preview, text_preview
from hitl_tui.console.screens.text_view import TextViewScreen
from hitl_tui.console.widgets.approvals import ApprovalsPane
from hitl_tui.console.widgets.chat_view import THREAD_WINDOW, MessageBubble, message_content
from hitl_tui.console.widgets.escalations import EscalationsPane
from hitl_tui.console.widgets.request_detail import request_content, request_full_text
from hitl_tui.console.widgets.review import ReviewPane
from hitl_tui.console.widgets.review_detail import review_content
from hitl_tui.console.widgets.text_viewer import FullText, FullTextScreen, TextViewer
from hitl_tui.models import (
    ApprovalRequest,
    EscalationCreate,
    EscalationMessage,
    MessageRole,
    RequestCreate,
    ReviewCreate,
    ReviewItem,
    Risk,
)
from hitl_tui.store.sqlite import SQLiteStore
from hitl_tui.text import is_clean

from .conftest import FakeClock
from .test_hostile_terminal import HOSTILE, Watched, check_screen

pytestmark = pytest.mark.timeout(120)

MB = 1024 * 1024
NOW = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
END = "THE-END-OF-THE-BLOB"
#: the hostile strings that fit in one agent text field (the corpus also has 1 MB ones)
SHORT_HOSTILE = [h for h in HOSTILE if len(h) < 10_000]
_MORE = re.compile(r"… ([\d,]+) more characters")


def more_counts(text: str) -> list[int]:
    return [int(m.group(1).replace(",", "")) for m in _MORE.finditer(text)]


# ======================================================================== what the panels render


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"cmd": "kubectl rollout restart deploy/web", "replicas": 3, "dry_run": False, "ttl": None, "ratio": 0.5},
        {"nested": {"list": [1, [2, [3, {}]], [], "x"], "e": {}}, "k\n\x85\u202e": "v\t\x1b[31m"},
        {h[:200] or "k": h[:2000] for h in SHORT_HOSTILE},
    ],
)
def test_arguments_that_fit_render_exactly_as_before(args: dict[str, Any]) -> None:
    shown, cut = json_preview(args, DETAIL_CHARS // 2)
    before = json_content(args)
    assert not cut
    assert shown.plain == before.plain == safe_json(args)
    assert [(s.start, s.end, s.style) for s in shown.spans] == [(s.start, s.end, s.style) for s in before.spans]


def test_a_cut_object_keeps_the_highlighting_of_a_whole_one() -> None:
    """The cut rendering uses the JSON highlighter's styles: same spans for the part that is shown."""
    args = {"a": "x", "n": [1, 2.5, True, None], "blob": "B" * 50_000}
    shown, cut = json_preview(args, 10_000)
    whole = json_content(args)
    assert cut
    head = len('{\n  "a": "x",\n  "n": [\n    1,\n    2.5,\n    true,\n    null\n  ],\n  "blob": "') + 1000
    assert shown.plain[:head] == whole.plain[:head]
    styles = lambda c: [(s.start, s.end, s.style) for s in c.spans if s.end <= head]  # noqa: E731
    assert styles(shown) == styles(whole)


def huge_request(**extra: Any) -> ApprovalRequest:
    args = {"blob": "A" * MB + END, "list": list(range(200_000)), "k" * 5_000: "v", "ctl": "\x1b\x9b\u202e" * 100_000}
    fields = dict(summary="S\n" * 50_000, context="\x1b]52;c;AAAA\x07" * 7_000, policy_reason="P" * 100_000)
    return ApprovalRequest(id=7, agent="bot", tool="deploy", args=args, created_at=NOW, **(fields | extra))


def test_every_field_of_a_huge_request_is_cut_to_its_share() -> None:
    req = huge_request(edited_args={"blob": "E" * MB})
    shown = request_content(req, NOW, "alice").plain
    assert len(shown) < DETAIL_CHARS + 2_000
    assert shown.count("\n") < 2_000  # 50,000 summary lines are cut too
    assert is_clean(shown)
    assert shown.splitlines()[3] == SHOWN_IN_PART  # near the top, where it is seen
    assert END not in shown
    # the marker counts are exact: what is shown plus what is left out is the whole string
    shown_a = re.search(r'"blob": "(A*)…"', shown)
    assert shown_a is not None and MB + len(END) - len(shown_a.group(1)) in more_counts(shown)
    assert "… 199," in shown and "more items" in shown  # the 200,000-item list stops
    assert "more keys" in shown  # the budget was spent before the last keys
    for title in ("Summary", "Policy", "Arguments", "Edited arguments (what runs)", "Agent context"):
        assert title in shown


def test_deep_nesting_collapses() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(500):
        node["d"] = {}
        node = node["d"]
    shown, cut = json_preview(deep, 10_000)
    assert cut and "{…} … 1 key nested deeper" in shown.plain and len(shown.plain) < 12_000


def test_the_full_text_holds_everything() -> None:
    req = huge_request()
    full = request_full_text(req, NOW, "alice")
    plain = "\n".join(line if isinstance(line, str) else line.plain for line in full.lines)
    assert safe_json(req.args) in plain
    assert "S\n" * 49_999 in plain
    assert is_clean(plain)
    assert "\x1b" not in plain and "\\x1b]52;c;AAAA\\x07" in plain


def test_text_preview_bounds_characters_lines_and_escapes() -> None:
    for value, limit in (("x" * 100_000, 3000), ("x\n" * 10_000, 3000), ("\x00" * 50_000, 2000), ("ok", 10)):
        shown, left = text_preview(value, limit)
        assert len(shown.plain) <= limit + 200 and shown.plain.count("\n") <= max(20, limit // 25) + 1
        assert is_clean(shown.plain)
        if left:
            assert shown.plain.endswith(f"… {left:,} more characters: {VIEW_ALL}")
        else:
            assert shown.plain == value
    shown, left = text_preview("\x00" * 50_000, 2000)
    assert 50_000 - left == shown.plain.count("\\x00")  # escapes never split, counts exact


def test_review_and_escalation_panels_are_bounded_too() -> None:
    item = ReviewItem(
        id=3, agent="bot", tool="dump", args={"x": "A" * MB}, result="R" * MB, result_length=MB, created_at=NOW
    )
    shown = review_content(item, NOW).plain
    assert len(shown) < DETAIL_CHARS and VIEW_ALL in shown and len(more_counts(shown)) == 2
    msg = EscalationMessage(role=MessageRole.agent, author="bot", text="M" * 100_000, at=NOW)
    shown = message_content(msg, NOW, "alice").plain
    assert len(shown) < 3_000 and more_counts(shown) == [100_000 - shown.count("M")]


# ======================================================================== the viewer


class ViewerApp(App[None]):
    def __init__(self, text: FullText) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        yield TextViewer(self.text)


@pytest.mark.parametrize("width", [11, 40])
async def test_the_viewer_wraps_wide_and_combining_characters_without_losing_any(width: int) -> None:
    lines = ["日本語のテキスト" * 40, "e\u0301" * 300, "\U0001f3f4\u200d\u2620\ufe0f pirate " * 30, "plain " * 200, ""]
    full = FullText()
    for line in lines:
        full.text(line)
    full.json({"k": "値" * 500})
    app = ViewerApp(full)
    async with app.run_test(size=(width + 3, 10)) as pilot:  # padding 1 each side and the scrollbar
        viewer = app.query_one(TextViewer)
        await pilot.pause()
        rows = [viewer.row_text(r) for r in range(viewer.row_count)]
        assert all(cell_len(r) <= viewer.scrollable_content_region.width for r in rows)
        expected = [line if isinstance(line, str) else line.plain for line in full.lines]
        got: list[str] = []
        for r in range(viewer.row_count):
            _, start, _ = viewer.line_of_row(r)
            if start == 0:
                got.append("")
            got[-1] += rows[r]
        assert got == expected
        assert len(got) == len(expected)
        for y in range(viewer.size.height):
            assert viewer.render_line(y).cell_length == viewer.scrollable_content_region.width


@pytest.mark.parametrize("width", [11, 40])
async def test_the_viewer_wraps_between_words(width: int) -> None:
    """``How s`` / ``hould I proceed``: a line with spaces wraps between its words; only a word
    longer than the width is cut, and every character is still in exactly one row."""
    words = "Customer asks for a refund above the policy limit. How should I proceed? " * 6
    long_word = "x" * (width * 2 + 3)
    lines = [words, f"see {long_word} and then 日本語 テキスト は ここ です " * 3, "   leading and  double  spaces "]
    full = FullText()
    for line in lines:
        full.text(line)
    app = ViewerApp(full)
    async with app.run_test(size=(width + 3, 10)) as pilot:
        viewer = app.query_one(TextViewer)
        await pilot.pause()
        width = viewer.scrollable_content_region.width
        rows: list[tuple[int, str]] = []
        for r in range(viewer.row_count):
            rows.append((viewer.line_of_row(r)[0], viewer.row_text(r)))
            assert cell_len(rows[-1][1]) <= width
        assert ["".join(t for i, t in rows if i == n) for n in range(len(lines))] == lines
        for (line, text), (next_line, after) in pairwise(rows):
            if line != next_line or not text or not after:
                continue
            cut = text[-1] != " " and after[0] != " "  # a word runs on into the next row
            assert not cut or long_word.startswith(text.split(" ")[-1]) or len(text.split(" ")[-1]) == width, (
                text,
                after,
            )
        assert not any(t.endswith(("How s", "How sh")) for _, t in rows)


# ======================================================================== in the console


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[tuple[LocalBackend, FakeClock]]:
    clock = FakeClock()
    b = LocalBackend(SQLiteStore(tmp_path / "long.db", clock=clock), actor="alice")
    yield b, clock
    await b.close()


@asynccontextmanager
async def console(b: LocalBackend, clock: FakeClock) -> AsyncIterator[tuple[Watched, Pilot]]:
    app = Watched(b, Settings(reviewer="alice"), clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        yield app, pilot


async def settle(app: Watched, pilot: Pilot) -> None:
    await pilot.pause()
    await app.wait_settled(60)
    await pilot.pause()


async def until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await pilot.pause(0.05)


def screen_text(app: Watched) -> str:
    """The characters on screen, as a terminal would show them."""
    update = app.screen._compositor.render_full_update()
    return "\n".join("".join(seg.text for seg in strip) for strip in update.strips)


async def open_viewer(app: Watched, pilot: Pilot) -> TextViewer:
    await pilot.press("v")
    await settle(app, pilot)
    assert isinstance(app.screen, FullTextScreen) and isinstance(app.screen, TextViewScreen)
    check_screen(app, "full text")
    return app.screen.viewer


def visible_rows(viewer: TextViewer) -> list[str]:
    top = viewer.scroll_offset.y
    return [
        viewer.row_text(r) for r in range(top, min(viewer.row_count, top + viewer.scrollable_content_region.height))
    ]


async def reach_the_end(app: Watched, pilot: Pilot, viewer: TextViewer, last: str) -> None:
    """``end`` shows the last rows, and ``last`` is in them, on screen."""
    assert last not in "".join(visible_rows(viewer))
    await pilot.press("end")
    await settle(app, pilot)
    assert viewer.scroll_offset.y == viewer.row_count - viewer.scrollable_content_region.height > 0
    rows = visible_rows(viewer)
    assert "".join(rows).rstrip("\n}").endswith(last)
    on_screen = screen_text(app)
    assert all(row in on_screen for row in rows)  # what the viewer says it shows is what the terminal gets
    check_screen(app, "full text, end")


def viewer_plain(viewer: TextViewer) -> str:
    return "".join(viewer.row_text(r) for r in range(viewer.row_count))


async def test_a_1_mb_argument_shows_a_bounded_detail_and_v_shows_all_of_it(
    backend: tuple[LocalBackend, FakeClock],
) -> None:
    b, clock = backend
    hostile = "".join(SHORT_HOSTILE)
    args = {"cmd": hostile, "blob": "A" * MB + END}
    req = await b.create_request(
        RequestCreate(agent="bot", tool="deploy", args=args, summary=hostile * 5, risk=Risk.high, timeout_s=7200)
    )
    async with console(b, clock) as (app, pilot):
        pane = app.query_one(ApprovalsPane)
        await until(pilot, lambda: pane.detail.request is not None)
        body = str(pane.detail._body.render())
        assert len(body) < DETAIL_CHARS + 2_000 and VIEW_ALL in body and END not in body
        assert pane.detail.virtual_size.height < 1_000  # not ~17,000 wrapped lines
        assert SHOWN_IN_PART in screen_text(app)  # the hint is on screen without scrolling
        check_screen(app, "bounded detail")

        clock.advance(60)  # a countdown tick re-renders the detail: still bounded
        pane.tick()
        await settle(app, pilot)
        body = str(pane.detail._body.render())
        assert "expires in 1h59m" in body and len(body) < DETAIL_CHARS + 2_000

        viewer = await open_viewer(app, pilot)
        assert safe_json(args).replace("\n", "") in viewer_plain(viewer)  # every character, none lost to wrapping
        assert viewer.row_count > MB // viewer.scrollable_content_region.width
        await reach_the_end(app, pilot, viewer, END + '"')  # the last character of the argument
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen is pane.screen and pane.detail.request is not None and pane.detail.request.id == req.id
        assert app.smuggled == []


async def test_a_long_escalation_message_is_cut_and_v_shows_the_thread(
    backend: tuple[LocalBackend, FakeClock],
) -> None:
    b, clock = backend
    text = "".join(SHORT_HOSTILE) + "M" * 90_000 + END
    esc = await b.create_escalation(EscalationCreate(agent="bot", message="help", context="C" * 100_000))
    await b.post_message(esc.id, text, author="bot", role=MessageRole.agent)
    async with console(b, clock) as (app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        pane = app.query_one(EscalationsPane)
        await until(pilot, lambda: len(pane.query(MessageBubble)) == 2)
        assert pane.chat.virtual_size.height < 500
        assert str(pane.query(MessageBubble).last().render()).endswith(VIEW_ALL)
        pane.chat.scroll_end(animate=False)  # (a thread first shown while its pane was hidden opens at the top)
        await settle(app, pilot)
        assert "more characters" in screen_text(app)
        check_screen(app, "bounded thread")
        viewer = await open_viewer(app, pilot)
        assert "C" * 100_000 in viewer_plain(viewer)
        await reach_the_end(app, pilot, viewer, END)


async def test_a_long_thread_shows_its_newest_messages_and_counts_the_rest(
    backend: tuple[LocalBackend, FakeClock],
) -> None:
    """An agent that posts "still stuck" in a loop: the conversation keeps the newest
    ``THREAD_WINDOW`` messages mounted and counts the earlier ones; a live message joins at the
    bottom and the oldest shown one leaves; ``v`` still has every message."""
    b, clock = backend
    esc = await b.create_escalation(EscalationCreate(agent="bot", message="msg-0000 first"))
    extra = 49
    for i in range(1, THREAD_WINDOW + extra + 1):
        await b.post_message(esc.id, f"msg-{i:04d} still stuck", author="bot", role=MessageRole.agent)
    total = THREAD_WINDOW + extra + 1
    async with console(b, clock) as (app, pilot):
        await pilot.press("2")
        await settle(app, pilot)
        pane = app.query_one(EscalationsPane)
        await until(pilot, lambda: len(pane.query(MessageBubble)) == THREAD_WINDOW)
        await settle(app, pilot)
        bubbles = pane.query(MessageBubble)
        assert f"msg-{total - THREAD_WINDOW:04d}" in str(bubbles.first().render())
        assert f"msg-{total - 1:04d}" in str(bubbles.last().render())
        earlier = pane.chat.query_one("#chat-earlier")
        assert earlier.display
        assert str(earlier.render()) == f"{total - THREAD_WINDOW} earlier messages · v shows the whole thread"

        await b.post_message(esc.id, "msg-live arrived", author="bot", role=MessageRole.agent)
        await until(pilot, lambda: "msg-live" in str(pane.query(MessageBubble).last().render()))
        await settle(app, pilot)
        bubbles = pane.query(MessageBubble)
        assert len(bubbles) == THREAD_WINDOW
        assert f"msg-{total - THREAD_WINDOW + 1:04d}" in str(bubbles.first().render())
        assert str(earlier.render()).startswith(f"{total - THREAD_WINDOW + 1} earlier messages")

        viewer = await open_viewer(app, pilot)
        everything = viewer_plain(viewer)
        assert "msg-0000 first" in everything and "msg-live arrived" in everything


async def test_a_1_mb_review_item_is_cut_and_v_shows_all_of_it(backend: tuple[LocalBackend, FakeClock]) -> None:
    b, clock = backend
    await b.log_review(
        ReviewCreate(agent="bot", tool="dump", args={"x": "X" * MB}, result="R" * 900_000 + END, result_limit=1_000_000)
    )
    async with console(b, clock) as (app, pilot):
        await pilot.press("3")
        await settle(app, pilot)
        pane = app.query_one(ReviewPane)
        await until(pilot, lambda: pane.detail.item is not None)
        assert pane.detail.virtual_size.height < 1_000
        assert SHOWN_IN_PART in screen_text(app)
        viewer = await open_viewer(app, pilot)
        assert "X" * MB in viewer_plain(viewer)
        assert "R" * 900_000 + END in viewer_plain(viewer)
        await reach_the_end(app, pilot, viewer, END)
