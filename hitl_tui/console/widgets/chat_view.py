"""A chat-style view of one escalation thread: agent on the left, humans on the right, with times.

Each message and the context are bounded (:mod:`hitl_tui.console.preview`); ``v`` in the pane shows
the whole thread (:func:`thread_full_text`).
"""

from __future__ import annotations

from datetime import datetime

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from ...models import Escalation, EscalationMessage, MessageRole
from ..adapters import clock_time, one_line
from ..preview import text_preview
from .text_viewer import FullText

#: characters of one message (and of the context) the conversation shows
MESSAGE_CHARS = 2000
#: the newest messages the conversation shows; earlier ones are counted on a line above them
#: (``v`` shows the whole thread). An agent looping on "still stuck" must not mount a widget per message.
THREAD_WINDOW = 200


def _message_head(msg: EscalationMessage, now: datetime, reviewer: str) -> Content:
    who = one_line(msg.author, 60)
    if msg.role is MessageRole.human and msg.author == reviewer:
        who += " (you)"
    return Content.assemble((who, "bold"), ("  " + clock_time(msg.at, now), "$text-muted"))


def message_content(msg: EscalationMessage, now: datetime, reviewer: str) -> Content:
    text, _left = text_preview(msg.text, MESSAGE_CHARS)
    return Content.assemble(_message_head(msg, now, reviewer), "\n", text)


def context_content(esc: Escalation) -> Content:
    text, _left = text_preview(esc.context or "", MESSAGE_CHARS)
    return Content.assemble(("Context: ", "bold $text-muted"), text)


def thread_full_text(esc: Escalation, now: datetime, reviewer: str) -> FullText:
    """The whole thread, uncut, for the full-text viewer (``v``)."""
    full = FullText()
    if esc.context:
        full.heading("Context", "bold $text-muted").text(esc.context)
    for msg in esc.messages:
        if full.lines:
            full.add(Content(""))
        full.add(_message_head(msg, now, reviewer)).text(msg.text)
    return full


class MessageBubble(Static):
    DEFAULT_CSS = """
    MessageBubble { height: auto; padding: 0 1; margin: 0 0 1 0; }
    MessageBubble.-agent { margin-right: 6; background: $boost; border-left: outer $warning; }
    MessageBubble.-human { margin-left: 6; background: $primary 15%; border-right: outer $primary; }
    """


class ChatView(VerticalScroll, can_focus=True):
    DEFAULT_CSS = """
    ChatView { height: 1fr; padding: 0 1; border-top: hkey $panel-lighten-2; border-title-style: bold; }
    ChatView:focus { border-top: hkey $primary; }
    ChatView > #chat-empty { color: $text-muted; }
    ChatView > #chat-earlier { color: $text-muted; text-align: center; margin: 0 0 1 0; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.escalation: Escalation | None = None
        self._shown = 0

    def on_mount(self) -> None:
        self.border_title = "Conversation"

    async def show(self, esc: Escalation | None, now: datetime, reviewer: str) -> None:
        same = self.escalation is not None and esc is not None and self.escalation.id == esc.id
        self.escalation = esc
        if esc is None:
            await self.remove_children()
            self._shown = 0
            await self.mount(Static("Select a thread to read it.", id="chat-empty"))
            self.border_title = "Conversation"
            return
        self.border_title = Content(f"#{esc.id} {one_line(esc.agent, 40)} · {esc.status.value.replace('_', ' ')}")
        if not same or len(esc.messages) < self._shown:
            await self.remove_children()
            self._shown = 0
            if esc.context:
                await self.mount(Static(context_content(esc), classes="context"))
            await self.mount(Static("", id="chat-earlier", markup=False))
        total = len(esc.messages)
        new = esc.messages[max(self._shown, total - THREAD_WINDOW) :]
        if new:
            await self.mount_all(
                [
                    MessageBubble(
                        message_content(m, now, reviewer), classes="-human" if m.role is MessageRole.human else "-agent"
                    )
                    for m in new
                ]
            )
            self._shown = total
            bubbles = list(self.query_children(MessageBubble))
            if len(bubbles) > THREAD_WINDOW:
                await self.remove_children(bubbles[: len(bubbles) - THREAD_WINDOW])
        earlier = self.query_one("#chat-earlier", Static)
        hidden = total - min(total, THREAD_WINDOW)
        earlier.display = hidden > 0
        if hidden:
            noun = "message" if hidden == 1 else "messages"
            earlier.update(f"{hidden:,} earlier {noun} · v shows the whole thread")
        self.scroll_end(animate=False)
