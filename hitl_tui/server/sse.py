"""Server-Sent Events of the change feed.

Each event is sent as ``id: <seq>``, ``event: <kind>``, ``data: <event JSON>``; a comment ping
every ``PING_S`` seconds lets both sides notice a dead connection. The stream reads from
``LocalBackend.subscribe(after)``: the backlog from the log, then live events from the process's
one event hub, in order and none twice. If the store goes away mid-stream the server sends one
``event: error`` and closes; the client reconnects with ``Last-Event-ID``. An agent token's
stream carries only the events of its own items (see ``Identity.may_see``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable

from sse_starlette.event import ServerSentEvent

from ..backend.local import LocalBackend
from ..errors import HitlError
from ..models import Event

log = logging.getLogger("hitl_tui.server")

PING_S = 15


async def event_stream(
    backend: LocalBackend, after: int, visible: Callable[[Event], bool] | None = None
) -> AsyncIterator[ServerSentEvent]:
    """``visible``: which events this caller may see (an agent's scope); the others are skipped,
    so ids have gaps but stay in order, and ``Last-Event-ID`` resumes exactly as before."""
    try:
        async for ev in backend.subscribe(after):
            if visible is not None and not visible(ev):
                continue
            yield ServerSentEvent(data=ev.model_dump_json(), event=ev.kind.value, id=str(ev.seq))
    except HitlError as exc:
        log.warning("event stream ended: %s", exc.message)
        yield ServerSentEvent(data=json.dumps(exc.to_dict()), event="error")
