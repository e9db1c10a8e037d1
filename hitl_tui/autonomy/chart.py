"""Plain-text bar charts for the calibration table: no markup, no colour, safe in any terminal.

The same lines serve the CLI (printed) and the console (wrapped in ``rich.text.Text`` or
``textual.content.Content``, never parsed as markup).
"""

from __future__ import annotations

from collections.abc import Sequence

from .calibration import BandRow

__all__ = ["bar", "render_bars"]

FULL, EMPTY, NONE = "\u2588", "\u2591", "\u00b7"  # █ ░ ·
ASCII_FULL, ASCII_EMPTY, ASCII_NONE = "#", ".", " "


def bar(share: float | None, width: int = 20, *, ascii: bool = False) -> str:
    """``width`` cells, the first ``round(share * width)`` filled; dots when there is no share."""
    full, empty, none = (ASCII_FULL, ASCII_EMPTY, ASCII_NONE) if ascii else (FULL, EMPTY, NONE)
    if share is None:
        return none * width
    filled = max(0, min(width, round(share * width)))
    return full * filled + empty * (width - filled)


def render_bars(rows: Sequence[BandRow], width: int = 20, *, ascii: bool = False) -> list[str]:
    """One line per band: label, bar, share approved, and the counts behind it.

    ``90-100 ██████████████████░░  92%  46/50 approved, 3 expired``
    """
    label_w = max((len(r.label) for r in rows), default=0)
    lines = []
    for r in rows:
        share = r.share_approved
        pct = "  - " if share is None else f"{share * 100:3.0f}%"
        counts = f"{r.approved}/{r.decided} approved" if r.decided else "no decisions"
        if r.expired:
            counts += f", {r.expired} expired"
        lines.append(f"{r.label.rjust(label_w)} {bar(share, width, ascii=ascii)} {pct}  {counts}")
    return lines
