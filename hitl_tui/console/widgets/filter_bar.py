"""The ``/`` filter input docked under a list: live as you type, ``enter`` keeps it, ``esc`` clears it."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input

DEBOUNCE_S = 0.15


class FilterBar(Input):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "clear_filter", "Clear filter", show=True),
    ]

    DEFAULT_CSS = """
    FilterBar { display: none; height: 1; border: none; padding: 0 1; background: $boost; }
    FilterBar.-active { display: block; }
    FilterBar:focus { border: none; background: $boost; }
    """

    class Changed(Message):
        """The filter text to apply (empty: no filter)."""

        def __init__(self, bar: FilterBar, value: str, done: bool) -> None:
            super().__init__()
            self.bar = bar
            self.value = value
            self.done = done

        @property
        def control(self) -> FilterBar:
            return self.bar

    def __init__(self, placeholder: str, *, id: str | None = None) -> None:
        super().__init__(placeholder=placeholder, id=id, select_on_focus=True)
        self._timer: Timer | None = None

    def open(self) -> None:
        self.add_class("-active")
        self.focus()

    def _send(self, done: bool) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.post_message(self.Changed(self, self.value.strip(), done))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input is not self:
            return
        event.stop()
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE_S, lambda: self._send(False))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input is not self:
            return
        event.stop()
        if not self.value.strip():
            self.remove_class("-active")
        self._send(True)

    def action_clear_filter(self) -> None:
        self.value = ""
        self.remove_class("-active")
        self._send(True)
