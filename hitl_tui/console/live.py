"""The console's one live path: the backend's change feed, with reconnects.

``LiveFeed.run`` subscribes from the last seen sequence number and hands each event to the
console. When the backend goes away it reports *disconnected*, waits (exponential backoff) and
subscribes again from the same sequence number, so no event is lost or seen twice. After a
reconnect the console resynchronises its panes once the feed has stayed up for a moment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from ..backend.base import Backend
from ..errors import HitlError
from ..models import Event

log = logging.getLogger(__name__)


class LinkState(StrEnum):
    connecting = "connecting"
    live = "live"
    disconnected = "disconnected"
    reconnecting = "reconnecting"


@dataclass(frozen=True)
class Link:
    state: LinkState
    detail: str = ""
    retry_in: float | None = None

    @property
    def up(self) -> bool:
        return self.state is LinkState.live


class LiveFeed:
    def __init__(
        self,
        backend: Backend,
        *,
        on_event: Callable[[Event], None],
        on_link: Callable[[Link], None],
        on_sync: Callable[[], None],
        min_backoff: float = 0.25,
        max_backoff: float = 5.0,
        stable_after: float = 2.0,
    ) -> None:
        self.backend = backend
        self.on_event = on_event
        self.on_link = on_link
        self.on_sync = on_sync
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.stable_after = stable_after
        self.last_seq: int | None = None
        self.link = Link(LinkState.connecting)
        self.failures = 0

    def _set(self, link: Link) -> None:
        self.link = link
        self.on_link(link)

    def _confirm(self) -> None:
        """The feed is up again: say so and let the console reload what it shows."""
        if self.link.state is not LinkState.live:
            self.failures = 0
            self._set(Link(LinkState.live))
            self.on_sync()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            confirm: asyncio.TimerHandle | None = None
            try:
                if self.last_seq is None:
                    self.last_seq = await self.backend.last_seq()
                if self.failures == 0:
                    self._confirm()
                else:
                    self._set(Link(LinkState.reconnecting, f"attempt {self.failures}"))
                    confirm = loop.call_later(self.stable_after, self._confirm)
                # reconnect=False: a lost connection shows as "disconnected" at once; this loop
                # reconnects (the backend's own retries would look "live" while the server is down)
                async for event in self.backend.subscribe(after_seq=self.last_seq, reconnect=False):
                    self.last_seq = event.seq
                    if self.link.state is not LinkState.live:
                        self._confirm()
                    try:
                        self.on_event(event)
                    except Exception:  # a display bug must not look like a lost backend
                        log.exception("console failed to show event %s", event.seq)
                raise ConnectionError("the change feed ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                delay = min(self.max_backoff, self.min_backoff * 2 ** (self.failures - 1))
                message = exc.message if isinstance(exc, HitlError) else str(exc) or type(exc).__name__
                log.info("live feed lost: %s (retrying in %.1fs)", message, delay)
                self._set(Link(LinkState.disconnected, message, delay))
                await asyncio.sleep(delay)
            finally:
                if confirm is not None:
                    confirm.cancel()
