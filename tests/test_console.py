"""The reviewer console, driven by keys and mouse through Textual's Pilot, on a real SQLite store.

Other reviewers and agents are real: a second store on the same file, or another process.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import TextArea

from hitl_tui.backend.local import LocalBackend
from hitl_tui.config import Settings
from hitl_tui.console import HitlConsole
from hitl_tui.console.adapters import capability_cells
from hitl_tui.console.live import LinkState
from hitl_tui.console.screens import (
    CalibrationScreen,
    ConfirmScreen,
    EditArgsScreen,
    HelpScreen,
    HistoryScreen,
    StageScreen,
)
from hitl_tui.console.screens.text_view import TextViewScreen
from hitl_tui.console.widgets.approvals import ApprovalsPane
from hitl_tui.console.widgets.capabilities import CapabilitiesPane
from hitl_tui.console.widgets.escalations import EscalationsPane
from hitl_tui.console.widgets.review import ReviewPane
from hitl_tui.console.widgets.text_viewer import TextViewer
from hitl_tui.models import (
    DecisionIn,
    EscalationCreate,
    EscalationStatus,
    MessageRole,
    RequestCreate,
    RequestStatus,
    ReviewCreate,
    ReviewMark,
    Risk,
    Stage,
    Verdict,
)
from hitl_tui.text import is_clean
from tests.console_data import (
    CALIBRATED_TOOL,
    HISTORY_TOOL,
    HOSTILE,
    NOW,
    OTHER,
    REVIEWER,
    add_history,
    build,
    open_backend,
)

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _dismissals_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dismissed suggestions go to a file of this test's own, never the user's."""
    monkeypatch.setenv("HITL_AUTONOMY_FILE", str(tmp_path / "dismissed.json"))


@pytest.fixture
async def backend(db_path: Path, clock: Any) -> AsyncIterator[LocalBackend]:
    b = open_backend(db_path, clock)
    await build(b, clock)
    yield b
    await b.close()


@pytest.fixture
async def other(db_path: Path, clock: Any, backend: LocalBackend) -> AsyncIterator[LocalBackend]:
    """Another reviewer's console: its own store connection on the same file."""
    b = open_backend(db_path, clock, actor=OTHER)
    yield b
    await b.close()


@asynccontextmanager
async def console(
    backend: Any, clock: Any, size: tuple[int, int] = (100, 30), settings: Settings | None = None
) -> AsyncIterator[tuple[HitlConsole, Pilot]]:
    app = HitlConsole(backend, settings or Settings(reviewer=REVIEWER), clock=clock)
    async with app.run_test(size=size) as pilot:
        await app.wait_settled()
        await pilot.pause()
        yield app, pilot


async def until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until ``condition`` holds (events arrive on their own; no key is pressed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await pilot.pause(0.02)


async def settle(app: HitlConsole, pilot: Pilot) -> None:
    await pilot.pause()
    await app.wait_settled()
    await pilot.pause()


def said(app: HitlConsole) -> str:
    return "\n".join(f"{sev}: {title}: {text}" for sev, title, text in app.said)


def approvals(app: HitlConsole) -> ApprovalsPane:
    return app.query_one(ApprovalsPane)


async def goto_request(app: HitlConsole, pilot: Pilot, tool: str) -> Any:
    table = approvals(app).table
    for index in range(table.row_count):
        item = table.item_at(index)
        if item is not None and item.tool == tool:
            table.move_cursor(index)
            await settle(app, pilot)
            return item
    raise AssertionError(f"no row for {tool}")


# ======================================================================== approvals


async def test_pending_requests_riskiest_first_with_detail(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        pane = approvals(app)
        rows = [pane.table.item_at(i) for i in range(pane.table.row_count)]
        assert [r.risk for r in rows][:2] == [Risk.critical, Risk.critical]
        assert all(r.status is RequestStatus.pending for r in rows)
        assert pane.table.total == 6
        await goto_request(app, pilot, "db_migration")
        text = str(pane.detail._body.render())
        assert "1 of 2 approvals" in text
        assert '"migration": "0042_add_refund_index"' in text
        assert "critical risk needs two reviewers" in text
        assert app.counts.pending == 6


async def test_approve_with_a(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        req = await goto_request(app, pilot, "send_customer_email")
        await pilot.press("a")
        await settle(app, pilot)
        stored = await backend.get_request(req.id)
        assert stored.status is RequestStatus.approved and stored.decided_by == REVIEWER
        # the row stays under the cursor (as decided) until the reviewer moves on
        await until(pilot, lambda: approvals(app).table.cursor_item.status is RequestStatus.approved)
        assert "APPROVED by you" in str(approvals(app).detail._body.render())
        await until(pilot, lambda: approvals(app).table.total == 5)
        await pilot.press("j")
        assert approvals(app).table.cursor_item.status is RequestStatus.pending


async def test_irreversible_asks_before_approving(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        req = await goto_request(app, pilot, "deploy")
        await pilot.press("a")
        assert isinstance(app.screen, ConfirmScreen)
        assert "IRREVERSIBLE" in str(app.screen.query_one("#title").render())
        await pilot.press("n")
        await settle(app, pilot)
        assert (await backend.get_request(req.id)).status is RequestStatus.pending
        await pilot.press("a", "y")
        await settle(app, pilot)
        assert (await backend.get_request(req.id)).status is RequestStatus.approved


async def test_deny_asks_for_a_reason(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        req = await goto_request(app, pilot, "create_github_issue")
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")  # empty: refused, the dialog stays
        assert isinstance(app.screen, ConfirmScreen)
        assert "reason is required" in str(app.screen.query_one("#error").render())
        await pilot.press(*"duplicate of #12", "enter")
        await settle(app, pilot)
        stored = await backend.get_request(req.id)
        assert stored.status is RequestStatus.denied
        assert stored.decision_reason == "duplicate of #12"


async def test_escape_cancels_deny(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        req = await goto_request(app, pilot, "create_github_issue")
        await pilot.press("d", *"nope", "escape")
        await settle(app, pilot)
        assert (await backend.get_request(req.id)).status is RequestStatus.pending


async def test_edit_then_approve_shows_and_records_the_diff(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        req = await goto_request(app, pilot, "write_file")
        await pilot.press("e")
        assert isinstance(app.screen, EditArgsScreen)
        editor = app.screen.query_one(TextArea)
        editor.text = editor.text.replace("round(x, 2)", "round(x, 4)")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        diff = str(app.screen.query_one("#body-text").render())
        assert "round(x, 4)" in diff and "round(x, 2)" in diff
        await pilot.press(*"more precision", "enter")
        await settle(app, pilot)
        stored = await backend.get_request(req.id)
        assert stored.status is RequestStatus.approved
        assert stored.edited_args is not None and "round(x, 4)" in stored.edited_args["content"]
        assert stored.args["content"] == req.args["content"]  # the proposal is kept
        assert stored.decision_reason == "edited content: more precision"
        assert stored.approvals[0].edited_args == stored.edited_args


async def test_edit_rejects_invalid_json(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        await goto_request(app, pilot, "write_file")
        await pilot.press("e")
        app.screen.query_one(TextArea).text = "[1, 2"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, EditArgsScreen)
        assert "Not valid JSON" in str(app.screen.query_one("#error").render())
        app.screen.query_one(TextArea).text = "[1, 2]"
        await pilot.press("ctrl+s")
        assert "must be a JSON object" in str(app.screen.query_one("#error").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, EditArgsScreen)


async def test_quorum_vote_completes_the_request(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        req = await goto_request(app, pilot, "db_migration")  # irreversible, 1 of 2 approvals (bob)
        await pilot.press("a", "y")
        await settle(app, pilot)
        stored = await backend.get_request(req.id)
        assert stored.status is RequestStatus.approved
        assert [v.reviewer for v in stored.approvals] == [OTHER, REVIEWER]


async def test_select_several_then_approve_all(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        first = await goto_request(app, pilot, "send_customer_email")
        await pilot.press("space")  # selects and steps down
        second = approvals(app).table.cursor_item
        await pilot.press("space")
        assert set(approvals(app).table.selected) == {first.id, second.id}
        title = str(app.query_one("#approvals-list").border_title)
        assert "2 selected (A approves them)" in title  # A is not in the footer: the title says it
        await pilot.press("A")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")  # the optional reason box: enter confirms
        await settle(app, pilot)
        for rid in (first.id, second.id):
            assert (await backend.get_request(rid)).status is RequestStatus.approved
        assert not approvals(app).table.selected
        assert "Approved 2 requests" in said(app)


def table_lines(table: Any) -> list[str]:
    """The table's rows as painted (header first)."""
    return ["".join(seg.text for seg in table.render_line(y)) for y in range(table.size.height)]


async def test_80_columns_cut_text_ends_with_an_ellipsis_and_outcomes_read_whole(
    backend: LocalBackend, clock: Any
) -> None:
    async with console(backend, clock, size=(80, 24)) as (app, pilot):
        await pilot.press("slash", *"status:all", "enter")
        await settle(app, pilot)
        table = approvals(app).table
        lines = table_lines(table)
        header = lines[0]
        votes_at, expires_end = header.index("VOTES"), header.index("EXPIRES") + len("EXPIRES")
        decided = [line for line in lines if line.rstrip().endswith(("approved", "denied", "expired"))]
        assert len(decided) >= 3 and "AGE" in header, lines
        for line in decided:
            outcome = line.rstrip().rsplit(" ", 1)[1]
            assert line.rstrip().endswith(" " + outcome) and len(line.rstrip()) <= expires_end, line
            assert not line[votes_at : votes_at + 5].strip(" 0123456789/"), line  # votes only, never a status
        emails = [line for line in lines if "send_customer" in line]
        assert emails and all("send_customer…" in line or "send_customer_email" in line for line in emails), emails
        assert not any(re.search(r"send_customer_?\s", line) for line in lines), lines


async def test_120_columns_show_every_column_and_whole_tool_names(backend: LocalBackend, clock: Any) -> None:
    """120 columns show at least what 80 do (side by side left the list 72 wide: CONF and AGE went)."""
    async with console(backend, clock, size=(120, 40)) as (app, pilot):
        lines = table_lines(approvals(app).table)
        for label in ("ID", "RISK", "TOOL", "AGENT", "SUMMARY", "CONF", "VOTES", "AGE", "EXPIRES"):
            assert f" {label} " in lines[0], lines[0]
        for tool in ("delete_resource", "send_customer_email", "create_github_issue"):
            assert any(f" {tool} " in line for line in lines), (tool, lines)
        await pilot.press("4")
        await settle(app, pilot)
        header = table_lines(app.query_one(CapabilitiesPane).table)[0]
        for label in ("TOOL", "STAGE", "RISK", "FLAGS", "AUTO/APPR", "TIMEOUT", "APPR", "DENY", "MEDIAN"):
            assert f" {label} " in header + " ", header


async def test_decided_by_someone_else_while_looking(backend: LocalBackend, other: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        req = await goto_request(app, pilot, "send_customer_email")
        await other.decide(req.id, DecisionIn(decision="deny", reason="wrong customer"))
        pane = approvals(app)
        await until(pilot, lambda: pane.table.cursor_item.status is RequestStatus.denied)  # no key pressed
        assert "DENIED by bob" in str(pane.detail._body.render())
        await pilot.press("a")
        await settle(app, pilot)
        assert "already denied by bob" in said(app)
        assert (await backend.get_request(req.id)).status is RequestStatus.denied


async def test_decision_racing_another_reviewer(backend: LocalBackend, other: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        req = await goto_request(app, pilot, "create_github_issue")
        # bob's approval commits; ours is sent right after, before (or just after) its event reaches
        # this console: either way the store refuses ours and the console says who decided
        await other.decide(req.id, DecisionIn(decision="approve"))
        await pilot.press("a")
        await settle(app, pilot)
        await until(pilot, lambda: "already approved by bob" in said(app))
        decided_at = (await backend.get_request(req.id)).decided_at
        assert f"by bob at {decided_at:%H:%M:%S}" in said(app)  # the console's clock format, not ISO
        assert decided_at.isoformat(timespec="seconds") not in said(app)
        app.said.clear()
        await pilot.press("a")  # the console knows now: it refuses before sending, in the same words
        await until(pilot, lambda: "already approved by bob" in said(app))
        assert f"by bob at {decided_at:%H:%M:%S}" in said(app) and "T0" not in said(app)
        stored = await backend.get_request(req.id)
        assert stored.decided_by == OTHER and [v.reviewer for v in stored.approvals] == [OTHER]
        await until(pilot, lambda: approvals(app).table.cursor_item.status is RequestStatus.approved)


@pytest.mark.parametrize(
    ("key", "tool", "dialog"),
    [("a", "deploy", ConfirmScreen), ("d", "send_customer_email", ConfirmScreen), ("e", "write_file", EditArgsScreen)],
)
async def test_an_open_dialog_closes_when_its_request_is_decided_elsewhere(
    backend: LocalBackend, other: LocalBackend, clock: Any, key: str, tool: str, dialog: type
) -> None:
    """bob approves from the CLI while our approve/deny/edit dialog is open: the dialog closes at
    once and says who decided (it offered to decide and refused only after enter)."""
    async with console(backend, clock) as (app, pilot):
        req = await goto_request(app, pilot, tool)
        await pilot.press(key)
        await pilot.pause()
        assert isinstance(app.screen, dialog)
        await other.decide(req.id, DecisionIn(decision="approve"))
        await until(pilot, lambda: not isinstance(app.screen, dialog))
        await until(pilot, lambda: "decided elsewhere" in said(app))
        assert f"request {req.id} was already approved by bob at 09:30:00" in said(app)
        assert "nothing was sent" in said(app)
        stored = await backend.get_request(req.id)
        assert stored.decided_by == OTHER and len(stored.approvals) == 1


async def test_request_from_another_process_appears_live(backend: LocalBackend, clock: Any, db_path: Path) -> None:
    script = (
        "import asyncio, sys\n"
        "from hitl_tui.store.sqlite import SQLiteStore\n"
        "from hitl_tui.models import RequestCreate\n"
        "async def main():\n"
        "    s = SQLiteStore(sys.argv[1])\n"
        "    await s.create_request(RequestCreate(agent='far-agent', tool='rotate_keys', risk='high',\n"
        "        summary='Rotate prod keys', args={'env': 'prod'}))\n"
        "    await s.close()\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    async with console(backend, clock) as (app, pilot):
        bells = app.bells
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, str(db_path), env=env)
        assert await proc.wait() == 0
        pane = approvals(app)
        await until(pilot, lambda: any(i.tool == "rotate_keys" for i in pane.table.loaded_items()))
        await until(pilot, lambda: app.counts.pending == 7)
        assert app.bells == bells + 1
        assert "New high-risk request" in said(app) and "rotate_keys" in said(app)


async def test_low_risk_arrival_does_not_ring(backend: LocalBackend, other: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        await other.create_request(RequestCreate(agent="x", tool="read_file", risk=Risk.low))
        await until(pilot, lambda: approvals(app).table.total == 7)
        assert app.bells == 0


async def test_bell_can_be_turned_off(backend: LocalBackend, other: LocalBackend, clock: Any) -> None:
    settings = Settings.model_validate({"reviewer": REVIEWER, "console": {"bell": False}})
    async with console(backend, clock, settings=settings) as (app, pilot):
        await other.create_request(RequestCreate(agent="x", tool="drop_table", risk=Risk.critical))
        await until(pilot, lambda: "New critical-risk request" in said(app))
        assert app.bells == 0


async def test_expiry_shows_without_a_key_press(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        req = await goto_request(app, pilot, "delete_resource")  # expires 12 minutes from NOW
        clock.advance(13 * 60)
        pane = approvals(app)
        await until(pilot, lambda: pane.table.cursor_item.status is RequestStatus.expired)
        assert "EXPIRED" in str(pane.detail._body.render())
        await pilot.press("a")
        assert f"request {req.id} expired" in said(app)


async def test_countdown_follows_the_console_clock(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        await goto_request(app, pilot, "delete_resource")
        assert "12m00s" in str(approvals(app).detail._body.render())
        clock.advance(30)
        await until(pilot, lambda: "11m30s" in str(approvals(app).detail._body.render()))


# ======================================================================== disconnects


async def test_disconnected_state_refuses_and_reconnects(
    backend: LocalBackend, clock: Any, db_path: Path, tmp_path: Path
) -> None:
    async with console(backend, clock) as (app, pilot):
        req = await goto_request(app, pilot, "send_customer_email")
        moved = tmp_path / "away.db"
        db_path.rename(moved)  # the store's health check fails within about a second
        try:
            await until(pilot, lambda: app.feed.link.state is LinkState.disconnected)
            status = str(app.query_one("#status").render())
            assert "disconnected · nothing is sent" in status
            assert "DISCONNECTED" in str(app.query_one("#tabs").render())
            await pilot.press("a")
            await settle(app, pilot)
            assert "nothing was sent" in said(app)
        finally:
            moved.rename(db_path)
        assert (await backend.get_request(req.id)).status is RequestStatus.pending
        await until(pilot, lambda: app.feed.link.state is LinkState.live, timeout=20)
        other = open_backend(db_path, clock, actor=OTHER)
        try:
            await other.create_request(RequestCreate(agent="late", tool="after_outage", risk=Risk.low))
        finally:
            await other.close()
        await until(pilot, lambda: any(i.tool == "after_outage" for i in approvals(app).table.loaded_items()))


async def test_closed_store_shows_disconnected(db_path: Path, clock: Any) -> None:
    b = open_backend(db_path, clock)
    await build(b, clock)
    try:
        async with console(b, clock) as (app, pilot):
            await b.store.close()
            await until(pilot, lambda: app.feed.link.state is LinkState.disconnected)
            await pilot.press("a")
            assert "nothing was sent" in said(app)
    finally:
        await b.close()


class ReadOnlyBackend(LocalBackend):
    """What an agent token sees on a server: reads work, decisions are not this caller's to make."""

    @property
    def read_only(self) -> bool:
        return True


async def test_read_only_backend_says_so_and_refuses(db_path: Path, clock: Any) -> None:
    from hitl_tui.store.sqlite import SQLiteStore

    writer = open_backend(db_path, clock)
    await build(writer, clock)
    await writer.close()
    ro = ReadOnlyBackend(SQLiteStore(db_path, clock=clock), actor=REVIEWER)
    try:
        async with console(ro, clock) as (app, pilot):
            assert "READ-ONLY" in str(app.query_one("#status").render())
            req = await goto_request(app, pilot, "send_customer_email")
            await pilot.press("a")
            assert "Read-only" in said(app)
            assert (await ro.get_request(req.id)).status is RequestStatus.pending
    finally:
        await ro.close()


def footer_keys(app: HitlConsole) -> set[str]:
    from textual.widgets._footer import FooterKey

    return {key.description for key in app.query(FooterKey)}


@pytest.mark.parametrize("size", [(80, 24), (60, 15)])
async def test_every_key_in_the_footer_has_its_whole_label(
    backend: LocalBackend, clock: Any, size: tuple[int, int]
) -> None:
    """The footer shows only keys whose label fits (Quit was cut to ``q`` at 80 columns and the
    capabilities' keys ran off the line); the ones left out stay in ? help."""
    from textual.widgets._footer import FooterKey

    async with console(backend, clock, size=size) as (app, pilot):
        for pane in "1234":
            await pilot.press(pane)
            await settle(app, pilot)
            line = screen_text(app).splitlines()[-1]
            assert line.endswith("▏^p palette "), line
            keys = [k for k in app.query(FooterKey) if not k.has_class("-command-palette")]
            assert {"Help", "Quit", "Filter"} <= {k.description for k in keys}, line
            for k in keys:
                assert f"{k.key_display} {k.description} " in line, (k.description, line)
            if size == (80, 24):
                wanted = {
                    "1": {"Approve", "Deny", "Edit", "Select"},
                    "4": {"Promote", "Demote", "Set stage", "History"},
                }.get(pane, set())
                assert wanted <= {k.description for k in keys}, line
        await pilot.press("question_mark")
        text = str(app.screen.query_one("#scroll Static").render())
        assert "Accept suggestion" in text and "Record window" in text  # not in the footer: in the help


async def test_read_only_footer_offers_only_what_works(db_path: Path, clock: Any) -> None:
    """An agent's token: the footer drops the keys that would send something (as k9s --readonly
    does), and pressing one anyway says why nothing happened. A reviewer's console keeps them."""
    from hitl_tui.store.sqlite import SQLiteStore

    writer = open_backend(db_path, clock)
    await build(writer, clock)
    try:
        async with console(writer, clock) as (app, pilot):
            await goto_request(app, pilot, "send_customer_email")
            await pilot.pause()
            assert {"Approve", "Deny", "Edit", "Select", "Filter"} <= footer_keys(app)
    finally:
        await writer.close()
    ro = ReadOnlyBackend(SQLiteStore(db_path, clock=clock), actor=REVIEWER)
    try:
        async with console(ro, clock) as (app, pilot):
            req = await goto_request(app, pilot, "send_customer_email")
            await pilot.pause()
            shown = footer_keys(app)
            assert "Filter" in shown and "Help" in shown
            assert not shown & {"Approve", "Deny", "Edit", "Select", "Approve all"}, shown
            for key, verb in (("d", "decide"), ("space", "decide")):
                app.said.clear()
                await pilot.press(key)
                assert f"you can look but not {verb}" in said(app), key
            app.action_show_pane("review")
            await pilot.pause()
            assert not footer_keys(app) & {"Mark OK", "Flag", "Select"}
            app.action_show_pane("escalations")
            await pilot.pause()
            assert not footer_keys(app) & {"Reply", "Take over", "Resolve"}
            app.action_show_pane("capabilities")
            await pilot.pause()
            shown = footer_keys(app)
            assert not shown & {"Promote", "Demote", "Set stage", "Accept suggestion"}, shown
            assert "History" in shown
            app.said.clear()
            await pilot.press("p")
            assert "you can look but not change stages" in said(app)
            app.action_show_pane("approvals")
            await pilot.pause()
            app.said.clear()
            await pilot.press("slash", "a")  # a letter typed into the filter is text, not a refusal
            await pilot.pause()
            assert "look but not" not in said(app)
            assert (await ro.get_request(req.id)).status is RequestStatus.pending
    finally:
        await ro.close()


# ======================================================================== escalations


async def test_escalation_chat_reply_with_enter_and_ctrl_s(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        await pilot.press("2")
        pane = app.query_one(EscalationsPane)
        assert app.focused is pane.table
        esc = pane.table.cursor_item
        await pilot.press("r")
        assert app.focused is pane.reply_box
        await pilot.press(*"Granted for 1 hour", "enter")
        await settle(app, pilot)
        stored = await backend.get_escalation(esc.id)
        assert stored.messages[-1].text == "Granted for 1 hour" and stored.messages[-1].author == REVIEWER
        assert pane.reply_box.value == ""
        await pilot.press(*"Ping me when done", "ctrl+s")
        await settle(app, pilot)
        assert (await backend.get_escalation(esc.id)).messages[-1].text == "Ping me when done"
        await until(pilot, lambda: len(pane.chat.query("MessageBubble")) == len(stored.messages) + 1)
        await pilot.press("escape")
        assert app.focused is pane.table
        await pilot.press("enter")
        assert app.focused is pane.reply_box


async def test_agent_message_appears_in_open_chat(backend: LocalBackend, other: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        await pilot.press("2")
        pane = app.query_one(EscalationsPane)
        esc = pane.table.cursor_item
        before = len(pane.chat.query("MessageBubble"))
        await other.post_message(esc.id, "Still waiting on VPC access", author=esc.agent, role=MessageRole.agent)
        await until(pilot, lambda: len(pane.chat.query("MessageBubble")) == before + 1)
        assert "Still waiting on VPC access" in str(pane.chat.query("MessageBubble").last().render())


async def test_the_thread_list_names_who_replied_last(backend: LocalBackend, other: LocalBackend, clock: Any) -> None:
    """"you:" only for this reviewer's own reply; another reviewer's shows their name."""
    async with console(backend, clock) as (app, pilot):
        await pilot.press("2")
        pane = app.query_one(EscalationsPane)
        esc = pane.table.cursor_item
        from hitl_tui.console.adapters import escalation_cells

        def last() -> str:
            return escalation_cells(pane.table.cursor_item, app.now(), app.reviewer)["last"][0]

        await other.post_message(esc.id, "On it, checking the VPC", author=OTHER, role=MessageRole.human)
        await until(pilot, lambda: "On it" in last())
        assert last().startswith(f"{OTHER}: On it")
        await backend.post_message(esc.id, "Thanks bob", author=REVIEWER, role=MessageRole.human)
        await until(pilot, lambda: "Thanks bob" in last())
        assert last().startswith("you: Thanks bob")


async def test_a_new_escalation_is_announced_from_any_pane(
    backend: LocalBackend, other: LocalBackend, clock: Any
) -> None:
    """A stuck agent waits on a human: the reviewer hears of it while looking at approvals."""
    async with console(backend, clock) as (app, pilot):
        bells = app.bells
        hostile = "[b]stuck[/b] on \x1b[2Jmigration"
        esc = await other.create_escalation(EscalationCreate(agent="db-bot", message=hostile))
        await until(pilot, lambda: f"escalation #{esc.id}" in said(app))
        assert "db-bot: [b]stuck[/b] on \\x1b[2Jmigration" in said(app)  # literal, escaped
        assert app.bells == bells + 1 and app.active_pane.PANE_ID == "approvals"


async def test_take_over_and_resolve(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        await pilot.press("2")
        pane = app.query_one(EscalationsPane)
        esc = pane.table.cursor_item
        await pilot.press("t")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")
        await settle(app, pilot)
        assert (await backend.get_escalation(esc.id)).status is EscalationStatus.taken_over
        pane.table.move_cursor(pane.table.index_of(esc.id))
        await pilot.press("x", *"done by hand", "enter")
        await settle(app, pilot)
        assert (await backend.get_escalation(esc.id)).status is EscalationStatus.resolved
        pane.table.move_cursor(pane.table.index_of(esc.id))
        await settle(app, pilot)
        assert pane.reply_box.disabled


@pytest.mark.parametrize("yields", [1, 2, 4])
async def test_a_filter_set_while_a_read_is_in_flight_shows_only_matching_rows(
    backend: LocalBackend, clock: Any, yields: int
) -> None:
    """Live events keep reads in flight. A filter applied during one must not show that read's
    (unfiltered) rows, nor keep its cursor row as a "ghost": the reviewer would be looking at, and
    could approve, a request the filter excludes."""
    from hitl_tui.console.widgets.filter_bar import FilterBar

    async with console(backend, clock) as (app, pilot):
        pane = approvals(app)
        table = pane.table
        assert "refund" not in table.cursor_item.summary.lower()  # the cursor is on a row the filter drops
        table.reload()  # as a live event does
        for _ in range(yields):  # the read is now waiting on the store
            await asyncio.sleep(0)
        pane.on_filter_bar_changed(FilterBar.Changed(pane.query_one(FilterBar), "refund", True))
        gap = table.cursor_item  # before the new read lands: no old row under the cursor either
        assert gap is None or "refund" in gap.summary.lower(), gap.summary
        await settle(app, pilot)
        shown = [table.item_at(i) for i in range(table.row_count)]
        assert shown and table.row_count == table.total
        assert all("refund" in (r.summary or "").lower() for r in shown), [r.summary for r in shown]
        assert "refund" in table.cursor_item.summary.lower()


async def test_escalation_filter_by_status(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        await pilot.press("2", "slash", *"status:resolved", "enter")
        await settle(app, pilot)
        pane = app.query_one(EscalationsPane)
        assert pane.table.total == 1 and pane.table.cursor_item.status is EscalationStatus.resolved
        await pilot.press("slash", "escape")
        await settle(app, pilot)
        assert pane.table.total == 3


# ======================================================================== review


async def test_review_mark_ok_and_flag(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        await pilot.press("3")
        pane = app.query_one(ReviewPane)
        first = pane.table.cursor_item
        assert not first.reviewed  # unreviewed first
        await pilot.press("o")
        await settle(app, pilot)
        assert (await backend.get_review(first.id)).verdict is Verdict.ok
        second = pane.table.cursor_item
        assert second.id != first.id and not second.reviewed  # the cursor stays in the queue
        await pilot.press("f", *"leaked a token", "enter")
        await settle(app, pilot)
        stored = await backend.get_review(second.id)
        assert stored.verdict is Verdict.flagged and stored.note == "leaked a token" and stored.reviewer == REVIEWER


async def test_review_batch_mark(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        await pilot.press("3")
        pane = app.query_one(ReviewPane)
        ids = [pane.table.item_at(0).id, pane.table.item_at(1).id, pane.table.item_at(2).id]
        await pilot.press("space", "space", "space", "o")
        await settle(app, pilot)
        for rid in ids:
            assert (await backend.get_review(rid)).verdict is Verdict.ok
        await until(pilot, lambda: app.counts.review == 0)
        assert "Marked 3 items OK" in said(app)


async def test_review_full_result_and_filters(backend: LocalBackend, clock: Any) -> None:
    long = "line\n" * 600
    await backend.log_review(ReviewCreate(agent="a", tool="dump", args={}, result=long, result_limit=100_000))
    async with console(backend, clock) as (app, pilot):
        await pilot.press("3", "slash", *"dump", "enter")
        await settle(app, pilot)
        pane = app.query_one(ReviewPane)
        assert pane.table.total == 1
        assert "more characters" in str(pane.detail._body.render())
        await pilot.press("enter")
        assert isinstance(app.screen, TextViewScreen)
        viewer = app.screen.query_one(TextViewer)
        assert sum(viewer.row_text(r).count("line") for r in range(viewer.row_count)) == 600
        await pilot.press("escape", "slash")
        await pilot.press(*"since:1h agent:coder-agent", "enter")
        await settle(app, pilot)
        assert pane.table.total == 2
        await pilot.press("slash", *"bogus:1", "enter")
        await settle(app, pilot)
        assert "unknown filter 'bogus'" in str(pane.query_one("ListBox").border_title)
        assert "bogus" not in pane.filter.terms  # a bad filter is reported, never half-applied


async def test_titles_say_what_they_count_in_the_clis_words(backend: LocalBackend, clock: Any) -> None:
    """``Requests (denied) (1)``, ``1 changes``, ``new`` where the CLI says unreviewed, and a Review
    tab count that matched nothing in the list's title."""
    async with console(backend, clock) as (app, pilot):
        await pilot.press("slash", *"status:denied", "enter")
        await settle(app, pilot)
        title = str(app.query_one("#approvals-list").border_title)
        assert title.startswith("Denied requests (1)") and ") (" not in title, title
        await pilot.press("3")
        await settle(app, pilot)
        pane = app.query_one(ReviewPane)
        unreviewed = (await backend.list_reviews(False, limit=1)).total
        assert unreviewed and app.counts.review == unreviewed
        title = str(pane.query_one("ListBox").border_title)
        assert title.startswith(f"Review queue ({pane.table.total}) · {unreviewed} unreviewed"), title
        states = {pane.table.item_at(i).id: review_cell(pane, i) for i in range(pane.table.row_count)}
        assert "unreviewed" in states.values() and "new" not in states.values(), states
        await pilot.press("slash", *"state:unreviewed", "enter")
        await settle(app, pilot)
        assert pane.table.total == unreviewed
        assert "unreviewed ·" not in str(pane.query_one("ListBox").border_title)  # the count is the list's own
        pane_caps = await goto_cap(app, pilot, "format_code")
        cap = pane_caps.table.cursor_item
        await pilot.press("h")
        assert isinstance(app.screen, HistoryScreen)
        heading = str(app.screen.query_one("#title").render())
        assert len(cap.history) == 1 and "(1 change, newest first)" in heading, heading


def review_cell(pane: ReviewPane, index: int) -> str:
    from hitl_tui.console.adapters import review_cells

    return review_cells(pane.table.item_at(index), NOW)["mark"][0]


# ======================================================================== capabilities


async def goto_cap(app: HitlConsole, pilot: Pilot, tool: str) -> Any:
    await pilot.press("4")
    await settle(app, pilot)
    pane = app.query_one(CapabilitiesPane)
    pane.table.move_cursor(pane.table.index_of(tool))
    await settle(app, pilot)
    return pane


async def test_promote_demote_set_and_history(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        pane = await goto_cap(app, pilot, "send_customer_email")
        await pilot.press("p")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")  # no reason: refused
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press(*"clean record for 3 months", "enter")
        await settle(app, pilot)
        cap = await backend.get_capability("send_customer_email")
        assert cap.stage is Stage.autonomous
        assert cap.history[-1].reason == "clean record for 3 months" and cap.history[-1].actor == REVIEWER
        await pilot.press("D", *"complaint from legal", "enter")
        await settle(app, pilot)
        assert (await backend.get_capability("send_customer_email")).stage is Stage.approval
        await pilot.press("s")
        assert isinstance(app.screen, StageScreen)
        await pilot.press("up", "enter", *"freeze", "enter")
        await settle(app, pilot)
        assert (await backend.get_capability("send_customer_email")).stage is Stage.disabled
        await until(pilot, lambda: pane.table.cursor_item.stage is Stage.disabled)
        await pilot.press("h")
        assert isinstance(app.screen, HistoryScreen)
        text = str(app.screen.query_one("#text").render())
        assert "approval → disabled" in text and "freeze" in text and "complaint from legal" in text


async def test_the_cursor_row_stays_in_view_after_a_resize(backend: LocalBackend, clock: Any) -> None:
    """At 60x15 the capabilities list showed the first rows while the detail showed the cursor's,
    scrolled off screen."""
    async with console(backend, clock, size=(120, 40)) as (app, pilot):
        pane = await goto_cap(app, pilot, "send_customer_email")  # the last row
        table = pane.table
        assert table.cursor == table.row_count - 1
        await pilot.resize_terminal(60, 15)
        await settle(app, pilot)
        top, rows = int(table.scroll_y), table.size.height - 1
        assert top <= table.cursor < top + rows, (top, rows, table.cursor)
        assert any("send_customer_email" in line for line in table_lines(table)[1:])


async def test_always_approval_needs_a_forced_override(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        await goto_cap(app, pilot, "delete_resource")
        await pilot.press("p")
        assert "FORCE" in str(app.screen.query_one("#title").render())
        await pilot.press("escape")
        assert (await backend.get_capability("delete_resource")).stage is Stage.approval
        await pilot.press("p", *"incident 42, 1 hour", "enter")
        await settle(app, pilot)
        cap = await backend.get_capability("delete_resource")
        assert cap.stage is Stage.autonomous and cap.history[-1].forced
        await pilot.press("p")  # already autonomous: nothing above
        assert "already autonomous" in said(app)


async def test_capability_record_and_live_stage_change(backend: LocalBackend, other: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        pane = await goto_cap(app, pilot, "deploy")
        rec = pane.evidence["deploy"].record
        # from the event log: decided in 90, 120 and 150 s (console_data.build)
        assert (rec.approved, rec.denied, rec.reviews_flagged, rec.median_decision_s) == (2, 1, 0, 120)
        assert "2 approved · 1 denied" in pane.detail.text()
        # a decision by another reviewer updates the record live, folding only the new events
        read, log_end = app.evidence.events_read, await backend.last_seq()
        assert read >= log_end > 40
        pending = (await backend.list_requests(RequestStatus.pending, tool="deploy")).items[0]
        await other.decide(pending.id, DecisionIn(decision="approve", reason="ship it"))
        await until(pilot, lambda: pane.evidence["deploy"].record.approved == 3)
        assert app.evidence.events_read - read == await backend.last_seq() - log_end  # no rescan
        await until(pilot, lambda: "3 approved · 1 denied" in pane.detail.text())
        await other.set_stage("deploy", Stage.disabled, reason="incident")
        await until(pilot, lambda: pane.table.cursor_item.stage is Stage.disabled)


@pytest.fixture
async def history(backend: LocalBackend, clock: Any) -> LocalBackend:
    """console_data.build plus weeks of decisions: a promotion to suggest, a calibration to draw."""
    await add_history(backend, clock)
    return backend


def cells(pane: CapabilitiesPane, tool: str) -> dict[str, Any]:
    cap = pane.table.item_at(pane.table.index_of(tool))
    return {k: text for k, (text, _style) in capability_cells(cap, pane.book.get(cap)).items()}


async def test_flags_read_as_words_that_cannot_be_confused(backend: LocalBackend, clock: Any) -> None:
    """``irrev,rev`` read as irreversible and reversible (rev was review-after); ``always,ir`` was cut."""
    async with console(backend, clock, size=(120, 40)) as (app, pilot):
        pane = await goto_cap(app, pilot, "delete_resource")
        assert cells(pane, "delete_resource")["flags"] == "always,no-undo"
        assert cells(pane, "db_migration")["flags"] == "no-undo,review"
        lines = table_lines(pane.table)
        assert any("always,no-undo " in line for line in lines), lines  # whole, in its column
        detail = str(pane.detail._body.render())
        assert "flags always needs approval, irreversible" in detail, detail
        await pilot.press("question_mark")
        text = str(app.screen.query_one("#scroll Static").render())
        assert "no-undo irreversible" in text and "review reviewed after it runs" in text


async def test_suggestion_shows_its_evidence_and_a_accepts_it_with_a_reason(
    history: LocalBackend, clock: Any
) -> None:
    async with console(history, clock) as (app, pilot):
        pane = await goto_cap(app, pilot, HISTORY_TOOL)
        evidence = "56 approved, 0 denied, 0 edited, 0 flagged in 30 days; median decision 33 s"
        assert pane.evidence[HISTORY_TOOL].suggestion.evidence == evidence
        assert cells(pane, HISTORY_TOOL)["suggest"] == "▲" and cells(pane, "deploy")["suggest"] == ""
        text = pane.detail.text()
        assert "Suggestion  ▲ promote approval → autonomous" in text and evidence in text
        assert "2 suggestions" in str(pane.query_one("ListBox").border_title)  # and create_github_issue's ▼
        await pilot.press("a")
        assert isinstance(app.screen, ConfirmScreen)
        assert evidence in str(app.screen.query_one("#body-text").render())
        await pilot.press("enter")  # a reason is required
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press(*"clean month", "enter")
        await settle(app, pilot)
        cap = await history.get_capability(HISTORY_TOOL)
        assert cap.stage is Stage.autonomous
        assert cap.history[-1].actor == REVIEWER
        assert cap.history[-1].reason == f"accepted suggestion: {evidence} (clean month)"
        await until(pilot, lambda: pane.evidence[HISTORY_TOOL].suggestion is None)
        await until(pilot, lambda: "Not suggested  already autonomous" in pane.detail.text())
        assert cells(pane, HISTORY_TOOL)["stage"] == "autonomous"
        await pilot.press("a")  # nothing left to accept: says why
        assert "No suggestion for send_customer_email: already autonomous" in said(app)


async def test_accept_refuses_on_a_read_only_connection(history: LocalBackend, clock: Any, db_path: Path) -> None:
    from hitl_tui.store.sqlite import SQLiteStore

    ro = ReadOnlyBackend(SQLiteStore(db_path, clock=clock), actor=REVIEWER)
    try:
        async with console(ro, clock) as (app, pilot):
            await goto_cap(app, pilot, HISTORY_TOOL)
            await pilot.press("a")
            assert not isinstance(app.screen, ConfirmScreen)
            assert "Read-only connection" in said(app)
        assert (await history.get_capability(HISTORY_TOOL)).stage is Stage.approval
    finally:
        await ro.close()


async def test_x_dismisses_a_suggestion_for_a_week(history: LocalBackend, clock: Any) -> None:
    from hitl_tui.autonomy import Autonomy

    async with console(history, clock) as (app, pilot):
        pane = await goto_cap(app, pilot, HISTORY_TOOL)
        await pilot.press("x")
        await settle(app, pilot)
        ev = pane.evidence[HISTORY_TOOL]
        assert ev.suggestion is None and ev.dismissed is not None
        assert ev.dismissal.by == REVIEWER and ev.dismissal.until == NOW + timedelta(days=7)
        assert cells(pane, HISTORY_TOOL)["suggest"] == ""
        assert "dismissed by alice until 2026-01-22" in pane.detail.text()
        assert "1 suggestion" in str(pane.query_one("ListBox").border_title)
        assert "Dismissed send_customer_email approval → autonomous until 2026-01-22" in said(app)
        await pilot.press("a")  # hidden: not accepted by accident
        assert not isinstance(app.screen, ConfirmScreen) and "dismissed until" in said(app)
    # remembered for this store: the CLI and a new console hide it too, until the week is over
    autonomy = Autonomy(history)
    await autonomy.refresh()
    assert [s.tool for s in autonomy.suggestions(now=NOW)] == ["create_github_issue"]
    assert HISTORY_TOOL in [s.tool for s in autonomy.suggestions(now=NOW + timedelta(days=7, seconds=1))]
    async with console(history, clock) as (app, pilot):
        pane = await goto_cap(app, pilot, HISTORY_TOOL)
        assert pane.evidence[HISTORY_TOOL].suggestion is None
        clock.advance(7 * 86400 + 1)
        pane.tick()  # a dismissal that ran out brings the suggestion back
        assert pane.evidence[HISTORY_TOOL].suggestion is not None


async def test_w_cycles_the_window(history: LocalBackend, clock: Any) -> None:
    async with console(history, clock) as (app, pilot):
        pane = await goto_cap(app, pilot, HISTORY_TOOL)
        title = lambda: str(pane.query_one("ListBox").border_title)  # noqa: E731
        assert "record: 30 days" in title()
        await pilot.press("w")
        assert "record: 90 days" in title() and pane.evidence[HISTORY_TOOL].record.window_days == 90
        assert "in 90 days" in pane.evidence[HISTORY_TOOL].suggestion.evidence
        await pilot.press("w")
        # 7 days: 21 of the 55 (request i is i % 20 days old) plus build's one of this morning
        ev = pane.evidence[HISTORY_TOOL]
        assert ev.record.approved == 22 and ev.suggestion is None
        assert "22 approved in 7 days; needs 50" in pane.detail.text()
        assert cells(pane, HISTORY_TOOL)["approved"] == "22" and cells(pane, HISTORY_TOOL)["suggest"] == ""
        await pilot.press("w")
        assert "record: 30 days" in title() and pane.evidence[HISTORY_TOOL].suggestion is not None


async def test_calibration_panel_against_a_known_history(history: LocalBackend, clock: Any) -> None:
    async with console(history, clock, size=(120, 40)) as (app, pilot):
        pane = await goto_cap(app, pilot, CALIBRATED_TOOL)
        text = pane.detail.text()
        # deploy: at 40, 1 approved 4 denied; at 75, 3 and 2; at 95, 10 and 0 (console_data.add_history)
        assert re.search(r" 0-59 █+░+  20%  1/5 approved", text)
        assert re.search(r"60-89 █+░+  60%  3/5 approved", text)
        assert re.search(r"90-100 █+ 100%  10/10 approved", text)
        assert "no threshold suggestion: sample too small: 20 decided requests carried a confidence; " \
               "a suggestion needs at least 30" in text
        pane.table.move_cursor(pane.table.index_of(HISTORY_TOOL))
        await settle(app, pilot)
        text = pane.detail.text()
        assert re.search(r"60-89 █+ 100%  30/30 approved", text) and "0-59 ·" in text
        assert "suggested thresholds: approval ≥ 80, autonomous ≥ 80" in text
        assert "0 of 55 decided requests at or above it were denied" in text
        await pilot.press("c")
        assert isinstance(app.screen, CalibrationScreen)
        full = str(app.screen.query_one("#text").render())
        assert re.search(r"80-89 █+ 100%  30/30 approved", full)
        assert re.search(r"90-100 █+ 100%  25/25 approved", full)
        assert re.search(r"70-79 ·+   -   no decisions", full)
        await pilot.press("escape")
        assert not isinstance(app.screen, CalibrationScreen)


async def test_a_flag_demotes_the_autonomous_capability_live(
    backend: LocalBackend, other: LocalBackend, clock: Any
) -> None:
    async with console(backend, clock) as (app, pilot):
        assert app.flag_watch
        await until(pilot, lambda: app.flag_watch_from is not None)
        # flagged in this console's review pane
        await pilot.press("3")
        review = app.query_one(ReviewPane)
        for row in range(review.table.row_count):
            item = review.table.item_at(row)
            if item.tool == "format_code" and not item.reviewed:
                review.table.move_cursor(row)
                break
        await settle(app, pilot)
        bells = app.bells
        await pilot.press("f", *HOSTILE[0], "enter")
        await until(pilot, lambda: "format_code demoted to approval" in said(app))
        cap = await backend.get_capability("format_code")
        assert cap.stage is Stage.approval and cap.history[-1].reason.startswith("auto-demoted: review #")
        assert app.bells == bells + 1
        assert f"flagged by alice: {HOSTILE[0]}" in said(app)  # literal text: the link never ran
        await pilot.press("4")
        pane = app.query_one(CapabilitiesPane)
        await until(pilot, lambda: pane.table.item_at(pane.table.index_of("format_code")).stage is Stage.approval)
        # flagged by another reviewer, on their own connection
        item = await other.log_review(ReviewCreate(agent="ops-agent", tool="read_logs", args={}, result="ok"))
        await other.mark_review(item.id, ReviewMark(verdict=Verdict.flagged, note="read prod secrets"))
        await until(pilot, lambda: "read_logs demoted to approval: review" in said(app))
        assert (await backend.get_capability("read_logs")).stage is Stage.approval
        assert app.bells == bells + 2
        await until(pilot, lambda: pane.table.item_at(pane.table.index_of("read_logs")).stage is Stage.approval)
        assert app.is_running


async def test_flags_only_suggest_a_demotion_in_suggest_mode(
    backend: LocalBackend, other: LocalBackend, clock: Any
) -> None:
    settings = Settings(reviewer=REVIEWER, autonomy={"demote_on_flag": "suggest"}, console={"bell": False})
    async with console(backend, clock, settings=settings) as (app, pilot):
        assert not app.flag_watch
        pane = await goto_cap(app, pilot, "read_logs")
        item = await other.log_review(ReviewCreate(agent="ops-agent", tool="read_logs", args={}, result="ok"))
        await other.mark_review(item.id, ReviewMark(verdict=Verdict.flagged, note="too broad"))
        await until(pilot, lambda: pane.evidence["read_logs"].suggestion is not None)
        s = pane.evidence["read_logs"].suggestion
        assert s.kind == "demote" and s.evidence == f"review #{item.id} flagged by bob: too broad"
        assert (await backend.get_capability("read_logs")).stage is Stage.autonomous
        assert cells(pane, "read_logs")["suggest"] == "▼" and app.bells == 0
        await pilot.press("a", *"agreed", "enter")
        await settle(app, pilot)
        cap = await backend.get_capability("read_logs")
        assert cap.stage is Stage.approval and cap.history[-1].reason.endswith("too broad (agreed)")
        assert "demoted" not in said(app).lower()  # a reviewer's own change is not an automatic demotion


class NoLogBackend(LocalBackend):
    """A connection that may not read the event log (as a server may refuse a token)."""

    async def events_after(self, seq: int, limit: int = 1000) -> list[Any]:
        from hitl_tui.errors import Forbidden

        raise Forbidden("this token may not read the event log")


async def test_records_say_when_the_log_cannot_be_read(history: LocalBackend, clock: Any, db_path: Path) -> None:
    from hitl_tui.store.sqlite import SQLiteStore

    b = NoLogBackend(SQLiteStore(db_path, clock=clock), actor=REVIEWER)
    try:
        async with console(b, clock) as (app, pilot):
            pane = await goto_cap(app, pilot, HISTORY_TOOL)
            assert "records unavailable: this token may not read the event log" in str(
                pane.query_one("ListBox").border_title
            )
            assert cells(pane, HISTORY_TOOL)["approved"] == "…"  # unknown, never a made-up zero
            await pilot.press("a")
            assert "its record is unavailable (this token may not read" in said(app)
            assert not isinstance(app.screen, ConfirmScreen)
    finally:
        await b.close()


async def test_evidence_folds_a_backlog_in_slices(history: LocalBackend) -> None:
    from hitl_tui.console.evidence import EvidenceBook

    book = EvidenceBook(history, Settings())
    seen: list[int] = []
    read = await book.refresh(on_progress=seen.append, slice_size=25)
    end = await history.last_seq()
    assert end > 150 and read == end == book.last_seq
    assert seen == list(range(25, end + 1, 25))  # one step per slice, the loop given back between them
    assert not book.folding
    assert await book.refresh() == 0  # nothing new: nothing read
    book.compute(NOW)
    assert book.suggestion_count == 2


# ======================================================================== global keys, help, palette, mouse


async def test_pane_switching_keys_and_mouse(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        assert app.active_pane.PANE_ID == "approvals"
        for key, pane_id in [("2", "escalations"), ("3", "review"), ("4", "capabilities"), ("1", "approvals")]:
            await pilot.press(key)
            assert pane_id == app.active_pane.PANE_ID
            assert app.focused is app.active_pane.table
        await pilot.press("tab")
        assert app.active_pane.PANE_ID == "escalations"
        await pilot.press("shift+tab", "shift+tab")
        assert app.active_pane.PANE_ID == "capabilities"
        await pilot.click("#tabs", offset=(4, 0))
        assert app.active_pane.PANE_ID == "approvals"
        table = approvals(app).table
        await pilot.click("#approvals-table", offset=(10, 3))  # header is row 0: this is the third row
        assert table.cursor == 2


async def test_help_lists_the_keys_of_the_current_pane(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#scroll Static").render())
        for words in ("Approve", "Deny", "Edit", "Select", "Approve all", "Filter", "Command palette"):
            assert words in text
        await pilot.press("escape", "4", "question_mark")
        text = str(app.screen.query_one("#scroll Static").render())
        assert "Promote" in text and "Demote" in text and "History" in text and "Deny" not in text
        for words in ("Accept suggestion", "Dismiss suggestion", "Record window", "Calibration"):
            assert words in text
        await pilot.press("q")  # closes help, does not quit
        assert app.is_running and not isinstance(app.screen, HelpScreen)


def screen_text(app: HitlConsole) -> str:
    """The characters on screen, as a terminal would show them."""
    update = app.screen._compositor.render_full_update()
    return "\n".join("".join(seg.text for seg in strip) for strip in update.strips)


@pytest.mark.parametrize("pane", ["1", "2", "3", "4"])
async def test_help_scrolls_with_the_keys_it_lists(backend: LocalBackend, clock: Any, pane: str) -> None:
    """At 80x24 the help is taller than the screen: j/k, the arrows, g/G scroll it, from any pane."""
    async with console(backend, clock, size=(80, 24)) as (app, pilot):
        await pilot.press(pane)
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        scroll = app.screen.query_one("#scroll")
        assert scroll.max_scroll_y > 0 and "Command palette" not in screen_text(app)
        for key, moved in (("j", 1), ("down", 2), ("k", 1), ("up", 0)):
            await pilot.press(key)
            await pilot.pause()
            assert scroll.scroll_y == moved, key
        await pilot.press("G")
        await pilot.pause()
        assert scroll.scroll_y == scroll.max_scroll_y
        assert "Everywhere" in screen_text(app) and "Command palette" in screen_text(app)
        await pilot.press("g")
        await pilot.pause()
        assert scroll.scroll_y == 0


async def test_command_palette_runs_pane_actions(backend: LocalBackend, clock: Any) -> None:
    from textual.command import CommandPalette

    async with console(backend, clock) as (app, pilot):
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"Review: Mark OK")
        await until(pilot, lambda: "Mark OK" in str(app.screen.query_one("CommandList").get_option_at_index(0).prompt))
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.active_pane.PANE_ID == "review"
        await until(pilot, lambda: "Marked #" in said(app))
        # the capability pane's new keys are in the palette too
        await pilot.press("ctrl+p", *"Capabilities: Record window")
        first = lambda: str(app.screen.query_one("CommandList").get_option_at_index(0).prompt)  # noqa: E731
        await until(pilot, lambda: "Record window" in first())
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.active_pane.PANE_ID == "capabilities" and app.evidence.window_days == 90


async def test_quit_with_q(backend: LocalBackend, clock: Any) -> None:
    async with console(backend, clock) as (app, pilot):
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


# ======================================================================== hostile text


async def test_hostile_agent_text_is_inert_everywhere(db_path: Path, clock: Any) -> None:
    b = open_backend(db_path, clock)
    try:
        for i, bad in enumerate(HOSTILE):
            await b.create_request(
                RequestCreate(
                    agent=f"agent{bad}",
                    tool=f"tool{i}{bad}",
                    args={"k": bad, bad: [bad]},
                    summary=bad,
                    context=bad,
                    policy_reason=bad,
                    risk=Risk.high,
                )
            )
            esc = await b.create_escalation(EscalationCreate(agent=f"a{bad}", message=bad, context=bad))
            await b.post_message(esc.id, bad, author="agent", role=MessageRole.agent)
            await b.log_review(ReviewCreate(agent=f"a{bad}", tool=f"t{bad}", args={"x": bad}, result=bad))
        async with console(b, clock, size=(120, 40)) as (app, pilot):
            # a live arrival too: the notification title and text carry agent strings
            await b.create_request(
                RequestCreate(agent=HOSTILE[0], tool=HOSTILE[1], summary=HOSTILE[3], risk=Risk.critical)
            )
            await until(pilot, lambda: app.counts.pending == len(HOSTILE) + 1)
            for key in ("1", "2", "3", "4", "1"):
                await pilot.press(key)
                await settle(app, pilot)
                for row in range(3):
                    app.active_pane.table.move_cursor(row)
                    await settle(app, pilot)
                    await pilot.click(f"#{app.active_pane.PANE_ID}-table", offset=(30, row + 1))
                    svg = app.export_screenshot()
                    assert "\x1b" not in svg and "\x9b" not in svg and "\u202e" not in svg and "\x00" not in svg
            assert app.is_running  # [@click=app.quit] never ran
            pane = approvals(app)
            await pilot.press("1")
            seen = []
            for row in range(pane.table.row_count):
                pane.table.move_cursor(row)
                await settle(app, pilot)
                detail = str(pane.detail._body.render())
                assert is_clean(detail)
                seen.append(detail)
            shown = "\n".join(seen)
            for literal in ("[@click=app.quit]click me[/]", "[link=http://evil.example]docs[/link]", "[b red]bold[/]"):
                assert literal in shown  # shown as the text it is
            assert "\\x1b[2J" in shown and "\\u202e" in shown and "\\x9b" in shown and "cr\\rover" in shown
            notes = said(app)
            assert is_clean(notes) and "\\x1b" in notes
    finally:
        await b.close()


# ======================================================================== CLI


def test_console_command_is_registered(cli_env: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hitl_tui", "console", "--help"], env=cli_env, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0 and "reviewer console" in out.stdout


def test_now_is_fixed_for_tests() -> None:
    assert NOW.tzinfo is not None


async def test_no_color_is_respected(backend: LocalBackend, clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    async with console(backend, clock) as (app, _pilot):
        assert app.no_color
        fills = set(re.findall(r"fill: #([0-9a-f]{6})", app.export_screenshot()))
        # monochrome: every colour is a grey (red == green == blue), no risk or state colours;
        # c5c8c6 is the SVG template's own default text colour
        assert fills and {f for f in fills if not f[0:2] == f[2:4] == f[4:6]} <= {"c5c8c6"}


async def test_a_burst_of_arrivals_is_one_summary_not_a_wall_of_toasts(
    backend: LocalBackend, other: LocalBackend, clock: Any
) -> None:
    async with console(backend, clock) as (app, pilot):
        bells = app.bells
        await other.create_request(RequestCreate(agent="a1", tool="deploy", risk=Risk.high))
        await until(pilot, lambda: "New high-risk request" in said(app))
        assert app.bells == bells + 1
        for n in range(5):
            await other.create_request(RequestCreate(agent=f"b{n}", tool="drop_table", risk=Risk.critical))
        await until(pilot, lambda: len(app._alert_queue) == 5)
        assert app.bells == bells + 1  # still inside the quiet window: nothing more yet
        app._alert_timer.stop()  # let the window end now rather than waiting for it
        app._flush_alerts()
        assert app.bells == bells + 2
        assert "5 new requests: 5 critical" in said(app) and "b4" in said(app)
        # a mixed batch: the title counts each risk; the latest is named with its own
        app.said.clear()
        await other.create_request(RequestCreate(agent="c1", tool="drop_table", risk=Risk.critical))
        await other.create_request(RequestCreate(agent="c2", tool="send_customer_email", risk=Risk.high))
        await until(pilot, lambda: len(app._alert_queue) == 2)
        app._alert_timer.stop()
        app._flush_alerts()
        _sev, title, text = app.said[-1]
        assert title == "2 new requests: 1 critical, 1 high", title
        assert text.startswith("latest #") and "(high risk) c2 → send_customer_email" in text, text
