"""``c`` in the capability pane: the full calibration of one capability, coarse and fine bands."""

from __future__ import annotations

from textual.content import Content

from ...autonomy import CalibrationTable
from ...models import Capability
from ..adapters import one_line
from ..widgets.capability_detail import calibration_lines, chart_lines
from .text_view import TextViewScreen

WIDTH = 76


def calibration_body(table: CalibrationTable) -> Content:
    parts = calibration_lines(table, WIDTH, fine=True)
    if table.approved + table.denied + table.expired:
        parts += [Content(""), Content.styled("Bands of the issue's table", "bold $text-accent")]
        parts += chart_lines(table.bands, WIDTH)
    parts += [
        Content(""),
        Content.styled(
            f"{table.window_days} days, {table.since} to {table.until} (UTC). Share approved = approved / "
            "(approved + denied); expired requests are counted apart. Same figures: hitl calibration --tool TOOL",
            "$text-muted",
        ),
    ]
    return Content("\n").join(parts)


class CalibrationScreen(TextViewScreen):
    def __init__(self, cap: Capability, table: CalibrationTable) -> None:
        who = f" @ {one_line(cap.agent, 40)}" if cap.agent else " (all agents)"
        title = Content.assemble("Calibration: ", (one_line(cap.tool, 80), "bold"), who)
        super().__init__(title, calibration_body(table))
