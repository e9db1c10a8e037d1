"""A capability's stage history: every change, who made it, when and why."""

from __future__ import annotations

from datetime import datetime

from textual.content import Content

from ...models import Capability
from ..adapters import one_line, stage_history_lines
from .text_view import TextViewScreen


class HistoryScreen(TextViewScreen):
    def __init__(self, cap: Capability, now: datetime) -> None:
        lines = stage_history_lines(cap, now)
        body = Content("\n").join(lines) if lines else Content("No stage changes recorded.")
        changes = f"{len(lines)} change{'' if len(lines) == 1 else 's'}"
        title = Content.assemble("Stage history: ", (one_line(cap.tool, 80), "bold"), f"  ({changes}, newest first)")
        super().__init__(title, body)
