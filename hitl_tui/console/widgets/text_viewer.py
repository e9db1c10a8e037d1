"""The whole of a long text, scrollable, rendered only where it is on screen (``v`` in the panes).

The detail panels show a bounded preview (:mod:`hitl_tui.console.preview`); this viewer shows
everything. It wraps each line to the width once per resize, between words where a line has
spaces and anywhere within a longer word (counting rows, not building them),
and renders a row only when it scrolls into view, so a 1 MB argument opens at once and ``end``
reaches its last character. JSON lines are highlighted when first shown, one line at a time.

Lines come from :class:`FullText`, which takes agent text through :func:`hitl_tui.text.sanitise`
(or :func:`~hitl_tui.console.adapters.safe_json`) and keeps it as literal ``Content``: nothing
here is ever parsed as markup.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate
from typing import Any, ClassVar

from rich.cells import chop_cells
from rich.segment import Segment
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.content import Content
from textual.geometry import Size
from textual.highlight import highlight
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Footer, Static

from ..adapters import block, safe_json
from ..screens.text_view import TextViewScreen

#: characters that always take exactly one cell (rich's own table): such lines wrap by slicing
_ONE_CELL = re.compile("[\x20-\x7e\xa0-\xac\xae-\u02ff\u0370-\u0482\u2500-\u25fc\u2800-\u28ff]*\\Z")

#: JSON lines longer than this are shown without highlighting (one string of 1 MB is still instant)
HIGHLIGHT_MAX = 20_000


class FullText:
    """The lines of a full view, built from sanitised agent text. JSON lines stay ``str`` until shown."""

    def __init__(self) -> None:
        self.lines: list[Content | str] = []
        self.chars = 0

    def add(self, content: Content) -> FullText:
        """Console-made ``Content`` (may span lines)."""
        content = content.expand_tabs(8)
        self.lines.extend(content.split("\n", allow_blank=True))
        self.chars += len(content)
        return self

    def heading(self, title: str, style: str = "bold $text-accent") -> FullText:
        if self.lines:
            self.lines.append(Content(""))
        return self.add(Content.styled(title, style))

    def text(self, value: object) -> FullText:
        """Agent text, sanitised, kept as literal text."""
        return self.add(Content(block(value)))

    def json(self, obj: Any) -> FullText:
        """Agent data as pretty JSON (escaped by ``safe_json``, highlighted line by line when shown)."""
        text = safe_json(obj)
        self.lines.extend(text.split("\n"))
        self.chars += len(text)
        return self


def _json_line(line: str) -> Content:
    if len(line) > HIGHLIGHT_MAX:
        return Content.styled(line, "$text")
    return highlight(line, language="json")


def _fit(plain: str, start: int, width: int) -> int:
    """The end of the longest slice from ``start`` that fits in ``width`` cells (at least one character)."""
    window = 4 * width + 8  # a row is at most this many characters unless most are zero-width
    while True:
        piece = plain[start : start + window]
        chunks = chop_cells(piece, width)
        first = len(chunks[0]) if chunks else 0
        if len(chunks) > 1 or start + window >= len(plain):
            return start + max(1, first)
        window *= 4


def _word_breaks(plain: str, width: int, *, one_cell: bool) -> list[int]:
    """Row start offsets (and the end) that wrap ``plain`` at spaces: a row ends after a space, and
    only a word longer than the width is cut. Every character stays in exactly one row."""
    n = len(plain)
    offsets = [0]
    start = 0
    while start < n:
        end = min(n, start + width) if one_cell else _fit(plain, start, width)
        if end < n and plain[end] != " ":
            space = plain.rfind(" ", start, end)
            if space > start:  # the word at the end moves to the next row whole
                end = space + 1
        offsets.append(end)
        start = end
    if n == 0:
        offsets.append(0)
    return offsets


class TextViewer(ScrollView, can_focus=True):
    """Read-only lines, wrapped to the width at spaces (a longer word is cut), rendered row by row
    as they come into view."""

    DEFAULT_CSS = """
    TextViewer { height: 1fr; overflow-x: hidden; overflow-y: scroll; scrollbar-gutter: stable; padding: 0 1; }
    """

    def __init__(self, text: FullText, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.text = text
        self._width = 0
        self._starts: list[int] = [0]  # the first row of each line; one more entry: the row count
        self._breaks: dict[int, list[int]] = {}  # row start offsets of lines with wide or zero-width characters
        self._styled: LRUCache[int, Content] = LRUCache(256)
        self._strips: LRUCache[int, Strip] = LRUCache(1024)

    @property
    def row_count(self) -> int:
        return self._starts[-1]

    def on_resize(self) -> None:
        self._layout(max(1, self.scrollable_content_region.width))

    def _layout(self, width: int) -> None:
        if width == self._width:
            return
        self._width = width
        breaks: dict[int, list[int]] = {}
        rows: list[int] = []
        for i, line in enumerate(self.text.lines):
            plain = line if isinstance(line, str) else line.plain
            n = len(plain)
            if n <= width and plain.isascii():
                rows.append(1)
            elif " " in plain:  # words: wrap between them
                offsets = _word_breaks(plain, width, one_cell=bool(_ONE_CELL.match(plain)))
                breaks[i] = offsets
                rows.append(len(offsets) - 1)
            elif _ONE_CELL.match(plain):
                rows.append(max(1, -(-n // width)))
            else:
                chunks = chop_cells(plain, width) or [""]
                breaks[i] = [0, *accumulate(len(c) for c in chunks)]
                rows.append(len(chunks))
        self._breaks = breaks
        self._strips.clear()
        self._starts = [0, *accumulate(rows)]
        self.virtual_size = Size(width, self._starts[-1])
        self.refresh()

    def line_of_row(self, row: int) -> tuple[int, int, int]:
        """The line shown on ``row`` and the slice of it: ``(line, start, end)``."""
        i = bisect_right(self._starts, row) - 1
        k = row - self._starts[i]
        if (offsets := self._breaks.get(i)) is not None:
            return i, offsets[k], offsets[k + 1]
        return i, k * self._width, (k + 1) * self._width

    def row_text(self, row: int) -> str:
        """The plain text on ``row`` (tests and search use it)."""
        i, start, end = self.line_of_row(row)
        line = self.text.lines[i]
        return (line if isinstance(line, str) else line.plain)[start:end]

    def _styled_line(self, i: int) -> Content:
        if (cached := self._styled.get(i)) is not None:
            return cached
        line = self.text.lines[i]
        content = _json_line(line) if isinstance(line, str) else line
        self._styled[i] = content
        return content

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def render_line(self, y: int) -> Strip:
        row = self.scroll_offset.y + y
        width = self._width
        if row >= self.row_count or width == 0:
            return Strip.blank(width, self.rich_style)
        if (strip := self._strips.get(row)) is not None:
            return strip
        i, start, end = self.line_of_row(row)
        piece = self._styled_line(i)[start:end]
        segments = [
            Segment(text, style.rich_style)
            for text, style in piece.render(self.visual_style, end="", parse_style=self._get_style)
        ]
        strip = self._strips[row] = Strip(segments).extend_cell_length(width, self.rich_style)
        return strip

    def action_scroll_home(self) -> None:
        self.scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        self.scroll_end(animate=False)


class FullTextScreen(TextViewScreen):
    """A full-screen :class:`TextViewer`: ``v`` in the approvals, escalations and review panes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,v", "close", "Close"),
        Binding("j,down", "scroll_down", "Down", show=False),
        Binding("k,up", "scroll_up", "Up", show=False),
        Binding("g,home", "scroll_home", "Top", show=False),
        Binding("G,end", "scroll_end", "End", show=False),
    ]

    def __init__(self, title: Content, text: FullText) -> None:
        lines = len(text.lines)
        size = f"  ({text.chars:,} characters, {lines:,} line{'s' if lines != 1 else ''})"
        super().__init__(Content.assemble(title, (size, "$text-muted")), Content(""))
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(self._title, id="title")
            yield TextViewer(self.text, id="scroll")
        yield Footer()

    @property
    def viewer(self) -> TextViewer:
        return self.query_one(TextViewer)

    def action_scroll_down(self) -> None:
        self.viewer.scroll_down(animate=False)

    def action_scroll_up(self) -> None:
        self.viewer.scroll_up(animate=False)

    def action_scroll_home(self) -> None:
        self.viewer.scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        self.viewer.scroll_end(animate=False)
