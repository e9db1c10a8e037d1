"""Deterministic data for console tests, snapshots and screenshots, on a fixed clock.

Everything goes through the real backend (real SQLite file), so the console reads exactly what
agents would have written. ``build`` advances the given clock as it goes, so ages differ, and
leaves it at ``NOW``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hitl_tui.backend.local import LocalBackend
from hitl_tui.models import (
    DecisionIn,
    EscalationCreate,
    MessageRole,
    RequestCreate,
    ReviewCreate,
    ReviewMark,
    Risk,
    Stage,
    Verdict,
)
from hitl_tui.presets import get_preset
from hitl_tui.store.sqlite import SQLiteStore

START = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
REVIEWER = "alice"
OTHER = "bob"

#: strings an agent could send to attack the reviewer's terminal
HOSTILE = [
    "[@click=app.quit]click me[/]",
    "[link=http://evil.example]docs[/link]",
    "[b red]bold[/]",
    "\x1b[2J\x1b[31mcleared\x1b[0m",
    "\x1b]8;;http://evil.example\x07osc link\x1b]8;;\x07",
    "\x1b]0;pwned title\x07",
    "c1 \x9b31m csi",
    "bidi \u202eevil\u202c end",
    "cr\rover",
    "nul\x00byte",
    "zero\u200bwidth",
]


class Clock:
    """A settable clock (same behaviour as tests/conftest.py's FakeClock)."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def open_backend(path: Path, clock: Callable[[], datetime], actor: str = REVIEWER) -> LocalBackend:
    return LocalBackend(SQLiteStore(path, clock=clock), actor=actor)


async def _request(backend: LocalBackend, **fields: Any) -> int:
    req = await backend.create_request(RequestCreate(**fields))
    return req.id


async def build(backend: LocalBackend, clock: Any) -> None:
    """Capabilities, requests (pending, voted, decided), escalations and review items."""
    clock.now = START
    for cap in get_preset("seed").capabilities:
        await backend.put_capability(cap, actor="admin", reason="seed preset")
    clock.advance(600)
    await backend.set_stage("create_github_issue", Stage.approval, actor=OTHER, reason="too many duplicates")
    clock.advance(600)
    await backend.set_stage("create_github_issue", Stage.autonomous, actor=REVIEWER, reason="dedupe fixed")

    # history: decided requests give the capabilities pane a record
    for i, (tool, verdict) in enumerate(
        [("deploy", "approve"), ("deploy", "approve"), ("deploy", "deny"), ("send_customer_email", "approve")]
    ):
        clock.advance(120)
        rid = await _request(backend, agent="release-bot", tool=tool, args={"n": i}, risk=Risk.high, timeout_s=7200)
        clock.advance(90 + 30 * i)
        reason = None if verdict == "approve" else "wrong build"
        await backend.decide(rid, DecisionIn(decision=verdict, reason=reason), reviewer=OTHER)

    clock.now = NOW - timedelta(minutes=40)
    await _request(
        backend,
        agent="support-agent",
        tool="send_customer_email",
        args={
            "to": "jane@example.com",
            "subject": "Your refund",
            "body": "Hi Jane,\nyour refund of $120 is on its way.",
        },
        summary="Refund confirmation to jane@example.com",
        risk=Risk.high,
        confidence=82,
        policy_reason="stage approval: a human reads every customer email",
        timeout_s=3600,
    )
    clock.advance(600)
    await _request(
        backend,
        agent="release-bot",
        tool="deploy",
        args={"service": "checkout", "version": "2.14.1", "env": "production", "replicas": 6},
        summary="Deploy checkout 2.14.1 to production",
        context="CI green on main (build 8812). Canary at 5% for 30 min, error rate 0.02%.",
        risk=Risk.high,
        confidence=91,
        policy_reason="stage approval; irreversible",
        irreversible=True,
        timeout_s=3600,
    )
    clock.advance(300)
    await _request(
        backend,
        agent="infra-agent",
        tool="db_migration",
        args={"database": "orders", "migration": "0042_add_refund_index", "online": True},
        summary="Add index on orders.refund_id",
        risk=Risk.critical,
        confidence=74,
        policy_reason="stage approval; critical risk needs two reviewers",
        irreversible=True,
        required_approvals=2,
        timeout_s=3600,
    )
    quorum_id = 0
    page = await backend.list_requests(tool="db_migration")
    quorum_id = page.items[0].id
    clock.advance(60)
    await backend.decide(quorum_id, DecisionIn(decision="approve", reason="index looks safe"), reviewer=OTHER)
    clock.advance(240)
    await _request(
        backend,
        agent="triage-bot",
        tool="create_github_issue",
        args={"repo": "acme/checkout", "title": "Flaky test: test_refund_rounding", "labels": ["flaky", "ci"]},
        summary="Open issue: flaky test_refund_rounding",
        risk=Risk.medium,
        confidence=64,
        policy_reason="confidence 64 is below the autonomous threshold 90",
        timeout_s=3600,
    )
    clock.advance(420)
    await _request(
        backend,
        agent="infra-agent",
        tool="delete_resource",
        args={"kind": "s3_bucket", "name": "acme-tmp-exports-2023", "region": "eu-west-1"},
        summary="Delete bucket acme-tmp-exports-2023",
        risk=Risk.critical,
        confidence=88,
        policy_reason="always-approval tool",
        irreversible=True,
        timeout_s=1500,
    )
    clock.advance(180)
    await _request(
        backend,
        agent="coder-agent",
        tool="write_file",
        args={"path": "src/refunds/rounding.py", "content": "def round_refund(x):\n    return round(x, 2)\n"},
        summary="Fix rounding in src/refunds/rounding.py",
        risk=Risk.low,
        confidence=95,
        policy_reason="unknown tool: approval by default",
        timeout_s=3600,
    )

    # escalations
    clock.now = NOW - timedelta(minutes=25)
    esc = await backend.create_escalation(
        EscalationCreate(
            agent="support-agent",
            message="Customer asks for a refund above the $500 policy limit ($740). I'm not sure how to proceed.",
            context="Ticket #5512, customer since 2019, 3 prior refunds.",
        )
    )
    clock.advance(120)
    await backend.post_message(esc.id, "Offer $500 now and escalate the rest to billing.", author=REVIEWER)
    clock.advance(60)
    await backend.post_message(
        esc.id,
        "Understood. Should I tell them when billing will reply?",
        role=MessageRole.agent,
        author="support-agent",
    )
    clock.advance(300)
    await backend.create_escalation(
        EscalationCreate(agent="infra-agent", message="I need access to the prod-eu VPC to finish the migration.")
    )
    clock.advance(200)
    done = await backend.create_escalation(
        EscalationCreate(agent="coder-agent", message="Two tests contradict each other; which behaviour is right?")
    )
    clock.advance(60)
    await backend.post_message(done.id, "Keep the rounding half-even behaviour.", author=OTHER)
    await backend.set_escalation_status(done.id, _resolved(), actor=OTHER, note="answered")

    # after-the-fact review
    clock.now = NOW - timedelta(minutes=15)
    items = [
        ("coder-agent", "format_code", {"paths": ["src/"]}, "reformatted 14 files"),
        (
            "ops-agent",
            "read_logs",
            {"service": "checkout", "since": "1h"},
            "2026-01-15T08:12:03Z ERROR timeout calling payments\n" * 3,
        ),
        ("infra-agent", "db_migration", {"migration": "0041_backfill"}, "migrated 120,433 rows in 42s"),
        ("triage-bot", "create_github_issue", {"title": "Docs typo"}, "created acme/docs#88"),
        ("coder-agent", "format_code", {"paths": ["tests/"]}, "reformatted 3 files"),
    ]
    ids = []
    for agent, tool, args, result in items:
        clock.advance(90)
        item = await backend.log_review(ReviewCreate(agent=agent, tool=tool, args=args, result=result))
        ids.append(item.id)
    clock.advance(30)
    await backend.mark_review(ids[0], ReviewMark(verdict=Verdict.ok), reviewer=OTHER)
    await backend.mark_review(ids[3], ReviewMark(verdict=Verdict.flagged, note="duplicate of #71"), reviewer=OTHER)
    clock.now = NOW


#: the track record :func:`add_history` writes (hand-counted, for the tests that check the figures)
HISTORY_TOOL = "send_customer_email"  # 55 more approvals, no denial, edit or flag: promotion suggested
HISTORY_APPROVALS = 55
HISTORY_DAYS = 20  # spread over the 20 days up to NOW: a 7-day window holds only some of them
CALIBRATED_TOOL = "deploy"  # 20 decisions with a confidence: too few for a threshold suggestion


def history_days_ago(i: int) -> int:
    return i % HISTORY_DAYS


async def add_history(backend: LocalBackend, clock: Any) -> None:
    """Weeks of decisions before :func:`build`'s morning, then the clock back at ``NOW``.

    * ``send_customer_email``: 55 approvals by ``bob``, request ``i`` ``i % 20`` days before NOW,
      confidence ``80 + i % 20``, decided in ``30 + i % 7`` seconds;
    * ``deploy``: at confidence 95, 10 approved; at 75, 3 approved and 2 denied; at 40, 1 approved
      and 4 denied (20 decided: fewer than the 30 a threshold suggestion needs).
    """
    day_start = NOW.replace(hour=6, minute=0)
    for i in range(HISTORY_APPROVALS):
        clock.now = day_start - timedelta(days=history_days_ago(i)) + timedelta(minutes=i)
        rid = await _request(
            backend, agent="support-agent", tool=HISTORY_TOOL, args={"ticket": 1000 + i}, risk=Risk.high,
            confidence=80 + i % 20, summary=f"Reply to ticket #{1000 + i}", timeout_s=7200,
        )
        clock.advance(30 + i % 7)
        await backend.decide(rid, DecisionIn(decision="approve", reason="reads fine"), reviewer=OTHER)
    outcomes = [(95, "approve")] * 10 + [(75, "approve")] * 3 + [(75, "deny")] * 2
    outcomes += [(40, "approve")] + [(40, "deny")] * 4
    for i, (confidence, verdict) in enumerate(outcomes):
        clock.now = day_start - timedelta(days=2, minutes=-i)
        rid = await _request(
            backend, agent="release-bot", tool=CALIBRATED_TOOL, args={"build": 700 + i}, risk=Risk.high,
            confidence=confidence, timeout_s=7200,
        )
        clock.advance(60)
        reason = "ok" if verdict == "approve" else "not this build"
        await backend.decide(rid, DecisionIn(decision=verdict, reason=reason), reviewer=OTHER)
    clock.now = NOW


def _resolved() -> Any:
    from hitl_tui.models import EscalationStatus

    return EscalationStatus.resolved
