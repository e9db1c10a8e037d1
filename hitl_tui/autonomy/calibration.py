"""Confidence calibration: did reviewers approve what the agent was confident about?

For requests that carried the agent's confidence (0-100), :func:`calibration` tabulates bands of
confidence against the share approved by reviewers, ``approved / (approved + denied)``; expired
requests are counted apart (nobody judged them). :func:`suggest_thresholds` proposes the
``(approval, autonomous)`` pair that the evidence supports, or refuses and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from pydantic import BaseModel, Field, computed_field

from ..config import AutonomySettings
from .records import TrackRecords

__all__ = [
    "COARSE_BANDS",
    "FINE_BANDS",
    "BandRow",
    "CalibrationTable",
    "ThresholdSuggestion",
    "band_rows",
    "calibration",
    "suggest_thresholds",
]

Counts = Sequence[tuple[int, int, int]]  # per confidence 0..100: (approved, denied, expired)

COARSE_BANDS: list[tuple[int, int]] = [(0, 59), (60, 89), (90, 100)]
FINE_BANDS: list[tuple[int, int]] = [(lo, lo + 9) for lo in range(0, 90, 10)] + [(90, 100)]

class BandRow(BaseModel):
    low: int
    high: int  # inclusive
    approved: int = 0
    denied: int = 0
    expired: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def label(self) -> str:
        return f"{self.low}-{self.high}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def decided(self) -> int:
        return self.approved + self.denied

    @computed_field  # type: ignore[prop-decorator]
    @property
    def share_approved(self) -> float | None:
        return self.approved / self.decided if self.decided else None


class ThresholdSuggestion(BaseModel):
    """A suggested threshold pair with the counts it rests on, or a refusal (``ok`` false)."""

    ok: bool
    approval: int | None = None
    autonomous: int | None = None
    reason: str  # the evidence sentence, or why there is no suggestion
    target: float  # the highest acceptable denial rate at or above the autonomous threshold
    min_sample: int
    sample: int  # decided requests (approved + denied) that carried a confidence
    expired: int = 0  # expired requests with a confidence (not judged, not counted in rates)
    above_decided: int = 0  # decided at or above the autonomous threshold
    above_denied: int = 0
    between_decided: int = 0  # decided in [approval, autonomous)
    between_approved: int = 0
    below_decided: int = 0  # decided below the approval threshold (they would escalate)
    below_denied: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def denial_rate(self) -> float | None:
        return self.above_denied / self.above_decided if self.above_decided else None


class CalibrationTable(BaseModel):
    tool: str | None = None  # None: every tool
    agent: str | None = None  # None: every agent
    window_days: int
    since: date
    until: date
    bands: list[BandRow]
    fine: list[BandRow]
    thresholds: ThresholdSuggestion
    counts: list[tuple[int, int, int]] = Field(default_factory=list, exclude=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def approved(self) -> int:
        return sum(b.approved for b in self.bands)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def denied(self) -> int:
        return sum(b.denied for b in self.bands)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def expired(self) -> int:
        return sum(b.expired for b in self.bands)


def band_rows(counts: Counts, bands: Sequence[tuple[int, int]] = COARSE_BANDS) -> list[BandRow]:
    rows = []
    for lo, hi in bands:
        row = BandRow(low=lo, high=hi)
        for conf in range(lo, hi + 1):
            a, d, e = counts[conf]
            row.approved += a
            row.denied += d
            row.expired += e
        rows.append(row)
    return rows


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def suggest_thresholds(counts: Counts, *, target: float = 0.01, min_sample: int = 30) -> ThresholdSuggestion:
    """The threshold pair the observed decisions support.

    * autonomous: the lowest confidence ``T`` some decided request was rated such that, among the
      decided requests rated ``>= T``, the share denied is at most ``target`` and there are at least
      ``min_sample`` of them;
    * approval: the ``A <= T`` that would have routed the most requests below ``T`` the way
      reviewers judged them: denied ones below ``A`` (escalated: the agent asks for guidance instead
      of asking to run a refused action) plus approved ones in ``[A, T)`` (asked and approved). Only
      confidences some decided request was rated are candidates; ties go to the lowest ``A``.

    Refused (``ok`` false, with the reason) when fewer than ``min_sample`` decided requests carried
    a confidence, or when no threshold keeps the denial rate at or under the target.
    """
    if len(counts) != 101:
        raise ValueError("counts must hold one (approved, denied, expired) row per confidence 0..100")
    approved = [c[0] for c in counts]
    denied = [c[1] for c in counts]
    sample = sum(approved) + sum(denied)
    expired = sum(c[2] for c in counts)
    base = {"target": target, "min_sample": min_sample, "sample": sample, "expired": expired}
    if sample < min_sample:
        return ThresholdSuggestion(
            ok=False,
            reason=(
                f"sample too small: {sample} decided request{'s' if sample != 1 else ''} carried a confidence; "
                f"a suggestion needs at least {min_sample}"
            ),
            **base,
        )
    # suffix sums: decided and denied at or above each confidence
    above_dec = [0] * 102
    above_den = [0] * 102
    for conf in range(100, -1, -1):
        above_dec[conf] = above_dec[conf + 1] + approved[conf] + denied[conf]
        above_den[conf] = above_den[conf + 1] + denied[conf]
    autonomous = None
    for t in range(0, 101):
        if above_dec[t] < min_sample:
            break  # fewer and fewer requests from here up
        if approved[t] + denied[t] == 0:
            continue  # no request was rated t: a threshold there would rest on none
        if above_den[t] <= target * above_dec[t]:
            autonomous = t
            break
    if autonomous is None:
        t_max = max(t for t in range(101) if above_dec[t] >= min_sample)
        return ThresholdSuggestion(
            ok=False,
            reason=(
                f"no threshold keeps denials at or under {_pct(target)} with at least {min_sample} decided "
                f"requests at or above it: even at confidence >= {t_max}, {above_den[t_max]} of "
                f"{above_dec[t_max]} were denied ({_pct(above_den[t_max] / above_dec[t_max])})"
            ),
            **base,
        )
    # approval: maximise denied-below + approved-between over the candidates, lowest first
    below_app = sum(approved[:autonomous])
    best = (-1, autonomous)
    den_below = 0  # denied below the current candidate a
    app_from = below_app  # approved in [a, T)
    for a in range(0, autonomous + 1):
        if a == autonomous or approved[a] + denied[a]:
            score = den_below + app_from
            if score > best[0]:
                best = (score, a)
        if a < autonomous:
            den_below += denied[a]
            app_from -= approved[a]
    approval = best[1]
    below_dec = sum(approved[:approval]) + sum(denied[:approval])
    below_den = sum(denied[:approval])
    between_dec = sum(approved[approval:autonomous]) + sum(denied[approval:autonomous])
    between_app = sum(approved[approval:autonomous])
    t_dec, t_den = above_dec[autonomous], above_den[autonomous]
    parts = [
        f"autonomous at confidence >= {autonomous}: {t_den} of {t_dec} decided requests at or above it "
        f"were denied ({_pct(t_den / t_dec)}; target at most {_pct(target)})"
    ]
    if between_dec:
        parts.append(
            f"approval at >= {approval}: {between_app} of {between_dec} decided between {approval} and "
            f"{autonomous - 1} were approved ({_pct(between_app / between_dec)})"
        )
    else:
        parts.append(f"approval at >= {approval}")
    if below_dec:
        parts.append(f"below {approval}, {below_den} of {below_dec} were denied (escalate instead)")
    parts.append(f"from {sample} decided requests" + (f" ({expired} expired, not counted)" if expired else ""))
    return ThresholdSuggestion(
        ok=True,
        approval=approval,
        autonomous=autonomous,
        reason="; ".join(parts),
        above_decided=t_dec,
        above_denied=t_den,
        between_decided=between_dec,
        between_approved=between_app,
        below_decided=below_dec,
        below_denied=below_den,
        **base,
    )


def calibration(
    records: TrackRecords,
    *,
    now: datetime,
    window_days: int | None = None,
    tool: str | None = None,
    agent: str | None = None,
    settings: AutonomySettings | None = None,
) -> CalibrationTable:
    """The calibration table of ``tool`` / ``agent`` (None: all) over the window ending on ``now``'s day."""
    settings = settings or AutonomySettings()
    window = settings.window_days if window_days is None else window_days
    counts = records.confidence_counts(now=now, window_days=window, tool=tool, agent=agent)
    since, until = records.window_bounds(now, window)
    return CalibrationTable(
        tool=tool,
        agent=agent,
        window_days=window,
        since=since,
        until=until,
        bands=band_rows(counts, COARSE_BANDS),
        fine=band_rows(counts, FINE_BANDS),
        thresholds=suggest_thresholds(
            counts, target=settings.calibration_target, min_sample=settings.calibration_min_sample
        ),
        counts=counts,
    )
