"""``create_app(backend, settings)``: the FastAPI application around one ``LocalBackend``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import FastAPI

from .. import __version__
from ..backend.local import LocalBackend
from ..config import Settings
from ..models import Event, EventKind
from .errors import BodyGuardMiddleware, install_error_handlers
from .filing import FilingFastLane, LaneCounts
from .grants import GrantCache
from .metrics import Metrics, follow_feed
from .routes import capabilities, escalations, events, meta, requests, reviews, tokens

DESCRIPTION = """\
The shared approval backend of hitl-tui. Every call needs `Authorization: Bearer <token>`
(except `/healthz` and these docs); the token decides who you are and what you may do
(`agent`, `reviewer`, `admin`). Errors are JSON: `{"error": Name, "message": text, ...}`.
"""


class _ReviewMarks:
    """The backend as the flag watcher sees it: its change feed carries only review marks, the one
    kind the watcher acts on, so the event hub builds no event object per filing for it."""

    def __init__(self, backend: LocalBackend) -> None:
        self._backend = backend

    def subscribe(self, after_seq: int | None = None, *, reconnect: bool = True) -> AsyncIterator[Event]:
        return self._backend.subscribe(after_seq, kinds=(EventKind.review_marked,))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


#: the cyclic collector's first threshold while the server runs (CPython's default is 700)
GC_GEN0_THRESHOLD = 10_000


@contextlib.contextmanager
def _serving_gc() -> Iterator[None]:
    """The garbage collector tuned for serving. With 32 requests in flight, the objects alive at
    once pass CPython's default first threshold (700) every few requests, though nearly all of
    them die by reference counting, and every third collection or so reached the older
    generations, which hold everything imported and built at start-up: 7% of the event loop's
    time under load, in pauses that showed in the p99. So: what exists when serving starts is
    frozen out of collection (it lives as long as the process), and the first threshold is
    higher. Garbage in reference cycles is still collected, a little later. Undone on exit."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(GC_GEN0_THRESHOLD, thresholds[0]), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def create_app(backend: LocalBackend, settings: Settings, *, close_backend: bool = False) -> FastAPI:
    """The API around ``backend``. With ``close_backend`` the app closes it on shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from ..autonomy.demotion import watch_flags

        counter = asyncio.create_task(follow_feed(backend, app.state.metrics), name="hitl-metrics")
        stop = asyncio.Event()
        # A flagged after-the-fact review demotes its autonomous capability ([autonomy] demote_on_flag).
        flags = asyncio.create_task(watch_flags(_ReviewMarks(backend), settings, stop), name="hitl-flag-watch")
        try:
            with _serving_gc():
                yield
        finally:
            stop.set()
            for task in (counter, flags):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            if close_backend:
                await backend.close()

    app = FastAPI(
        title="hitl-tui approval server",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.backend = backend
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.grants = GrantCache()  # token grants for writes that re-check them (grants.py)
    install_error_handlers(app)
    # the last added runs first: the body guard, then the filing lane, then FastAPI's routing
    app.state.lane = LaneCounts()
    app.add_middleware(FilingFastLane, backend=backend, grants=app.state.grants, counts=app.state.lane)
    app.add_middleware(BodyGuardMiddleware, max_bytes=settings.serve.max_body_bytes)
    for module in (meta, requests, escalations, reviews, capabilities, events, tokens):
        app.include_router(module.router)
    return app
