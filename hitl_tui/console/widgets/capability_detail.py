"""The detail panel of one capability: the suggestion and its evidence (or why there is none), the
track record over the chosen window, a confidence calibration chart, its settings and recent stage
changes. Everything is literal ``Content``: no string here is ever parsed as markup."""

from __future__ import annotations

from datetime import datetime

from textual import events
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from ...autonomy import CalibrationTable, bar, format_duration
from ...autonomy.calibration import BandRow
from ...models import Capability
from ..adapters import block, capability_flags, clock_time, one_line, short_duration, stage_history_lines
from ..evidence import DISMISS_DAYS, Evidence

RECENT_CHANGES = 5
BAR_MIN, BAR_MAX = 6, 20


def _day(dt: datetime | None, now: datetime) -> str:
    """Date and minute in the console's zone: the last denial may be weeks old."""
    if dt is None:
        return "-"
    return (dt.astimezone(now.tzinfo) if now.tzinfo else dt).strftime("%Y-%m-%d %H:%M")


def suggestion_lines(ev: Evidence | None, now: datetime) -> list[Content]:
    """The suggestion with its evidence and keys, a dismissed one, or why there is none."""
    if ev is None:
        return [Content.styled("Reading the event log for this capability's record…", "$text-muted")]
    s = ev.suggestion
    if s is not None:
        arrow, style = ("▲ promote", "$text-success") if s.kind == "promote" else ("▼ demote", "$text-error")
        return [
            Content.assemble(
                ("Suggestion  ", "bold $text-accent"),
                (f"{arrow} {s.from_stage.value} → {s.to_stage.value}", f"bold {style}"),
            ),
            Content(one_line(s.evidence, 400)),
            Content.styled(f"a accept (with a reason) · x dismiss for {DISMISS_DAYS} days", "$text-muted"),
        ]
    if ev.dismissed is not None and ev.dismissal is not None:
        d = ev.dismissal
        by = f" by {one_line(d.by, 40)}" if d.by else ""
        return [
            Content.assemble(
                ("Suggestion  ", "bold $text-accent"),
                (
                    f"{ev.dismissed.from_stage.value} → {ev.dismissed.to_stage.value} dismissed{by} "
                    f"until {clock_time(d.until, now)}",
                    "$text-muted",
                ),
            ),
            Content.styled(one_line(ev.dismissed.evidence, 400), "$text-muted"),
        ]
    why = "; ".join(one_line(b, 200) for b in ev.blockers) or "no suggestion"
    return [Content.assemble(("Not suggested  ", "bold $text-accent"), (why, "$text-muted"))]


def record_lines(ev: Evidence | None, now: datetime) -> list[Content]:
    if ev is None:
        return []
    r = ev.record
    days = f"{r.window_days} day{'s' if r.window_days != 1 else ''}"
    return [
        Content.assemble(("Record", "bold $text-accent"), (f"  last {days} (w: 7/30/90)", "$text-muted")),
        Content.assemble(
            "  ",
            (f"{r.approved} approved", "$text-success"),
            " · ",
            (f"{r.denied} denied", "$text-error"),
            f" · {r.expired} expired · {r.edited} edited",
        ),
        Content.assemble(
            "  reviews ",
            (f"{r.reviews_ok} ok", "$text-success"),
            " · ",
            (f"{r.reviews_flagged} flagged", "$text-warning"),
            f" · decision median {format_duration(r.median_decision_s)}, p90 {format_duration(r.p90_decision_s)}",
        ),
        Content.styled(f"  last denial {_day(r.last_denial_at, now)} · last flag {_day(r.last_flag_at, now)}",
                       "$text-muted"),
    ]


def chart_lines(rows: list[BandRow], width: int) -> list[Content]:
    """One line per band: label, bar, share approved and the counts behind it (literal text)."""
    label_w = max((len(r.label) for r in rows), default=0)
    tails = []
    for r in rows:
        share = r.share_approved
        pct = "  - " if share is None else f"{share * 100:3.0f}%"
        counts = f"{r.approved}/{r.decided} approved" if r.decided else "no decisions"
        if r.expired:
            counts += f", {r.expired} expired"
        tails.append(f" {pct}  {counts}")
    room = width - 2 - label_w - 1 - max((len(t) for t in tails), default=0)
    bar_w = max(BAR_MIN, min(BAR_MAX, room))
    out = []
    for r, tail in zip(rows, tails, strict=True):
        out.append(
            Content.assemble(
                "  " + r.label.rjust(label_w) + " ",
                (bar(r.share_approved, bar_w), "$text-success"),
                tail,
            )
        )
    return out


def calibration_lines(table: CalibrationTable | None, width: int, *, fine: bool = False) -> list[Content]:
    if table is None:
        return []
    head = Content.assemble(
        ("Calibration  ", "bold $text-accent"),
        ("confidence vs share approved (c: finer)", "$text-muted"),
    )
    out = [head]
    if table.approved + table.denied + table.expired == 0:
        out.append(Content.styled(f"  no request carried a confidence in {table.window_days} days", "$text-muted"))
        return out
    out += chart_lines(table.fine if fine else table.bands, width)
    t = table.thresholds
    if t.ok:
        out.append(
            Content.assemble(
                ("  suggested thresholds: ", "bold"),
                (f"approval ≥ {t.approval}, autonomous ≥ {t.autonomous}", "bold $text-success"),
            )
        )
        out.append(Content.styled("  " + t.reason, "$text-muted"))
    else:
        out.append(Content.assemble(("  no threshold suggestion: ", "bold"), (t.reason, "$text-muted")))
    return out


def capability_content(
    cap: Capability,
    evidence: Evidence | None,
    calibration: CalibrationTable | None,
    now: datetime,
    width: int = 60,
) -> Content:
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
    parts += suggestion_lines(evidence, now)
    parts += record_lines(evidence, now)
    if cap.description:
        parts.append(Content(block(cap.description)))
    th = cap.thresholds
    settings = [
        f"thresholds {'default' if th is None else f'autonomous ≥{th.autonomous}, approval ≥{th.approval}'}",
        f"timeout {'default' if cap.timeout_s is None else short_duration(cap.timeout_s)}",
    ]
    if flags := capability_flags(cap, long=True):
        settings.append(f"flags {flags}")
    parts.append(Content.styled(" · ".join(settings), "$text-muted"))
    if cap.always_approval:
        parts.append(
            Content.styled("always-approval: promoting to autonomous needs a forced, audited override", "$text-warning")
        )
    parts += calibration_lines(calibration, width)
    lines = stage_history_lines(cap, now)
    parts += [Content.styled(f"Stage changes ({len(lines)}; h shows all)", "bold $text-accent")]
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
        self._shown: tuple[Evidence | None, CalibrationTable | None, datetime] | None = None

    def compose(self):
        yield self._body

    def on_mount(self) -> None:
        self.border_title = "Details"

    def _width(self) -> int:
        return max(30, self.scrollable_content_region.width or 60)

    def show(
        self, cap: Capability | None, evidence: Evidence | None, calibration: CalibrationTable | None, now: datetime
    ) -> None:
        self.capability = cap
        if cap is None:
            self._shown = None
            self._body.update(Content.styled("No capability selected.", "$text-muted"))
            return
        self._shown = (evidence, calibration, now)
        self._body.update(capability_content(cap, evidence, calibration, now, self._width()))

    def on_resize(self, _event: events.Resize) -> None:
        if self.capability is not None and self._shown is not None:
            evidence, calibration, now = self._shown
            self._body.update(capability_content(self.capability, evidence, calibration, now, self._width()))

    def text(self) -> str:
        """The panel as plain text (for tests and screen readers)."""
        return str(self._body.render())
