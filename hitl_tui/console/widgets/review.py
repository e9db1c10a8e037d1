"""Pane 3: the after-the-fact review queue. Unreviewed first; mark OK or flag with a note, one or many."""

from __future__ import annotations

from typing import ClassVar

from pydantic import ValidationError
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content

from ...errors import HitlError
from ...models import Event, Page, ReviewItem, ReviewMark, Verdict
from ..adapters import one_line, review_cells
from ..filters import Filter, FilterError, parse_duration
from ..screens import ConfirmScreen
from .pane import Pane
from .review_detail import ReviewDetail, review_full_text
from .text_viewer import FullTextScreen
from .virtual_table import Column, VirtualTable

COLUMNS = [
    Column("id", "ID", width=5, right=True, drop=3),
    Column("mark", "STATE", width=10),  # unreviewed
    Column("tool", "TOOL", flex=2, min_width=10),
    Column("agent", "AGENT", flex=1, min_width=8, drop=2),
    Column("result", "RESULT", flex=4, min_width=12, drop=1),
    Column("age", "AGE", width=4, right=True),
]

STATES = {"unreviewed": False, "new": False, "reviewed": True, "all": None}  # new: the old word, still read


class ReviewPane(Pane):
    PANE_ID = "review"
    TITLE = "Review"
    NOUN = "items"
    FILTER_KEYS = frozenset({"tool", "agent", "since", "verdict", "state"})
    FILTER_HELP = (
        "tool:NAME agent:NAME since:2h verdict:ok|flagged state:unreviewed|reviewed|all (a bare word is a tool)"
    )

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "mark_ok", "Mark OK"),
        Binding("f", "flag", "Flag"),
        Binding("space", "toggle_select", "Select"),
        Binding("v", "view", "Result"),
        Binding("escape", "back", "Back to list", show=False),
    ]
    WRITE_ACTIONS: ClassVar[dict[str, str]] = {"mark_ok": "mark", "flag": "flag", "toggle_select": "mark"}

    def compose(self) -> ComposeResult:
        console = self.console
        yield from self.compose_list(
            VirtualTable(
                COLUMNS,
                fetch=self._fetch,
                render_row=lambda i: review_cells(i, console.now()),
                key=lambda i: i.id,
                is_inactive=lambda i: i.reviewed,
                empty_text="Nothing to review. Actions that ran with review-after land here.",
                id="review-table",
            )
        )
        yield ReviewDetail(id="review-detail")

    @property
    def detail(self) -> ReviewDetail:
        return self.query_one(ReviewDetail)

    def list_title(self) -> str:
        return "Review queue"

    def title_extras(self) -> list[str]:
        """What the tab's count counts, so the two numbers agree: the list shows every item."""
        if STATES[self.filter.get("state") or "all"] is False or self.console.counts.review is None:
            return []
        return [f"{self.console.counts.review:,} unreviewed"]

    def validate_filter(self, new: Filter) -> None:
        if (state := new.get("state")) and state not in STATES:
            raise FilterError(f"state:{state} is not one of unreviewed, reviewed, all")
        if (verdict := new.get("verdict")) and verdict not in Verdict.__members__:
            raise FilterError(f"verdict:{verdict} is not one of ok, flagged")
        if since := new.get("since"):
            parse_duration(since)
        if len(new.words) > 1 or (new.words and new.get("tool")):
            raise FilterError("one tool name at most (or use tool:NAME agent:NAME)")

    async def _fetch(self, offset: int, limit: int) -> Page:
        f = self.filter
        since = f.get("since")
        return await self.console.backend.list_reviews(
            STATES[f.get("state") or "all"],
            tool=f.get("tool") or (f.words[0] if f.words else None),
            agent=f.get("agent"),
            since=self.console.now() - parse_duration(since) if since else None,
            verdict=f.get("verdict"),
            offset=offset,
            limit=limit,
        )

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        self.detail.show(event.item, self.console.now())

    def on_virtual_table_activated(self, _event: VirtualTable.Activated) -> None:
        self.action_view()

    def action_back(self) -> None:
        self.table.focus()

    def handle_event(self, event: Event) -> None:
        try:
            self.table.update_item(ReviewItem.model_validate(event.payload))
        except ValidationError:
            pass
        self.reload()

    # ----------------------------------------------------------------- actions
    def _targets(self) -> list[ReviewItem]:
        if self.table.selected:
            return sorted(self.table.selected.values(), key=lambda i: i.id)
        item = self.table.cursor_item
        if item is None:
            self.console.say("No item selected.", "warning")
            return []
        return [item]

    def action_toggle_select(self) -> None:
        if self.table.toggle_selected():
            self.table.action_cursor_down()
            self.refresh_title()

    def action_view(self) -> None:
        item = self.table.cursor_item
        if item is None:
            return
        title = Content.assemble(
            f"Review #{item.id} ", (one_line(item.tool, 60), "bold"), " by ", one_line(item.agent, 40)
        )
        self.app.push_screen(FullTextScreen(title, review_full_text(item, self.console.now())))

    def action_mark_ok(self) -> None:
        items = self._targets()
        if items and self.console.ensure_writable("mark"):
            self._mark(items, ReviewMark(verdict=Verdict.ok))

    def action_flag(self) -> None:
        items = self._targets()
        if not items or not self.console.ensure_writable("flag"):
            return
        what = (
            f"{len(items)} items"
            if len(items) > 1
            else Content.assemble(f"#{items[0].id} ", one_line(items[0].tool, 60))
        )
        self.app.push_screen(
            ConfirmScreen(
                Content.assemble("Flag ", what),
                confirm_label="Flag",
                reason="required",
                reason_placeholder="What is wrong? (recorded)",
                danger=True,
            ),
            lambda note: self._mark(items, ReviewMark(verdict=Verdict.flagged, note=note)) if note else None,
        )

    def _mark(self, items: list[ReviewItem], mark: ReviewMark) -> None:
        if len(items) == 1 and not self.table.selected and getattr(self.table.cursor_item, "id", None) == items[0].id:
            # Marked items sink below the unreviewed ones: step to the next item now, so the
            # cursor stays in the queue instead of following this one to the bottom.
            self.table.action_cursor_down()

        async def run() -> None:
            console = self.console
            done = 0
            for item in items:
                try:
                    out = await console.backend.mark_review(item.id, mark, reviewer=console.reviewer)
                except HitlError as exc:
                    console.say(f"Review item {item.id} not marked: {exc.message}", "error")
                    break
                self.table.update_item(out)
                self.table.selected.pop(item.id, None)
                done += 1
            self.table.refresh()
            self.refresh_title()
            verb = "OK" if mark.verdict is Verdict.ok else "flagged"
            if done == 1:
                console.say(f"Marked #{items[0].id} {verb}.")
            elif done:
                console.say(f"Marked {done} items {verb}.")

        self.run_worker(run(), group="mark", exit_on_error=False)
