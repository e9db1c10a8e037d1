"""One object for the console's capability pane and the CLI: records, suggestions, calibration.

.. code-block:: python

    autonomy = Autonomy(backend, settings)        # settings: Settings or AutonomySettings
    await autonomy.refresh()                      # folds only the events since the last call
    for s in autonomy.suggestions():              # dismissed ones hidden
        print(s.target, s.kind, s.evidence)
    await autonomy.accept(s, actor="alice", reason="looks solid")
    autonomy.dismiss(s, days=7, by="alice")
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..config import AutonomySettings, Settings
from ..errors import NotFound
from ..models import Capability
from .calibration import CalibrationTable, calibration
from .chart import render_bars
from .dismissals import Dismissal, Dismissals
from .records import TrackRecord, TrackRecords
from .suggestions import Suggestion, accept, promotion_blockers, suggest

__all__ = ["Autonomy"]


class Autonomy:
    def __init__(
        self,
        backend: Any,
        settings: Settings | AutonomySettings | None = None,
        *,
        dismissals: Dismissals | None = None,
        records: TrackRecords | None = None,
    ) -> None:
        self.backend = backend
        if isinstance(settings, Settings):
            settings = settings.autonomy
        self.settings: AutonomySettings = settings or AutonomySettings()
        self.records = records or TrackRecords()
        self.dismissals = dismissals or Dismissals(backend.describe())
        self.capabilities: list[Capability] = []
        self._caps_seq = -1

    @staticmethod
    def _now(now: datetime | None) -> datetime:
        return now or datetime.now(UTC)

    def _window(self, window_days: int | None) -> int:
        return self.settings.window_days if window_days is None else window_days

    async def refresh(self, *, max_events: int | None = None) -> int:
        """Fold the events written since the last refresh and reload the capabilities when they
        changed. Returns how many events were read (cheap when nothing happened)."""
        read = await self.records.refresh(self.backend, max_events=max_events)
        if self.records.capabilities_seq != self._caps_seq:
            self.capabilities = await self.backend.list_capabilities()
            self._caps_seq = self.records.capabilities_seq
        return read

    # ----------------------------------------------------------------- figures
    def capability(self, tool: str, agent: str | None = None) -> Capability:
        for cap in self.capabilities:
            if cap.tool == tool and cap.agent == agent:
                return cap
        who = f" for agent {agent}" if agent else ""
        raise NotFound(f"no capability {tool!r}{who}", tool=tool)

    def record(self, cap: Capability, *, now: datetime | None = None, window_days: int | None = None) -> TrackRecord:
        window = self._window(window_days)
        return self.records.record_for(cap, self.capabilities, now=self._now(now), window_days=window)

    def blockers(self, cap: Capability, *, now: datetime | None = None, window_days: int | None = None) -> list[str]:
        """Why ``cap`` is not suggested for promotion (empty when it is)."""
        return promotion_blockers(cap, self.record(cap, now=now, window_days=window_days), self.settings)

    def calibration(
        self,
        *,
        tool: str | None = None,
        agent: str | None = None,
        now: datetime | None = None,
        window_days: int | None = None,
    ) -> CalibrationTable:
        return calibration(
            self.records, now=self._now(now), window_days=self._window(window_days), tool=tool, agent=agent,
            settings=self.settings,
        )

    @staticmethod
    def chart(table: CalibrationTable, *, fine: bool = True, width: int = 20, ascii: bool = False) -> list[str]:
        return render_bars(table.fine if fine else table.bands, width, ascii=ascii)

    # ----------------------------------------------------------------- suggestions
    def suggestions(
        self, *, now: datetime | None = None, window_days: int | None = None, include_dismissed: bool = False
    ) -> list[Suggestion]:
        now = self._now(now)
        out = suggest(self.records, self.capabilities, self.settings, now, window_days=self._window(window_days))
        if include_dismissed:
            return out
        hidden = self.dismissals.active(now)
        return [s for s in out if s.key not in hidden]

    def find(
        self, tool: str, agent: str | None = None, *, now: datetime | None = None, window_days: int | None = None
    ) -> Suggestion | None:
        """The current suggestion for one capability (dismissed or not), or None."""
        for s in self.suggestions(now=now, window_days=window_days, include_dismissed=True):
            if s.tool == tool and s.agent == agent:
                return s
        return None

    def dismissed(self, *, now: datetime | None = None) -> dict[str, Dismissal]:
        return self.dismissals.active(self._now(now))

    async def accept(
        self, suggestion: Suggestion, *, actor: str | None = None, reason: str | None = None
    ) -> Capability:
        cap = await accept(self.backend, suggestion, actor, reason)
        self.capabilities = [cap if (c.tool, c.agent) == (cap.tool, cap.agent) else c for c in self.capabilities]
        return cap

    def dismiss(
        self, suggestion: Suggestion, *, days: float = 7, by: str | None = None, now: datetime | None = None
    ) -> Dismissal:
        return self.dismissals.dismiss(suggestion, days=days, by=by, now=self._now(now))
