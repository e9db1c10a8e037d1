"""Backends: the one interface for the console, SDK and CLI. ``open_backend`` picks one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Backend

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["Backend", "can_open_inline", "open_backend"]


def can_open_inline(settings: Settings) -> bool:
    """Whether ``settings`` name an embedded SQLite store, which ``open_backend(inline=True)`` opens."""
    return not settings.server and not (settings.store or "").startswith(("postgresql://", "postgres://"))


def open_backend(settings: Settings, *, agent_token: bool = False, inline: bool = False) -> Backend:
    """A shared server when ``settings.server`` is set, else the embedded store.

    ``inline``: a SQLite store for one round of calls driven by ``backend.local.run_inline`` (no
    event loop, no threads; see ``backend.local``). Only when :func:`can_open_inline`."""
    if settings.server and not inline:
        from .http import HttpBackend  # httpx is imported only when a server is used

        return HttpBackend(settings.server, token=settings.token)
    if inline and not can_open_inline(settings):
        raise ValueError("only an embedded SQLite store opens inline")
    from ..config import default_store_path
    from ..store import open_store
    from .local import LocalBackend

    if inline:
        store = open_store(settings.store or default_store_path(), inline=True)
        return LocalBackend(store, actor=settings.reviewer, settings=settings.policy, hub=False)
    store = open_store(settings.store or default_store_path())
    return LocalBackend(store, actor=settings.reviewer, settings=settings.policy)
