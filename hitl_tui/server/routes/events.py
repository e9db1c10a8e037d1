"""The change feed (the event log) as JSON pages and as a live Server-Sent Events stream, and
verification of its hash chain.

The log pages and the audit are for reviewers and admins: events carry every agent's data. Any
token may follow the live stream, scoped to what it may read (an agent sees only events of its
own requests, escalations and review items, and capability and rule changes), and may ask for
the newest sequence number (a position to follow from, no data), so a console opened with an
agent token is live rather than stuck "disconnected"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from sse_starlette.sse import EventSourceResponse

from ...errors import InvalidInput
from ...models import Event
from ..auth import ANY_ROLE, STAFF, Caller
from ..deps import BackendDep
from ..schemas import MAX_ID, AuditOut, Seq
from ..sse import PING_S, event_stream

router = APIRouter(prefix="/v1", tags=["events and audit"])


@router.get("/events/last", response_model=Seq, summary="The newest event's sequence number")
async def last_seq(ident: Caller, backend: BackendDep) -> Seq:
    ident.require(*ANY_ROLE, action="reading the event position")
    return Seq(seq=await backend.last_seq())


@router.get("/events/log", response_model=list[Event], summary="Events after a sequence number, oldest first")
async def events_after(
    ident: Caller,
    backend: BackendDep,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> list[Event]:
    ident.require(*STAFF, action="reading the event log")
    return await backend.events_after(after, limit)


@router.get(
    "/events",
    summary="Live stream (SSE): `id: seq`, `event: kind`, `data: event JSON`; resume with Last-Event-ID",
    response_class=EventSourceResponse,
)
async def stream(
    request: Request,
    ident: Caller,
    backend: BackendDep,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID, description="start after this seq (default: now)")] = None,
    last_event_id: Annotated[str | None, Header(max_length=30)] = None,
) -> EventSourceResponse:
    """A reconnecting client sends ``Last-Event-ID`` (it wins over ``after``) and receives every
    event after it that the token may see, none twice."""
    ident.require(*ANY_ROLE, action="reading the event stream")
    if last_event_id is not None and last_event_id.strip():
        try:
            after = int(last_event_id)
        except ValueError:
            raise InvalidInput("Last-Event-ID must be an event sequence number") from None
        if not 0 <= after <= MAX_ID:
            raise InvalidInput("Last-Event-ID is out of range")
    if after is None:
        after = await backend.last_seq()
    visible = ident.may_see if ident.is_agent else None
    return EventSourceResponse(event_stream(backend, after, visible), ping=PING_S, send_timeout=30)


@router.get("/audit/verify", response_model=AuditOut, summary="Check the audit log's hash chain")
async def verify_audit(ident: Caller, backend: BackendDep) -> AuditOut:
    ident.require(*STAFF, action="verifying the audit log")
    report = await backend.verify_audit()
    return AuditOut.model_validate(report.to_dict())
