"""Named errors shared by the store, the backends, the server and the CLI.

Each carries what a caller needs to explain itself: a conflict says who decided and when.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


class HitlError(Exception):
    """Base class. ``code`` maps to an HTTP status on the server and an exit code in the CLI."""

    code = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": type(self).__name__, "message": self.message}
        for k, v in self.details.items():
            out[k] = v.isoformat() if isinstance(v, datetime) else v
        return out


class InvalidInput(HitlError):
    code = 422


class NotFound(HitlError):
    code = 404


class Conflict(HitlError):
    """A second or late decision, a duplicate vote, a stage change that is not allowed."""

    code = 409


class Forbidden(HitlError):
    code = 403


class Unauthorized(HitlError):
    code = 401


class StoreUnavailable(HitlError):
    """The store or server cannot be reached or failed: callers must fail closed."""

    code = 503


def decided_conflict(status: str, decided_by: str | None, decided_at: datetime | None, rid: int) -> Conflict:
    if status == "expired":
        when = decided_at.isoformat(timespec="seconds") if decided_at else "its deadline"
        msg = f"request {rid} expired at {when}; it can no longer be decided"
    elif status == "cancelled":
        msg = f"request {rid} was cancelled by {decided_by or 'the agent'}"
    else:
        when = decided_at.isoformat(timespec="seconds") if decided_at else "earlier"
        msg = f"request {rid} was already {status} by {decided_by or 'someone'} at {when}"
    return Conflict(msg, id=rid, status=status, decided_by=decided_by, decided_at=decided_at)
