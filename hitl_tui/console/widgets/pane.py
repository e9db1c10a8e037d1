"""What every pane shares: a lazily fed list with a ``/`` filter, a detail panel, live updates."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical
from textual.content import Content
from textual.widgets import Input, TextArea

from ...models import Event
from ..filters import Filter, FilterError, parse_filter
from .filter_bar import FilterBar
from .virtual_table import VirtualTable

if TYPE_CHECKING:
    from ..app import HitlConsole


class ListBox(Vertical):
    """The list half of a pane: the table, its title line and the filter bar."""

    DEFAULT_CSS = """
    ListBox { height: 1fr; border-top: hkey $panel-lighten-2; border-title-color: $text; border-title-style: bold; }
    ListBox:focus-within { border-top: hkey $primary; }
    """


class Pane(Container):
    PANE_ID: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    NOUN: ClassVar[str] = "items"
    FILTER_KEYS: ClassVar[frozenset[str]] = frozenset()
    FILTER_HELP: ClassVar[str] = ""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", tooltip="Filter this list (esc clears)"),
    ]
    # Actions that send something (action -> what the refusal says one cannot do). On a read-only
    # connection (an agent's token) they leave the footer, and their keys say why nothing happens.
    WRITE_ACTIONS: ClassVar[dict[str, str]] = {}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id or self.PANE_ID)
        self.filter = Filter()
        self.filter_error: str | None = None

    # ----------------------------------------------------------------- parts
    @property
    def console(self) -> HitlConsole:
        return cast("HitlConsole", self.app)

    @property
    def table(self) -> VirtualTable:
        return self.query_one(VirtualTable)

    def compose_list(self, table: VirtualTable) -> ComposeResult:
        with ListBox(id=f"{self.PANE_ID}-list"):
            yield table
            yield FilterBar(self.FILTER_HELP, id=f"{self.PANE_ID}-filter")

    def focus_main(self) -> None:
        self.table.focus()

    # ----------------------------------------------------------------- read-only
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action in self.WRITE_ACTIONS and self.console.read_only)

    def _write_action_for(self, key: str) -> str | None:
        for cls in type(self).__mro__:
            for binding in cls.__dict__.get("BINDINGS", ()):
                if (
                    isinstance(binding, Binding)
                    and binding.action in self.WRITE_ACTIONS
                    and key in (k.strip() for k in binding.key.split(","))
                ):
                    return binding.action
        return None

    def on_key(self, event: events.Key) -> None:
        if not self.console.read_only or isinstance(self.app.focused, (Input, TextArea)):
            return
        action = self._write_action_for(event.key)
        if action is not None:  # its binding is off (check_action): say why the key did nothing
            event.stop()
            event.prevent_default()
            self.console.ensure_writable(self.WRITE_ACTIONS[action])

    # ----------------------------------------------------------------- title
    def list_title(self) -> str:
        return self.TITLE

    def refresh_title(self) -> None:
        table = self.table
        parts = [self.list_title() + (f" ({table.total:,})" if table.loaded else ""), *self.title_extras()]
        if table.selected:
            hint = self.selection_hint()
            parts.append(f"{len(table.selected)} selected" + (f" ({hint})" if hint else ""))
        if self.filter:
            parts.append(
                "filter: " + " ".join([*(f"{k}:{v}" for k, v in self.filter.terms.items()), *self.filter.words])
            )
        if self.filter_error:
            parts.append(self.filter_error)
        self.query_one(ListBox).border_title = Content(" · ".join(parts))

    def selection_hint(self) -> str:
        """What to do with the selected rows, said in the title once there are some."""
        return ""

    def title_extras(self) -> list[str]:
        """More to say in the list's title line, after the count."""
        return []

    def on_virtual_table_reloaded(self, _event: VirtualTable.Reloaded) -> None:
        self.refresh_title()

    # ----------------------------------------------------------------- filter
    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def on_filter_bar_changed(self, event: FilterBar.Changed) -> None:
        event.stop()
        try:
            new = parse_filter(event.value, self.FILTER_KEYS)
            self.validate_filter(new)
        except FilterError as exc:
            self.filter_error = str(exc)
            self.refresh_title()
            return
        self.filter_error = None
        if new != self.filter:
            self.filter = new
            self.filter_changed()
        self.refresh_title()
        if event.done:
            self.focus_main()

    def validate_filter(self, new: Filter) -> None:
        """Raise :class:`FilterError` for values the pane cannot use."""

    def filter_changed(self) -> None:
        self.table.clear_selection()
        self.table.reload(reset=True)

    # ----------------------------------------------------------------- live
    def reload(self) -> None:
        self.table.reload()

    def handle_event(self, event: Event) -> None:
        """A live event for this pane's kind of object."""
        self.reload()

    def tick(self) -> None:
        """Once a second: redraw time-dependent text (ages, countdowns) from the console clock."""
        self.table.refresh()

    def help_notes(self) -> list[str]:
        return [f"/ filter: {self.FILTER_HELP}"] if self.FILTER_HELP else []
