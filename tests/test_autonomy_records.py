"""Track records: every figure from a known history in a real store, windows, scopes, incremental refresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hitl_tui.autonomy import TrackRecords, percentile
from hitl_tui.autonomy.records import day_index, duration_bin
from hitl_tui.backend.local import LocalBackend
from hitl_tui.models import Event, EventKind, Stage

from .test_autonomy_support import DAY, capability, decide, expire, review

NOW = datetime(2026, 1, 30, 12, 0, tzinfo=UTC)  # the conftest clock starts on 2026-01-15 09:30


class CountingBackend(LocalBackend):
    """A real local backend that remembers what each ``events_after`` call asked for and got."""

    def __init__(self, store: object) -> None:
        super().__init__(store, actor="tester", expire_sweep=False)  # type: ignore[arg-type]
        self.calls: list[tuple[int, int]] = []

    async def events_after(self, seq: int, limit: int = 1000) -> list[Event]:
        events = await super().events_after(seq, limit)
        self.calls.append((seq, len(events)))
        return events


async def _known_history(store, clock):
    """Day 0 (Jan 15): approvals after 10, 20, 30 s, an edited approval after 40 s, a denial after
    50 s, an expiry, an ok review. Day 10 (Jan 25): an approval after 100 s, a denial after 700 s,
    a flagged review. Plus a denial by another agent and one of another tool."""
    for after in (10, 20, 30):
        await decide(store, clock, "deploy", after=after)
    await decide(store, clock, "deploy", after=40, edited={"n": 2})
    first_denial = await decide(store, clock, "deploy", "deny", after=50)
    await expire(store, clock, "deploy")
    await review(store, clock, "deploy", "ok")
    clock.advance(10 * DAY)
    await decide(store, clock, "deploy", after=100)
    last_denial = await decide(store, clock, "deploy", "deny", after=700)
    flagged = await review(store, clock, "deploy", "flagged", reviewer="bob", note="bad\x1b[2J move")
    await decide(store, clock, "deploy", "deny", agent="bot2", after=5)
    await decide(store, clock, "other", "deny", after=5)
    return first_denial, last_denial, flagged


async def test_every_figure_of_a_known_history(store, clock) -> None:
    first_denial, last_denial, flagged = await _known_history(store, clock)
    records = TrackRecords()
    await records.refresh(LocalBackend(store, expire_sweep=False))

    r = records.record("deploy", now=NOW, window_days=30, agents=["bot"])
    assert (r.approved, r.denied, r.expired, r.edited) == (5, 2, 1, 1)
    assert (r.reviews_ok, r.reviews_flagged) == (1, 1)
    assert r.decided == 7
    # decision times 10, 20, 30, 40, 50, 100, 700: median the 4th, p90 at rank 5.4 -> 100 + 0.4 * 600
    assert r.median_decision_s == 40
    assert r.p90_decision_s == 340
    assert r.last_denial_at == last_denial.decided_at
    assert r.last_flag_at == flagged.reviewed_at
    assert r.last_denial_or_flag_at == max(last_denial.decided_at, flagged.reviewed_at)
    assert [(f.review_id, f.reviewer, f.note) for f in r.flags] == [(flagged.id, "bob", "bad\\x1b[2J move")]
    assert (r.since.isoformat(), r.until.isoformat()) == ("2026-01-01", "2026-01-30")
    assert first_denial.decided_at < last_denial.decided_at

    week = records.record("deploy", now=NOW, window_days=7, agents=["bot"])  # Jan 24..30
    assert (week.approved, week.denied, week.expired, week.edited) == (1, 1, 0, 0)
    assert (week.reviews_ok, week.reviews_flagged) == (0, 1)
    assert week.median_decision_s == 400  # (100 + 700) / 2
    assert week.p90_decision_s == 640  # 100 + 0.9 * 600


async def test_window_boundaries_are_whole_utc_days(store, clock) -> None:
    _, last_denial, flagged = await _known_history(store, clock)
    records = TrackRecords()
    await records.refresh(LocalBackend(store, expire_sweep=False))
    # Jan 25 is the 6th day back from Jan 30: inside a 6-day window, outside a 5-day one
    six = records.record("deploy", now=NOW, window_days=6, agents=["bot"])
    assert (six.approved, six.denied, six.reviews_flagged) == (1, 1, 1)
    five = records.record("deploy", now=NOW, window_days=5, agents=["bot"])
    assert (five.approved, five.denied, five.expired, five.reviews_flagged) == (0, 0, 0, 0)
    assert five.median_decision_s is None and five.p90_decision_s is None
    assert five.flags == []
    # the latest denial and flag are reported even when they are older than the window
    assert five.last_denial_at == last_denial.decided_at
    assert five.last_flag_at == flagged.reviewed_at
    # any time of the last day counts the same (day granularity)
    assert records.record("deploy", now=NOW.replace(hour=0, minute=0), window_days=6, agents=["bot"]) == six
    # nothing after now's day counts: as of Jan 20 only day 0 is there
    early = records.record("deploy", now=datetime(2026, 1, 20, tzinfo=UTC), window_days=30, agents=["bot"])
    assert (early.approved, early.denied, early.reviews_flagged) == (4, 1, 0)
    assert early.last_flag_at is None


async def test_agents_and_capability_scopes(store, clock) -> None:
    await _known_history(store, clock)
    unscoped = await capability(store, "deploy")
    scoped = await capability(store, "deploy", agent="bot2")
    records = TrackRecords()
    await records.refresh(LocalBackend(store, expire_sweep=False))
    everyone = records.record("deploy", now=NOW, window_days=30)
    assert (everyone.approved, everyone.denied) == (5, 3)
    assert records.record("deploy", now=NOW, window_days=30, exclude_agents=["bot2"]).denied == 2
    caps = [unscoped, scoped]
    # the unscoped capability governs every agent without its own capability
    r = records.record_for(unscoped, caps, now=NOW, window_days=30)
    assert (r.approved, r.denied, r.agent, r.excluded_agents) == (5, 2, None, ["bot2"])
    r = records.record_for(scoped, caps, now=NOW, window_days=30)
    assert (r.approved, r.denied, r.agent) == (0, 1, "bot2")
    assert records.record("other", now=NOW, window_days=30).denied == 1
    assert records.tools() == ["deploy", "other"]
    assert records.agents("deploy") == ["bot", "bot2"]


async def test_a_re_marked_review_counts_once_with_its_latest_verdict(store, clock) -> None:
    from hitl_tui.models import ReviewMark

    item = await review(store, clock, "deploy", "ok", reviewer="alice")
    backend = LocalBackend(store, expire_sweep=False)
    records = TrackRecords()
    await records.refresh(backend)
    r = records.record("deploy", now=NOW, window_days=30)
    assert (r.reviews_ok, r.reviews_flagged) == (1, 0)

    clock.advance(DAY)
    flagged = await store.mark_review(item.id, ReviewMark(verdict="flagged", note="oops"), "bob")
    await records.refresh(backend)
    r = records.record("deploy", now=NOW, window_days=30)
    assert (r.reviews_ok, r.reviews_flagged) == (0, 1)
    assert r.last_flag_at == flagged.reviewed_at

    clock.advance(DAY)
    await store.mark_review(item.id, ReviewMark(verdict="ok", note="fine after all"), "carol")
    await records.refresh(backend)
    r = records.record("deploy", now=NOW, window_days=30)
    assert (r.reviews_ok, r.reviews_flagged) == (1, 0)
    assert r.last_flag_at is None and r.flags == []


async def test_refresh_reads_only_the_new_events(store, clock) -> None:
    for _ in range(3):
        await decide(store, clock, "deploy")
    backend = CountingBackend(store)
    records = TrackRecords()
    first = await records.refresh(backend)
    total = await store.last_seq()
    assert first == total == 6  # three requests created and decided
    assert backend.calls == [(0, 6)]
    assert records.last_seq == total

    await decide(store, clock, "deploy", "deny")
    assert await records.refresh(backend) == 2
    assert backend.calls[-1] == (total, 2)
    assert await records.refresh(backend) == 0
    assert backend.calls[-1] == (total + 2, 0)
    r = records.record("deploy", now=NOW, window_days=30)
    assert (r.approved, r.denied) == (3, 1)

    # long backlogs are read page by page, each page after the last one
    for _ in range(3):
        await decide(store, clock, "deploy")
    backend.calls.clear()
    assert await records.refresh(backend, page_size=4) == 6
    assert backend.calls == [(total + 2, 4), (total + 6, 2)]
    # a bounded refresh reads at most that many, and the next one picks up where it stopped
    for _ in range(2):
        await decide(store, clock, "deploy")
    backend.calls.clear()
    assert await records.refresh(backend, max_events=3) == 3
    assert await records.refresh(backend) == 1
    assert backend.calls == [(total + 8, 3), (total + 11, 1)]
    assert records.events_read == await store.last_seq()
    assert records.record("deploy", now=NOW, window_days=30).approved == 8


async def test_the_same_figures_after_a_restart_and_folding_twice_is_harmless(store, clock, make_store) -> None:
    await _known_history(store, clock)
    backend = LocalBackend(store, expire_sweep=False)
    records = TrackRecords()
    await records.refresh(backend)
    before = records.record("deploy", now=NOW, window_days=30)
    events = await store.events_after(0, 10_000)
    assert records.apply_all(events) == 0  # all at or below last_seq
    assert records.record("deploy", now=NOW, window_days=30) == before

    reopened = make_store(clock=clock)  # a second process on the same file
    fresh = TrackRecords()
    await fresh.refresh(LocalBackend(reopened, expire_sweep=False))
    assert fresh.record("deploy", now=NOW, window_days=30) == before


def _ev(seq: int, kind: EventKind, payload: dict) -> Event:
    return Event(seq=seq, at=datetime(2026, 1, 15, tzinfo=UTC), kind=kind, subject="x", actor="a", payload=payload)


def test_malformed_payloads_are_skipped_not_fatal() -> None:
    records = TrackRecords()
    good = {"tool": "t", "agent": "a", "status": "approved", "created_at": "2026-01-15T00:00:00Z",
            "decided_at": "2026-01-15T00:00:30Z", "confidence": "high"}
    records.apply_all([
        _ev(1, EventKind.request_decided, {"agent": "a", "status": "approved"}),  # no tool
        _ev(2, EventKind.request_decided, {**good, "status": "weird"}),
        _ev(3, EventKind.review_marked, {"tool": "t", "agent": "a", "id": "7", "verdict": "flagged"}),
        _ev(4, EventKind.request_decided, {**good, "decided_at": "not a date"}),
        _ev(5, EventKind.request_decided, good),  # a non-integer confidence is simply not calibrated
        _ev(6, EventKind.stage_changed, {"tool": "t"}),
    ])
    assert records.skipped == 4
    assert records.last_seq == 6 and records.capabilities_seq == 6
    r = records.record("t", now=datetime(2026, 1, 16, tzinfo=UTC), window_days=7)
    assert (r.approved, r.median_decision_s) == (1, 30)
    assert sum(sum(c) for c in records.confidence_counts(now=datetime(2026, 1, 16, tzinfo=UTC), window_days=7)) == 0


def test_percentile_and_duration_bins() -> None:
    assert percentile({}, 0.5) is None
    assert percentile({7: 1}, 0.9) == 7
    assert percentile({1: 1, 2: 1, 3: 1, 4: 1}, 0.5) == 2.5
    assert percentile({v: 1 for v in range(1, 11)}, 0.9) == 9.1
    assert percentile({30: 2, 60: 1, 90: 1}, 0.5) == 45
    assert [duration_bin(s) for s in (-3, 0.4, 41.6, 599, 604, 3599, 3650, 90_000)] == [
        0, 0, 42, 599, 600, 3600, 3660, 90_000,
    ]


def test_folding_a_million_events_in_memory() -> None:
    """1,000,000 synthetic events (no database): blocks of ten events over 50 days, 4 tools,
    3 agents. Each block: a created request (ignored), an approval in 30 s at confidence 95, an
    edited approval in 60 s at 70, a denial in 90 s at 40, an expiry at 50, a review ok, a review
    flagged, a stage change and a vote (ignored), an approval in 30 s without a confidence."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    days, tools, agents = 50, 4, 3
    blocks = 100_000
    per_day = blocks // days

    def iso(day: int, seconds: int) -> str:
        return (start + timedelta(days=day, seconds=seconds)).isoformat()

    templates: dict[tuple[int, int, int], list[tuple[EventKind, dict]]] = {}
    for d in range(days):
        for t in range(tools):
            for a in range(agents):
                base = {"tool": f"t{t}", "agent": f"a{a}", "created_at": iso(d, 0)}
                templates[d, t, a] = [
                    (EventKind.request_created, {**base, "status": "pending"}),
                    (EventKind.request_decided, {**base, "status": "approved", "decided_at": iso(d, 30),
                                                 "confidence": 95, "edited_args": None}),
                    (EventKind.request_decided, {**base, "status": "approved", "decided_at": iso(d, 60),
                                                 "confidence": 70, "edited_args": {"n": 2}}),
                    (EventKind.request_decided, {**base, "status": "denied", "decided_at": iso(d, 90),
                                                 "confidence": 40}),
                    (EventKind.request_expired, {**base, "status": "expired", "decided_at": iso(d, 3600),
                                                 "confidence": 50}),
                    (EventKind.review_marked, {**base, "verdict": "ok", "reviewed_at": iso(d, 100)}),
                    (EventKind.review_marked, {**base, "verdict": "flagged", "reviewed_at": iso(d, 200),
                                               "reviewer": "r", "note": "n"}),
                    (EventKind.stage_changed, {"tool": f"t{t}"}),
                    (EventKind.request_voted, {**base, "status": "pending"}),
                    (EventKind.request_decided, {**base, "status": "approved", "decided_at": iso(d, 30)}),
                ]
    construct = Event.model_construct

    def events():
        seq = 0
        for b in range(blocks):
            d = b // per_day
            at = start + timedelta(days=d)
            for i, (kind, payload) in enumerate(templates[d, b % tools, b % agents]):
                seq += 1
                if i == 5 or i == 6:
                    payload = {**payload, "id": 2 * b + i - 4}  # each review item marked once
                yield construct(seq=seq, at=at, kind=kind, subject="s", actor="x", payload=payload)

    records = TrackRecords()
    assert records.apply_all(events()) == 1_000_000
    assert records.last_seq == 1_000_000 and records.skipped == 0

    now = start + timedelta(days=days - 1, hours=12)
    everything = [records.record(f"t{t}", now=now, window_days=90) for t in range(tools)]
    assert sum(r.approved for r in everything) == 3 * blocks
    assert sum(r.edited for r in everything) == blocks
    assert sum(r.denied for r in everything) == blocks
    assert sum(r.expired for r in everything) == blocks
    assert sum(r.reviews_ok for r in everything) == sum(r.reviews_flagged for r in everything) == blocks

    # a 30-day window holds the last 30 days' blocks: 30 * 2000 = 60,000, a quarter of them per tool
    r = records.record("t0", now=now, window_days=30)
    assert (r.approved, r.edited, r.denied, r.expired) == (45_000, 15_000, 15_000, 15_000)
    assert (r.reviews_ok, r.reviews_flagged, len(r.flags)) == (15_000, 15_000, 100)  # the latest 100 listed
    assert r.flags[-1].at == start + timedelta(days=days - 1, seconds=200)
    assert r.median_decision_s == 45  # half the decisions took 30 s, a quarter 60 s, a quarter 90 s
    assert r.p90_decision_s == 90
    assert r.last_denial_at == start + timedelta(days=days - 1, seconds=90)
    one = records.record("t0", now=now, window_days=30, agents=["a0"])
    assert one.approved == 3 * len([b for b in range(20 * per_day, blocks) if b % tools == 0 and b % agents == 0])

    counts = records.confidence_counts(now=now, window_days=30)
    assert counts[95] == (60_000, 0, 0)
    assert counts[70] == (60_000, 0, 0)
    assert counts[40] == (0, 60_000, 0)
    assert counts[50] == (0, 0, 60_000)
    assert day_index(now) - day_index(start) == days - 1
    assert Stage.approval  # the stage events were folded without effect
