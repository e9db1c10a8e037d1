"""Stores: SQL and transactions, nothing else. ``open_store(url)`` picks the implementation."""

from __future__ import annotations

from pathlib import Path

from .base import AuditReport, Store

__all__ = ["AuditReport", "Store", "open_store"]


def open_store(url: str | Path, **kwargs: object) -> Store:
    """``sqlite:///path``, a plain file path, or ``postgresql://...``."""
    text = str(url)
    if text.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore  # imported lazily: psycopg is only needed here

        return PostgresStore(text, **kwargs)  # type: ignore[arg-type]
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") :]
    elif text.startswith("sqlite://"):
        text = text[len("sqlite://") :]
    from .sqlite import SQLiteStore

    return SQLiteStore(text, **kwargs)  # type: ignore[arg-type]
