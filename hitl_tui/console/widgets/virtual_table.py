"""A virtual list on the line API: 100,000 rows cost what the screen shows, not what the list holds.

Rows come from a windowed ``fetch(offset, limit) -> Page`` (a backend ``list_*`` call) in pages
that are cached and evicted; only the pages the viewport touches are ever fetched. A reload
(after a live event) fetches the window around the viewport once, swaps it in atomically and
keeps the cursor on the same item, so rows never jump under a reviewer's finger.

When the item under the cursor leaves the list (decided by someone else, expired), it stays
visible as a *ghost* row at the cursor until the reviewer moves away, so the detail panel and
the next key press still refer to what the reviewer was looking at.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...errors import HitlError
from ...models import Page
from ..adapters import Cell

Fetch = Callable[[int, int], Awaitable[Page]]
RenderRow = Callable[[Any], dict[str, Cell]]
KeyOf = Callable[[Any], Hashable]

GUTTER = 2  # selection mark and a space
_PLAIN = Style()


class _Palette:
    """The rich styles the table paints with, derived once instead of once per line and cell.

    Everything here is read from the widget the first time it is needed and memoised. A palette
    lasts as long as its ``key`` (see :meth:`VirtualTable._palette_key`): the widget's own style,
    its width and its component styles, which Textual replaces with new objects whenever CSS is
    applied to the widget (focus, theme or stylesheet changes). So those changes are picked up
    exactly as before, and a frame that only shows new rows derives no style at all.
    """

    __slots__ = ("_cells", "_components", "_cursor", "_table", "base", "key", "width")

    def __init__(self, table: VirtualTable, key: tuple[Any, ...]) -> None:
        self._table = table
        self.key = key
        self.base: Style = key[0]
        self.width: int = key[1]
        self._components: dict[str | None, Style] = {}
        self._cursor: Style | None = None
        self._cells: dict[tuple[bool, str | None, str | None, bool], Style] = {}

    def component(self, name: str | None) -> Style:
        style = self._components.get(name)
        if style is None:
            style = self._table._style(name)
            self._components[name] = style
        return style

    @property
    def cursor(self) -> Style:
        if self._cursor is None:
            self._cursor = self._table._cursor_style()
        return self._cursor

    def cell(self, selected: bool, cls: str | None, inactive: str | None, cursor: bool) -> Style:
        """``base [+ selected] + cls [+ ghost/dim] [+ cursor]``, as the row renderer composes it."""
        key = (selected, cls, inactive, cursor)
        style = self._cells.get(key)
        if style is None:
            style = self.base
            if selected:
                style += self.component("vt--selected")
            if cls is not None:
                style += self.component(cls)
            if inactive is not None:
                style += self.component(inactive)
            if cursor:
                style += self.cursor
            self._cells[key] = style
        return style


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int | None = None  # fixed width; None: share the remaining width by ``flex``
    flex: int = 0
    min_width: int = 4
    drop: int = 0  # when the table is too narrow, columns with the highest ``drop`` go first
    right: bool = False


class VirtualTable(ScrollView, can_focus=True):
    """A lazily fed, virtual table with a cursor, multi-selection and a fixed header row."""

    ALLOW_MAXIMIZE = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False),
        Binding("pagedown,ctrl+f", "page_down", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "vt--header",
        "vt--cursor",
        "vt--selected",
        "vt--placeholder",
        "vt--dim",
        "vt--strong",
        "vt--ok",
        "vt--warn",
        "vt--err",
        "vt--ghost",
        "vt--risk-low",
        "vt--risk-medium",
        "vt--risk-high",
        "vt--risk-critical",
    }

    DEFAULT_CSS = """
    VirtualTable {
        overflow-x: hidden;
        overflow-y: auto;
        height: 1fr;
        background: $surface;
        scrollbar-size-vertical: 1;
    }
    VirtualTable > .vt--header { text-style: bold; color: $text-muted; background: $panel; }
    VirtualTable > .vt--cursor { background: $panel-lighten-2; }
    VirtualTable:focus > .vt--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    VirtualTable > .vt--selected { background: $accent 25%; }
    VirtualTable > .vt--placeholder { color: $text-disabled; text-style: italic; }
    VirtualTable > .vt--dim { color: $text-muted; }
    VirtualTable > .vt--strong { text-style: bold; }
    VirtualTable > .vt--ok { color: $text-success; }
    VirtualTable > .vt--warn { color: $text-warning; }
    VirtualTable > .vt--err { color: $text-error; }
    VirtualTable > .vt--ghost { color: $text-disabled; text-style: strike; }
    VirtualTable > .vt--risk-low { color: $text-muted; }
    VirtualTable > .vt--risk-medium { color: $text; }
    VirtualTable > .vt--risk-high { color: $text-warning; text-style: bold; }
    VirtualTable > .vt--risk-critical { color: $text-error; text-style: bold underline; }
    """

    class Highlighted(Message):
        """The item under the cursor changed (another item, or new data for the same item)."""

        def __init__(self, table: VirtualTable, item: Any, user: bool) -> None:
            super().__init__()
            self.table = table
            self.item = item
            self.user = user

        @property
        def control(self) -> VirtualTable:
            return self.table

    class Activated(Message):
        """Enter or a double click on a row."""

        def __init__(self, table: VirtualTable, item: Any) -> None:
            super().__init__()
            self.table = table
            self.item = item

        @property
        def control(self) -> VirtualTable:
            return self.table

    class Reloaded(Message):
        """A reload finished: ``total`` rows match (without the ghost)."""

        def __init__(self, table: VirtualTable, total: int) -> None:
            super().__init__()
            self.table = table
            self.total = total

        @property
        def control(self) -> VirtualTable:
            return self.table

    def __init__(
        self,
        columns: list[Column],
        *,
        fetch: Fetch,
        render_row: RenderRow,
        key: KeyOf,
        is_inactive: Callable[[Any], bool] | None = None,
        empty_text: str = "Nothing here.",
        page_size: int = 100,
        max_pages: int = 40,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = columns
        self._fetch = fetch
        self._render_row = render_row
        self._key = key
        self._is_inactive = is_inactive or (lambda _item: False)
        self.empty_text = empty_text
        self.page_size = page_size
        self.max_pages = max_pages
        self._pages: OrderedDict[int, list[Any]] = OrderedDict()
        self._total = 0
        self._loaded = False
        self._generation = 0
        self._loading_pages: set[int] = set()
        self._reloading = False
        self._reload_again = False
        self._ghost: tuple[int, Any] | None = None
        self._follow = True
        self.cursor = 0
        self.selected: dict[Hashable, Any] = {}
        self.error: str | None = None
        self._last_highlight: tuple[Hashable | None, Any] | None = None  # (key, item) last announced
        self._layout: tuple[int, list[tuple[Column, int]]] | None = None
        self._palette: _Palette | None = None  # the styles of the last frame (see render_lines)
        self._painted: dict[int, dict[str, Cell]] = {}  # display row -> the cells last painted there
        self._in_frame = False

    # ================================================================= data access
    @property
    def total(self) -> int:
        """Rows matching on the backend (the ghost row not counted)."""
        return self._total

    @property
    def row_count(self) -> int:
        return self._total + (1 if self._ghost is not None else 0)

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def reading(self) -> bool:
        """A reload is in flight (or queued behind one)."""
        return self._reloading

    @property
    def ghost(self) -> Any:
        return None if self._ghost is None else self._ghost[1]

    def _real_index(self, index: int) -> int | None:
        """Display index -> backend offset; None for the ghost row."""
        if self._ghost is not None:
            gi = self._ghost[0]
            if index == gi:
                return None
            if index > gi:
                return index - 1
        return index

    def _cached(self, real: int) -> Any:
        page = self._pages.get(real // self.page_size)
        if page is None:
            return None
        at = real % self.page_size
        return page[at] if at < len(page) else None

    def item_at(self, index: int) -> Any:
        if index < 0 or index >= self.row_count:
            return None
        real = self._real_index(index)
        if real is None:
            assert self._ghost is not None
            return self._ghost[1]
        return self._cached(real)

    @property
    def cursor_item(self) -> Any:
        return self.item_at(self.cursor)

    def loaded_items(self) -> list[Any]:
        out = [item for page in self._pages.values() for item in page]
        if self._ghost is not None:
            out.append(self._ghost[1])
        return out

    def index_of(self, key: Hashable) -> int | None:
        """Display index of a loaded item with this key."""
        if self._ghost is not None and self._key(self._ghost[1]) == key:
            return self._ghost[0]
        for page_no, page in self._pages.items():
            for i, item in enumerate(page):
                if self._key(item) == key:
                    real = page_no * self.page_size + i
                    if self._ghost is not None and real >= self._ghost[0]:
                        return real + 1
                    return real
        return None

    def update_item(self, item: Any) -> bool:
        """Replace a loaded item (same key) with fresher data, e.g. from a live event."""
        key = self._key(item)
        found = False
        changed: list[int] = []  # display rows whose data changed
        if self._ghost is not None and self._key(self._ghost[1]) == key:
            if self._ghost[1] != item:
                changed.append(self._ghost[0])
            self._ghost = (self._ghost[0], item)
            found = True
        for page_no, page in self._pages.items():
            for i, old in enumerate(page):
                if self._key(old) == key:
                    if old != item:
                        real = page_no * self.page_size + i
                        changed.append(real + 1 if self._ghost is not None and real >= self._ghost[0] else real)
                    page[i] = item
                    found = True
        if key in self.selected:
            self.selected[key] = item
        for index in changed:  # only those lines: the same data again repaints nothing
            self._refresh_row(index)
        if found:
            self._check_highlight(user=False)
        return found

    # ================================================================= selection
    def toggle_selected(self, item: Any | None = None) -> bool:
        item = self.cursor_item if item is None else item
        if item is None:
            return False
        key = self._key(item)
        if key in self.selected:
            del self.selected[key]
        else:
            self.selected[key] = item
        self.refresh()
        return True

    def clear_selection(self) -> None:
        self.selected.clear()
        self.refresh()

    # ================================================================= loading
    def reload(self, *, reset: bool = False) -> None:
        """Fetch the window around the viewport again (coalesced: at most one in flight)."""
        if reset:  # a new query (filter): start at the top, follow nothing from the old list
            self._ghost = None
            self._follow = False
            self.cursor = 0
            self.scroll_to(y=0, animate=False)
            # A read in flight ran the old query: its rows must not be shown, nor its cursor row
            # kept as a ghost of the new list (a request that does not match, under the cursor).
            # Nor may the old rows stay under the new query until the read lands (or for good, if
            # it fails): the list is empty, and nothing is under the cursor, until then.
            self._generation += 1
            self._pages = OrderedDict()
            self._loaded = False
            self._total = 0
            self._update_virtual_size()
            self.refresh()
            self._check_highlight(user=False)
        if self._reloading:
            self._reload_again = True
            return
        self._reloading = True
        self.run_worker(self._reload(), group="vt-reload", exit_on_error=False)

    async def _reload(self) -> None:
        try:
            while True:
                self._reload_again = False
                await self._reload_once()
                if not self._reload_again:
                    break
        finally:
            self._reloading = False

    def _window_pages(self) -> list[int]:
        rows = max(1, self.size.height - 1)
        top = int(self.scroll_y)
        first = max(0, top - rows) // self.page_size
        last = max(0, top + 2 * rows) // self.page_size
        cursor_page = max(0, self.cursor) // self.page_size
        return sorted({*range(first, last + 1), cursor_page})

    async def _reload_once(self) -> None:
        self._generation += 1
        generation = self._generation
        pages: dict[int, list[Any]] = {}
        total = self._total
        try:
            for page_no in self._window_pages():
                if page_no > 0 and page_no * self.page_size >= total and pages:
                    break
                page = await self._fetch(page_no * self.page_size, self.page_size)
                pages[page_no] = list(page.items)
                total = page.total
        except HitlError as exc:
            self.error = exc.message
            self.refresh()
            return
        if generation != self._generation:
            return
        shown_error = self.error is not None
        self.error = None
        self._swap(pages, total, repaint=shown_error)

    def _swap(self, pages: dict[int, list[Any]], total: int, *, repaint: bool = False) -> None:
        """Show freshly read rows, keeping the cursor on the same item (or its ghost)."""
        new_pages = OrderedDict(sorted(pages.items()))
        if not repaint and self._follow and self._loaded and total == self._total and new_pages == self._pages:
            # The same rows again (an event elsewhere, or rows this table already showed from the
            # event itself): nothing moves, so no repaint and no frame.
            self._loading_pages.clear()
            self.post_message(self.Reloaded(self, total))
            return
        old_cursor_item = self.cursor_item if self._follow else None
        self._follow = True
        old_screen_row = self.cursor - int(self.scroll_y)
        self._pages = new_pages
        self._total = total
        self._loaded = True
        self._loading_pages.clear()
        if old_cursor_item is not None:
            key = self._key(old_cursor_item)
            self._ghost = None
            found = self.index_of(key)
            if found is not None:
                self.cursor = found
            else:  # it left the list while the reviewer looked at it: keep it as a ghost
                self.cursor = min(self.cursor, total)
                self._ghost = (self.cursor, old_cursor_item)
        else:
            self._ghost = None
            self.cursor = max(0, min(self.cursor, self.row_count - 1))
        self._update_virtual_size()
        if old_cursor_item is not None:
            self.scroll_to(y=max(0, self.cursor - old_screen_row), animate=False, force=True, immediate=True)
        self._scroll_cursor_into_view()
        self.refresh()
        self._check_highlight(user=False)
        self.post_message(self.Reloaded(self, total))

    def insert_item(self, item: Any, precedes: Callable[[Any, Any], bool]) -> bool:
        """Show a new item at once, where the backend's order puts it, without waiting for a read.

        ``precedes(item, other)``: whether ``item`` sorts before ``other`` in the list's order. The
        rows shown come from the loaded pages plus the item, swapped in as a reload would (the
        cursor stays on its item). A read still in flight is discarded, as its rows are older: the
        caller reads again when :attr:`reading` was set (a read then repaints nothing if the rows
        agree). Returns False, changing nothing, when the item is already shown or its place is not
        within the loaded rows (it is then off screen: the caller's reload brings it)."""
        if not self._loaded or 0 not in self._pages or self.index_of(self._key(item)) is not None:
            return False
        prefix: list[Any] = []  # the loaded rows from the top, up to the first page not loaded
        last_page = -1
        for page_no in range(len(self._pages)):
            page = self._pages.get(page_no)
            if page is None:
                break
            prefix.extend(page)
            last_page = page_no
        at = next((i for i, other in enumerate(prefix) if precedes(item, other)), None)
        if at is None:
            if len(prefix) < self._total:
                return False
            at = len(prefix)
        prefix.insert(at, item)
        size = self.page_size
        pages = {n: prefix[n * size : (n + 1) * size] for n in range(last_page + 1)}  # the overflow row goes
        self._generation += 1
        self._swap(pages, self._total + 1)
        return True

    def _ensure_page(self, page_no: int) -> None:
        if page_no in self._pages or page_no in self._loading_pages or not self._loaded:
            return
        self._loading_pages.add(page_no)
        self.run_worker(self._load_page(page_no, self._generation), group="vt-page", exit_on_error=False)

    async def _load_page(self, page_no: int, generation: int) -> None:
        try:
            page = await self._fetch(page_no * self.page_size, self.page_size)
        except HitlError as exc:
            self.error = exc.message
            return
        finally:
            self._loading_pages.discard(page_no)
        if generation != self._generation:
            return
        self._pages[page_no] = list(page.items)
        while len(self._pages) > self.max_pages:  # evict the page furthest from the viewport
            here = int(self.scroll_y) // self.page_size
            far = max(self._pages, key=lambda p: abs(p - here))
            del self._pages[far]
        if page.total != self._total:
            self._total = page.total
            self._update_virtual_size()
        self.refresh()
        self._check_highlight(user=False)

    # ================================================================= cursor
    def _check_highlight(self, *, user: bool) -> None:
        item = self.cursor_item
        key = None if item is None else self._key(item)
        last = self._last_highlight
        # Equal data is no news: a reload brings fresh objects for every row, and a detail panel
        # re-rendered for nothing costs a layout in the frame that shows the reload.
        if user or last is None or last[0] != key or (last[1] is not item and last[1] != item):
            self._last_highlight = (key, item)
            self.post_message(self.Highlighted(self, item, user))

    def move_cursor(self, index: int, *, user: bool = True) -> None:
        count = self.row_count
        if count == 0:
            return
        index = max(0, min(index, count - 1))
        old = self.cursor
        top = int(self.scroll_y)
        rows_changed = False
        if self._ghost is not None and index != self._ghost[0]:
            gi = self._ghost[0]
            self._ghost = None
            if index > gi:
                index -= 1
            self._update_virtual_size()
            rows_changed = True  # the rows below the ghost moved up
        self.cursor = index
        self._scroll_cursor_into_view()
        if rows_changed or int(self.scroll_y) != top:
            self.refresh()
        elif old != index:  # same rows on screen: only the old and the new cursor rows change
            self._refresh_row(old)
            self._refresh_row(index)
        self._check_highlight(user=user)

    def refresh_changed(self) -> int:
        """Repaint the rows on screen whose text changed since they were painted (ages and
        countdowns move with the clock): a quiet list costs no frame. Returns how many changed."""
        top = int(self.scroll_y)
        visible = range(top, min(self.row_count, top + max(0, self.size.height - 1)))
        changed = 0
        for index in visible:
            item = self.item_at(index)
            if item is not None and self._painted.get(index) != self._render_row(item):
                self._refresh_row(index)
                changed += 1
        self._painted = {i: cells for i, cells in self._painted.items() if i in visible}  # rows scrolled past
        return changed

    def _refresh_row(self, index: int) -> None:
        """Repaint the screen line showing display row ``index`` (nothing when it is off screen)."""
        y = index - int(self.scroll_y) + 1  # line 0 is the header
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def _scroll_cursor_into_view(self) -> None:
        rows = max(1, self.size.height - 1)
        top = int(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, force=True, immediate=True)
        elif self.cursor >= top + rows:
            self.scroll_to(y=self.cursor - rows + 1, animate=False, force=True, immediate=True)

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(max(1, self.scrollable_content_region.width), self.row_count + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - max(1, self.size.height - 2))

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + max(1, self.size.height - 2))

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(self.row_count - 1)

    async def _on_click(self, event: events.Click) -> None:
        if event.y <= 0:
            return
        index = int(self.scroll_y) + event.y - 1
        if index < self.row_count:
            self.move_cursor(index)
            if event.chain >= 2 and self.cursor_item is not None:
                self.post_message(self.Activated(self, self.cursor_item))

    def key_enter(self) -> None:
        item = self.cursor_item
        if item is not None:
            self.post_message(self.Activated(self, item))

    def on_resize(self, _event: events.Resize) -> None:
        self._layout = None
        self._update_virtual_size()
        self._scroll_cursor_into_view()  # shorter: the row the detail shows must stay on screen
        if self._loaded:
            for page_no in self._window_pages():
                if page_no * self.page_size < self._total:
                    self._ensure_page(page_no)

    # ================================================================= rendering
    def set_columns(self, columns: list[Column]) -> None:
        self.columns = columns
        self._layout = None
        self.refresh()

    def layout_columns(self, width: int) -> list[tuple[Column, int]]:
        """The columns shown at ``width`` and their widths: the highest ``drop`` goes first when narrow."""
        if self._layout is not None and self._layout[0] == width:
            return self._layout[1]
        cols = list(self.columns)
        avail = width - GUTTER

        def need(cs: list[Column]) -> int:
            return sum((c.width if c.width is not None else c.min_width) + 1 for c in cs)

        while len(cols) > 1 and need(cols) > avail:
            victim = max(cols, key=lambda c: (c.drop, cols.index(c)))
            if victim.drop == 0:
                break
            cols.remove(victim)
        fixed = sum((c.width or 0) + 1 for c in cols if c.width is not None)
        flex_cols = [c for c in cols if c.width is None]
        spare = max(0, avail - fixed - sum(c.min_width + 1 for c in flex_cols))
        weights = sum(max(1, c.flex) for c in flex_cols) or 1
        out: list[tuple[Column, int]] = []
        given = 0
        for c in cols:
            if c.width is not None:
                out.append((c, c.width))
            else:
                extra = spare * max(1, c.flex) // weights
                given += extra
                out.append((c, c.min_width + extra))
        leftover = spare - given
        if leftover > 0 and flex_cols:  # give rounding leftovers to the last flexible column
            for i in range(len(out) - 1, -1, -1):
                if out[i][0].width is None:
                    out[i] = (out[i][0], out[i][1] + leftover)
                    break
        self._layout = (width, out)
        return out

    def _style(self, name: str | None) -> Style:
        if not name:
            return Style()
        return self.get_component_rich_style(name, partial=True, default=Style())

    def _palette_key(self) -> tuple[Any, ...]:
        # Held, not ``id()``s: an identity check on live objects cannot be fooled by a reused id.
        # (``_component_styles`` is Textual's; the version is pinned in pyproject.toml.)
        return (self.rich_style, self.scrollable_content_region.width, *self._component_styles.values())

    def _current_palette(self) -> _Palette:
        key = self._palette_key()
        palette = self._palette
        if (
            palette is None
            or len(palette.key) != len(key)
            or palette.key[:2] != key[:2]
            or any(a is not b for a, b in zip(palette.key[2:], key[2:], strict=True))
        ):
            palette = self._palette = _Palette(self, key)
        return palette

    def render_lines(self, crop: Region) -> list[Strip]:
        self._current_palette()  # checked once per frame; render_line uses it
        self._in_frame = True
        try:
            return super().render_lines(crop)
        finally:
            self._in_frame = False

    def render_line(self, y: int) -> Strip:
        palette = self._palette if self._in_frame and self._palette is not None else self._current_palette()
        width = palette.width
        base = palette.base
        cols = self.layout_columns(width)
        if y == 0:
            return self._header(cols, width, palette)
        index = int(self.scroll_y) + y - 1
        if index >= self.row_count:
            if index == 0:
                text = "loading…" if not self._loaded else (self.error or self.empty_text)
                style = palette.cell(False, "vt--placeholder", None, False)
                return Strip([Segment(set_cell_size("  " + text, width), style)], width)
            return Strip.blank(width, base)
        item = self.item_at(index)
        is_cursor = index == self.cursor
        if item is None:
            real = self._real_index(index)
            if real is not None:
                self._ensure_page(real // self.page_size)
            style = palette.cell(False, "vt--placeholder", None, is_cursor)
            return Strip([Segment(set_cell_size("  …", width), style)], width)
        return self._row(item, cols, width, palette, is_cursor, index)

    def _cursor_style(self) -> Style:
        return self.get_component_rich_style("vt--cursor", partial=True, default=Style(reverse=True))

    def _header(self, cols: list[tuple[Column, int]], width: int, palette: _Palette) -> Strip:
        style = palette.cell(False, "vt--header", None, False)
        segs = [Segment(" " * GUTTER, style)]
        for col, w in cols:
            label = col.label.rjust(w) if col.right else col.label
            segs.append(Segment(set_cell_size(label, w) + " ", style))
        return Strip(segs).adjust_cell_length(width, style)

    def _row(
        self, item: Any, cols: list[tuple[Column, int]], width: int, palette: _Palette, is_cursor: bool, index: int
    ) -> Strip:
        cells = self._render_row(item)
        self._painted[index] = cells
        selected = self._key(item) in self.selected
        ghost = self._ghost is not None and self._ghost[0] == index
        inactive = ("vt--ghost" if ghost else "vt--dim") if ghost or self._is_inactive(item) else None
        gap_style = palette.cell(selected, None, None, is_cursor)  # the row's style under the cursor, if any
        gap = Segment(" ", gap_style)
        segs: list[Segment] = [Segment(("● " if selected else "  "), gap_style)]
        length = GUTTER
        for col, w in cols:
            text, cls = cells.get(col.key, ("", None))
            length_of = cell_len(text)
            if length_of > w:  # cut text says so: it ends with an ellipsis
                text = set_cell_size(text, w - 1) + "…" if w > 1 else "…"
            elif col.right and length_of < w:
                text = text.rjust(w)
            segs.append(Segment(set_cell_size(text, w), palette.cell(selected, cls or None, inactive, is_cursor)))
            segs.append(gap)
            length += w + 1
        # Pad to the width here rather than with Strip.adjust_cell_length: one Strip per row, not two.
        if length < width:
            segs.append(Segment(" " * (width - length), gap_style))
            length = width
        strip = Strip(segs, length)
        return strip if length == width else strip.adjust_cell_length(width, gap_style)
