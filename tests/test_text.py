"""The sanitiser: nothing a terminal acts on survives; ordinary text is untouched."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hitl_tui.text import is_clean, sanitise

HOSTILE = [
    "\x1b[2J\x1b[H",  # clear screen
    "\x1b]52;c;ZXZpbA==\x07",  # OSC 52 clipboard write
    "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "\x1bP+q\x1b\\",  # DCS
    "\x9b31m",  # C1 CSI
    "safe\rOVERWRITE",
    "abc\x08\x08\x08xyz",
    "\u202eevil\u202c",
    "a\u200bb\u2066c\u2069",
    "nul\x00byte",
    "\ud800 lone surrogate",
    "\x7f delete",
]


def test_hostile_strings_become_visible_escapes() -> None:
    for s in HOSTILE:
        out = sanitise(s)
        assert is_clean(out), repr(s)
        assert "\x1b" not in out and "\x9b" not in out and "\r" not in out
    assert sanitise("\x1b[2J") == "\\x1b[2J"
    assert sanitise("\u202eevil") == "\\u202eevil"
    assert sanitise("\x9b") == "\\x9b"


def test_markup_is_left_as_text_not_removed() -> None:
    # Escaping markup is the widget's job (render as Text); the sanitiser must not eat brackets.
    assert sanitise("[@click=app.quit]x[/]") == "[@click=app.quit]x[/]"


def test_newlines_tabs_and_oneline() -> None:
    assert sanitise("a\nb\tc") == "a\nb\tc"
    assert sanitise("a\nb\tc", oneline=True) == "a\u21b5b c"


def test_limit_cuts_with_ellipsis_and_stays_cheap_on_huge_input() -> None:
    out = sanitise("x" * 1_000_000, limit=50)
    assert len(out) == 50 and out.endswith("\u2026")
    assert sanitise("short", limit=50) == "short"


@given(st.text())
def test_output_is_always_clean_and_ordinary_text_unchanged(s: str) -> None:
    out = sanitise(s)
    assert is_clean(out)
    if is_clean(s):
        assert out == s
    assert is_clean(sanitise(s, oneline=True)) and "\n" not in sanitise(s, oneline=True)
