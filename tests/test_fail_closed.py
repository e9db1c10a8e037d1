"""Fail closed, one fault at a time: in every case nothing unapproved runs and the agent gets a reason.

Each test drives the real agent-side ``Gate`` with a tool that records whether it ran, against a
real fault: a closed port, a SIGKILLed ``hitl serve``, a loopback HTTP server that answers garbage,
a full / locked / read-only SQLite file, a clock that jumps, a decision that arrives too late and a
deadline racing an approval. Then durability (kill -9 right after a decision is acknowledged) and
idempotent retries across those crashes.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from hitl_tui.backend.http import HttpBackend
from hitl_tui.backend.local import LocalBackend
from hitl_tui.errors import Conflict, StoreUnavailable
from hitl_tui.models import ApprovalRequest, DecisionIn, RequestStatus
from hitl_tui.sdk import Gate, NotApproved
from hitl_tui.sdk import gate as gate_module
from hitl_tui.store.sqlite import SQLiteStore

from .conftest import POSTGRES_DSN, FakeClock, _postgres_available
from .server_utils import ServerProcess, Team, free_port, serving, sqlite_url
from .server_utils import server as server  # fixtures, re-exported
from .server_utils import team as team

pytestmark = pytest.mark.timeout(120)


class Tool:
    """The gated action: records every run, so a test can prove it never ran."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []

    def __call__(self, **kw: Any) -> str:
        self.runs.append(kw)
        return "ran"


@pytest.fixture
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gate waits 30 s beyond a request's deadline before giving up on the backend; 1 s here."""
    monkeypatch.setattr(gate_module, "WAIT_GRACE_S", 1.0)


def refused(result: Any, status: str) -> NotApproved:
    assert isinstance(result, NotApproved), f"expected a refusal, got {result!r}"
    assert result.status == status, result
    assert result.reason.strip(), "a refusal must say why"
    return result


async def first_pending(backend: Any, timeout: float = 30.0) -> ApprovalRequest:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while loop.time() < give_up:
        page = await backend.list_requests(RequestStatus.pending)
        if page.items:
            return page.items[0]  # type: ignore[no-any-return]
        await asyncio.sleep(0.02)
    raise AssertionError("no request was filed")


def count_rows(path: Path, table: str = "requests") -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


async def on_store_connection(store: SQLiteStore, sql: str) -> Any:
    """Run one statement on the store's own connection (per-connection pragmas such as
    ``max_page_count`` and ``query_only`` only act there)."""
    return await store._run(store._read, lambda c: c.execute(sql).fetchall())


# =========================================================================== the server side


async def test_server_unreachable_at_request_time() -> None:
    port = free_port()  # nothing listens there
    tool = Tool()
    async with Gate(HttpBackend(f"http://127.0.0.1:{port}", "hitl_x", reconnect_for=0.5), "bot") as gate:
        result = await asyncio.wait_for(gate.run("deploy", {"env": "prod"}, tool), 30)
    why = refused(result, "error")
    assert "cannot reach" in why.reason and str(port) in why.reason
    assert tool.runs == []


async def test_server_killed_while_the_agent_waits(team: Team, short_grace: None) -> None:
    tool = Tool()
    async with Gate(team.backend("bot", reconnect_for=1.0), "bot") as gate, team.backend("root") as admin:
        run = asyncio.create_task(gate.run("deploy", {"env": "prod"}, tool, timeout=2))
        pending = await first_pending(admin)
        team.server.kill()  # SIGKILL, and it stays down
        result = await asyncio.wait_for(run, 60)
    why = refused(result, "error")
    assert why.request_id == pending.id and "lost the backend while waiting" in why.reason
    assert tool.runs == []


# --------------------------------------------------------------------------- a server that lies


def _pending_json(rid: int = 7) -> dict[str, Any]:
    now = datetime.now(UTC)
    return ApprovalRequest(id=rid, agent="bot", tool="deploy", args={"env": "prod"}, created_at=now,
                           expires_at=now + timedelta(seconds=60)).model_dump(mode="json")


#: what the fake server answers to the long-poll for the agent's request: raw bytes on the socket
FAULTS: dict[str, bytes] = {
    "truncated body": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n"
                      + json.dumps({**_pending_json(), "status": "approved"}).encode()[:40],
    "not HTTP at all": b"\x00\xff\xfe\x1b[2J approved approved approved\r\n\r\n",
    "approved, missing fields": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 31\r\n\r\n"
                                b'{"id": 7, "status": "approved"}',
    "unknown status": None,  # type: ignore[dict-item]  # filled below
    "html": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 21\r\n\r\n<html>approved</html>",
    "server error": b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\n{}",
    "headers then silence": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
}
_odd = json.dumps({**_pending_json(), "status": "approved!"}).encode()
FAULTS["unknown status"] = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                            + str(len(_odd)).encode() + b"\r\n\r\n" + _odd)


class _Scripted(BaseHTTPRequestHandler):
    """Answers like ``hitl serve`` until the agent waits; then writes ``fault`` and hangs up."""

    protocol_version = "HTTP/1.0"
    fault = b""
    seen: list[str] = []

    def _json(self, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.seen.append(f"GET {self.path}")
        if self.path.startswith("/v1/whoami"):
            self._json({"name": "bot", "role": "agent"})
        else:  # the long-poll
            self.wfile.write(self.fault)
            self.wfile.flush()
            self.close_connection = True

    def do_POST(self) -> None:
        self.seen.append(f"POST {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path.startswith("/v1/policy/evaluate"):
            self._json({"route": "approval", "reason": "deploys need a human"})
        elif self.path == "/v1/requests":
            self._json(_pending_json())
        else:  # the gate withdraws its request: refuse
            self.send_error(503)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=list(FAULTS), ids=list(FAULTS))
def liar(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    with serving(_Scripted, fault=FAULTS[request.param], seen=seen) as url:
        yield url, seen


async def test_malformed_or_truncated_server_response(liar: tuple[str, list[str]], short_grace: None) -> None:
    url, seen = liar
    tool = Tool()
    # a short per-call timeout: "headers then silence" must not hang the agent
    async with Gate(HttpBackend(url, "hitl_x", timeout=1.0, reconnect_for=1.0), "bot") as gate:
        result = await asyncio.wait_for(gate.run("deploy", {"env": "prod"}, tool, timeout=1), 60)
    why = refused(result, "error")
    assert why.request_id == 7 and "lost the backend while waiting" in why.reason
    assert any(s.startswith("GET /v1/requests/7/wait") for s in seen)  # it really got that far
    assert tool.runs == []


# =========================================================================== the store side


async def test_disk_full_when_filing(tmp_path: Path) -> None:
    db = tmp_path / "full.db"
    store = SQLiteStore(db)
    tool = Tool()
    async with Gate(LocalBackend(store, actor="bot"), "bot") as gate:
        pages = (await on_store_connection(store, "PRAGMA page_count"))[0][0]
        await on_store_connection(store, f"PRAGMA max_page_count = {pages}")  # the disk is full now
        result = await gate.run("deploy", {"env": "prod", "blob": "x" * 20_000}, tool, summary="y" * 20_000)
    why = refused(result, "error")
    assert "could not file the approval request" in why.reason and "full" in why.reason
    assert tool.runs == [] and count_rows(db) == 0 and count_rows(db, "events") == 0


async def test_disk_full_when_the_reviewer_approves(tmp_path: Path, short_grace: None) -> None:
    db = tmp_path / "full.db"
    tool = Tool()
    async with Gate(LocalBackend(SQLiteStore(db), actor="bot"), "bot") as gate, \
            LocalBackend(SQLiteStore(db), actor="alice") as reviewer:
        run = asyncio.create_task(gate.run("deploy", {"env": "prod"}, tool, timeout=1.5))
        pending = await first_pending(reviewer)
        store = reviewer.store
        assert isinstance(store, SQLiteStore)
        pages = (await on_store_connection(store, "PRAGMA page_count"))[0][0]
        await on_store_connection(store, f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StoreUnavailable, match="full"):
            await reviewer.decide(pending.id, DecisionIn(decision="approve", reason="ok " * 20_000))
        result = await asyncio.wait_for(run, 30)
    refused(result, "expired")  # the approval never happened, so the deadline won
    assert tool.runs == []
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status, decided_by FROM requests").fetchall() == [("expired", None)]
    conn.close()


@pytest.fixture
def locked_db(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """A store file on which another connection holds an exclusive lock."""
    db = tmp_path / "locked.db"
    SQLiteStore(db).close_sync()  # schema in place
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    yield db, holder
    holder.close()


async def test_store_locked_by_another_connection(locked_db: tuple[Path, sqlite3.Connection]) -> None:
    db, holder = locked_db
    tool = Tool()
    async with Gate(LocalBackend(SQLiteStore(db, busy_timeout=0.3), actor="bot"), "bot") as gate:
        result = await asyncio.wait_for(gate.run("deploy", {"env": "prod"}, tool), 30)
    why = refused(result, "error")
    assert "locked" in why.reason
    holder.execute("ROLLBACK")
    assert tool.runs == [] and count_rows(db) == 0


async def test_store_locked_when_the_reviewer_approves(tmp_path: Path, short_grace: None) -> None:
    db = tmp_path / "locked.db"
    tool = Tool()
    async with Gate(LocalBackend(SQLiteStore(db), actor="bot"), "bot") as gate, \
            LocalBackend(SQLiteStore(db, busy_timeout=0.3), actor="alice") as reviewer:
        run = asyncio.create_task(gate.run("deploy", {"env": "prod"}, tool, timeout=2))
        pending = await first_pending(reviewer)
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(StoreUnavailable, match="locked"):
                await reviewer.decide(pending.id, DecisionIn(decision="approve"))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        result = await asyncio.wait_for(run, 30)
    refused(result, "expired")
    assert tool.runs == []


@pytest.fixture
def immutable() -> Iterator[Any]:
    """Make files read-only for everyone, root included (the tests run as root, which ignores
    ``chmod 0444``): ``chattr +i``, undone afterwards."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not available")
    locked: list[Path] = []

    def lock(path: Path) -> None:
        path.chmod(0o444)
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot make a file immutable here: {done.stderr.strip()}")
        locked.append(path)

    yield lock
    for path in locked:
        subprocess.run(["chattr", "-i", str(path)], check=False)


async def test_read_only_store_file(tmp_path: Path, immutable: Any) -> None:
    db = tmp_path / "ro.db"
    SQLiteStore(db).close_sync()
    immutable(db)
    with pytest.raises(OSError):
        db.open("ab")  # really read-only, even for root
    tool = Tool()
    try:
        gate = Gate(LocalBackend(SQLiteStore(db), actor="bot"), "bot", owns_backend=True)
    except StoreUnavailable as exc:  # refusing to open is failing closed too, with the reason
        assert "readonly" in exc.message.replace(" ", "") or "read-only" in exc.message, exc.message
        return
    async with gate:
        result = await gate.run("deploy", {"env": "prod"}, tool)
    why = refused(result, "error")
    assert "readonly" in why.reason.replace(" ", "") or "read-only" in why.reason, why.reason
    assert tool.runs == [] and count_rows(db) == 0


async def test_read_only_connection_query_only(tmp_path: Path) -> None:
    """The same fault in-process, through SQLite's own read-only switch on the store connection."""
    db = tmp_path / "ro.db"
    store = SQLiteStore(db)
    tool = Tool()
    async with Gate(LocalBackend(store, actor="bot"), "bot") as gate:
        await on_store_connection(store, "PRAGMA query_only = 1")
        result = await gate.run("deploy", {"env": "prod"}, tool)
    why = refused(result, "error")
    assert "readonly" in why.reason.replace(" ", "")
    assert tool.runs == [] and count_rows(db) == 0


async def test_a_stored_policy_the_engine_cannot_use(tmp_path: Path) -> None:
    """A rule written straight into the store (an older version, a hand edit) that the policy
    engine rejects: every call fails closed, naming the rule, instead of crashing."""
    from hitl_tui.models import Rule, RuleEffect

    store = SQLiteStore(tmp_path / "bad-policy.db")
    await store.set_rules([Rule(pattern="Bash(unclosed", effect=RuleEffect.allow)], "hand edit")
    tool = Tool()
    async with Gate(LocalBackend(store, actor="bot"), "bot") as gate:
        result = await gate.run("Bash", {"command": "rm -rf /"}, tool)
    why = refused(result, "error")
    assert "could not evaluate the policy" in why.reason and "Bash(unclosed" in why.reason
    assert tool.runs == []


# =========================================================================== time


async def test_clock_jumps_past_the_deadline_while_waiting(tmp_path: Path) -> None:
    clock = FakeClock()
    tool = Tool()
    async with Gate(LocalBackend(SQLiteStore(tmp_path / "c.db", clock=clock), actor="bot"), "bot") as gate, \
            LocalBackend(SQLiteStore(tmp_path / "c.db", clock=clock), actor="alice") as reviewer:
        run = asyncio.create_task(gate.run("deploy", {"env": "prod"}, tool, timeout=3600))
        pending = await first_pending(reviewer)
        await asyncio.sleep(0.2)
        assert not run.done()
        clock.advance(7200)  # NTP step, suspend/resume: the wall clock leaps two hours
        result = await asyncio.wait_for(run, 30)  # the hub's idle sweep notices within a second or so
        why = refused(result, "expired")
        assert why.request_id == pending.id
        with pytest.raises(Conflict, match="expired"):
            await reviewer.decide(pending.id, DecisionIn(decision="approve"))
    assert tool.runs == []


async def test_decision_arriving_after_expiry(tmp_path: Path) -> None:
    clock = FakeClock()
    tool = Tool()
    db = tmp_path / "late.db"
    # no expiry sweep on either side: the late decision itself finds the request past its deadline
    async with Gate(LocalBackend(SQLiteStore(db, clock=clock), actor="bot", expire_sweep=False), "bot") as gate, \
            LocalBackend(SQLiteStore(db, clock=clock), actor="alice", expire_sweep=False) as reviewer:
        run = asyncio.create_task(gate.run("deploy", {"env": "prod"}, tool, timeout=600))
        pending = await first_pending(reviewer)
        clock.advance(601)
        with pytest.raises(Conflict, match="expired") as late:
            await reviewer.decide(pending.id, DecisionIn(decision="approve", reason="sorry, was at lunch"))
        assert late.value.details["status"] == "expired"
        result = await asyncio.wait_for(run, 30)
        refused(result, "expired")
        final = await reviewer.get_request(pending.id)
    assert final.status is RequestStatus.expired and final.decided_by is None and final.approvals == []
    assert tool.runs == []
    conn = sqlite3.connect(db)
    kinds = [k for (k,) in conn.execute("SELECT kind FROM events ORDER BY seq")]
    conn.close()
    assert kinds == ["request.created", "request.expired"]  # no decision event, ever


async def test_timeout_racing_an_approval_by_milliseconds(tmp_path: Path) -> None:
    """Deadline and approval land within a few milliseconds of each other, many times over: the
    outcome is approved-and-ran or expired-and-not-run, and agent, reviewer and store agree."""
    db = tmp_path / "race.db"
    rounds = 60
    outcomes: dict[str, int] = {"approved": 0, "expired": 0}
    async with LocalBackend(SQLiteStore(db), actor="bot") as agent_side, \
            LocalBackend(SQLiteStore(db), actor="alice") as reviewer:
        gate = Gate(agent_side, "bot")
        for i in range(rounds):
            tool = Tool()
            deadline = 0.15
            run = asyncio.create_task(gate.run("deploy", {"round": i}, tool, timeout=deadline))
            pending = await first_pending(reviewer)
            # aim at the deadline, give or take a few milliseconds
            late_by = (i % 7 - 3) * 0.002
            wait = (pending.expires_at - datetime.now(UTC)).total_seconds() + late_by if pending.expires_at else 0
            await asyncio.sleep(max(0.0, wait))
            try:
                said = (await reviewer.decide(pending.id, DecisionIn(decision="approve"))).status.value
            except Conflict as exc:
                said = str(exc.details["status"])
            result = await asyncio.wait_for(run, 30)
            final = (await reviewer.get_request(pending.id)).status.value
            ran = tool.runs == [{"round": i}]
            if final == "approved":
                assert result == "ran" and ran and said == "approved", (i, result, said)
            else:
                assert final == "expired", (i, final)
                refused(result, "expired")
                assert tool.runs == [] and said == "expired", (i, said)
            outcomes[final] += 1
    conn = sqlite3.connect(db)
    per_request = conn.execute(
        "SELECT subject, COUNT(*) FROM events WHERE kind IN ('request.decided', 'request.expired') GROUP BY subject"
    ).fetchall()
    conn.close()
    assert len(per_request) == rounds and all(n == 1 for _, n in per_request)  # one terminal event each
    print(f"\nraced {rounds} deadlines: {outcomes}")


# =========================================================================== durability and retries


@pytest.fixture(params=["sqlite", "postgres"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    why = _postgres_available()
    if why:
        pytest.skip(why)
    from hitl_tui.store.postgres import create_test_schema, drop_test_schema

    assert POSTGRES_DSN
    schema = await create_test_schema(POSTGRES_DSN)
    sep = "&" if "?" in POSTGRES_DSN else "?"
    yield f"{POSTGRES_DSN}{sep}schema={schema}"
    await drop_test_schema(POSTGRES_DSN, schema)


def test_kill_9_right_after_acknowledging_a_decision(store_url: str, tmp_path: Path) -> None:
    """The server answers 200 to a decision and is SIGKILLed at once; after a restart the decision
    is there, exactly once. Repeated, so it is not luck."""
    proc = ServerProcess(store_url, tmp_path).start()
    try:
        team = Team(proc)
        for i in range(4):
            with team.client("root") as admin:
                rid = admin.post("/v1/requests", json={"agent": "bot", "tool": "deploy", "args": {"n": i}}).json()["id"]
            with team.client("alice") as alice:
                acked = alice.post(f"/v1/requests/{rid}/decision",
                                   json={"decision": "approve" if i % 2 else "deny", "reason": f"round {i}"})
            assert acked.status_code == 200
            proc.kill()  # the instant after the acknowledgement
            proc.start()
            with team.client("bot") as bot:
                got = bot.get(f"/v1/requests/{rid}").json()
            assert got["status"] == acked.json()["status"] and got["decided_by"] == "alice"
            assert got["decision_reason"] == f"round {i}"
        with team.client("root") as admin:
            events = admin.get("/v1/events/log", params={"after": 0, "limit": 1000}).json()
            audit = admin.get("/v1/audit/verify").json()
        decided = [e["subject"] for e in events if e["kind"] == "request.decided"]
        assert len(decided) == len(set(decided)) == 4
        assert audit["ok"] and [e["seq"] for e in events] == list(range(1, len(events) + 1))
    finally:
        proc.stop()


def test_kill_9_the_cli_process_right_after_it_decided(cli_env: dict[str, str], tmp_path: Path) -> None:
    """The embedded store: a process decides, prints its acknowledgement and is SIGKILLed before it
    can close anything; a new process finds the decision."""
    db = cli_env["HITL_STORE"]
    script = textwrap.dedent("""
        import asyncio, os, signal, sys
        from hitl_tui.models import DecisionIn, RequestCreate
        from hitl_tui.store.sqlite import SQLiteStore

        async def main():
            store = SQLiteStore(sys.argv[1])
            req = await store.create_request(RequestCreate(agent="bot", tool="deploy"))
            done = await store.decide(req.id, DecisionIn(decision="approve", reason="ack"), "alice")
            print(done.id, done.status.value, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint, no goodbye

        asyncio.run(main())
    """)
    for _ in range(3):
        p = subprocess.run([sys.executable, "-c", script, db], env=cli_env, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == -9
        rid, status = p.stdout.split()
        assert status == "approved"
        shown = subprocess.run([sys.executable, "-m", "hitl_tui", "show", rid, "--json"], env=cli_env,
                               capture_output=True, text=True, timeout=60)
        got = json.loads(shown.stdout)
        assert got["status"] == "approved" and got["decided_by"] == "alice" and got["decision_reason"] == "ack"
    audit = subprocess.run([sys.executable, "-m", "hitl_tui", "audit", "verify"], env=cli_env,
                           capture_output=True, text=True, timeout=60)
    assert audit.returncode == 0 and "6 events verified" in audit.stdout


def test_retries_across_a_crash_are_idempotent(store_url: str, tmp_path: Path) -> None:
    """An agent that never heard back retries its create with the same key; a reviewer retries
    the same decision: same request, same result, and no second event."""
    proc = ServerProcess(store_url, tmp_path).start()
    try:
        team = Team(proc)
        body = {"agent": "bot", "tool": "deploy", "args": {"env": "prod"}, "idempotency_key": "deploy-run-17"}
        with team.client("bot") as bot:
            first = bot.post("/v1/requests", json=body).json()
        proc.kill()
        proc.start()
        with team.client("root") as admin:
            seq_before_retry = admin.get("/v1/events/last").json()["seq"]
        with team.client("bot") as bot:
            again = bot.post("/v1/requests", json=body)
        assert again.status_code == 200 and again.json() == first
        with team.client("alice") as alice:
            decided = alice.post(f"/v1/requests/{first['id']}/decision", json={"decision": "approve"}).json()
        proc.kill()
        proc.start()
        with team.client("root") as admin:
            seq_after_decision = admin.get("/v1/events/last").json()["seq"]
        assert seq_after_decision == seq_before_retry + 1  # the create retry wrote nothing
        with team.client("alice") as alice:
            retried = [alice.post(f"/v1/requests/{first['id']}/decision", json={"decision": "approve"})
                       for _ in range(3)]
        assert all(r.status_code == 200 and r.json() == decided for r in retried)
        with team.client("bob") as bob:  # someone else trying is a conflict, not a second decision
            other = bob.post(f"/v1/requests/{first['id']}/decision", json={"decision": "deny"})
        assert other.status_code == 409 and "alice" in other.json()["message"]
        with team.client("root") as admin:
            assert admin.get("/v1/events/last").json()["seq"] == seq_after_decision
            assert admin.get("/v1/audit/verify").json()["ok"]
    finally:
        proc.stop()


async def test_an_agent_restarted_mid_wait_retries_with_the_same_key(team: Team) -> None:
    """The agent dies while waiting, with the server down too (so it could not withdraw its
    request); its retry with the same key finds the same request, now approved, and runs once."""
    tool = Tool()
    async with Gate(team.backend("bot", reconnect_for=0.5), "bot") as gate:
        first = asyncio.create_task(gate.run("deploy", {"env": "prod"}, tool, timeout=120, idempotency_key="k-1"))
        async with team.backend("root") as admin:
            pending = await first_pending(admin)
        team.server.kill()
        first.cancel()  # the agent process goes away mid-wait
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.to_thread(team.server.start)
        async with team.backend("alice") as alice:
            assert (await alice.decide(pending.id, DecisionIn(decision="approve"))).status is RequestStatus.approved
        assert await gate.run("deploy", {"env": "prod"}, tool, timeout=120, idempotency_key="k-1") == "ran"
    assert tool.runs == [{"env": "prod"}]
    with httpx.Client(base_url=team.url, headers=team.headers("root")) as admin:
        created = [e for e in admin.get("/v1/events/log", params={"after": 0}).json()
                   if e["kind"] == "request.created"]
    assert [e["subject"] for e in created] == [f"request:{pending.id}"]
