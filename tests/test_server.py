"""`hitl serve` over real HTTP on loopback: conflicts, self-review, limits, bad input (never a
500, nothing written), long-polls, the SSE stream with resume, metrics, shutdown."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import HITL
from .server_utils import Team, server_env, sqlite_url
from .server_utils import module_team as module_team  # fixtures, re-exported
from .server_utils import server as server
from .server_utils import team as team


def file_request(client: httpx.Client, agent: str = "bot", **extra: Any) -> dict[str, Any]:
    r = client.post("/v1/requests", json={"agent": agent, "tool": "Bash", "args": {"command": "deploy"}, **extra})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def last_seq(team: Team) -> int:
    with team.client("root") as admin:
        return int(admin.get("/v1/events/last").json()["seq"])


def metric(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert m, f"{name} not in metrics"
    return float(m.group(1))


# --------------------------------------------------------------------------- decisions


def test_second_decision_is_409_naming_who_and_when(module_team: Team) -> None:
    with module_team.client("root") as admin, module_team.client("alice") as alice, \
            module_team.client("bob") as bob:
        rid = file_request(admin)["id"]
        first = alice.post(f"/v1/requests/{rid}/decision", json={"decision": "deny", "reason": "not today"})
        assert first.status_code == 200
        second = bob.post(f"/v1/requests/{rid}/decision", json={"decision": "approve"})
    assert second.status_code == 409
    body = second.json()
    assert body["error"] == "Conflict"
    assert body["decided_by"] == "alice" and body["status"] == "denied" and body["decided_at"]
    assert "alice" in body["message"] and "denied" in body["message"]
    assert body["decided_at"][:19] in body["message"]


def test_racing_decisions_from_two_clients_settle_once(module_team: Team) -> None:
    with module_team.client("root") as admin:
        ids = [file_request(admin)["id"] for _ in range(15)]
    before = last_seq(module_team)

    def decide(who: str, rid: int) -> tuple[str, int, int]:
        verdict = "approve" if who == "alice" else "deny"
        with module_team.client(who) as c:
            return who, rid, c.post(f"/v1/requests/{rid}/decision", json={"decision": verdict}).status_code

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda a: decide(*a), [(w, r) for r in ids for w in ("alice", "bob")]))
    for rid in ids:
        codes = sorted(code for _, r, code in results if r == rid)
        assert codes == [200, 409], (rid, codes)
    with module_team.client("root") as admin:
        events = admin.get("/v1/events/log", params={"after": before}).json()
    decided = [e["subject"] for e in events if e["kind"] == "request.decided"]
    assert sorted(decided) == sorted(f"request:{r}" for r in ids)  # exactly one decision each


def test_self_review_is_refused(module_team: Team) -> None:
    with module_team.client("root") as admin, module_team.client("alice") as alice, \
            module_team.client("bob") as bob:
        rid = file_request(admin, agent="alice")["id"]  # filed as alice (say, her own agent)
        r = alice.post(f"/v1/requests/{rid}/decision", json={"decision": "approve"})
        assert r.status_code == 403
        assert "self-review" in r.json()["message"]
        assert admin.get(f"/v1/requests/{rid}").json()["status"] == "pending"
        assert bob.post(f"/v1/requests/{rid}/decision", json={"decision": "approve"}).json()["status"] == "approved"


def test_quorum_needs_distinct_reviewers(module_team: Team) -> None:
    with module_team.client("root") as admin, module_team.client("alice") as alice, \
            module_team.client("bob") as bob:
        rid = file_request(admin, required_approvals=2)["id"]
        assert alice.post(f"/v1/requests/{rid}/decision", json={"decision": "approve"}).json()["status"] == "pending"
        again = alice.post(f"/v1/requests/{rid}/decision", json={"decision": "approve"})  # a retry: same answer
        assert again.status_code == 200 and again.json()["status"] == "pending"
        assert len(again.json()["approvals"]) == 1
        flip = alice.post(f"/v1/requests/{rid}/decision", json={"decision": "deny"})
        assert flip.status_code == 409 and "already voted approve" in flip.json()["message"]
        done = bob.post(f"/v1/requests/{rid}/decision", json={"decision": "approve"}).json()
    assert done["status"] == "approved"
    assert [v["reviewer"] for v in done["approvals"]] == ["alice", "bob"]


# --------------------------------------------------------------------------- bad input


def test_oversized_body_is_413_and_writes_nothing(module_team: Team) -> None:
    before = last_seq(module_team)
    big = json.dumps({"agent": "bot", "tool": "Bash", "args": {"blob": "x" * (1024 * 1024 + 10)}}).encode()
    with module_team.client("root") as admin:
        r = admin.post("/v1/requests", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert r.json()["error"] == "PayloadTooLarge"

        def chunks():  # no Content-Length: counted as it streams
            for i in range(0, len(big), 65536):
                yield big[i : i + 65536]

        r = admin.post("/v1/requests", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        small = admin.post("/v1/requests", json={"agent": "bot", "tool": "Bash", "args": {"blob": "x" * 1000}})
        assert small.status_code == 200
    assert last_seq(module_team) == before + 1  # only the small one


BAD_BODIES: list[tuple[str, bytes | str, str]] = [
    ("not JSON", b'{"agent": ', "/v1/requests"),
    ("not an object", b"[1, 2, 3]", "/v1/requests"),
    ("unknown field", json.dumps({"agent": "bot", "tool": "Bash", "approve": True}), "/v1/requests"),
    ("wrong type", json.dumps({"agent": "bot", "tool": "Bash", "args": "rm -rf /"}), "/v1/requests"),
    ("missing field", json.dumps({"agent": "bot"}), "/v1/requests"),
    ("NaN in args", b'{"agent": "bot", "tool": "Bash", "args": {"x": NaN}}', "/v1/requests"),
    ("lone surrogate", b'{"agent": "bot", "tool": "Bash", "args": {"x": "\\ud800"}}', "/v1/requests"),
    ("lone surrogate key", b'{"agent": "bot", "tool": "Bash", "args": {"\\udc00": 1}}', "/v1/requests"),
    ("deep nesting", b'{"agent": "bot", "tool": "Bash", "args": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
     "/v1/requests"),
    ("huge id in body", json.dumps({"agent": "bot", "message": "?", "request_id": 10**30}), "/v1/escalations"),
    ("negative id in body", json.dumps({"agent": "bot", "tool": "T", "request_id": -1}), "/v1/reviews"),
    ("not UTF-8", b'{"agent": "\xff\xfe", "tool": "Bash"}', "/v1/requests"),
    ("empty", b"", "/v1/requests"),
    ("null", b"null", "/v1/requests"),
    ("deny with edit", json.dumps({"decision": "deny", "edited_args": {}}), "/v1/requests/1/decision"),
    ("bad stage", json.dumps({"tool": "Bash", "stage": "yolo"}), "/v1/capabilities/stage"),
    ("bad rule", json.dumps({"rules": [{"pattern": "", "effect": "allow"}]}), "PUT /v1/rules"),
]


@pytest.mark.parametrize(("what", "body", "path"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_input_is_a_clear_4xx_and_writes_nothing(module_team: Team, what: str, body: bytes | str,
                                                     path: str) -> None:
    before = last_seq(module_team)
    with module_team.client("root") as admin:
        method, _, url = path.rpartition(" ")
        r = admin.request(method or "POST", url, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, (what, r.status_code, r.text)
    err = r.json()
    assert err["error"] == "InvalidInput" and err["message"]
    assert last_seq(module_team) == before


def test_form_encoded_body_gets_a_hint(module_team: Team) -> None:
    with module_team.client("root") as admin:
        r = admin.post("/v1/requests", content=b"agent=bot&tool=Bash",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422
    assert "Content-Type: application/json" in r.json()["message"]


@pytest.mark.parametrize("path", ["/v1/requests/99999999999999999999999", "/v1/requests/0", "/v1/requests/abc",
                                  "/v1/escalations/-5", "/v1/reviews/1e9"])
def test_bad_ids_in_paths_are_422(module_team: Team, path: str) -> None:
    with module_team.client("root") as admin:
        r = admin.get(path)
    assert r.status_code == 422, r.text


def test_unknown_things_are_json_404s(module_team: Team) -> None:
    with module_team.client("root") as admin:
        missing = admin.get("/v1/requests/987654")
        nowhere = admin.get("/v1/nowhere")
        wrong_method = admin.delete("/v1/requests")
    assert missing.status_code == 404 and missing.json()["error"] == "NotFound"
    assert nowhere.status_code == 404 and nowhere.json()["error"] == "NotFound"
    assert wrong_method.status_code == 405 and wrong_method.json()["message"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
_FIELDS = ["agent", "tool", "args", "summary", "risk", "confidence", "timeout_s", "idempotency_key",
           "required_approvals", "message", "request_id", "text", "decision", "edited_args", "verdict", "result",
           "result_limit", "status", "stage", "rules", "capability", "reason", "force", "note", "name", "role"]
_BODIES = st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=6) | _JSON
_ENDPOINTS = [("POST", "/v1/requests"), ("POST", "/v1/requests/1/decision"), ("POST", "/v1/requests/1/cancel"),
              ("POST", "/v1/escalations"), ("POST", "/v1/escalations/1/messages"),
              ("POST", "/v1/escalations/1/status"), ("POST", "/v1/reviews"), ("POST", "/v1/reviews/1/mark"),
              ("PUT", "/v1/capabilities"), ("POST", "/v1/capabilities/stage"), ("PUT", "/v1/rules"),
              ("POST", "/v1/policy/evaluate"), ("POST", "/v1/tokens")]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(endpoint=st.sampled_from(_ENDPOINTS), body=_BODIES)
def test_no_request_body_causes_a_500(module_team: Team, endpoint: tuple[str, str], body: Any) -> None:
    method, path = endpoint
    with module_team.client("root") as admin:
        r = admin.request(method, path, content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert r.status_code < 500, (endpoint, body, r.text)
    assert isinstance(r.json(), (dict, list))


# --------------------------------------------------------------------------- waiting


def test_long_poll_returns_the_decision(module_team: Team) -> None:
    with module_team.client("root") as admin:
        rid = file_request(admin)["id"]

    def wait() -> dict[str, Any]:
        with module_team.client("bot") as bot:
            return bot.get(f"/v1/requests/{rid}/wait", params={"timeout": 30}).json()  # type: ignore[no-any-return]

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(wait)
        with module_team.client("alice") as alice:
            alice.post(f"/v1/requests/{rid}/decision", json={"decision": "approve", "reason": "ok"})
        got = waiting.result(timeout=30)
    assert got["status"] == "approved" and got["decided_by"] == "alice"


def test_long_poll_timeout_returns_the_pending_request(module_team: Team) -> None:
    with module_team.client("root") as admin:
        rid = file_request(admin)["id"]
    with module_team.client("bot") as bot:
        got = bot.get(f"/v1/requests/{rid}/wait", params={"timeout": 0.2}).json()
    assert got["status"] == "pending"


def test_escalation_long_poll_wakes_on_a_human_reply(module_team: Team) -> None:
    with module_team.client("bot") as bot:
        eid = bot.post("/v1/escalations", json={"agent": "bot", "message": "which database?"}).json()["id"]

    def wait() -> dict[str, Any]:
        with module_team.client("bot") as bot:
            return bot.get(f"/v1/escalations/{eid}/wait", params={"seen": 1, "timeout": 30}).json()  # type: ignore

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(wait)
        with module_team.client("alice") as alice:
            alice.post(f"/v1/escalations/{eid}/messages", json={"text": "staging, never prod"})
        got = waiting.result(timeout=30)
    assert got["status"] == "answered"
    assert got["messages"][-1] == {**got["messages"][-1], "author": "alice", "text": "staging, never prod"}


async def raw_get(port: int, path: str, token: str) -> tuple[int, bytes]:
    """One agent's own connection, as plainly as it gets (one httpx pool for thousands of
    connections would cost the test more CPU than the server)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                     "Connection: close\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def _many_long_polls(team: Team, waiters: int, requests: int) -> tuple[int, list[str]]:
    """``waiters`` agents long-poll ``requests`` requests at once; returns (server RSS KiB while
    they all wait, the statuses they received once every request was decided)."""
    async with httpx.AsyncClient(base_url=team.url, headers=team.headers("root"), timeout=60) as admin:
        ids = [(await admin.post("/v1/requests", json={"agent": "bot", "tool": "Bash"})).json()["id"]
               for _ in range(requests)]
    async with httpx.AsyncClient(base_url=team.url, headers=team.headers("alice"), timeout=60) as alice:

        async def wait(rid: int) -> str:
            token = team.tokens["bot"]
            while True:  # like HttpBackend: re-issue the poll until there is a decision
                status, body = await raw_get(team.server.port, f"/v1/requests/{rid}/wait?timeout=60", token)
                assert status == 200, body
                if json.loads(body)["status"] != "pending":
                    return str(json.loads(body)["status"])

        async def active() -> float:
            return metric((await alice.get("/metrics")).text, "hitl_long_polls_active")

        tasks: list[asyncio.Task[str]] = []
        while len(tasks) < waiters:  # agents arrive in waves, as they would (not 10,000 SYNs at once)
            wave = range(len(tasks), min(waiters, len(tasks) + 500))
            tasks += [asyncio.create_task(wait(ids[i % requests])) for i in wave]
            while await active() < len(tasks) and not any(t.done() for t in tasks):
                await asyncio.sleep(0.05)
        rss = team.server.rss_kib()
        assert not any(t.done() for t in tasks), "a waiter returned before any decision"
        for rid in ids:
            await alice.post(f"/v1/requests/{rid}/decision", json={"decision": "approve"})
        statuses = await asyncio.gather(*tasks)
    return rss, statuses


async def test_a_thousand_agents_wait_at_once(team: Team) -> None:
    rss, statuses = await _many_long_polls(team, waiters=1000, requests=50)
    assert statuses == ["approved"] * 1000
    print(f"\nserver RSS with 1,000 open long-polls: {rss / 1024:.0f} MiB")


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_ten_thousand_agents_wait_at_once(team: Team) -> None:
    rss, statuses = await _many_long_polls(team, waiters=10_000, requests=100)
    assert statuses == ["approved"] * 10_000
    print(f"\nserver RSS with 10,000 open long-polls: {rss / 1024:.0f} MiB")


# --------------------------------------------------------------------------- SSE


def _read_events(client: httpx.Client, count: int, headers: dict[str, str] | None = None,
                 params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Read ``count`` events off /v1/events, then drop the connection."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with client.stream("GET", "/v1/events", headers=headers, params=params) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith(":"):
                continue
            if not line:
                if "data" in current:
                    out.append(current)
                    current = {}
                    if len(out) == count:
                        break
                continue
            key, _, value = line.partition(":")
            current[key] = value.removeprefix(" ")
    return out


def test_sse_resumes_after_a_dropped_connection_without_gaps_or_repeats(module_team: Team) -> None:
    start = last_seq(module_team)
    with module_team.client("root") as admin:
        for _ in range(3):
            file_request(admin)
    with module_team.client("alice") as alice:
        first = _read_events(alice, 2, params={"after": start})
    assert [int(e["id"]) for e in first] == [start + 1, start + 2]
    assert first[0]["event"] == "request.created"
    assert json.loads(first[0]["data"])["seq"] == start + 1
    with module_team.client("root") as admin:  # more happens while the client is away
        for _ in range(2):
            file_request(admin)
    resume_from = first[-1]["id"]
    with module_team.client("alice") as alice:  # Last-Event-ID wins over a stale ?after=
        rest = _read_events(alice, 3, headers={"Last-Event-ID": resume_from}, params={"after": start})
    assert [int(e["id"]) for e in rest] == [start + 3, start + 4, start + 5]


def test_sse_delivers_live_events(module_team: Team) -> None:
    start = last_seq(module_team)
    with ThreadPoolExecutor(1) as pool:
        def listen() -> list[dict[str, Any]]:
            with module_team.client("alice") as alice:
                return _read_events(alice, 1)  # no ?after=: from now on

        got = pool.submit(listen)
        deadline = time.monotonic() + 20
        while not got.done() and time.monotonic() < deadline:  # keep filing until the listener hears one
            with module_team.client("root") as admin:
                file_request(admin)
            time.sleep(0.2)
        events = got.result(timeout=20)
    assert int(events[0]["id"]) > start and events[0]["event"] == "request.created"


def test_sse_rejects_a_bad_last_event_id(module_team: Team) -> None:
    with module_team.client("alice") as alice:
        r = alice.get("/v1/events", headers={"Last-Event-ID": "banana"})
    assert r.status_code == 422


# --------------------------------------------------------------------------- metrics and process


def test_metrics_count_decisions_and_latency(team: Team) -> None:
    with team.client("root") as admin, team.client("alice") as alice:
        ids = [file_request(admin)["id"] for _ in range(3)]
        alice.post(f"/v1/requests/{ids[0]}/decision", json={"decision": "approve"})
        alice.post(f"/v1/requests/{ids[1]}/decision", json={"decision": "deny"})
        deadline = time.monotonic() + 20
        while True:  # the counters follow the change feed: give it a moment
            text = alice.get("/metrics").text
            if metric(text, "hitl_decision_latency_seconds_count") >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert metric(text, "hitl_requests_pending") == 1
    assert metric(text, 'hitl_decisions_total{outcome="approved"}') == 1
    assert metric(text, 'hitl_decisions_total{outcome="denied"}') == 1
    assert metric(text, 'hitl_decisions_total{outcome="expired"}') == 0
    assert metric(text, "hitl_decision_latency_seconds_count") == 2
    assert metric(text, 'hitl_decision_latency_seconds_bucket{le="+Inf"}') == 2
    assert metric(text, "hitl_long_polls_active") == 0


def test_sigterm_stops_the_server_with_a_stream_open(team: Team) -> None:
    with team.client("alice") as alice, alice.stream("GET", "/v1/events") as r:
        assert r.status_code == 200
        assert team.server.proc is not None
        team.server.proc.send_signal(signal.SIGTERM)
        try:
            code = team.server.proc.wait(20)
        except subprocess.TimeoutExpired:
            team.server.kill()
            pytest.fail("the server did not stop on SIGTERM with an event stream open")
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down cleanly


def test_serve_refuses_a_port_in_use(team: Team, tmp_path: Path) -> None:
    cmd = [*HITL, "serve", "--store", sqlite_url(tmp_path, "other.db"), "--port", str(team.server.port)]
    done = subprocess.run(cmd, env=server_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert "address already in use" in done.stderr
