"""A full-screen, scrollable view of a long text (a review item's result, a request's context)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Footer, Static


class TextViewScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close"),
        Binding("j,down", "scroll_down", "Down", show=False),
        Binding("k,up", "scroll_up", "Up", show=False),
    ]

    DEFAULT_CSS = """
    TextViewScreen { align: center middle; }
    TextViewScreen > #box { width: 100%; height: 100%; border: thick $primary; background: $surface; }
    TextViewScreen #title { text-style: bold; padding: 0 1; background: $panel; width: 1fr; }
    TextViewScreen #scroll { height: 1fr; padding: 0 1; }
    """

    def __init__(self, title: Content, body: Content) -> None:
        super().__init__()
        self._title = title
        self._body = body

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(self._title, id="title")
            with VerticalScroll(id="scroll"):
                yield Static(self._body, id="text")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll_down(self) -> None:
        self.query_one("#scroll", VerticalScroll).scroll_down(animate=False)

    def action_scroll_up(self) -> None:
        self.query_one("#scroll", VerticalScroll).scroll_up(animate=False)
