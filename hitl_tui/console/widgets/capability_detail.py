"""The detail panel of one capability: what it is, its settings, its record and recent stage changes."""

from __future__ import annotations

from datetime import datetime

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from ...models import Capability
from ..adapters import ToolRecord, block, capability_flags, one_line, short_duration, stage_history_lines

RECENT_CHANGES = 5


def capability_content(cap: Capability, record: ToolRecord | None, now: datetime) -> Content:
    parts: list[Content] = [
        Content.assemble(
            (one_line(cap.tool, 100), "bold"),
            (f" (agent {one_line(cap.agent, 40)})" if cap.agent else " (all agents)", "$text-muted"),
            "  stage ",
            (cap.stage.value.upper(), "bold"),
            "  risk ",
            cap.risk.value,
        )
    ]
    if cap.description:
        parts.append(Content(block(cap.description)))
    th = cap.thresholds
    settings = [
        f"thresholds {'default' if th is None else f'autonomous ≥{th.autonomous}, approval ≥{th.approval}'}",
        f"timeout {'default' if cap.timeout_s is None else short_duration(cap.timeout_s)}",
    ]
    if flags := capability_flags(cap):
        settings.append(f"flags {flags}")
    parts.append(Content.styled(" · ".join(settings), "$text-muted"))
    if cap.always_approval:
        parts.append(
            Content.styled("always-approval: promoting to autonomous needs a forced, audited override", "$text-warning")
        )
    if record is not None:
        median = "-" if record.median_decide_s is None else short_duration(record.median_decide_s)
        parts.append(
            Content.assemble(
                ("Record  ", "bold $text-accent"),
                (f"{record.approved} approved", "$text-success"),
                " · ",
                (f"{record.denied} denied", "$text-error"),
                " · ",
                (f"{record.flagged} flagged", "$text-warning"),
                " · ",
                f"median time to decide {median}",
            )
        )
    lines = stage_history_lines(cap, now)
    parts += [Content(""), Content.styled(f"Stage changes ({len(lines)}; h shows all)", "bold $text-accent")]
    parts += lines[:RECENT_CHANGES] or [Content.styled("none recorded", "$text-muted")]
    return Content("\n").join(parts)


class CapabilityDetail(VerticalScroll, can_focus=True):
    DEFAULT_CSS = """
    CapabilityDetail { height: 1fr; padding: 0 1; border-top: hkey $panel-lighten-2; border-title-style: bold; }
    CapabilityDetail:focus { border-top: hkey $primary; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.capability: Capability | None = None
        self._body = Static(Content(""))

    def compose(self):
        yield self._body

    def on_mount(self) -> None:
        self.border_title = "Details"

    def show(self, cap: Capability | None, record: ToolRecord | None, now: datetime) -> None:
        self.capability = cap
        if cap is None:
            self._body.update(Content.styled("No capability selected.", "$text-muted"))
            return
        self._body.update(capability_content(cap, record, now))
