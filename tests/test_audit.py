"""The audit log: tampering of any kind (edit, delete, reorder) is found and named by sequence number,
on SQLite and PostgreSQL; the JSONL export carries who, when, what and why for every decision,
stage change and forced bypass.

(``tests/test_cli_core.py`` covers an edited and a deleted row through the CLI on SQLite.)
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hitl_tui.models import DecisionIn, RequestCreate

from .conftest import HITL, POSTGRES_DSN, _postgres_available

Tamper = Callable[[str], Awaitable[None]]


async def _fill(store: Any) -> None:
    for i in range(6):
        req = await store.create_request(RequestCreate(agent="bot", tool="deploy", args={"n": i}))
        if i % 2:
            await store.decide(req.id, DecisionIn(decision="approve", reason=f"ok {i}"), "alice")


@pytest.fixture(params=["sqlite", "postgres"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Any, Tamper]]:
    """A filled store, and a way to run raw SQL on its event table behind its back."""
    if request.param == "sqlite":
        from hitl_tui.store.sqlite import SQLiteStore

        path = tmp_path / "audit.db"
        store = SQLiteStore(path)

        async def raw(sql: str) -> None:
            conn = sqlite3.connect(path)
            conn.execute(sql)
            conn.commit()
            conn.close()

        await _fill(store)
        yield store, raw
        await store.close()
        return
    why = _postgres_available()
    if why:
        pytest.skip(why)
    import psycopg
    from psycopg import sql as pgsql

    from hitl_tui.store.postgres import PostgresStore, create_test_schema, drop_test_schema

    assert POSTGRES_DSN
    schema = await create_test_schema(POSTGRES_DSN)
    store = PostgresStore(POSTGRES_DSN, schema=schema)

    async def raw_pg(statement: str) -> None:
        async with await psycopg.AsyncConnection.connect(POSTGRES_DSN, autocommit=True) as conn:
            await conn.execute(pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(schema)))
            await conn.execute(statement)  # type: ignore[arg-type]

    await _fill(store)
    yield store, raw_pg
    await store.close()
    await drop_test_schema(POSTGRES_DSN, schema)


TAMPERING = {
    "edit the actor": ("UPDATE events SET actor = 'mallory' WHERE seq = 4", [4]),
    "edit the payload": ("UPDATE events SET payload = replace(payload, 'ok 1', 'ok 9') WHERE seq = 3", [3]),
    "delete a row": ("DELETE FROM events WHERE seq = 5", [6]),
    "reorder two rows": ("UPDATE events SET seq = 1000 WHERE seq = 2;UPDATE events SET seq = 2 WHERE seq = 7;"
                         "UPDATE events SET seq = 7 WHERE seq = 1000", [2]),
    "append a forged row": ("INSERT INTO events(seq, at, kind, subject, actor, payload, prev_hash, hash) "
                            "SELECT seq + 1, at, kind, subject, 'mallory', payload, hash, hash FROM events "
                            "WHERE seq = (SELECT MAX(seq) FROM events)", [10]),
}


@pytest.mark.parametrize("how", list(TAMPERING))
async def test_tampering_is_found_and_named_by_sequence_number(target: tuple[Any, Tamper], how: str) -> None:
    store, raw = target
    before = await store.verify_audit()
    assert before.ok and before.checked == 9
    statement, seqs = TAMPERING[how]
    for part in statement.split(";"):
        await raw(part)
    report = await store.verify_audit()
    assert not report.ok
    flagged = {seq for seq, _ in report.problems}
    assert set(seqs) <= flagged, report.problems


# =========================================================================== export


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HITL, *args], env=env, capture_output=True, text=True, timeout=60)


def test_export_has_who_when_what_and_why_for_decisions_stage_changes_and_bypasses(cli_env: dict[str, str]) -> None:
    assert run(cli_env, "--as", "admin", "policy", "preset", "seed").returncode == 0
    req_id = json.loads(run(cli_env, "request", "deploy", "--agent", "bot", "--json").stdout)["request_id"]
    other_id = json.loads(run(cli_env, "request", "send_customer_email", "--agent", "bot", "--json").stdout)[
        "request_id"]
    assert run(cli_env, "--as", "alice", "approve", str(req_id), "--reason", "release window").returncode == 0
    assert run(cli_env, "--as", "bob", "deny", str(other_id), "--reason", "wrong customer").returncode == 0
    assert run(cli_env, "--as", "carol", "demote", "deploy", "--reason", "incident 42").returncode == 0
    refused = run(cli_env, "--as", "dave", "stages", "set", "delete_resource", "autonomous", "--reason", "try")
    assert refused.returncode != 0
    forced = run(cli_env, "--as", "erin", "stages", "set", "delete_resource", "autonomous", "--force",
                 "--reason", "cleanup sprint, signed off by ops")
    assert forced.returncode == 0, forced.stderr
    out = run(cli_env, "audit", "export", "--format", "jsonl")
    assert out.returncode == 0
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    for e in events:
        assert e["actor"] and e["at"] and e["kind"] and e["subject"]  # who, when, what
        assert e["hash"] and e["prev_hash"]

    def one(kind: str, subject: str) -> dict[str, Any]:
        found = [e for e in events if e["kind"] == kind and e["subject"] == subject]
        assert len(found) == 1, (kind, subject, found)
        return found[0]

    approved = one("request.decided", f"request:{req_id}")
    assert approved["actor"] == "alice" and approved["payload"]["status"] == "approved"
    assert approved["payload"]["decision_reason"] == "release window"
    denied = one("request.decided", f"request:{other_id}")
    assert denied["actor"] == "bob" and denied["payload"]["decision_reason"] == "wrong customer"
    stages = [e for e in events if e["kind"] == "capability.stage" and e["actor"] in ("carol", "erin")]
    demoted = next(e for e in stages if e["actor"] == "carol")
    assert demoted["payload"] == {**demoted["payload"], "tool": "deploy", "from": "approval", "to": "disabled",
                                  "reason": "incident 42", "forced": False}
    bypass = next(e for e in stages if e["actor"] == "erin")
    assert bypass["payload"] == {**bypass["payload"], "tool": "delete_resource", "to": "autonomous",
                                 "reason": "cleanup sprint, signed off by ops", "forced": True}
    assert not any(e["actor"] == "dave" for e in events)  # the refused change left no trace but the refusal
    verify = run(cli_env, "audit", "verify")
    assert verify.returncode == 0 and f"{len(events)} events verified" in verify.stdout


def test_export_after_a_sequence_number(cli_env: dict[str, str]) -> None:
    for _ in range(3):
        run(cli_env, "request", "deploy", "--agent", "bot")
    out = run(cli_env, "audit", "export", "--after", "1")
    assert [json.loads(x)["seq"] for x in out.stdout.splitlines()] == [2, 3]
