"""Tell a human that something waits for them: a webhook (Slack-compatible) and email (SMTP).

A notifier is anything with ``async def send(self, note: Notification) -> None``. Notifications are
best effort: :func:`notify_all` runs every notifier with a deadline, logs each failure and never
raises, so a broken webhook can neither block an agent nor approve anything.

Arguments are redacted (:mod:`hitl_tui.sdk.redact`) and agent text is sanitised before it is put
in a message; the message ends with the exact commands that decide the request.
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from ..models import ApprovalRequest, Escalation
from ..text import sanitise
from .redact import redact, scrub_text

if TYPE_CHECKING:
    from email.message import EmailMessage

    from ..config import NotifySettings

log = logging.getLogger(__name__)

ARGS_SUMMARY_LIMIT = 1500
TEXT_LIMIT = 2000


@dataclass(frozen=True)
class Notification:
    """One message for a human, already redacted and sanitised (plain text)."""

    kind: Literal["request", "escalation"]
    subject: str
    text: str
    commands: tuple[str, ...] = ()
    request: ApprovalRequest | None = field(default=None, repr=False)
    escalation: Escalation | None = field(default=None, repr=False)


@runtime_checkable
class Notifier(Protocol):
    async def send(self, note: Notification) -> None: ...


# --------------------------------------------------------------------------- message building


def args_summary(args: object, limit: int = ARGS_SUMMARY_LIMIT) -> str:
    """Redacted, pretty JSON of the arguments, cut to ``limit`` characters."""
    try:
        text = json.dumps(redact(args), indent=2, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = scrub_text(repr(args))
    return sanitise(text, limit=limit)


def _one(text: object, limit: int = 200) -> str:
    return sanitise(scrub_text(str(text)), oneline=True, limit=limit)


def request_notification(req: ApprovalRequest, command: str = "hitl") -> Notification:
    approve = f"{command} approve {req.id}"
    deny = f"{command} deny {req.id} --reason {shlex.quote('why not')}"
    lines = [
        f"Agent {_one(req.agent)} wants to run {_one(req.tool)} (request {req.id}, risk {req.risk.value}"
        + (", irreversible" if req.irreversible else "")
        + (f", confidence {req.confidence}" if req.confidence is not None else "")
        + ")",
    ]
    if req.summary:
        lines.append(f"Summary: {_one(req.summary, TEXT_LIMIT)}")
    if req.policy_reason:
        lines.append(f"Why it waits: {_one(req.policy_reason, 500)}")
    if req.expires_at is not None:
        lines.append(f"Expires: {req.expires_at:%Y-%m-%d %H:%M:%S} UTC")
    lines.append("Arguments:")
    lines.append(args_summary(req.args))
    lines.append(f"Approve: {approve}")
    lines.append(f"Deny:    {deny}")
    return Notification(
        kind="request",
        subject=f"[hitl] approval needed: {_one(req.tool, 80)} by {_one(req.agent, 80)} (request {req.id})",
        text="\n".join(lines),
        commands=(approve, deny),
        request=req,
    )


def escalation_notification(esc: Escalation, command: str = "hitl") -> Notification:
    reply = f"{command} reply {esc.id} {shlex.quote('your guidance')}"
    takeover = f"{command} takeover {esc.id}"
    lines = [
        f"Agent {_one(esc.agent)} needs help (escalation {esc.id}):",
        sanitise(scrub_text(esc.message), limit=TEXT_LIMIT),
    ]
    if esc.context:
        lines.append("Context:")
        lines.append(sanitise(scrub_text(esc.context), limit=TEXT_LIMIT))
    lines.append(f"Reply:     {reply}")
    lines.append(f"Take over: {takeover}")
    return Notification(
        kind="escalation",
        subject=f"[hitl] agent {_one(esc.agent, 80)} needs help (escalation {esc.id})",
        text="\n".join(lines),
        commands=(reply, takeover),
        escalation=esc,
    )


# --------------------------------------------------------------------------- sending


async def notify_all(notifiers: Iterable[Notifier], note: Notification, *, deadline: float = 15.0) -> int:
    """Send ``note`` through every notifier at once; returns how many succeeded. Never raises."""
    targets = list(notifiers)
    if not targets:
        return 0
    import asyncio  # only here: a CLI call with no notifiers never loads asyncio (start-up time)

    async def one(n: Notifier) -> bool:
        try:
            await asyncio.wait_for(n.send(note), deadline)
            return True
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.warning("notifier %s failed for %s: %s", type(n).__name__, note.subject, exc or type(exc).__name__)
            return False

    results = await asyncio.gather(*(one(n) for n in targets))
    return sum(results)


def slack_escape(text: str) -> str:
    """Slack's three control characters, so agent text cannot ping channels or forge links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class WebhookNotifier:
    """POSTs ``{"text": ...}`` (Slack incoming-webhook format; most chat tools accept it)."""

    def __init__(self, url: str, *, timeout: float = 5.0, headers: dict[str, str] | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must start with http:// or https://, got {url!r}")
        self.url = url
        self.timeout = timeout
        self.headers = dict(headers or {})

    def payload(self, note: Notification) -> dict[str, object]:
        return {"text": slack_escape(note.text)}

    async def send(self, note: Notification) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            response = await client.post(self.url, json=self.payload(note), headers=self.headers)
        if response.status_code >= 300:
            raise RuntimeError(f"webhook answered HTTP {response.status_code}: {response.text[:200]}")


class SmtpNotifier:
    """Sends a plain-text email through an SMTP server (stdlib ``smtplib``, in a worker thread)."""

    def __init__(
        self,
        host: str,
        sender: str,
        recipients: Sequence[str],
        *,
        port: int = 25,
        user: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        if not recipients:
            raise ValueError("SmtpNotifier needs at least one recipient")
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = list(recipients)
        self.user = user
        self.password = password
        self.starttls = starttls
        self.timeout = timeout

    def message(self, note: Notification) -> EmailMessage:
        from email.message import EmailMessage  # not at import: the hook imports this module per tool call

        msg = EmailMessage()
        msg["Subject"] = note.subject
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg.set_content(note.text)
        return msg

    def _send_sync(self, msg: EmailMessage) -> None:
        import smtplib
        import ssl

        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(msg)

    async def send(self, note: Notification) -> None:
        import asyncio

        await asyncio.to_thread(self._send_sync, self.message(note))


def notifiers_from_settings(settings: NotifySettings) -> list[Notifier]:
    """The notifiers the ``[notify]`` config section asks for (none when it is empty)."""
    out: list[Notifier] = []
    if settings.webhook_url:
        try:
            out.append(WebhookNotifier(settings.webhook_url, timeout=settings.webhook_timeout_s))
        except ValueError as exc:  # a bad URL is logged; it must not stop agents from asking
            log.warning("notify.webhook_url ignored: %s", exc)
    if settings.smtp_host and settings.smtp_to:
        out.append(
            SmtpNotifier(
                settings.smtp_host,
                settings.smtp_from or "hitl@localhost",
                settings.smtp_to,
                port=settings.smtp_port,
                user=settings.smtp_user,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
            )
        )
    return out
