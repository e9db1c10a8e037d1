"""Authorisation beyond the endpoint × role matrix of ``tests/test_auth.py`` (which covers all 33
routes × none / revoked / agent / reviewer / admin): how tokens are kept and compared, self-review
by an admin, and the console opened with an agent token.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path

import httpx
import pytest

from hitl_tui.backend import open_backend
from hitl_tui.config import Settings
from hitl_tui.console import HitlConsole
from hitl_tui.models import RequestStatus

from .server_utils import Team, create_token
from .server_utils import module_team as module_team  # fixtures, re-exported


def _db_bytes(team: Team) -> bytes:
    path = Path(team.server.store_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_tokens_are_stored_only_as_their_sha256(module_team: Team) -> None:
    secret = create_token(module_team.server.store_url, "hashcheck", "reviewer")
    data = _db_bytes(module_team)  # the database file and its WAL, byte for byte
    assert secret.encode() not in data
    digest = hashlib.sha256(secret.encode()).hexdigest()
    path = module_team.server.store_url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path)
    try:
        stored = conn.execute("SELECT token_hash FROM tokens WHERE name = 'hashcheck'").fetchone()[0]
    finally:
        conn.close()
    assert stored == digest


def test_the_hash_itself_is_not_a_credential(module_team: Team) -> None:
    """Whoever reads the store gets hashes, and a hash does not open the API."""
    secret = create_token(module_team.server.store_url, "hash-is-not-a-key", "admin")
    digest = hashlib.sha256(secret.encode()).hexdigest()
    r = httpx.get(f"{module_team.url}/v1/whoami", headers={"Authorization": f"Bearer {digest}"})
    assert r.status_code == 401


def test_near_misses_are_refused_exactly_like_strangers(module_team: Team) -> None:
    """Comparison is constant-time by construction: the presented secret is hashed (SHA-256) and the
    hash looked up, so no byte of the secret is ever compared, and a token that is right but for
    its last character gets the very same answer as garbage: no oracle to climb byte by byte."""
    secret = module_team.tokens["alice"]
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    answers = set()
    for guess in (flipped, "x" + secret[1:], secret[: len(secret) // 2], "hitl_" + "A" * 43, "garbage"):
        r = httpx.get(f"{module_team.url}/v1/whoami", headers={"Authorization": f"Bearer {guess}"})
        assert r.status_code == 401
        answers.add((r.status_code, r.text, r.headers.get("www-authenticate")))
    assert len(answers) == 1


def test_the_server_never_compares_secrets_directly() -> None:
    """Structural check of the path every request takes: hash first, then look up by hash."""
    import inspect

    from hitl_tui.server import auth

    source = inspect.getsource(auth.identify)
    assert "hash_token(token)" in source and "find_token(digest)" in source
    assert "==" not in source


def test_an_admin_cannot_decide_a_request_filed_under_their_own_name(module_team: Team) -> None:
    with module_team.client("root") as admin:
        rid = admin.post("/v1/requests", json={"agent": "root", "tool": "deploy"}).json()["id"]
        r = admin.post(f"/v1/requests/{rid}/decision", json={"decision": "approve"})
        assert r.status_code == 403 and "self-review" in r.json()["message"]
        assert admin.get(f"/v1/requests/{rid}").json()["status"] == "pending"


def test_a_quorum_vote_on_ones_own_request_is_refused(module_team: Team) -> None:
    with module_team.client("root") as admin, module_team.client("alice") as alice:
        rid = admin.post("/v1/requests", json={"agent": "alice", "tool": "deploy", "required_approvals": 2}).json()
        r = alice.post(f"/v1/requests/{rid['id']}/decision", json={"decision": "approve"})
        assert r.status_code == 403
        assert admin.get(f"/v1/requests/{rid['id']}").json()["approvals"] == []


# =========================================================================== the console with an agent token


async def _console_as_agent(team: Team, *, ask_who_first: bool) -> None:
    with team.client("root") as admin:
        rid = admin.post("/v1/requests", json={"agent": "bot", "tool": "deploy", "risk": "low"}).json()["id"]
    settings = Settings(server=team.url, token=team.tokens["bot"], reviewer="bot")
    backend = open_backend(settings)  # exactly what `hitl console --server URL --token T` opens
    try:
        if ask_who_first:
            await backend.whoami()  # type: ignore[attr-defined]
        app = HitlConsole(backend, settings)
        async with app.run_test(size=(120, 40)) as pilot:
            await app.wait_settled()
            await pilot.pause()
            assert app.read_only
            assert "READ-ONLY" in app.export_screenshot().replace("&#160;", " ")
            app.action_show_pane("escalations")
            await pilot.press("r")  # reply: refused, with the reason
            await pilot.pause()
            app.action_show_pane("approvals")
            await pilot.press("a", "d", "A")  # approve, deny, approve all: nothing may be sent
            await app.wait_settled()
            await pilot.pause()
    finally:
        await backend.close()
    with team.client("root") as admin:
        assert admin.get(f"/v1/requests/{rid}").json()["status"] == RequestStatus.pending.value


async def test_console_with_an_agent_token_is_read_only_once_the_role_is_known(module_team: Team) -> None:
    await _console_as_agent(module_team, ask_who_first=True)


@pytest.mark.xfail(strict=True, reason="HitlConsole reads backend.read_only in __init__, but HttpBackend learns "
                                       "its role only on its first call: `hitl console` with an agent token "
                                       "opens writable and does not say it is read-only (the server still 403s)")
async def test_console_launched_with_an_agent_token_is_read_only_and_says_so(module_team: Team) -> None:
    await asyncio.wait_for(_console_as_agent(module_team, ask_who_first=False), 60)
