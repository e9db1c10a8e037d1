"""A tool's record, from the backend's public list calls: approved, denied, flagged, time to decide.

Counts use each list's ``total`` (one row fetched); the median time to decide covers the most
recent decisions only (``RECENT`` of each outcome), which is what a reviewer weighs anyway.
"""

from __future__ import annotations

from ..backend.base import Backend
from ..models import ApprovalRequest, RequestStatus
from .adapters import ToolRecord

RECENT = 50


def _decide_seconds(req: ApprovalRequest) -> float | None:
    if req.decided_at is None:
        return None
    return (req.decided_at - req.created_at).total_seconds()


async def tool_record(backend: Backend, tool: str) -> ToolRecord:
    approved = await backend.list_requests(RequestStatus.approved, tool=tool, limit=RECENT)
    denied = await backend.list_requests(RequestStatus.denied, tool=tool, limit=RECENT)
    flagged = await backend.list_reviews(tool=tool, verdict="flagged", limit=1)
    durations = [d for r in [*approved.items, *denied.items] if (d := _decide_seconds(r)) is not None]
    return ToolRecord(
        approved=approved.total,
        denied=denied.total,
        flagged=flagged.total,
        median_decide_s=ToolRecord.median_of(durations),
    )
