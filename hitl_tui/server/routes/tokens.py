"""API tokens over HTTP (admin only). ``hitl token ...`` uses these when a server is configured (and the store
directly when given ``--store``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ...models import TokenInfo
from ..auth import ADMIN, Caller, check_token_name, hash_token, new_token
from ..deps import BackendDep
from ..schemas import TokenCreated, TokenIn

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])


@router.get("", response_model=list[TokenInfo], summary="Every token (names and roles; never the secrets)")
async def list_tokens(ident: Caller, backend: BackendDep) -> list[TokenInfo]:
    ident.require(*ADMIN, action="listing tokens")
    return await backend.store.list_tokens()


@router.post("", response_model=TokenCreated, summary="Create a token; the secret is in this answer only")
async def create_token(body: TokenIn, ident: Caller, backend: BackendDep) -> TokenCreated:
    ident.require(*ADMIN, action="creating tokens")
    secret = new_token()
    info = await backend.store.create_token(check_token_name(body.name), body.role, hash_token(secret), ident.name)
    return TokenCreated(token=secret, info=info)


@router.delete("/{name}", response_model=TokenInfo, summary="Revoke a token (it stops working at once)")
async def revoke_token(name: Annotated[str, Path(min_length=1, max_length=200)], ident: Caller,
                       backend: BackendDep) -> TokenInfo:
    ident.require(*ADMIN, action="revoking tokens")
    return await backend.store.revoke_token(name, ident.name)
