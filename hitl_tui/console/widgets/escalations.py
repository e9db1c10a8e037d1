"""Pane 2: escalation threads. A chat view of the conversation and a reply box under it."""

from __future__ import annotations

from typing import ClassVar

from pydantic import ValidationError
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Input

from ...errors import HitlError
from ...models import Escalation, EscalationStatus, Event, Page
from ..adapters import escalation_cells, one_line
from ..filters import Filter, FilterError
from ..screens import ConfirmScreen
from .chat_view import ChatView, thread_full_text
from .pane import Pane
from .text_viewer import FullTextScreen
from .virtual_table import Column, VirtualTable

COLUMNS = [
    Column("id", "ID", width=4, right=True, drop=3),
    Column("status", "STATUS", width=11),
    Column("agent", "AGENT", flex=1, min_width=10),
    Column("last", "LAST MESSAGE", flex=4, min_width=14),
    Column("msgs", "MSGS", width=4, right=True, drop=2),
    Column("age", "AGE", width=4, right=True, drop=1),
]

CLOSED = (EscalationStatus.resolved,)


class ReplyBox(Input):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", priority=True),
        Binding("escape", "leave", "Leave"),
    ]

    DEFAULT_CSS = """
    ReplyBox { height: 3; margin: 0 0; }
    """

    def action_send(self) -> None:
        self.post_message(Input.Submitted(self, self.value))

    def action_leave(self) -> None:
        pane = next((a for a in self.ancestors if isinstance(a, EscalationsPane)), None)
        if pane is not None:
            pane.table.focus()


class EscalationsPane(Pane):
    PANE_ID = "escalations"
    TITLE = "Escalations"
    NOUN = "threads"
    FILTER_KEYS = frozenset({"agent", "status"})
    FILTER_HELP = "agent:NAME status:open|answered|taken_over|resolved|all"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reply", "Reply"),
        Binding("t", "take_over", "Take over"),
        Binding("x", "resolve", "Resolve"),
        Binding("v", "view", "Full text"),
    ]
    WRITE_ACTIONS: ClassVar[dict[str, str]] = {"reply": "reply", "take_over": "take over", "resolve": "resolve"}

    def compose(self) -> ComposeResult:
        console = self.console
        yield from self.compose_list(
            VirtualTable(
                COLUMNS,
                fetch=self._fetch,
                render_row=lambda e: escalation_cells(e, console.now(), console.reviewer),
                key=lambda e: e.id,
                is_inactive=lambda e: e.status in CLOSED,
                empty_text="No escalations. Agents escalate here when they are unsure.",
                id="escalations-table",
            )
        )
        with Vertical(id="escalations-thread"):
            yield ChatView(id="escalations-chat")
            yield ReplyBox(placeholder="r: reply · enter/ctrl+s: send · esc: leave", id="escalations-reply")

    @property
    def chat(self) -> ChatView:
        return self.query_one(ChatView)

    @property
    def reply_box(self) -> ReplyBox:
        return self.query_one(ReplyBox)

    def list_title(self) -> str:
        status = self.filter.get("status")
        return "Threads" if not status else f"Threads ({status})"

    def validate_filter(self, new: Filter) -> None:
        status = new.get("status")
        if status and status != "all" and status not in EscalationStatus.__members__:
            raise FilterError(f"status:{status} is not one of open, answered, taken_over, resolved, all")
        if new.words:
            raise FilterError("use agent:NAME or status:STATE")

    async def _fetch(self, offset: int, limit: int) -> Page:
        status = self.filter.get("status")
        return await self.console.backend.list_escalations(
            None if not status or status == "all" else EscalationStatus(status),
            agent=self.filter.get("agent"),
            offset=offset,
            limit=limit,
        )

    async def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        await self.chat.show(event.item, self.console.now(), self.console.reviewer)
        self._update_reply_state()

    def on_virtual_table_activated(self, _event: VirtualTable.Activated) -> None:
        self.action_reply()

    def _update_reply_state(self) -> None:
        esc = self.chat.escalation
        box = self.reply_box
        box.disabled = esc is None or esc.status is EscalationStatus.resolved or self.console.read_only
        if esc is not None and esc.status is EscalationStatus.resolved:
            box.placeholder = "Resolved: this thread takes no more replies."
        elif self.console.read_only:
            box.placeholder = "Read-only connection: replies are disabled."
        else:
            box.placeholder = "r: reply · enter/ctrl+s: send · esc: leave"

    # ----------------------------------------------------------------- live
    def handle_event(self, event: Event) -> None:
        esc = None
        if "message_count" not in event.payload:  # a message event carries the new message only: read
            try:
                esc = Escalation.model_validate(event.payload)
            except ValidationError:
                pass
        if esc is not None:
            self.apply(esc)
        self.reload()

    def apply(self, esc: Escalation) -> None:
        self.table.update_item(esc)  # the chat follows through VirtualTable.Highlighted

    # ----------------------------------------------------------------- actions
    def _current(self) -> Escalation | None:
        esc = self.table.cursor_item
        if esc is None:
            self.console.say("No thread selected.", "warning")
        return esc

    def action_reply(self) -> None:
        esc = self._current()
        if esc is None or not self.console.ensure_writable("reply"):
            return
        if esc.status is EscalationStatus.resolved:
            self.console.say(f"Escalation {esc.id} is resolved: it takes no more replies.", "warning")
            return
        self.reply_box.focus()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input is not self.reply_box:
            return
        event.stop()
        text = event.value.strip()
        esc = self.chat.escalation
        if not text or esc is None:
            return
        if not self.console.ensure_writable("reply"):
            return
        self.run_worker(self._send(esc.id, text), group="reply", exit_on_error=False)

    async def _send(self, escalation_id: int, text: str) -> None:
        console = self.console
        try:
            out = await console.backend.post_message(escalation_id, text, author=console.reviewer)
        except HitlError as exc:
            console.say(f"Reply not sent: {exc.message}", "error")
            return
        if self.reply_box.value.strip() == text:
            self.reply_box.value = ""
        self.apply(out)
        console.say(f"Replied to {one_line(out.agent, 40)} (#{out.id}).")

    def action_view(self) -> None:
        esc = self.chat.escalation
        if esc is None:
            self.console.say("No thread selected.", "warning")
            return
        title = Content.assemble(f"Escalation #{esc.id} from ", (one_line(esc.agent, 40), "bold"))
        self.app.push_screen(FullTextScreen(title, thread_full_text(esc, self.console.now(), self.console.reviewer)))

    def action_take_over(self) -> None:
        esc = self._current()
        if esc is None or not self.console.ensure_writable("take over"):
            return
        if esc.status in (EscalationStatus.taken_over, EscalationStatus.resolved):
            self.console.say(f"Escalation {esc.id} is already {esc.status.value.replace('_', ' ')}.", "warning")
            return
        self.app.push_screen(
            ConfirmScreen(
                Content.assemble(f"Take over #{esc.id} from ", (one_line(esc.agent, 40), "bold"), "?"),
                Content("The agent is told a human has taken over and stops waiting for an answer."),
                confirm_label="Take over",
                reason="optional",
                reason_placeholder="Note for the record",
            ),
            lambda note: self._set_status(esc, EscalationStatus.taken_over, note) if note is not None else None,
        )

    def action_resolve(self) -> None:
        esc = self._current()
        if esc is None or not self.console.ensure_writable("resolve"):
            return
        if esc.status is EscalationStatus.resolved:
            self.console.say(f"Escalation {esc.id} is already resolved.", "warning")
            return
        self.app.push_screen(
            ConfirmScreen(
                Content.assemble(f"Resolve #{esc.id} from ", (one_line(esc.agent, 40), "bold"), "?"),
                confirm_label="Resolve",
                reason="optional",
                reason_placeholder="Resolution note",
            ),
            lambda note: self._set_status(esc, EscalationStatus.resolved, note) if note is not None else None,
        )

    def _set_status(self, esc: Escalation, status: EscalationStatus, note: str | None) -> None:
        async def run() -> None:
            console = self.console
            try:
                out = await console.backend.set_escalation_status(
                    esc.id, status, actor=console.reviewer, note=note or None
                )
            except HitlError as exc:
                console.say(f"Escalation {esc.id}: {exc.message}", "error")
                return
            self.apply(out)
            console.say(f"Escalation {out.id} {out.status.value.replace('_', ' ')}.")

        self.run_worker(run(), group="escalation-status", exit_on_error=False)
