"""Agent-provided text is hostile. ``sanitise`` makes it safe to put in front of a terminal.

Control characters (C0 except newline and tab, ESC, DEL, C1), bidi overrides and isolates,
invisible zero-width characters, line/paragraph separators and lone surrogates become visible
escapes such as ``\\x1b`` or ``\\u202e``. The result contains no byte a terminal would act on.
It does not escape markup: widgets must render the result as literal text (``rich.text.Text`` /
``textual.content.Content``), never as markup.
"""

from __future__ import annotations

import re

_BIDI_AND_INVISIBLE = (
    "\u061c\u200b\u200c\u200d\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f\ufeff"
    "\ufff9\ufffa\ufffb"
)
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + _BIDI_AND_INVISIBLE + "\ud800-\udfff]")
_UNSAFE_ONELINE = re.compile("[\x00-\x1f\x7f-\x9f" + _BIDI_AND_INVISIBLE + "\ud800-\udfff]")


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    if ch == "\n":
        return "\u21b5"  # ↵
    if ch == "\t":
        return " "
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def sanitise(text: object, *, oneline: bool = False, limit: int | None = None) -> str:
    """Return ``text`` with every terminal-active or invisible character made visible.

    ``oneline`` also folds newlines (shown as ``↵``) and tabs, for table cells and titles.
    ``limit`` cuts the result to that many characters, ending with ``…`` when it cut.
    """
    s = text if isinstance(text, str) else str(text)
    if limit is not None and len(s) > limit * 4:
        s = s[: limit * 4]  # escapes grow text at most 6x; cut early so 1 MB strings stay cheap
    s = (_UNSAFE_ONELINE if oneline else _UNSAFE).sub(_escape, s)
    if limit is not None and len(s) > limit:
        s = s[: max(0, limit - 1)] + "\u2026"
    return s


def is_clean(text: str) -> bool:
    """True when ``text`` holds nothing ``sanitise`` would change (newlines and tabs allowed)."""
    return _UNSAFE.search(text) is None
