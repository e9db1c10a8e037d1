"""Filing a request over HTTP remembers what a token grants (name, role) and re-checks the token in
the write's own transaction instead of looking it up before every request (server/grants.py).
Revocation must still take effect on the very next request, whoever revokes: this server over
HTTP, ``hitl token revoke`` (another process on the same SQLite file), or another replica on the
same PostgreSQL. And a remembered grant must never answer differently from a fresh lookup: a
revoked token gets 401, not 403 (wrong role) nor 422 (bad body)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .conftest import POSTGRES_DSN, _postgres_available
from .server_utils import ServerProcess, Team, create_token, revoke_token
from .server_utils import server as server  # fixtures, re-exported
from .server_utils import team as team

FILING = {"agent": "bot", "tool": "deploy", "args": {"env": "prod"}, "summary": "deploy"}


def _count(client: httpx.Client) -> int:
    r = client.get("/v1/requests", params={"status": "all", "limit": 1})
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


def _file(url: str, secret: str, body: object = FILING) -> httpx.Response:
    return httpx.post(f"{url}/v1/requests", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=30)


def test_a_token_revoked_by_another_process_is_refused_on_the_next_filing(team: Team) -> None:
    store = team.server.store_url
    with team.client("alice") as alice:
        for round_ in range(3):  # revoke right after a filing that remembered the grant, several times
            secret = create_token(store, f"carol{round_}", "agent")
            for _ in range(3):
                assert _file(team.url, secret).status_code == 200
            before = _count(alice)
            revoke_token(store, f"carol{round_}")  # `hitl token revoke`: another connection, another process
            refused = _file(team.url, secret)
            assert refused.status_code == 401, refused.text
            assert "revoked" in refused.json()["message"]
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert _file(team.url, secret).status_code == 401  # and stays refused
            assert _count(alice) == before  # nothing filed
        # the control: a token nobody revoked still files, under its own name
        made = _file(team.url, team.tokens["bot"], {**FILING, "agent": "someone-else"})
        assert made.status_code == 200 and made.json()["agent"] == "bot"


def test_a_revoked_remembered_token_gets_401_whatever_else_is_wrong(team: Team) -> None:
    store = team.server.store_url
    agent = create_token(store, "dora", "agent")
    reviewer = create_token(store, "rita", "reviewer")
    assert _file(team.url, agent).status_code == 200  # remembered
    bad_body = {"agent": "dora", "tool": "deploy", "unknown": 1}
    assert _file(team.url, agent, bad_body).status_code == 422  # the control: a live token gets 422
    assert _file(team.url, reviewer).status_code == 403  # remembered too: reviewers may not file
    revoke_token(store, "dora")
    revoke_token(store, "rita")
    for secret, body in ((agent, bad_body), (agent, "not an object"), (reviewer, FILING), (reviewer, bad_body)):
        r = _file(team.url, secret, body)
        assert r.status_code == 401, (body, r.text)
        assert "revoked" in r.json()["message"]


def test_revoking_over_http_refuses_the_next_filing(team: Team) -> None:
    secret = create_token(team.server.store_url, "erin", "agent")
    assert _file(team.url, secret).status_code == 200
    with team.client("root") as admin:
        assert admin.delete("/v1/tokens/erin").status_code == 200
        assert _file(team.url, secret).status_code == 401
        assert admin.post("/v1/requests", json=FILING).json()["agent"] == "bot"  # admins file for anyone


@pytest.fixture
def pg_replicas(tmp_path: Path) -> Iterator[tuple[Team, Team]]:
    import asyncio

    why = _postgres_available()
    if why:
        pytest.skip(why)
    from hitl_tui.store.postgres import create_test_schema, drop_test_schema

    assert POSTGRES_DSN
    schema = asyncio.run(create_test_schema(POSTGRES_DSN))
    url = f"{POSTGRES_DSN}{'&' if '?' in POSTGRES_DSN else '?'}schema={schema}"
    procs: list[ServerProcess] = []
    try:
        for d in ("a", "b"):
            (tmp_path / d).mkdir()
        with ThreadPoolExecutor(2) as pool:
            procs = list(pool.map(lambda d: ServerProcess(url, tmp_path / d).start(), ["a", "b"]))
        a = Team(procs[0])
        yield a, Team(procs[1], tokens=a.tokens)
    finally:
        for p in procs:
            p.stop()
        asyncio.run(drop_test_schema(POSTGRES_DSN, schema))


@pytest.mark.postgres
def test_a_token_revoked_on_one_replica_is_refused_by_the_other_at_once(pg_replicas: tuple[Team, Team]) -> None:
    a, b = pg_replicas
    for round_ in range(3):
        with a.client("root") as admin_a:
            secret = admin_a.post("/v1/tokens", json={"name": f"fay{round_}", "role": "agent"}).json()["token"]
            assert _file(b.url, secret).status_code == 200  # replica b remembers the grant
            assert _file(a.url, secret).status_code == 200
            with b.client("alice") as alice:
                before = _count(alice)
                assert admin_a.delete(f"/v1/tokens/fay{round_}").status_code == 200  # revoked through a
                refused = _file(b.url, secret)  # the very next request, through b
                assert refused.status_code == 401, refused.text
                assert _file(a.url, secret).status_code == 401
                assert _count(alice) == before
    assert _file(b.url, a.tokens["bot"]).status_code == 200  # the control
