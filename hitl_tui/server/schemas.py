"""Wire models of the ``/v1`` API that ``hitl_tui.models`` does not already define.

Shared by the server (to validate bodies and document the API) and ``HttpBackend`` (to build
bodies and validate answers). Inputs reject unknown fields, like every input model.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..models import (
    MAX_NAME,
    MAX_TEXT,
    ApprovalRequest,
    Capability,
    Escalation,
    EscalationStatus,
    ReviewItem,
    Rule,
    Stage,
    TokenInfo,
    TokenRole,
)

#: SQLite and PostgreSQL integers are 64-bit: larger ids are refused as input, not stored
MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvaluateIn(_In):
    tool: Name
    args: dict[str, Any] = Field(default_factory=dict)
    confidence: Annotated[int, Field(ge=0, le=100)] | None = None
    agent: Name | None = None

    @field_validator("args")
    @classmethod
    def _json_args(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"arguments must be a JSON object: {exc}") from None
        return value


class CancelIn(_In):
    reason: Text | None = None


class EscalationStatusIn(_In):
    status: EscalationStatus
    note: Text | None = None


class CapabilityIn(_In):
    capability: Capability
    reason: Text | None = None


class StageIn(_In):
    tool: Name
    stage: Stage
    reason: Text | None = None
    force: bool = False
    agent: Name | None = None


class RulesIn(_In):
    rules: Annotated[list[Rule], Field(max_length=10_000)]
    reason: Text | None = None


class TokenIn(_In):
    name: Name
    role: TokenRole


class TokenCreated(BaseModel):
    """The secret appears here once and nowhere else."""

    token: str
    info: TokenInfo


class Whoami(BaseModel):
    name: str
    role: TokenRole


class Health(BaseModel):
    status: str


class Seq(BaseModel):
    seq: int


class AuditProblem(BaseModel):
    seq: int
    problem: str


class AuditOut(BaseModel):
    ok: bool
    checked: int
    problems: list[AuditProblem] = Field(default_factory=list)


class RequestPage(BaseModel):
    items: list[ApprovalRequest]
    total: int


class EscalationPage(BaseModel):
    items: list[Escalation]
    total: int


class ReviewPage(BaseModel):
    items: list[ReviewItem]
    total: int


def check_id(value: int | None, what: str) -> int | None:
    """Ids inside bodies (``request_id``) get the same 64-bit bound as ids in paths."""
    if value is not None and not 1 <= value <= MAX_ID:
        from ..errors import InvalidInput

        raise InvalidInput(f"{what} must be between 1 and {MAX_ID}")
    return value


__all__ = [
    "MAX_ID",
    "AuditOut",
    "CancelIn",
    "CapabilityIn",
    "EscalationPage",
    "EscalationStatusIn",
    "EvaluateIn",
    "Health",
    "Id",
    "RequestPage",
    "ReviewPage",
    "RulesIn",
    "Seq",
    "StageIn",
    "TokenCreated",
    "TokenIn",
    "Whoami",
    "check_id",
]
