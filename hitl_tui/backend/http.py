"""``HttpBackend``: the Backend interface over ``hitl serve``'s ``/v1`` API.

Swapping ``--store`` for ``--server URL --token T`` changes nothing else for the console, the SDK
or the CLI. Identity comes from the token: the ``reviewer``/``actor``/``author`` arguments of the
interface are ignored here (the server records the token's name).

Failing closed: a connection error, a timeout, a 5xx, a body that is not JSON or does not match
the schema all raise :class:`~hitl_tui.errors.StoreUnavailable` with the reason, so a caller
treats the action as not approved. Error answers become the matching ``HitlError`` (409 ->
``Conflict`` with the server's message naming who decided and when).

Waiting (``wait_for_request``, ``wait_for_escalation``) re-issues the server's long-poll until
there is an answer or the caller's timeout passes, and rides out a server restart: while the
server is unreachable it retries with backoff until the timeout (with no timeout: for
``reconnect_for`` seconds). ``subscribe`` follows the SSE stream, reconnecting the same way and
resuming with ``Last-Event-ID``: no event is missed and none arrives twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, TypeVar

import httpx
from httpx_sse import aconnect_sse
from pydantic import BaseModel, TypeAdapter, ValidationError

from ..config import check_server_url
from ..errors import Conflict, Forbidden, HitlError, InvalidInput, NotFound, StoreUnavailable, Unauthorized
from ..models import (
    TERMINAL_STATUSES,
    ApprovalRequest,
    Capability,
    Decision,
    DecisionIn,
    Escalation,
    EscalationCreate,
    EscalationStatus,
    Event,
    MessageRole,
    Page,
    RequestCreate,
    RequestStatus,
    ReviewCreate,
    ReviewItem,
    ReviewMark,
    Rule,
    Stage,
    TokenInfo,
    TokenRole,
)
from ..server.schemas import (
    AuditOut,
    CancelIn,
    CapabilityIn,
    EscalationPage,
    EscalationStatusIn,
    EvaluateIn,
    RequestPage,
    ReviewPage,
    RulesIn,
    Seq,
    StageIn,
    TokenCreated,
    TokenIn,
    Whoami,
)
from ..store.base import AuditReport
from .base import Backend

M = TypeVar("M", bound=BaseModel)

#: the longest single long-poll asked of the server (it caps them at 60 s itself)
POLL_S = 50.0
#: how long the server may take beyond the poll before the answer counts as lost
POLL_GRACE_S = 15.0
#: the server pings SSE streams every 15 s; three missed pings mean the connection is dead
SSE_READ_TIMEOUT_S = 45.0

_ERRORS: dict[str, type[HitlError]] = {
    c.__name__: c for c in (InvalidInput, NotFound, Conflict, Forbidden, Unauthorized, StoreUnavailable)
}
_BY_STATUS: dict[int, type[HitlError]] = {
    400: InvalidInput, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 413: InvalidInput,
    415: InvalidInput, 422: InvalidInput,
}
_EVENTS = TypeAdapter(list[Event])
_CAPABILITIES = TypeAdapter(list[Capability])
_RULES = TypeAdapter(list[Rule])
_TOKENS = TypeAdapter(list[TokenInfo])


class ServerUnreachable(StoreUnavailable):
    """The server could not be reached or answered 5xx: a condition that may pass (a restart)."""


class _Backoff:
    """Exponential backoff with jitter: 0.1 s doubling to ``cap``."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first = first
        self.cap = cap
        self.next = first

    def reset(self) -> None:
        self.next = self.first

    def delay(self) -> float:
        d = self.next * (0.5 + random.random() / 2)
        self.next = min(self.next * 2, self.cap)
        return d


def shown_url(url: str) -> str:
    """``url`` as messages may show it: a password in it masked, its query (``?token=``) left out."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<the server URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{port}" if port else "")
    if parts.username is not None:
        netloc = f"{parts.username}{':***' if parts.password is not None else ''}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class HttpBackend(Backend):
    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        reconnect_for: float = 120.0,
    ) -> None:
        """``timeout``: per call; ``reconnect_for``: how long waits and streams without a deadline
        keep reconnecting to an unreachable server before they fail closed."""
        try:
            check_server_url(url)  # the reason never echoes the URL: it may carry user:password
        except ValueError as exc:
            raise InvalidInput(f"the server URL is not usable: {exc}") from None
        self.url = url.rstrip("/")
        self.shown_url = shown_url(self.url)  # for messages and status lines: no password, no query
        self.token = _clean_token(token)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.reconnect_for = reconnect_for
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._whoami: Whoami | None = None

    # ================================================================= plumbing
    def describe(self) -> str:
        return self.shown_url

    @property
    def read_only(self) -> bool:
        """True for an agent token (known after the first call; the server enforces it anyway)."""
        return self._whoami is not None and self._whoami.role is TokenRole.agent

    @property
    def identity(self) -> str | None:
        """The token's name (known after the first call): the server records it as the actor."""
        return None if self._whoami is None else self._whoami.name

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop or self._client.is_closed:
            headers = {"Accept": "application/json", "User-Agent": "hitl-tui"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            self._client = httpx.AsyncClient(
                base_url=self.url,
                headers=headers,
                timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
                # long-polls hold a connection each: many concurrent waits need many connections
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=32, keepalive_expiry=5.0),
                follow_redirects=False,
            )
            self._client_loop = loop
        return self._client

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        params: dict[str, Any] | None = None,
        read_timeout: float | None = None,
    ) -> Any:
        if self._whoami is None and path != "/v1/whoami":
            await self.whoami()
        client = self._http()
        content = None if body is None else body.model_dump_json(exclude_unset=False).encode()
        headers = {"Content-Type": "application/json"} if content is not None else None
        timeout = None
        if read_timeout is not None:
            timeout = httpx.Timeout(self.timeout, connect=self.connect_timeout, read=read_timeout)
        clean = None if params is None else {k: v for k, v in params.items() if v is not None}
        kwargs: dict[str, Any] = {"content": content, "params": clean, "headers": headers}
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            try:
                response = await client.request(method, path, **kwargs)
            except (httpx.ReadError, httpx.RemoteProtocolError):
                if method not in ("GET", "PUT"):
                    raise
                # A kept-alive connection the server had just closed: safe to ask once more.
                response = await client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            where = self.shown_url
            raise ServerUnreachable(f"the server at {where} did not answer in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            where = self.shown_url
            raise ServerUnreachable(f"cannot reach the server at {where}: {self._reason(exc)}") from self._cause(exc)
        return self._decode(response)

    def _scrub(self, text: str) -> str:
        """``text`` without the token: no message this backend raises may carry the secret (an httpx
        error can quote the Authorization header it refused to send, as a bytes repr)."""
        for piece in _secret_pieces(self.token):
            text = text.replace(piece, "<token>")
        return text

    def _reason(self, exc: Exception) -> str:
        """An httpx error's text, scrubbed of the token."""
        return self._scrub(str(exc) or type(exc).__name__)

    def _cause(self, exc: Exception) -> Exception | None:
        """``exc`` to chain (for a traceback), unless its text carries the token."""
        text = str(exc)
        return None if any(piece in text for piece in _secret_pieces(self.token)) else exc

    def _decode(self, response: httpx.Response) -> Any:
        if response.status_code == 204:
            return None
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            data = None
            if response.is_success:
                raise StoreUnavailable(
                    f"the server at {self.shown_url} answered {response.status_code} with a body that is not JSON"
                ) from None
        if response.is_success:
            return data
        raise self._error(response, data)

    def _error(self, response: httpx.Response, data: Any) -> HitlError:
        status = response.status_code
        message = None
        details: dict[str, Any] = {}
        name = None
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            message = data["message"]
            name = data.get("error")
            details = {k: v for k, v in data.items() if k not in ("error", "message") and isinstance(k, str)}
        if status >= 500:
            why = message or response.reason_phrase or "server error"
            return ServerUnreachable(self._scrub(f"the server at {self.shown_url} failed ({status}): {why}"))
        cls = _ERRORS.get(name) if isinstance(name, str) else None
        if cls is None or cls is StoreUnavailable:
            cls = _BY_STATUS.get(status, InvalidInput)
        if message is None:
            message = f"the server at {self.shown_url} refused the call ({status} {response.reason_phrase})"
        if status == 401:
            message += " (check --token / HITL_TOKEN)"
        return cls(self._scrub(message), **details)

    @staticmethod
    def _parse(model: type[M], data: Any) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise StoreUnavailable(f"the server sent an invalid {model.__name__}: {exc.errors()[0]['msg']}") from None

    @staticmethod
    def _parse_list(adapter: TypeAdapter[Any], data: Any, what: str) -> Any:
        try:
            return adapter.validate_python(data)
        except ValidationError as exc:
            raise StoreUnavailable(f"the server sent an invalid {what}: {exc.errors()[0]['msg']}") from None

    async def whoami(self) -> Whoami:
        """The token's name and role (``read_only`` follows from it)."""
        self._whoami = self._parse(Whoami, await self._call("GET", "/v1/whoami"))
        return self._whoami

    # ================================================================= tokens (an admin token's calls)
    async def create_token(self, name: str, role: TokenRole) -> TokenCreated:
        """A new token on the server: its secret (shown once) and what the server recorded."""
        body = _build(TokenIn, name=name, role=role)
        return self._parse(TokenCreated, await self._call("POST", "/v1/tokens", body=body))

    async def list_tokens(self) -> list[TokenInfo]:
        return self._parse_list(_TOKENS, await self._call("GET", "/v1/tokens"), "token list")

    async def revoke_token(self, name: str) -> TokenInfo:
        from urllib.parse import quote

        from ..server.credentials import TOKEN_NAME

        if not TOKEN_NAME.fullmatch(name):  # no token can have it (and "", "." or ".." make no URL)
            raise NotFound(f"no active token named {name!r}", name=name)
        return self._parse(TokenInfo, await self._call("DELETE", f"/v1/tokens/{quote(name, safe='')}"))

    # ================================================================= policy
    async def evaluate(
        self, tool: str, args: dict[str, Any], confidence: int | None = None, agent: str | None = None
    ) -> Decision:
        body = _build(EvaluateIn, tool=tool, args=args, confidence=confidence, agent=agent)
        return self._parse(Decision, await self._call("POST", "/v1/policy/evaluate", body=body))

    # ================================================================= requests
    async def create_request(self, data: RequestCreate) -> ApprovalRequest:
        return self._parse(ApprovalRequest, await self._call("POST", "/v1/requests", body=data))

    async def get_request(self, request_id: int) -> ApprovalRequest:
        return self._parse(ApprovalRequest, await self._call("GET", f"/v1/requests/{int(request_id)}"))

    async def list_requests(
        self,
        status: RequestStatus | None = RequestStatus.pending,
        *,
        agent: str | None = None,
        tool: str | None = None,
        search: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> Page:
        params = {
            "status": "all" if status is None else RequestStatus(status).value,
            "agent": agent, "tool": tool, "search": search, "offset": offset, "limit": limit,
        }
        page = self._parse(RequestPage, await self._call("GET", "/v1/requests", params=params))
        return Page(items=list(page.items), total=page.total)

    async def decide(self, request_id: int, decision: DecisionIn, reviewer: str | None = None) -> ApprovalRequest:
        data = await self._call("POST", f"/v1/requests/{int(request_id)}/decision", body=decision)
        return self._parse(ApprovalRequest, data)

    async def cancel_request(
        self, request_id: int, actor: str | None = None, reason: str | None = None
    ) -> ApprovalRequest:
        body = _build(CancelIn, reason=reason)
        data = await self._call("POST", f"/v1/requests/{int(request_id)}/cancel", body=body)
        return self._parse(ApprovalRequest, data)

    async def wait_for_request(self, request_id: int, timeout: float | None = None) -> ApprovalRequest:
        path = f"/v1/requests/{int(request_id)}/wait"

        def done(req: ApprovalRequest) -> bool:
            return req.status in TERMINAL_STATUSES

        return await self._long_poll(path, {}, ApprovalRequest, done, timeout)

    # ================================================================= escalations
    async def create_escalation(self, data: EscalationCreate) -> Escalation:
        return self._parse(Escalation, await self._call("POST", "/v1/escalations", body=data))

    async def get_escalation(self, escalation_id: int) -> Escalation:
        return self._parse(Escalation, await self._call("GET", f"/v1/escalations/{int(escalation_id)}"))

    async def list_escalations(
        self, status: EscalationStatus | None = None, *, agent: str | None = None, offset: int = 0, limit: int = 100
    ) -> Page:
        params = {
            "status": None if status is None else EscalationStatus(status).value,
            "agent": agent, "offset": offset, "limit": limit,
        }
        page = self._parse(EscalationPage, await self._call("GET", "/v1/escalations", params=params))
        return Page(items=list(page.items), total=page.total)

    async def post_message(
        self, escalation_id: int, text: str, author: str | None = None, role: MessageRole = MessageRole.human
    ) -> Escalation:
        """The server sets the author from the token; an agent token always posts as the agent, a
        reviewer as a human, and an admin token as ``role`` (as the thread's agent for ``agent``)."""
        from ..models import MessageIn

        body = _build(MessageIn, text=text)
        me = self._whoami or await self.whoami()
        params = {"role": MessageRole(role).value} if me.role is TokenRole.admin else None
        data = await self._call("POST", f"/v1/escalations/{int(escalation_id)}/messages", body=body, params=params)
        return self._parse(Escalation, data)

    async def set_escalation_status(
        self, escalation_id: int, status: EscalationStatus, actor: str | None = None, note: str | None = None
    ) -> Escalation:
        body = _build(EscalationStatusIn, status=status, note=note)
        data = await self._call("POST", f"/v1/escalations/{int(escalation_id)}/status", body=body)
        return self._parse(Escalation, data)

    async def wait_for_escalation(
        self, escalation_id: int, seen_messages: int, timeout: float | None = None
    ) -> Escalation:
        path = f"/v1/escalations/{int(escalation_id)}/wait"

        def done(esc: Escalation) -> bool:
            if esc.status in (EscalationStatus.taken_over, EscalationStatus.resolved):
                return True
            return any(m.role is MessageRole.human for m in esc.messages[seen_messages:])

        return await self._long_poll(path, {"seen": int(seen_messages)}, Escalation, done, timeout)

    async def _long_poll(
        self, path: str, params: dict[str, Any], model: type[M], done: Any, timeout: float | None
    ) -> M:
        """Re-issue the server's long-poll until ``done(answer)`` or the timeout; ride out outages."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + max(0.0, timeout)
        backoff = _Backoff()
        down_since: float | None = None
        while True:
            now = loop.time()
            remaining = None if deadline is None else max(0.0, deadline - now)
            poll = POLL_S if remaining is None else min(POLL_S, remaining)
            try:
                data = await self._call(
                    "GET", path, params={**params, "timeout": round(poll, 3)}, read_timeout=poll + POLL_GRACE_S
                )
            except ServerUnreachable as exc:
                now = loop.time()
                down_since = now if down_since is None else down_since
                if deadline is not None and now >= deadline:
                    raise ServerUnreachable(f"{exc.message}; gave up waiting at the deadline") from exc
                if deadline is None and now - down_since >= self.reconnect_for:
                    raise ServerUnreachable(
                        f"{exc.message}; gave up after {self.reconnect_for:.0f}s of trying to reconnect"
                    ) from exc
                pause = backoff.delay()
                if deadline is not None:
                    pause = min(pause, max(0.0, deadline - now))
                await asyncio.sleep(pause)
                continue
            if data is None:  # 204: the server dropped the poll; ask again
                continue
            answer = self._parse(model, data)
            down_since = None
            backoff.reset()
            if done(answer) or (deadline is not None and loop.time() >= deadline):
                return answer

    # ================================================================= review
    async def log_review(self, data: ReviewCreate) -> ReviewItem:
        return self._parse(ReviewItem, await self._call("POST", "/v1/reviews", body=data))

    async def get_review(self, review_id: int) -> ReviewItem:
        return self._parse(ReviewItem, await self._call("GET", f"/v1/reviews/{int(review_id)}"))

    async def list_reviews(
        self,
        reviewed: bool | None = None,
        *,
        tool: str | None = None,
        agent: str | None = None,
        since: datetime | None = None,
        verdict: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> Page:
        params = {
            "reviewed": None if reviewed is None else ("true" if reviewed else "false"),
            "tool": tool, "agent": agent, "since": None if since is None else since.isoformat(),
            "verdict": verdict, "offset": offset, "limit": limit,
        }
        page = self._parse(ReviewPage, await self._call("GET", "/v1/reviews", params=params))
        return Page(items=list(page.items), total=page.total)

    async def mark_review(self, review_id: int, mark: ReviewMark, reviewer: str | None = None) -> ReviewItem:
        return self._parse(ReviewItem, await self._call("POST", f"/v1/reviews/{int(review_id)}/mark", body=mark))

    # ================================================================= capabilities / rules
    async def list_capabilities(self) -> list[Capability]:
        return self._parse_list(_CAPABILITIES, await self._call("GET", "/v1/capabilities"), "capability list")

    async def get_capability(self, tool: str, agent: str | None = None) -> Capability:
        return self._parse(Capability, await self._call("GET", "/v1/capability", params={"tool": tool, "agent": agent}))

    async def put_capability(self, cap: Capability, actor: str | None = None, reason: str | None = None) -> Capability:
        body = _build(CapabilityIn, capability=cap, reason=reason)
        return self._parse(Capability, await self._call("PUT", "/v1/capabilities", body=body))

    async def set_stage(
        self,
        tool: str,
        stage: Stage,
        actor: str | None = None,
        reason: str | None = None,
        *,
        force: bool = False,
        agent: str | None = None,
    ) -> Capability:
        body = _build(StageIn, tool=tool, stage=stage, reason=reason, force=force, agent=agent)
        return self._parse(Capability, await self._call("POST", "/v1/capabilities/stage", body=body))

    async def list_rules(self) -> list[Rule]:
        return self._parse_list(_RULES, await self._call("GET", "/v1/rules"), "rule list")

    async def set_rules(self, rules: list[Rule], actor: str | None = None, reason: str | None = None) -> list[Rule]:
        body = _build(RulesIn, rules=rules, reason=reason)
        return self._parse_list(_RULES, await self._call("PUT", "/v1/rules", body=body), "rule list")

    # ================================================================= change feed / audit
    async def last_seq(self) -> int:
        return self._parse(Seq, await self._call("GET", "/v1/events/last")).seq

    async def events_after(self, seq: int, limit: int = 1000) -> list[Event]:
        data = await self._call("GET", "/v1/events/log", params={"after": int(seq), "limit": int(limit)})
        return self._parse_list(_EVENTS, data, "event list")

    async def subscribe(  # type: ignore[override]
        self, after_seq: int | None = None, *, reconnect: bool = True
    ) -> AsyncIterator[Event]:
        last = await self.last_seq() if after_seq is None else int(after_seq)
        loop = asyncio.get_running_loop()
        backoff = _Backoff()
        down_since: float | None = None
        while True:
            try:
                async with contextlib.aclosing(self._stream(last)) as stream:  # closed even if the caller stops
                    async for ev in stream:
                        if ev.seq <= last:
                            continue  # already delivered (a correct server never resends; never twice)
                        last = ev.seq
                        down_since = None
                        backoff.reset()
                        yield ev
                reason = "the server closed the event stream"
            except ServerUnreachable as exc:
                if not reconnect:
                    raise
                reason = exc.message
            if not reconnect:
                raise ServerUnreachable(f"{reason} (last event {last})")
            now = loop.time()
            down_since = now if down_since is None else down_since
            if now - down_since >= self.reconnect_for:
                raise ServerUnreachable(
                    f"{reason}; gave up after {self.reconnect_for:.0f}s of trying to reconnect (last event {last})"
                )
            await asyncio.sleep(backoff.delay())

    async def _stream(self, after: int) -> AsyncIterator[Event]:
        """One connection to ``/v1/events``: events after ``after`` until the connection ends."""
        if self._whoami is None:
            await self.whoami()
        client = self._http()
        timeout = httpx.Timeout(self.timeout, connect=self.connect_timeout, read=SSE_READ_TIMEOUT_S)
        try:
            async with aconnect_sse(
                client, "GET", "/v1/events", params={"after": after}, headers={"Last-Event-ID": str(after)},
                timeout=timeout,
            ) as source:
                response = source.response
                if not response.is_success:
                    await response.aread()
                    raise self._decode_error(response)
                if "text/event-stream" not in response.headers.get("content-type", ""):
                    raise StoreUnavailable(f"the server at {self.shown_url} did not answer with an event stream")
                async for sse in source.aiter_sse():
                    if sse.event == "error":
                        raise ServerUnreachable(f"the server's event stream failed: {_message(sse.data)}")
                    if not sse.id or not sse.data:
                        continue
                    try:
                        ev = Event.model_validate_json(sse.data)
                    except ValidationError as exc:
                        raise StoreUnavailable(
                            f"the server sent an invalid event: {exc.errors()[0]['msg']}"
                        ) from None
                    yield ev
        except httpx.TimeoutException as exc:
            where = self.shown_url
            raise ServerUnreachable(f"the event stream from {where} went silent ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            where = self.shown_url
            raise ServerUnreachable(f"lost the event stream from {where}: {self._reason(exc)}") from self._cause(exc)

    def _decode_error(self, response: httpx.Response) -> HitlError:
        try:
            data = response.json()
        except ValueError:
            data = None
        return self._error(response, data)

    async def verify_audit(self) -> AuditReport:
        out = self._parse(AuditOut, await self._call("GET", "/v1/audit/verify"))
        return AuditReport(ok=out.ok, checked=out.checked, problems=[(p.seq, p.problem) for p in out.problems])

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and not client.is_closed:
            try:
                await client.aclose()
            except RuntimeError:  # made on another (now closed) loop
                pass


def _secret_pieces(token: str | None) -> list[str]:
    """What of ``token`` may show in a message, longest first: the token, its str and bytes reprs,
    and each run of 8 or more printable characters (a token that cannot be scrubbed whole)."""
    if not token:
        return []
    pieces = {token, repr(token)[1:-1], str(token.encode("utf-8", "backslashreplace"))[2:-1]}
    pieces.update(run for run in re.split(r"[^!-~]+", token) if len(run) >= 8)
    return sorted(pieces, key=len, reverse=True)


def _clean_token(token: str | None) -> str | None:
    """The token without surrounding whitespace (a pasted newline, a trailing space); ``None`` if
    nothing is left. One that still cannot go into a header is refused without being echoed."""
    if token is None:
        return None
    token = token.strip()
    if not token:
        return None
    if not all("!" <= c <= "~" for c in token):
        if token.isascii():
            raise InvalidInput("malformed token (it has whitespace or control characters)")
        raise InvalidInput("malformed token (it has characters other than printable ASCII)")
    return token


def _build(model: type[M], **fields: Any) -> M:
    """Validate an outgoing body locally: bad input fails here, before any network."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{loc}: {first['msg']}" if loc else first["msg"]) from None


def _message(data: str) -> str:
    try:
        value = json.loads(data)
    except ValueError:
        return data[:200]
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        return value["message"]
    return data[:200]
