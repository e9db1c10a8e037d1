"""Authorisation beyond the endpoint × role matrix of ``tests/test_auth.py`` (which covers all 33
routes × none / revoked / agent / reviewer / admin): how tokens are kept and compared, self-review
by an admin, the console opened with an agent token, and the event stream scoped to an agent's
own items.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from hitl_tui.backend import open_backend
from hitl_tui.config import Settings
from hitl_tui.console import HitlConsole
from hitl_tui.console.live import LinkState
from hitl_tui.models import Event, RequestStatus

from .server_utils import Team, create_token, free_port
from .server_utils import module_pg_team as module_pg_team  # fixtures, re-exported
from .server_utils import module_team as module_team


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


async def test_console_launched_with_an_agent_token_is_read_only_and_says_so(module_team: Team) -> None:
    """Opened before anything asked the server who the token is: the console learns the role from
    its first call (the live feed's) and turns read-only before any pane loads."""
    await asyncio.wait_for(_console_as_agent(module_team, ask_who_first=False), 60)


async def test_console_with_an_agent_token_is_live_on_its_own_items_only(module_team: Team) -> None:
    """Not stuck "disconnected": the agent's console follows its own scoped event stream, so its
    own new request appears live, and another agent's never does."""
    settings = Settings(server=module_team.url, token=module_team.tokens["bot"], reviewer="bot")
    backend = open_backend(settings)
    try:
        app = HitlConsole(backend, settings)
        async with app.run_test(size=(120, 40)) as pilot:
            await app.wait_settled()
            assert app.feed.link.state is LinkState.live, app.feed.link
            assert app.read_only
            seen: list[Event] = []
            shown = app._on_live_event  # what the console is handed by its feed
            app.feed.on_event = lambda ev: (seen.append(ev), shown(ev))
            with module_team.client("root") as admin:
                other = admin.post("/v1/requests", json={"agent": "other", "tool": "deploy", "summary": "theirs"})
                mine = admin.post("/v1/requests", json={"agent": "bot", "tool": "deploy", "summary": "mine live"})
            assert other.status_code == mine.status_code == 200
            mine_id = mine.json()["id"]
            for _ in range(1000):  # until the later of the two has arrived (or the wait_for below ends it)
                if any(ev.subject == f"request:{mine_id}" for ev in seen):
                    break
                await asyncio.sleep(0.01)
            await app.wait_settled()
            await pilot.pause()
            assert [ev.subject for ev in seen] == [f"request:{mine_id}"]
            screen = app.export_screenshot().replace("&#160;", " ")
            assert "mine live" in screen and "theirs" not in screen
            assert "disconnected" not in screen.lower() and "READ-ONLY" in screen
    finally:
        await backend.close()


async def test_hitl_console_asks_who_the_token_is_before_it_opens(module_team: Team) -> None:
    """`hitl console` learns the role first (read-only from the first frame); a bad token is
    refused in one line rather than opening a console that can only say "disconnected"."""
    from hitl_tui.backend.http import HttpBackend
    from hitl_tui.cli.console_cmd import learn_role
    from hitl_tui.errors import Unauthorized

    agent = HttpBackend(module_team.url, module_team.tokens["bot"])
    reviewer = HttpBackend(module_team.url, module_team.tokens["alice"])
    await learn_role(agent)
    await learn_role(reviewer)
    assert HitlConsole(agent, Settings()).read_only
    assert not HitlConsole(reviewer, Settings()).read_only
    with pytest.raises(Unauthorized):
        await learn_role(HttpBackend(module_team.url, "hitl_" + "x" * 43))
    await learn_role(HttpBackend(f"http://127.0.0.1:{free_port()}", "hitl_x", connect_timeout=1))  # left to the console


# =========================================================================== the event stream, scoped per token


def _stream(team: Team, who: str, after: int, until_seq: int, last_event_id: int | None = None) -> list[Event]:
    """The SSE stream as ``who`` from ``after`` until an event at or past ``until_seq`` arrives."""
    from httpx_sse import connect_sse

    headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
    got: list[Event] = []
    import time

    timeout = httpx.Timeout(10.0, read=30.0)
    give_up = time.monotonic() + 40  # pings (every 15 s) keep a stream open: one that never brings ``until_seq``
    with (
        httpx.Client(base_url=team.url, headers=team.headers(who), timeout=timeout) as c,
        connect_sse(c, "GET", "/v1/events", params={"after": after}, headers=headers) as source,
    ):
        assert source.response.status_code == 200, source.response.read()
        for sse in source.iter_sse():
            if time.monotonic() > give_up:
                raise AssertionError(f"no event {until_seq} as {who}; got {[(e.seq, e.kind.value) for e in got]}")
            if not sse.id or not sse.data:
                continue  # a ping
            ev = Event.model_validate_json(sse.data)
            assert sse.id == str(ev.seq) and sse.event == ev.kind.value
            got.append(ev)
            if ev.seq >= until_seq:
                return got
    raise AssertionError(f"the stream ended before event {until_seq}")


def _owner(ev: Event) -> str | None:
    return ev.payload.get("agent") if isinstance(ev.payload, dict) else None


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_an_agent_token_streams_only_its_own_items(store: str, request: pytest.FixtureRequest) -> None:
    team: Team = request.getfixturevalue("module_team" if store == "sqlite" else "module_pg_team")

    def ok(r: httpx.Response) -> Any:
        assert r.is_success, r.text
        return r.json()

    with team.client("root") as admin, team.client("alice") as alice, team.client("bot") as bot:
        start = ok(admin.get("/v1/events/last"))["seq"]
        assert ok(bot.get("/v1/events/last"))["seq"] == start  # a position, no data
        for agent in ("other", "bot"):
            rid = ok(admin.post("/v1/requests", json={"agent": agent, "tool": "deploy", "summary": f"{agent}'s"}))
            ok(alice.post(f"/v1/requests/{rid['id']}/decision", json={"decision": "deny", "reason": "no"}))
            eid = ok(admin.post("/v1/escalations", json={"agent": agent, "message": "help?"}))["id"]
            ok(alice.post(f"/v1/escalations/{eid}/messages", json={"text": "do X"}))
            ok(alice.post(f"/v1/escalations/{eid}/status", json={"status": "resolved", "note": "done"}))
            item = ok(admin.post("/v1/reviews", json={"agent": agent, "tool": "Read", "result": "ok"}))
            ok(alice.post(f"/v1/reviews/{item['id']}/mark", json={"verdict": "flagged", "note": "hm"}))
        ok(admin.put("/v1/capabilities", json={"capability": {"tool": f"scoped{start}"}, "reason": "new"}))
        ok(admin.post("/v1/tokens", json={"name": f"t{start}", "role": "agent"}))
        last = ok(bot.post("/v1/requests", json={"agent": "bot", "tool": "deploy", "summary": "the last word"}))
        end = ok(admin.get("/v1/events/last"))["seq"]
        assert bot.get("/v1/events/log", params={"after": start}).status_code == 403  # the log stays staff-only

    everything = _stream(team, "alice", start, end)
    assert [ev.seq for ev in everything] == list(range(start + 1, end + 1))  # the control: it is all there
    assert {_owner(ev) for ev in everything if ev.kind.value.startswith("request.")} == {"other", "bot"}
    assert any(ev.kind.value.startswith("token.") for ev in everything)

    mine = _stream(team, "bot", start, end)
    expected = [ev for ev in everything if _owner(ev) == "bot" or ev.kind.value.startswith(("capability.", "rules."))]
    assert [ev.seq for ev in mine] == [ev.seq for ev in expected]
    assert {ev.kind.value.split(".")[0] for ev in mine} == {"request", "escalation", "review", "capability"}
    assert not any(ev.kind.value.startswith("token.") or _owner(ev) == "other" for ev in mine)
    assert "other's" not in "".join(ev.model_dump_json() for ev in mine)
    assert mine[-1].subject == f"request:{last['id']}"

    # resuming with Last-Event-ID (which wins over ?after=) gives the rest of the agent's events, none twice
    half = mine[len(mine) // 2].seq
    resumed = _stream(team, "bot", 0, end, last_event_id=half)
    assert [ev.seq for ev in resumed] == [ev.seq for ev in mine if ev.seq > half]
