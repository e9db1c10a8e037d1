"""Confirm an action, optionally with a reason (required or optional). Dismisses with the reason
(``""`` when none was asked or given) or ``None`` when cancelled."""

from __future__ import annotations

from typing import ClassVar, Literal

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

ReasonMode = Literal["required", "optional"] | None


class ConfirmScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "confirm", "Confirm", show=False),
    ]

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > #box {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    ConfirmScreen.-danger > #box { border: thick $error; }
    ConfirmScreen #title { text-style: bold; width: 1fr; padding: 0 0 1 0; }
    ConfirmScreen #body { height: auto; max-height: 14; }
    ConfirmScreen #reason { margin: 1 0 0 0; }
    ConfirmScreen #error { color: $text-error; height: auto; }
    ConfirmScreen #buttons { height: 3; align: right middle; }
    ConfirmScreen Button { margin: 0 0 0 1; min-width: 10; }
    """

    def __init__(
        self,
        title: Content | str,
        body: Content | None = None,
        *,
        confirm_label: str = "Confirm",
        reason: ReasonMode = None,
        reason_placeholder: str = "Reason (recorded)",
        danger: bool = False,
    ) -> None:
        super().__init__(classes="-danger" if danger else "")
        self._title = title if isinstance(title, Content) else Content(title)
        self._body = body
        self._confirm_label = confirm_label
        self._reason = reason
        self._placeholder = reason_placeholder
        self._danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(self._title, id="title")
            if self._body is not None:
                with VerticalScroll(id="body"):
                    yield Static(self._body, id="body-text")
            if self._reason is not None:
                hint = "" if self._reason == "required" else " (optional)"
                yield Input(placeholder=self._placeholder + hint, id="reason")
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(self._confirm_label, id="confirm", variant="error" if self._danger else "primary")

    def on_mount(self) -> None:
        if self._reason is not None:
            self.query_one("#reason", Input).focus()
        else:
            self.query_one("#confirm", Button).focus()

    def on_key(self, event: object) -> None:
        from textual.events import Key

        if isinstance(event, Key) and self._reason is None and event.key in ("y", "n"):
            event.stop()
            if event.key == "y":
                self.action_confirm()
            else:
                self.action_cancel()

    @on(Button.Pressed, "#confirm")
    def _pressed_confirm(self) -> None:
        self.action_confirm()

    @on(Button.Pressed, "#cancel")
    def _pressed_cancel(self) -> None:
        self.action_cancel()

    @on(Input.Submitted, "#reason")
    def _submitted(self) -> None:
        self.action_confirm()

    def action_confirm(self) -> None:
        text = ""
        if self._reason is not None:
            text = self.query_one("#reason", Input).value.strip()
            if self._reason == "required" and not text:
                self.query_one("#error", Static).update("A reason is required: it is recorded and shown to the agent.")
                return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
