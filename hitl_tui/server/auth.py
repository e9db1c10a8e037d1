"""Bearer tokens and roles.

A presented token is hashed (SHA-256) and looked up by that hash (see ``credentials``), so the
secret is never stored and never compared byte by byte. Revoking a token takes effect on the
next request: every request looks its token up afresh, except filing a request, which checks
the token inside its own write transaction instead (``grants``; the same 401, on every replica).

Roles (each includes what the one before it may do, except as noted):

* ``agent``: create requests, escalations and review items (always under the token's own name),
  read and wait on its own, post to its own escalation threads, cancel its own requests, follow
  the live event stream scoped to its own items (``Identity.may_see``);
* ``reviewer``: read everything, decide, reply to / take over / resolve escalations, mark
  reviews, read the event log and verify the audit log; never creates on an agent's behalf;
* ``admin``: everything, including capabilities, stages, rules and tokens, and filing on
  behalf of any agent (integrations and demos).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from ..errors import Forbidden, Unauthorized
from ..models import Event, TokenRole
from .credentials import MAX_TOKEN_LENGTH, check_token_name, hash_token, new_token


@dataclass(frozen=True)
class Identity:
    """Who is calling, from their token: the name recorded on what they do, and their role."""

    name: str
    role: TokenRole

    @property
    def is_agent(self) -> bool:
        return self.role is TokenRole.agent

    def require(self, *roles: TokenRole, action: str) -> None:
        if self.role not in roles:
            allowed = " or ".join(r.value for r in roles)
            article = "an" if allowed[:1] in "aeiou" else "a"
            raise Forbidden(f"{action} needs {article} {allowed} token; {self.name!r} has the {self.role.value} role",
                            role=self.role.value)

    def may_see(self, event: Event) -> bool:
        """Whether this caller's change feed carries ``event``. Staff see every event. An agent sees
        what its own reads would show: events of its own requests, escalations and review items
        (by the ``agent`` of the item in the payload), and capability and rule changes (every role
        may read those); never token events, another agent's items, or a kind it does not know."""
        if not self.is_agent:
            return True
        kind = event.kind.value
        if kind.startswith(("capability.", "rules.")):
            return True
        if kind.startswith(("request.", "escalation.", "review.")):
            return event.payload.get("agent") == self.name
        return False

    def require_own(self, agent: str, what: str) -> None:
        """Agent tokens may touch only what was filed under their own name."""
        if self.is_agent and agent != self.name:
            raise Forbidden(f"{what} belongs to another agent; agent token {self.name!r} may read only its own")


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("no token: send 'Authorization: Bearer <token>' (hitl token create makes one)")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise Unauthorized("the token is not valid")
    return token


async def identify(request: Request) -> Identity:
    """FastAPI dependency: the caller's identity, or 401."""
    token = _bearer(request)
    digest = hash_token(token)
    info = await request.app.state.backend.store.find_token(digest)
    if info is None:
        raise Unauthorized("the token is not valid (unknown or revoked)")
    return Identity(name=info.name, role=info.role)


ANY_ROLE = (TokenRole.agent, TokenRole.reviewer, TokenRole.admin)
STAFF = (TokenRole.reviewer, TokenRole.admin)
FILERS = (TokenRole.agent, TokenRole.admin)
ADMIN = (TokenRole.admin,)

#: a route parameter that resolves to the caller's identity (401 without a valid token)
Caller = Annotated[Identity, Depends(identify)]


__all__ = ["ADMIN", "ANY_ROLE", "FILERS", "STAFF", "Caller", "Identity", "check_token_name", "hash_token",
           "identify", "new_token"]
