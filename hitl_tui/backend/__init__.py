"""Backends: the one interface for the console, SDK and CLI. ``open_backend`` picks one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Backend

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["Backend", "open_backend"]


def open_backend(settings: Settings, *, agent_token: bool = False) -> Backend:
    """A shared server when ``settings.server`` is set, else the embedded store."""
    if settings.server:
        from .http import HttpBackend  # httpx is imported only when a server is used

        return HttpBackend(settings.server, token=settings.token)
    from ..config import default_store_path
    from ..store import open_store
    from .local import LocalBackend

    store = open_store(settings.store or default_store_path())
    return LocalBackend(store, actor=settings.reviewer, settings=settings.policy)
