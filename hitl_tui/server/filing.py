"""Filing a request: the server's hot path, shared by the FastAPI route and a pure-ASGI fast lane.

``POST /v1/requests`` is what every agent does before every gated action, so its cost bounds the
server's throughput. Through FastAPI it pays for routing, the dependency solver, the exit stacks,
the content-type parser and the response machinery about as much as for the filing itself.
:class:`FilingFastLane` answers the ordinary case (JSON body, a bearer token whose grant is
remembered, a role that may file) without them, and hands every other request, untouched, to the
FastAPI route, which stays the reference: the lane never answers differently from the route,
because whenever it is not sure it defers *before* anything has happened.

Either way the filing itself is :func:`file_request`: an agent token files under its own name;
the token is re-checked inside the write's transaction (``grants``), so a token revoked a moment
ago is refused there; the lane then defers, and the route gives the same 401 as ever.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from pydantic import ValidationError

from ..backend.local import LocalBackend
from ..errors import HitlError, Unauthorized
from ..models import RequestCreate
from ..store.base import TokenGrant
from .auth import FILERS
from .credentials import MAX_TOKEN_LENGTH, hash_token
from .grants import GrantCache, Writer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PATH = "/v1/requests"
_JSON_TYPES = (b"application/json",)


async def file_request(backend: LocalBackend, grants: GrantCache, writer: Writer, body: RequestCreate) -> str:
    """File ``body`` for ``writer`` (already allowed to file): under the agent's own name for an
    agent token; only while the token is active (checked in the write's transaction). Returns the
    answer: the request's JSON."""
    ident = writer.ident
    if ident.is_agent and body.agent != ident.name:
        body = body.model_copy(update={"agent": ident.name})
    try:
        return (await backend.create_request_json(body, token=writer.grant))[1]
    except Unauthorized:
        grants.forget(writer.grant.token_hash)  # revoked meanwhile: the next request looks it up afresh
        raise


def _bearer(raw: bytes | None) -> str | None:
    """``auth._bearer`` without its errors: the token, or None where the route would refuse."""
    if not raw:
        return None
    scheme, _, token = raw.decode("latin-1").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return None
    return token


def _is_plain_json(content_type: bytes | None) -> bool:
    """``application/json``, optionally with parameters (``; charset=utf-8``): the one content type
    the lane takes; the route's own parser decides every other."""
    if content_type is None:
        return False
    return content_type.split(b";", 1)[0].strip().lower() in _JSON_TYPES


class LaneCounts:
    """Filings the lane answered itself and those it handed to the route (tests, diagnostics)."""

    __slots__ = ("answered", "deferred")

    def __init__(self) -> None:
        self.answered = 0
        self.deferred = 0


class FilingFastLane:
    """Pure ASGI, inside ``BodyGuardMiddleware`` (body limits and text checks already applied)."""

    def __init__(self, app: ASGIApp, backend: LocalBackend, grants: GrantCache, counts: LaneCounts) -> None:
        self.route = app
        self.backend = backend
        self.grants = grants
        self.counts = counts

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Defer to FastAPI (the route, or whatever else the request is for)."""
        if scope["path"] == PATH:
            self.counts.deferred += 1
        await self.route(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST" or scope.get("root_path"):
            await self.route(scope, receive, send)
            return
        authorization = content_type = None
        for key, value in scope["headers"]:
            if key == b"authorization" and authorization is None:
                authorization = value
            elif key == b"content-type" and content_type is None:
                content_type = value
        token = _bearer(authorization)
        if token is None or not _is_plain_json(content_type):
            await self.app(scope, receive, send)
            return
        token_hash = hash_token(token)
        ident = self.grants.get(token_hash)
        if ident is None or ident.role not in FILERS:  # a first sight, or a role the route must judge
            await self.app(scope, receive, send)
            return
        message = await receive()
        replay = _Replay(message, receive)
        body = _plain_json_object(message)
        if body is None:
            await self.app(scope, replay, send)
            return
        try:
            data = RequestCreate.model_validate(body)  # what the route's body parameter does
        except ValidationError:  # the route answers (422, or 401 first for a revoked token)
            await self.app(scope, replay, send)
            return
        writer = Writer(ident, TokenGrant(token_hash, ident.name, ident.role))
        try:
            answer = await file_request(self.backend, self.grants, writer, data)
        except Unauthorized:  # refused in the write, nothing written: the route answers as ever
            await self.app(scope, replay, send)
            return
        except HitlError as exc:
            self.counts.answered += 1
            await _send_error(scope, replay, send, exc)
            return
        self.counts.answered += 1
        out = answer.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(out)).encode()), (b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": out})


class _Replay:
    """``receive`` for a deferred request: the body message the lane read, then the channel."""

    __slots__ = ("first", "receive")

    def __init__(self, first: Message, receive: Receive) -> None:
        self.first: Message | None = first
        self.receive = receive

    async def __call__(self) -> Message:
        if self.first is not None:
            message, self.first = self.first, None
            return message
        return await self.receive()


def _plain_json_object(message: Message) -> dict[str, Any] | None:
    if message["type"] != "http.request" or message.get("more_body", False):
        return None  # BodyGuardMiddleware hands bodies over whole: anything else is the route's
    try:
        value = json.loads(message.get("body", b""))  # what the route does (Request.json)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


async def _send_error(scope: Scope, receive: Receive, send: Send, exc: HitlError) -> None:
    """The app's own handler for ``HitlError``: the same JSON, status and headers as the route."""
    from starlette.requests import Request

    from .errors import hitl_error_response

    response = await hitl_error_response(Request(scope, receive, send), exc)
    await response(scope, receive, send)


__all__ = ["FilingFastLane", "file_request"]
