"""Domain model: every object that crosses a boundary (store, backend, HTTP, CLI) is one of these.

Records (``ApprovalRequest``, ``Escalation``, ``ReviewItem``, ``Capability``, ``Event``) are what
the store returns.  Inputs (``RequestCreate``, ``DecisionIn``, ...) are what callers send; they
validate strictly (unknown fields are rejected) so bad input gets a clear error and writes nothing.

Start-up time (every CLI call and the Claude Code hook import this module): each model builds its
validator on first use (``defer_build``), and annotations are real objects, not strings (no
``from __future__ import annotations``), so defining a model evaluates nothing: a name used before
its class exists needs quotes (``-> "Thresholds"``).
"""

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_NAME = 200
MAX_TEXT = 100_000
DEFAULT_RESULT_LIMIT = 500

#: every model builds its validator on first use, not at import: a command builds only the few it
#: touches (start-up time: the Claude Code hook and shell gates start a process per call)
_LAZY = ConfigDict(defer_build=True)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Risk(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


RISK_ORDER = {Risk.low: 0, Risk.medium: 1, Risk.high: 2, Risk.critical: 3}


class RequestStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    denied = "denied"
    expired = "expired"
    cancelled = "cancelled"


TERMINAL_STATUSES = frozenset(
    {RequestStatus.approved, RequestStatus.denied, RequestStatus.expired, RequestStatus.cancelled}
)


class Stage(StrEnum):
    disabled = "disabled"
    approval = "approval"
    autonomous = "autonomous"


STAGE_ORDER = [Stage.disabled, Stage.approval, Stage.autonomous]


class Route(StrEnum):
    """What the policy says should happen to one tool call."""

    autonomous = "autonomous"
    review = "autonomous_review"  # run now, log for after-the-fact review
    approval = "approval"
    escalate = "escalate"
    blocked = "blocked"


class EscalationStatus(StrEnum):
    open = "open"
    answered = "answered"
    taken_over = "taken_over"
    resolved = "resolved"


class MessageRole(StrEnum):
    agent = "agent"
    human = "human"


class Verdict(StrEnum):
    ok = "ok"
    flagged = "flagged"


class RuleEffect(StrEnum):
    allow = "allow"
    ask = "ask"
    deny = "deny"


class _Strict(BaseModel):
    """Base of every input model: unknown fields are errors; text must be valid Unicode."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, defer_build=True)

    @model_validator(mode="after")
    def _valid_unicode(self) -> "_Strict":
        for name, value in self.__dict__.items():
            if isinstance(value, str):
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError(f"{name}: text contains an unpaired surrogate (not valid Unicode)") from None
        return self


Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
Confidence = Annotated[int, Field(ge=0, le=100)]
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]


def _check_json_object(value: dict[str, Any]) -> dict[str, Any]:
    # Round-trip through JSON: rejects NaN/inf, non-string keys, non-JSON values, integers no
    # store can hold and unpaired surrogates (not valid UTF-8) early, before anything is written.
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"arguments must be a JSON object: {exc}") from None
    return value


# --------------------------------------------------------------------------- thresholds


class Thresholds(_Strict):
    """Confidence >= ``autonomous`` runs, >= ``approval`` needs approval, below escalates."""

    autonomous: Confidence = 90
    approval: Confidence = 60

    @model_validator(mode="after")
    def _ordered(self) -> "Thresholds":
        if self.approval > self.autonomous:
            raise ValueError("approval threshold must not exceed the autonomous threshold")
        return self


# --------------------------------------------------------------------------- approval requests


class ApprovalVote(BaseModel):
    model_config = _LAZY

    reviewer: str
    decision: Literal["approve", "deny"]
    reason: str | None = None
    at: datetime
    edited_args: dict[str, Any] | None = None


class ApprovalRequest(BaseModel):
    model_config = _LAZY

    id: int
    agent: str
    tool: str
    args: dict[str, Any]
    summary: str | None = None
    context: str | None = None
    risk: Risk = Risk.medium
    confidence: int | None = None
    policy_reason: str | None = None
    irreversible: bool = False
    status: RequestStatus = RequestStatus.pending
    created_at: datetime
    expires_at: datetime | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision_reason: str | None = None
    edited_args: dict[str, Any] | None = None
    idempotency_key: str | None = None
    required_approvals: int = 1
    approvals: list[ApprovalVote] = Field(default_factory=list)

    @property
    def is_pending(self) -> bool:
        return self.status is RequestStatus.pending

    @property
    def effective_args(self) -> dict[str, Any]:
        """The arguments the tool should run with: the reviewer's edit when there is one."""
        return self.edited_args if self.edited_args is not None else self.args

    @property
    def approval_count(self) -> int:
        return sum(1 for v in self.approvals if v.decision == "approve")


class RequestCreate(_Strict):
    agent: Name
    tool: Name
    args: dict[str, Any] = Field(default_factory=dict)
    summary: Text | None = None
    context: Text | None = None
    risk: Risk = Risk.medium
    confidence: Confidence | None = None
    policy_reason: Text | None = None
    irreversible: bool = False
    timeout_s: Annotated[float, Field(gt=0, le=30 * 24 * 3600)] | None = 3600.0
    idempotency_key: Annotated[str, Field(min_length=1, max_length=MAX_NAME)] | None = None
    #: when the request ``idempotency_key`` filed expired or was cancelled: file a new one, which
    #: takes the key over (a re-run CI job asks again). Default: answer with that request, so a
    #: caller collecting a decision by filing again learns it expired.
    renew_expired: bool = False
    required_approvals: Annotated[int, Field(ge=1, le=10)] = 1

    _args = field_validator("args")(_check_json_object)


class DecisionIn(_Strict):
    decision: Literal["approve", "deny"]
    reason: Text | None = None
    edited_args: dict[str, Any] | None = None

    @field_validator("edited_args")
    @classmethod
    def _edited(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if v is None else _check_json_object(v)

    @model_validator(mode="after")
    def _deny_has_no_edit(self) -> "DecisionIn":
        if self.decision == "deny" and self.edited_args is not None:
            raise ValueError("a denial cannot carry edited arguments")
        return self


# --------------------------------------------------------------------------- escalations


class EscalationMessage(BaseModel):
    model_config = _LAZY

    author: str
    role: MessageRole
    text: str
    at: datetime


class Escalation(BaseModel):
    model_config = _LAZY

    id: int
    agent: str
    message: str
    context: str | None = None
    status: EscalationStatus = EscalationStatus.open
    created_at: datetime
    updated_at: datetime
    messages: list[EscalationMessage] = Field(default_factory=list)
    request_id: int | None = None  # set when a confidence plan escalated a specific action

    @property
    def last_human_message(self) -> EscalationMessage | None:
        for m in reversed(self.messages):
            if m.role is MessageRole.human:
                return m
        return None


class EscalationCreate(_Strict):
    agent: Name
    message: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    context: Text | None = None
    request_id: RowId | None = None


class MessageIn(_Strict):
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]


# --------------------------------------------------------------------------- after-the-fact review


class ReviewItem(BaseModel):
    model_config = _LAZY

    id: int
    agent: str
    tool: str
    args: dict[str, Any]
    result: str
    result_length: int
    created_at: datetime
    reviewed: bool = False
    verdict: Verdict | None = None
    reviewer: str | None = None
    reviewed_at: datetime | None = None
    note: str | None = None
    request_id: RowId | None = None

    @property
    def truncated(self) -> bool:
        return self.result_length > len(self.result)


class ReviewCreate(_Strict):
    agent: Name
    tool: Name
    args: dict[str, Any] = Field(default_factory=dict)
    result: str = ""
    result_limit: Annotated[int, Field(ge=0, le=1_000_000)] = DEFAULT_RESULT_LIMIT
    request_id: RowId | None = None

    _args = field_validator("args")(_check_json_object)


class ReviewMark(_Strict):
    verdict: Verdict
    note: Text | None = None


# --------------------------------------------------------------------------- capabilities and rules


class StageChange(BaseModel):
    model_config = _LAZY

    at: datetime
    actor: str
    from_stage: Stage | None
    to_stage: Stage
    reason: str | None = None
    forced: bool = False


class Capability(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    tool: Name
    stage: Stage = Stage.approval
    description: str | None = None
    always_approval: bool = False  # never autonomous unless a forced, audited override
    confidence_routed: bool = False  # autonomous only with a confidence >= the threshold
    review_after: bool = False  # actions that run are logged for after-the-fact review
    irreversible: bool = False
    risk: Risk = Risk.medium
    thresholds: Thresholds | None = None
    timeout_s: Annotated[float, Field(gt=0)] | None = None
    agent: Name | None = None  # scope: applies only to this agent when set
    history: list[StageChange] = Field(default_factory=list)


class Rule(BaseModel):
    """A permission rule like Claude Code's: ``Bash(git push:*)`` with allow / ask / deny."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    pattern: Annotated[str, Field(min_length=1, max_length=1000)]
    effect: RuleEffect
    agent: Name | None = None
    reason: str | None = None
    source: str | None = None


class PolicySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    unknown_stage: Stage = Stage.approval
    thresholds: Thresholds = Field(default_factory=Thresholds)
    default_timeout_s: Annotated[float, Field(gt=0)] = 3600.0


class Decision(BaseModel):
    """The policy's verdict on one call, with the reason in a reviewer's words."""

    model_config = _LAZY

    route: Route
    reason: str
    stage: Stage | None = None
    rule: str | None = None
    review_after: bool = False
    irreversible: bool = False
    risk: Risk = Risk.medium
    timeout_s: float | None = None


# --------------------------------------------------------------------------- API tokens


class TokenRole(StrEnum):
    agent = "agent"  # create requests, escalations, review items; read its own; wait
    reviewer = "reviewer"  # read all, decide, reply, mark reviews
    admin = "admin"  # also capabilities, rules and tokens


class TokenInfo(BaseModel):
    """A bearer token's record. The secret itself is never stored, only its SHA-256."""

    model_config = _LAZY

    name: str
    role: TokenRole
    created_at: datetime
    created_by: str | None = None
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


# --------------------------------------------------------------------------- events


class EventKind(StrEnum):
    request_created = "request.created"
    request_voted = "request.voted"  # a quorum vote that did not (yet) settle the request
    request_decided = "request.decided"
    request_expired = "request.expired"
    request_cancelled = "request.cancelled"
    escalation_opened = "escalation.opened"
    escalation_message = "escalation.message"
    escalation_status = "escalation.status"
    review_logged = "review.logged"
    review_marked = "review.marked"
    capability_changed = "capability.changed"
    stage_changed = "capability.stage"
    rules_changed = "rules.changed"
    token_created = "token.created"
    token_revoked = "token.revoked"


class Event(BaseModel):
    model_config = _LAZY

    seq: int
    at: datetime
    kind: EventKind
    subject: str
    actor: str
    payload: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str = ""
    hash: str = ""


class Page(BaseModel):
    """One slice of a long list plus the total, so a virtual list can size its scrollbar."""

    model_config = _LAZY

    items: list[Any]
    total: int
