"""Health, identity and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from ...models import RequestStatus
from ..auth import ANY_ROLE, Caller
from ..deps import BackendDep
from ..metrics import CONTENT_TYPE
from ..schemas import Health, Whoami

router = APIRouter(tags=["meta"])


@router.get("/healthz", response_model=Health, summary="Liveness and store health (no token needed)")
async def healthz(backend: BackendDep) -> Health:
    await backend.store.check()  # StoreUnavailable -> 503, so a load balancer stops routing here
    return Health(status="ok")


@router.get("/v1/whoami", response_model=Whoami, summary="The caller's name and role")
async def whoami(ident: Caller) -> Whoami:
    return Whoami(name=ident.name, role=ident.role)


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (any valid token)")
async def metrics(request: Request, ident: Caller, backend: BackendDep) -> PlainTextResponse:
    ident.require(*ANY_ROLE, action="reading metrics")
    pending = (await backend.list_requests(RequestStatus.pending, limit=1)).total
    text = request.app.state.metrics.render(pending, backend.store)
    return PlainTextResponse(text, media_type=CONTENT_TYPE)
