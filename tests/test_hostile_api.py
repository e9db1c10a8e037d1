"""Hostile input against a real ``hitl serve``: schemathesis over the server's own OpenAPI schema
(bounded: a fixed number of examples per operation), then hand-made attacks on every body-taking
endpoint: oversized bodies, deep nesting, invalid UTF-8, huge numbers and unknown fields. Always a
clear JSON 4xx, never a 5xx, and a refused call writes nothing (the event log does not move).

(``tests/test_server.py`` covers single cases of these on ``POST /v1/requests``; this file covers
every endpoint.)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from .server_utils import ServerProcess, create_token, sqlite_url

EXAMPLES_PER_OPERATION = 25
COVERAGE_PHASE = False
#: never fuzzed: the endless event stream and long-polls (they hold the connection by design)
NOT_FUZZED = r"^/v1/events$|/wait$"


class Fuzz:
    def __init__(self, proc: ServerProcess) -> None:
        self.proc = proc
        # names a generator will not hit by chance, so a fuzzed DELETE /v1/tokens/{name} cannot
        # revoke the test's own credentials
        self.admin_name = f"fuzz-admin-{uuid.uuid4().hex}"
        self.admin = create_token(proc.store_url, self.admin_name, "admin")
        self.headers = {"Authorization": f"Bearer {self.admin}"}

    def last_seq(self) -> int:
        return int(httpx.get(f"{self.proc.url}/v1/events/last", headers=self.headers, timeout=30).json()["seq"])

    def written_since(self, seq: int) -> list[str]:
        """Events after ``seq``, except the server's own deadline sweep (fuzzed requests with tiny
        timeouts expire in the background at any moment)."""
        events = httpx.get(f"{self.proc.url}/v1/events/log", params={"after": seq}, headers=self.headers,
                           timeout=30).json()
        return [f"{e['seq']} {e['kind']} {e['subject']}" for e in events
                if not (e["kind"] == "request.expired" and e["actor"] == "system")]

    def seed(self) -> None:
        """Something for the generated ids to find: requests, a thread, a review item, a capability."""
        with httpx.Client(base_url=self.proc.url, headers=self.headers, timeout=30) as c:
            for i in range(3):
                c.post("/v1/requests", json={"agent": "bot", "tool": "Bash", "args": {"n": i}}).raise_for_status()
                c.post("/v1/escalations", json={"agent": "bot", "message": f"help {i}"}).raise_for_status()
                c.post("/v1/reviews", json={"agent": "bot", "tool": "Read", "result": "ok"}).raise_for_status()
            c.put("/v1/capabilities", json={"capability": {"tool": "Bash"}}).raise_for_status()


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    tmp = tmp_path_factory.mktemp("fuzz")
    proc = ServerProcess(sqlite_url(tmp), tmp).start()
    try:
        f = Fuzz(proc)
        f.seed()
        yield f
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz: Fuzz) -> Any:
    config = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": COVERAGE_PHASE}}})
    return schemathesis.openapi.from_url(f"{fuzz.proc.url}/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema").exclude(path_regex=NOT_FUZZED)


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_the_api_against_its_own_schema(case: Any, fuzz: Fuzz) -> None:
    before = fuzz.last_seq()
    response = case.call_and_validate(
        base_url=fuzz.proc.url,
        headers=fuzz.headers,
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
        timeout=30,
    )
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict) and body.get("error") and body.get("message"), body
        assert not fuzz.written_since(before), f"a refused call wrote something: {case.method} {case.path}"


def test_the_server_log_has_no_traceback(fuzz: Fuzz) -> None:
    log = fuzz.proc.log()
    assert "Traceback" not in log, log[-4000:]


# =========================================================================== hand-made attacks

#: every endpoint that takes a body, with a valid body for it
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/requests"): {"agent": "bot", "tool": "Bash", "args": {"command": "ls"}},
    ("POST", "/v1/requests/1/decision"): {"decision": "deny", "reason": "no"},
    ("POST", "/v1/requests/1/cancel"): {"reason": "no longer needed"},
    ("POST", "/v1/escalations"): {"agent": "bot", "message": "help"},
    ("POST", "/v1/escalations/1/messages"): {"text": "use staging"},
    ("POST", "/v1/escalations/1/status"): {"status": "taken_over"},
    ("POST", "/v1/reviews"): {"agent": "bot", "tool": "Read", "result": "ok"},
    ("POST", "/v1/reviews/1/mark"): {"verdict": "ok"},
    ("PUT", "/v1/capabilities"): {"capability": {"tool": "Bash"}},
    ("POST", "/v1/capabilities/stage"): {"tool": "Bash", "stage": "approval"},
    ("PUT", "/v1/rules"): {"rules": []},
    ("POST", "/v1/policy/evaluate"): {"tool": "Bash", "args": {}},
    ("POST", "/v1/tokens"): {"name": "fuzzed", "role": "agent"},
}
_DEEP = b"[" * 50_000 + b"]" * 50_000


def _deep(body: dict[str, Any]) -> bytes:
    text = json.dumps({**body, "zz_deep": "@@"}).encode()
    return text.replace(b'"@@"', _DEEP)


def _invalid_utf8(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode().replace(b'"', b'"\xff\xfe\xc3\x28', 1)  # in the first key


def _huge_number(body: dict[str, Any]) -> bytes:
    key = next(iter(body))
    return json.dumps(body).replace(f'"{key}": ', f'"{key}": 1{"0" * 5000}, "x_{key}": ', 1).encode()


def _huge_float(body: dict[str, Any]) -> bytes:
    key = next(iter(body))
    return json.dumps(body).replace(f'"{key}": ', f'"{key}": 1e999999, "x_{key}": ', 1).encode()


ATTACKS: dict[str, Any] = {
    "unknown field": lambda b: json.dumps({**b, "approved": True, "is_admin": True}).encode(),
    "deep nesting": _deep,
    "invalid UTF-8": _invalid_utf8,
    "huge integer": _huge_number,
    "huge float": _huge_float,
    "oversized": lambda b: json.dumps({**b, "pad": "x" * (1024 * 1024 + 1)}).encode(),
    "duplicate keys": lambda b: json.dumps(b).encode()[:-1] + b', "zz": 1, "zz": 2}',
    "NUL in JSON": lambda b: json.dumps(b).encode().replace(b'"', b'"\x00', 1),
    "truncated": lambda b: json.dumps(b).encode()[:-2],
    "wrong content type": lambda b: json.dumps(b).encode(),
}


@pytest.fixture(scope="module")
def client(fuzz: Fuzz) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzz.proc.url, headers=fuzz.headers, timeout=60) as c:
        yield c


@pytest.mark.parametrize("attack", list(ATTACKS))
@pytest.mark.parametrize("endpoint", list(BODIES), ids=[f"{m} {p}" for m, p in BODIES])
def test_hostile_bodies_get_a_clear_4xx_and_write_nothing(
    client: httpx.Client, fuzz: Fuzz, endpoint: tuple[str, str], attack: str
) -> None:
    method, path = endpoint
    payload = ATTACKS[attack](BODIES[endpoint])
    ctype = "text/plain" if attack == "wrong content type" else "application/json"
    before = fuzz.last_seq()
    r = client.request(method, path, content=payload, headers={"Content-Type": ctype})
    assert 400 <= r.status_code < 500, (attack, r.status_code, r.text[:300])
    body = r.json()
    assert body["error"] in ("InvalidInput", "PayloadTooLarge") and body["message"], body
    assert len(body["message"]) < 2000 and "Traceback" not in body["message"]
    assert not fuzz.written_since(before)


#: (path, whether it must be refused); the others may answer, but never with a 5xx or a write
QUERIES = [
    ("/v1/requests?limit=100000000000000000000000000000", True),
    ("/v1/requests?offset=-1", True),
    ("/v1/requests?status=%ff%fe", True),
    ("/v1/requests?agent=" + "a" * 10_000, True),
    ("/v1/requests/%ff", True),
    ("/v1/requests/1e400", True),
    ("/v1/events/log?after=99999999999999999999999999", True),
    ("/v1/escalations/1/wait?timeout=1e999", True),
    ("/v1/requests/1/wait?timeout=nan", True),
    ("/v1/reviews?since=not-a-date", True),
    ("/v1/requests?search=%ff%fe%00", False),  # invalid UTF-8 arrives as U+FFFD: a search that finds nothing
    ("/v1/capability?tool=%00", False),
    ("/v1/requests?status=all&status=pending&status=%00", False),
]


@pytest.mark.parametrize(("path", "refused"), QUERIES)
def test_hostile_query_strings_and_paths(client: httpx.Client, fuzz: Fuzz, path: str, refused: bool) -> None:
    before = fuzz.last_seq()
    r = client.get(path)
    assert r.status_code < 500, (path, r.status_code, r.text[:300])
    if refused:
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:300])
        assert r.json()["message"]
    else:
        assert isinstance(r.json(), dict)
    assert not fuzz.written_since(before)


@pytest.mark.parametrize("pattern", ["a b(c)", "Bash(unclosed", "x\ny", "Read())"])
def test_a_rule_the_policy_cannot_compile_is_refused_on_write(client: httpx.Client, fuzz: Fuzz, pattern: str) -> None:
    """Found by the schema run: such a rule was stored, and from then on every policy evaluation
    (every agent's every tool call) failed with a 500."""
    before = fuzz.last_seq()
    r = client.put("/v1/rules", json={"rules": [{"pattern": pattern, "effect": "deny"}]})
    assert r.status_code == 422 and "rule pattern" in r.json()["message"], r.text
    assert not fuzz.written_since(before)
    assert client.post("/v1/policy/evaluate", json={"tool": "0"}).status_code == 200


def test_valid_bodies_still_work(client: httpx.Client) -> None:
    """The attacks above are refused for what they carry, not because the endpoint is closed."""
    r = client.post("/v1/requests", json=BODIES[("POST", "/v1/requests")])
    assert r.status_code == 200
    rid = r.json()["id"]
    assert client.post(f"/v1/requests/{rid}/decision", json={"decision": "deny"}).status_code == 200


def test_what_the_schema_run_wrote_still_verifies(client: httpx.Client, tmp_path: Path) -> None:
    assert client.get("/v1/audit/verify").json()["ok"]
