"""Printing for the CLI: JSON for machines, sanitised aligned tables for people."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import InvalidInput
from ..text import sanitise


def emit_json(obj: Any) -> None:
    def default(o: Any) -> Any:
        if isinstance(o, BaseModel):
            return o.model_dump(mode="json")
        if isinstance(o, datetime):
            return o.isoformat()
        raise TypeError(type(o).__name__)

    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    elif isinstance(obj, list):
        obj = [o.model_dump(mode="json") if isinstance(o, BaseModel) else o for o in obj]
    json.dump(obj, sys.stdout, indent=2, default=default, ensure_ascii=False)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, max_width: int = 60) -> None:
    cells = [[sanitise("" if c is None else c, oneline=True, limit=max_width) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    print("  ".join(h.upper().ljust(widths[i]) for i, h in enumerate(headers)).rstrip())
    for row in cells:
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())


def age(dt: datetime | None, now: datetime | None = None) -> str:
    if dt is None:
        return "-"
    secs = int(((now or datetime.now(UTC)) - dt).total_seconds())
    sign = "" if secs >= 0 else "in "
    secs = abs(secs)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{sign}{secs // size}{unit}"
    return f"{sign}{secs}s"


def parse_json_object(text: str | None, what: str = "--args") -> dict[str, Any]:
    if text is None or text == "":
        return {}
    if text == "-":
        text = sys.stdin.read()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})") from None
    if not isinstance(value, dict):
        raise InvalidInput(f'{what} must be a JSON object, like \'{{"env": "prod"}}\'')
    return value


def validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    return f"{loc}: {first['msg']}" if loc else first["msg"]


def build(model: type[BaseModel], **fields: Any) -> Any:
    """Validate CLI input into a model, turning errors into one-line ``InvalidInput``."""
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc)) from None


def int_between(low: int, high: int, what: str = "a whole number") -> Callable[[str], int]:
    """An argparse ``type``: a whole number from ``low`` to ``high``; anything else is a usage error
    (exit 64) at parse time, like a value that is not a number at all."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            message = f"{what} must be a whole number from {low} to {high}, not {text!r}"
            raise argparse.ArgumentTypeError(message) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be from {low} to {high}, not {value}")
        return value

    parse.__name__ = what  # argparse names the type in its own messages
    return parse


#: the commands that decide or write something a name is recorded on (``--as`` matters to them)
WRITING_COMMANDS = frozenset({
    "request", "cancel", "approve", "deny", "escalate", "reply", "takeover", "resolve",
    "review", "stages", "promote", "demote", "policy",
})


def as_ignored_warning(as_name: str | None, backend: Any) -> str | None:
    """The one stderr line for ``--as NAME`` over a server whose token has another name (the server
    records the token's name, whatever ``--as`` says), or None. ``backend.identity`` is the token's
    name once a call was made (``HttpBackend``); an embedded store has none and honours ``--as``."""
    identity = getattr(backend, "identity", None)
    if not as_name or not isinstance(identity, str) or as_name == identity:
        return None
    return (
        f"hitl: warning: --as {sanitise(as_name, oneline=True, limit=80)} is ignored over a server: "
        f"it records the token's name, {sanitise(identity, oneline=True, limit=80)}"
    )
