"""The detail panel of one after-the-fact review item: arguments, the (stored) result, the verdict."""

from __future__ import annotations

from datetime import datetime

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from ...models import ReviewItem, Verdict
from ..adapters import block, clock_time, json_content, one_line

PREVIEW_CHARS = 2000


def review_content(item: ReviewItem, now: datetime, *, full: bool = False) -> Content:
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
                (f": {one_line(item.note, 500)}" if item.note else ""),
            )
        )
    else:
        parts.append(Content.styled("not reviewed yet", "bold $text-warning"))
    parts += [Content(""), Content.styled("Arguments", "bold $text-accent"), json_content(item.args)]
    result = item.result
    stored = (
        f"{len(item.result):,} of {item.result_length:,} characters stored"
        if item.truncated
        else f"{len(result):,} characters"
    )
    parts += [Content(""), Content.assemble(("Result", "bold $text-accent"), (f"  ({stored})", "$text-muted"))]
    if not full and len(result) > PREVIEW_CHARS:
        parts.append(Content(block(result[:PREVIEW_CHARS])))
        parts.append(
            Content.styled(f"… {len(result) - PREVIEW_CHARS:,} more characters: enter shows all", "$text-muted")
        )
    else:
        parts.append(Content(block(result)) if result else Content.styled("(empty)", "$text-muted"))
        if item.truncated:
            parts.append(Content.styled("(the agent stored only the first part of a longer result)", "$text-muted"))
    return Content("\n").join(parts)


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
