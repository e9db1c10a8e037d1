"""The detail panel of one approval request: arguments as highlighted JSON, policy reason, context, votes."""

from __future__ import annotations

from datetime import datetime

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from ...models import ApprovalRequest, RequestStatus
from ..adapters import (
    block,
    clock_time,
    countdown,
    decided_banner,
    json_content,
    one_line,
    quorum_text,
    short_duration,
)


def request_content(req: ApprovalRequest, now: datetime, reviewer: str) -> Content:
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
    if req.summary:
        parts += [Content(""), Content.styled("Summary", "bold $text-accent"), Content(block(req.summary))]
    if req.policy_reason:
        parts += [Content(""), Content.styled("Policy", "bold $text-accent"), Content(block(req.policy_reason))]
    parts += [Content(""), Content.styled("Arguments", "bold $text-accent"), json_content(req.args)]
    if req.edited_args is not None:
        parts += [
            Content(""),
            Content.styled("Edited arguments (what runs)", "bold $text-warning"),
            json_content(req.edited_args),
        ]
    if req.context:
        parts += [Content(""), Content.styled("Agent context", "bold $text-accent"), Content(block(req.context))]
    if req.approvals:
        parts += [Content(""), Content.styled("Votes", "bold $text-accent")]
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
                    (f": {one_line(v.reason, 300)}" if v.reason else ""),
                )
            )
    return Content("\n").join(parts)


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
