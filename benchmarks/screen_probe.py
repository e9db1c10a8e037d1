"""Time what the screen shows, inside the app's own loop.

``ScreenProbe`` wraps two of a running Textual app's methods on the instance (the app's code is
untouched): ``App._display``, called once per completed frame (the compositor's update, also when
headless), and a widget's ``render_line``, called while that frame is composed. A frame's time is
taken as it is handed to the display, so "on screen at t" means: the frame holding it was complete
at t. This avoids the tens of milliseconds a Pilot ``press()`` + ``pause()`` round trip adds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from typing import Any


class ScreenProbe:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.frames = 0
        self.last_frame = 0.0
        self._marks: set[Hashable] = set()  # what the frame being composed shows
        self.first_seen: dict[Hashable, float] = {}
        self._events: dict[Hashable, asyncio.Event] = {}
        self._frame_waiters: list[tuple[Callable[[], bool], asyncio.Future[float]]] = []
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is None:
                return
            now = time.monotonic()
            self.frames += 1
            self.last_frame = now
            for mark in self._marks:
                if mark not in self.first_seen:
                    self.first_seen[mark] = now
                    ev = self._events.get(mark)
                    if ev is not None:
                        ev.set()
            self._marks.clear()
            for entry in list(self._frame_waiters):
                cond, fut = entry
                if not fut.done() and cond():
                    fut.set_result(now)
                    self._frame_waiters.remove(entry)

        app._display = display

    def watch_rows(self, widget: Any, mark_of: Callable[[int], Hashable | None]) -> None:
        """Mark every row ``y`` the widget renders with ``mark_of(y)`` (None: nothing to mark)."""
        original = widget.render_line

        def render_line(y: int) -> Any:
            strip = original(y)
            mark = mark_of(y)
            if mark is not None:
                self._marks.add(mark)
            return strip

        widget.render_line = render_line

    def watch_class(self, cls: type, mark_of: Callable[[Any, int], Hashable | None]) -> Callable[[], None]:
        """Like :meth:`watch_rows` for every instance of ``cls``, from before the first frame (for
        widgets that paint during start-up). Returns the function that removes the hook."""
        original = cls.render_line
        probe = self

        def render_line(widget: Any, y: int) -> Any:
            strip = original(widget, y)
            mark = mark_of(widget, y)
            if mark is not None:
                probe._marks.add(mark)
            return strip

        cls.render_line = render_line  # type: ignore[attr-defined]

        def undo() -> None:
            cls.render_line = original  # type: ignore[attr-defined]

        return undo

    def mark(self, mark: Hashable) -> None:
        """Mark the frame being composed (call from a render hook)."""
        self._marks.add(mark)

    async def seen(self, mark: Hashable, timeout: float = 30.0) -> float:
        """The time of the first frame that showed ``mark``."""
        if mark not in self.first_seen:
            ev = self._events.setdefault(mark, asyncio.Event())
            async with asyncio.timeout(timeout):
                await ev.wait()
        return self.first_seen[mark]

    def expect(self, cond: Callable[[], bool]) -> asyncio.Future[float]:
        """A future for the time of the next completed frame at which ``cond()`` holds. Register it
        *before* causing the change (a Pilot key press returns only after the app has repainted)."""
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._frame_waiters.append((cond, fut))
        return fut

    async def frame_where(self, cond: Callable[[], bool], timeout: float = 30.0) -> float:
        """The time of the next completed frame at which ``cond()`` holds."""
        return await self.wait(self.expect(cond), timeout)

    async def wait(self, fut: asyncio.Future[float], timeout: float = 30.0) -> float:
        try:
            async with asyncio.timeout(timeout):
                return await fut
        finally:
            self._frame_waiters = [(c, f) for c, f in self._frame_waiters if f is not fut]
