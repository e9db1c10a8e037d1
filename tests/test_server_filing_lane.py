"""The filing fast lane (server/filing.py) answers ``POST /v1/requests`` without FastAPI's routing
when it can, and must never answer differently from the FastAPI route. Each case here is sent
twice to the real app on a real SQLite store: first with the token's grant not yet remembered
(the lane defers, the route answers), then remembered (the lane answers, or defers again). The
two answers must match: status, error body, headers, and the filed request (but its id and time).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hitl_tui.backend.local import LocalBackend
from hitl_tui.config import Settings
from hitl_tui.models import TokenRole
from hitl_tui.server import create_app
from hitl_tui.server.credentials import hash_token, new_token
from hitl_tui.store.sqlite import SQLiteStore

FILING = {
    "agent": "bot",
    "tool": "deploy",
    "args": {"env": "prod", "n": 1.5, "k": [1, {"x": None}]},
    "summary": "déploie ✓",
    "risk": "high",
    "confidence": 72,
}
JSON = "application/json"


class Served:
    def __init__(self, app: Any, store: SQLiteStore, client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
        self.app, self.store, self.client, self.tokens = app, store, client, tokens

    async def post(
        self,
        who: str | None,
        body: Any,
        content_type: str | None = JSON,
        raw: bytes | None = None,
        authorization: str | None = None,
    ) -> httpx.Response:
        headers = {}
        if content_type is not None:
            headers["content-type"] = content_type
        if authorization is not None:
            headers["authorization"] = authorization
        elif who is not None:
            headers["authorization"] = f"Bearer {self.tokens[who]}"
        content = raw if raw is not None else json.dumps(body).encode()
        return await self.client.post("/v1/requests", content=content, headers=headers)

    def forget_all(self) -> None:
        self.app.state.grants._known.clear()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    store = SQLiteStore(tmp_path / "hitl.db")
    tokens = {}
    for name, role in (("bot", "agent"), ("root", "admin"), ("rita", "reviewer"), ("gone", "agent")):
        tokens[name] = new_token()
        await store.create_token(name, TokenRole(role), hash_token(tokens[name]), "test")
    tokens["stranger"] = new_token()  # never registered
    backend = LocalBackend(store, actor="server", expire_sweep=False)
    app = create_app(backend, Settings(), close_backend=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hitl") as client:
        yield Served(app, store, client, tokens)
    await backend.close()


def _shape(r: httpx.Response) -> tuple[int, Any, str | None, str | None]:
    try:
        body: Any = r.json()
    except ValueError:
        body = r.text
    if isinstance(body, dict) and "created_at" in body:
        body = {k: v for k, v in body.items() if k not in ("id", "created_at", "expires_at")}
    return r.status_code, body, r.headers.get("content-type"), r.headers.get("www-authenticate")


CASES: list[tuple[str, str | None, dict[str, Any]]] = [
    ("plain", "bot", {"body": FILING}),
    ("an agent files under its own name", "bot", {"body": {**FILING, "agent": "someone-else"}}),
    ("an admin files for anyone", "root", {"body": {**FILING, "agent": "someone-else"}}),
    ("charset", "bot", {"body": FILING, "content_type": "application/json; charset=utf-8"}),
    ("upper-case type", "bot", {"body": FILING, "content_type": "APPLICATION/JSON"}),
    ("+json type", "bot", {"body": FILING, "content_type": "application/merge-patch+json"}),
    ("text/plain", "bot", {"body": FILING, "content_type": "text/plain"}),
    ("no content type", "bot", {"body": FILING, "content_type": None}),
    ("unknown field", "bot", {"body": {**FILING, "colour": "red"}}),
    ("wrong type", "bot", {"body": {**FILING, "confidence": "high"}}),
    ("out of range", "bot", {"body": {**FILING, "confidence": 101}}),
    ("not JSON", "bot", {"body": None, "raw": b"{not json"}),
    ("a JSON array", "bot", {"body": [FILING]}),
    ("a JSON string", "bot", {"body": "deploy"}),
    ("empty body", "bot", {"body": None, "raw": b""}),
    ("NaN in args", "bot", {"body": None, "raw": b'{"agent":"bot","tool":"t","args":{"x":NaN}}'}),
    ("lone surrogate", "bot", {"body": None, "raw": b'{"agent":"bot","tool":"t","summary":"\\ud800"}'}),
    ("utf-16 body", "bot", {"body": None, "raw": json.dumps(FILING).encode("utf-16")}),
    ("a reviewer may not file", "rita", {"body": FILING}),
    ("a reviewer with a bad body", "rita", {"body": {"colour": "red"}}),
    ("no token", None, {"body": FILING}),
    ("unknown token", "stranger", {"body": FILING}),
    ("not a bearer", None, {"body": FILING, "authorization": "Basic Ym90OnB3"}),
    ("empty bearer", None, {"body": FILING, "authorization": "Bearer   "}),
]


@pytest.mark.parametrize(("who", "kw"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
async def test_the_lane_answers_as_the_route_does(served: Served, who: str | None, kw: dict[str, Any]) -> None:
    served.forget_all()
    lane = served.app.state.lane
    if who is not None:  # the route remembers the grant on a valid filing; forget it for the first answer
        first = await served.post(who, FILING)
        assert first.status_code in (200, 401, 403)
        served.forget_all()
    answered = lane.answered
    by_route = await served.post(who, **kw)
    assert lane.answered == answered  # the first answer was the route's
    if who is not None and who != "stranger":
        await served.post(who, FILING)  # remember the grant (reviewers too: the route remembers any valid token)
    by_lane = await served.post(who, **kw)
    assert _shape(by_lane) == _shape(by_route)
    if by_route.status_code == 200:
        assert lane.answered > answered  # the control: the lane did answer this one
        assert by_lane.json()["id"] != by_route.json()["id"]
        assert by_lane.json()["agent"] == ("bot" if who == "bot" else kw["body"]["agent"])


async def test_a_token_revoked_after_its_grant_was_remembered(served: Served) -> None:
    assert (await served.post("gone", FILING)).status_code == 200  # remembered
    before = (await served.store.list_requests(None, limit=1)).total
    await served.store.revoke_token("gone", "test")
    for kw in ({"body": FILING}, {"body": {**FILING, "colour": "red"}}):
        r = await served.post("gone", **kw)
        assert r.status_code == 401, r.text
        assert "revoked" in r.json()["message"] and r.headers["www-authenticate"].startswith("Bearer")
    # FastAPI parses the JSON before any dependency runs, so an unparseable body is a 422 for every
    # token, known or not, as it always was: the lane keeps that too
    unparseable = await served.post("gone", None, raw=b"{oops")
    assert _shape(unparseable) == _shape(await served.post("stranger", None, raw=b"{oops"))
    assert (await served.store.list_requests(None, limit=1)).total == before


async def test_idempotency_and_conflicts_through_the_lane(served: Served) -> None:
    keyed = {**FILING, "idempotency_key": "k-1"}
    first = await served.post("bot", keyed)  # the route (first sight), then the lane
    again = await served.post("bot", keyed)
    assert served.app.state.lane.answered >= 1
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    clash_lane = await served.post("bot", {**keyed, "tool": "other"})
    served.forget_all()
    clash_route = await served.post("bot", {**keyed, "tool": "other"})
    assert clash_lane.status_code == 409 and _shape(clash_lane) == _shape(clash_route)
    assert clash_lane.json()["id"] == first.json()["id"]


async def test_a_store_failure_through_the_lane_fails_closed_like_the_route(served: Served) -> None:
    assert (await served.post("bot", FILING)).status_code == 200  # remembered
    await served.store.close()
    by_lane = await served.post("bot", FILING)
    served.forget_all()
    by_route = await served.post("bot", FILING)
    assert by_lane.status_code == 503 and _shape(by_lane) == _shape(by_route)
