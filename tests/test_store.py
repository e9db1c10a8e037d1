"""Store conformance suite: written once, run against every store implementation.

The `store` fixture is parametrised over SQLite (a real file) and PostgreSQL (a fresh schema on a
real server, when HITL_TEST_POSTGRES_DSN is set).
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from hitl_tui.errors import Conflict, NotFound
from hitl_tui.models import (
    Capability,
    DecisionIn,
    EscalationCreate,
    EscalationStatus,
    EventKind,
    MessageRole,
    RequestCreate,
    RequestStatus,
    ReviewCreate,
    ReviewMark,
    Risk,
    Rule,
    RuleEffect,
    Stage,
    TokenRole,
    Verdict,
)


def req(**kw) -> RequestCreate:
    base = {"agent": "deploy-bot", "tool": "deploy", "args": {"env": "prod"}, "timeout_s": 60}
    base.update(kw)
    return RequestCreate(**base)


APPROVE = DecisionIn(decision="approve", reason="looks right")
DENY = DecisionIn(decision="deny", reason="not now")


# ----------------------------------------------------------------------------- requests


async def test_create_and_get_round_trip(store, clock) -> None:
    r = await store.create_request(
        req(summary="ship 1.2", confidence=72, risk=Risk.high, irreversible=True, context="ctx", policy_reason="stage")
    )
    got = await store.get_request(r.id)
    assert got == r
    assert got.status is RequestStatus.pending
    assert got.created_at == clock.now
    assert (got.expires_at - got.created_at).total_seconds() == 60
    assert got.args == {"env": "prod"} and got.confidence == 72 and got.irreversible


async def test_get_missing_is_not_found(store) -> None:
    with pytest.raises(NotFound):
        await store.get_request(424242)


async def test_list_orders_riskiest_then_newest_and_counts(store) -> None:
    low = await store.create_request(req(risk=Risk.low))
    crit = await store.create_request(req(risk=Risk.critical))
    low2 = await store.create_request(req(risk=Risk.low))
    high = await store.create_request(req(risk=Risk.high))
    page = await store.list_requests(RequestStatus.pending)
    assert [r.id for r in page.items] == [crit.id, high.id, low2.id, low.id]
    assert page.total == 4
    window = await store.list_requests(RequestStatus.pending, offset=1, limit=2)
    assert [r.id for r in window.items] == [high.id, low2.id]
    assert window.total == 4
    await store.decide(low.id, APPROVE, "alice")
    assert (await store.list_requests(RequestStatus.pending)).total == 3
    assert (await store.list_requests(None)).total == 4
    assert [r.id for r in (await store.list_requests(RequestStatus.approved)).items] == [low.id]


async def test_list_filters_by_agent_tool_and_search(store) -> None:
    await store.create_request(req(agent="a1", tool="deploy", summary="Ship the API"))
    await store.create_request(req(agent="a2", tool="send_email", summary="newsletter"))
    assert (await store.list_requests(agent="a2")).total == 1
    assert (await store.list_requests(tool="deploy")).total == 1
    assert [r.agent for r in (await store.list_requests(search="ship")).items] == ["a1"]
    assert (await store.list_requests(search="news")).items[0].tool == "send_email"
    # words, not a phrase: each word anywhere in the tool, the agent or the summary
    assert [r.agent for r in (await store.list_requests(search="api ship")).items] == ["a1"]
    assert [r.agent for r in (await store.list_requests(search="  deploy   a1 ")).items] == ["a1"]
    assert (await store.list_requests(search="ship newsletter")).total == 0


async def test_idempotency_key_returns_first(store) -> None:
    a = await store.create_request(req(idempotency_key="k-1"))
    b = await store.create_request(req(idempotency_key="k-1", summary="other words"))  # other args: a conflict
    assert a.id == b.id and b.args == {"env": "prod"} and b.summary == a.summary
    assert (await store.list_requests()).total == 1
    created = [e for e in await store.events_after(0) if e.kind is EventKind.request_created]
    assert len(created) == 1


async def test_idempotency_key_reused_by_other_agent_conflicts(store) -> None:
    await store.create_request(req(idempotency_key="k-2"))
    with pytest.raises(Conflict):
        await store.create_request(req(idempotency_key="k-2", agent="someone-else"))


async def test_exactly_one_decision(store) -> None:
    r = await store.create_request(req())
    done = await store.decide(r.id, APPROVE, "alice")
    assert done.status is RequestStatus.approved
    assert done.decided_by == "alice" and done.decision_reason == "looks right" and done.decided_at is not None
    with pytest.raises(Conflict) as exc:
        await store.decide(r.id, DENY, "bob")
    assert "alice" in exc.value.message and "approved" in exc.value.message
    assert (await store.get_request(r.id)).status is RequestStatus.approved


async def test_retrying_same_decision_is_answered_without_second_event(store) -> None:
    r = await store.create_request(req())
    first = await store.decide(r.id, APPROVE, "alice")
    seq = await store.last_seq()
    again = await store.decide(r.id, APPROVE, "alice")
    assert again == first
    assert await store.last_seq() == seq


async def test_a_retry_with_a_different_edit_is_a_conflict_not_a_silent_success(store) -> None:
    r = await store.create_request(req(args={"env": "prod", "version": "1.3"}))
    first = await store.decide(r.id, DecisionIn(decision="approve", edited_args={"version": "1.3"}), "alice")
    seq = await store.last_seq()
    # the same edit again is a retry: answered as it stands
    assert await store.decide(r.id, DecisionIn(decision="approve", edited_args={"version": "1.3"}), "alice") == first
    for other in (DecisionIn(decision="approve", edited_args={"x": 1}), APPROVE):
        with pytest.raises(Conflict, match="already approved"):
            await store.decide(r.id, other, "alice")
    assert (await store.get_request(r.id)).edited_args == {"version": "1.3"}
    assert await store.last_seq() == seq


async def test_deny_and_edited_args(store) -> None:
    r1 = await store.create_request(req())
    d = await store.decide(r1.id, DENY, "alice")
    assert d.status is RequestStatus.denied and d.decision_reason == "not now"
    r2 = await store.create_request(req(args={"env": "prod", "version": "1.0"}))
    a = await store.decide(r2.id, DecisionIn(decision="approve", edited_args={"env": "staging"}), "alice")
    assert a.edited_args == {"env": "staging"} and a.effective_args == {"env": "staging"}
    assert a.args == {"env": "prod", "version": "1.0"}


async def test_self_review_refused(store) -> None:
    r = await store.create_request(req(agent="alice"))
    with pytest.raises(Conflict, match="self-review"):
        await store.decide(r.id, APPROVE, "alice")
    assert (await store.get_request(r.id)).status is RequestStatus.pending


async def test_quorum_needs_two_distinct_reviewers(store) -> None:
    r = await store.create_request(req(required_approvals=2))
    one = await store.decide(r.id, APPROVE, "alice")
    assert one.status is RequestStatus.pending and one.approval_count == 1
    with pytest.raises(Conflict, match="already voted approve"):
        await store.decide(r.id, DENY, "alice")  # a voter cannot change their vote
    with pytest.raises(Conflict, match="already voted approve"):
        await store.decide(r.id, DecisionIn(decision="approve", edited_args={"env": "dev"}), "alice")
    retried = await store.decide(r.id, APPROVE, "alice")  # a retried vote is answered, not counted twice
    assert retried.status is RequestStatus.pending and retried.approval_count == 1
    two = await store.decide(r.id, APPROVE, "bob")
    assert two.status is RequestStatus.approved and two.approval_count == 2 and two.decided_by == "bob"
    kinds = [e.kind for e in await store.events_after(0)]
    assert kinds == [EventKind.request_created, EventKind.request_voted, EventKind.request_decided]


async def test_quorum_one_deny_denies(store) -> None:
    r = await store.create_request(req(required_approvals=2))
    await store.decide(r.id, APPROVE, "alice")
    d = await store.decide(r.id, DENY, "bob")
    assert d.status is RequestStatus.denied


async def test_quorum_keeps_first_voters_edit(store) -> None:
    r = await store.create_request(req(required_approvals=2))
    await store.decide(r.id, DecisionIn(decision="approve", edited_args={"env": "canary"}), "alice")
    done = await store.decide(r.id, APPROVE, "bob")
    assert done.edited_args == {"env": "canary"}


async def test_expiry_exactly_once_and_late_decision_rejected(store, clock) -> None:
    r = await store.create_request(req(timeout_s=30))
    clock.advance(10)
    assert await store.expire_due() == []
    clock.advance(25)
    expired = await store.expire_due()
    assert [e.id for e in expired] == [r.id]
    assert await store.expire_due() == []
    with pytest.raises(Conflict, match="expired"):
        await store.decide(r.id, APPROVE, "alice")
    got = await store.get_request(r.id)
    assert got.status is RequestStatus.expired and got.decided_by is None
    kinds = [e.kind for e in await store.events_after(0)]
    assert kinds.count(EventKind.request_expired) == 1


async def test_decision_after_deadline_expires_instead(store, clock) -> None:
    r = await store.create_request(req(timeout_s=5))
    clock.advance(6)
    with pytest.raises(Conflict, match="expired"):
        await store.decide(r.id, APPROVE, "alice")
    got = await store.get_request(r.id)
    assert got.status is RequestStatus.expired  # the expiry was committed, not rolled back


async def test_cancel(store) -> None:
    r = await store.create_request(req())
    c = await store.cancel_request(r.id, "deploy-bot", "no longer needed")
    assert c.status is RequestStatus.cancelled
    with pytest.raises(Conflict, match="cancelled"):
        await store.decide(r.id, APPROVE, "alice")


async def test_concurrent_decisions_in_one_process(make_store, clock) -> None:
    stores = [make_store(clock=clock) for _ in range(3)]
    ids = [(await stores[0].create_request(req())).id for _ in range(20)]

    async def attempt(s, rid: int, who: str):
        try:
            return await s.decide(rid, DecisionIn(decision="approve" if who != "r2" else "deny"), who)
        except Conflict:
            return None

    results = await asyncio.gather(*(attempt(stores[i % 3], rid, f"r{i}") for rid in ids for i in range(3)))
    for rid in ids:
        wins = [r for r in results if r is not None and r.id == rid]
        assert len(wins) == 1
    decided = [e for e in await stores[0].events_after(0, 10_000) if e.kind is EventKind.request_decided]
    assert sorted(int(e.subject.split(":")[1]) for e in decided) == sorted(ids)


# ----------------------------------------------------------------------------- escalations


async def test_escalation_thread_and_statuses(store) -> None:
    e = await store.create_escalation(EscalationCreate(agent="triage-bot", message="I'm not sure how to proceed"))
    assert e.status is EscalationStatus.open and len(e.messages) == 1
    assert e.messages[0].role is MessageRole.agent
    e = await store.post_message(e.id, "Use the staging cluster", "alice", MessageRole.human)
    assert e.status is EscalationStatus.answered and e.last_human_message.text == "Use the staging cluster"
    e = await store.post_message(e.id, "Done, but tests fail", "triage-bot", MessageRole.agent)
    assert e.status is EscalationStatus.open
    assert [m.role for m in e.messages] == [MessageRole.agent, MessageRole.human, MessageRole.agent]
    e = await store.set_escalation_status(e.id, EscalationStatus.taken_over, "alice")
    assert e.status is EscalationStatus.taken_over
    with pytest.raises(Conflict):
        await store.post_message(e.id, "can I continue?", "triage-bot", MessageRole.agent)
    e = await store.set_escalation_status(e.id, EscalationStatus.resolved, "alice", note="fixed by hand")
    with pytest.raises(Conflict):
        await store.set_escalation_status(e.id, EscalationStatus.open, "alice")
    page = await store.list_escalations(EscalationStatus.resolved)
    assert [x.id for x in page.items] == [e.id]


# ----------------------------------------------------------------------------- review


async def test_review_truncation_and_marking(store) -> None:
    item = await store.log_review(ReviewCreate(agent="fmt", tool="format_code", args={}, result="x" * 1234))
    assert len(item.result) == 500 and item.result_length == 1234 and item.truncated
    short = await store.log_review(ReviewCreate(agent="fmt", tool="read_logs", result="ok", result_limit=10))
    assert short.result == "ok" and not short.truncated
    assert [i.id for i in (await store.list_reviews(reviewed=False)).items] == [short.id, item.id]
    marked = await store.mark_review(item.id, ReviewMark(verdict=Verdict.flagged, note="wrong file"), "alice")
    assert marked.reviewed and marked.verdict is Verdict.flagged and marked.reviewer == "alice"
    assert (await store.list_reviews(reviewed=False)).total == 1
    # unreviewed first
    assert [i.id for i in (await store.list_reviews()).items] == [short.id, item.id]
    assert (await store.list_reviews(tool="read_logs")).total == 1
    assert (await store.list_reviews(verdict="flagged")).total == 1


# ----------------------------------------------------------------------------- capabilities, rules, tokens


async def test_capability_stage_history(store) -> None:
    cap = await store.put_capability(Capability(tool="deploy", stage=Stage.disabled), "admin", "new tool")
    assert [h.to_stage for h in cap.history] == [Stage.disabled]
    cap = await store.set_stage("deploy", Stage.approval, "alice", "ready for review")
    cap = await store.set_stage("deploy", Stage.autonomous, "bob", "50 clean approvals")
    assert cap.stage is Stage.autonomous
    assert [(h.from_stage, h.to_stage, h.actor) for h in cap.history] == [
        (None, Stage.disabled, "admin"),
        (Stage.disabled, Stage.approval, "alice"),
        (Stage.approval, Stage.autonomous, "bob"),
    ]
    assert cap.history[2].reason == "50 clean approvals"
    with pytest.raises(NotFound):
        await store.set_stage("nope", Stage.approval, "alice")


async def test_always_approval_refuses_autonomous_unless_forced(store) -> None:
    await store.put_capability(Capability(tool="delete_resource", always_approval=True), "admin")
    with pytest.raises(Conflict):
        await store.set_stage("delete_resource", Stage.autonomous, "alice")
    cap = await store.set_stage("delete_resource", Stage.autonomous, "alice", "incident cleanup", force=True)
    assert cap.stage is Stage.autonomous and cap.history[-1].forced
    forced = [e for e in await store.events_after(0) if e.kind is EventKind.stage_changed and e.payload["forced"]]
    assert len(forced) == 1 and forced[0].actor == "alice"


async def test_agent_scoped_capability_is_separate(store) -> None:
    await store.put_capability(Capability(tool="deploy", stage=Stage.approval), "admin")
    await store.put_capability(Capability(tool="deploy", stage=Stage.disabled, agent="intern-bot"), "admin")
    caps = await store.list_capabilities()
    assert {(c.tool, c.agent, c.stage) for c in caps} == {
        ("deploy", None, Stage.approval),
        ("deploy", "intern-bot", Stage.disabled),
    }
    assert (await store.get_capability("deploy", "intern-bot")).stage is Stage.disabled


async def test_rules_round_trip(store) -> None:
    rules = [
        Rule(pattern="Bash(rm:*)", effect=RuleEffect.deny, reason="never"),
        Rule(pattern="Read", effect=RuleEffect.allow),
    ]
    await store.set_rules(rules, "admin")
    assert await store.list_rules() == rules
    await store.set_rules(rules[:1], "admin")
    assert await store.list_rules() == rules[:1]


async def test_tokens(store) -> None:
    t = await store.create_token("alice", TokenRole.reviewer, "hash-a", "admin")
    assert t.active and t.role is TokenRole.reviewer
    with pytest.raises(Conflict):
        await store.create_token("alice", TokenRole.admin, "hash-b", "admin")
    assert (await store.find_token("hash-a")).name == "alice"
    await store.revoke_token("alice", "admin")
    assert await store.find_token("hash-a") is None
    again = await store.create_token("alice", TokenRole.agent, "hash-c", "admin")
    assert again.role is TokenRole.agent
    assert [x.active for x in await store.list_tokens()] == [False, True]


# ----------------------------------------------------------------------------- events and audit


async def test_event_log_ordered_gap_free_and_chained(store) -> None:
    r = await store.create_request(req())
    await store.decide(r.id, APPROVE, "alice")
    e = await store.create_escalation(EscalationCreate(agent="a", message="help"))
    await store.post_message(e.id, "try X", "alice", MessageRole.human)
    await store.log_review(ReviewCreate(agent="a", tool="t", result="r"))
    events = await store.events_after(0)
    assert [ev.seq for ev in events] == list(range(1, len(events) + 1))
    assert events[1].kind is EventKind.request_decided and events[1].actor == "alice"
    assert events[1].payload["status"] == "approved"
    for prev, ev in itertools.pairwise(events):
        assert ev.prev_hash == prev.hash
    assert await store.events_after(3) == events[3:]
    assert await store.last_seq() == len(events)
    report = await store.verify_audit()
    assert report.ok and report.checked == len(events)


async def test_failed_write_appends_no_event(store) -> None:
    r = await store.create_request(req())
    await store.decide(r.id, APPROVE, "alice")
    seq = await store.last_seq()
    with pytest.raises(Conflict):
        await store.decide(r.id, DENY, "bob")
    with pytest.raises(NotFound):
        await store.decide(999, DENY, "bob")
    assert await store.last_seq() == seq


async def test_wait_for_change_wakes_on_commit_from_another_store(make_store, clock) -> None:
    a = make_store(clock=clock)
    b = make_store(clock=clock)
    start = await a.last_seq()
    waiter = asyncio.create_task(a.wait_for_change(start, timeout=30))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await b.create_request(req())
    seq = await asyncio.wait_for(waiter, 10)
    assert seq == start + 1


async def test_wait_for_change_times_out_quietly(store) -> None:
    seq = await store.last_seq()
    assert await store.wait_for_change(seq, timeout=0.05) == seq


async def test_a_message_event_carries_the_new_message_not_the_whole_thread(store) -> None:
    """n messages in a thread log n messages, not n²/2: an agent looping on "still stuck" must not
    grow the audit log quadratically. Each event says how many messages the thread holds."""
    esc = await store.create_escalation(EscalationCreate(agent="bot", message="stuck"))
    start = await store.last_seq()
    for i in range(30):
        await store.post_message(esc.id, f"still stuck {i} " + "x" * 200, "bot", MessageRole.agent)
    events = [e for e in await store.events_after(start) if e.kind is EventKind.escalation_message]
    assert len(events) == 30
    for i, ev in enumerate(events):
        assert "messages" not in ev.payload
        assert ev.payload["message_count"] == i + 2  # the opening message, then each post
        assert ev.payload["new_message"]["text"].startswith(f"still stuck {i} ")
        assert ev.payload["id"] == esc.id and ev.payload["status"] == "open"
    sizes = [len(str(ev.payload)) for ev in events]
    assert max(sizes) - min(sizes) < 20  # flat: the 30th is no bigger than the first
    assert len((await store.get_escalation(esc.id)).messages) == 31
    assert (await store.verify_audit()).ok
