"""Bounded previews of agent text for the detail panels; the whole text is one key (``v``) away.

A detail panel re-renders on every countdown tick and every live update, so what it renders must
not grow with what an agent sent: a 1 MB argument would otherwise become ~17,000 wrapped,
highlighted lines. Each field gets a share of :data:`DETAIL_CHARS`; what does not fit is cut with a
visible ``… N more characters`` marker, and the panel says ``press v to view all``. Arguments that
fit stay exactly the pretty, highlighted JSON they always were.

Everything here is built from sanitised text (:func:`hitl_tui.text.sanitise`, or
:func:`~hitl_tui.console.adapters.safe_json` for JSON) as literal ``Content``, never markup. The
work done is bounded by the budget, not by the size of the input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from textual.content import Content, Span

from .adapters import block, json_content, one_line, safe_json

#: characters one detail panel shows at most, over all its agent-provided fields
DETAIL_CHARS = 20_000

#: the style of a "… N more characters" marker
MARK = "italic $text-warning"

#: what the panels say when they cut something
VIEW_ALL = "press v to view all"

#: the panel's own line near its top when any field was cut (short: the panel can be 40 columns wide)
SHOWN_IN_PART = f"Shown in part: {VIEW_ALL}"


def shown_in_part() -> Content:
    return Content.styled(SHOWN_IN_PART, "bold $text-warning")


#: JSON below this depth is shown; deeper containers collapse to ``{…}`` / ``[…]``
MAX_DEPTH = 32

# the styles Textual's JSON highlighter gives each token, so a cut object looks like a whole one
_BASE = "$text"
_KEY = "$text-primary bold"
_STRING = "$text-success 90%"
_NUMBER = "$text-warning"
_CONSTANT = "bold $text-success 80%"

#: escaping never makes a character longer than this (``\\u202e``)
_MAX_GROWTH = 6


def _json_string_body(text: str) -> str:
    """``text`` as the inside of a JSON string literal, escaped like :func:`safe_json`."""
    return safe_json(text)[1:-1]


def cut_escaped(text: str, limit: int, escape: Callable[[str], str]) -> tuple[str, int]:
    """The longest prefix of ``text`` whose escaped form fits in ``limit`` characters.

    Returns the escaped prefix and how many characters of ``text`` it holds. Escaping maps each
    character on its own, so cutting before escaping never splits an escape sequence.
    """
    k = min(len(text), limit)
    for _ in range(6):
        shown = escape(text[:k])
        if len(shown) <= limit:
            return shown, k
        k = max(0, k * limit // len(shown) - 1)
    k = limit // _MAX_GROWTH
    return escape(text[:k]), k


def _nth_newline(text: str, n: int, end: int) -> int:
    """The index of the ``n``-th newline of ``text[:end]``, or ``end`` when there are fewer."""
    pos = -1
    for _ in range(n):
        pos = text.find("\n", pos + 1, end)
        if pos < 0:
            return end
    return pos


def more_marker(left: int, what: str = "characters") -> Content:
    return Content.styled(f"… {left:,} more {what}: {VIEW_ALL}", MARK)


def text_preview(value: str, limit: int) -> tuple[Content, int]:
    """Agent text for a multi-line block, at most ``limit`` characters and ``limit // 25`` lines.

    Returns the ``Content`` (ending with a marker when cut) and how many characters were left out.
    """
    max_lines = max(20, limit // 25)
    end = _nth_newline(value, max_lines, min(len(value), limit * _MAX_GROWTH))
    shown, used = cut_escaped(value[:end], limit, block)
    left = len(value) - used
    if not left:
        return Content(shown), 0
    return Content("\n").join([Content(shown + "…"), more_marker(left)]), left


def line_preview(value: str, limit: int) -> tuple[Content, int]:
    """Agent text that must stay one line (a summary): newlines shown as ``↵``, at most ``limit``
    characters. A summary with line breaks cannot then pass for the panel's own sections."""
    shown, used = cut_escaped(value, limit, one_line)
    left = len(value) - used
    if not left:
        return Content(shown), 0
    return Content("\n").join([Content(shown + "…"), more_marker(left)]), left


def quoted(text: Content, style: str = "$text-muted") -> Content:
    """Multi-line agent text with a gutter on every line, so none of it can pose as a heading."""
    return Content("\n").join(Content.assemble(("▏", style), line) for line in text.split("\n"))


# --------------------------------------------------------------------------- JSON


def _exceeds(obj: Any, budget: int) -> bool:
    """Would the pretty JSON of ``obj`` be longer than ``budget`` (escapes aside)?

    Walks at most about ``budget`` steps: every value adds at least two characters.
    """
    total = 0
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            total += len(value) + 2
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                return True
            total += 2 + len(value) * (2 * depth + 4)
            if total > budget:
                return True
            if isinstance(value, dict):
                for k, v in value.items():
                    total += len(str(k)) + 4
                    stack.append((v, depth + 1))
                    if total > budget:
                        return True
            else:
                stack.extend((v, depth + 1) for v in value)
        else:
            total += 5
        if total > budget:
            return True
    return False


def _count(n: int, keys: bool, more: bool = False) -> str:
    """``1 key``, ``2,001 more items``."""
    return f"{n:,} {'more ' if more else ''}{'key' if keys else 'item'}{'' if n == 1 else 's'}"


class _Emitter:
    """Pretty JSON in the layout of ``json.dumps(indent=2)``, cut to a budget, as highlighted ``Content``."""

    def __init__(self, budget: int, string_limit: int) -> None:
        self.budget = budget
        self.string_limit = string_limit
        self.parts: list[str] = []
        self.spans: list[Span] = []
        self.pos = 0
        self.left_out = 0  # characters of strings not shown (containers cut short are counted apart)
        self.cut = False

    def put(self, text: str, style: str | None = None) -> None:
        if style:
            self.spans.append(Span(self.pos, self.pos + len(text), style))
        self.parts.append(text)
        self.pos += len(text)

    def string(self, value: str, style: str) -> None:
        shown, used = cut_escaped(value, self.string_limit, _json_string_body)
        if used == len(value):
            self.put(f'"{shown}"', style)
            return
        self.put(f'"{shown}…"', style)
        self.put(f" … {len(value) - used:,} more characters", MARK)
        self.left_out += len(value) - used
        self.cut = True

    def value(self, value: Any, depth: int, indent: str) -> None:
        if isinstance(value, str):
            self.string(value, _STRING)
        elif isinstance(value, dict | list):
            self.container(value, depth, indent)
        elif value is None or isinstance(value, bool):
            self.put(json.dumps(value), _CONSTANT)
        else:  # a number: JSON parsing allows at most 4,300 digits
            self.put(json.dumps(value), _NUMBER)

    def container(self, value: dict[Any, Any] | list[Any], depth: int, indent: str) -> None:
        is_dict = isinstance(value, dict)
        opening, closing = ("{", "}") if is_dict else ("[", "]")
        if not value:
            self.put(opening + closing)
            return
        if depth >= MAX_DEPTH:
            self.put(f"{opening}…{closing}")
            self.put(f" … {_count(len(value), is_dict)} nested deeper", MARK)
            self.cut = True
            return
        self.put(opening)
        inner = indent + "  "
        items = iter(value.items()) if isinstance(value, dict) else iter(value)
        for i, item in enumerate(items):
            if i:
                self.put(",")
            self.put("\n" + inner)
            if self.pos >= self.budget:
                self.put(f"… {_count(len(value) - i, is_dict, more=True)}", MARK)
                self.cut = True
                break
            if is_dict:
                key, item = item
                self.string(str(key), _KEY)
                self.put(": ")
            self.value(item, depth + 1, inner)
        self.put("\n" + indent + closing)

    def content(self) -> Content:
        text = "".join(self.parts)
        return Content(text, [Span(0, len(text), _BASE), *self.spans])


def json_preview(obj: Any, budget: int) -> tuple[Content, bool]:
    """Highlighted pretty JSON of ``obj`` in about ``budget`` characters; ``True`` when something was cut.

    An object that fits is rendered exactly as :func:`json_content` renders it. One that does not
    keeps its shape: long strings (keys too) are cut with a ``… N more characters`` marker, and
    containers stop with ``… N more items`` once the budget is spent.
    """
    if not _exceeds(obj, budget):
        text = safe_json(obj)
        if len(text) <= budget:
            return json_content(obj), False
    emitter = _Emitter(budget, string_limit=max(200, budget // 4))
    emitter.value(obj, 0, "")
    return emitter.content(), emitter.cut
