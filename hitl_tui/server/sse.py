"""Server-Sent Events of the change feed.

Each event is sent as ``id: <seq>``, ``event: <kind>``, ``data: <event JSON>``; a comment ping
every ``PING_S`` seconds lets both sides notice a dead connection. The stream reads from
``LocalBackend.subscribe(after)``: the backlog from the log, then live events from the process's
one event hub, in order and none twice. If the store goes away mid-stream the server sends one
``event: error`` and closes; the client reconnects with ``Last-Event-ID``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

from sse_starlette.event import ServerSentEvent

from ..backend.local import LocalBackend
from ..errors import HitlError

log = logging.getLogger("hitl_tui.server")

PING_S = 15


async def event_stream(backend: LocalBackend, after: int) -> AsyncIterator[ServerSentEvent]:
    try:
        async for ev in backend.subscribe(after):
            yield ServerSentEvent(data=ev.model_dump_json(), event=ev.kind.value, id=str(ev.seq))
    except HitlError as exc:
        log.warning("event stream ended: %s", exc.message)
        yield ServerSentEvent(data=json.dumps(exc.to_dict()), event="error")
