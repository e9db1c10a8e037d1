"""The one interface the console, the SDK and the CLI use.

``LocalBackend`` wraps a store in-process; ``HttpBackend`` speaks to ``hitl serve`` (which itself
wraps a ``LocalBackend``). Swapping one for the other changes nothing else.

Identity: on a local backend the caller names the actor (``reviewer=...``); over HTTP the
server takes it from the token and the argument is ignored.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from ..models import (
    ApprovalRequest,
    Capability,
    Decision,
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
)
from ..store.base import AuditReport


class Backend(abc.ABC):
    # ----------------------------------------------------------------- identity / status
    @abc.abstractmethod
    def describe(self) -> str:
        """Where this backend points, for status lines: a store path or a server URL."""

    @property
    def read_only(self) -> bool:
        """True when the caller may look but not decide (an agent token on a server)."""
        return False

    @property
    def identity(self) -> str | None:
        """Who the backend records as the caller, when it decides that itself (a server records
        the token's name, whatever ``--as`` says); None when the caller's own name is used."""
        return None

    # ----------------------------------------------------------------- policy
    @abc.abstractmethod
    async def evaluate(
        self, tool: str, args: dict[str, Any], confidence: int | None = None, agent: str | None = None
    ) -> Decision: ...

    # ----------------------------------------------------------------- approval requests
    @abc.abstractmethod
    async def create_request(self, data: RequestCreate) -> ApprovalRequest: ...

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
    ) -> Page: ...

    @abc.abstractmethod
    async def decide(self, request_id: int, decision: DecisionIn, reviewer: str | None = None) -> ApprovalRequest: ...

    @abc.abstractmethod
    async def cancel_request(
        self, request_id: int, actor: str | None = None, reason: str | None = None
    ) -> ApprovalRequest: ...

    @abc.abstractmethod
    async def wait_for_request(self, request_id: int, timeout: float | None = None) -> ApprovalRequest:
        """Block until the request is no longer pending, driven by the change feed.

        At the request's own deadline the request is expired (exactly once, in the store) and
        returned as ``expired``. When ``timeout`` passes first the still-pending request is
        returned. Any failure raises (``StoreUnavailable``): callers treat it as not approved.
        """

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
    async def post_message(
        self, escalation_id: int, text: str, author: str | None = None, role: MessageRole = MessageRole.human
    ) -> Escalation: ...

    @abc.abstractmethod
    async def set_escalation_status(
        self, escalation_id: int, status: EscalationStatus, actor: str | None = None, note: str | None = None
    ) -> Escalation: ...

    @abc.abstractmethod
    async def wait_for_escalation(
        self, escalation_id: int, seen_messages: int, timeout: float | None = None
    ) -> Escalation:
        """Block until the thread has a human message beyond ``seen_messages`` or leaves the
        open/answered states (taken over, resolved), or the timeout passes."""

    # ----------------------------------------------------------------- review
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
    ) -> Page: ...

    @abc.abstractmethod
    async def mark_review(self, review_id: int, mark: ReviewMark, reviewer: str | None = None) -> ReviewItem: ...

    # ----------------------------------------------------------------- capabilities / rules
    @abc.abstractmethod
    async def list_capabilities(self) -> list[Capability]: ...

    @abc.abstractmethod
    async def get_capability(self, tool: str, agent: str | None = None) -> Capability: ...

    @abc.abstractmethod
    async def put_capability(
        self, cap: Capability, actor: str | None = None, reason: str | None = None
    ) -> Capability: ...

    @abc.abstractmethod
    async def set_stage(
        self,
        tool: str,
        stage: Stage,
        actor: str | None = None,
        reason: str | None = None,
        *,
        force: bool = False,
        agent: str | None = None,
    ) -> Capability: ...

    @abc.abstractmethod
    async def list_rules(self) -> list[Rule]: ...

    @abc.abstractmethod
    async def set_rules(self, rules: list[Rule], actor: str | None = None, reason: str | None = None) -> list[Rule]: ...

    # ----------------------------------------------------------------- change feed / audit
    @abc.abstractmethod
    async def last_seq(self) -> int: ...

    @abc.abstractmethod
    async def events_after(self, seq: int, limit: int = 1000) -> list[Event]: ...

    @abc.abstractmethod
    def subscribe(self, after_seq: int | None = None, *, reconnect: bool = True) -> AsyncIterator[Event]:
        """Every event after ``after_seq`` (default: from now on), in order, none twice, live.

        ``reconnect``: ride out a lost connection (a remote backend reconnects and resumes for a
        while); False raises at the first loss, for a caller with a reconnect loop of its own that
        shows the link's state (the console)."""

    @abc.abstractmethod
    async def verify_audit(self) -> AuditReport: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Backend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
