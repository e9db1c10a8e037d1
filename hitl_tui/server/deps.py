"""What every route needs: the wrapped backend, the settings, and waiting that ends early when
the client goes away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from ..backend.local import LocalBackend
from ..config import Settings

T = TypeVar("T")

#: the longest one long-poll is held open; clients re-issue it until they are done waiting
MAX_POLL_S = 60.0


async def get_backend(request: Request) -> LocalBackend:
    return request.app.state.backend  # type: ignore[no-any-return]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


BackendDep = Annotated[LocalBackend, Depends(get_backend)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def _client_gone(request: Request) -> None:
    # The request has no body (GET), so the next message on the channel is the disconnect.
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """Await ``work`` but give up (returning None) as soon as the client disconnects, so an
    abandoned long-poll releases its waiter at once instead of at its timeout."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_client_gone(request))
    metrics = request.app.state.metrics
    metrics.long_polls += 1
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        metrics.long_polls -= 1
        for t in (task, watch):
            if not t.done():
                t.cancel()
        for t in (task, watch):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
    if task.done() and not task.cancelled():
        return task.result()
    return None
