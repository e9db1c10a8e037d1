"""Edit a request's arguments as JSON before approving. Dismisses with the edited object or ``None``.

The editor starts from :func:`safe_json`, which escapes terminal-active characters as JSON
``\\uXXXX`` escapes: the text is safe to show and parses back to exactly the original value.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static, TextArea

from ...models import ApprovalRequest
from ..adapters import one_line, safe_json


class EditArgsScreen(ModalScreen[dict[str, Any] | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Review changes", priority=True),
        Binding("escape", "cancel", "Cancel", priority=True),
    ]

    DEFAULT_CSS = """
    EditArgsScreen { align: center middle; }
    EditArgsScreen > #box {
        width: 100;
        max-width: 100%;
        height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    EditArgsScreen #title { text-style: bold; }
    EditArgsScreen #hint { color: $text-muted; }
    EditArgsScreen TextArea { height: 1fr; }
    EditArgsScreen #error { color: $text-error; height: auto; }
    EditArgsScreen #buttons { height: 3; align: right middle; }
    EditArgsScreen Button { margin: 0 0 0 1; }
    """

    def __init__(self, req: ApprovalRequest) -> None:
        super().__init__()
        self.req = req

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(
                Content.assemble(f"Edit arguments of #{self.req.id} ", (one_line(self.req.tool, 60), "bold")),
                id="title",
            )
            yield Static("ctrl+s: review the diff, then approve · esc: cancel", id="hint")
            yield TextArea(
                safe_json(self.req.effective_args), id="editor", show_line_numbers=True, tab_behavior="indent"
            )
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Review diff", id="save", variant="primary")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        text = self.query_one(TextArea).text
        error = self.query_one("#error", Static)
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            error.update(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
            return
        if not isinstance(value, dict):
            error.update("The arguments must be a JSON object ({...}).")
            return
        self.dismiss(value)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
