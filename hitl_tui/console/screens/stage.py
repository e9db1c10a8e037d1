"""Set a capability's stage explicitly: pick disabled / approval / autonomous and give a reason."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, OptionList, Static
from textual.widgets.option_list import Option

from ...models import STAGE_ORDER, Capability, Stage
from ..adapters import one_line

STAGE_HELP = {
    Stage.disabled: "never runs; every call is blocked",
    Stage.approval: "runs only after a human approves",
    Stage.autonomous: "runs alone (within thresholds and rules)",
}


class StageScreen(ModalScreen[tuple[Stage, str] | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    StageScreen { align: center middle; }
    StageScreen > #box {
        width: 70;
        max-width: 100%;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    StageScreen #title { text-style: bold; padding: 0 0 1 0; }
    StageScreen OptionList { height: auto; max-height: 5; }
    StageScreen #error { color: $text-error; height: auto; }
    StageScreen #buttons { height: 3; align: right middle; }
    StageScreen Button { margin: 0 0 0 1; }
    """

    def __init__(self, cap: Capability) -> None:
        super().__init__()
        self.cap = cap

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(
                Content.assemble(
                    "Set stage of ", (one_line(self.cap.tool, 60), "bold"), f" (now {self.cap.stage.value})"
                ),
                id="title",
            )
            yield OptionList(*(Option(f"{s.value:<11} {STAGE_HELP[s]}", id=s.value) for s in STAGE_ORDER), id="stages")
            yield Input(placeholder="Reason (recorded)", id="reason")
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Set stage", id="confirm", variant="primary")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = STAGE_ORDER.index(self.cap.stage)
        options.focus()

    @on(OptionList.OptionSelected)
    def _selected(self) -> None:
        self.query_one("#reason", Input).focus()

    @on(Input.Submitted, "#reason")
    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return
        stage = STAGE_ORDER[options.highlighted]
        reason = self.query_one("#reason", Input).value.strip()
        error = self.query_one("#error", Static)
        if stage is self.cap.stage:
            error.update(f"{self.cap.tool} is already {stage.value}; pick another stage.")
            return
        if not reason:
            error.update("A reason is required: every stage change is recorded.")
            self.query_one("#reason", Input).focus()
            return
        self.dismiss((stage, reason))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
