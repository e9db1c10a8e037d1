"""The store interface: every durable operation of the model, implemented by SQLite and PostgreSQL.

Rules every implementation keeps (the conformance suite in ``tests/store_conformance.py`` checks
them against each):

* each write appends exactly one event per change in the same transaction (no gaps on commit),
  and each event carries the hash of the previous one (the audit chain);
* exactly one decision per request: deciding a request that is no longer pending raises
  :class:`~hitl_tui.errors.Conflict` naming who decided and when; a retry of the same decision
  (the same edit too) by the same reviewer returns the stored result without writing anything;
* a pending request past its deadline becomes ``expired`` exactly once;
* creating a request twice with the same idempotency key returns the first.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..models import (
    ApprovalRequest,
    Capability,
    DecisionIn,
    Escalation,
    EscalationCreate,
    EscalationStatus,
    Event,
    MessageRole,
    Page,
    RequestCreate,
    RequestStatus,
    ReviewCreate,
    ReviewItem,
    ReviewMark,
    Rule,
    Stage,
    TokenInfo,
    TokenRole,
)

GENESIS_HASH = "0" * 64


def event_hash(prev_hash: str, seq: int, at: float, kind: str, subject: str, actor: str, payload: str) -> str:
    """The audit chain: each event's hash covers its own fields and the previous hash."""
    h = hashlib.sha256()
    for part in (prev_hash, str(seq), repr(float(at)), kind, subject, actor, payload):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """A bearer token as the server found it: its SHA-256 and the name and role it grants. A
    write given one (``create_request(..., token=grant)``) first checks, in its own transaction,
    that this token is still active with this name and role, and refuses with ``Unauthorized``
    otherwise: a token revoked before the write began is refused, whichever process or replica
    revoked it, without a separate lookup per request."""

    token_hash: str
    name: str
    role: TokenRole


class LazyEvent:
    """An event as the change feed's fan-out needs it: sequence number, kind and subject at once,
    the full :class:`Event` (payload parsed) only when a consumer wants it, and then only once."""

    __slots__ = ("_event", "_make", "kind", "seq", "subject")

    def __init__(self, seq: int, kind: str, subject: str, make: Callable[[], Event]) -> None:
        self.seq = seq
        self.kind = kind
        self.subject = subject
        self._make: Callable[[], Event] | None = make
        self._event: Event | None = None

    @classmethod
    def of(cls, ev: Event) -> LazyEvent:
        out = cls(ev.seq, ev.kind.value, ev.subject, lambda: ev)
        out._event = ev
        return out

    def event(self) -> Event:
        if self._event is None:
            assert self._make is not None
            self._event = self._make()
            self._make = None
        return self._event


@dataclass
class AuditReport:
    ok: bool
    checked: int
    problems: list[tuple[int, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "problems": [{"seq": s, "problem": p} for s, p in self.problems],
        }


class Store(abc.ABC):
    """Async store. Implementations own SQL and transactions and nothing else."""

    #: where the data lives, for status lines ("sqlite:///path", "postgresql://host/db")
    url: str = ""

    def clock(self) -> datetime:
        """The store's notion of now (tests replace it with a fixed clock)."""
        return datetime.now(UTC)

    async def check(self) -> None:
        """Raise ``StoreUnavailable`` when the store has gone away (file deleted, server down)."""
        return None

    # ----------------------------------------------------------------- approval requests
    @abc.abstractmethod
    async def create_request(
        self, data: RequestCreate, *, actor: str | None = None, token: TokenGrant | None = None
    ) -> ApprovalRequest:
        """File ``data`` (or return the request its idempotency key already filed). With ``token``,
        only while that token is active (see :class:`TokenGrant`), checked in the same transaction."""

    async def create_request_json(
        self, data: RequestCreate, *, actor: str | None = None, token: TokenGrant | None = None
    ) -> tuple[ApprovalRequest, str]:
        """``create_request``, with the request's JSON (``model_dump_json()``) for an answer that
        would serialise it: a store that builds that text anyway hands it over."""
        req = await self.create_request(data, actor=actor, token=token)
        return req, req.model_dump_json()

    @abc.abstractmethod
    async def get_request(self, request_id: int) -> ApprovalRequest: ...

    @abc.abstractmethod
    async def list_requests(
        self,
        status: RequestStatus | None = RequestStatus.pending,
        *,
        agent: str | None = None,
        tool: str | None = None,
        search: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> Page:
        """Newest and riskiest first. ``total`` counts every match, not just this page."""

    @abc.abstractmethod
    async def decide(self, request_id: int, decision: DecisionIn, reviewer: str) -> ApprovalRequest: ...

    @abc.abstractmethod
    async def cancel_request(self, request_id: int, actor: str, reason: str | None = None) -> ApprovalRequest: ...

    @abc.abstractmethod
    async def expire_due(self, now: datetime | None = None) -> list[ApprovalRequest]:
        """Expire every pending request past its deadline; returns those this call expired."""

    # ----------------------------------------------------------------- escalations
    @abc.abstractmethod
    async def create_escalation(self, data: EscalationCreate) -> Escalation: ...

    @abc.abstractmethod
    async def get_escalation(self, escalation_id: int) -> Escalation: ...

    @abc.abstractmethod
    async def list_escalations(
        self, status: EscalationStatus | None = None, *, agent: str | None = None, offset: int = 0, limit: int = 100
    ) -> Page: ...

    @abc.abstractmethod
    async def post_message(self, escalation_id: int, text: str, author: str, role: MessageRole) -> Escalation:
        """Append to the thread. A human message marks an open thread ``answered``."""

    @abc.abstractmethod
    async def set_escalation_status(
        self, escalation_id: int, status: EscalationStatus, actor: str, note: str | None = None
    ) -> Escalation: ...

    # ----------------------------------------------------------------- after-the-fact review
    @abc.abstractmethod
    async def log_review(self, data: ReviewCreate) -> ReviewItem: ...

    @abc.abstractmethod
    async def get_review(self, review_id: int) -> ReviewItem: ...

    @abc.abstractmethod
    async def list_reviews(
        self,
        reviewed: bool | None = None,
        *,
        tool: str | None = None,
        agent: str | None = None,
        since: datetime | None = None,
        verdict: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> Page:
        """Unreviewed first, then newest first."""

    @abc.abstractmethod
    async def mark_review(self, review_id: int, mark: ReviewMark, reviewer: str) -> ReviewItem: ...

    # ----------------------------------------------------------------- capabilities and rules
    @abc.abstractmethod
    async def list_capabilities(self) -> list[Capability]: ...

    @abc.abstractmethod
    async def get_capability(self, tool: str, agent: str | None = None) -> Capability: ...

    @abc.abstractmethod
    async def put_capability(self, cap: Capability, actor: str, reason: str | None = None) -> Capability:
        """Create or update a capability's settings. A changed stage is recorded in its history."""

    @abc.abstractmethod
    async def set_stage(
        self,
        tool: str,
        stage: Stage,
        actor: str,
        reason: str | None = None,
        *,
        force: bool = False,
        agent: str | None = None,
    ) -> Capability:
        """Refuses (Conflict) to make an ``always_approval`` capability autonomous unless forced."""

    @abc.abstractmethod
    async def list_rules(self) -> list[Rule]: ...

    @abc.abstractmethod
    async def set_rules(self, rules: list[Rule], actor: str, reason: str | None = None) -> list[Rule]: ...

    # ----------------------------------------------------------------- API tokens
    @abc.abstractmethod
    async def create_token(self, name: str, role: TokenRole, token_hash: str, actor: str) -> TokenInfo:
        """Conflict when an active token already has that name."""

    @abc.abstractmethod
    async def list_tokens(self) -> list[TokenInfo]: ...

    @abc.abstractmethod
    async def revoke_token(self, name: str, actor: str) -> TokenInfo: ...

    @abc.abstractmethod
    async def find_token(self, token_hash: str) -> TokenInfo | None:
        """The active token with this hash, or None (unknown or revoked)."""

    # ----------------------------------------------------------------- events
    def recent_events(self, after_seq: int) -> list[LazyEvent] | None:
        """Events after ``after_seq`` this process committed itself and still holds in memory, when
        they run on from ``after_seq + 1`` without a gap (up to the first gap), else None: then
        read :meth:`events_after`. Synchronous and cheap; the event hub asks it first."""
        return None

    @abc.abstractmethod
    async def events_after(self, seq: int, limit: int = 1000) -> list[Event]: ...

    @abc.abstractmethod
    async def last_seq(self) -> int: ...

    @abc.abstractmethod
    async def wait_for_change(self, after_seq: int, timeout: float) -> int:
        """Return the newest sequence number once it is greater than ``after_seq`` or the
        timeout passes, whichever comes first. Costs almost nothing while idle."""

    @abc.abstractmethod
    async def verify_audit(self) -> AuditReport: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
