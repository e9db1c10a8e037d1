"""Approval requests: file, list, read, decide, cancel, and wait (long-poll) for a decision."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from ...errors import Forbidden
from ...models import ApprovalRequest, DecisionIn, RequestCreate, RequestStatus
from ..auth import ANY_ROLE, FILERS, STAFF, Caller
from ..deps import MAX_POLL_S, BackendDep, SettingsDep, unless_disconnected
from ..filing import file_request
from ..grants import Writer, WriterCaller, require_writer
from ..schemas import MAX_ID, CancelIn, RequestPage

router = APIRouter(prefix="/v1/requests", tags=["requests"])

StatusFilter = Literal["pending", "approved", "denied", "expired", "cancelled", "all"]
RequestId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.post("", response_model=ApprovalRequest, summary="File an approval request (idempotent with a key)")
async def create_request(body: RequestCreate, writer: WriterCaller, request: Request) -> Response:
    """An agent token files under its own name, whatever ``agent`` says; an admin files for anyone.

    The hot path of the server: the token's grant is remembered and re-checked inside the write's
    own transaction (``grants``), and the answer is serialised once, straight from the model. The
    ordinary case never gets here: ``filing.FilingFastLane`` answers it the same way, cheaper."""
    ident = await require_writer(request, writer, *FILERS, action="filing a request")
    state = request.app.state
    answer = await file_request(state.backend, state.grants, Writer(ident, writer.grant), body)
    return Response(answer, media_type="application/json")


@router.get("", response_model=RequestPage, summary="List requests (pending by default)")
async def list_requests(
    ident: Caller,
    backend: BackendDep,
    status: Annotated[StatusFilter, Query(description="a status, or 'all'")] = "pending",
    agent: Annotated[str | None, Query(max_length=200)] = None,
    tool: Annotated[str | None, Query(max_length=200)] = None,
    search: Annotated[str | None, Query(max_length=1000)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RequestPage:
    if ident.is_agent:
        if agent is not None:
            ident.require_own(agent, f"agent {agent!r}'s list")
        agent = ident.name
    wanted = None if status == "all" else RequestStatus(status)
    page = await backend.list_requests(wanted, agent=agent, tool=tool, search=search, offset=offset, limit=limit)
    return RequestPage(items=page.items, total=page.total)


async def _readable(backend: BackendDep, ident: Caller, request_id: int) -> ApprovalRequest:
    ident.require(*ANY_ROLE, action="reading a request")
    req = await backend.get_request(request_id)
    ident.require_own(req.agent, f"request {request_id}")
    return req


@router.get("/{request_id}", response_model=ApprovalRequest, summary="Read one request")
async def get_request(request_id: RequestId, ident: Caller, backend: BackendDep) -> ApprovalRequest:
    return await _readable(backend, ident, request_id)


@router.post(
    "/{request_id}/decision",
    response_model=ApprovalRequest,
    summary="Approve or deny (the reviewer is the token's name)",
    responses={409: {"description": "already decided (says by whom and when), or a repeated vote"}},
)
async def decide(
    request_id: RequestId, body: DecisionIn, ident: Caller, backend: BackendDep, settings: SettingsDep
) -> ApprovalRequest:
    ident.require(*STAFF, action="deciding a request")
    if settings.serve.prevent_self_review:
        req = await backend.get_request(request_id)
        if req.agent == ident.name and req.is_pending:
            raise Forbidden(
                f"{ident.name} filed request {request_id} and cannot decide it (self-review is not allowed)",
                id=request_id,
            )
    return await backend.decide(request_id, body, ident.name)


@router.post("/{request_id}/cancel", response_model=ApprovalRequest, summary="Withdraw a pending request")
async def cancel(request_id: RequestId, body: CancelIn, ident: Caller, backend: BackendDep) -> ApprovalRequest:
    await _readable(backend, ident, request_id)
    return await backend.cancel_request(request_id, ident.name, body.reason)


@router.get(
    "/{request_id}/wait",
    response_model=ApprovalRequest,
    summary="Long-poll: answer once the request is decided, or when `timeout` passes (then still pending)",
)
async def wait(
    request_id: RequestId,
    request: Request,
    ident: Caller,
    backend: BackendDep,
    timeout: Annotated[float, Query(ge=0, le=3600, description=f"seconds; at most {MAX_POLL_S:.0f} are used")] = 30,
) -> ApprovalRequest | Response:
    await _readable(backend, ident, request_id)
    result = await unless_disconnected(request, backend.wait_for_request(request_id, min(timeout, MAX_POLL_S)))
    return Response(status_code=204) if result is None else result
