"""The capability pane's evidence: track records, suggestions and calibration, from the event log.

:class:`EvidenceBook` wraps one :class:`~hitl_tui.autonomy.Autonomy` for the console. It folds the
event log incrementally (only the events written since the last refresh, a slice at a time so a
long backlog never freezes a key press) and turns the figures into one :class:`Evidence` per
capability for the window the reviewer chose (7, 30 or 90 days). The console reads these snapshots;
it never scans the log itself and never computes a figure while drawing a row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ..autonomy import Autonomy, CalibrationTable, Dismissal, Suggestion, TrackRecord, promotion_blockers
from ..backend.base import Backend
from ..config import Settings
from ..models import Capability
from .adapters import capability_key

__all__ = ["DISMISS_DAYS", "SLICE", "WINDOWS", "Evidence", "EvidenceBook"]

WINDOWS = (7, 30, 90)  # days; ``w`` cycles through them (plus the configured window when it differs)
SLICE = 2000  # events folded per step (~10-20 ms of work), then the UI gets the loop back
DISMISS_DAYS = 7


@dataclass(frozen=True)
class Evidence:
    """What the pane shows for one capability over one window."""

    capability: Capability
    record: TrackRecord
    suggestion: Suggestion | None = None  # a current suggestion (not dismissed)
    dismissed: Suggestion | None = None  # a current suggestion a reviewer dismissed...
    dismissal: Dismissal | None = None  # ...and until when
    blockers: list[str] = field(default_factory=list)  # why there is no suggestion

    @property
    def marker(self) -> str:
        s = self.suggestion
        if s is None:
            return ""
        return "▲" if s.kind == "promote" else "▼"


class EvidenceBook:
    """Folds the backend's event log and keeps one :class:`Evidence` per capability."""

    def __init__(self, backend: Backend, settings: Settings, *, autonomy: Autonomy | None = None) -> None:
        self.autonomy = autonomy or Autonomy(backend, settings)
        configured = self.autonomy.settings.window_days
        self.windows: tuple[int, ...] = tuple(sorted({*WINDOWS, configured}))
        self.window_days = configured
        self.by_key: dict[str, Evidence] = {}
        self.folding = False  # a refresh is catching up with a backlog
        self.computed_day: int | None = None
        self._lock = asyncio.Lock()

    # ----------------------------------------------------------------- folding
    @property
    def events_read(self) -> int:
        return self.autonomy.records.events_read

    @property
    def last_seq(self) -> int:
        return self.autonomy.records.last_seq

    async def refresh(self, *, on_progress: Callable[[int], None] | None = None, slice_size: int = SLICE) -> int:
        """Fold every event written since the last refresh, ``slice_size`` at a time, yielding the
        loop between slices. Returns how many events were read."""
        total = 0
        async with self._lock:
            try:
                while True:
                    read = await self.autonomy.refresh(max_events=slice_size)
                    total += read
                    if read < slice_size:
                        return total
                    self.folding = True
                    if on_progress is not None:
                        on_progress(total)
                    await asyncio.sleep(0)
            finally:
                self.folding = False

    # ----------------------------------------------------------------- figures
    def cycle_window(self) -> int:
        at = self.windows.index(self.window_days) if self.window_days in self.windows else -1
        self.window_days = self.windows[(at + 1) % len(self.windows)]
        return self.window_days

    def compute(self, now: datetime) -> dict[str, Evidence]:
        """Rebuild every capability's evidence for the current window ending on ``now``'s day."""
        a = self.autonomy
        window = self.window_days
        found = a.suggestions(now=now, window_days=window, include_dismissed=True)
        hidden = a.dismissed(now=now)
        by_cap = {(s.tool, s.agent): s for s in found}
        out: dict[str, Evidence] = {}
        for cap in a.capabilities:
            record = a.record(cap, now=now, window_days=window)
            s = by_cap.get((cap.tool, cap.agent))
            if s is None:
                out[capability_key(cap)] = Evidence(cap, record, blockers=_why_not(cap, record, a))
            elif s.key in hidden:
                out[capability_key(cap)] = Evidence(cap, record, dismissed=s, dismissal=hidden[s.key])
            else:
                out[capability_key(cap)] = Evidence(cap, record, suggestion=s)
        self.by_key = out
        self.computed_day = _day(now)
        return out

    def stale(self, now: datetime) -> bool:
        """True when the day changed or a dismissal ran out since the last :meth:`compute`."""
        if self.computed_day != _day(now):
            return True
        return any(e.dismissal is not None and e.dismissal.until <= now for e in self.by_key.values())

    def get(self, cap: Capability) -> Evidence | None:
        return self.by_key.get(capability_key(cap))

    @property
    def suggestion_count(self) -> int:
        return sum(1 for e in self.by_key.values() if e.suggestion is not None)

    def calibration(self, cap: Capability, now: datetime) -> CalibrationTable:
        return self.autonomy.calibration(tool=cap.tool, agent=cap.agent, now=now, window_days=self.window_days)

    # ----------------------------------------------------------------- acting
    async def accept(self, suggestion: Suggestion, *, actor: str, reason: str) -> Capability:
        return await self.autonomy.accept(suggestion, actor=actor, reason=reason)

    async def dismiss(self, suggestion: Suggestion, *, by: str, now: datetime, days: float = DISMISS_DAYS) -> Dismissal:
        # a small file written atomically (with fsync): off the event loop
        return await asyncio.to_thread(self.autonomy.dismiss, suggestion, days=days, by=by, now=now)


def _day(now: datetime) -> int:
    return int(now.timestamp() // 86400)


def _why_not(cap: Capability, record: TrackRecord, autonomy: Autonomy) -> list[str]:
    blockers = promotion_blockers(cap, record, autonomy.settings)
    if blockers == ["already autonomous"]:
        if autonomy.settings.demote_on_flag == "off":
            return ["already autonomous"]
        return ["already autonomous; no review flagged since it became autonomous"]
    return blockers
