"""The demo: a deterministic fill of a store (:func:`seed_demo`) and a simulated agent fleet (:func:`run_fleet`).

``seed_demo`` writes the same story every time (no randomness; the only time it reads is ``now``, used
inside argument texts such as migration names): the seed article's capability table with a few stage
changes, a track record (56 routine staging deploys, all approved: the capability pane suggests
promoting ``deploy``), pending and decided approval requests, escalation threads, and after-the-fact
review items.
Screenshots and snapshot tests run it on a store with a fixed clock.

``run_fleet`` runs LLM-free agents that behave like real ones: ask the policy, run what may run, wait
for a human where they must, react to the decision (run the approved, possibly edited, arguments and
log the result for review; ask for guidance after a denial), and acknowledge human replies. Everything
goes through the :class:`~hitl_tui.backend.base.Backend` interface, exactly as real agents do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from .backend.base import Backend
from .errors import Conflict, HitlError
from .models import (
    ApprovalRequest,
    DecisionIn,
    Escalation,
    EscalationCreate,
    EscalationStatus,
    MessageRole,
    RequestCreate,
    RequestStatus,
    ReviewCreate,
    ReviewMark,
    Route,
    Stage,
    Verdict,
)
from .presets import get_preset
from .text import sanitise

__all__ = [
    "DEMO_ACTOR",
    "MAX_FLEET_ESCALATIONS",
    "MAX_FLEET_PENDING",
    "REVIEWERS",
    "FleetAction",
    "run_fleet",
    "seed_demo",
]

log = logging.getLogger(__name__)

DEMO_ACTOR = "demo"
REVIEWERS = ("alice", "bob", "carol")
MAX_FLEET_PENDING = 12  # approval requests the fleet keeps waiting at once, at most
MAX_FLEET_ESCALATIONS = 4  # escalation threads the fleet follows at once, at most
RESULT_LIMIT = 20_000  # review results are stored whole (up to this): the console shows them in full

# =========================================================================== the deterministic fill

_CHECKOUT_VALUES = """\
# checkout-api: production values (rendered by docs-writer from the service catalogue)
replicaCount: 6
image:
  repository: registry.acme.internal/checkout-api
  tag: v2.14.1
  pullPolicy: IfNotPresent
resources:
  requests:
    cpu: 500m
    memory: 768Mi
  limits:
    cpu: "2"
    memory: 1536Mi
autoscaling:
  enabled: true
  minReplicas: 6
  maxReplicas: 24
  targetCPUUtilizationPercentage: 65
env:
  - name: PAYMENTS_PROVIDER
    value: stripe
  - name: COUPON_ROUNDING
    value: half_even
  - name: FEATURE_SPLIT_TENDER
    value: "false"
  - name: DB_POOL_SIZE
    value: "40"
probes:
  readiness:
    path: /healthz/ready
    periodSeconds: 5
  liveness:
    path: /healthz/live
    periodSeconds: 10
podDisruptionBudget:
  minAvailable: 4
ingress:
  host: checkout.acme.example
  tls: true
"""

_REFUND_BODY = """\
Hi Dana,

Thanks for your patience while we looked into order #48213. The coupon was applied twice at checkout,
so you were charged $18.40 less than the list price and then billed the difference by mistake.

We have refunded $18.40 to your card ending 4417. It should appear within 3-5 business days.
As an apology we will also refund your next month's subscription in full.

Best regards,
Acme Support
"""

_REFUND_BODY_EDITED = _REFUND_BODY.replace(
    "As an apology we will also refund your next month's subscription in full.\n",
    "If anything else looks wrong on your invoice, just reply to this email.\n",
)


def _log_lines(now: datetime, service: str, lines: Sequence[tuple[int, str, str]]) -> str:
    """Log output ending at ``now``: ``(seconds before now, level, message)`` per line."""
    out = []
    for ago, level, msg in lines:
        at = now - timedelta(seconds=ago)
        out.append(f"{at:%Y-%m-%dT%H:%M:%S}Z {level:<5} {service} {msg}")
    return "\n".join(out)


async def _ask(
    backend: Backend,
    agent: str,
    tool: str,
    args: dict[str, Any],
    *,
    summary: str,
    confidence: int,
    context: str | None = None,
    timeout_s: float = 3600.0,
    required_approvals: int = 1,
) -> ApprovalRequest:
    """File one approval request the way the gate does: the policy's route reason goes with it."""
    decision = await backend.evaluate(tool, args, confidence, agent)
    return await backend.create_request(
        RequestCreate(
            agent=agent,
            tool=tool,
            args=args,
            summary=summary,
            context=context,
            risk=decision.risk,
            confidence=confidence,
            policy_reason=decision.reason,
            irreversible=decision.irreversible,
            timeout_s=timeout_s,
            required_approvals=required_approvals,
        )
    )


async def _decide(
    backend: Backend, req: ApprovalRequest, reviewer: str, verdict: Literal["approve", "deny"], reason: str,
    edited: dict[str, Any] | None = None,
) -> ApprovalRequest:
    return await backend.decide(req.id, DecisionIn(decision=verdict, reason=reason, edited_args=edited), reviewer)


async def _expire(backend: Backend, req: ApprovalRequest) -> None:
    """Let ``req`` pass its (short) deadline. On a local store, expire it at exactly its deadline, so
    a fixed clock gives the same result every time; elsewhere, wait for the backend to expire it."""
    from .store.base import Store

    store = getattr(backend, "store", None)
    if isinstance(store, Store) and req.expires_at is not None:
        await store.expire_due(req.expires_at)
    else:
        await backend.wait_for_request(req.id, timeout=10.0)


async def _seed_capabilities(backend: Backend) -> None:
    """The seed preset's table, with a short, believable history behind four of the stages."""
    preset = get_preset("seed")
    first_stage = {  # tool -> (stage it started at, actor, reason of the later change)
        "format_code": (Stage.approval, "alice", "40 approvals and no denial in two weeks; formatting is easy to undo"),
        "create_github_issue": (Stage.approval, "bob", "confidence routing keeps unsure issues gated; promote"),
        "send_customer_email": (Stage.autonomous, "carol", "INC-2291: promised a refund without sign-off; gate again"),
        "read_logs": (Stage.approval, "alice", "read-only and never denied; promote"),
    }
    for cap in preset.capabilities:
        start = first_stage.get(cap.tool)
        initial = cap if start is None else cap.model_copy(update={"stage": start[0]})
        await backend.put_capability(initial, actor=DEMO_ACTOR, reason="seed preset: the article's scenario table")
    for cap in preset.capabilities:
        start = first_stage.get(cap.tool)
        if start is not None:
            await backend.set_stage(cap.tool, cap.stage, actor=start[1], reason=start[2])
    if preset.rules:
        await backend.set_rules(preset.rules, actor=DEMO_ACTOR, reason="seed preset")


async def _seed_history(backend: Backend, now: datetime) -> None:
    """Requests already decided: approved, approved with an edit, denied, a quorum, an expiry."""
    deploy = await _ask(
        backend, "deploy-bot", "deploy", {"service": "billing-worker", "version": "v3.2.0", "env": "production"},
        summary="Deploy billing-worker v3.2.0 to production (retry queue fix)", confidence=92,
        context="CI green: 318 tests. Canary 30 min: error rate 0.21% vs baseline 0.24%.",
    )
    deploy = await _decide(backend, deploy, "alice", "approve", "canary is clean; go")
    await backend.log_review(ReviewCreate(
        agent="deploy-bot", tool="deploy", args=deploy.effective_args, request_id=deploy.id, result_limit=RESULT_LIMIT,
        result="rolled out billing-worker v3.2.0 to production: 8/8 pods healthy after 52s; error rate 0.19%",
    ))

    email_args = {"to": "dana.whitfield@example.com", "subject": "Your refund for order #48213", "body": _REFUND_BODY}
    email = await _ask(
        backend, "support-mailer", "send_customer_email", email_args,
        summary="Reply to ticket #88031: refund $18.40 for a double-applied coupon", confidence=84,
        context="Ticket #88031, customer since 2021, plan: Team. Refund within the $500 agent limit.",
    )
    email = await _decide(
        backend, email, "bob", "approve", "removed the free-month promise: not ours to give",
        edited={**email_args, "body": _REFUND_BODY_EDITED},
    )
    await backend.log_review(ReviewCreate(
        agent="support-mailer", tool="send_customer_email", args=email.effective_args, request_id=email.id,
        result="250 2.0.0 OK: queued as 4Fq9Zk1x2Lz (to dana.whitfield@example.com)", result_limit=RESULT_LIMIT,
    ))

    doomed = await _ask(
        backend, "janitor", "delete_resource",
        {"kind": "rds_instance", "name": "orders-prod-replica-2", "region": "us-east-1"},
        summary="Delete idle read replica orders-prod-replica-2 (no writes in 30 days)", confidence=81,
        context="CloudWatch: 0 write IOPS for 30 days; 140 read connections/day from reporting.",
    )
    await _decide(backend, doomed, "carol", "deny", "still serving the finance reports; replicas never take writes")

    migration = f"{now:%Y%m%d}_0700_orders_add_refunded_at"
    quorum = await _ask(
        backend, "migrator", "db_migration",
        {"migration": migration, "database": "orders-prod",
         "statements": ["ALTER TABLE orders ADD COLUMN refunded_at timestamptz NULL"]},
        summary="Add nullable orders.refunded_at (metadata-only change)", confidence=90, required_approvals=2,
        context="Postgres 16: adding a nullable column without a default does not rewrite the table.",
    )
    quorum = await _decide(backend, quorum, "alice", "approve", "metadata-only; safe")
    with contextlib.suppress(Conflict):  # over a server every vote is the token holder's: one voter, no quorum
        quorum = await _decide(backend, quorum, "bob", "approve", "agreed")
    if quorum.status is RequestStatus.approved:
        await backend.log_review(ReviewCreate(
            agent="migrator", tool="db_migration", args=quorum.effective_args, request_id=quorum.id,
            result=f"migration {migration} applied to orders-prod in 0.04s\nALTER TABLE", result_limit=RESULT_LIMIT,
        ))

    stale = await _ask(
        backend, "triage-bot", "create_github_issue",
        {"repo": "acme/web", "title": "Flaky test: test_checkout_applies_coupon_once",
         "body": "Failed 3 of the last 50 runs on main; always on the arm64 runners.", "labels": ["flaky-test"]},
        summary="File an issue for a flaky checkout test", confidence=71, timeout_s=1.0,
    )
    await _expire(backend, stale)


TRACK_RECORD_DEPLOYS = 56  # routine staging deploys, all approved: enough for a promotion suggestion (50)
_STAGING_SERVICES = ("search-indexer", "billing-worker", "checkout-api", "notifications", "image-resizer",
                     "feature-flags", "audit-exporter")


async def _seed_track_record(backend: Backend) -> None:
    """Weeks of routine staging deploys, every one approved and checked OK afterwards: the capability
    pane suggests promoting ``deploy`` with this evidence (a reviewer decides; nothing changes alone)."""
    for i in range(TRACK_RECORD_DEPLOYS):
        service = _STAGING_SERVICES[i % len(_STAGING_SERVICES)]
        version = f"v1.{i // len(_STAGING_SERVICES)}.{i % 5}"
        args = {"service": service, "version": version, "env": "staging"}
        req = await _ask(
            backend, "deploy-bot", "deploy", args, summary=f"Deploy {service} {version} to staging",
            confidence=90 + i % 10, context="CI green; staging canary clean.",
        )
        reviewer = REVIEWERS[i % len(REVIEWERS)]
        req = await _decide(backend, req, reviewer, "approve", "staging; CI green")
        logged = await backend.log_review(ReviewCreate(
            agent="deploy-bot", tool="deploy", args=req.effective_args, request_id=req.id, result_limit=RESULT_LIMIT,
            result=f"rolled out {service} {version} to staging: all pods healthy",
        ))
        await backend.mark_review(logged.id, ReviewMark(verdict=Verdict.ok), REVIEWERS[(i + 1) % len(REVIEWERS)])


async def _seed_pending(backend: Backend, now: datetime) -> None:
    """What waits for a human right now: several agents, varied risk, one quorum, one long argument."""
    await _ask(
        backend, "janitor", "delete_resource",
        {"kind": "ebs_snapshot", "name": "snap-0a1b2c3d4e5f60718", "region": "eu-west-1"},
        summary="Delete a 412 GiB snapshot of a volume deleted in 2024", confidence=93, timeout_s=7200,
        context="Source volume vol-07c1 was deleted 2024-03-02; no AMI references this snapshot.",
    )
    await _ask(
        backend, "deploy-bot", "deploy", {"service": "search-indexer", "version": "v0.9.3", "env": "staging"},
        summary="Deploy search-indexer v0.9.3 to staging", confidence=95, timeout_s=2700,
        context="CI green: 97 tests. Changes: batch size 500 -> 1000, retry jitter.",
    )
    await _ask(
        backend, "support-mailer", "send_customer_email",
        {"to": "ops@northwind.example", "subject": "Incident report: delayed webhooks on 14 January",
         "body": "Hello Northwind team,\n\nBetween 13:05 and 13:48 UTC webhook deliveries were delayed by up to "
                 "40 minutes. No events were lost; all were delivered in order.\n\nA full report follows this "
                 "week.\n\nAcme Support"},
        summary="Send the incident summary to an enterprise customer", confidence=78, timeout_s=1800,
    )
    await _ask(
        backend, "triage-bot", "create_github_issue",
        {"repo": "acme/web", "title": "Checkout button unresponsive on Safari 17.2",
         "body": "Three customer reports since v2.14.0. Console shows `TypeError: structuredClone is not a "
                 "function` from checkout.js:214. Possibly a regression from the polyfill removal in #3170.",
         "labels": ["bug", "checkout", "safari"]},
        summary="File a regression issue from three support tickets", confidence=74, timeout_s=3600,
    )
    await _ask(
        backend, "docs-writer", "write_file",
        {"path": "deploy/k8s/checkout-api/values-production.yaml", "content": _CHECKOUT_VALUES},
        summary="Regenerate checkout-api production values (replicas 4 -> 6)", confidence=83, timeout_s=5400,
        context="Service catalogue change by platform team: checkout-api minimum replicas raised to 6.",
    )
    migration = f"{now:%Y%m%d}_0930_orders_customer_idx"
    quorum = await _ask(
        backend, "migrator", "db_migration",
        {"migration": migration, "database": "orders-prod",
         "statements": [
             "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_created_idx ON orders (customer_id, created_at)",
             "ANALYZE orders",
         ]},
        summary="Add an index for the slow 'orders by customer' query (p95 2.4s)", confidence=91, timeout_s=6000,
        required_approvals=2,
        context="pg_stat_statements: 18k calls/day, p95 2.4s. CONCURRENTLY: no table lock; ~6 min build.",
    )
    await _decide(backend, quorum, "alice", "approve", "plan is right; needs a second reviewer")
    await _ask(
        backend, "support-mailer", "send_customer_email",
        {"to": "li.wei@example.com", "subject": "Re: cannot download invoices",
         "body": "Hi Li,\n\nInvoice downloads are fixed as of this morning. Could you try again and let us "
                 "know if the PDF opens?\n\nAcme Support"},
        summary="Follow up on ticket #88102 (invoice downloads)", confidence=88, timeout_s=3000,
    )
    await _ask(
        backend, "deploy-bot", "deploy", {"service": "checkout-api", "version": "v2.14.1", "env": "production"},
        summary="Deploy checkout-api v2.14.1 to production (coupon rounding fix)", confidence=88, timeout_s=1500,
        context="CI green: 412 tests. Canary 30 min at 0.41% errors (baseline 0.50%). Rollback: v2.14.0.",
    )


async def _seed_escalations(backend: Backend) -> None:
    """Threads in each state a reviewer meets: answered, open again, taken over, and brand new."""
    esc = await backend.create_escalation(EscalationCreate(
        agent="migrator",
        message="Migration 20260114_backfill_invoice_totals would lock `invoices` for about 4 minutes at "
                "current write volume. I'm not sure how to proceed: run it now, or wait for the 02:00 window?",
        context="invoices: 48M rows, 310 writes/s at peak. Estimated lock: 3m50s.",
    ))
    await backend.post_message(esc.id, "Wait for the window, and batch it: 10k rows per transaction.", "alice")
    await backend.post_message(
        esc.id, "Understood: I'll split the backfill into batches of 10,000 rows and ask again before 02:00.",
        "migrator", MessageRole.agent,
    )

    esc = await backend.create_escalation(EscalationCreate(
        agent="support-mailer",
        message="Ticket #88127 asks for a refund of $1,240, above my $500 limit. I need access to the refunds "
                "tool or a human decision.",
        context="Customer: Contoso Ltd, plan Enterprise, 3 prior refunds in 2025.",
    ))
    await backend.post_message(esc.id, "I'll take this one; calling the customer now.", "bob")
    await backend.set_escalation_status(esc.id, EscalationStatus.taken_over, "bob", "handling by phone")

    esc = await backend.create_escalation(EscalationCreate(
        agent="triage-bot",
        message="Three reports of 'checkout button unresponsive on Safari'. I don't have enough context to tell "
                "the known WebKit bug (acme/web#3120) from a regression in v2.14.0. File a new issue or link them?",
    ))
    await backend.post_message(esc.id, "New issue, and link #3120 in it. Attach one of the HAR files.", "carol")

    await backend.create_escalation(EscalationCreate(
        agent="deploy-bot",
        message="search-indexer error rate rose from 0.3% to 2.1% after v0.9.2. This could have unintended "
                "consequences: roll back to v0.9.1, or hold while the indexer team looks?",
        context="Errors: 'bulk rejected: queue full' from the search cluster since 08:55.",
    ))


async def _seed_reviews(backend: Backend, now: datetime) -> None:
    """After-the-fact items: cheap autonomous actions, some checked OK, one flagged."""
    items: list[tuple[str, str, dict[str, Any], str]] = [
        ("deploy-bot", "read_logs", {"service": "checkout-api", "since": "15m", "query": "level:error"},
         _log_lines(now, "checkout-api", [
             (840, "ERROR", "coupon rounding mismatch order=48213 expected=18.40 got=18.39"),
             (610, "WARN", "slow query orders_by_customer 2412ms"),
             (305, "ERROR", "coupon rounding mismatch order=48297 expected=7.10 got=7.09"),
             (12, "INFO", "health check ok (6/6 replicas)"),
         ])),
        ("docs-writer", "format_code", {"paths": ["docs/"], "formatter": "prettier"},
         "reformatted 3 files: docs/runbooks/deploy.md, docs/runbooks/rollback.md, docs/index.md"),
        ("triage-bot", "create_github_issue",
         {"repo": "acme/api", "title": "Rate limiter returns 500 instead of 429", "labels": ["bug"]},
         "created acme/api#2291"),
        ("migrator", "read_logs", {"service": "postgres-orders", "since": "1h", "query": "lock wait"},
         _log_lines(now, "postgres-orders", [
             (3300, "LOG", "process 4121 still waiting for ShareLock on transaction 99120 after 1000.121 ms"),
             (3290, "LOG", "process 4121 acquired ShareLock on transaction 99120 after 1832.772 ms"),
         ])),
        ("janitor", "format_code", {"paths": ["."], "formatter": "ruff format"},
         "reformatted 214 files, 3,118 lines changed\n(including third_party/vendored/*)"),
        ("migrator", "db_migration",
         {"migration": "20260113_2200_invoices_backfill_totals", "database": "billing-prod"},
         "migration applied in 1.8s\nUPDATE 0\n(0 rows changed)"),
        ("deploy-bot", "read_logs", {"service": "search-indexer", "since": "30m", "query": "level:error"},
         _log_lines(now, "search-indexer", [
             (1700, "ERROR", "bulk rejected: queue full (es-queue=1000/1000)"),
             (1100, "ERROR", "bulk rejected: queue full (es-queue=1000/1000)"),
             (420, "ERROR", "bulk rejected: queue full (es-queue=998/1000)"),
         ])),
        ("triage-bot", "read_logs", {"service": "web", "since": "24h", "query": "structuredClone"},
         _log_lines(now, "web", [(7200, "ERROR", "TypeError: structuredClone is not a function (checkout.js:214)")])),
        ("docs-writer", "format_code", {"paths": ["deploy/"], "formatter": "prettier"}, "reformatted 1 file"),
        ("migrator", "db_migration",
         {"migration": "20260112_0930_users_email_lower_idx", "database": "accounts-prod"},
         "migration applied in 41.2s\nCREATE INDEX"),
        ("triage-bot", "create_github_issue",
         {"repo": "acme/web", "title": "Docs: rollback runbook links to a deleted dashboard", "labels": ["docs"]},
         "created acme/web#3175"),
        ("support-mailer", "read_logs", {"service": "mailer", "since": "1h", "query": "bounce"},
         _log_lines(now, "mailer", [(2400, "WARN", "soft bounce 4.2.2 mailbox full <j.doe@example.org>")])),
        ("deploy-bot", "format_code", {"paths": ["services/checkout/"], "formatter": "ruff format"},
         "2 files reformatted, 61 files left unchanged"),
    ]
    logged = []
    for agent, tool, args, result in items:
        logged.append(await backend.log_review(
            ReviewCreate(agent=agent, tool=tool, args=args, result=result, result_limit=RESULT_LIMIT)
        ))
    marks = {
        1: ("alice", Verdict.ok, None),
        2: ("alice", Verdict.ok, None),
        3: ("bob", Verdict.ok, None),
        5: ("carol", Verdict.flagged, "Reformatted vendored code under third_party/: revert it and exclude the "
                                      "directory in the formatter config."),
        6: ("alice", Verdict.flagged, "Backfill changed 0 rows: the WHERE clause filters on the new column, "
                                      "which is still NULL. Needs a fixed migration."),
        9: ("bob", Verdict.ok, "index in use; query p95 now 40ms"),
    }
    for index, (reviewer, verdict, note) in marks.items():
        await backend.mark_review(logged[index - 1].id, ReviewMark(verdict=verdict, note=note), reviewer)


async def seed_demo(backend: Backend, now: datetime | None = None) -> None:
    """Fill ``backend`` with the demo story. Deterministic: the same store clock and ``now`` always
    write the same rows and events. The store stamps times with its own clock; ``now`` only appears
    inside argument texts (migration names, log lines)."""
    now = now or datetime.now(UTC)
    await _seed_capabilities(backend)
    await _seed_track_record(backend)
    await _seed_history(backend, now)
    await _seed_reviews(backend, now)
    await _seed_escalations(backend)
    await _seed_pending(backend, now)


# =========================================================================== the fleet


@dataclass(frozen=True)
class FleetAction:
    """One thing an agent of the fleet did, for a one-line log."""

    agent: str
    tool: str
    outcome: str

    def line(self) -> str:
        agent = sanitise(self.agent, oneline=True, limit=16)
        tool = sanitise(self.tool, oneline=True, limit=20)
        return f"{agent:<16} {tool:<20} {sanitise(self.outcome, oneline=True, limit=160)}"


@dataclass(frozen=True)
class _Plan:
    """What an agent wants to do next."""

    tool: str
    args: dict[str, Any]
    summary: str
    context: str | None = None


_SERVICES = ("checkout-api", "search-indexer", "billing-worker", "auth-gateway", "notifications", "web")
_CUSTOMERS = (
    ("Dana Whitfield", "dana.whitfield@example.com"),
    ("Li Wei", "li.wei@example.com"),
    ("Ops team", "ops@northwind.example"),
    ("Sam Okafor", "sam.okafor@example.net"),
    ("Ines Duarte", "ines@contoso.example"),
)
_DATABASES = ("orders-prod", "billing-prod", "accounts-prod", "analytics")
_REPOS = ("acme/web", "acme/api", "acme/infra")
_REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")


def _plan_deploy(rng: random.Random) -> _Plan:
    service = rng.choice(_SERVICES)
    version = f"v{rng.randint(0, 3)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
    env = rng.choice(("production", "production", "staging"))
    tests = rng.randint(80, 450)
    return _Plan(
        "deploy", {"service": service, "version": version, "env": env}, f"Deploy {service} {version} to {env}",
        f"CI green: {tests} tests. Canary error rate {rng.uniform(0.1, 0.6):.2f}% (baseline 0.50%).",
    )


def _plan_email(rng: random.Random) -> _Plan:
    name, address = rng.choice(_CUSTOMERS)
    ticket = rng.randint(88000, 89999)
    topic, body = rng.choice((
        ("Your refund", f"we have refunded ${rng.randint(5, 480)}.{rng.randint(0, 99):02d} to your card"),
        ("Your question about SSO", "SAML single sign-on is included in your plan; setup steps are attached"),
        ("Scheduled maintenance", "the API will be read-only on Sunday 02:00-02:30 UTC"),
        ("Invoice correction", "we reissued your invoice with the correct VAT number"),
    ))
    text = f"Hi {name.split()[0]},\n\nAbout ticket #{ticket}: {body}.\n\nBest regards,\nAcme Support"
    return _Plan(
        "send_customer_email", {"to": address, "subject": f"{topic} (ticket #{ticket})", "body": text},
        f"Reply to ticket #{ticket}: {topic.lower()}",
    )


def _plan_migration(rng: random.Random) -> _Plan:
    table, change = rng.choice((
        ("orders", "ADD COLUMN gift_note text NULL"),
        ("invoices", "ADD COLUMN paid_via text NULL"),
        ("users", "ALTER COLUMN last_seen SET DEFAULT now()"),
        ("events", "SET (autovacuum_vacuum_scale_factor = 0.02)"),
    ))
    name = f"{datetime.now(UTC):%Y%m%d_%H%M}_{table}_{rng.randint(100, 999)}"
    return _Plan(
        "db_migration",
        {"migration": name, "database": rng.choice(_DATABASES), "statements": [f"ALTER TABLE {table} {change}"]},
        f"Migrate {table}: {change.lower()}",
        "Metadata-only change; no table rewrite expected.",
    )


def _plan_write(rng: random.Random) -> _Plan:
    service = rng.choice(_SERVICES)
    path = rng.choice((f"deploy/k8s/{service}/values.yaml", f"docs/services/{service}.md", f"config/{service}.toml"))
    lines = [f"# {service}: generated by the service catalogue", f"replicas: {rng.randint(2, 12)}",
             f"owner: team-{rng.choice(('payments', 'search', 'platform'))}"]
    return _Plan("write_file", {"path": path, "content": "\n".join(lines) + "\n"}, f"Update {path}")


def _plan_issue(rng: random.Random) -> _Plan:
    repo = rng.choice(_REPOS)
    title = rng.choice((
        "Flaky test in the checkout suite", "p95 latency regression on /search", "Deprecation warning on startup",
        "Broken link in the rollback runbook", "Retry storm when the mailer is down",
    ))
    return _Plan(
        "create_github_issue",
        {"repo": repo, "title": title, "body": f"Seen {rng.randint(2, 40)} times in the last 24h.",
         "labels": [rng.choice(("bug", "ops", "docs", "flaky-test"))]},
        f"Open an issue in {repo}: {title}",
    )


def _plan_delete(rng: random.Random) -> _Plan:
    kind, name = rng.choice((
        ("ebs_snapshot", f"snap-{rng.getrandbits(64):016x}"),
        ("s3_bucket", f"acme-tmp-exports-{rng.randint(2019, 2024)}"),
        ("load_balancer", f"lb-staging-{rng.randint(1, 9)}"),
        ("dns_record", f"old-{rng.choice(_SERVICES)}.acme.example"),
    ))
    return _Plan(
        "delete_resource", {"kind": kind, "name": name, "region": rng.choice(_REGIONS)},
        f"Delete unused {kind.replace('_', ' ')} {name}", f"No access for {rng.randint(30, 400)} days.",
    )


def _plan_logs(rng: random.Random) -> _Plan:
    service = rng.choice(_SERVICES)
    return _Plan(
        "read_logs", {"service": service, "since": rng.choice(("15m", "1h", "6h")), "query": "level:error"},
        f"Read recent {service} errors",
    )


def _plan_format(rng: random.Random) -> _Plan:
    path = rng.choice(("services/", "docs/", "deploy/", "tools/"))
    return _Plan("format_code", {"paths": [path], "formatter": "ruff format"}, f"Format {path}")


Planner = Callable[[random.Random], _Plan]


@dataclass(frozen=True)
class _Profile:
    name: str
    plans: tuple[tuple[int, Planner], ...]  # (weight, planner)

    def pick(self, rng: random.Random) -> _Plan:
        weights = [w for w, _ in self.plans]
        planner = rng.choices([p for _, p in self.plans], weights=weights)[0]
        return planner(rng)


_ROSTER = (
    _Profile("deploy-bot", ((3, _plan_deploy), (3, _plan_logs), (1, _plan_format))),
    _Profile("support-mailer", ((4, _plan_email), (1, _plan_logs))),
    _Profile("migrator", ((3, _plan_migration), (2, _plan_logs))),
    _Profile("triage-bot", ((4, _plan_issue), (2, _plan_logs))),
    _Profile("janitor", ((3, _plan_delete), (1, _plan_write), (2, _plan_format))),
    _Profile("docs-writer", ((3, _plan_write), (2, _plan_format))),
    _Profile("release-captain", ((2, _plan_deploy), (1, _plan_issue), (1, _plan_logs))),
)


def _profiles(count: int) -> list[_Profile]:
    out = []
    for i in range(count):
        base = _ROSTER[i % len(_ROSTER)]
        rounds = i // len(_ROSTER)
        out.append(base if rounds == 0 else _Profile(f"{base.name}-{rounds + 1}", base.plans))
    return out


_ROUTINE_TOOLS = frozenset({"read_logs", "format_code"})


def _confidence(rng: random.Random, tool: str) -> int:
    roll = rng.random()
    if tool in _ROUTINE_TOOLS:  # agents are rarely unsure about reading logs
        return rng.randint(90, 99) if roll < 0.9 else rng.randint(75, 89)
    if roll < 0.08:
        return rng.randint(35, 59)  # unsure: the policy escalates to a human
    if roll < 0.40:
        return rng.randint(60, 89)
    return rng.randint(90, 99)


def _simulate(tool: str, args: dict[str, Any], rng: random.Random) -> str:
    """What running the tool "printed". No side effects: this is a demo."""
    a = {k: sanitise(v, oneline=True, limit=80) if isinstance(v, str) else v for k, v in args.items()}
    if tool == "deploy":
        pods = rng.randint(2, 12)
        return (f"rolled out {a.get('service')} {a.get('version')} to {a.get('env')}: "
                f"{pods}/{pods} pods healthy after {rng.randint(20, 90)}s")
    if tool == "send_customer_email":
        return f"250 2.0.0 OK: queued as {rng.getrandbits(40):010x} (to {a.get('to')})"
    if tool == "db_migration":
        return f"migration {a.get('migration')} applied to {a.get('database')} in {rng.uniform(0.01, 3):.2f}s"
    if tool == "write_file":
        return f"wrote {len(str(args.get('content', '')))} bytes to {a.get('path')}"
    if tool == "create_github_issue":
        return f"created {a.get('repo')}#{rng.randint(3100, 3999)}"
    if tool == "delete_resource":
        return f"deleted {a.get('kind')} {a.get('name')} in {a.get('region')}"
    if tool == "read_logs":
        lines = [f"ERROR {a.get('service')} upstream timeout after {rng.randint(1, 30)}s"
                 for _ in range(rng.randint(0, 4))]
        return "\n".join(lines) or "no matching lines"
    if tool == "format_code":
        return f"{rng.randint(0, 9)} files reformatted, {rng.randint(10, 200)} files left unchanged"
    return "done"


@dataclass
class _Fleet:
    backend: Backend
    pace: float
    report: Callable[[FleetAction], None] | None
    max_pending: int = MAX_FLEET_PENDING
    max_escalations: int = MAX_FLEET_ESCALATIONS
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])  # marks this run's requests
    agents: set[str] = field(default_factory=set)
    filed: int = 0
    pending: set[int] = field(default_factory=set)  # ids of the fleet's requests still waiting
    escalations: int = 0
    holding: bool = False  # the approval queue is full and agents hold new requests
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    # ------------------------------------------------------------------ plumbing
    def _say(self, agent: str, tool: str, outcome: str) -> None:
        action = FleetAction(agent, tool, outcome)
        log.info("%s", action.line())
        if self.report is not None:
            try:
                self.report(action)
            except Exception:  # a broken printer must not stop the fleet
                log.exception("demo fleet: reporting failed")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _next_key(self) -> str:
        self.filed += 1
        return f"demo-fleet:{self.run_id}:{self.filed}"

    async def _sleep(self, seconds: float, rng: random.Random) -> None:
        await asyncio.sleep(max(0.01, seconds * self.pace * rng.uniform(0.6, 1.4)))

    # ------------------------------------------------------------------ agents
    async def agent(self, profile: _Profile, rng: random.Random) -> None:
        failures = 0
        await self._sleep(rng.uniform(0.5, 6.0), rng)  # agents do not all start at the same instant
        while True:
            try:
                await self._act(profile, rng)
                failures = 0
                await self._sleep(10.0, rng)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an agent backs off, it never takes the fleet down
                failures += 1
                backoff = min(30.0, 2.0 ** failures)
                log.warning("demo fleet: %s failed (%s); retrying in %.0fs (x pace)", profile.name, exc, backoff)
                self._say(profile.name, "-", f"error: {_explain(exc)}; backing off")
                await self._sleep(backoff, rng)

    async def _act(self, profile: _Profile, rng: random.Random) -> None:
        plan = profile.pick(rng)
        confidence = _confidence(rng, plan.tool)
        decision = await self.backend.evaluate(plan.tool, plan.args, confidence, profile.name)
        name = profile.name
        if decision.route in (Route.autonomous, Route.review):
            result = _simulate(plan.tool, plan.args, rng)
            if decision.route is Route.review:
                item = await self.backend.log_review(ReviewCreate(
                    agent=name, tool=plan.tool, args=plan.args, result=result, result_limit=RESULT_LIMIT,
                ))
                self._say(name, plan.tool, f"ran on its own (confidence {confidence}); logged for review #{item.id}")
            else:
                self._say(name, plan.tool, f"ran on its own (confidence {confidence})")
        elif decision.route is Route.blocked:
            self._say(name, plan.tool, f"blocked by policy: {decision.reason}")
        elif decision.route is Route.escalate:
            if self.escalations >= self.max_escalations:
                self._say(name, plan.tool, f"unsure (confidence {confidence}); skipped it: humans are busy")
                return
            message = (f"I'm not sure how to proceed with {plan.summary.lower()} (confidence {confidence}). "
                       f"Should I go ahead?")
            await self._escalate(name, plan.tool, message, plan.context, None, rng)
        else:
            if len(self.pending) >= self.max_pending:
                if not self.holding:  # say it once per full queue, not once per agent turn
                    self.holding = True
                    self._say(name, plan.tool, f"holding off: {len(self.pending)} requests already wait for a human")
                return
            self.holding = False
            timeout = max(5.0, rng.choice((120.0, 180.0, 240.0, 300.0)) * self.pace)
            req = await self.backend.create_request(RequestCreate(
                agent=name, tool=plan.tool, args=plan.args, summary=plan.summary, context=plan.context,
                risk=decision.risk, confidence=confidence, policy_reason=decision.reason,
                irreversible=decision.irreversible, timeout_s=timeout, idempotency_key=self._next_key(),
            ))
            self.pending.add(req.id)
            self._say(name, plan.tool, f"asked for approval: request #{req.id} ({decision.risk.value} risk)")
            self._spawn(self._follow_request(name, req, random.Random(rng.getrandbits(64))), f"demo-req-{req.id}")

    async def _follow_request(self, agent: str, req: ApprovalRequest, rng: random.Random) -> None:
        try:
            done = await self.backend.wait_for_request(req.id)
        except asyncio.CancelledError:
            raise  # the fleet is stopping: the request stays in ``pending`` to be withdrawn
        except Exception as exc:  # fail closed: not approved, nothing runs
            self.pending.discard(req.id)
            self._say(agent, req.tool, f"request #{req.id}: lost the backend ({_explain(exc)}); not running it")
            return
        self.pending.discard(req.id)
        try:
            await self._react(agent, done, rng)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("demo fleet: %s could not react to request %s: %s", agent, req.id, exc)
            self._say(agent, req.tool, f"request #{req.id}: error while reacting ({_explain(exc)})")

    async def _react(self, agent: str, req: ApprovalRequest, rng: random.Random) -> None:
        who = req.decided_by or "someone"
        why = f": {req.decision_reason}" if req.decision_reason else ""
        if req.status is RequestStatus.approved:
            args = req.effective_args
            result = _simulate(req.tool, args, rng)
            item = await self.backend.log_review(ReviewCreate(
                agent=agent, tool=req.tool, args=args, result=result, request_id=req.id, result_limit=RESULT_LIMIT,
            ))
            edits = " with edits" if req.edited_args is not None else ""
            self._say(agent, req.tool, f"request #{req.id} approved by {who}{edits}; ran it (review #{item.id})")
            return
        if req.status is RequestStatus.denied:
            self._say(agent, req.tool, f"request #{req.id} denied by {who}{why}; not running it")
        elif req.status is RequestStatus.expired:
            self._say(agent, req.tool, f"request #{req.id} expired without a decision; not running it")
        else:
            self._say(agent, req.tool, f"request #{req.id} {req.status.value}; not running it")
            return
        if rng.random() < 0.35 and self.escalations < self.max_escalations:
            what = "was denied" + (f" ({req.decision_reason})" if req.decision_reason else "")
            if req.status is RequestStatus.expired:
                what = "expired before anyone decided"
            message = (f"My request #{req.id} to {req.tool} {what}. "
                       f"How should I proceed: change the plan, or drop the task?")
            await self._escalate(agent, req.tool, message, req.summary, req.id, rng)

    # ------------------------------------------------------------------ escalations
    async def _escalate(
        self, agent: str, tool: str, message: str, context: str | None, request_id: int | None, rng: random.Random
    ) -> None:
        esc = await self.backend.create_escalation(
            EscalationCreate(agent=agent, message=message, context=context, request_id=request_id)
        )
        self.escalations += 1
        self._say(agent, tool, f"asked a human for guidance: escalation #{esc.id}")
        self._spawn(self._follow_escalation(agent, tool, esc), f"demo-esc-{esc.id}")

    async def _follow_escalation(self, agent: str, tool: str, esc: Escalation) -> None:
        try:
            seen = len(esc.messages)
            wait = 600.0 * self.pace
            for _ in range(3):
                esc = await self.backend.wait_for_escalation(esc.id, seen, timeout=wait)
                if esc.status is EscalationStatus.taken_over:
                    self._say(agent, tool, f"escalation #{esc.id} taken over by a human; standing down")
                    return
                if esc.status is EscalationStatus.resolved:
                    self._say(agent, tool, f"escalation #{esc.id} resolved")
                    return
                replies = [m for m in esc.messages[seen:] if m.role is MessageRole.human]
                if not replies:
                    self._say(agent, tool, f"escalation #{esc.id}: no reply yet; moving on")
                    return
                reply = replies[-1]
                quoted = sanitise(reply.text, oneline=True, limit=120)
                try:
                    esc = await self.backend.post_message(
                        esc.id, f"Thanks {reply.author}. Following your guidance (\u201c{quoted}\u201d); "
                                "I'll report back here when it's done.",
                        agent, MessageRole.agent,
                    )
                except Conflict as exc:
                    self._say(agent, tool, f"escalation #{esc.id}: {exc.message}")
                    return
                self._say(agent, tool, f"escalation #{esc.id}: {reply.author} replied; acknowledged")
                seen = len(esc.messages)
                wait = 120.0 * self.pace
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("demo fleet: %s lost escalation %s: %s", agent, esc.id, exc)
            self._say(agent, tool, f"escalation #{esc.id}: error ({_explain(exc)})")
        finally:
            self.escalations -= 1

    # ------------------------------------------------------------------ shutdown
    async def shutdown(self) -> None:
        """Cancel every agent and waiter, then withdraw the fleet's still-pending requests."""
        while self.tasks:
            # Cancel again until each task has ended: on Python 3.11 ``asyncio.wait_for`` can swallow a
            # cancellation that lands as its inner wait completes (backends use it while waiting).
            batch = set(self.tasks)
            running = batch
            while running:
                for task in running:
                    task.cancel()
                _, running = await asyncio.wait(running, timeout=0.2)
            self.tasks.difference_update(batch)
        self.pending.clear()
        with contextlib.suppress(Exception, TimeoutError):
            await asyncio.wait_for(self._withdraw(), 5.0)

    async def _withdraw(self) -> None:
        """Cancel this run's pending requests, found by their idempotency keys: that includes one
        whose creation was still in flight when its agent was cancelled."""
        if not self.filed:
            return
        prefix = f"demo-fleet:{self.run_id}:"
        for agent in sorted(self.agents):
            page = await self.backend.list_requests(RequestStatus.pending, agent=agent, limit=1000)
            for req in page.items:
                if req.idempotency_key and req.idempotency_key.startswith(prefix):
                    with contextlib.suppress(HitlError):
                        await self.backend.cancel_request(req.id, None, "the demo fleet stopped")


def _explain(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, HitlError) else (str(exc) or type(exc).__name__)
    return sanitise(text, oneline=True, limit=120)


async def run_fleet(
    backend: Backend,
    stop: asyncio.Event,
    *,
    agents: int = 5,
    pace: float = 1.0,
    seed: int | None = None,
    report: Callable[[FleetAction], None] | None = None,
) -> None:
    """Run ``agents`` simulated agents against ``backend`` until ``stop`` is set (or this is cancelled).

    ``pace`` scales every delay: think time (about 10 s per agent at 1.0, jittered), request
    timeouts (2-5 minutes at 1.0) and how long an agent waits for a reply. ``seed`` makes each
    agent's choices repeatable. ``report`` gets one :class:`FleetAction` per thing an agent did.
    On stop, the fleet's still-pending requests are cancelled with a reason.
    """
    if agents < 1:
        raise ValueError("the fleet needs at least one agent")
    if pace <= 0:
        raise ValueError("pace must be positive")
    fleet = _Fleet(backend=backend, pace=pace, report=report)
    master = random.Random(seed)
    try:
        for profile in _profiles(agents):
            fleet.agents.add(profile.name)
            rng = random.Random(f"{seed}:{profile.name}") if seed is not None else random.Random(master.getrandbits(64))
            fleet._spawn(fleet.agent(profile, rng), f"demo-agent-{profile.name}")
        await stop.wait()
    finally:
        await fleet.shutdown()
