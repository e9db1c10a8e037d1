"""PostgreSQL-only behaviour of the store, against a real server (one fresh schema per test).

The shared semantics are in tests/test_store.py (run against SQLite and PostgreSQL); these tests
cover what only a shared server brings: racing processes, NOTIFY between store instances, a
listener that lost its connection, several stores appending to one log.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from tests.conftest import POSTGRES_DSN, ROOT, _postgres_available

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(_postgres_available() is not None, reason=_postgres_available() or ""),
]
pytest.importorskip("psycopg", reason="the PostgreSQL store is not available in this build (no psycopg)")

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from hitl_tui.errors import Conflict, StoreUnavailable  # noqa: E402
from hitl_tui.models import (  # noqa: E402
    DecisionIn,
    EscalationCreate,
    EventKind,
    MessageRole,
    RequestCreate,
    RequestStatus,
    ReviewCreate,
    TokenRole,
)
from hitl_tui.store.pg_schema import PG_MIGRATIONS  # noqa: E402
from hitl_tui.store.postgres import (  # noqa: E402
    PostgresStore,
    channel_for,
    create_test_schema,
    decode_text,
    drop_test_schema,
    encode_text,
    mask_dsn,
)

DSN = POSTGRES_DSN or ""
LONG = 60.0  # a wait timeout no test should ever reach
BOUND = 30.0  # how long a test waits for something that should happen at once


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    name = await create_test_schema(DSN)
    yield name
    await drop_test_schema(DSN, name)


@pytest.fixture
async def stores(schema: str) -> AsyncIterator[list[PostgresStore]]:
    """Collects stores made by a test and closes them (before the schema is dropped)."""
    made: list[PostgresStore] = []
    yield made
    for s in made:
        await s.close()


def make(stores: list[PostgresStore], schema: str, dsn: str = DSN, **kw: object) -> PostgresStore:
    s = PostgresStore(dsn, schema=schema, **kw)  # type: ignore[arg-type]
    stores.append(s)
    return s


def req(i: int = 0, **kw: object) -> RequestCreate:
    base: dict[str, object] = {"agent": "deploy-bot", "tool": "deploy", "args": {"n": i}, "timeout_s": 600}
    base.update(kw)
    return RequestCreate(**base)  # type: ignore[arg-type]


async def admin(query: str | sql.Composable, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        cur = await conn.execute(query, params)  # type: ignore[arg-type]
        return await cur.fetchall() if cur.description else []


async def until(predicate, what: str) -> None:
    """Wait (bounded) for a condition that another task makes true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BOUND
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.01)


async def listening(store: PostgresStore) -> int:
    """Start the store's listener (a zero-timeout wait does) and wait until it is connected."""
    await store.wait_for_change(await store.last_seq(), timeout=0)
    await until(lambda: store._listener_pid is not None, "the listener to connect")
    assert store._listener_pid is not None
    return store._listener_pid


def assert_gap_free(seqs: list[int]) -> None:
    assert seqs == list(range(1, len(seqs) + 1))


# ----------------------------------------------------------------------------- exactly one decision


@pytest.mark.parametrize("server_default", ["read committed", "repeatable read"])
async def test_racing_decisions_from_many_tasks_and_stores(
    schema: str, stores: list[PostgresStore], server_default: str
) -> None:
    # whatever isolation the server defaults to, the store's writes must stay serialised
    dsn = make_conninfo(DSN, options="-c default_transaction_isolation=" + server_default.replace(" ", "\\ "))
    instances = [make(stores, schema, dsn=dsn, max_size=4) for _ in range(3)]
    ids = [(await instances[0].create_request(req(i))).id for i in range(8)]

    async def attempt(rid: int, who: int) -> tuple[int, str] | None:
        store = instances[who % len(instances)]
        decision = DecisionIn(decision="approve" if who % 2 else "deny")
        try:
            got = await store.decide(rid, decision, f"reviewer-{who}")
        except Conflict as exc:
            assert exc.details["id"] == rid and exc.details["decided_by"]
            return None
        return rid, got.decided_by or ""

    results = await asyncio.gather(*(attempt(rid, who) for rid in ids for who in range(12)))
    wins = [r for r in results if r is not None]
    assert Counter(rid for rid, _ in wins) == Counter(ids)  # exactly one winner per request
    for rid, winner in wins:
        got = await instances[1].get_request(rid)
        assert got.status in (RequestStatus.approved, RequestStatus.denied)
        assert got.decided_by == winner and [v.reviewer for v in got.approvals] == [winner]

    events = await instances[2].events_after(0, limit=10_000)
    assert_gap_free([e.seq for e in events])
    assert Counter(e.kind for e in events) == {EventKind.request_created: 8, EventKind.request_decided: 8}
    assert (await instances[0].verify_audit()).ok


async def test_racing_quorum_votes_settle_once_with_distinct_reviewers(
    schema: str, stores: list[PostgresStore]
) -> None:
    a, b = make(stores, schema), make(stores, schema)
    rid = (await a.create_request(req(required_approvals=2))).id

    async def vote(who: int) -> bool:
        try:
            await (a if who % 2 else b).decide(rid, DecisionIn(decision="approve"), f"reviewer-{who}")
            return True
        except Conflict:
            return False

    outcomes = await asyncio.gather(*(vote(who) for who in range(10)))
    assert outcomes.count(True) == 2  # one vote, then the approval that reached the quorum
    got = await b.get_request(rid)
    assert got.status is RequestStatus.approved and got.approval_count == 2
    assert len({v.reviewer for v in got.approvals}) == 2
    kinds = [e.kind for e in await a.events_after(0)]
    assert kinds == [EventKind.request_created, EventKind.request_voted, EventKind.request_decided]


CHILD = r"""
import asyncio, json, sys
from hitl_tui.errors import Conflict
from hitl_tui.models import DecisionIn, RequestCreate
from hitl_tui.store.postgres import PostgresStore

async def main(dsn, schema, me, n):
    store = PostgresStore(dsn, schema=schema, max_size=4)
    try:
        # every process files the same requests (idempotent by key) on a schema nobody migrated yet
        ids = [
            (await store.create_request(
                RequestCreate(agent="deploy-bot", tool="deploy", args={"n": i}, idempotency_key=f"key-{i}")
            )).id
            for i in range(n)
        ]
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

        async def one(rid):
            try:
                await store.decide(rid, DecisionIn(decision="approve" if me % 2 else "deny"), f"proc-{me}")
                return rid
            except Conflict:
                return None

        won = [r for r in await asyncio.gather(*(one(i) for i in ids)) if r is not None]
        print(json.dumps({"ids": ids, "won": won}), flush=True)
    finally:
        await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""


async def test_racing_decisions_from_several_processes(schema: str, stores: list[PostgresStore]) -> None:
    procs_n, requests_n = 4, 12
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            DSN,
            schema,
            str(me),
            str(requests_n),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        for me in range(procs_n)
    ]
    try:
        for p in procs:  # all have migrated and filed; now release them at once
            assert p.stdout is not None
            line = await asyncio.wait_for(p.stdout.readline(), BOUND)
            if line != b"ready\n":
                _, err = await p.communicate()
                raise AssertionError(f"child failed: {line!r} {err.decode()[-2000:]}")
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            await p.stdin.drain()
        outputs = [await asyncio.wait_for(p.communicate(), BOUND) for p in procs]
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
    reports = []
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()[-2000:]
        reports.append(json.loads(out.decode().strip()))

    ids = reports[0]["ids"]
    assert len(set(ids)) == requests_n and all(r["ids"] == ids for r in reports)  # idempotent across processes
    assert Counter(rid for r in reports for rid in r["won"]) == Counter(ids)  # exactly one winner each

    store = make(stores, schema)
    page = await store.list_requests(None, limit=100)
    assert page.total == requests_n
    winners = {rid: f"proc-{me}" for me, r in enumerate(reports) for rid in r["won"]}
    for item in page.items:
        assert item.decided_by == winners[item.id]
    events = await store.events_after(0, limit=10_000)
    assert_gap_free([e.seq for e in events])
    assert Counter(e.kind for e in events) == {
        EventKind.request_created: requests_n,
        EventKind.request_decided: requests_n,
    }
    assert (await store.verify_audit()).ok
    version = await admin(
        sql.SQL("SELECT value FROM {}.hitl_meta WHERE key = 'schema_version'").format(sql.Identifier(schema))
    )
    assert version == [(str(len(PG_MIGRATIONS)),)]  # four racing migrators applied each step once


# ----------------------------------------------------------------------------- change signal


async def test_notify_wakes_a_waiter_in_another_store_instance(schema: str, stores: list[PostgresStore]) -> None:
    waiter_store, writer = make(stores, schema), make(stores, schema)
    await writer.create_request(req(0))
    start = await waiter_store.last_seq()
    await listening(waiter_store)
    waiter = asyncio.create_task(waiter_store.wait_for_change(start, timeout=LONG))
    await asyncio.sleep(0)
    assert not waiter.done()
    await writer.create_request(req(1))
    # woken by the NOTIFY long before the LONG timeout (a timed-out wait would also block the bound)
    assert await asyncio.wait_for(waiter, BOUND) == start + 1 == await writer.last_seq()


async def test_notification_carries_only_the_new_sequence_number(schema: str, stores: list[PostgresStore]) -> None:
    store = make(stores, schema)
    await store.open()
    channel = channel_for(schema)
    assert schema in channel
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        await store.create_escalation(EscalationCreate(agent="bot", message="x" * 5000))
        await store.log_review(ReviewCreate(agent="bot", tool="t", result="y" * 5000))
        got = [n.payload async for n in conn.notifies(timeout=BOUND, stop_after=2)]
    assert got == ["1", "2"]


async def test_schemas_do_not_wake_each_other(stores: list[PostgresStore]) -> None:
    one, other = await create_test_schema(DSN), await create_test_schema(DSN)
    try:
        quiet, busy = make(stores, one), make(stores, other)
        await quiet.create_request(req(0))
        for i in range(4):
            await busy.create_request(req(i))
        await listening(quiet)
        waiter = asyncio.create_task(quiet.wait_for_change(1, timeout=0.5))
        await busy.create_request(req(9))  # seq 5 in the other schema: must not reach `quiet`
        assert await waiter == 1
    finally:
        for s in stores:
            await s.close()
        await drop_test_schema(DSN, one)
        await drop_test_schema(DSN, other)


class GatedStore(PostgresStore):
    """A real store whose listener, once it has lost its first connection, reconnects only when
    the test opens the gate: so the test knows a commit happened while nobody was listening."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gate = asyncio.Event()
        self.connects = 0

    async def _listener_connect(self):
        self.connects += 1
        if self.connects > 1:
            await self.gate.wait()
        return await super()._listener_connect()


async def test_listener_killed_catches_up_missed_changes_from_the_log(schema: str, stores: list[PostgresStore]) -> None:
    watcher = GatedStore(DSN, schema=schema)
    stores.append(watcher)
    writer = make(stores, schema)
    await writer.create_request(req(0))
    first_pid = await listening(watcher)
    seen = await watcher.wait_for_change(0, timeout=LONG)
    assert seen == 1

    assert await admin("SELECT pg_terminate_backend(%s)", (first_pid,)) == [(True,)]
    await until(lambda: watcher.connects >= 2, "the listener to notice it was cut off")
    for i in range(3):  # committed (and notified) while the watcher listens to nobody
        await writer.create_request(req(i + 1))
    newest = await writer.last_seq()
    assert newest == 4 and watcher.notifier.seq == 1  # the notifications were lost

    waiter = asyncio.create_task(watcher.wait_for_change(1, timeout=LONG))
    await asyncio.sleep(0)
    assert not waiter.done()
    watcher.gate.set()  # reconnect: the listener reads max(seq) from the log before anything else
    assert await asyncio.wait_for(waiter, BOUND) == newest
    assert watcher._listener_pid not in (None, first_pid)

    await writer.create_request(req(9))  # and it listens again afterwards
    assert await asyncio.wait_for(watcher.wait_for_change(newest, timeout=LONG), BOUND) == newest + 1


# ----------------------------------------------------------------------------- one log for everyone


async def test_two_stores_share_one_gap_free_verifying_log(schema: str, stores: list[PostgresStore]) -> None:
    a, b = make(stores, schema, max_size=3), make(stores, schema, max_size=3)

    async def work(store: PostgresStore, n: int) -> None:
        r = await store.create_request(req(n))
        e = await store.create_escalation(EscalationCreate(agent="bot", message=f"help {n}"))
        await store.post_message(e.id, "on it", f"human-{n}", MessageRole.human)
        await store.log_review(ReviewCreate(agent="bot", tool="t", result="ok"))
        await store.decide(r.id, DecisionIn(decision="approve"), f"human-{n}")

    await asyncio.gather(*(work(a if n % 2 else b, n) for n in range(16)))
    from_a, from_b = await a.events_after(0, limit=10_000), await b.events_after(0, limit=10_000)
    assert from_a == from_b and len(from_a) == 16 * 5
    assert_gap_free([e.seq for e in from_a])
    assert all(e.prev_hash == p.hash for p, e in itertools.pairwise(from_a))
    assert (await a.verify_audit()).ok and (await b.verify_audit()).checked == 80


async def test_a_write_that_fails_in_the_database_leaves_no_gap(schema: str, stores: list[PostgresStore]) -> None:
    store = make(stores, schema)
    await store.create_token("alice", TokenRole.reviewer, "hash-1", actor="admin")
    with pytest.raises(StoreUnavailable):  # the unique index refuses a second token with that hash
        await store.create_token("bob", TokenRole.agent, "hash-1", actor="admin")
    await store.create_request(req(0))
    assert [e.seq for e in await store.events_after(0)] == [1, 2]
    assert [t.name for t in await store.list_tokens()] == ["alice"]
    assert (await store.verify_audit()).ok


async def test_audit_detects_an_edited_event(schema: str, stores: list[PostgresStore]) -> None:
    store = make(stores, schema)
    for i in range(3):
        await store.create_request(req(i))
    await admin(sql.SQL("UPDATE {}.events SET actor = 'mallory' WHERE seq = 2").format(sql.Identifier(schema)))
    report = await store.verify_audit()
    assert not report.ok and report.checked == 3 and [seq for seq, _ in report.problems] == [2]


# ----------------------------------------------------------------------------- data fidelity


async def test_text_postgres_cannot_hold_round_trips_exactly(schema: str, stores: list[PostgresStore]) -> None:
    hostile = "a\x00b\ue000c\ue0000\ue000e\x1b[31m"
    store = make(stores, schema)
    r = await store.create_request(req(0, agent=hostile, summary=hostile, args={"k": hostile}))
    got = await store.get_request(r.id)
    assert got.agent == got.summary == got.args["k"] == hostile
    assert (await store.list_requests(agent=hostile)).total == 1
    assert (await store.list_requests(search="\x00b\ue000")).total == 1
    assert (await store.list_requests(search="\ue000e\ue000")).total == 0
    item = await store.log_review(ReviewCreate(agent="bot", tool="t", result=hostile * 3, result_limit=10))
    assert item.result == (hostile * 3)[:10] and item.result_length == len(hostile) * 3
    assert (await store.verify_audit()).ok
    for s in ("", "plain", "\x00", "\ue000", "\ue0000", "\ue000e", hostile):
        assert "\x00" not in encode_text(s) and decode_text(encode_text(s)) == s


async def test_reopening_keeps_data_and_applies_no_migration_twice(schema: str, stores: list[PostgresStore]) -> None:
    first = make(stores, schema)
    r = await first.create_request(req(0, idempotency_key="once"))
    await first.close()
    again = make(stores, schema)
    assert (await again.create_request(req(0, idempotency_key="once"))).id == r.id
    assert await again.last_seq() == 1


def test_sequential_event_loops_reuse_one_store() -> None:
    """The CLI runs each command in its own ``asyncio.run``; the store follows it to the new loop."""
    schema = asyncio.run(create_test_schema(DSN))
    store = PostgresStore(DSN, schema=schema)
    try:
        rid = asyncio.run(store.create_request(req(0))).id
        assert asyncio.run(store.get_request(rid)).id == rid
        assert asyncio.run(store.wait_for_change(0, timeout=LONG)) == 1
    finally:
        asyncio.run(store.close())
        asyncio.run(drop_test_schema(DSN, schema))


# ----------------------------------------------------------------------------- failure


async def test_unreachable_server_is_store_unavailable() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test", timeout=2, connect_timeout=2)
    try:
        with pytest.raises(StoreUnavailable):
            await store.check()
        with pytest.raises(StoreUnavailable):
            await store.create_request(req(0))
        with pytest.raises(StoreUnavailable):
            await store.wait_for_change(0, timeout=LONG)
    finally:
        await store.close()


async def test_killed_pool_connections_are_replaced(schema: str, stores: list[PostgresStore]) -> None:
    tag = f"hitl-test-{uuid.uuid4().hex[:8]}"
    store = make(stores, schema, dsn=make_conninfo(DSN, application_name=tag), min_size=2)
    await store.create_request(req(0))
    killed = await admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (tag,))
    assert killed and all(ok for (ok,) in killed)
    await store.check()
    assert (await store.create_request(req(1))).id == 2


async def test_closed_store_refuses_work(schema: str, stores: list[PostgresStore]) -> None:
    store = make(stores, schema)
    await store.create_request(req(0))
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.get_request(1)
    with pytest.raises(StoreUnavailable):
        await store.wait_for_change(0, timeout=LONG)


def test_url_never_shows_the_password() -> None:
    assert mask_dsn("postgresql://alice:s3cret@db.example:5432/hitl") == "postgresql://alice:***@db.example:5432/hitl"
    assert "s3cret" not in mask_dsn("postgresql://db.example/hitl?user=alice&password=s3cret&sslmode=require")
    assert "sslmode=require" in mask_dsn("postgresql://db.example/hitl?password=s3cret&sslmode=require")
    masked = mask_dsn("host=db.example user=alice password=s3cret dbname=hitl")
    assert "s3cret" not in masked and "dbname=hitl" in masked
    assert PostgresStore("postgresql://alice:s3cret@127.0.0.1/test").url == "postgresql://alice:***@127.0.0.1/test"


async def test_schema_named_in_the_url(schema: str, stores: list[PostgresStore]) -> None:
    sep = "&" if "?" in DSN else "?"
    by_url = make(stores, None, dsn=f"{DSN}{sep}schema={schema}")  # type: ignore[arg-type]
    by_arg = make(stores, schema)
    r = await by_url.create_request(req(0))
    assert (await by_arg.get_request(r.id)).id == r.id and by_url.schema == schema
    assert by_url.url.endswith(f"schema={schema}")
