"""Who a bearer token is, without a store read per request, for writes that re-check it.

``auth.identify`` looks the token up in the store on every request: revoking a token takes effect
on the next request. That lookup is a store round trip of its own (SQLite: a hop to the store's
thread; PostgreSQL: a query) before the request's real work, and on the busiest route, filing a
request, it cost about as much as the write.

What a token hash *grants* never changes: tokens are created and revoked, never edited, so the
name and role found for a hash once stay right. Whether the token is still *active* can change at
any moment, from another process (``hitl token revoke`` on the same SQLite file) or another
replica on the same PostgreSQL, and nothing in this process hears of it in time: the event hub
learns of a foreign commit some milliseconds later. So the remembered grant is used only by a
route whose store write checks the token again *inside its own transaction*
(``TokenGrant``): a token revoked before the write began is refused with the same 401, on every
replica, and the check is one indexed lookup inside a transaction the request opens anyway.
Routes that only read keep ``auth.identify``.

Where a remembered grant could answer differently from a fresh lookup, the fresh lookup decides:

* a role that may not do what the route does: looked up afresh (a revoked token gets 401, not 403);
* an invalid body (422): the error handler looks the token up afresh first (``verify_pending``),
  so a revoked token gets 401 whatever its body says;
* the write refuses the token: the grant is forgotten and the 401 goes back (``filing``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from ..errors import Unauthorized
from ..models import TokenRole
from ..store.base import TokenGrant
from .auth import Identity, _bearer, hash_token

#: remembered grants at most; past it the memory starts over (only valid tokens ever get in)
MAX_GRANTS = 4096
_PENDING = "hitl_unverified_grant"  # request.state key: a remembered grant the store has not re-checked yet
REVOKED = "the token is not valid (unknown or revoked)"


class GrantCache:
    """token hash -> the identity it grants, for tokens the store found active once."""

    def __init__(self, limit: int = MAX_GRANTS) -> None:
        self.limit = limit
        self._known: dict[str, Identity] = {}

    def get(self, token_hash: str) -> Identity | None:
        return self._known.get(token_hash)

    def remember(self, token_hash: str, ident: Identity) -> None:
        if len(self._known) >= self.limit:
            self._known.clear()
        self._known[token_hash] = ident

    def forget(self, token_hash: str) -> None:
        self._known.pop(token_hash, None)

    def __len__(self) -> int:
        return len(self._known)


@dataclass(frozen=True, slots=True)
class Writer:
    """The caller of a write route: who they are, and the grant the write must re-check."""

    ident: Identity
    grant: TokenGrant


async def _lookup(request: Request, token_hash: str) -> Identity:
    info = await request.app.state.backend.store.find_token(token_hash)
    if info is None:
        request.app.state.grants.forget(token_hash)
        raise Unauthorized(REVOKED)
    ident = Identity(name=info.name, role=info.role)
    request.app.state.grants.remember(token_hash, ident)
    return ident


async def identify_writer(request: Request) -> Writer:
    """FastAPI dependency for routes whose write re-checks the token (see the module docstring)."""
    token_hash = hash_token(_bearer(request))
    ident = request.app.state.grants.get(token_hash)
    if ident is None:
        ident = await _lookup(request, token_hash)
    else:
        setattr(request.state, _PENDING, token_hash)
    return Writer(ident, TokenGrant(token_hash, ident.name, ident.role))


async def require_writer(request: Request, writer: Writer, *roles: TokenRole, action: str) -> Identity:
    """``ident.require(*roles)``, but a remembered grant whose role does not qualify is looked up
    afresh first, so a revoked token is told 401 (as ``auth.identify`` would), not 403."""
    ident = writer.ident
    if ident.role not in roles:
        ident = await _lookup(request, writer.grant.token_hash)
    ident.require(*roles, action=action)
    return ident


async def verify_pending(request: Request) -> Any:
    """For error handlers: when this request ran on a remembered grant that no write has
    re-checked, look the token up now. Returns None if it is (still) active, else the 401 to send."""
    token_hash = getattr(request.state, _PENDING, None)
    if token_hash is None:
        return None
    try:
        await _lookup(request, token_hash)
    except Unauthorized as exc:
        return exc
    return None


#: a route parameter: the caller of a write route that passes ``writer.grant`` to its store write
WriterCaller = Annotated[Writer, Depends(identify_writer)]
