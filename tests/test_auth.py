"""The authorisation matrix: every endpoint × (no token, revoked token, agent, reviewer, admin),
against a real `hitl serve` on loopback. A refused call (401/403) writes nothing."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from .server_utils import Team, create_token, revoke_token
from .server_utils import module_team as module_team  # the fixture

CALLERS = [None, "revoked", "bot", "alice", "root"]  # bot: agent, alice: reviewer, root: admin
ROLE_OF = {"bot": "agent", "alice": "reviewer", "root": "admin"}
ALL = {"agent", "reviewer", "admin"}
STAFF = {"reviewer", "admin"}
FILERS = {"agent", "admin"}
ADMIN = {"admin"}


class Setup:
    """Makes fresh targets through the admin token, so every case starts from the same state."""

    def __init__(self, team: Team) -> None:
        self.team = team
        self.admin = team.client("root")
        self.n = itertools.count()

    def ok(self, response: httpx.Response) -> Any:
        assert response.is_success, response.text
        return response.json()

    def request(self, agent: str = "bot") -> int:
        body = {"agent": agent, "tool": "Bash", "args": {"command": f"echo {next(self.n)}"}}
        return int(self.ok(self.admin.post("/v1/requests", json=body))["id"])

    def escalation(self, agent: str = "bot") -> int:
        body = {"agent": agent, "message": "I'm not sure how to proceed"}
        return int(self.ok(self.admin.post("/v1/escalations", json=body))["id"])

    def review(self, agent: str = "bot") -> int:
        body = {"agent": agent, "tool": "Read", "args": {"path": "/etc/hosts"}, "result": "127.0.0.1 localhost"}
        return int(self.ok(self.admin.post("/v1/reviews", json=body))["id"])

    def capability(self) -> str:
        tool = f"tool{next(self.n)}"
        self.ok(self.admin.put("/v1/capabilities", json={"capability": {"tool": tool}}))
        return tool

    def token_name(self) -> str:
        return f"t{next(self.n)}"

    def live_token(self) -> str:
        name = self.token_name()
        create_token(self.team.server.store_url, name, "agent")
        return name

    def last_seq(self) -> int:
        return int(self.ok(self.admin.get("/v1/events/last"))["seq"])


@dataclass
class Case:
    name: str
    method: str
    path: Callable[[Setup], str]
    allowed: set[str]
    body: Callable[[Setup], Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)


def fixed(path: str) -> Callable[[Setup], str]:
    return lambda s: path


CASES = [
    Case("whoami", "GET", fixed("/v1/whoami"), ALL),
    Case("metrics", "GET", fixed("/metrics"), ALL),
    # requests
    Case("file request", "POST", fixed("/v1/requests"), FILERS, body=lambda s: {"agent": "bot", "tool": "Bash"}),
    Case("list requests", "GET", fixed("/v1/requests"), ALL, params={"status": "all"}),
    Case("list another agent's requests", "GET", fixed("/v1/requests"), STAFF, params={"agent": "other"}),
    Case("read own request", "GET", lambda s: f"/v1/requests/{s.request()}", ALL),
    Case("read another's request", "GET", lambda s: f"/v1/requests/{s.request('other')}", STAFF),
    Case("decide", "POST", lambda s: f"/v1/requests/{s.request()}/decision", STAFF,
         body=lambda s: {"decision": "approve", "reason": "fine"}),
    Case("cancel own request", "POST", lambda s: f"/v1/requests/{s.request()}/cancel", ALL, body=lambda s: {}),
    Case("cancel another's request", "POST", lambda s: f"/v1/requests/{s.request('other')}/cancel", STAFF,
         body=lambda s: {}),
    Case("wait on own request", "GET", lambda s: f"/v1/requests/{s.request()}/wait", ALL, params={"timeout": 0}),
    Case("wait on another's request", "GET", lambda s: f"/v1/requests/{s.request('other')}/wait", STAFF,
         params={"timeout": 0}),
    # escalations
    Case("open escalation", "POST", fixed("/v1/escalations"), FILERS,
         body=lambda s: {"agent": "bot", "message": "help"}),
    Case("list escalations", "GET", fixed("/v1/escalations"), ALL),
    Case("list another agent's escalations", "GET", fixed("/v1/escalations"), STAFF, params={"agent": "other"}),
    Case("read own escalation", "GET", lambda s: f"/v1/escalations/{s.escalation()}", ALL),
    Case("read another's escalation", "GET", lambda s: f"/v1/escalations/{s.escalation('other')}", STAFF),
    Case("post to own thread", "POST", lambda s: f"/v1/escalations/{s.escalation()}/messages", ALL,
         body=lambda s: {"text": "more context"}),
    Case("post to another's thread", "POST", lambda s: f"/v1/escalations/{s.escalation('other')}/messages", STAFF,
         body=lambda s: {"text": "more context"}),
    Case("take over", "POST", lambda s: f"/v1/escalations/{s.escalation()}/status", STAFF,
         body=lambda s: {"status": "taken_over"}),
    Case("resolve own thread", "POST", lambda s: f"/v1/escalations/{s.escalation()}/status", ALL,
         body=lambda s: {"status": "resolved"}),
    Case("wait on own thread", "GET", lambda s: f"/v1/escalations/{s.escalation()}/wait", ALL,
         params={"timeout": 0}),
    Case("wait on another's thread", "GET", lambda s: f"/v1/escalations/{s.escalation('other')}/wait", STAFF,
         params={"timeout": 0}),
    # review
    Case("log review item", "POST", fixed("/v1/reviews"), FILERS,
         body=lambda s: {"agent": "bot", "tool": "Read", "result": "ok"}),
    Case("list review items", "GET", fixed("/v1/reviews"), ALL),
    Case("list another agent's review items", "GET", fixed("/v1/reviews"), STAFF, params={"agent": "other"}),
    Case("read own review item", "GET", lambda s: f"/v1/reviews/{s.review()}", ALL),
    Case("read another's review item", "GET", lambda s: f"/v1/reviews/{s.review('other')}", STAFF),
    Case("mark review item", "POST", lambda s: f"/v1/reviews/{s.review()}/mark", STAFF,
         body=lambda s: {"verdict": "ok"}),
    # capabilities, rules, policy
    Case("list capabilities", "GET", fixed("/v1/capabilities"), ALL),
    Case("read capability", "GET", lambda s: f"/v1/capability?tool={s.capability()}", ALL),
    Case("put capability", "PUT", fixed("/v1/capabilities"), ADMIN,
         body=lambda s: {"capability": {"tool": f"new{next(s.n)}", "stage": "approval"}, "reason": "x"}),
    Case("change stage", "POST", fixed("/v1/capabilities/stage"), ADMIN,
         body=lambda s: {"tool": s.capability(), "stage": "disabled", "reason": "incident"}),
    Case("list rules", "GET", fixed("/v1/rules"), ALL),
    Case("set rules", "PUT", fixed("/v1/rules"), ADMIN,
         body=lambda s: {"rules": [{"pattern": "Bash(rm:*)", "effect": "deny"}], "reason": "x"}),
    Case("evaluate policy", "POST", fixed("/v1/policy/evaluate"), ALL,
         body=lambda s: {"tool": "Bash", "args": {"command": "ls"}}),
    # events and audit
    Case("last event", "GET", fixed("/v1/events/last"), ALL),  # a position only
    Case("event log", "GET", fixed("/v1/events/log"), STAFF, params={"after": 0, "limit": 5}),
    Case("event stream", "GET", fixed("/v1/events"), ALL, params={"after": 0}),  # an agent's: its own items only
    Case("verify audit", "GET", fixed("/v1/audit/verify"), STAFF),
    # tokens
    Case("list tokens", "GET", fixed("/v1/tokens"), ADMIN),
    Case("create token", "POST", fixed("/v1/tokens"), ADMIN,
         body=lambda s: {"name": s.token_name(), "role": "agent"}),
    Case("revoke token", "DELETE", lambda s: f"/v1/tokens/{s.live_token()}", ADMIN),
]


@pytest.fixture(scope="module")
def setup(module_team: Team) -> Setup:
    create_token(module_team.server.store_url, "gone", "reviewer")
    module_team.tokens["revoked"] = create_token(module_team.server.store_url, "gone2", "reviewer")
    revoke_token(module_team.server.store_url, "gone2")
    return Setup(module_team)


def _call(team: Team, who: str | None, case: Case, path: str, body: Any) -> int:
    with team.client(who) as client:
        params = case.params or None  # (an empty dict would drop a query string in the path)
        if case.name == "event stream":
            with client.stream(case.method, path, params=params) as r:
                return r.status_code  # headers only: the stream itself never ends
        return client.request(case.method, path, params=params, json=body).status_code


@pytest.mark.parametrize("who", CALLERS, ids=lambda w: str(w))
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_authorisation_matrix(setup: Setup, case: Case, who: str | None) -> None:
    path = case.path(setup)
    body = None if case.body is None else case.body(setup)
    before = setup.last_seq()
    status = _call(setup.team, who, case, path, body)
    if who in (None, "revoked"):
        expected = 401
    elif ROLE_OF[who] in case.allowed:
        expected = 200
    else:
        expected = 403
    assert status == expected, f"{case.name} as {who}: {status}"
    if expected != 200:
        assert setup.last_seq() == before, "a refused call wrote something"


def test_healthz_and_docs_need_no_token(setup: Setup) -> None:
    with setup.team.client(None) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        spec = client.get("/openapi.json").json()
        assert "/v1/requests/{request_id}/decision" in spec["paths"]
        assert client.get("/docs").status_code == 200


def test_unauthorised_answer_is_json_with_a_bearer_challenge(setup: Setup) -> None:
    with setup.team.client(None) as client:
        r = client.get("/v1/requests")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["error"] == "Unauthorized"
    for header in ("Basic abc", "Bearer", "Bearer " + "x" * 500, "Bearer hitl_nope"):
        r = httpx.get(f"{setup.team.url}/v1/requests", headers={"Authorization": header})
        assert r.status_code == 401, header


def test_agent_files_under_its_own_name_whatever_the_body_says(setup: Setup) -> None:
    with setup.team.client("bot") as bot:
        req = bot.post("/v1/requests", json={"agent": "impostor", "tool": "Bash"}).json()
        esc = bot.post("/v1/escalations", json={"agent": "impostor", "message": "?"}).json()
        item = bot.post("/v1/reviews", json={"agent": "impostor", "tool": "Read"}).json()
        listed = bot.get("/v1/requests", params={"status": "all"}).json()
    assert req["agent"] == esc["agent"] == item["agent"] == "bot"
    assert listed["items"] and {r["agent"] for r in listed["items"]} == {"bot"}


def test_decision_identity_comes_from_the_token(setup: Setup) -> None:
    rid = setup.request()
    with setup.team.client("alice") as alice:
        r = alice.post(f"/v1/requests/{rid}/decision", json={"decision": "approve", "reviewer": "mallory"})
        assert r.status_code == 422  # there is no such field: identity is never taken from the body
        decided = alice.post(f"/v1/requests/{rid}/decision", json={"decision": "approve"}).json()
    assert decided["decided_by"] == "alice"
    assert decided["approvals"][0]["reviewer"] == "alice"


def test_agent_message_is_recorded_as_the_agent(setup: Setup) -> None:
    eid = setup.escalation()
    with setup.team.client("bot") as bot:
        esc = bot.post(f"/v1/escalations/{eid}/messages", json={"text": "here is more"}).json()
    assert esc["messages"][-1]["author"] == "bot"
    assert esc["messages"][-1]["role"] == "agent"
    assert esc["status"] == "open"  # an agent's own message does not answer its thread
    with setup.team.client("alice") as alice:
        esc = alice.post(f"/v1/escalations/{eid}/messages", json={"text": "go ahead"}).json()
    assert esc["messages"][-1]["role"] == "human"
    assert esc["status"] == "answered"


def test_revoked_token_stops_working_at_once(setup: Setup) -> None:
    secret = create_token(setup.team.server.store_url, "carol", "reviewer")
    headers = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{setup.team.url}/v1/whoami", headers=headers).json() == {"name": "carol", "role": "reviewer"}
    with setup.team.client("root") as admin:
        assert admin.delete("/v1/tokens/carol").json()["revoked_at"] is not None
    r = httpx.get(f"{setup.team.url}/v1/whoami", headers=headers)
    assert r.status_code == 401
    assert "revoked" in r.json()["message"]


def test_admin_creates_a_token_over_http_and_it_works(setup: Setup) -> None:
    with setup.team.client("root") as admin:
        made = admin.post("/v1/tokens", json={"name": "dave", "role": "reviewer"}).json()
        listed = admin.get("/v1/tokens").json()
        dup = admin.post("/v1/tokens", json={"name": "dave", "role": "agent"})
        bad = admin.post("/v1/tokens", json={"name": "has space", "role": "agent"})
    assert made["info"] == {**made["info"], "name": "dave", "role": "reviewer", "created_by": "root"}
    assert made["token"].startswith("hitl_")
    assert all("token" not in t and "hash" not in str(t) for t in listed)
    assert dup.status_code == 409
    assert bad.status_code == 422
    me = httpx.get(f"{setup.team.url}/v1/whoami", headers={"Authorization": f"Bearer {made['token']}"})
    assert me.json() == {"name": "dave", "role": "reviewer"}
