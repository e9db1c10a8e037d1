"""The detail panel of one approval request: arguments as highlighted JSON, policy reason, context, votes.

The panel is bounded (:mod:`hitl_tui.console.preview`): it re-renders on every countdown tick, so a
1 MB argument is cut with a marker and ``v`` (:func:`request_full_text`) shows all of it.
"""

from __future__ import annotations

from datetime import datetime

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from ...models import ApprovalRequest, RequestStatus
from ..adapters import (
    clock_time,
    countdown,
    decided_banner,
    one_line,
    quorum_text,
    short_duration,
)
from ..preview import DETAIL_CHARS, json_preview, line_preview, quoted, shown_in_part, text_preview
from .text_viewer import FullText

#: each field's share of :data:`DETAIL_CHARS` (arguments share theirs with edited arguments)
SHARES = {"summary": 0.15, "policy": 0.10, "args": 0.50, "context": 0.25}


def _field_previews(req: ApprovalRequest) -> tuple[list[Content], bool]:
    """Summary, policy reason, arguments and context, each cut to its share; and whether any was cut."""
    parts: list[Content] = []
    cut = False

    def text(title: str, value: str, share: float, *, single: bool = False, agent: bool = True) -> None:
        """``single``: one line (newlines as ↵). ``agent``: the agent's own words, quoted with a
        gutter so that no line of them can pass for one of this panel's headings."""
        nonlocal cut
        limit = int(DETAIL_CHARS * share)
        shown, left = line_preview(value, limit) if single else text_preview(value, limit)
        parts.extend([Content(""), Content.styled(title, "bold $text-accent"), quoted(shown) if agent else shown])
        cut = cut or left > 0

    def args(title: Content, value: object, budget: int) -> None:
        nonlocal cut
        shown, was_cut = json_preview(value, budget)
        parts.extend([Content(""), title, shown])
        cut = cut or was_cut

    if req.summary:
        text("Summary", req.summary, SHARES["summary"], single=True)
    if req.policy_reason:
        text("Policy", req.policy_reason, SHARES["policy"], agent=False)
    budget = int(DETAIL_CHARS * SHARES["args"])
    if req.edited_args is not None:
        budget //= 2
    args(Content.styled("Arguments", "bold $text-accent"), req.args, budget)
    if req.edited_args is not None:
        args(Content.styled("Edited arguments (what runs)", "bold $text-warning"), req.edited_args, budget)
    if req.context:
        text("Agent context", req.context, SHARES["context"])
    return parts, cut


def _header(req: ApprovalRequest, now: datetime, reviewer: str) -> list[Content]:
    parts: list[Content] = []
    banner = decided_banner(req, now, reviewer)
    if banner is not None:
        parts.append(banner)
    parts.append(
        Content.assemble(
            (f"#{req.id} ", "$text-muted"),
            (one_line(req.tool, 100), "bold"),
            "  by ",
            (one_line(req.agent, 60), "bold"),
        )
    )
    facts: list[Content | str | tuple[str, str]] = [("risk ", "$text-muted"), (req.risk.value.upper(), "bold")]
    if req.irreversible:
        facts += ["  ", ("IRREVERSIBLE", "bold $text-error")]
    facts += ["  ", ("confidence ", "$text-muted"), "-" if req.confidence is None else f"{req.confidence}%"]
    if req.required_approvals > 1:
        facts += ["  ", (quorum_text(req), "bold $text-warning")]
    parts.append(Content.assemble(*facts))
    times: list[Content | str | tuple[str, str]] = [
        ("created ", "$text-muted"),
        f"{clock_time(req.created_at, now)} ({short_duration((now - req.created_at).total_seconds())} ago)",
    ]
    if req.status is RequestStatus.pending and req.expires_at is not None:
        left = (req.expires_at - now).total_seconds()
        times += [
            "  ",
            ("expires in ", "$text-muted"),
            (countdown(left), "bold $text-warning" if left < 300 else "bold"),
        ]
    parts.append(Content.assemble(*times))
    return parts


def _votes(req: ApprovalRequest, now: datetime, reason_limit: int | None) -> list[Content]:
    if not req.approvals:
        return []
    parts = [Content(""), Content.styled("Votes", "bold $text-accent")]
    for v in req.approvals:
        parts.append(
            Content.assemble(
                "  ",
                (clock_time(v.at, now), "$text-muted"),
                "  ",
                (one_line(v.reviewer, 40), "bold"),
                " ",
                (v.decision, "$text-success" if v.decision == "approve" else "$text-error"),
                (" (edited)" if v.edited_args is not None else ""),
                (f": {one_line(v.reason, reason_limit)}" if v.reason else ""),
            )
        )
    return parts


def request_content(req: ApprovalRequest, now: datetime, reviewer: str) -> Content:
    """The detail panel: at most about :data:`DETAIL_CHARS` characters, whatever the agent sent."""
    parts = _header(req, now, reviewer)
    fields, cut = _field_previews(req)
    if cut:
        parts.append(shown_in_part())
    parts += fields
    parts += _votes(req, now, 300)
    return Content("\n").join(parts)


def request_full_text(req: ApprovalRequest, now: datetime, reviewer: str) -> FullText:
    """Everything the request holds, uncut, for the full-text viewer (``v``)."""
    full = FullText()
    for part in _header(req, now, reviewer):
        full.add(part)
    if req.summary:
        full.heading("Summary").text(req.summary)
    if req.policy_reason:
        full.heading("Policy").text(req.policy_reason)
    full.heading("Arguments").json(req.args)
    if req.edited_args is not None:
        full.heading("Edited arguments (what runs)", "bold $text-warning").json(req.edited_args)
    if req.context:
        full.heading("Agent context").text(req.context)
    for part in _votes(req, now, None):
        full.add(part)
    return full


class RequestDetail(VerticalScroll, can_focus=True):
    DEFAULT_CSS = """
    RequestDetail { height: 1fr; padding: 0 1; border-top: hkey $panel-lighten-2; border-title-style: bold; }
    RequestDetail:focus { border-top: hkey $primary; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.request: ApprovalRequest | None = None
        self._body = Static(Content("Select a request to see its arguments."), classes="detail-body")

    def compose(self):
        yield self._body

    def on_mount(self) -> None:
        self.border_title = "Details"

    def show(self, req: ApprovalRequest | None, now: datetime, reviewer: str) -> None:
        same = self.request is not None and req is not None and self.request.id == req.id
        self.request = req
        if req is None:
            self._body.update(Content.styled("No request selected.", "$text-muted"))
            return
        self._body.update(request_content(req, now, reviewer))
        if not same:
            self.scroll_home(animate=False)
