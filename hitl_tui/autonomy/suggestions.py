"""Promotion and demotion suggestions, from track records. Never applied silently.

* approval → autonomous when a capability has at least ``min_approvals`` approvals in the window
  and no denial, no edit before approval and no flagged review in it; never for a capability
  marked ``always_approval``; disabled → approval is never suggested (promote it explicitly);
* autonomous → approval when an after-the-fact review of it was flagged since it last became
  autonomous (unless ``demote_on_flag`` is ``off``).

:func:`accept` applies one with ``set_stage`` and records the evidence as the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, computed_field

from ..config import AutonomySettings
from ..errors import Conflict
from ..models import Capability, Stage
from ..text import sanitise
from .records import TrackRecord, TrackRecords

__all__ = [
    "Suggestion",
    "accept",
    "demotion_for",
    "evidence_sentence",
    "flag_sentence",
    "format_duration",
    "promoted_at",
    "promotion_blockers",
    "suggest",
]


class Suggestion(BaseModel):
    """One proposed stage change and the evidence for it, in a reviewer's words."""

    kind: Literal["promote", "demote"]
    tool: str
    agent: str | None = None  # the capability's agent scope (None: the unscoped capability)
    from_stage: Stage
    to_stage: Stage
    evidence: str
    window_days: int
    record: TrackRecord | None = None
    review_id: int | None = None  # the flagged review behind a demotion
    applied: bool = False  # True when the change was made (automatic demotion in "act" mode)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def target(self) -> str:
        """``tool`` or ``tool@agent``: the capability this is about."""
        return self.tool + (f"@{self.agent}" if self.agent else "")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key(self) -> str:
        """Identifies the proposal (capability and change), e.g. for a dismissal."""
        return f"{self.target}:{self.from_stage.value}->{self.to_stage.value}"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def evidence_sentence(record: TrackRecord) -> str:
    """``62 approved, 0 denied, 0 edited, 0 flagged in 30 days; median decision 41 s``."""
    days = f"{record.window_days} day{'s' if record.window_days != 1 else ''}"
    text = (
        f"{record.approved} approved, {record.denied} denied, {record.edited} edited, "
        f"{record.reviews_flagged} flagged in {days}"
    )
    if record.median_decision_s is not None:
        text += f"; median decision {format_duration(record.median_decision_s)}"
    return text


def flag_sentence(review_id: int, reviewer: str | None, note: str | None) -> str:
    """``review #12 flagged by alice: wrong file`` (names and note sanitised to one line)."""
    text = f"review #{review_id} flagged by {sanitise(reviewer or 'someone', oneline=True, limit=80)}"
    if note:
        text += f": {sanitise(note, oneline=True, limit=200)}"
    return text


def promotion_blockers(cap: Capability, record: TrackRecord, settings: AutonomySettings) -> list[str]:
    """Why ``cap`` is not suggested for promotion (empty: it is)."""
    if cap.stage is Stage.autonomous:
        return ["already autonomous"]
    if cap.stage is Stage.disabled:
        return ["disabled: promoting it to approval is never suggested; do it explicitly"]
    if cap.always_approval:
        return ["marked always-approval: never suggested for autonomy"]
    out = []
    if record.approved < settings.min_approvals:
        out.append(f"{record.approved} approved in {record.window_days} days; needs {settings.min_approvals}")
    if record.denied:
        when = f" (last {record.last_denial_at:%Y-%m-%d})" if record.last_denial_at else ""
        out.append(f"{record.denied} denied{when}")
    if record.edited:
        out.append(f"{record.edited} approved with edited arguments")
    if record.reviews_flagged:
        n = record.reviews_flagged
        out.append(f"{n} after-the-fact review{'s' if n != 1 else ''} flagged")
    return out


def promoted_at(cap: Capability) -> datetime | None:
    """When ``cap`` last became autonomous (None: no recorded history)."""
    for change in reversed(cap.history):
        if change.to_stage is Stage.autonomous:
            return change.at
    return None


def demotion_for(cap: Capability, record: TrackRecord) -> Suggestion | None:
    """A demotion when a review of the autonomous ``cap`` was flagged since it became autonomous."""
    if cap.stage is not Stage.autonomous:
        return None
    since = promoted_at(cap)
    flags = [f for f in record.flags if since is None or f.at >= since]
    if not flags:
        return None
    last = flags[-1]
    evidence = flag_sentence(last.review_id, last.reviewer, last.note)
    if len(flags) > 1:
        evidence += f" (and {len(flags) - 1} more flagged since it became autonomous)"
    return Suggestion(
        kind="demote",
        tool=cap.tool,
        agent=cap.agent,
        from_stage=Stage.autonomous,
        to_stage=Stage.approval,
        evidence=evidence,
        window_days=record.window_days,
        record=record,
        review_id=last.review_id,
    )


def suggest(
    records: TrackRecords,
    capabilities: Iterable[Capability],
    settings: AutonomySettings | None = None,
    now: datetime | None = None,
    *,
    window_days: int | None = None,
) -> list[Suggestion]:
    """Every current suggestion: demotions first, then promotions, each by tool and agent."""
    from datetime import UTC

    settings = settings or AutonomySettings()
    now = now or datetime.now(UTC)
    window = settings.window_days if window_days is None else window_days
    caps = list(capabilities)
    out: list[Suggestion] = []
    for cap in caps:
        if cap.stage is Stage.disabled:
            continue
        record = records.record_for(cap, caps, now=now, window_days=window)
        if cap.stage is Stage.autonomous:
            if settings.demote_on_flag != "off" and (s := demotion_for(cap, record)) is not None:
                out.append(s)
            continue
        if not promotion_blockers(cap, record, settings):
            out.append(
                Suggestion(
                    kind="promote",
                    tool=cap.tool,
                    agent=cap.agent,
                    from_stage=Stage.approval,
                    to_stage=Stage.autonomous,
                    evidence=evidence_sentence(record),
                    window_days=window,
                    record=record,
                )
            )
    out.sort(key=lambda s: (s.kind != "demote", s.tool, s.agent or ""))
    return out


async def accept(
    backend: Any, suggestion: Suggestion, actor: str | None = None, reason: str | None = None
) -> Capability:
    """Apply ``suggestion`` with ``set_stage``; the evidence (and ``reason``) is recorded.

    Refuses (``Conflict``) when the capability is no longer at the suggestion's starting stage.
    """
    cap = await backend.get_capability(suggestion.tool, suggestion.agent)
    if cap.stage is not suggestion.from_stage:
        raise Conflict(
            f"{suggestion.target} is now {cap.stage.value}, not {suggestion.from_stage.value}: the suggestion is stale",
            tool=suggestion.tool,
            stage=cap.stage.value,
        )
    text = f"accepted suggestion: {suggestion.evidence}"
    if reason:
        text += f" ({reason})"
    return await backend.set_stage(suggestion.tool, suggestion.to_stage, actor, text, agent=suggestion.agent)
