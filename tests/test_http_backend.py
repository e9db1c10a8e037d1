"""HttpBackend against a real `hitl serve`: the same behaviours as LocalBackend (each test runs on
both), then what only a remote backend has to get right: identity from the token, failing closed,
riding out a server crash while waiting, and resuming the event stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from hitl_tui.backend.base import Backend
from hitl_tui.backend.http import HttpBackend
from hitl_tui.backend.local import LocalBackend
from hitl_tui.errors import Conflict, Forbidden, InvalidInput, NotFound, StoreUnavailable, Unauthorized
from hitl_tui.models import (
    Capability,
    DecisionIn,
    EscalationCreate,
    EscalationStatus,
    EventKind,
    MessageRole,
    RequestCreate,
    RequestStatus,
    ReviewCreate,
    ReviewMark,
    Route,
    Rule,
    RuleEffect,
    Stage,
    Verdict,
)
from hitl_tui.store.sqlite import SQLiteStore

from .conftest import HITL
from .server_utils import Team, free_port, server_env, serving
from .server_utils import module_pg_team as module_pg_team  # fixtures, re-exported
from .server_utils import module_team as module_team
from .server_utils import server as server
from .server_utils import team as team

_names = iter(range(10**9))


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


@dataclass
class Crew:
    """Who acts in a test: ``filer`` files for any agent, ``alice``/``bob`` review, ``admin`` configures.
    Locally they share one LocalBackend and the names are passed; over HTTP each has its token."""

    kind: str
    filer: Backend
    alice: Backend
    bob: Backend
    admin: Backend


@pytest.fixture(params=["local", "http", "http-postgres"])
async def crew(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Crew]:
    if request.param == "local":
        backend = LocalBackend(SQLiteStore(tmp_path / "local.db"), actor="root")
        yield Crew("local", backend, backend, backend, backend)
        await backend.close()
        return
    team: Team = request.getfixturevalue("module_team" if request.param == "http" else "module_pg_team")
    made = [team.backend(w) for w in ("root", "alice", "bob", "root")]
    yield Crew("http", *made)
    for b in made:
        await b.close()


def req(agent: str, **kw: object) -> RequestCreate:
    return RequestCreate(agent=agent, tool=str(kw.pop("tool", "Bash")), args=kw.pop("args", {"command": "ls"}), **kw)


# =========================================================================== same as local


async def test_create_get_list_and_idempotency(crew: Crew) -> None:
    agent = unique("agent")
    a = await crew.filer.create_request(req(agent, summary="list files", idempotency_key="k1"))
    again = await crew.filer.create_request(req(agent, summary="list files", idempotency_key="k1"))
    b = await crew.filer.create_request(req(agent, tool="Write", args={"file_path": "/tmp/x"}))
    assert again.id == a.id
    got = await crew.alice.get_request(a.id)
    assert got == a and got.status is RequestStatus.pending and got.summary == "list files"
    page = await crew.alice.list_requests(agent=agent)
    assert page.total == 2 and {r.id for r in page.items} == {a.id, b.id}
    only_write = await crew.alice.list_requests(None, agent=agent, tool="Write")
    assert [r.id for r in only_write.items] == [b.id]
    first = await crew.alice.list_requests(agent=agent, limit=1)
    assert first.total == 2 and len(first.items) == 1
    with pytest.raises(NotFound):
        await crew.alice.get_request(10**9)


async def test_decide_then_a_second_decision_conflicts(crew: Crew) -> None:
    r = await crew.filer.create_request(req(unique("agent")))
    done = await crew.alice.decide(r.id, DecisionIn(decision="approve", edited_args={"command": "ls -l"}), "alice")
    assert done.status is RequestStatus.approved and done.decided_by == "alice"
    assert done.effective_args == {"command": "ls -l"}
    retry = await crew.alice.decide(r.id, DecisionIn(decision="approve", edited_args={"command": "ls -l"}), "alice")
    assert retry.status is RequestStatus.approved  # the same reviewer's retry is answered, not refused
    with pytest.raises(Conflict) as err:
        await crew.bob.decide(r.id, DecisionIn(decision="deny", reason="no"), "bob")
    assert "alice" in err.value.message and "approved" in err.value.message
    assert err.value.details["decided_by"] == "alice"


async def test_cancel(crew: Crew) -> None:
    r = await crew.filer.create_request(req(unique("agent")))
    out = await crew.filer.cancel_request(r.id, "root", "not needed")
    assert out.status is RequestStatus.cancelled
    with pytest.raises(Conflict):
        await crew.alice.decide(r.id, DecisionIn(decision="approve"), "alice")


async def test_wait_for_request(crew: Crew) -> None:
    r = await crew.filer.create_request(req(unique("agent")))
    pending = await crew.filer.wait_for_request(r.id, timeout=0.2)
    assert pending.status is RequestStatus.pending
    waiter = asyncio.create_task(crew.filer.wait_for_request(r.id, timeout=30))
    await asyncio.sleep(0.2)
    assert not waiter.done()
    await crew.alice.decide(r.id, DecisionIn(decision="deny", reason="too risky"), "alice")
    got = await asyncio.wait_for(waiter, 30)
    assert got.status is RequestStatus.denied and got.decision_reason == "too risky"


async def test_wait_returns_expired_at_the_requests_deadline(crew: Crew) -> None:
    r = await crew.filer.create_request(req(unique("agent"), timeout_s=0.5))
    got = await crew.filer.wait_for_request(r.id, timeout=30)
    assert got.status is RequestStatus.expired


async def test_escalation_thread(crew: Crew) -> None:
    agent = unique("agent")
    esc = await crew.filer.create_escalation(EscalationCreate(agent=agent, message="which region?"))
    assert esc.status is EscalationStatus.open
    waiter = asyncio.create_task(crew.filer.wait_for_escalation(esc.id, len(esc.messages), timeout=30))
    await asyncio.sleep(0.2)
    assert not waiter.done()
    answered = await crew.alice.post_message(esc.id, "eu-west-1", "alice", MessageRole.human)
    assert answered.status is EscalationStatus.answered
    got = await asyncio.wait_for(waiter, 30)
    assert got.messages[-1].text == "eu-west-1" and got.messages[-1].author == "alice"
    assert got.messages[-1].role is MessageRole.human
    listed = await crew.alice.list_escalations(agent=agent)
    assert [e.id for e in listed.items] == [esc.id]
    resolved = await crew.alice.set_escalation_status(esc.id, EscalationStatus.resolved, "alice", "done")
    assert resolved.status is EscalationStatus.resolved
    assert (await crew.alice.get_escalation(esc.id)).status is EscalationStatus.resolved


async def test_review_items(crew: Crew) -> None:
    agent = unique("agent")
    item = await crew.filer.log_review(ReviewCreate(agent=agent, tool="Read", result="x" * 900, result_limit=100))
    assert item.truncated and len(item.result) <= 100
    page = await crew.alice.list_reviews(reviewed=False, agent=agent)
    assert [i.id for i in page.items] == [item.id]
    marked = await crew.alice.mark_review(item.id, ReviewMark(verdict=Verdict.flagged, note="why?"), "alice")
    assert marked.reviewed and marked.verdict is Verdict.flagged and marked.reviewer == "alice"
    assert (await crew.alice.list_reviews(reviewed=False, agent=agent)).total == 0
    assert (await crew.alice.get_review(item.id)).note == "why?"


async def test_capabilities_stages_rules_and_policy(crew: Crew) -> None:
    tool = unique("Deploy")
    cap = await crew.admin.put_capability(Capability(tool=tool, always_approval=True), "root", "new tool")
    assert cap.stage is Stage.approval
    assert (await crew.alice.get_capability(tool)).always_approval
    assert tool in {c.tool for c in await crew.alice.list_capabilities()}
    with pytest.raises(Conflict):
        await crew.admin.set_stage(tool, Stage.autonomous, "root", "trust it")
    forced = await crew.admin.set_stage(tool, Stage.autonomous, "root", "trust it", force=True)
    assert forced.stage is Stage.autonomous and forced.history[-1].forced
    assert (await crew.alice.evaluate(tool, {})).route is Route.autonomous
    rules = [Rule(pattern=f"{tool}(prod*)", effect=RuleEffect.deny, reason="never prod")]
    assert await crew.admin.set_rules(rules, "root") == rules
    assert await crew.alice.list_rules() == rules
    blocked = await crew.alice.evaluate(tool, {"command": "prod-eu"})
    assert blocked.route is Route.blocked
    await crew.admin.set_rules([], "root")
    with pytest.raises(NotFound):
        await crew.alice.get_capability(unique("nothing"))


async def test_event_feed_subscribe_and_audit(crew: Crew) -> None:
    start = await crew.alice.last_seq()
    feed = crew.alice.subscribe(start)
    r = await crew.filer.create_request(req(unique("agent")))
    await crew.alice.decide(r.id, DecisionIn(decision="approve"), "alice")
    kinds = []
    async with contextlib.aclosing(feed):
        async for ev in feed:
            if ev.subject == f"request:{r.id}":
                kinds.append(ev.kind)
            if ev.kind is EventKind.request_decided and ev.subject == f"request:{r.id}":
                break
    assert kinds == [EventKind.request_created, EventKind.request_decided]
    events = await crew.alice.events_after(start)
    assert [e.seq for e in events] == list(range(start + 1, start + 1 + len(events)))
    report = await crew.alice.verify_audit()
    assert report.ok and report.checked >= 2


# =========================================================================== HTTP only


async def test_identity_and_read_only_come_from_the_token(module_team: Team) -> None:
    bot, alice = module_team.backend("bot"), module_team.backend("alice")
    try:
        r = await bot.create_request(req("somebody-else"))
        assert r.agent == "bot"
        assert bot.read_only and not alice.read_only
        decided = await alice.decide(r.id, DecisionIn(decision="approve"), reviewer="mallory")
        assert decided.decided_by == "alice"
        with pytest.raises(Forbidden):
            await bot.decide(r.id, DecisionIn(decision="deny"))
        with pytest.raises(Forbidden):
            await bot.set_stage("Bash", Stage.autonomous)
        assert bot.describe() == module_team.url
    finally:
        await bot.close()
        await alice.close()


async def test_a_bad_token_is_unauthorized(module_team: Team) -> None:
    async with HttpBackend(module_team.url, "hitl_not-a-real-token") as b:
        with pytest.raises(Unauthorized, match="HITL_TOKEN"):
            await b.list_requests()
    async with HttpBackend(module_team.url, None) as b:
        with pytest.raises(Unauthorized):
            await b.list_requests()


async def test_bad_input_fails_before_the_network(module_team: Team) -> None:
    async with module_team.backend("alice") as b:
        with pytest.raises(InvalidInput):
            await b.set_escalation_status(1, "lost")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            await b.evaluate("", {})
    with pytest.raises(InvalidInput):
        HttpBackend("localhost:8750")


def _closed_port() -> int:
    port = free_port()  # nothing listens there once the probe socket is closed
    return port


async def test_unreachable_server_fails_closed_quickly() -> None:
    b = HttpBackend(f"http://127.0.0.1:{_closed_port()}", "hitl_x", reconnect_for=0.5)
    async with b:
        with pytest.raises(StoreUnavailable, match="cannot reach"):
            await asyncio.wait_for(b.create_request(req("bot")), 20)  # the guard turns a hang into a failure
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(b.wait_for_request(1, timeout=0.5), 20)
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(b.wait_for_request(1), 20)  # no timeout: gives up after reconnect_for
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(anext(b.subscribe(0)), 20)


class _Liar(BaseHTTPRequestHandler):
    """A real HTTP server that answers every call with 200 and a body that is not the API's."""

    body = b"<html>hello</html>"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=[b"<html>hello</html>", json.dumps({"name": "x", "role": "agent", "id": "nope"}).encode()],
                ids=["html", "wrong-shape"])
def liar(request: pytest.FixtureRequest) -> Iterator[str]:
    with serving(_Liar, body=request.param) as url:
        yield url


async def test_a_server_that_answers_nonsense_fails_closed(liar: str) -> None:
    async with HttpBackend(liar, "hitl_x") as b:
        with pytest.raises(StoreUnavailable):
            await b.get_request(1)
        with pytest.raises(StoreUnavailable):
            await b.wait_for_request(1, timeout=1)


async def test_a_waiting_agent_survives_a_server_crash(team: Team) -> None:
    agent = team.backend("bot", reconnect_for=60)
    try:
        r = await agent.create_request(req("bot"))
        waiter = asyncio.create_task(agent.wait_for_request(r.id, timeout=120))
        await asyncio.sleep(0.3)
        team.server.kill()  # SIGKILL: every open long-poll dies with it
        await asyncio.sleep(0.5)
        assert not waiter.done(), "the wait gave up on the first connection error"
        await asyncio.to_thread(team.server.start)  # same port, same store
        async with team.backend("alice") as alice:
            await alice.decide(r.id, DecisionIn(decision="approve", reason="after the restart"))
        got = await asyncio.wait_for(waiter, 60)
        assert got.status is RequestStatus.approved and got.decision_reason == "after the restart"
    finally:
        await agent.close()


async def test_event_stream_resumes_across_a_server_crash(team: Team) -> None:
    alice = team.backend("alice", reconnect_for=60)
    root = team.backend("root")
    try:
        start = await alice.last_seq()
        feed = alice.subscribe(start)
        first = await root.create_request(req("bot"))
        ev = await asyncio.wait_for(anext(feed), 30)
        assert ev.seq == start + 1 and ev.subject == f"request:{first.id}"
        team.server.kill()
        await asyncio.to_thread(team.server.start)
        later = [await root.create_request(req("bot")) for _ in range(3)]
        got = [await asyncio.wait_for(anext(feed), 30) for _ in range(3)]
        assert [e.seq for e in got] == [start + 2, start + 3, start + 4]  # no gap, nothing twice
        assert [e.subject for e in got] == [f"request:{r.id}" for r in later]
        await feed.aclose()
    finally:
        await alice.close()
        await root.close()


def test_cli_against_a_live_server(module_team: Team, tmp_path: Path) -> None:
    with module_team.client("root") as admin:
        body = {"agent": "bot", "tool": "Bash", "args": {"command": "make"}}
        rid = admin.post("/v1/requests", json=body).json()["id"]
    env = {**server_env(tmp_path), "HITL_SERVER": module_team.url, "HITL_TOKEN": module_team.tokens["alice"]}

    def hitl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*HITL, *args], env=env, capture_output=True, text=True, timeout=60)

    listed = hitl("ls", "--json")
    assert listed.returncode == 0, listed.stderr
    assert rid in [r["id"] for r in json.loads(listed.stdout)]
    approved = hitl("--as", "mallory", "approve", str(rid), "--json")
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout)["decided_by"] == "alice"  # the token, not --as
    again = hitl("deny", str(rid), "--reason", "late")
    assert again.returncode == 1 and "already approved by alice" in again.stderr
    down = subprocess.run([*HITL, "ls"], env={**env, "HITL_SERVER": f"http://127.0.0.1:{_closed_port()}"},
                          capture_output=True, text=True, timeout=60)
    assert down.returncode == 3 and "unavailable" in down.stderr



async def test_who_posts_to_a_thread(module_team: Team) -> None:
    async with module_team.backend("bot") as bot, module_team.backend("alice") as alice, \
            module_team.backend("root") as root:
        esc = await bot.create_escalation(EscalationCreate(agent="bot", message="stuck"))
        mine = await bot.post_message(esc.id, "more detail")  # default role: the token decides
        assert (mine.messages[-1].author, mine.messages[-1].role) == ("bot", MessageRole.agent)
        reply = await alice.post_message(esc.id, "as myself", role=MessageRole.agent)  # role ignored: a reviewer
        assert (reply.messages[-1].author, reply.messages[-1].role) == ("alice", MessageRole.human)
        with module_team.client("alice") as raw:
            r = raw.post(f"/v1/escalations/{esc.id}/messages", params={"role": "agent"}, json={"text": "pretend"})
        assert r.status_code == 403
        spoken = await root.post_message(esc.id, "for the agent", role=MessageRole.agent)
        assert (spoken.messages[-1].author, spoken.messages[-1].role) == ("bot", MessageRole.agent)
        human = await root.post_message(esc.id, "from the admin")
        assert (human.messages[-1].author, human.messages[-1].role) == ("root", MessageRole.human)
