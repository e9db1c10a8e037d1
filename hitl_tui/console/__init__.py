"""The reviewer console (Textual). ``HitlConsole(backend, settings, clock=...)``; ``hitl console`` runs it."""

from .app import HitlConsole

__all__ = ["HitlConsole"]
