"""Track records: what reviewers did with each capability, folded incrementally from the event log.

The event log is the one source: every reviewer's console and every restart computes the same
figures from it. :class:`TrackRecords` folds events in one at a time (:meth:`TrackRecords.apply`),
keeps per-``(tool, agent)`` aggregates in one bucket per UTC day, and remembers the last sequence
number it saw, so :meth:`TrackRecords.refresh` reads only the events written since. Window queries
(7, 30, 90 days, ...) merge the day buckets of the window and never touch the log.

What is counted, and when (the time of the outcome, in UTC):

* ``request.decided`` approved / denied (at ``decided_at``); an approval with ``edited_args`` is
  also an *edit before approval*; the decision time is ``decided_at - created_at``;
* ``request.expired`` (at ``decided_at``, the deadline);
* ``review.marked`` ok / flagged (at ``reviewed_at``); a re-marked item moves from its old verdict
  to the new one, so each reviewed item counts once, with its latest verdict;
* the confidence an agent gave (0-100) with each decided or expired request, for calibration.

A window of ``N`` days covers the ``N`` UTC calendar days ending with the day of ``now`` (all of
that day: the figures are day-granular, which is what lets a live console cache them).
Decision times are kept as histograms, exact to the second below 10 minutes (then to 10 s below an
hour, 1 min below a day, 1 h beyond), so medians and p90s stay cheap to merge over any window.
"""

from __future__ import annotations

import asyncio
import math
from array import array
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, Field, computed_field

from ..models import Capability, Event, EventKind
from ..text import sanitise

__all__ = [
    "DAY_SECONDS",
    "FlagInfo",
    "TrackRecord",
    "TrackRecords",
    "day_index",
    "duration_bin",
    "percentile",
    "scope_for",
]

DAY_SECONDS = 86400
NOTE_LIMIT = 200  # characters of a reviewer's note kept with a flag
MAX_FLAGS = 100  # a record lists at most the latest this many flags (``reviews_flagged`` counts them all)

_DECIDED = EventKind.request_decided.value
_EXPIRED = EventKind.request_expired.value
_MARKED = EventKind.review_marked.value
_APPROVED, _DENIED, _EXPIRED_IX = 0, 1, 2


def day_index(moment: datetime | float) -> int:
    """Days since 1970-01-01 (UTC) of a datetime or a POSIX timestamp."""
    ts = moment.timestamp() if isinstance(moment, datetime) else moment
    return int(ts // DAY_SECONDS)


def _day_start(index: int) -> datetime:
    return datetime.fromtimestamp(index * DAY_SECONDS, UTC)


def duration_bin(seconds: float) -> int:
    """The histogram bin of a decision time: exact seconds below 10 min, coarser above."""
    s = max(0.0, seconds)
    if s < 600:
        return round(s)
    if s < 3600:
        return round(s / 10) * 10
    if s < DAY_SECONDS:
        return round(s / 60) * 60
    return round(s / 3600) * 3600


def percentile(hist: Mapping[int, int], p: float) -> float | None:
    """The ``p`` quantile (0..1) of a histogram ``{value: count}``, interpolated linearly between
    the two nearest ranks (the median of an even count is the mean of the two middle values)."""
    n = sum(hist.values())
    if n == 0:
        return None
    pos = p * (n - 1)
    lo = math.floor(pos)
    frac = pos - lo
    values = sorted(hist)
    seen = 0
    v_lo: int | None = None
    for v in values:
        seen += hist[v]
        if v_lo is None and seen > lo:
            v_lo = v
            if frac == 0:
                return float(v)
        if v_lo is not None and seen > lo + 1:
            return round(v_lo + (v - v_lo) * frac, 6)
    assert v_lo is not None
    return float(v_lo)


def _parse_ts(value: Any, fallback: datetime) -> float:
    if isinstance(value, str):
        dt = datetime.fromisoformat(value)
    elif isinstance(value, datetime):
        dt = value
    else:
        dt = fallback
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


class FlagInfo(BaseModel):
    """One after-the-fact review marked flagged."""

    review_id: int
    tool: str
    agent: str
    at: datetime
    reviewer: str | None = None
    note: str | None = None  # sanitised, one line, cut to 200 characters


class TrackRecord(BaseModel):
    """The figures of one capability (or tool, or tool and agent) over one window."""

    tool: str
    agent: str | None = None  # the one agent counted; None: every agent in ``agents`` / not excluded
    excluded_agents: list[str] = Field(default_factory=list)  # agents governed by their own capability
    window_days: int
    since: date  # first day of the window (UTC)
    until: date  # last day of the window (UTC), the day of ``now``
    approved: int = 0
    denied: int = 0
    expired: int = 0
    edited: int = 0  # approved with edited arguments
    reviews_ok: int = 0
    reviews_flagged: int = 0
    median_decision_s: float | None = None
    p90_decision_s: float | None = None
    last_denial_at: datetime | None = None  # the latest denial up to ``until``, in or before the window
    last_flag_at: datetime | None = None  # the latest flag up to ``until``, in or before the window
    flags: list[FlagInfo] = Field(default_factory=list)  # the window's latest 100 flags, oldest first

    @computed_field  # type: ignore[prop-decorator]
    @property
    def decided(self) -> int:
        return self.approved + self.denied

    @computed_field  # type: ignore[prop-decorator]
    @property
    def last_denial_or_flag_at(self) -> datetime | None:
        times = [t for t in (self.last_denial_at, self.last_flag_at) if t is not None]
        return max(times) if times else None


class _Bucket:
    """One UTC day of one ``(tool, agent)``."""

    __slots__ = ("approved", "conf", "denied", "durations", "edited", "expired", "flags", "last_denial",
                 "review_flagged", "review_ok")

    def __init__(self) -> None:
        self.approved = 0
        self.denied = 0
        self.expired = 0
        self.edited = 0
        self.review_ok = 0
        self.review_flagged = 0
        self.durations: dict[int, int] = {}
        self.last_denial: float | None = None
        self.flags: dict[int, tuple[float, str | None, str | None]] = {}  # review id -> (ts, reviewer, note)
        self.conf: dict[int, list[int]] = {}  # confidence -> [approved, denied, expired]


class _MarkIndex:
    """The day and verdict of each review item's latest mark, in 4 bytes per review id (ids are dense)."""

    _DENSE_LIMIT = 50_000_000

    def __init__(self) -> None:
        self._dense = array("l")
        self._sparse: dict[int, int] = {}

    def get(self, rid: int) -> tuple[int, bool] | None:
        code = self._dense[rid] if 0 <= rid < len(self._dense) else self._sparse.get(rid, 0)
        if not code:
            return None
        code -= 1
        return code >> 1, bool(code & 1)

    def set(self, rid: int, day: int, flagged: bool) -> None:
        code = ((day << 1) | int(flagged)) + 1
        if 0 <= rid < self._DENSE_LIMIT:
            if rid >= len(self._dense):
                self._dense.extend([0] * (max(rid + 1, 2 * len(self._dense)) - len(self._dense)))
            self._dense[rid] = code
        else:
            self._sparse[rid] = code


Key = tuple[str, str]


def scope_for(cap: Capability, capabilities: Iterable[Capability]) -> tuple[list[str] | None, list[str]]:
    """Which agents' history belongs to ``cap``: ``(agents, excluded)``.

    An agent-scoped capability governs that agent only. An unscoped one governs every agent that
    has no capability of its own for the tool (the policy's lookup: the agent's own, else the
    unscoped one), so those agents are excluded from its record.
    """
    if cap.agent is not None:
        return [cap.agent], []
    excluded = sorted({c.agent for c in capabilities if c.tool == cap.tool and c.agent is not None})
    return None, excluded


class TrackRecords:
    """Per-day aggregates of the event log, folded incrementally. Not thread-safe: fold and query
    from one thread (the console's worker, the CLI's loop)."""

    def __init__(self) -> None:
        self.last_seq = 0
        self.events_folded = 0  # events applied (every kind)
        self.events_read = 0  # events fetched from a backend by refresh()
        self.skipped = 0  # malformed payloads ignored
        self.capabilities_seq = 0  # seq of the latest capability.* / rules.* event (callers reload theirs)
        self._series: dict[Key, dict[int, _Bucket]] = {}
        self._agents: dict[str, set[str]] = {}
        self._versions: dict[str, int] = {}
        self._marks = _MarkIndex()
        self._cache: dict[tuple[Any, ...], tuple[int, Any]] = {}
        self._lock: asyncio.Lock | None = None

    # ----------------------------------------------------------------- folding
    def _bucket(self, tool: str, agent: str, day: int) -> _Bucket:
        key = (tool, agent)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = {}
            self._agents.setdefault(tool, set()).add(agent)
        b = series.get(day)
        if b is None:
            b = series[day] = _Bucket()
        return b

    def apply(self, ev: Event) -> bool:
        """Fold one event in. Events at or below :attr:`last_seq` are ignored (folding twice is safe).
        Returns True when the event changed a figure."""
        if ev.seq <= self.last_seq:
            return False
        self.last_seq = ev.seq
        self.events_folded += 1
        kind = ev.kind
        if kind != _DECIDED and kind != _EXPIRED and kind != _MARKED:
            if kind.startswith(("capability.", "rules.")):
                self.capabilities_seq = ev.seq
            return False
        try:
            changed = self._fold(kind, ev)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            self.skipped += 1
            return False
        return changed

    def _fold(self, kind: str, ev: Event) -> bool:
        p = ev.payload
        tool = p["tool"]
        agent = p["agent"]
        if not isinstance(tool, str) or not isinstance(agent, str):
            raise TypeError("tool and agent must be strings")
        if kind == _MARKED:
            return self._fold_mark(p, tool, agent, ev.at)
        ts = _parse_ts(p.get("decided_at"), ev.at)
        b = self._bucket(tool, agent, int(ts // DAY_SECONDS))
        status = p["status"]
        if kind == _EXPIRED:
            if status != "expired":
                raise ValueError("an expiry event must carry an expired request")
            b.expired += 1
            outcome = _EXPIRED_IX
        elif status == "approved":
            b.approved += 1
            if p.get("edited_args") is not None:
                b.edited += 1
            outcome = _APPROVED
        elif status == "denied":
            b.denied += 1
            if b.last_denial is None or ts > b.last_denial:
                b.last_denial = ts
            outcome = _DENIED
        else:
            raise ValueError(f"unexpected status {status!r}")
        if outcome != _EXPIRED_IX:
            created = p.get("created_at")
            if created is not None:
                hb = duration_bin(ts - _parse_ts(created, ev.at))
                b.durations[hb] = b.durations.get(hb, 0) + 1
        conf = p.get("confidence")
        if type(conf) is int and 0 <= conf <= 100:
            row = b.conf.get(conf)
            if row is None:
                row = b.conf[conf] = [0, 0, 0]
            row[outcome] += 1
        self._versions[tool] = self._versions.get(tool, 0) + 1
        return True

    def _fold_mark(self, p: Mapping[str, Any], tool: str, agent: str, at: datetime) -> bool:
        verdict = p["verdict"]
        if verdict not in ("ok", "flagged"):
            raise ValueError(f"unexpected verdict {verdict!r}")
        rid = p["id"]
        if type(rid) is not int:
            raise TypeError("review id must be an integer")
        ts = _parse_ts(p.get("reviewed_at"), at)
        day = int(ts // DAY_SECONDS)
        flagged = verdict == "flagged"
        previous = self._marks.get(rid)
        if previous is not None:  # a re-mark: the item's earlier verdict no longer counts
            old_day, old_flagged = previous
            old = self._series.get((tool, agent), {}).get(old_day)
            if old is not None:
                if old_flagged:
                    old.review_flagged -= 1
                    old.flags.pop(rid, None)
                else:
                    old.review_ok -= 1
        b = self._bucket(tool, agent, day)
        if flagged:
            b.review_flagged += 1
            note = p.get("note")
            reviewer = p.get("reviewer")
            b.flags[rid] = (
                ts,
                reviewer if isinstance(reviewer, str) else None,
                sanitise(note, oneline=True, limit=NOTE_LIMIT) if isinstance(note, str) and note else None,
            )
        else:
            b.review_ok += 1
        self._marks.set(rid, day, flagged)
        self._versions[tool] = self._versions.get(tool, 0) + 1
        return True

    def apply_all(self, events: Iterable[Event]) -> int:
        """Fold many events; returns how many were new (above :attr:`last_seq`)."""
        before = self.events_folded
        for ev in events:
            self.apply(ev)
        return self.events_folded - before

    async def refresh(self, backend: Any, *, page_size: int = 1000, max_events: int | None = None) -> int:
        """Read and fold the events written since :attr:`last_seq`; returns how many were read.

        ``max_events`` bounds one call (a console folding a long log a slice at a time).
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            read = 0
            while max_events is None or read < max_events:
                want = page_size if max_events is None else min(page_size, max_events - read)
                start = self.last_seq
                events = await backend.events_after(start, want)
                read += len(events)
                self.events_read += len(events)
                self.apply_all(events)
                if len(events) < want or self.last_seq <= start:
                    break
            return read

    # ----------------------------------------------------------------- queries
    def tools(self) -> list[str]:
        return sorted(self._agents)

    def agents(self, tool: str | None = None) -> list[str]:
        if tool is not None:
            return sorted(self._agents.get(tool, ()))
        return sorted({a for agents in self._agents.values() for a in agents})

    def _keys(self, tool: str | None, agents: Collection[str] | None, exclude: Collection[str]) -> Iterator[Key]:
        tools = [tool] if tool is not None else list(self._agents)
        for t in tools:
            for a in self._agents.get(t, ()):
                if (agents is None or a in agents) and a not in exclude:
                    yield (t, a)

    def _version(self, tool: str | None) -> int:
        if tool is not None:
            return self._versions.get(tool, 0)
        return self.events_folded

    def record(
        self,
        tool: str,
        *,
        now: datetime,
        window_days: int,
        agents: Collection[str] | None = None,
        exclude_agents: Collection[str] = (),
    ) -> TrackRecord:
        """The figures of ``tool`` over the window ending on ``now``'s day, for ``agents`` (None:
        every agent) minus ``exclude_agents``."""
        if window_days < 1:
            raise ValueError("the window must be at least one day")
        agents_key = None if agents is None else tuple(sorted(agents))
        today = day_index(now)
        first = today - window_days + 1
        cache_key = ("record", tool, agents_key, tuple(sorted(exclude_agents)), window_days, today)
        version = self._version(tool)
        hit = self._cache.get(cache_key)
        if hit is not None and hit[0] == version:
            return hit[1].model_copy(deep=True)
        out = TrackRecord(
            tool=tool,
            agent=agents_key[0] if agents_key is not None and len(agents_key) == 1 else None,
            excluded_agents=sorted(exclude_agents),
            window_days=window_days,
            since=_day_start(first).date(),
            until=_day_start(today).date(),
        )
        hist: dict[int, int] = {}
        last_denial: float | None = None
        last_flag: float | None = None
        flags: list[tuple[float, int, str, str, str | None, str | None]] = []
        for key in self._keys(tool, agents_key, exclude_agents):
            for day, b in self._series[key].items():
                if day > today:
                    continue
                if b.last_denial is not None and (last_denial is None or b.last_denial > last_denial):
                    last_denial = b.last_denial
                for rid, (ts, reviewer, note) in b.flags.items():
                    if last_flag is None or ts > last_flag:
                        last_flag = ts
                    if day >= first:
                        flags.append((ts, rid, key[0], key[1], reviewer, note))
                if day < first:
                    continue
                out.approved += b.approved
                out.denied += b.denied
                out.expired += b.expired
                out.edited += b.edited
                out.reviews_ok += b.review_ok
                out.reviews_flagged += b.review_flagged
                for v, n in b.durations.items():
                    hist[v] = hist.get(v, 0) + n
        out.median_decision_s = percentile(hist, 0.5)
        out.p90_decision_s = percentile(hist, 0.9)
        out.last_denial_at = None if last_denial is None else datetime.fromtimestamp(last_denial, UTC)
        out.last_flag_at = None if last_flag is None else datetime.fromtimestamp(last_flag, UTC)
        flags.sort(key=lambda f: (f[0], f[1]))
        out.flags = [
            FlagInfo(review_id=rid, tool=t, agent=a, at=datetime.fromtimestamp(ts, UTC), reviewer=who, note=note)
            for ts, rid, t, a, who, note in flags[-MAX_FLAGS:]
        ]
        self._cache[cache_key] = (version, out)
        if len(self._cache) > 4096:
            self._cache.clear()
        return out.model_copy(deep=True)

    def record_for(
        self, cap: Capability, capabilities: Iterable[Capability], *, now: datetime, window_days: int
    ) -> TrackRecord:
        """The record of the requests and reviews ``cap`` governs (see :func:`scope_for`)."""
        agents, excluded = scope_for(cap, capabilities)
        return self.record(cap.tool, now=now, window_days=window_days, agents=agents, exclude_agents=excluded)

    def confidence_counts(
        self,
        *,
        now: datetime,
        window_days: int,
        tool: str | None = None,
        agent: str | None = None,
        exclude_agents: Collection[str] = (),
    ) -> list[tuple[int, int, int]]:
        """``(approved, denied, expired)`` for each confidence 0..100 over the window."""
        if window_days < 1:
            raise ValueError("the window must be at least one day")
        today = day_index(now)
        first = today - window_days + 1
        totals = [[0, 0, 0] for _ in range(101)]
        for key in self._keys(tool, None if agent is None else (agent,), exclude_agents):
            for day, b in self._series[key].items():
                if first <= day <= today:
                    for conf, row in b.conf.items():
                        t = totals[conf]
                        t[0] += row[0]
                        t[1] += row[1]
                        t[2] += row[2]
        return [(a, d, e) for a, d, e in totals]

    def window_bounds(self, now: datetime, window_days: int) -> tuple[date, date]:
        today = day_index(now)
        return _day_start(today - window_days + 1).date(), _day_start(today).date()


def window_start(now: datetime, window_days: int) -> datetime:
    """The first instant counted by a window of ``window_days`` ending on ``now``'s day."""
    return _day_start(day_index(now) - window_days + 1)
