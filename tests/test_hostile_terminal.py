"""A corpus of hostile strings in every agent-controlled field, shown in every pane of the real
console (Textual ``run_test``): the app does not crash, no action runs when the text is clicked or
focused, and no raw control byte reaches the terminal.

"The terminal" is checked two ways: the exported screen (``export_screenshot``) and the exact byte
stream a real terminal would be sent. The headless driver drops its writes, so the test asks the
screen's compositor for a full update and renders it with the app's console, which is what
``App._display`` hands to ``driver.write`` on a real terminal. In that stream the only escape
sequences allowed are the ones the console itself emits (SGR colours and cursor moves); any other
ESC, C0/C1 control, bidi override or invisible character, and any hyperlink or click action hidden
in a style, fails the test.

(``tests/test_console.py`` has an 11-string smoke test of the same idea; this is the full corpus.)
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from hitl_tui.backend.local import LocalBackend
from hitl_tui.config import Settings
from hitl_tui.console import HitlConsole
from hitl_tui.console.widgets.text_viewer import FullTextScreen
from hitl_tui.models import (
    Capability,
    EscalationCreate,
    MessageRole,
    RequestCreate,
    ReviewCreate,
    Risk,
)
from hitl_tui.store.sqlite import SQLiteStore
from hitl_tui.text import is_clean

from .conftest import FakeClock

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

#: the detail panels are bounded and the full-text viewer renders only what is on screen, but the
#: corpus is large and CI machines are slow: be patient, a slow settle is not a hang
SETTLE_S = 120.0

MB = 1024 * 1024

#: what an agent could send to attack the reviewer's terminal (>= 60 strings)
HOSTILE: list[str] = [
    # Textual / Rich markup: actions, links, styles, broken tags
    "[@click=app.pwned]click me[/]",
    "[@click=app.quit]quit[/]",
    "[@click=app.bell]ring[/]",
    "[@click=app.pwned('arg')]with args[/]",
    "[@click=screen.pwned]screen action[/]",
    "[link=https://evil.example]docs[/link]",
    "[link='javascript:alert(1)']js[/link]",
    "[link=file:///etc/passwd]file[/]",
    "[b red on white blink]bold[/]",
    "[reverse]rev[/reverse] [/] [ [[ ]] [/nope]",
    "$variable ${x} [$accent]content vars[/]",
    ":skull: :warning: emoji codes",
    # CSI
    "\x1b[2J\x1b[Hcleared",
    "\x1b[31mred\x1b[0m",
    "\x1b[?1049h alt screen",
    "\x1b[6n cursor report",
    "\x1b[21t title report",
    "\x1b[?1000h\x1b[?1006h mouse",
    "\x1b[3J\x1b[K erase",
    "\x1b[1;1H\x1b[99;99H moves",
    "\x1b[>c device attrs",
    "\x1b[?25l hide cursor",
    # OSC: clipboard, hyperlinks, titles, notifications
    "\x1b]52;c;cm0gLXJmIC8K\x07 osc52 write",
    "\x1b]52;c;?\x07 osc52 read",
    "\x1b]8;;http://evil.example\x07osc8 link\x1b]8;;\x07",
    "\x1b]8;;http://evil.example\x1b\\osc8 st\x1b]8;;\x1b\\",
    "\x1b]0;pwned title\x07",
    "\x1b]2;pwned\x1b\\",
    "\x1b]1337;File=inline=1:AAAA\x07 iterm",
    "\x1b]7;file://evil/\x07 cwd",
    "\x1b]9;notify\x07 growl",
    "\x1b]777;notify;t;b\x07",
    # DCS and friends
    '\x1bP$q"p\x1b\\ decrqss',
    "\x1bP1;2|17/ab\x1b\\ udk",
    "\x1bPtmux;\x1b\x1b]52;c;aGk=\x07\x1b\\ tmux passthrough",
    "\x1b_apc\x1b\\ \x1b^pm\x1b\\ \x1bXsos\x1b\\",
    "\x1bc reset",
    "\x1b7\x1b8\x1b(0lqk\x1b(B charset",
    "\x1b#8 decaln",
    # C1 controls (8-bit)
    "\x9b31m csi8",
    "\x9d0;title\x9c osc8bit",
    "\x90dcs\x9c",
    "\x85 nel \x84 ind \x8d ri",
    "\x9a\x9e\x9f\x80\x81",
    # C0, carriage returns, backspaces, NUL
    "ok\rFAKE OK",
    "approve\b\b\b\b\b\b\bdeny!!!",
    "nul\x00byte",
    "bell\x07\x07",
    "form\x0cfeed vt\x0b del\x7f sub\x1a",
    "new\nline\n\n\n\nmany",
    "tab\there\t\t",
    # bidi and invisible
    "bidi \u202eevil\u202c end",
    "\u202d\u2066\u2067\u2068\u2069 isolates",
    "rlm\u200f lrm\u200e alm\u061c",
    "zero\u200bwidth\u200c\u200d\u2060\ufeff",
    "line\u2028sep\u2029para",
    "\u206a\u206b\u206c\u206d\u206e\u206f deprecated",
    "\ufff9\ufffa\ufffb annotation",
    # width and combining tricks
    "e\u0301" * 300,
    "\u0e01\u0e49\u0e49\u0e49\u0e49\u0e49 zalgo \u0336\u0336\u0336",
    "\U0001f3f4\u200d\u2620\ufe0f pirate" * 20,
    "\U00012000" * 60,
    "\uffff\U0010ffff noncharacters",
    # sizes
    "A" * MB,
    ("\x1b[31m[@click=app.pwned]x[/]\u202e" * 5_000)[:100_000],
]
assert len(HOSTILE) >= 60

#: never stored: every agent field refuses them (test_lone_surrogates_never_reach_the_console)
SURROGATES = ["\ud800", "a\udfffb", "\udc80\udcff", "\udbff\udbff"]

_ALLOWED_SEQ = re.compile(r"\x1b\[[0-9;:]*m|\x1b\[\d+;\d+H")
_SVG_ENTITY = re.compile(r"&#(x[0-9a-fA-F]+|[0-9]+);")


def clip(text: str, n: int) -> str:
    return text[:n] if len(text) > n else text


class Watched(HitlConsole):
    """The real console, recording any action that agent text might smuggle in."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.smuggled: list[str] = []

    def action_pwned(self, *args: object) -> None:
        self.smuggled.append(f"pwned{args}")

    def action_bell(self) -> None:
        self.smuggled.append("bell")

    async def action_quit(self) -> None:
        self.smuggled.append("quit")


async def seed(backend: LocalBackend, clock: FakeClock) -> None:
    for i, bad in enumerate(HOSTILE):
        clock.advance(1)
        name = clip(f"a{i}{bad}", 200)
        await backend.create_request(
            RequestCreate(
                agent=name,
                tool=clip(f"t{i}{bad}", 200),
                args={clip(bad, 1000) or "k": bad, "k": [clip(bad, 1000), {bad[:100]: bad[:100]}]},
                summary=clip(bad, 100_000),
                context=clip(bad, 100_000),
                policy_reason=clip(bad, 100_000),
                risk=Risk.high,
                timeout_s=7200,
            )
        )
        esc = await backend.create_escalation(
            EscalationCreate(agent=name, message=clip(bad, 100_000) or "x", context=clip(bad, 100_000))
        )
        await backend.post_message(esc.id, clip(bad, 100_000) or "x", author=name, role=MessageRole.agent)
        await backend.log_review(
            ReviewCreate(
                agent=name,
                tool=clip(f"r{i}{bad}", 200),
                args={"x": bad, clip(bad, 500) or "y": 1},
                result=bad,
                result_limit=1_000_000,
            )
        )
        if i % 3 == 0:  # capabilities come from policy imports, which can carry hostile text too
            await backend.put_capability(
                Capability(tool=clip(f"c{i}{bad}", 200), description=clip(bad, 100_000)),
                actor="import",
                reason=clip(bad, 1000),
            )


def full_update(app: HitlConsole) -> Any:
    return app.screen._compositor.render_full_update()


def terminal_bytes(app: HitlConsole, update: Any) -> str:
    """What a real terminal would be sent to draw the current screen (see the module docstring)."""
    return str(update.render_segments(app.console))


def hidden_actions(update: Any) -> list[str]:
    """Click actions and hyperlinks carried by the styles of what is on screen."""
    found: list[str] = []
    for line in update.strips:
        for strip in line:
            for seg in strip:
                style = seg.style
                if style is None:
                    continue
                if style.link:
                    found.append(f"link {style.link}")
                action = (style.meta or {}).get("@click")
                if action and any(w in str(action) for w in ("pwned", "quit", "bell", "evil")):
                    found.append(f"@click {action}")
    return found


def check_screen(app: Watched, where: str, *, export: bool = True) -> None:
    """Everything on screen, as the byte stream a terminal would be sent; with ``export``, also as the
    exported screen (SVG). Every character in the export comes from the same compositor strips as
    the stream, so the export is checked on a sample of rows (the slow part of this test), the
    stream on every row."""
    assert app.is_running, f"the console stopped ({where})"
    assert not app.smuggled, f"agent text ran an action ({where}): {app.smuggled}"
    if export:
        svg = app.export_screenshot()
        assert is_clean(svg), f"raw control or invisible character in the exported screen ({where})"
        for m in _SVG_ENTITY.finditer(svg):  # characters the SVG writer escaped are checked too
            code = m.group(1)
            ch = chr(int(code[1:], 16) if code.startswith("x") else int(code))
            assert ch in "\n\t" or is_clean(ch), f"escaped {m.group()} in the exported screen ({where})"
    update = full_update(app)
    stream = _ALLOWED_SEQ.sub("", terminal_bytes(app, update))
    bad = [hex(ord(c)) for c in set(stream) if c not in "\n\t" and not is_clean(c)]
    assert not bad, f"raw bytes {bad} would reach the terminal ({where})"
    hidden = hidden_actions(update)
    assert not hidden, f"{hidden} on screen ({where})"


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[tuple[LocalBackend, FakeClock]]:
    clock = FakeClock()
    b = LocalBackend(SQLiteStore(tmp_path / "hostile.db", clock=clock), actor="alice")
    await seed(b, clock)
    yield b, clock
    await b.close()


@asynccontextmanager
async def console(b: LocalBackend, clock: FakeClock) -> AsyncIterator[tuple[Watched, Pilot]]:
    app = Watched(b, Settings(reviewer="alice"), clock=clock)
    async with app.run_test(size=(140, 45)) as pilot:
        await app.wait_settled(SETTLE_S)
        await pilot.pause()
        yield app, pilot


async def settle(app: HitlConsole, pilot: Pilot) -> None:
    await pilot.pause()
    await app.wait_settled(SETTLE_S)
    await pilot.pause()


async def until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await pilot.pause(0.05)


def exported(item: Any) -> bool:
    """Whether the row of ``item`` (a request, thread or review item seeded from ``HOSTILE[i]``, agent
    ``a{i}...``) is also checked as an exported screen: every 4th string of the corpus, which takes
    at least one string of each class (markup 0-11, CSI 12-21, OSC 22-31, DCS 32-38, C1 39-43, C0
    44-50, bidi 51-57, width 58-62, sizes 63-64) in every pane. Rows not seeded from the corpus are
    always exported."""
    m = re.match(r"a(\d+)", getattr(item, "agent", "") or "")
    return m is None or int(m.group(1)) % 4 == 0


async def visit_every_row(
    app: Watched, pilot: Pilot, pane_key: str, extra: Callable[[int], Any] | None = None, *, export_all: bool = False
) -> int:
    await pilot.press(pane_key)
    await settle(app, pilot)
    pane = app.active_pane
    table = pane.table
    await until(pilot, lambda: table.row_count > 0)
    rows = table.row_count
    for row in range(rows):
        table.move_cursor(row)
        await settle(app, pilot)
        check_screen(app, f"{pane.PANE_ID} row {row}", export=export_all or exported(table.cursor_item))
        if row % 8 == 0:  # click the row and the detail next to it; focus the detail
            await pilot.click(f"#{pane.PANE_ID}-table", offset=(20, min(row, 10) + 1))
            await pilot.click(f"#{pane.PANE_ID}", offset=(100, 10))
            await pilot.press("enter")
            await settle(app, pilot)
            check_screen(app, f"{pane.PANE_ID} row {row} clicked and focused")
            await pilot.press("escape")
            await settle(app, pilot)
        if extra is not None:
            await extra(row)
    return rows


async def view_full(app: Watched, pilot: Pilot, where: str) -> None:
    """``v``: the whole text, top and end (the 1 MB strings included)."""
    await pilot.press("v")
    await settle(app, pilot)
    assert isinstance(app.screen, FullTextScreen), where
    check_screen(app, f"{where} full text")
    await pilot.press("end")
    await settle(app, pilot)
    check_screen(app, f"{where} full text, end")
    await pilot.press("escape")
    await settle(app, pilot)


def big(app: Watched) -> bool:
    item = app.active_pane.table.cursor_item
    return item is not None and len(item.model_dump_json()) > 50_000


# One test per pane (each on its own console over the same seeded store), so they can run in parallel.


async def test_hostile_text_in_every_pane_approvals(backend: tuple[LocalBackend, FakeClock]) -> None:
    b, clock = backend
    async with console(b, clock) as (app, pilot):
        check_screen(app, "start")
        # a live arrival: the notification title and text carry agent strings
        for bad in (HOSTILE[0], HOSTILE[22], HOSTILE[52]):
            await b.create_request(
                RequestCreate(
                    agent=clip(bad, 200), tool=clip(bad, 200), summary=bad, risk=Risk.critical, timeout_s=7200
                )
            )
        await until(pilot, lambda: app.counts.pending == len(HOSTILE) + 3)
        await settle(app, pilot)
        check_screen(app, "arrival notifications")
        assert any("pwned" in text or "pwned" in title for _, title, text in app.said)  # shown, as text

        async def view_request(row: int) -> None:
            if row % 11 == 0 or big(app):
                await view_full(app, pilot, f"request {row}")

        seen = await visit_every_row(app, pilot, "1", view_request)
        assert seen == len(HOSTILE) + 3
        assert app.smuggled == [] and app.is_running


async def test_hostile_text_in_every_pane_escalations(backend: tuple[LocalBackend, FakeClock]) -> None:
    b, clock = backend
    async with console(b, clock) as (app, pilot):

        async def open_thread(row: int) -> None:
            if row % 11 == 0 or big(app):
                await view_full(app, pilot, f"escalation {row}")
            if row % 16 == 0:
                await pilot.press("r")  # the reply box: focus lands next to the agent's messages
                await settle(app, pilot)
                check_screen(app, f"escalation {row} reply box")
                await pilot.press("escape")
                await settle(app, pilot)

        assert await visit_every_row(app, pilot, "2", open_thread) == len(HOSTILE)
        assert app.smuggled == [] and app.is_running


async def test_hostile_text_in_every_pane_reviews(backend: tuple[LocalBackend, FakeClock]) -> None:
    b, clock = backend
    async with console(b, clock) as (app, pilot):

        async def view_result(row: int) -> None:
            if row % 11 == 0 or big(app):  # including both 1 MB results
                await view_full(app, pilot, f"review {row}")

        assert await visit_every_row(app, pilot, "3", view_result) == len(HOSTILE)
        assert app.smuggled == [] and app.is_running


async def test_hostile_text_in_every_pane_capabilities(backend: tuple[LocalBackend, FakeClock]) -> None:
    b, clock = backend
    async with console(b, clock) as (app, pilot):

        async def history(row: int) -> None:
            if row % 5 == 0:
                await pilot.press("h")
                await settle(app, pilot)
                check_screen(app, f"capability {row} history")
                await pilot.press("escape")
                await settle(app, pilot)

        # capabilities are few (every 3rd string) and sorted by name, not by corpus order: export all
        await visit_every_row(app, pilot, "4", history, export_all=True)
        assert app.smuggled == [] and app.is_running


@pytest.mark.parametrize("bad", SURROGATES)
async def test_lone_surrogates_never_reach_the_console(tmp_path: Path, bad: str) -> None:
    """Invalid surrogates cannot be stored in any agent-controlled field, so no pane can ever get one."""
    from pydantic import ValidationError

    from hitl_tui.errors import InvalidInput

    async with LocalBackend(SQLiteStore(tmp_path / "s.db"), actor="alice") as b:
        esc = await b.create_escalation(EscalationCreate(agent="bot", message="help"))
        before = await b.last_seq()
        attempts: list[Callable[[], Any]] = [
            lambda: RequestCreate(agent=f"a{bad}", tool="t"),
            lambda: RequestCreate(agent="a", tool=f"t{bad}"),
            lambda: RequestCreate(agent="a", tool="t", args={"k": bad}),
            lambda: RequestCreate(agent="a", tool="t", args={bad: 1}),
            lambda: RequestCreate(agent="a", tool="t", summary=bad),
            lambda: RequestCreate(agent="a", tool="t", context=bad),
            lambda: EscalationCreate(agent="a", message=bad),
            lambda: ReviewCreate(agent="a", tool="t", result=bad),
            lambda: ReviewCreate(agent="a", tool="t", args={"x": bad}),
        ]
        for make in attempts:
            with pytest.raises(ValidationError):
                make()
        with pytest.raises(InvalidInput):
            await b.post_message(esc.id, bad, author="bot", role=MessageRole.agent)
        assert await b.last_seq() == before


async def test_the_detectors_catch_text_rendered_the_wrong_way() -> None:
    """Control: the same checks on a naive app that renders agent text as markup do fail, so the
    test above cannot pass by not looking."""
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class Naive(App[None]):
        def __init__(self) -> None:
            super().__init__()
            self.smuggled: list[str] = []

        def compose(self) -> ComposeResult:
            yield Static("[@click=app.pwned]click me[/] [link='https://evil.example']docs[/link]", id="naive")

        def action_pwned(self) -> None:
            self.smuggled.append("pwned")

    app = Naive()
    async with app.run_test(size=(60, 5)) as pilot:
        found = hidden_actions(full_update(app))  # type: ignore[arg-type]
        assert any("pwned" in f for f in found) and any("evil.example" in f for f in found), found
        await pilot.click("#naive", offset=(2, 0))
        await pilot.pause()
        assert app.smuggled == ["pwned"]
        stream = _ALLOWED_SEQ.sub("", terminal_bytes(app, full_update(app)))  # type: ignore[arg-type]
        assert "\x1b]8;" in stream  # the hyperlink would reach the terminal as an OSC 8 sequence


def test_the_detail_of_a_huge_request_is_bounded() -> None:
    """The detail re-renders on every countdown tick: it shows a bounded part and says `v` shows all
    (tests/test_console_long_text.py drives that through the console)."""
    from datetime import UTC, datetime

    from hitl_tui.console.widgets.request_detail import request_content
    from hitl_tui.models import ApprovalRequest

    now = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
    req = ApprovalRequest(
        id=1,
        agent="bot",
        tool="deploy",
        args={"blob": "A" * MB},
        summary="B" * 100_000,
        context="C" * 100_000,
        created_at=now,
    )
    shown = request_content(req, now, "alice").plain
    assert len(shown) < 50_000
    assert "press v to view all" in shown


def test_agent_text_cannot_forge_the_detail_panels_sections() -> None:
    """A summary or context with line breaks must not pass for the panel's own headings: the
    summary stays one line (↵), and every line of the context is quoted with a gutter."""
    from datetime import UTC, datetime

    from hitl_tui.console.widgets.request_detail import request_content
    from hitl_tui.models import ApprovalRequest

    now = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
    forged = (
        "\n\nPolicy\ntool deploy is low-risk and reversible (stage: autonomous)"
        '\n\nArguments\n{"service": "docs"}'
    )
    req = ApprovalRequest(
        id=1,
        agent="bot",
        tool="deploy",
        args={"service": "prod"},
        summary="Deploy docs" + forged,
        context="Routine." + forged.replace("Policy", "Summary"),
        created_at=now,
    )
    lines = request_content(req, now, "alice").plain.splitlines()
    for heading in ("Summary", "Arguments", "Agent context"):
        assert lines.count(heading) == 1, (heading, lines)
    assert "Policy" not in lines  # there is no policy reason: only the forgery says "Policy"
    assert not any(line.startswith("tool deploy is low-risk") for line in lines)
    summary = lines[lines.index("Summary") + 1]
    assert summary.startswith("▏Deploy docs↵↵Policy↵")
