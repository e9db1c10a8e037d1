"""The virtual list: 100,000 rows cost what the screen shows; the cursor never jumps under a finger."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from textual.app import App, ComposeResult

from hitl_tui.console.widgets.virtual_table import Column, VirtualTable
from hitl_tui.models import Page

pytestmark = pytest.mark.timeout(60)


@dataclass(frozen=True)
class Row:
    id: int
    text: str


class ListApp(App[None]):
    """A list over an in-memory source that counts what the table asks for."""

    def __init__(self, rows: list[Row]) -> None:
        super().__init__()
        self.rows = rows
        self.fetched = 0
        self.calls = 0

    async def fetch(self, offset: int, limit: int) -> Page:
        self.calls += 1
        items = self.rows[offset : offset + limit]
        self.fetched += len(items)
        return Page(items=items, total=len(self.rows))

    def compose(self) -> ComposeResult:
        yield VirtualTable(
            [Column("id", "ID", width=7, right=True), Column("text", "TEXT", flex=1)],
            fetch=self.fetch,
            render_row=lambda r: {"id": (str(r.id), None), "text": (r.text, None)},
            key=lambda r: r.id,
            id="table",
        )

    def on_mount(self) -> None:
        table = self.query_one(VirtualTable)
        table.reload()
        table.focus()

    @property
    def table(self) -> VirtualTable:
        return self.query_one(VirtualTable)

    def line(self, y: int) -> str:
        return self.table.render_line(y).text


async def _settle(app: ListApp, pilot) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_100k_rows_cost_what_the_screen_shows() -> None:
    app = ListApp([Row(i, f"row {i}") for i in range(100_000)])
    async with app.run_test(size=(60, 20)) as pilot:
        await _settle(app, pilot)
        assert app.table.total == 100_000
        assert app.table.virtual_size.height == 100_001  # header + every row: the scrollbar is true
        assert "row 0" in app.line(1)
        await pilot.press("end")
        await _settle(app, pilot)
        assert app.table.cursor == 99_999
        assert app.table.cursor_item.id == 99_999
        assert "row 99999" in app.line(app.table.size.height - 1)
        for _ in range(5):
            await pilot.press("pageup")
        await _settle(app, pilot)
        assert app.table.cursor_item is not None
        await pilot.press("home")
        await _settle(app, pilot)
        assert app.table.cursor == 0
        assert app.fetched <= 600  # a handful of pages, never the list
        assert app.calls <= 8


async def test_cursor_follows_its_item_when_rows_arrive_above() -> None:
    app = ListApp([Row(i, f"row {i}") for i in range(50)])
    async with app.run_test(size=(60, 20)) as pilot:
        await _settle(app, pilot)
        app.table.move_cursor(10)
        assert app.table.cursor_item.id == 10
        app.rows[:0] = [Row(1000 + i, "new") for i in range(3)]  # three newer rows sort first
        app.table.reload()
        await _settle(app, pilot)
        assert app.table.cursor_item.id == 10 and app.table.cursor == 13


async def test_item_leaving_the_list_stays_as_a_ghost_until_the_cursor_moves() -> None:
    app = ListApp([Row(i, f"row {i}") for i in range(10)])
    async with app.run_test(size=(60, 20)) as pilot:
        await _settle(app, pilot)
        app.table.move_cursor(4)
        del app.rows[4]  # decided elsewhere: no longer in this list
        app.table.reload()
        await _settle(app, pilot)
        assert app.table.total == 9 and app.table.row_count == 10
        assert app.table.cursor_item.id == 4 and app.table.ghost.id == 4
        await pilot.press("down")
        assert app.table.ghost is None
        assert app.table.cursor_item.id == 5 and app.table.row_count == 9
        app.table.move_cursor(2)
        del app.rows[2]
        app.table.reload()
        await _settle(app, pilot)
        await pilot.press("up")
        assert app.table.cursor_item.id == 1


async def test_new_query_starts_at_the_top_without_a_ghost() -> None:
    app = ListApp([Row(i, f"row {i}") for i in range(10)])
    async with app.run_test(size=(60, 20)) as pilot:
        await _settle(app, pilot)
        app.table.move_cursor(6)
        app.rows = app.rows[:3]
        app.table.reload(reset=True)
        await _settle(app, pilot)
        assert app.table.ghost is None and app.table.cursor == 0 and app.table.row_count == 3


async def test_columns_drop_by_priority_when_narrow() -> None:
    app = ListApp([Row(1, "x")])
    app_cols = [
        Column("a", "A", width=10),
        Column("b", "B", width=10, drop=1),
        Column("c", "C", width=10, drop=2),
        Column("d", "D", flex=1, min_width=10),
    ]
    async with app.run_test(size=(60, 10)) as pilot:
        await _settle(app, pilot)
        app.table.set_columns(app_cols)
        assert [c.key for c, _ in app.table.layout_columns(60)] == ["a", "b", "c", "d"]
        assert [c.key for c, _ in app.table.layout_columns(40)] == ["a", "b", "d"]
        assert [c.key for c, _ in app.table.layout_columns(30)] == ["a", "d"]


async def test_mouse_click_moves_the_cursor_and_selection_marks_rows() -> None:
    app = ListApp([Row(i, f"row {i}") for i in range(10)])
    async with app.run_test(size=(60, 20)) as pilot:
        await _settle(app, pilot)
        await pilot.click("#table", offset=(5, 4))
        assert app.table.cursor == 3
        app.table.toggle_selected()
        assert 3 in app.table.selected
        assert app.line(4).startswith("●")
