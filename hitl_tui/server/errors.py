"""Errors as JSON: every failure the server returns is ``{"error": Name, "message": text, ...}``.

* ``HitlError`` subclasses map to their ``code`` (a 409 carries who decided and when);
* invalid input (bad JSON, unknown fields, wrong types) is a 422 naming the first bad field;
* a body over the configured limit is a 413, refused before it is read into memory;
* anything else is a bug: logged with its traceback and answered with a JSON 500.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import HitlError, Unauthorized
from .grants import verify_pending

log = logging.getLogger("hitl_tui.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_HTTP_NAMES = {
    400: "InvalidInput",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "InvalidInput",
}


def error_body(name: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": name, "message": message, **extra}


def _first_error_message(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "invalid input"
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body",)]
    where = ".".join(loc)
    msg = str(first.get("msg", "invalid"))
    if first.get("type") == "extra_forbidden":
        msg = "unknown field"
    elif first.get("type") == "json_invalid":
        return f"the body is not valid JSON: {first.get('ctx', {}).get('error', msg)}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {msg}{more}" if where else f"{msg}{more}"


def _plain_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Only JSON-safe parts: ``input`` and ``ctx`` may hold arbitrary objects (or the whole body).
    return [
        {"loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
         "type": str(e.get("type", ""))}
        for e in errors[:20]
    ]


async def hitl_error_response(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HitlError)
    headers = {"WWW-Authenticate": 'Bearer realm="hitl"'} if isinstance(exc, Unauthorized) else None
    return JSONResponse(exc.to_dict(), status_code=exc.code, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    revoked = await verify_pending(request)  # a remembered token grant: a revoked token gets 401 first
    if revoked is not None:
        return await hitl_error_response(request, revoked)
    errors = list(exc.errors())
    message = _first_error_message(errors)
    if errors and tuple(errors[0].get("loc", ())) == ("body",) and errors[0].get("type") == "model_attributes_type":
        content_type = request.headers.get("content-type", "")
        message = "the body must be a JSON object" + (
            "" if "json" in content_type else " sent with 'Content-Type: application/json'"
        )
    return JSONResponse(error_body("InvalidInput", message, errors=_plain_errors(errors)), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    name = _HTTP_NAMES.get(exc.status_code, "HTTPError")
    message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, default=str)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}"
    return JSONResponse(error_body(name, message), status_code=exc.status_code, headers=exc.headers)


async def _bug(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        error_body("InternalError", "internal server error; the server log has the details"), status_code=500
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HitlError, hitl_error_response)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _bug)


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(body: bytes) -> bool:
    """True when a JSON body decodes to text with an unpaired surrogate (``"\\ud800"``): such
    text cannot be stored as UTF-8. The cheap byte scan keeps ordinary bodies on the fast path."""
    if not _SURROGATE_ESCAPE.search(body):
        return False
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return False  # not JSON: the app's own parser reports that
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class BodyGuardMiddleware:
    """Check request bodies before the app sees them.

    * Over ``max_bytes``: a JSON 413. A declared ``Content-Length`` over the limit is refused
      without reading; a chunked body is counted as it streams and refused as it passes the limit.
    * Text that cannot be stored (unpaired UTF-16 surrogates in JSON escapes): a JSON 422.

    Bodies that pass (the app reads them whole anyway) are handed on in one piece.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_error(send, 400, "InvalidInput", "the Content-Length header is not a number")
                    return
                if declared > self.max_bytes:
                    await self._too_large(send)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if has_lone_surrogate(body):
            await send_error(send, 422, "InvalidInput", "the body holds text with an unpaired UTF-16 surrogate")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await send_error(
            send, 413, "PayloadTooLarge", f"the request body is larger than the limit of {self.max_bytes} bytes"
        )


async def send_error(send: Send, status: int, name: str, message: str) -> None:
    """A JSON error straight on the ASGI channel (for middleware, below FastAPI's handlers)."""
    body = json.dumps(error_body(name, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
