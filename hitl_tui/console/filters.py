"""The ``/`` filter language: ``key:value`` terms plus free words.

``tool:deploy agent:bot-7 since:2h status:all risky words`` → terms and words. Each pane says
which keys it understands; unknown keys are an error the filter bar shows, never ignored.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import timedelta

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class FilterError(ValueError):
    """A filter the pane cannot apply; the message says why."""


@dataclass(frozen=True)
class Filter:
    terms: dict[str, str] = field(default_factory=dict)
    words: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def get(self, key: str) -> str | None:
        return self.terms.get(key)

    def __bool__(self) -> bool:
        return bool(self.terms or self.words)


def parse_filter(text: str, keys: frozenset[str]) -> Filter:
    try:
        parts = shlex.split(text)
    except ValueError:
        parts = text.split()
    terms: dict[str, str] = {}
    words: list[str] = []
    for part in parts:
        key, sep, value = part.partition(":")
        if sep and key.isidentifier():
            key = key.lower()
            if key not in keys:
                raise FilterError(f"unknown filter {key!r}; use {', '.join(sorted(keys))}")
            if not value:
                raise FilterError(f"{key}: needs a value")
            terms[key] = value
        else:
            words.append(part)
    return Filter(terms, tuple(words))


def parse_duration(text: str) -> timedelta:
    m = _DURATION.match(text.strip().lower())
    if not m:
        raise FilterError(f"{text!r} is not a duration like 30m, 2h or 7d")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
