"""Pane 1: pending approval requests, riskiest and newest first, with the request in detail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import ValidationError
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen

from ...errors import Conflict, HitlError, decided_conflict
from ...models import RISK_ORDER, ApprovalRequest, DecisionIn, Event, EventKind, Page, RequestStatus
from ..adapters import (
    age,
    args_diff,
    changed_paths,
    clock_time,
    expiry_cell,
    local_times,
    one_line,
    quorum_text,
    request_cells,
)
from ..filters import Filter, FilterError
from ..screens import ConfirmScreen, EditArgsScreen
from .pane import Pane
from .request_detail import RequestDetail, request_full_text
from .text_viewer import FullTextScreen
from .virtual_table import Column, VirtualTable

COLUMNS = [
    Column("id", "ID", width=5, right=True, drop=6),
    Column("risk", "RISK", width=9),
    Column("tool", "TOOL", flex=2, min_width=14),
    Column("agent", "AGENT", flex=1, min_width=10, drop=2),
    Column("summary", "SUMMARY", flex=4, min_width=14, drop=1),
    Column("conf", "CONF", width=4, right=True, drop=4),
    Column("quorum", "VOTES", width=5, drop=3),
    Column("age", "AGE", width=4, right=True, drop=5),
    Column("expires", "EXPIRES", width=9, right=True),  # or the outcome: "cancelled" is 9
]


def ranks_before(req: ApprovalRequest, other: ApprovalRequest) -> bool:
    """The list's order (the stores' ``ORDER BY risk_rank DESC, id DESC``): riskiest, then newest."""
    return (RISK_ORDER[req.risk], req.id) > (RISK_ORDER[other.risk], other.id)


def request_label(req: ApprovalRequest) -> Content:
    return Content.assemble(
        (f"#{req.id} ", "$text-muted"), (one_line(req.tool, 60), "bold"), " by ", one_line(req.agent, 40)
    )


class ApprovalsPane(Pane):
    PANE_ID = "approvals"
    TITLE = "Approvals"
    NOUN = "requests"
    FILTER_KEYS = frozenset({"tool", "agent", "status"})
    FILTER_HELP = "words search tool/agent/summary · tool:NAME agent:NAME status:pending|approved|denied|expired|all"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "approve", "Approve"),
        Binding("d", "deny", "Deny"),
        Binding("e", "edit", "Edit"),
        Binding("space", "toggle_select", "Select"),
        Binding("A", "approve_selected", "Approve all", show=False),  # the title says so once a row is selected
        Binding("v", "view", "Full text", show=False),  # the footer is full at 80 columns; the detail says "press v"
        Binding("escape", "back", "Back to list", show=False),
    ]
    WRITE_ACTIONS: ClassVar[dict[str, str]] = {
        "approve": "decide",
        "deny": "decide",
        "edit": "decide",
        "toggle_select": "decide",
        "approve_selected": "decide",
    }

    _detail_clock: tuple[object, ...] | None = None  # the time-dependent text the detail last showed (tick)

    def __init__(self) -> None:
        super().__init__()
        self._dialogs: list[tuple[Screen[Any], int]] = []  # open dialogs and the request each acts on

    def compose(self) -> ComposeResult:
        console = self.console
        yield from self.compose_list(
            VirtualTable(
                COLUMNS,
                fetch=self._fetch,
                render_row=lambda r: request_cells(r, console.now()),
                key=lambda r: r.id,
                is_inactive=lambda r: r.status is not RequestStatus.pending,
                empty_text="No pending requests. New ones appear here as agents ask.",
                id="approvals-table",
            )
        )
        yield RequestDetail(id="approvals-detail")

    @property
    def detail(self) -> RequestDetail:
        return self.query_one(RequestDetail)

    def selection_hint(self) -> str:
        return "A approves them"

    def list_title(self) -> str:
        status = self.filter.get("status") or "pending"
        return "Pending requests" if status == "pending" else f"{status.capitalize()} requests"

    # ----------------------------------------------------------------- data
    def _status(self) -> RequestStatus | None:
        value = self.filter.get("status") or "pending"
        return None if value == "all" else RequestStatus(value)

    def validate_filter(self, new: Filter) -> None:
        status = new.get("status")
        if status and status != "all" and status not in RequestStatus.__members__:
            raise FilterError(f"status:{status} is not one of pending, approved, denied, expired, cancelled, all")

    @property
    def counts_pending(self) -> bool:
        """Whether this list, as filtered now, is every pending request (its total is the tab count)."""
        f = self.filter
        return self._status() is RequestStatus.pending and not (f.text or f.get("agent") or f.get("tool"))

    async def _fetch(self, offset: int, limit: int) -> Page:
        f = self.filter
        every_pending = self.counts_pending
        page = await self.console.backend.list_requests(
            self._status(), agent=f.get("agent"), tool=f.get("tool"), search=f.text or None, offset=offset, limit=limit
        )
        if every_pending:
            self.console.set_pending_count(page.total)
        return page

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        self.detail.show(event.item, self.console.now(), self.console.reviewer)

    def on_virtual_table_activated(self, _event: VirtualTable.Activated) -> None:
        self.detail.focus()

    def action_back(self) -> None:
        self.table.focus()

    def action_view(self) -> None:
        req = self.detail.request  # what the detail shows, even when it left the list
        if req is None:
            self.console.say("No request selected.", "warning")
            return
        full = request_full_text(req, self.console.now(), self.console.reviewer)
        self.app.push_screen(FullTextScreen(request_label(req), full))

    def tick(self) -> None:
        self.table.refresh_changed()  # only the ages and countdowns that moved: often nothing
        req = self.detail.request
        if req is not None and req.is_pending and req.expires_at is not None:
            now = self.console.now()
            shown = (req.id, clock_time(req.created_at, now), age(req.created_at, now), expiry_cell(req, now))
            if shown != self._detail_clock:  # "expires in 2h59m" moves once a minute: re-render then
                self._detail_clock = shown
                self.detail.show(req, now, self.console.reviewer)

    # ----------------------------------------------------------------- live
    def handle_event(self, event: Event) -> None:
        try:
            req = ApprovalRequest.model_validate(event.payload)
        except ValidationError:
            req = None
        if req is not None:
            self.apply(req)
            if event.kind is EventKind.request_created and req.is_pending and self.counts_pending:
                reading = self.table.reading
                if self.table.insert_item(req, ranks_before):
                    # The event holds the committed request: it is shown at once, in its place,
                    # with the tab count. With no read in flight the rows are the last read plus
                    # every event since, so they are what a read would return: none is needed.
                    # A read in flight began before this request: it is dropped and read again
                    # once the frame is out.
                    self.console.set_pending_count(self.table.total)
                    if reading:
                        self.call_after_refresh(self.reload)
                    return
        self.reload()

    def apply(self, req: ApprovalRequest) -> None:
        """Fresh data for one request (an event, or the answer to our own decision)."""
        if not req.is_pending and self._dialogs:
            self._close_dialogs_for(req)
        self.table.update_item(req)
        shown = self.detail.request
        if shown is not None and shown.id == req.id and shown != req:  # the same data twice: no re-render
            self.detail.show(req, self.console.now(), self.console.reviewer)

    # ----------------------------------------------------------------- actions
    def _target(self) -> ApprovalRequest | None:
        req = self.table.cursor_item
        if req is None:
            self.console.say("No request selected.", "warning")
            return None
        if not self.console.ensure_writable("decide"):
            return None
        if not req.is_pending:
            conflict = decided_conflict(req.status.value, req.decided_by, req.decided_at, req.id)
            self.console.say(self._conflict_text(conflict), "error")
            return None
        return req

    def _irreversible(self, req: ApprovalRequest) -> bool:
        cap = self.console.capability_for(req.tool, req.agent)
        return req.irreversible or bool(cap and cap.irreversible)

    def action_approve(self) -> None:
        req = self._target()
        if req is None:
            return
        if self._irreversible(req):
            title = Content.assemble("Approve IRREVERSIBLE ", request_label(req), "?")
            body = Content.styled(
                "Policy marks this tool irreversible: once it runs it cannot be undone.\n"
                "Check the arguments in the detail panel first.  y: approve  ·  n/esc: cancel",
                "$text-warning",
            )
            self._ask(
                req,
                ConfirmScreen(title, body, confirm_label="Approve", danger=True),
                lambda reason: self._decide(req, DecisionIn(decision="approve")) if reason is not None else None,
            )
            return
        self._decide(req, DecisionIn(decision="approve"))

    def action_deny(self) -> None:
        req = self._target()
        if req is None:
            return
        self._ask(
            req,
            ConfirmScreen(
                Content.assemble("Deny ", request_label(req)),
                confirm_label="Deny",
                reason="required",
                reason_placeholder="Why? (recorded and shown to the agent)",
                danger=True,
            ),
            lambda reason: self._decide(req, DecisionIn(decision="deny", reason=reason)) if reason else None,
        )

    def action_edit(self) -> None:
        req = self._target()
        if req is None:
            return

        def edited(value: dict[str, Any] | None) -> None:
            if value is None:
                return
            if value == req.effective_args:
                self.console.say("No changes: press a to approve the arguments as proposed.", "warning")
                return
            paths = changed_paths(req.effective_args, value)
            parts = [args_diff(req.effective_args, value)]
            if self._irreversible(req):
                parts.insert(0, Content.styled("IRREVERSIBLE: once it runs it cannot be undone.\n", "bold $text-error"))
            self._ask(
                req,
                ConfirmScreen(
                    Content.assemble("Approve ", request_label(req), " with these changes?"),
                    Content("").join(parts),
                    confirm_label="Approve edited",
                    reason="optional",
                    danger=self._irreversible(req),
                ),
                lambda reason: (
                    self._decide(
                        req,
                        DecisionIn(
                            decision="approve",
                            edited_args=value,
                            reason="edited " + ", ".join(paths[:10]) + (f": {reason}" if reason else ""),
                        ),
                    )
                    if reason is not None
                    else None
                ),
            )

        self._ask(req, EditArgsScreen(req), edited)

    def _ask(self, req: ApprovalRequest, screen: Screen[Any], callback: Callable[[Any], None]) -> None:
        """Open a dialog about one request; it closes if the request is decided elsewhere meanwhile."""
        self._dialogs = [(s, rid) for s, rid in self._dialogs if s in self.app.screen_stack]
        self._dialogs.append((screen, req.id))
        self.app.push_screen(screen, callback)

    def _close_dialogs_for(self, req: ApprovalRequest) -> None:
        """``req`` was decided (or expired, or was cancelled) elsewhere: a dialog still offering to
        decide it closes (as if cancelled), and the reviewer is told who decided it and when."""
        stack = self.app.screen_stack
        mine = [s for s, rid in self._dialogs if rid == req.id and s in stack]
        self._dialogs = [(s, rid) for s, rid in self._dialogs if rid != req.id and s in stack]
        if not mine:
            return
        lowest = min(stack.index(s) for s in mine)
        while len(self.app.screen_stack) > lowest:  # it and anything opened on top of it
            self.app.screen.dismiss(None)
        conflict = decided_conflict(req.status.value, req.decided_by, req.decided_at, req.id)
        self.console.say(
            f"{self._conflict_text(conflict)}. Your dialog for it was closed; nothing was sent.",
            "warning",
            title=f"Request {req.id} decided elsewhere" if req.decided_by else f"Request {req.id} {req.status.value}",
            timeout=15,
        )

    def action_toggle_select(self) -> None:
        if self.table.toggle_selected():
            self.table.action_cursor_down()
            self.refresh_title()

    def action_approve_selected(self) -> None:
        if not self.console.ensure_writable("decide"):
            return
        chosen = sorted(self.table.selected.values(), key=lambda r: r.id)
        if not chosen:
            self.console.say("Nothing selected: space selects requests, A approves them all.", "warning")
            return
        lines = []
        for r in chosen:
            flag = "  IRREVERSIBLE" if self._irreversible(r) else ""
            state = "" if r.is_pending else f"  ({r.status.value}: will be skipped)"
            lines.append(
                Content.assemble(
                    request_label(r), (f"  {r.risk.value}", "$text-muted"), (flag, "bold $text-error"), state
                )
            )
        danger = any(self._irreversible(r) for r in chosen)
        self.app.push_screen(
            ConfirmScreen(
                f"Approve {len(chosen)} selected requests?",
                Content("\n").join(lines),
                confirm_label=f"Approve {len(chosen)}",
                reason="optional",
                danger=danger,
            ),
            lambda reason: self._batch(chosen, reason or None) if reason is not None else None,
        )

    # ----------------------------------------------------------------- sending
    def _conflict_text(self, exc: HitlError) -> str:
        """Who decided and when, the time on the console's clock."""
        return local_times(exc.message, self.console.now())

    def _decide(self, req: ApprovalRequest, decision: DecisionIn) -> None:
        self.run_worker(self._send(req, decision), group="decide", exit_on_error=False)

    async def _send(self, req: ApprovalRequest, decision: DecisionIn) -> ApprovalRequest | None:
        console = self.console
        try:
            out = await console.backend.decide(req.id, decision, reviewer=console.reviewer)
        except Conflict as exc:
            console.say(self._conflict_text(exc), "error", title=f"Request {req.id} not decided")
            await self._refetch(req.id)
            return None
        except HitlError as exc:
            console.say(f"Not sent: {exc.message}", "error", title=f"Request {req.id}")
            return None
        self.apply(out)
        label = one_line(out.tool, 60)
        if out.status is RequestStatus.pending:
            console.say(f"Voted {decision.decision} on #{out.id} {label}: {quorum_text(out)}")
        else:
            console.say(f"{out.status.value.capitalize()} #{out.id} {label}")
        return out

    async def _refetch(self, request_id: int) -> None:
        try:
            fresh = await self.console.backend.get_request(request_id)
        except HitlError:
            return
        self.apply(fresh)

    async def _run_batch(self, chosen: list[ApprovalRequest], reason: str | None) -> None:
        console = self.console
        done, refused = 0, []
        for req in chosen:
            if not req.is_pending:
                refused.append(
                    self._conflict_text(decided_conflict(req.status.value, req.decided_by, req.decided_at, req.id))
                )
                continue
            try:
                out = await console.backend.decide(
                    req.id, DecisionIn(decision="approve", reason=reason), reviewer=console.reviewer
                )
            except Conflict as exc:
                refused.append(self._conflict_text(exc))
                await self._refetch(req.id)
                continue
            except HitlError as exc:
                refused.append(f"request {req.id}: not sent: {exc.message}")
                break
            self.apply(out)
            self.table.selected.pop(req.id, None)
            done += 1
        self.table.selected.clear()
        self.table.refresh()
        self.refresh_title()
        if refused:
            console.say(
                f"Approved {done} of {len(chosen)}. Not approved:\n" + "\n".join(refused[:8]), "error", timeout=15
            )
        else:
            console.say(f"Approved {done} requests.")

    def _batch(self, chosen: list[ApprovalRequest], reason: str | None) -> None:
        self.run_worker(self._run_batch(chosen, reason), group="decide", exit_on_error=False)
