"""Idempotency keys of approval requests: a key stands for one call (agent, tool and arguments).

* The same call again answers the request the key filed while it is pending, approved or denied
  (a denial stays denied); the summary, context and risk may differ, the order of arguments too.
* Another agent, tool or other arguments on the key is a Conflict naming the key, what differs and
  the request: never the earlier request's decision.
* Once that request expired or was cancelled the key files a new one, which takes the key over; the
  old request keeps its key and its history.

Store tests run on SQLite (a real file) and PostgreSQL (when HITL_TEST_POSTGRES_DSN is set); then
the real `hitl` CLI, the Claude Code hook and `hitl serve` as subprocesses.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import pytest

from hitl_tui.backend.local import LocalBackend
from hitl_tui.errors import Conflict
from hitl_tui.models import DecisionIn, EventKind, RequestCreate, RequestStatus, Risk
from hitl_tui.store.sqlite import SQLiteStore

from .conftest import HITL
from .server_utils import server as server  # fixtures, re-exported
from .server_utils import team as team
from .test_integration_claude_code import answer, event, finish, pending_request, run_hook, start_hook


def req(**kw: Any) -> RequestCreate:
    base: dict[str, Any] = {
        "agent": "ci",
        "tool": "deploy",
        "args": {"sha": "abc", "env": "prod"},
        "timeout_s": 60,
        "idempotency_key": "deploy-abc",
        "renew_expired": True,  # as `hitl request` files (a re-run CI job asks again)
    }
    base.update(kw)
    return RequestCreate(**base)


APPROVE = DecisionIn(decision="approve", reason="ship it")
DENY = DecisionIn(decision="deny", reason="not this one")


async def kinds_after(store: Any, seq: int) -> list[tuple[str, str]]:
    return [(str(e.kind), e.subject) for e in await store.events_after(seq)]


# ----------------------------------------------------------------------------- another call on the key


@pytest.mark.parametrize("decided", [None, "approve", "deny"])
async def test_other_arguments_on_the_key_conflict(store, decided: str | None) -> None:
    first = await store.create_request(req())
    if decided:
        await store.decide(first.id, DecisionIn(decision=decided), "alice")
    seq = await store.last_seq()
    with pytest.raises(Conflict) as caught:
        await store.create_request(req(args={"sha": "zzz", "env": "prod"}))
    msg = caught.value.message
    assert "'deploy-abc'" in msg and f"request {first.id}" in msg and "'sha'" in msg and "'env'" not in msg
    assert "zzz" not in msg and "abc'" not in msg.replace("'deploy-abc'", "")  # names, never values
    assert caught.value.details["id"] == first.id
    for args in ({"sha": "abc"}, {"sha": "abc", "env": "prod", "force": True}, {"sha": "abc", "env": ["prod"]}):
        with pytest.raises(Conflict):
            await store.create_request(req(args=args))
    await store.create_request(req(agent="ci", tool="deploy", args={"n": 1}, idempotency_key="numbers"))
    for same_in_python in ({"n": True}, {"n": 1.0}):  # equal to 1 in Python, not the same argument
        with pytest.raises(Conflict):
            await store.create_request(req(args=same_in_python, idempotency_key="numbers"))
    with pytest.raises(Conflict) as caught:
        await store.create_request(req(tool="rollback"))
    assert "tool 'rollback'" in caught.value.message
    with pytest.raises(Conflict) as caught:  # another agent's key: nothing of that request is named
        await store.create_request(req(agent="other", tool="rollback"))
    msg = caught.value.message
    assert "another agent's request" in msg and str(first.id) not in msg
    assert "deploy" not in msg.replace("deploy-abc", "")
    assert "id" not in caught.value.details
    assert await store.last_seq() == seq + 1  # only the "numbers" filing was written
    assert (await store.get_request(first.id)).args == {"sha": "abc", "env": "prod"}


async def test_concurrent_filings_on_a_key_never_answer_other_arguments(store) -> None:
    """SQLite files concurrent requests together in one statement: each still checks its arguments."""
    first = await store.create_request(req())
    await store.decide(first.id, APPROVE, "alice")
    out = await asyncio.gather(
        *(store.create_request(req(args={"sha": "abc" if i % 2 else f"x{i}", "env": "prod"})) for i in range(20)),
        return_exceptions=True,
    )
    for i, r in enumerate(out):
        if i % 2:
            assert not isinstance(r, BaseException) and r.id == first.id and r.status is RequestStatus.approved
        else:
            assert isinstance(r, Conflict) and "'sha'" in r.message
    assert (await store.list_requests(None)).total == 1


# ----------------------------------------------------------------------------- expired or cancelled: ask again


async def test_after_expiry_the_key_files_a_new_request(store, clock) -> None:
    old = await store.create_request(req())
    clock.advance(61)  # past its deadline, not yet marked expired: the filing marks it
    seq = await store.last_seq()
    new = await store.create_request(req(summary="re-run"))
    assert new.id != old.id and new.status is RequestStatus.pending and new.idempotency_key == "deploy-abc"
    assert new.summary == "re-run" and new == await store.get_request(new.id)
    assert await kinds_after(store, seq) == [
        (EventKind.request_expired, f"request:{old.id}"),
        (EventKind.request_created, f"request:{new.id}"),
    ]
    gone = await store.get_request(old.id)  # the old request keeps its key, status and history
    assert gone.status is RequestStatus.expired and gone.idempotency_key == "deploy-abc"
    assert [str(e.kind) for e in await store.events_after(0) if e.subject == f"request:{old.id}"] == [
        EventKind.request_created,
        EventKind.request_expired,
    ]
    assert (await store.create_request(req())).id == new.id  # the key now answers the new one
    await store.decide(new.id, APPROVE, "alice")
    seq = await store.last_seq()
    again = await store.create_request(
        req(args={"env": "prod", "sha": "abc"}, summary="third try", context="re-run", risk=Risk.high)
    )  # the same arguments in another order, other words around them: the same call
    assert again.id == new.id and again.status is RequestStatus.approved and again.summary == "re-run"
    assert await store.last_seq() == seq  # nothing written
    with pytest.raises(Conflict) as caught:  # the key still stands for the same call
        await store.create_request(req(args={"sha": "zzz"}))
    assert f"request {new.id}" in caught.value.message
    assert (await store.list_requests(None)).total == 2
    assert (await store.verify_audit()).ok


async def test_after_a_sweep_or_a_cancel_the_key_files_a_new_request_each_time(store, clock) -> None:
    first = await store.create_request(req())
    clock.advance(61)
    assert [r.id for r in await store.expire_due()] == [first.id]
    second = await store.create_request(req())
    await store.cancel_request(second.id, "ci", "runner lost")
    seq = await store.last_seq()
    third = await store.create_request(req())
    assert len({first.id, second.id, third.id}) == 3
    assert await kinds_after(store, seq) == [(EventKind.request_created, f"request:{third.id}")]
    await store.decide(third.id, DENY, "alice")
    seq = await store.last_seq()
    denied = await store.create_request(req())  # a denial stays denied: no second chance
    assert denied.id == third.id and denied.status is RequestStatus.denied and denied.decision_reason == "not this one"
    assert await store.last_seq() == seq
    page = await store.list_requests(None)
    assert {r.id: (r.status, r.idempotency_key) for r in page.items} == {
        first.id: (RequestStatus.expired, "deploy-abc"),
        second.id: (RequestStatus.cancelled, "deploy-abc"),
        third.id: (RequestStatus.denied, "deploy-abc"),
    }
    await store.create_request(req(idempotency_key="k2", args={"a": 1}))
    clock.advance(61)
    with pytest.raises(Conflict):  # an expired request is still that call: other arguments need their own key
        await store.create_request(req(idempotency_key="k2", args={"a": 2}))
    assert (await store.verify_audit()).ok


async def test_without_renew_an_expired_or_cancelled_key_answers_with_its_request(store, clock) -> None:
    """The default (the SDK, the OpenAI Agents "file now, collect later" pattern): filing again
    to collect a decision learns that the request expired, and nobody is asked again."""
    old = await store.create_request(req(renew_expired=False))
    clock.advance(61)
    assert [r.id for r in await store.expire_due()] == [old.id]
    seq = await store.last_seq()
    again = await store.create_request(req(renew_expired=False))
    assert again.id == old.id and again.status is RequestStatus.expired
    assert await store.last_seq() == seq  # nothing written
    other = await store.create_request(req(idempotency_key="k3", renew_expired=False))
    await store.cancel_request(other.id, "ci", "runner lost")
    assert (await store.create_request(req(idempotency_key="k3", renew_expired=False))).status is (
        RequestStatus.cancelled
    )
    assert (await store.list_requests(None)).total == 2


async def test_grouped_filings_past_the_deadline_answer_expired_as_one_alone_does(store, clock) -> None:
    """SQLite groups concurrent filings; those on a key whose request is past its deadline (not yet
    marked) must answer "expired" as a filing alone does, not "pending"."""
    old = await store.create_request(req(renew_expired=False))
    clock.advance(61)
    out = await asyncio.gather(*(store.create_request(req(renew_expired=False)) for _ in range(6)))
    assert {(r.id, r.status) for r in out} == {(old.id, RequestStatus.expired)}
    assert (await store.list_requests(None)).total == 1


async def test_concurrent_re_runs_after_expiry_file_one_new_request(store, clock) -> None:
    old = await store.create_request(req())
    clock.advance(61)
    out = await asyncio.gather(*(store.create_request(req()) for _ in range(12)))
    assert len({r.id for r in out}) == 1 and out[0].id != old.id and out[0].status is RequestStatus.pending
    assert (await store.list_requests(None)).total == 2
    assert (await store.verify_audit()).ok


async def test_a_reopened_store_reads_keys_moved_before(make_store, clock) -> None:
    store = make_store(clock=clock)
    old = await store.create_request(req())
    await store.cancel_request(old.id, "ci")
    new = await store.create_request(req())
    assert new.id != old.id
    await store.close()
    again = make_store(clock=clock)
    assert (await again.get_request(old.id)).idempotency_key == "deploy-abc"
    assert (await again.create_request(req())).id == new.id


# ----------------------------------------------------------------------------- the CLI, the hook, the server


def hitl(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HITL, *argv], env=env, capture_output=True, text=True, timeout=60)


def test_cli_other_args_exit_3_and_a_re_run_after_expiry_asks_again(cli_env: dict[str, str]) -> None:
    filed = hitl(cli_env, "request", "deploy", "--idempotency-key", "deploy-abc", "--args", '{"sha":"abc"}')
    assert filed.returncode == 0, filed.stderr
    rid = int(filed.stdout.strip())
    assert hitl(cli_env, "--as", "alice", "approve", str(rid)).returncode == 0
    same = hitl(cli_env, "request", "deploy", "--idempotency-key", "deploy-abc", "--args", '{"sha":"abc"}', "--wait")
    assert same.returncode == 0
    other = hitl(
        cli_env, "request", "deploy", "--idempotency-key", "deploy-abc", "--args", '{"sha":"zzz"}', "--wait", "--json"
    )
    refused = json.loads(other.stdout)
    assert other.returncode == 3 and refused["status"] == "error" and refused["request"] is None, other.stdout
    why = refused["reason"]
    assert "'deploy-abc'" in why and f"request {rid}" in why and "'sha'" in why

    first = hitl(cli_env, "request", "deploy", "--idempotency-key", "deploy-sha2", "--wait", "--timeout", "0.5")
    assert first.returncode == 2 and "expired" in first.stdout
    rerun = hitl(cli_env, "request", "deploy", "--idempotency-key", "deploy-sha2")  # GitHub "Re-run job"
    new = int(rerun.stdout.strip())
    assert hitl(cli_env, "--as", "alice", "approve", str(new)).returncode == 0
    done = hitl(cli_env, "request", "deploy", "--idempotency-key", "deploy-sha2", "--wait", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["request"]["id"] == new
    listed = json.loads(hitl(cli_env, "ls", "--status", "all", "--json").stdout)
    rows = listed["items"] if isinstance(listed, dict) else listed
    assert sorted((r["status"], r["idempotency_key"]) for r in rows) == [
        ("approved", "deploy-abc"),
        ("approved", "deploy-sha2"),
        ("expired", "deploy-sha2"),
    ]
    assert hitl(cli_env, "audit", "verify").returncode == 0


async def test_hook_same_tool_use_id_with_another_command_is_denied(cli_env: dict[str, str]) -> None:
    reviewer = LocalBackend(SQLiteStore(cli_env["HITL_STORE"]), actor="alice")
    try:
        proc = await start_hook(cli_env, event("Bash", {"command": "ls"}, tool_use_id="tu-77"))
        first = await pending_request(reviewer, proc)
        await reviewer.decide(first.id, DecisionIn(decision="approve"))
        assert answer(await finish(proc))["permissionDecision"] == "allow"
        spec = answer(run_hook(cli_env, event("Bash", {"command": "rm -rf /important"}, tool_use_id="tu-77")))
        assert spec["permissionDecision"] == "deny"
        assert f"request {first.id}" in spec["permissionDecisionReason"]
        assert "other arguments" in spec["permissionDecisionReason"]
        again = answer(run_hook(cli_env, event("Bash", {"command": "ls"}, tool_use_id="tu-77")))  # a real retry
        assert again["permissionDecision"] == "allow"
        assert (await reviewer.list_requests(None)).total == 1
    finally:
        await reviewer.close()


def test_over_the_server(team: Any) -> None:
    body = {"agent": "bot", "tool": "deploy", "args": {"sha": "abc"}, "idempotency_key": "deploy-abc"}
    with team.client("bot") as bot, team.client("alice") as alice:
        first = bot.post("/v1/requests", json=body).json()
        assert alice.post(f"/v1/requests/{first['id']}/decision", json={"decision": "approve"}).status_code == 200
        other = bot.post("/v1/requests", json={**body, "args": {"sha": "zzz"}})
        assert other.status_code == 409 and "'sha'" in other.json()["message"], other.text
        assert other.json()["id"] == first["id"]
        keyed = {**body, "idempotency_key": "deploy-sha2"}
        cancelled = bot.post("/v1/requests", json=keyed).json()
        assert bot.post(f"/v1/requests/{cancelled['id']}/cancel", json={"reason": "runner lost"}).status_code == 200
        assert bot.post("/v1/requests", json=keyed).json()["id"] == cancelled["id"]  # by default: that request
        keyed["renew_expired"] = True
        new = bot.post("/v1/requests", json=keyed).json()
        assert new["id"] != cancelled["id"] and new["status"] == "pending" and new["idempotency_key"] == "deploy-sha2"
        assert bot.post("/v1/requests", json=keyed).json()["id"] == new["id"]
        assert bot.get(f"/v1/requests/{cancelled['id']}").json()["status"] == "cancelled"
