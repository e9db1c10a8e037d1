"""Promotion suggestions and their absence, accepting and dismissing them, automatic demotion on a flag."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from hitl_tui.autonomy import (
    Autonomy,
    Dismissals,
    Suggestion,
    TrackRecords,
    auto_demotion_notice,
    on_review_flagged,
    suggest,
    watch_flags,
)
from hitl_tui.backend.local import LocalBackend
from hitl_tui.config import AutonomySettings, Settings
from hitl_tui.errors import Conflict, InvalidInput
from hitl_tui.models import EventKind, ReviewMark, Stage

from .test_autonomy_support import DAY, approvals, capability, decide, expire, review

FEW = AutonomySettings(min_approvals=3)


@pytest.fixture
def backend(store):
    return LocalBackend(store, actor="tester", expire_sweep=False)


@pytest.fixture
def dismissals_file(tmp_path: Path) -> Path:
    return tmp_path / "dismissed.json"


def _autonomy(backend, settings, path: Path) -> Autonomy:
    return Autonomy(backend, settings, dismissals=Dismissals(backend.describe(), path))


async def _suggestions(backend, clock, settings=FEW, **kw) -> list[Suggestion]:
    records = TrackRecords()
    await records.refresh(backend)
    return suggest(records, await backend.list_capabilities(), settings, clock.now, **kw)


# --------------------------------------------------------------------------- promotion


async def test_promotion_with_its_evidence(store, clock, backend) -> None:
    await capability(store, "deploy")
    await approvals(store, clock, "deploy", 62, after=41)
    [s] = await _suggestions(backend, clock, AutonomySettings())
    assert (s.kind, s.tool, s.agent, s.from_stage, s.to_stage) == ("promote", "deploy", None, Stage.approval,
                                                                   Stage.autonomous)
    assert s.evidence == "62 approved, 0 denied, 0 edited, 0 flagged in 30 days; median decision 41 s"
    assert s.record is not None and s.record.approved == 62
    assert s.key == "deploy:approval->autonomous"


async def test_too_few_approvals_is_no_suggestion(store, clock, backend) -> None:
    await capability(store, "deploy")
    await approvals(store, clock, "deploy", 2)
    assert await _suggestions(backend, clock) == []
    autonomy = Autonomy(backend, FEW)
    await autonomy.refresh()
    cap = autonomy.capability("deploy")
    assert autonomy.blockers(cap, now=clock.now) == ["2 approved in 30 days; needs 3"]
    await approvals(store, clock, "deploy", 1)
    assert [s.tool for s in await _suggestions(backend, clock)] == ["deploy"]


@pytest.mark.parametrize("blocker", ["deny", "edit", "flag"])
async def test_a_single_denial_edit_or_flag_blocks_promotion(store, clock, backend, blocker: str) -> None:
    await capability(store, "deploy")
    await approvals(store, clock, "deploy", 10)
    await expire(store, clock, "deploy")  # an expiry is not a judgement: it blocks nothing
    assert [s.tool for s in await _suggestions(backend, clock)] == ["deploy"]
    if blocker == "deny":
        await decide(store, clock, "deploy", "deny")
    elif blocker == "edit":
        await decide(store, clock, "deploy", edited={"n": 2})
    else:
        await review(store, clock, "deploy", "flagged", note="wrong file")
    assert await _suggestions(backend, clock) == []
    autonomy = Autonomy(backend, FEW)
    await autonomy.refresh()
    [why] = autonomy.blockers(autonomy.capability("deploy"), now=clock.now)
    expected = {"deny": "1 denied (last 2026-01-15)", "edit": "1 approved with edited arguments",
                "flag": "1 after-the-fact review flagged"}[blocker]
    assert why == expected


async def test_a_blocker_outside_the_window_no_longer_blocks(store, clock, backend) -> None:
    await capability(store, "deploy")
    await decide(store, clock, "deploy", "deny")  # 2026-01-15
    clock.advance(30 * DAY)  # 2026-02-14: Jan 15 is the 31st day back
    await approvals(store, clock, "deploy", 3)
    [s] = await _suggestions(backend, clock)
    assert s.evidence.startswith("3 approved, 0 denied, 0 edited, 0 flagged in 30 days")
    assert await _suggestions(backend, clock, window_days=31) == []
    assert await _suggestions(backend, clock, AutonomySettings(min_approvals=3, window_days=31)) == []


async def test_never_for_always_approval_disabled_or_autonomous(store, clock, backend) -> None:
    await capability(store, "drop_db", always_approval=True)
    await capability(store, "shell", Stage.disabled)
    await capability(store, "read", Stage.autonomous)
    for tool in ("drop_db", "shell", "read"):
        await approvals(store, clock, tool, 5)
    assert await _suggestions(backend, clock) == []
    autonomy = Autonomy(backend, FEW)
    await autonomy.refresh()
    assert autonomy.blockers(autonomy.capability("drop_db"), now=clock.now) == [
        "marked always-approval: never suggested for autonomy"
    ]
    assert "never suggested" in autonomy.blockers(autonomy.capability("shell"), now=clock.now)[0]


async def test_agent_scoped_capabilities_are_judged_on_their_own_agent(store, clock, backend) -> None:
    await capability(store, "deploy")
    await capability(store, "deploy", agent="bot")
    await approvals(store, clock, "deploy", 3, agent="bot")
    await approvals(store, clock, "deploy", 3, agent="bot2")
    await decide(store, clock, "deploy", "deny", agent="bot2")  # governed by the unscoped capability
    [s] = await _suggestions(backend, clock)
    assert (s.tool, s.agent, s.target, s.key) == ("deploy", "bot", "deploy@bot", "deploy@bot:approval->autonomous")
    assert s.evidence.startswith("3 approved, 0 denied")


# --------------------------------------------------------------------------- accept / dismiss


async def test_accepting_records_the_evidence_as_the_reason(store, clock, backend, dismissals_file) -> None:
    await capability(store, "deploy")
    await approvals(store, clock, "deploy", 3, after=20)
    autonomy = _autonomy(backend, FEW, dismissals_file)
    await autonomy.refresh()
    [s] = autonomy.suggestions(now=clock.now)
    cap = await autonomy.accept(s, actor="alice", reason="stable for a month")
    assert cap.stage is Stage.autonomous
    change = cap.history[-1]
    assert (change.actor, change.from_stage, change.to_stage) == ("alice", Stage.approval, Stage.autonomous)
    expected = ("accepted suggestion: 3 approved, 0 denied, 0 edited, 0 flagged in 30 days; median decision 20 s "
                "(stable for a month)")
    assert change.reason == expected
    [event] = await store.events_after(await store.last_seq() - 1)
    assert event.kind is EventKind.stage_changed
    assert event.payload == {"tool": "deploy", "agent": None, "from": "approval", "to": "autonomous",
                             "reason": expected, "forced": False}
    # the suggestion is gone, and accepting it again is refused as stale
    await autonomy.refresh()
    assert autonomy.suggestions(now=clock.now) == []
    with pytest.raises(Conflict, match="now autonomous"):
        await autonomy.accept(s, actor="alice")


async def test_dismissal_hides_for_a_period_and_survives_restarts(
    store, clock, backend, dismissals_file, make_store
) -> None:
    await capability(store, "deploy")
    await approvals(store, clock, "deploy", 3)
    autonomy = _autonomy(backend, FEW, dismissals_file)
    await autonomy.refresh()
    [s] = autonomy.suggestions(now=clock.now)
    entry = autonomy.dismiss(s, days=7, by="alice", now=clock.now)
    assert entry.until == clock.now + timedelta(days=7)
    assert autonomy.suggestions(now=clock.now) == []
    assert [x.key for x in autonomy.suggestions(now=clock.now, include_dismissed=True)] == [s.key]

    # another console on the same store, later: still hidden; a week later: back
    other = _autonomy(LocalBackend(make_store(clock=clock), expire_sweep=False), FEW, dismissals_file)
    await other.refresh()
    assert other.suggestions(now=clock.now) == []
    later = clock.now + timedelta(days=7, seconds=1)
    assert [x.key for x in other.suggestions(now=later)] == [s.key]
    # dismissals are per store: the same file, another store, sees its own suggestion
    elsewhere = Dismissals("sqlite:///somewhere/else.db", dismissals_file)
    assert elsewhere.active(clock.now) == {}
    assert Dismissals(backend.describe(), dismissals_file).undo(s.key) is True
    assert [x.key for x in autonomy.suggestions(now=clock.now)] == [s.key]
    with pytest.raises(InvalidInput):
        autonomy.dismiss(s, days=0, now=clock.now)


async def test_an_unreadable_dismissals_file_hides_nothing(store, clock, backend, dismissals_file) -> None:
    await capability(store, "deploy")
    await approvals(store, clock, "deploy", 3)
    dismissals_file.write_text("{not json")
    autonomy = _autonomy(backend, FEW, dismissals_file)
    await autonomy.refresh()
    [s] = autonomy.suggestions(now=clock.now)
    autonomy.dismiss(s, days=1, now=clock.now)  # rewrites the file whole
    assert autonomy.suggestions(now=clock.now) == []


# --------------------------------------------------------------------------- demotion


async def test_a_flag_demotes_an_autonomous_capability(store, clock, backend) -> None:
    await capability(store, "rm", Stage.autonomous)
    clock.advance(60)
    item = await review(store, clock, "rm", "flagged", reviewer="alice", note="wrong file")
    result = await on_review_flagged(backend, item, "act")
    assert result is not None and result.applied and result.kind == "demote"
    assert result.evidence == f"review #{item.id} flagged by alice: wrong file"
    cap = await store.get_capability("rm")
    assert cap.stage is Stage.approval
    change = cap.history[-1]
    assert (change.actor, change.from_stage, change.to_stage) == ("system", Stage.autonomous, Stage.approval)
    assert change.reason == f"auto-demoted: review #{item.id} flagged by alice: wrong file"
    seq = await store.last_seq()
    [event] = await store.events_after(seq - 1)
    assert event.kind is EventKind.stage_changed and event.actor == "system"
    assert event.payload["reason"] == change.reason
    assert auto_demotion_notice(event) == f"rm demoted to approval: review #{item.id} flagged by alice: wrong file"
    assert auto_demotion_notice((await store.events_after(seq - 2))[0]) is None  # the flag itself
    assert (event.payload["from"], event.payload["to"]) == ("autonomous", "approval")

    # idempotent: another flag on the demoted capability changes nothing
    again = await review(store, clock, "rm", "flagged", reviewer="bob", note="also wrong")
    assert await on_review_flagged(backend, again, "act") is None
    assert await on_review_flagged(backend, item, "act") is None
    assert await store.last_seq() == seq + 2  # the second review's log and mark, nothing else
    assert len((await store.get_capability("rm")).history) == 2


async def test_suggest_and_off_modes_change_nothing(store, clock, backend) -> None:
    await capability(store, "rm", Stage.autonomous)
    item = await review(store, clock, "rm", "flagged", note="hmm")
    seq = await store.last_seq()
    s = await on_review_flagged(backend, item, "suggest")
    assert s is not None and not s.applied
    assert (s.tool, s.from_stage, s.to_stage, s.review_id) == ("rm", Stage.autonomous, Stage.approval, item.id)
    assert await on_review_flagged(backend, item, "off") is None
    ok = await review(store, clock, "rm", "ok")
    assert await on_review_flagged(backend, ok, "act") is None  # not a flag
    assert (await store.get_capability("rm")).stage is Stage.autonomous
    assert await store.last_seq() == seq + 2


async def test_an_old_flag_does_not_demote_a_re_promoted_capability(store, clock, backend) -> None:
    await capability(store, "rm", Stage.autonomous)
    item = await review(store, clock, "rm", "flagged", note="bad")
    assert (await on_review_flagged(backend, item, "act")).applied
    clock.advance(DAY)
    await store.set_stage("rm", Stage.autonomous, "alice", "fixed the agent's prompt")
    assert await on_review_flagged(backend, item, "act") is None  # a replay of the old flag
    assert (await store.get_capability("rm")).stage is Stage.autonomous
    # and the suggestions agree: the flag predates the promotion
    assert await _suggestions(backend, clock) == []
    fresh = await review(store, clock, "rm", "flagged", reviewer="bob", note="again")
    [s] = await _suggestions(backend, clock)
    assert (s.kind, s.evidence) == ("demote", f"review #{fresh.id} flagged by bob: again")
    assert await _suggestions(backend, clock, AutonomySettings(min_approvals=3, demote_on_flag="off")) == []


async def test_demotion_follows_the_agent_scope(store, clock, backend) -> None:
    await capability(store, "rm", Stage.autonomous)
    await capability(store, "rm", Stage.autonomous, agent="bot2")
    item = await review(store, clock, "rm", "flagged", agent="bot2", note="x")
    result = await on_review_flagged(backend, item, "act")
    assert result is not None and (result.tool, result.agent) == ("rm", "bot2")
    assert (await store.get_capability("rm", "bot2")).stage is Stage.approval
    assert (await store.get_capability("rm")).stage is Stage.autonomous


async def test_watch_flags_demotes_from_the_change_feed(store, clock, backend) -> None:
    await capability(store, "rm", Stage.autonomous)
    await capability(store, "ls", Stage.autonomous)
    stop = asyncio.Event()
    seen: list[Suggestion] = []
    got = asyncio.Event()

    def on_result(s: Suggestion) -> None:
        seen.append(s)
        got.set()

    task = asyncio.create_task(watch_flags(backend, Settings(), stop, on_result=on_result))
    await asyncio.sleep(0.05)
    await review(store, clock, "ls", "ok")
    item = await review(store, clock, "rm", "flagged", reviewer="alice", note="deleted too much")
    await asyncio.wait_for(got.wait(), 10)
    assert [(s.tool, s.applied, s.review_id) for s in seen] == [("rm", True, item.id)]
    assert (await store.get_capability("rm")).stage is Stage.approval
    assert (await store.get_capability("ls")).stage is Stage.autonomous
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_watch_flags_in_off_mode_returns_at_once(backend) -> None:
    await asyncio.wait_for(watch_flags(backend, AutonomySettings(demote_on_flag="off"), asyncio.Event()), 5)


async def test_re_marking_a_flag_ok_withdraws_the_demotion_suggestion(store, clock, backend) -> None:
    await capability(store, "rm", Stage.autonomous)
    item = await review(store, clock, "rm", "flagged", note="hmm")
    assert [s.kind for s in await _suggestions(backend, clock)] == ["demote"]
    await store.mark_review(item.id, ReviewMark(verdict="ok", note="my mistake"), "alice")
    assert await _suggestions(backend, clock) == []


async def test_watch_flags_backs_off_while_the_store_is_down(
    store, backend, caplog: pytest.LogCaptureFixture
) -> None:
    """A store that stays down is retried at doubling intervals up to a cap, not every second forever."""
    import logging

    await store.close()  # every read now fails
    stop = asyncio.Event()

    def delays() -> list[str]:
        return [r.message.rsplit("retrying in ", 1)[1] for r in caplog.records if "flag watch lost" in r.message]

    with caplog.at_level(logging.WARNING, logger="hitl_tui"):
        task = asyncio.create_task(watch_flags(backend, Settings(), stop, after_seq=0, retry_s=0.1, max_retry_s=0.4))
        for _ in range(300):
            if len(delays()) >= 4:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 10)
    assert delays()[:4] == ["0.1 s", "0.2 s", "0.4 s", "0.4 s"]
