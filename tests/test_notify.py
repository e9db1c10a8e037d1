"""Notifiers against real receivers on loopback: an HTTP server and an SMTP sink, both in threads."""

from __future__ import annotations

import asyncio
import email
import json
import logging
import socket
import socketserver
import threading
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hitl_tui.config import NotifySettings
from hitl_tui.models import DecisionIn, RequestStatus
from hitl_tui.sdk import Gate, SmtpNotifier, WebhookNotifier, notifiers_from_settings
from hitl_tui.sdk.notify import Notification, notify_all
from tests.test_sdk_support import load_preset, open_local, wait_pending


class Webhook:
    """A real HTTP server that records JSON bodies; ``status`` is what it answers."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        self.received = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(b"ok")
                hook.received.set()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpSink:
    """A minimal real SMTP server (RFC 5321 subset) that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(f"{line}\r\n".encode())

            def handle(self) -> None:
                self.reply("220 sink ready")
                sender, rcpts = "", []
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    cmd = raw.decode().strip()
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 sink")
                    elif verb == "MAIL":
                        sender = cmd.split(":", 1)[1].strip().strip("<>")
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        rcpts.append(cmd.split(":", 1)[1].strip().strip("<>"))
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 go on")
                        lines = []
                        while (line := self.rfile.readline()) not in (b".\r\n", b""):
                            lines.append(line[1:] if line.startswith(b"..") else line)
                        sink.messages.append((sender, rcpts, email.message_from_bytes(b"".join(lines))))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_approval_request_notifies_webhook_and_email_with_the_exact_commands(
    tmp_path: Path, webhook: Webhook, smtp: SmtpSink
) -> None:
    path = tmp_path / "n.db"
    admin = open_local(path, "admin")
    await load_preset(admin)
    notifiers = [
        WebhookNotifier(webhook.url),
        SmtpNotifier("127.0.0.1", "hitl@example.com", ["oncall@example.com"], port=smtp.port),
    ]
    gate = Gate(open_local(path, "mailer"), "mailer", notifiers=notifiers, command_prefix="hitl --store /srv/h.db")
    args = {"to": "ceo@example.com", "api_key": "sk-live-123456", "body": "<!channel> hello & bye"}
    task = asyncio.create_task(gate.run("send_customer_email", args, lambda **a: "sent"))
    rid = await wait_pending(admin, "send_customer_email")
    assert await asyncio.to_thread(webhook.received.wait, 30)
    await admin.decide(rid, DecisionIn(decision="approve"), "olga")
    assert await asyncio.wait_for(task, 60) == "sent"

    [body] = webhook.bodies
    assert set(body) == {"text"}
    text = body["text"]
    assert "send_customer_email" in text and "mailer" in text
    assert f"hitl --store /srv/h.db approve {rid}" in text
    assert f"hitl --store /srv/h.db deny {rid} --reason" in text
    assert "ceo@example.com" in text
    assert "sk-live-123456" not in text and "[redacted]" in text
    assert "<!channel>" not in text and "&lt;!channel&gt; hello &amp; bye" in text  # Slack escaping

    [(sender, rcpts, msg)] = smtp.messages
    assert sender == "hitl@example.com" and rcpts == ["oncall@example.com"]
    assert f"request {rid}" in msg["Subject"] and "send_customer_email" in msg["Subject"]
    mail = msg.get_payload(decode=True).decode()
    assert f"approve {rid}" in mail and "sk-live-123456" not in mail and "<!channel> hello & bye" in mail
    await gate.backend.close()
    await admin.close()


async def test_escalation_notification_names_reply_and_takeover(tmp_path: Path, webhook: Webhook) -> None:
    gate = Gate(open_local(tmp_path / "e.db"), "stuck-bot", notifiers=[WebhookNotifier(webhook.url)])
    result = await gate.escalate("I need access to \x1b[31mprod\x1b[0m", context="password=hunter2", wait=False)
    text = webhook.bodies[0]["text"]
    eid = result.escalation_id
    assert f"hitl reply {eid}" in text and f"hitl takeover {eid}" in text
    assert "\x1b" not in text and "\\x1b[31mprod" in text  # sanitised
    assert "hunter2" not in text
    await gate.backend.close()


async def test_failing_notifiers_are_logged_and_never_block_or_approve(
    tmp_path: Path, webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    webhook.status = 500
    notifiers = [
        WebhookNotifier(webhook.url),
        WebhookNotifier(f"http://127.0.0.1:{_closed_port()}/nothing", timeout=2),
        SmtpNotifier("127.0.0.1", "a@example.com", ["b@example.com"], port=_closed_port(), timeout=2),
    ]
    path = tmp_path / "f.db"
    admin = open_local(path)
    await load_preset(admin)
    gate = Gate(open_local(path, "bot"), "bot", notifiers=notifiers)
    with caplog.at_level(logging.WARNING, logger="hitl_tui.sdk.notify"):
        result = await gate.run("deploy", {"env": "prod"}, lambda env: "deployed", timeout=0.5)
    assert not isinstance(result, str) and result.status == "expired"  # not approved by the failure
    assert (await admin.get_request(result.request_id)).status is RequestStatus.expired
    failures = [r.getMessage() for r in caplog.records if "notifier" in r.getMessage()]
    assert len(failures) == 3 and any("HTTP 500" in f for f in failures)
    await gate.backend.close()
    await admin.close()


async def test_a_hung_notifier_is_cut_off_by_the_deadline() -> None:
    class Hung:
        async def send(self, note: Notification) -> None:
            await asyncio.sleep(3600)

    note = Notification(kind="request", subject="s", text="t")
    assert await notify_all([Hung()], note, deadline=0.2) == 0


def test_notifiers_from_settings() -> None:
    assert notifiers_from_settings(NotifySettings()) == []
    built = notifiers_from_settings(
        NotifySettings(webhook_url="https://hooks.example.com/x", smtp_host="mail", smtp_to=["a@example.com"])
    )
    assert [type(n).__name__ for n in built] == ["WebhookNotifier", "SmtpNotifier"]
    assert notifiers_from_settings(NotifySettings(webhook_url="ftp://nope")) == []  # logged, skipped
