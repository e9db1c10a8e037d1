"""The store's hot write path (filing a request), against SQLite and PostgreSQL:

* what ``create_request`` answers is exactly what reading the row back gives, and the event it
  logs carries the same request (SQLite builds both without reading the row back);
* a write given a ``TokenGrant`` checks the token inside its own transaction: a token revoked by
  another connection (another process, another replica) is refused and nothing is written;
* a batch of concurrent writes with failures among them keeps the audit chain whole (SQLite
  carries the chain's head through the batch instead of reading it per write);
* the event hub's in-memory feed (SQLite ``recent_events``) never skips another process's events.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from hitl_tui.backend.local import LocalBackend
from hitl_tui.errors import Conflict, Unauthorized
from hitl_tui.models import EventKind, RequestCreate, Risk, TokenRole
from hitl_tui.store.base import TokenGrant

VARIED = [
    {"agent": "bot", "tool": "deploy"},
    {"agent": "bot", "tool": "deploy", "args": {"n": 1.5, "big": 10**18, "tiny": 1e-7, "e": 1e16, "neg": -0.0}},
    {
        "agent": "bøt ✓",
        "tool": "Bash",
        "args": {"cmd": "echo 'ünï' \"q\" \\ \n\t", "nested": [{"a": None}, [1, 2]]},
        "summary": "résumé — 日本語",
        "context": "line1\nline2",
        "risk": "critical",
        "confidence": 0,
        "policy_reason": "rule x",
        "irreversible": True,
        "timeout_s": 0.25,
        "idempotency_key": "k-1",
        "required_approvals": 3,
    },
    {"agent": "a", "tool": "t", "timeout_s": None, "confidence": 100, "risk": "low"},
]


@pytest.mark.parametrize("fields", VARIED, ids=["plain", "numbers", "everything", "no-deadline"])
async def test_what_create_answers_is_what_is_stored(store, fields: dict) -> None:
    start = await store.last_seq()
    made = await store.create_request(RequestCreate(**fields))
    stored = await store.get_request(made.id)
    assert made == stored
    assert made.model_dump_json() == stored.model_dump_json()
    (ev,) = await store.events_after(start)
    assert ev.kind is EventKind.request_created and ev.subject == f"request:{made.id}"
    assert ev.payload == json.loads(stored.model_dump_json())
    again, text = await store.create_request_json(RequestCreate(**fields))  # the server's answer, made once
    assert text == again.model_dump_json() == (await store.get_request(again.id)).model_dump_json()
    if again.idempotency_key is not None:
        assert again == made  # the key filed it before: the same request, the same text
    assert (await store.verify_audit()).ok


async def _grants(store) -> tuple[TokenGrant, TokenGrant]:
    await store.create_token("bot", TokenRole.agent, "h-bot", "test")
    await store.create_token("eve", TokenRole.agent, "h-eve", "test")
    return TokenGrant("h-bot", "bot", TokenRole.agent), TokenGrant("h-eve", "eve", TokenRole.agent)


async def test_a_grant_is_checked_in_the_write_and_a_revocation_elsewhere_counts(make_store, clock) -> None:
    ours = make_store(clock=clock)
    theirs = make_store(clock=clock)  # another connection: another process, or another replica
    bot, eve = await _grants(ours)
    filed = await ours.create_request(RequestCreate(agent="bot", tool="deploy"), token=bot)
    before = (await ours.list_requests(None, limit=1)).total
    last = await ours.last_seq()

    await theirs.revoke_token("bot", "admin")
    with pytest.raises(Unauthorized, match="revoked"):
        await ours.create_request(RequestCreate(agent="bot", tool="deploy"), token=bot)
    with pytest.raises(Unauthorized):  # an idempotent retry is refused too: the token goes first
        await ours.create_request(RequestCreate(agent="bot", tool="deploy", idempotency_key="k"), token=bot)
    # the grant must match name and role as well as the hash
    for forged in (
        TokenGrant("h-eve", "bot", TokenRole.agent),
        TokenGrant("h-eve", "eve", TokenRole.admin),
        TokenGrant("h-nobody", "eve", TokenRole.agent),
    ):
        with pytest.raises(Unauthorized):
            await ours.create_request(RequestCreate(agent="eve", tool="deploy"), token=forged)
    assert (await ours.list_requests(None, limit=1)).total == before
    assert await ours.last_seq() == last + 1  # only the revocation's event

    # the control: a live grant, and no grant at all, still file
    assert (await ours.create_request(RequestCreate(agent="eve", tool="deploy"), token=eve)).agent == "eve"
    assert (await ours.create_request(RequestCreate(agent="bot", tool="deploy"))).id > filed.id


async def test_concurrent_writes_with_failures_keep_the_chain_whole(make_store, clock) -> None:
    store = make_store(clock=clock)
    theirs = make_store(clock=clock)  # another process writing between (and during) our batches
    await store.create_request(RequestCreate(agent="bot", tool="deploy", idempotency_key="taken"))
    await store.create_token("bot", TokenRole.agent, "h-bot", "test")
    await store.revoke_token("bot", "test")
    revoked = TokenGrant("h-bot", "bot", TokenRole.agent)

    async def one(i: int) -> object:
        if i % 5 == 1:  # same key, another tool: a conflict, rolled back alone
            data = RequestCreate(agent="bot", tool=f"other{i}", idempotency_key="taken")
            return await store.create_request(data)
        if i % 5 == 3:
            return await store.create_request(RequestCreate(agent="bot", tool="deploy"), token=revoked)
        return await store.create_request(RequestCreate(agent="bot", tool="deploy", risk=Risk.high, args={"i": i}))

    results: list[object] = []
    for batch in range(10):  # rounds of concurrent writes, with another process's write between them
        results += await asyncio.gather(*(one(batch * 10 + i) for i in range(10)), return_exceptions=True)
        await theirs.create_request(RequestCreate(agent="theirs", tool=f"t{batch}"))
    assert sum(isinstance(r, Conflict) for r in results) == 20
    assert sum(isinstance(r, Unauthorized) for r in results) == 20
    filed = [r for r in results if not isinstance(r, BaseException)]
    assert len(filed) == 60 and len({r.id for r in filed}) == 60
    report = await store.verify_audit()
    assert report.ok, report.problems
    events = await store.events_after(0, 1000)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    created = {int(e.subject.split(":")[1]) for e in events if e.kind is EventKind.request_created}
    assert {r.id for r in filed} <= created and len(created) == 71


async def test_the_hub_gets_every_event_in_order_when_another_process_writes_in_between(make_store, clock) -> None:
    ours = make_store(clock=clock)
    theirs = make_store(clock=clock)
    backend = LocalBackend(ours, expire_sweep=False)
    start = await ours.last_seq()
    got: list[tuple[int, str]] = []
    total = 60

    async def follow() -> None:
        async for ev in backend.subscribe(start):
            got.append((ev.seq, ev.payload.get("agent", "")))
            if len(got) == total:
                return

    follower = asyncio.create_task(follow())
    try:
        for i in range(total // 3):  # ours, theirs, ours: gaps in what this process committed itself
            await asyncio.gather(
                ours.create_request(RequestCreate(agent="ours", tool=f"t{i}")),
                ours.create_request(RequestCreate(agent="ours", tool=f"u{i}")),
            )
            await theirs.create_request(RequestCreate(agent="theirs", tool=f"t{i}"))
        await asyncio.wait_for(follower, 30)
    finally:
        follower.cancel()
        await backend.close()
    assert [s for s, _ in got] == list(range(start + 1, start + total + 1))
    assert [a for _, a in got].count("theirs") == total // 3


async def test_a_subscriber_can_ask_for_some_kinds_only(store) -> None:
    backend = LocalBackend(store, expire_sweep=False)
    start = await store.last_seq()
    first = await store.create_request(RequestCreate(agent="bot", tool="deploy"))
    got: list[int] = []

    async def follow() -> None:
        async for ev in backend.subscribe(start, kinds={EventKind.request_cancelled}):
            got.append(ev.seq)
            if len(got) == 2:
                return

    follower = asyncio.create_task(follow())
    try:
        await store.cancel_request(first.id, "bot")  # from the backlog or live: either way, once
        second = await store.create_request(RequestCreate(agent="bot", tool="deploy"))
        await store.cancel_request(second.id, "bot")
        await asyncio.wait_for(follower, 30)
        cancelled = [e.seq for e in await store.events_after(start) if e.kind is EventKind.request_cancelled]
    finally:
        follower.cancel()
        await backend.close()
    assert got == cancelled and len(got) == 2


async def test_a_revocation_in_the_same_write_batch_orders_every_filing_before_or_after_it(
    store, store_kind: str
) -> None:
    """Writes queued together commit in one transaction, in some order: a filing the token's
    revocation came before is refused, one that came before it is logged before it."""
    if store_kind != "sqlite":
        pytest.skip("SQLite groups concurrent writes into one transaction; PostgreSQL runs each on its own")
    outcomes: list[bool] = []
    for round_ in range(4):
        await store.create_token("bot", TokenRole.agent, f"h-bot-{round_}", "test")
        bot = TokenGrant(f"h-bot-{round_}", "bot", TokenRole.agent)
        start = await store.last_seq()
        filing = [store.create_request(RequestCreate(agent="bot", tool="deploy"), token=bot) for _ in range(3)]
        revoke = [store.revoke_token("bot", "admin")]
        order = filing[:1] + revoke + filing[1:] if round_ % 2 else revoke + filing
        done = await asyncio.gather(*order, return_exceptions=True)
        assert not any(isinstance(d, BaseException) and not isinstance(d, Unauthorized) for d in done), done
        events = await store.events_after(start)
        revoked_at = next(e.seq for e in events if e.kind is EventKind.token_revoked)
        filed = {int(e.subject.split(":")[1]): e.seq for e in events if e.kind is EventKind.request_created}
        for d in done:
            if isinstance(d, Unauthorized):
                outcomes.append(False)
            elif getattr(d, "tool", None) == "deploy":
                assert filed[d.id] < revoked_at  # filed, so before the revocation
                outcomes.append(True)
        assert len(filed) == sum(1 for d in done if getattr(d, "tool", None) == "deploy")
    assert len(outcomes) == 12
    # after the batch, the token is refused for good
    with pytest.raises(Unauthorized):
        await store.create_request(RequestCreate(agent="bot", tool="deploy"), token=bot)


async def test_filings_queued_together_each_get_their_own_row_and_event(store) -> None:
    """Concurrent filings (SQLite inserts a batch of them with one statement): every answer is its
    own stored row, its event carries it, and keys repeated within the batch file once."""
    await store.create_token("bot", TokenRole.agent, "h-bot", "test")
    bot = TokenGrant("h-bot", "bot", TokenRole.agent)
    start = await store.last_seq()
    made = await asyncio.gather(
        *(
            store.create_request(
                RequestCreate(
                    agent="bot",
                    tool=f"t{i % 3}",
                    args={"i": i},
                    summary=f"#{i}",
                    idempotency_key=f"k{i % 4}" if i % 2 else None,
                ),
                token=bot if i % 5 else None,
            )
            for i in range(60)
        ),
        return_exceptions=True,
    )
    errors = [m for m in made if isinstance(m, BaseException)]
    assert all(isinstance(e, Conflict) for e in errors), errors  # a repeated key with another tool
    filed = [m for m in made if not isinstance(m, BaseException)]
    for m in filed:
        assert m == await store.get_request(m.id)
        if m.idempotency_key is None:
            assert m.args["i"] % 2 == 0 and m.summary == f"#{m.args['i']}"
    keyed = {m.idempotency_key: m.id for m in filed if m.idempotency_key}
    assert sorted(keyed) == ["k1", "k3"] and all(m.id == keyed[m.idempotency_key] for m in filed if m.idempotency_key)
    events = await store.events_after(start)
    created = {int(e.subject.split(":")[1]): e for e in events if e.kind is EventKind.request_created}
    assert len(created) == 30 + 2 == len({m.id for m in filed})
    for m in filed:
        assert created[m.id].payload == json.loads(m.model_dump_json())
    assert (await store.verify_audit()).ok
