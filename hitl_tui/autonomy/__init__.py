"""Evidence-driven autonomy: track records, promotion and demotion suggestions, confidence calibration.

Everything is computed from the event log, so every reviewer sees the same figures and they
survive restarts. Nothing here changes a stage silently: promotions are suggestions a reviewer
accepts; demotions on a flagged review are made (or suggested) per ``[autonomy] demote_on_flag``
and recorded with the flag as the reason.
"""

from __future__ import annotations

from .calibration import (
    COARSE_BANDS,
    FINE_BANDS,
    BandRow,
    CalibrationTable,
    ThresholdSuggestion,
    band_rows,
    calibration,
    suggest_thresholds,
)
from .chart import bar, render_bars
from .demotion import auto_demotion_notice, governing_capability, on_review_flagged, watch_flags
from .dismissals import Dismissal, Dismissals, default_dismissals_path
from .records import FlagInfo, TrackRecord, TrackRecords, percentile, scope_for
from .service import Autonomy
from .suggestions import (
    Suggestion,
    accept,
    demotion_for,
    evidence_sentence,
    flag_sentence,
    format_duration,
    promotion_blockers,
    suggest,
)

__all__ = [
    "COARSE_BANDS",
    "FINE_BANDS",
    "Autonomy",
    "BandRow",
    "CalibrationTable",
    "Dismissal",
    "Dismissals",
    "FlagInfo",
    "Suggestion",
    "ThresholdSuggestion",
    "TrackRecord",
    "TrackRecords",
    "accept",
    "auto_demotion_notice",
    "band_rows",
    "bar",
    "calibration",
    "default_dismissals_path",
    "demotion_for",
    "evidence_sentence",
    "flag_sentence",
    "format_duration",
    "governing_capability",
    "on_review_flagged",
    "percentile",
    "promotion_blockers",
    "render_bars",
    "scope_for",
    "suggest",
    "suggest_thresholds",
    "watch_flags",
]
