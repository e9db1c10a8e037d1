"""The detail panel of one after-the-fact review item: arguments, the (stored) result, the verdict.

Bounded like the request detail (:mod:`hitl_tui.console.preview`); ``v`` or ``enter`` shows it all
(:func:`review_full_text`).
"""

from __future__ import annotations

from datetime import datetime

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from ...models import ReviewItem, Verdict
from ..adapters import clock_time, one_line
from ..preview import DETAIL_CHARS, json_preview, shown_in_part, text_preview
from .text_viewer import FullText

#: characters of the result the panel shows
PREVIEW_CHARS = 2000
#: characters of the arguments the panel shows
ARGS_CHARS = DETAIL_CHARS // 2


def _header(item: ReviewItem, now: datetime, note_limit: int | None) -> list[Content]:
    parts: list[Content] = [
        Content.assemble(
            (f"#{item.id} ", "$text-muted"),
            (one_line(item.tool, 100), "bold"),
            "  by ",
            (one_line(item.agent, 60), "bold"),
            ("  ran at ", "$text-muted"),
            clock_time(item.created_at, now),
        )
    ]
    if item.reviewed:
        style = "bold $text-error" if item.verdict is Verdict.flagged else "bold $text-success"
        verdict = "FLAGGED" if item.verdict is Verdict.flagged else "OK"
        parts.append(
            Content.assemble(
                (verdict, style),
                " by ",
                one_line(item.reviewer, 40),
                " at ",
                clock_time(item.reviewed_at, now),
                (f": {one_line(item.note, note_limit)}" if item.note else ""),
            )
        )
    else:
        parts.append(Content.styled("not reviewed yet", "bold $text-warning"))
    return parts


def _result_heading(item: ReviewItem) -> Content:
    stored = (
        f"{len(item.result):,} of {item.result_length:,} characters stored"
        if item.truncated
        else f"{len(item.result):,} characters"
    )
    return Content.assemble(("Result", "bold $text-accent"), (f"  ({stored})", "$text-muted"))


_EMPTY = Content.styled("(empty)", "$text-muted")
_TRUNCATED = Content.styled("(the agent stored only the first part of a longer result)", "$text-muted")


def review_content(item: ReviewItem, now: datetime) -> Content:
    """The detail panel: at most about :data:`DETAIL_CHARS` characters, whatever the agent sent."""
    parts = _header(item, now, 500)
    args, args_cut = json_preview(item.args, ARGS_CHARS)
    result, left = text_preview(item.result, PREVIEW_CHARS)
    if args_cut or left:
        parts.append(shown_in_part())
    parts += [Content(""), Content.styled("Arguments", "bold $text-accent"), args]
    parts += [Content(""), _result_heading(item), result if item.result else _EMPTY]
    if item.truncated and not left:
        parts.append(_TRUNCATED)
    return Content("\n").join(parts)


def review_full_text(item: ReviewItem, now: datetime) -> FullText:
    """Everything the item holds, uncut, for the full-text viewer (``v``)."""
    full = FullText()
    for part in _header(item, now, None):
        full.add(part)
    full.heading("Arguments").json(item.args)
    full.add(Content("")).add(_result_heading(item))
    if item.result:
        full.text(item.result)
    else:
        full.add(_EMPTY)
    if item.truncated:
        full.add(_TRUNCATED)
    return full


class ReviewDetail(VerticalScroll, can_focus=True):
    DEFAULT_CSS = """
    ReviewDetail { height: 1fr; padding: 0 1; border-top: hkey $panel-lighten-2; border-title-style: bold; }
    ReviewDetail:focus { border-top: hkey $primary; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.item: ReviewItem | None = None
        self._body = Static(Content("Select an item to review it."))

    def compose(self):
        yield self._body

    def on_mount(self) -> None:
        self.border_title = "Details"

    def show(self, item: ReviewItem | None, now: datetime) -> None:
        same = self.item is not None and item is not None and self.item.id == item.id
        self.item = item
        if item is None:
            self._body.update(Content.styled("No item selected.", "$text-muted"))
            return
        self._body.update(review_content(item, now))
        if not same:
            self.scroll_home(animate=False)
