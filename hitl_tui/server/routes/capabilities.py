"""Capabilities, stages, permission rules, and the policy's verdict on one call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...models import Capability, Decision, Rule
from ..auth import ADMIN, ANY_ROLE, Caller
from ..deps import BackendDep
from ..schemas import CapabilityIn, EvaluateIn, RulesIn, StageIn

router = APIRouter(prefix="/v1", tags=["capabilities and policy"])


@router.get("/capabilities", response_model=list[Capability], summary="Every capability and its stage")
async def list_capabilities(ident: Caller, backend: BackendDep) -> list[Capability]:
    ident.require(*ANY_ROLE, action="reading capabilities")
    return await backend.list_capabilities()


@router.get("/capability", response_model=Capability, summary="One capability (optionally one agent's)")
async def get_capability(
    ident: Caller,
    backend: BackendDep,
    tool: Annotated[str, Query(min_length=1, max_length=200)],
    agent: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> Capability:
    ident.require(*ANY_ROLE, action="reading capabilities")
    return await backend.get_capability(tool, agent)


@router.put("/capabilities", response_model=Capability, summary="Create or update a capability")
async def put_capability(body: CapabilityIn, ident: Caller, backend: BackendDep) -> Capability:
    ident.require(*ADMIN, action="changing a capability")
    return await backend.put_capability(body.capability, ident.name, body.reason)


@router.post(
    "/capabilities/stage",
    response_model=Capability,
    summary="Move a capability to another stage (409 when not allowed without force)",
)
async def set_stage(body: StageIn, ident: Caller, backend: BackendDep) -> Capability:
    ident.require(*ADMIN, action="changing a stage")
    return await backend.set_stage(body.tool, body.stage, ident.name, body.reason, force=body.force, agent=body.agent)


@router.get("/rules", response_model=list[Rule], summary="The permission rules")
async def list_rules(ident: Caller, backend: BackendDep) -> list[Rule]:
    ident.require(*ANY_ROLE, action="reading rules")
    return await backend.list_rules()


@router.put("/rules", response_model=list[Rule], summary="Replace the permission rules")
async def set_rules(body: RulesIn, ident: Caller, backend: BackendDep) -> list[Rule]:
    ident.require(*ADMIN, action="changing rules")
    return await backend.set_rules(body.rules, ident.name, body.reason)


@router.post("/policy/evaluate", response_model=Decision, summary="The route the policy gives one call, and why")
async def evaluate(body: EvaluateIn, ident: Caller, backend: BackendDep) -> Decision:
    """For an agent token the policy is evaluated for that agent, whatever ``agent`` says."""
    ident.require(*ANY_ROLE, action="evaluating the policy")
    agent = ident.name if ident.is_agent else body.agent
    return await backend.evaluate(body.tool, body.args, body.confidence, agent)
