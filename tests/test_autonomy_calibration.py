"""Confidence calibration: the band table from a known history, threshold suggestions and refusals, the chart."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hitl_tui.autonomy import (
    BandRow,
    TrackRecords,
    bar,
    calibration,
    render_bars,
    suggest_thresholds,
)
from hitl_tui.backend.local import LocalBackend
from hitl_tui.config import AutonomySettings

from .test_autonomy_support import decide, expire

NOW = datetime(2026, 1, 20, tzinfo=UTC)


async def _history(store, clock) -> TrackRecords:
    """deploy (agent bot): 12 approved at 95, 1 denied at 92, 6 approved and 2 denied at 75, 1 expired
    at 65; read (agent bot2): 1 approved and 3 denied at 30; 2 approvals without a confidence."""
    for _ in range(12):
        await decide(store, clock, "deploy", confidence=95)
    await decide(store, clock, "deploy", "deny", confidence=92)
    for _ in range(6):
        await decide(store, clock, "deploy", confidence=75)
    for _ in range(2):
        await decide(store, clock, "deploy", "deny", confidence=75)
    await expire(store, clock, "deploy", confidence=65)
    await decide(store, clock, "read", agent="bot2", confidence=30)
    for _ in range(3):
        await decide(store, clock, "read", "deny", agent="bot2", confidence=30)
    for _ in range(2):
        await decide(store, clock, "deploy")
    records = TrackRecords()
    await records.refresh(LocalBackend(store, expire_sweep=False))
    return records


def _rows(rows: list[BandRow]) -> list[tuple]:
    return [(r.label, r.approved, r.denied, r.expired, None if r.share_approved is None else round(r.share_approved, 4))
            for r in rows]


async def test_the_band_table_against_hand_computed_values(store, clock) -> None:
    records = await _history(store, clock)
    settings = AutonomySettings(calibration_min_sample=20)
    table = calibration(records, now=NOW, settings=settings)
    assert _rows(table.bands) == [
        ("0-59", 1, 3, 0, 0.25),
        ("60-89", 6, 2, 1, 0.75),
        ("90-100", 12, 1, 0, 0.9231),
    ]
    fine = {r[0]: r for r in _rows(table.fine)}
    assert list(fine) == ["0-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80-89", "90-100"]
    assert fine["30-39"] == ("30-39", 1, 3, 0, 0.25)
    assert fine["60-69"] == ("60-69", 0, 0, 1, None)  # expired only: nobody judged it
    assert fine["70-79"] == ("70-79", 6, 2, 0, 0.75)
    assert fine["90-100"] == ("90-100", 12, 1, 0, 0.9231)
    assert fine["0-9"] == ("0-9", 0, 0, 0, None)
    assert (table.approved, table.denied, table.expired) == (19, 6, 1)

    # per capability and per agent
    deploy = calibration(records, now=NOW, tool="deploy", settings=settings)
    assert _rows(deploy.bands) == [("0-59", 0, 0, 0, None), ("60-89", 6, 2, 1, 0.75), ("90-100", 12, 1, 0, 0.9231)]
    bot2 = calibration(records, now=NOW, agent="bot2", settings=settings)
    assert _rows(bot2.bands)[0] == ("0-59", 1, 3, 0, 0.25)
    assert bot2.approved + bot2.denied == 4
    assert calibration(records, now=NOW, tool="deploy", agent="bot2", settings=settings).approved == 0


async def test_thresholds_from_the_history_and_their_refusals(store, clock) -> None:
    records = await _history(store, clock)
    # 25 decided with a confidence. At >= 30: 6 of 25 denied; >= 75: 3 of 21; >= 92: only 13 (< 20).
    refused = calibration(records, now=NOW, settings=AutonomySettings(calibration_min_sample=20)).thresholds
    assert not refused.ok and refused.approval is None and refused.autonomous is None
    assert refused.reason == (
        "no threshold keeps denials at or under 1.0% with at least 20 decided requests at or above it: "
        "even at confidence >= 75, 3 of 21 were denied (14.3%)"
    )
    loose = AutonomySettings(calibration_min_sample=20, calibration_target=0.15)
    t = calibration(records, now=NOW, settings=loose).thresholds
    assert t.ok and (t.approval, t.autonomous) == (75, 75)
    assert (t.sample, t.expired, t.above_decided, t.above_denied) == (25, 1, 21, 3)
    assert (t.below_decided, t.below_denied, t.between_decided) == (4, 3, 0)
    assert t.reason == (
        "autonomous at confidence >= 75: 3 of 21 decided requests at or above it were denied "
        "(14.3%; target at most 15.0%); approval at >= 75; below 75, 3 of 4 were denied (escalate instead); "
        "from 25 decided requests (1 expired, not counted)"
    )
    small = calibration(records, now=NOW, settings=AutonomySettings(calibration_min_sample=26)).thresholds
    assert not small.ok
    assert small.reason == "sample too small: 25 decided requests carried a confidence; a suggestion needs at least 26"


def _counts(**by_conf: tuple[int, int, int]) -> list[tuple[int, int, int]]:
    counts = [(0, 0, 0)] * 101
    for key, value in by_conf.items():
        counts[int(key[1:])] = value
    return counts


def test_suggested_pair_against_a_hand_computed_example() -> None:
    counts = _counts(c95=(40, 0, 0), c85=(18, 2, 0), c70=(10, 5, 0), c30=(2, 8, 0), c50=(0, 0, 3))
    t = suggest_thresholds(counts, target=0.01, min_sample=30)
    # >= 30: 15/85 denied, >= 70: 7/75, >= 85: 2/60 (3.3%), >= 95: 0/40 -> autonomous 95.
    # approval candidates below 95 (denied below + approved from there to 94):
    #   30: 0 + 30 = 30;  70: 8 + 28 = 36;  85: 13 + 18 = 31;  95: 15 + 0 = 15  -> approval 70
    assert (t.ok, t.approval, t.autonomous) == (True, 70, 95)
    assert (t.above_decided, t.above_denied, t.denial_rate) == (40, 0, 0.0)
    assert (t.between_decided, t.between_approved, t.below_decided, t.below_denied) == (35, 28, 10, 8)
    assert (t.sample, t.expired) == (85, 3)
    assert "approval at >= 70: 28 of 35 decided between 70 and 94 were approved (80.0%)" in t.reason
    # a looser target accepts 85 (2 of 60 = 3.3%)
    assert suggest_thresholds(counts, target=0.05, min_sample=30).autonomous == 85
    # needing 41 at or above the threshold rules out 95 (40): refused, naming the best it could do
    refused = suggest_thresholds(counts, target=0.01, min_sample=41)
    assert not refused.ok
    assert refused.reason.endswith("even at confidence >= 85, 2 of 60 were denied (3.3%)")
    with pytest.raises(ValueError):
        suggest_thresholds(counts[:100])


def test_thresholds_never_rest_on_confidences_nobody_gave() -> None:
    # every request rated 50..60 and approved: the pair starts where the evidence starts, not at 0
    counts = _counts(c50=(20, 0, 0), c60=(20, 0, 0))
    t = suggest_thresholds(counts, min_sample=30)
    assert (t.approval, t.autonomous) == (50, 50)
    assert "approval at >= 50" in t.reason


def test_the_chart_is_plain_text() -> None:
    rows = [
        BandRow(low=0, high=59, approved=1, denied=3),
        BandRow(low=60, high=89, approved=6, denied=2, expired=1),
        BandRow(low=90, high=100, approved=12, denied=1),
        BandRow(low=40, high=49, expired=2),
    ]
    lines = render_bars(rows, width=10)
    assert lines == [
        "  0-59 ██░░░░░░░░  25%  1/4 approved",
        " 60-89 ████████░░  75%  6/8 approved, 1 expired",
        "90-100 █████████░  92%  12/13 approved",
        " 40-49 ··········   -   no decisions, 2 expired",
    ]
    assert render_bars(rows[:1], width=4, ascii=True) == ["0-59 #...  25%  1/4 approved"]
    assert bar(None, 3, ascii=True) == "   "
    assert bar(1.0, 3) == "███" and bar(0.0, 3) == "░░░"
    for line in lines:
        assert "[" not in line and "\x1b" not in line
