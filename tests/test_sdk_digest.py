"""The review digest: counts, unreviewed and flagged items, decided requests, redaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hitl_tui.errors import InvalidInput
from hitl_tui.models import DecisionIn, RequestCreate, ReviewMark, Verdict
from hitl_tui.sdk import Gate, build_digest, parse_since, redact, render
from hitl_tui.sdk.redact import REDACTED, is_secret_key, scrub_text


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "API_KEY",
        "apiKey",
        "X-Api-Key",
        "Authorization",
        "db_password",
        "client_secret",
        "auth",
        "private_key",
        "AWS_SECRET_ACCESS_KEY",
        "session_cookie",
        "credentials",
        "refreshToken",
        "x-auth-header",
    ],
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["author", "path", "env", "message", "keyboard", "title", "authority_count"])
def test_ordinary_keys(key: str) -> None:
    assert not is_secret_key(key)


def test_redact_nested_and_scrub_values() -> None:
    value = {
        "env": "prod",
        "headers": {"Authorization": "Bearer abc", "Accept": "json"},
        "steps": [{"password": "hunter2", "cmd": "curl -H 'Authorization: Bearer abcdefghijkl' https://u:pw@x.io/"}],
        "token": None,
    }
    out = redact(value)
    assert out["env"] == "prod" and out["headers"] == {"Authorization": REDACTED, "Accept": "json"}
    assert out["steps"][0]["password"] == REDACTED
    assert "abcdefghijkl" not in out["steps"][0]["cmd"] and ":pw@" not in out["steps"][0]["cmd"]
    assert out["token"] is None  # nothing to hide
    assert value["headers"]["Authorization"] == "Bearer abc"  # the input is untouched
    assert "s3cr3t" not in scrub_text("connect with password=s3cr3t now")
    assert REDACTED in scrub_text("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----")


def test_parse_since() -> None:
    now = datetime(2026, 1, 15, 12, tzinfo=UTC)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("90m", now) == now - timedelta(minutes=90)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("2026-01-01", now) == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput):
        parse_since("yesterday", now)


async def test_digest_counts_items_and_decisions_in_the_window(tmp_path: Path, clock) -> None:
    from hitl_tui.backend.local import LocalBackend
    from hitl_tui.store.sqlite import SQLiteStore

    backend = LocalBackend(SQLiteStore(tmp_path / "d.db", clock=clock), actor="rev")
    gate = Gate(backend, "bot-a")
    other = Gate(backend, "bot-b")
    old = await gate.log_review("format_code", {"path": "old.py"}, "ancient")  # before the window
    clock.advance(3 * 86400)
    since = clock()
    a = await gate.log_review("format_code", {"path": "a.py"}, "ok")
    b = await gate.log_review("send_email", {"to": "x@example.com", "smtp_password": "pw1"}, "sent")
    c = await other.log_review("format_code", {"path": "\x1b[2Jevil.py"}, "Bearer abcdefghijklmnop done")
    await backend.mark_review(a.id, ReviewMark(verdict=Verdict.ok), "rev")
    await backend.mark_review(b.id, ReviewMark(verdict=Verdict.flagged, note="wrong recipient"), "rev")
    r1 = await backend.create_request(RequestCreate(agent="bot-a", tool="deploy"))
    r2 = await backend.create_request(RequestCreate(agent="bot-b", tool="deploy"))
    await backend.create_request(RequestCreate(agent="bot-b", tool="deploy"))  # still pending: not listed
    await backend.decide(r1.id, DecisionIn(decision="approve"), "rev")
    await backend.decide(r2.id, DecisionIn(decision="deny", reason="not today"), "rev")
    clock.advance(60)

    d = await build_digest(backend, since, clock())
    assert d.actions == 3 and d.ok == 1
    assert d.by_tool == {"format_code": 2, "send_email": 1}
    assert d.by_agent == {"bot-a": 2, "bot-b": 1}
    assert [i.id for i in d.unreviewed] == [c.id] and [i.id for i in d.flagged] == [b.id]
    assert d.older_unreviewed == 1 and old.id not in [i.id for i in d.unreviewed]
    assert d.flagged[0].args["smtp_password"] == REDACTED and d.flagged[0].note == "wrong recipient"
    assert [(r.id, r.status, r.decided_by) for r in d.requests] == [
        (r1.id, "approved", "rev"),
        (r2.id, "denied", "rev"),
    ]
    assert d.request_counts == {"approved": 1, "denied": 1}

    text = render(d, "text")
    assert "3 action(s) logged for review: 1 unreviewed, 1 flagged, 1 ok" in text
    assert "\x1b" not in text and "2Jevil.py" in text
    assert "pw1" not in text and "abcdefghijklmnop" not in text
    assert "wrong recipient" in text and "not today" in text

    md = render(d, "md")
    assert md.startswith("# Agent activity digest") and "| format\\_code | 2 |" in md
    assert "pw1" not in md and "\x1b" not in md

    data = json.loads(render(d, "json"))
    assert data["by_agent"] == {"bot-a": 2, "bot-b": 1} and data["flagged"][0]["args"]["smtp_password"] == REDACTED
    assert "pw1" not in render(d, "json")
    await backend.close()
