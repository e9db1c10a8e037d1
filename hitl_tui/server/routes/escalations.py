"""Escalations: an agent asks a human; reviewers reply, take over or resolve; the agent waits."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from ...models import Escalation, EscalationCreate, EscalationStatus, MessageIn, MessageRole
from ..auth import ADMIN, ANY_ROLE, FILERS, STAFF, Caller, Identity
from ..deps import MAX_POLL_S, BackendDep, unless_disconnected
from ..schemas import MAX_ID, EscalationPage, EscalationStatusIn, check_id

router = APIRouter(prefix="/v1/escalations", tags=["escalations"])

EscalationId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.post("", response_model=Escalation, summary="Open an escalation thread")
async def create_escalation(body: EscalationCreate, ident: Caller, backend: BackendDep) -> Escalation:
    """An agent token opens threads under its own name, whatever ``agent`` says."""
    ident.require(*FILERS, action="opening an escalation")
    check_id(body.request_id, "request_id")
    if ident.is_agent:
        body = body.model_copy(update={"agent": ident.name})
    return await backend.create_escalation(body)


@router.get("", response_model=EscalationPage, summary="List escalations")
async def list_escalations(
    ident: Caller,
    backend: BackendDep,
    status: EscalationStatus | None = None,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EscalationPage:
    if ident.is_agent:
        if agent is not None:
            ident.require_own(agent, f"agent {agent!r}'s escalations")
        agent = ident.name
    page = await backend.list_escalations(status, agent=agent, offset=offset, limit=limit)
    return EscalationPage(items=page.items, total=page.total)


async def _readable(backend: BackendDep, ident: Identity, escalation_id: int) -> Escalation:
    ident.require(*ANY_ROLE, action="reading an escalation")
    esc = await backend.get_escalation(escalation_id)
    ident.require_own(esc.agent, f"escalation {escalation_id}")
    return esc


@router.get("/{escalation_id}", response_model=Escalation, summary="Read one thread")
async def get_escalation(escalation_id: EscalationId, ident: Caller, backend: BackendDep) -> Escalation:
    return await _readable(backend, ident, escalation_id)


@router.post("/{escalation_id}/messages", response_model=Escalation, summary="Post to the thread")
async def post_message(
    escalation_id: EscalationId,
    body: MessageIn,
    ident: Caller,
    backend: BackendDep,
    role: Annotated[MessageRole | None, Query(description="admin only: post as the thread's agent")] = None,
) -> Escalation:
    """The author is the token's name: an agent token posts as the agent, a reviewer as a human.
    An admin token (an integration speaking for its agents) may post ``role=agent``: the message
    is then the thread's agent's."""
    esc = await _readable(backend, ident, escalation_id)
    natural = MessageRole.agent if ident.is_agent else MessageRole.human
    if role is not None and role is not natural:
        ident.require(*ADMIN, action=f"posting as {role.value}")
    if role is MessageRole.agent and not ident.is_agent:
        return await backend.post_message(escalation_id, body.text, esc.agent, MessageRole.agent)
    return await backend.post_message(escalation_id, body.text, ident.name, natural)


@router.post("/{escalation_id}/status", response_model=Escalation, summary="Take over or resolve a thread")
async def set_status(
    escalation_id: EscalationId, body: EscalationStatusIn, ident: Caller, backend: BackendDep
) -> Escalation:
    """Reviewers set any status; an agent may only mark its own thread resolved."""
    await _readable(backend, ident, escalation_id)
    if not (ident.is_agent and body.status is EscalationStatus.resolved):
        ident.require(*STAFF, action=f"setting an escalation to {body.status.value}")
    return await backend.set_escalation_status(escalation_id, body.status, ident.name, body.note)


@router.get(
    "/{escalation_id}/wait",
    response_model=Escalation,
    summary="Long-poll: answer once a human message beyond `seen` arrives or the thread is taken over/resolved",
)
async def wait(
    escalation_id: EscalationId,
    request: Request,
    ident: Caller,
    backend: BackendDep,
    seen: Annotated[int, Query(ge=0, le=MAX_ID, description="messages the caller has already seen")] = 0,
    timeout: Annotated[float, Query(ge=0, le=3600, description=f"seconds; at most {MAX_POLL_S:.0f} are used")] = 30,
) -> Escalation | Response:
    await _readable(backend, ident, escalation_id)
    result = await unless_disconnected(
        request, backend.wait_for_escalation(escalation_id, seen, min(timeout, MAX_POLL_S))
    )
    return Response(status_code=204) if result is None else result
