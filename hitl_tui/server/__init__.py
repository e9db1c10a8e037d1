"""The shared approval server: HTTP in front of a ``LocalBackend``.

It translates HTTP to backend calls and back (auth, roles, limits, errors, SSE) and holds no
business rule the backend lacks. ``create_app(backend, settings)`` builds the ASGI app.
``schemas`` (the wire models) imports nothing heavy, so the HTTP client can share it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":  # lazily: importing the wire schemas must not pull in FastAPI
        from .app import create_app

        return create_app
    raise AttributeError(name)
