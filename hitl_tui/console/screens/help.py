"""``?``: every key of the current pane and the global keys, generated from the bindings themselves."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

HelpSection = tuple[str, list[tuple[str, str]]]


def help_content(sections: list[HelpSection], notes: list[str]) -> Content:
    parts: list[Content] = []
    width = max((len(k) for _, rows in sections for k, _ in rows), default=8)
    for title, rows in sections:
        if not rows:
            continue
        parts.append(Content.styled(title, "bold $text-accent"))
        for keys, desc in rows:
            parts.append(Content.assemble("  ", (keys.ljust(width), "bold"), "  ", desc))
        parts.append(Content(""))
    for note in notes:
        parts.append(Content.styled(note, "$text-muted"))
    return Content("\n").join(parts)


class HelpScreen(ModalScreen[None]):
    # The keys the help lists for lists scroll the help itself, wherever focus is (the scroll
    # view's own bindings know neither j/k nor g/G, and a click can move focus off it).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close"),
        Binding("down,j", "scroll('down')", "Down", show=False, priority=True),
        Binding("up,k", "scroll('up')", "Up", show=False, priority=True),
        Binding("pagedown,ctrl+f,space", "scroll('page_down')", "Page down", show=False, priority=True),
        Binding("pageup,ctrl+b", "scroll('page_up')", "Page up", show=False, priority=True),
        Binding("home,g", "scroll('home')", "Top", show=False, priority=True),
        Binding("end,G", "scroll('end')", "Bottom", show=False, priority=True),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > #box {
        width: 78;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        background: $surface;
    }
    HelpScreen #title { text-style: bold; padding: 0 1; background: $panel; width: 1fr; }
    HelpScreen #scroll { height: auto; max-height: 100%; padding: 0 1; }
    """

    def __init__(self, title: str, sections: list[HelpSection], notes: list[str]) -> None:
        super().__init__()
        self._title = title
        self._body = help_content(sections, notes)

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(Content(self._title + "   (j/k scroll · esc closes)"), id="title")
            with VerticalScroll(id="scroll"):
                yield Static(self._body)

    def on_mount(self) -> None:
        self.query_one("#scroll").focus()

    def action_scroll(self, where: str) -> None:
        scroll = self.query_one("#scroll", VerticalScroll)
        getattr(scroll, f"scroll_{where}")(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
