"""PostgreSQL store: the SQLite store's semantics on a server many processes share.

* Connections come from one lazily opened ``AsyncConnectionPool``; each sets ``search_path`` to
  the store's schema when one is given.
* Every write transaction starts with ``pg_advisory_xact_lock`` on a per-schema key, so writes
  are serialised exactly like SQLite's ``BEGIN IMMEDIATE``: events get ``seq = max + 1`` with no
  gap on commit (a SEQUENCE would leave gaps on rollback), the hash chain is linear, and the
  conditional ``UPDATE ... WHERE status = 'pending'`` of a decision can only ever win once.
* The same transaction calls ``pg_notify(channel, '<newest seq>')``; PostgreSQL delivers it on
  commit only. One listener connection per store (started by the first waiter) ``LISTEN``\\s and
  fans the numbers out through :class:`~hitl_tui.store.sqlite.ChangeNotifier`. Whenever the
  listener (re)connects it reads ``max(seq)`` from the log, so notifications missed while it was
  away are caught up: the log is the truth, the notification only a wake-up.
* PostgreSQL ``text`` cannot hold NUL, which agent text may contain. Every string parameter is
  escaped reversibly (:func:`encode_text`) and every string read back is unescaped, so values
  round-trip exactly as they do in SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
import zlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg_pool
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..errors import Conflict, InvalidInput, NotFound, StoreUnavailable, Unauthorized, decided_conflict
from ..models import (
    RISK_ORDER,
    ApprovalRequest,
    ApprovalVote,
    Capability,
    DecisionIn,
    Escalation,
    EscalationCreate,
    EscalationMessage,
    EscalationStatus,
    Event,
    EventKind,
    MessageRole,
    Page,
    RequestCreate,
    RequestStatus,
    ReviewCreate,
    ReviewItem,
    ReviewMark,
    Risk,
    Rule,
    Stage,
    StageChange,
    TokenInfo,
    TokenRole,
)
from .base import GENESIS_HASH, AuditReport, Store, TokenGrant, event_hash
from .pg_schema import META_TABLE, PG_MIGRATIONS, split_sql
from .sqlite import (
    REFILED_STATUSES,
    ChangeNotifier,
    key_conflict,
    message_event_payload,
    retired_key,
    search_words,
    stored_key,
    verify_rows,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], datetime]
Row = dict[str, Any]
Conn = psycopg.AsyncConnection[Row]
EventList = list[tuple[Any, ...]]

#: first key of the two-int advisory locks (the second is a hash of the schema name)
WRITE_LOCK_CLASS = 0x4854_4C01  # "HTL" 1: serialises writes and event appends
MIGRATE_LOCK_CLASS = 0x4854_4C02  # "HTL" 2: one migrator at a time
CHANNEL = "hitl_events"
MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1, in bytes
LISTENER_BACKOFF = (0.05, 2.0)  # first and longest pause between listener reconnects
TEST_SCHEMA_PREFIX = "hitl_test_"
CLOSE_TIMEOUT = 5.0  # seconds close() waits for the listener and the pool's workers

_ESC = "\ue000"  # a private-use character: escapes NUL (and itself) in text sent to PostgreSQL


# ===================================================================== small helpers
def encode_text(s: str) -> str:
    """Make ``s`` storable in PostgreSQL ``text`` (no NUL), reversibly. Identity for normal text."""
    if "\x00" not in s and _ESC not in s:
        return s
    return s.replace(_ESC, _ESC + "e").replace("\x00", _ESC + "0")


def decode_text(s: str) -> str:
    """Inverse of :func:`encode_text`. Every escape character in stored text starts a pair."""
    if _ESC not in s:
        return s
    return s.replace(_ESC + "0", "\x00").replace(_ESC + "e", _ESC)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    names = [c.name for c in cursor.description] if cursor.description else []

    def make(values: Sequence[Any]) -> Row:
        return {n: decode_text(v) if isinstance(v, str) else v for n, v in zip(names, values, strict=True)}

    return make


def _params(params: Sequence[Any]) -> list[Any]:
    return [encode_text(p) if isinstance(p, str) else p for p in params]


def _ts(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _system_clock() -> datetime:
    return datetime.now(UTC)


def _int4(text: str) -> int:
    """A stable signed 32-bit key for advisory locks."""
    return zlib.crc32(text.encode("utf-8")) - 2**31


def channel_for(schema: str) -> str:
    """The NOTIFY channel of one schema (``hitl_events`` for ``public``); at most 63 bytes."""
    if schema == "public":
        return CHANNEL
    name = f"{CHANNEL}.{schema}"
    if len(name.encode("utf-8")) <= MAX_IDENTIFIER:
        return name
    return f"{CHANNEL}.{zlib.crc32(schema.encode('utf-8')):08x}.{schema.encode('utf-8')[:30].decode('utf-8', 'ignore')}"


def mask_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ``***`` (URL or ``key=value`` form)."""
    if dsn.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(dsn)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":***"
            netloc = f"{userinfo}@{hostport}"
        query = parts.query
        if query:
            pairs = [(k, "***" if k == "password" else v) for k, v in parse_qsl(query, keep_blank_values=True)]
            query = urlencode(pairs, safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "postgresql://(unparseable DSN)"
    if "password" in params:
        params["password"] = "***"
    return make_conninfo(**params)  # type: ignore[arg-type]


def split_schema(dsn: str) -> tuple[str, str | None]:
    """``postgresql://host/db?schema=NAME`` -> (the DSN without it, NAME). libpq has no such
    option; it lets one URL (``--store``, ``HITL_STORE``) name the schema the tables live in."""
    if not dsn.startswith(("postgresql://", "postgres://")):
        return dsn, None
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = [v for k, v in query if k == "schema"]
    if not names:
        return dsn, None
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), names[-1]


def _flat(exc: BaseException) -> str:
    """libpq's messages run over several lines (with hints): one line for error messages."""
    return " ".join(str(exc).split())


async def create_test_schema(dsn: str) -> str:
    """Create a fresh, uniquely named schema (one per test) and return its name."""
    name = f"{TEST_SCHEMA_PREFIX}{uuid.uuid4().hex[:16]}"
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    return name


async def drop_test_schema(dsn: str, schema: str) -> None:
    """Drop a schema made by :func:`create_test_schema` and everything in it."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


async def _q(conn: Conn, query: str | sql.Composable, params: Sequence[Any] = ()) -> psycopg.AsyncCursor[Row]:
    """Execute with string parameters escaped (see :func:`encode_text`)."""
    return await conn.execute(query, _params(params))  # type: ignore[arg-type]


async def _one(conn: Conn, query: str, params: Sequence[Any] = ()) -> Row | None:
    return await (await _q(conn, query, params)).fetchone()


async def _all(conn: Conn, query: str, params: Sequence[Any] = ()) -> list[Row]:
    return await (await _q(conn, query, params)).fetchall()


# ===================================================================== the store
class PostgresStore(Store):
    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        clock: Clock | None = None,
        prevent_self_review: bool = True,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 10.0,
        connect_timeout: int = 5,
    ) -> None:
        self.url = mask_dsn(dsn)
        dsn, in_url = split_schema(dsn)
        schema = schema if schema is not None else in_url
        if schema is not None and not schema:
            raise InvalidInput("the PostgreSQL schema name must not be empty")
        self.dsn = dsn
        self.schema = schema
        self.clock: Clock = clock or _system_clock  # type: ignore[method-assign]
        self.prevent_self_review = prevent_self_review
        self.min_size = min_size
        self.max_size = max(max_size, min_size)
        self.timeout = timeout
        self.notifier = ChangeNotifier()
        try:
            given = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as exc:
            raise InvalidInput(f"not a valid PostgreSQL DSN: {_flat(exc)}") from None
        self._connect_kwargs: dict[str, Any] = {"autocommit": True, "row_factory": _row_factory}
        if "connect_timeout" not in given:
            self._connect_kwargs["connect_timeout"] = connect_timeout
        if "application_name" not in given:
            self._connect_kwargs["application_name"] = "hitl"
        for key, value in (
            ("keepalives", 1),
            ("keepalives_idle", 30),
            ("keepalives_interval", 10),
            ("keepalives_count", 3),
        ):
            if key not in given:
                self._connect_kwargs[key] = value  # notice a dead server even on an idle listener
        self._pool: psycopg_pool.AsyncConnectionPool[Conn] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open_lock: asyncio.Lock | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listener_pid: int | None = None
        self._closed = False
        self._resolved_schema = schema or "public"
        self._lock_key = _int4(self._resolved_schema)
        self._channel = channel_for(self._resolved_schema)

    # ================================================================= opening
    async def open(self) -> None:
        """Open the pool and apply migrations (idempotent; every method opens lazily too)."""
        await self._ensure_open()

    async def _ensure_open(self) -> psycopg_pool.AsyncConnectionPool[Conn]:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._loop is loop:
            return self._pool
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed():
                raise StoreUnavailable("this PostgreSQL store is already in use by another event loop")
            # first use, or the loop that opened the pool has ended (sequential asyncio.run calls)
            self._pool, self._listener, self._loop = None, None, loop
            self._open_lock = asyncio.Lock()
        assert self._open_lock is not None
        async with self._open_lock:
            if self._pool is not None:
                return self._pool
            # Migrate on one direct connection first: an unreachable server fails at once here
            # instead of after the pool's timeout.
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, **self._connect_kwargs) as conn:
                    await self._configure(conn)
                    await self._migrate(conn)
                    row = await _one(conn, "SELECT COALESCE(MAX(seq), 0) AS seq FROM events")
            except (psycopg.Error, OSError) as exc:
                raise StoreUnavailable(f"cannot open PostgreSQL store {self.url}: {_flat(exc)}") from exc
            assert row is not None
            self.notifier.publish(int(row["seq"]))
            pool = psycopg_pool.AsyncConnectionPool(
                self.dsn,
                kwargs=self._connect_kwargs,
                min_size=self.min_size,
                max_size=self.max_size,
                open=False,
                configure=self._configure,
                check=psycopg_pool.AsyncConnectionPool.check_connection,
                timeout=self.timeout,
                name=f"hitl-{self._resolved_schema}",
            )
            try:
                await pool.open(wait=True, timeout=self.timeout)
            except BaseException as exc:
                await pool.close()
                if isinstance(exc, psycopg.Error | psycopg_pool.PoolTimeout | OSError):
                    raise StoreUnavailable(f"cannot open PostgreSQL store {self.url}: {_flat(exc)}") from exc
                raise
            self._pool = pool
            return pool

    async def _configure(self, conn: Conn) -> None:
        """Session settings of every connection. Writes rely on READ COMMITTED: each statement
        after the write lock is granted sees what the previous holder committed (a server whose
        default is REPEATABLE READ would hand them a snapshot from before the lock)."""
        setting = sql.SQL("SET default_transaction_isolation TO 'read committed'")
        if self.schema is not None:
            setting = sql.SQL("{}; SET search_path TO {}").format(setting, sql.Identifier(self.schema))
        await conn.execute(setting)

    async def _migrate(self, conn: Conn) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (MIGRATE_LOCK_CLASS, self._lock_key))
            if self.schema is not None:
                exists = await _one(conn, "SELECT 1 AS x FROM pg_namespace WHERE nspname = %s", (self.schema,))
                if exists is None:
                    await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
            await conn.execute(META_TABLE)
            row = await _one(conn, "SELECT value FROM hitl_meta WHERE key = 'schema_version'")
            version = int(row["value"]) if row else 0
            if version > len(PG_MIGRATIONS):
                raise StoreUnavailable(
                    f"the database schema is version {version}, newer than this hitl-tui knows "
                    f"({len(PG_MIGRATIONS)}); upgrade hitl-tui"
                )
            for i, script in enumerate(PG_MIGRATIONS[version:], start=version + 1):
                for stmt in split_sql(script):
                    await conn.execute(stmt)  # type: ignore[arg-type]
                await conn.execute(
                    "INSERT INTO hitl_meta(key, value) VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(i),),
                )

    # ================================================================= running SQL
    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(f"store error ({self.url}): {_flat(exc)}")

    async def _read(self, fn: Callable[[Conn], Awaitable[T]], *, snapshot: bool = False) -> T:
        """Run ``fn`` on a pooled connection; ``snapshot`` makes its statements see one snapshot."""
        pool = await self._ensure_open()
        try:
            async with pool.connection() as conn:
                if not snapshot:
                    return await fn(conn)
                async with conn.transaction():
                    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    return await fn(conn)
        except (psycopg.Error, psycopg_pool.PoolTimeout, OSError) as exc:
            raise self._unavailable(exc) from exc
        except UnicodeEncodeError:
            raise InvalidInput("the text is not valid Unicode (it holds an unpaired surrogate)") from None

    async def _write(self, fn: Callable[[Conn, EventList], Awaitable[T]]) -> T:
        """Run ``fn`` in one transaction holding the schema's write lock. ``fn`` appends events to
        the list it is given; they are written (and NOTIFY sent) in the same transaction."""
        pool = await self._ensure_open()
        last = 0
        try:
            async with pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (WRITE_LOCK_CLASS, self._lock_key))
                events: EventList = []
                result = await fn(conn, events)
                last = await self._append_events(conn, events)
                if last:
                    await conn.execute("SELECT pg_notify(%s, %s)", (self._channel, str(last)))
        except (psycopg.Error, psycopg_pool.PoolTimeout, OSError) as exc:
            raise self._unavailable(exc) from exc
        except UnicodeEncodeError:  # a lone surrogate (say, invalid UTF-8 from a shell argument)
            raise InvalidInput("the text is not valid Unicode (it holds an unpaired surrogate)") from None
        if last:
            self.notifier.publish(last)
        return result

    async def _append_events(self, conn: Conn, events: EventList) -> int:
        if not events:
            return 0
        row = await _one(conn, "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
        seq, prev = (int(row["seq"]), row["hash"]) if row else (0, GENESIS_HASH)
        at = _ts(self.clock())
        assert at is not None
        rows = []
        for kind, subject, actor, payload in events:
            seq += 1
            text = _dumps(payload)
            h = event_hash(prev, seq, at, str(kind), subject, actor, text)
            rows.append(_params((seq, at, str(kind), subject, actor, text, prev, h)))
            prev = h
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO events(seq, at, kind, subject, actor, payload, prev_hash, hash) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
                rows,
            )
        return seq

    # ================================================================= change signal
    def _ensure_listener(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(
                self._listen(), name=f"hitl-pg-listener-{self._resolved_schema}"
            )

    async def _listener_connect(self) -> Conn:
        """One dedicated connection for LISTEN (never from the pool: it is held for good)."""
        kwargs = dict(self._connect_kwargs)
        kwargs.setdefault("application_name", "hitl")
        kwargs["application_name"] = f"{kwargs['application_name']}-listener"[:MAX_IDENTIFIER]
        conn = await psycopg.AsyncConnection.connect(self.dsn, **kwargs)
        try:
            await self._configure(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _listen(self) -> None:
        """LISTEN forever; on every (re)connect first catch up from the log."""
        pause = LISTENER_BACKOFF[0]
        while not self._closed:
            conn: Conn | None = None
            try:
                conn = await self._listener_connect()
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                # after LISTEN, so nothing committed from here on can be missed
                row = await _one(conn, "SELECT COALESCE(MAX(seq), 0) AS seq FROM events")
                assert row is not None
                self._listener_pid = conn.info.backend_pid
                self.notifier.publish(int(row["seq"]))
                pause = LISTENER_BACKOFF[0]
                async for note in conn.notifies():
                    try:
                        seq = int(note.payload)
                    except ValueError:
                        continue  # not ours; the log stays the truth
                    self.notifier.publish(seq)
            except (psycopg.Error, OSError) as exc:
                log.debug("hitl listener on %s lost its connection: %s", self.url, exc)
            finally:
                self._listener_pid = None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            if self._closed:
                break
            await asyncio.sleep(pause)
            pause = min(pause * 2, LISTENER_BACKOFF[1])

    async def wait_for_change(self, after_seq: int, timeout: float) -> int:
        await self._ensure_open()
        self._ensure_listener()
        return await self.notifier.wait(after_seq, timeout)

    async def check(self) -> None:
        pool = await self._ensure_open()
        try:
            async with pool.connection(timeout=min(self.timeout, 5.0)) as conn:
                await conn.execute("SELECT 1")
        except (psycopg.Error, psycopg_pool.PoolTimeout, OSError) as exc:
            raise StoreUnavailable(f"the PostgreSQL store {self.url} is unreachable: {_flat(exc)}") from exc

    # ================================================================= requests
    @staticmethod
    def _request_from_row(r: Row) -> ApprovalRequest:
        return ApprovalRequest(
            id=r["id"],
            agent=r["agent"],
            tool=r["tool"],
            args=json.loads(r["args"]),
            summary=r["summary"],
            context=r["context"],
            risk=Risk(r["risk"]),
            confidence=r["confidence"],
            policy_reason=r["policy_reason"],
            irreversible=bool(r["irreversible"]),
            status=RequestStatus(r["status"]),
            created_at=_dt(r["created_at"]),
            expires_at=_dt(r["expires_at"]),
            decided_at=_dt(r["decided_at"]),
            decided_by=r["decided_by"],
            decision_reason=r["decision_reason"],
            edited_args=json.loads(r["edited_args"]) if r["edited_args"] is not None else None,
            idempotency_key=stored_key(r["idempotency_key"]),
            required_approvals=r["required_approvals"],
            approvals=[ApprovalVote.model_validate(v) for v in json.loads(r["approvals"])],
        )

    async def _get_request(self, conn: Conn, request_id: int) -> ApprovalRequest:
        row = await _one(conn, "SELECT * FROM requests WHERE id = %s", (request_id,))
        if row is None:
            raise NotFound(f"no request with id {request_id}", id=request_id)
        return self._request_from_row(row)

    async def create_request(
        self, data: RequestCreate, *, actor: str | None = None, token: TokenGrant | None = None
    ) -> ApprovalRequest:
        async def tx(conn: Conn, events: EventList) -> ApprovalRequest:
            if token is not None:  # in this transaction: a revocation committed on any replica counts
                granted = await _one(
                    conn,
                    "SELECT 1 AS ok FROM tokens WHERE token_hash=%s AND name=%s AND role=%s AND revoked_at IS NULL",
                    (token.token_hash, token.name, token.role.value),
                )
                if granted is None:
                    raise Unauthorized("the token is not valid (unknown or revoked)")
            if data.idempotency_key is not None:  # as the SQLite store (see its key_conflict)
                row = await _one(conn, "SELECT * FROM requests WHERE idempotency_key = %s", (data.idempotency_key,))
                if row is not None:
                    existing = self._request_from_row(row)
                    conflict = key_conflict(existing, data.idempotency_key, data.agent, data.tool, data.args)
                    if conflict is not None:
                        raise conflict
                    existing = await self._expire_if_due(conn, existing, self.clock(), events)
                    if existing.status not in REFILED_STATUSES or not data.renew_expired:
                        return existing
                    # it expired or was cancelled: file a new request, which takes the key over
                    await _q(
                        conn,
                        "UPDATE requests SET idempotency_key = %s WHERE id = %s",
                        (retired_key(data.idempotency_key, existing.id), existing.id),
                    )
            created = _ts(self.clock())
            assert created is not None
            expires = created + data.timeout_s if data.timeout_s else None
            row = await _one(
                conn,
                """INSERT INTO requests(agent, tool, args, summary, context, risk, risk_rank, confidence,
                       policy_reason, irreversible, status, created_at, expires_at, idempotency_key,
                       required_approvals, approvals)
                   VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,'pending',%s,%s,%s,%s,'[]') RETURNING *""",
                (
                    data.agent,
                    data.tool,
                    _dumps(data.args),
                    data.summary,
                    data.context,
                    data.risk.value,
                    RISK_ORDER[data.risk],
                    data.confidence,
                    data.policy_reason,
                    data.irreversible,
                    created,
                    expires,
                    data.idempotency_key,
                    data.required_approvals,
                ),
            )
            assert row is not None
            req = self._request_from_row(row)
            events.append(
                (EventKind.request_created, f"request:{req.id}", actor or data.agent, req.model_dump(mode="json"))
            )
            return req

        return await self._write(tx)

    async def get_request(self, request_id: int) -> ApprovalRequest:
        return await self._read(lambda c: self._get_request(c, request_id))

    async def list_requests(
        self,
        status: RequestStatus | None = RequestStatus.pending,
        *,
        agent: str | None = None,
        tool: str | None = None,
        search: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> Page:
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append("status = %s")
            params.append(RequestStatus(status).value)
        if agent:
            where.append("agent = %s")
            params.append(agent)
        if tool:
            where.append("tool = %s")
            params.append(tool)
        for s in search_words(search):  # as the SQLite store: every word, each in tool, agent or summary
            where.append(
                "(strpos(lower(tool), %s) > 0 OR strpos(lower(agent), %s) > 0 "
                "OR strpos(lower(COALESCE(summary, '')), %s) > 0)"
            )
            params += [s, s, s]
        clause = ("WHERE " + " AND ".join(where)) if where else ""

        async def q(conn: Conn) -> Page:
            total = await _one(conn, f"SELECT COUNT(*) AS n FROM requests {clause}", params)
            rows = await _all(
                conn,
                f"SELECT * FROM requests {clause} ORDER BY risk_rank DESC, id DESC LIMIT %s OFFSET %s",
                [*params, max(0, limit), max(0, offset)],
            )
            assert total is not None
            return Page(items=[self._request_from_row(r) for r in rows], total=total["n"])

        return await self._read(q, snapshot=True)

    async def _expire_if_due(
        self, conn: Conn, req: ApprovalRequest, now: datetime, events: EventList
    ) -> ApprovalRequest:
        if req.status is RequestStatus.pending and req.expires_at is not None and now >= req.expires_at:
            row = await _one(
                conn,
                "UPDATE requests SET status='expired', decided_at=%s, decided_by=NULL, decision_reason=%s "
                "WHERE id=%s AND status='pending' RETURNING *",
                (_ts(req.expires_at), "no decision before the deadline", req.id),
            )
            if row is not None:
                req = self._request_from_row(row)
                events.append((EventKind.request_expired, f"request:{req.id}", "system", req.model_dump(mode="json")))
        return req

    async def decide(self, request_id: int, decision: DecisionIn, reviewer: str) -> ApprovalRequest:
        if not reviewer:
            raise InvalidInput("a decision needs the reviewer's name")

        async def tx(conn: Conn, events: EventList) -> ApprovalRequest | Conflict:
            now = self.clock()
            req = await self._get_request(conn, request_id)
            req = await self._expire_if_due(conn, req, now, events)
            if req.status is not RequestStatus.pending:
                # A retry of the same decision (and edit) by the same person is answered, not refused.
                same = (
                    (req.status is RequestStatus.approved and decision.decision == "approve")
                    or (req.status is RequestStatus.denied and decision.decision == "deny")
                ) and any(
                    v.reviewer == reviewer and v.decision == decision.decision and v.edited_args == decision.edited_args
                    for v in req.approvals
                )
                if same:
                    return req
                return decided_conflict(req.status.value, req.decided_by, req.decided_at, req.id)
            if self.prevent_self_review and reviewer == req.agent:
                raise Conflict(
                    f"{reviewer} filed request {req.id} and cannot decide it (self-review is not allowed)",
                    id=req.id,
                )
            earlier = next((v for v in req.approvals if v.reviewer == reviewer), None)
            if earlier is not None:
                if earlier.decision == decision.decision and earlier.edited_args == decision.edited_args:
                    return req  # a retried vote is answered with the request as it stands: no second event
                raise Conflict(
                    f"{reviewer} already voted {earlier.decision} on request {req.id}; it needs "
                    f"{req.required_approvals} approvals from different reviewers",
                    id=req.id,
                )
            vote = ApprovalVote(
                reviewer=reviewer,
                decision=decision.decision,
                reason=decision.reason,
                at=now,
                edited_args=decision.edited_args,
            )
            votes = [*req.approvals, vote]
            approvals = sum(1 for v in votes if v.decision == "approve")
            votes_json = _dumps([v.model_dump(mode="json") for v in votes])
            if decision.decision == "deny" or approvals >= req.required_approvals:
                status = "denied" if decision.decision == "deny" else "approved"
                edited = decision.edited_args
                if edited is None and status == "approved":
                    # a quorum keeps an earlier voter's edit
                    edited = next((v.edited_args for v in reversed(votes) if v.edited_args is not None), None)
                row = await _one(
                    conn,
                    "UPDATE requests SET status=%s, decided_at=%s, decided_by=%s, decision_reason=%s, "
                    "edited_args=%s, approvals=%s WHERE id=%s AND status='pending' RETURNING *",
                    (
                        status,
                        _ts(now),
                        reviewer,
                        decision.reason,
                        _dumps(edited) if edited is not None else None,
                        votes_json,
                        req.id,
                    ),
                )
                kind = EventKind.request_decided
            else:
                row = await _one(
                    conn,
                    "UPDATE requests SET approvals=%s WHERE id=%s AND status='pending' RETURNING *",
                    (votes_json, req.id),
                )
                kind = EventKind.request_voted
            if row is None:  # cannot happen under the write lock; refuse rather than guess
                raise Conflict(f"request {req.id} changed while deciding; try again", id=req.id)
            req = self._request_from_row(row)
            payload = req.model_dump(mode="json")
            payload["vote"] = vote.model_dump(mode="json")
            events.append((kind, f"request:{req.id}", reviewer, payload))
            return req

        # A conflict found after expiring in the same transaction must still commit the expiry,
        # so the transaction returns the error and we raise it after commit.
        result = await self._write(tx)
        if isinstance(result, Conflict):
            raise result
        return result

    async def cancel_request(self, request_id: int, actor: str, reason: str | None = None) -> ApprovalRequest:
        async def tx(conn: Conn, events: EventList) -> ApprovalRequest | Conflict:
            req = await self._get_request(conn, request_id)
            req = await self._expire_if_due(conn, req, self.clock(), events)
            if req.status is not RequestStatus.pending:
                if req.status is RequestStatus.cancelled:
                    return req
                return decided_conflict(req.status.value, req.decided_by, req.decided_at, req.id)
            row = await _one(
                conn,
                "UPDATE requests SET status='cancelled', decided_at=%s, decided_by=%s, decision_reason=%s "
                "WHERE id=%s AND status='pending' RETURNING *",
                (_ts(self.clock()), actor, reason, req.id),
            )
            assert row is not None  # we hold the write lock and saw it pending
            req = self._request_from_row(row)
            events.append((EventKind.request_cancelled, f"request:{req.id}", actor, req.model_dump(mode="json")))
            return req

        result = await self._write(tx)
        if isinstance(result, Conflict):
            raise result
        return result

    async def expire_due(self, now: datetime | None = None) -> list[ApprovalRequest]:
        at = now or self.clock()

        async def any_due(conn: Conn) -> bool:
            row = await _one(
                conn,
                "SELECT EXISTS (SELECT 1 FROM requests WHERE status='pending' AND expires_at <= %s) AS due",
                (_ts(at),),
            )
            return bool(row and row["due"])

        # Every idle backend sweeps about once a second: only take the write lock when there is work.
        if not await self._read(any_due):
            return []

        async def tx(conn: Conn, events: EventList) -> list[ApprovalRequest]:
            rows = await _all(
                conn,
                "SELECT * FROM requests WHERE status='pending' AND expires_at IS NOT NULL AND expires_at <= %s "
                "ORDER BY id",
                (_ts(at),),
            )
            out = []
            for r in rows:
                req = await self._expire_if_due(conn, self._request_from_row(r), at, events)
                if req.status is RequestStatus.expired:
                    out.append(req)
            return out

        return await self._write(tx)

    # ================================================================= escalations
    @staticmethod
    def _escalation_from_rows(r: Row, msgs: list[Row]) -> Escalation:
        return Escalation(
            id=r["id"],
            agent=r["agent"],
            message=r["message"],
            context=r["context"],
            status=EscalationStatus(r["status"]),
            created_at=_dt(r["created_at"]),
            updated_at=_dt(r["updated_at"]),
            request_id=r["request_id"],
            messages=[
                EscalationMessage(author=m["author"], role=MessageRole(m["role"]), text=m["text"], at=_dt(m["at"]))
                for m in msgs
            ],
        )

    async def _get_escalation(self, conn: Conn, escalation_id: int) -> Escalation:
        r = await _one(conn, "SELECT * FROM escalations WHERE id = %s", (escalation_id,))
        if r is None:
            raise NotFound(f"no escalation with id {escalation_id}", id=escalation_id)
        msgs = await _all(
            conn,
            "SELECT author, role, text, at FROM escalation_messages WHERE escalation_id = %s ORDER BY id",
            (escalation_id,),
        )
        return self._escalation_from_rows(r, msgs)

    async def create_escalation(self, data: EscalationCreate) -> Escalation:
        async def tx(conn: Conn, events: EventList) -> Escalation:
            now = _ts(self.clock())
            row = await _one(
                conn,
                "INSERT INTO escalations(agent, message, context, status, created_at, updated_at, request_id) "
                "VALUES (%s,%s,%s,'open',%s,%s,%s) RETURNING id",
                (data.agent, data.message, data.context, now, now, data.request_id),
            )
            assert row is not None
            eid = int(row["id"])
            await _q(
                conn,
                "INSERT INTO escalation_messages(escalation_id, author, role, text, at) VALUES (%s,%s,%s,%s,%s)",
                (eid, data.agent, MessageRole.agent.value, data.message, now),
            )
            esc = await self._get_escalation(conn, eid)
            events.append((EventKind.escalation_opened, f"escalation:{eid}", data.agent, esc.model_dump(mode="json")))
            return esc

        return await self._write(tx)

    async def get_escalation(self, escalation_id: int) -> Escalation:
        return await self._read(lambda c: self._get_escalation(c, escalation_id), snapshot=True)

    async def list_escalations(
        self, status: EscalationStatus | None = None, *, agent: str | None = None, offset: int = 0, limit: int = 100
    ) -> Page:
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append("status = %s")
            params.append(EscalationStatus(status).value)
        if agent:
            where.append("agent = %s")
            params.append(agent)
        clause = ("WHERE " + " AND ".join(where)) if where else ""

        async def q(conn: Conn) -> Page:
            total = await _one(conn, f"SELECT COUNT(*) AS n FROM escalations {clause}", params)
            rows = await _all(
                conn,
                f"SELECT * FROM escalations {clause} ORDER BY (status IN ('open','answered')) DESC, "
                f"updated_at DESC, id DESC LIMIT %s OFFSET %s",
                [*params, max(0, limit), max(0, offset)],
            )
            msgs = await _all(
                conn,
                "SELECT escalation_id, author, role, text, at FROM escalation_messages "
                "WHERE escalation_id = ANY(%s) ORDER BY id",
                ([r["id"] for r in rows],),
            )
            by_thread: dict[int, list[Row]] = {}
            for m in msgs:
                by_thread.setdefault(m["escalation_id"], []).append(m)
            assert total is not None
            items = [self._escalation_from_rows(r, by_thread.get(r["id"], [])) for r in rows]
            return Page(items=items, total=total["n"])

        return await self._read(q, snapshot=True)

    async def post_message(self, escalation_id: int, text: str, author: str, role: MessageRole) -> Escalation:
        if not text:
            raise InvalidInput("a message needs text")

        async def tx(conn: Conn, events: EventList) -> Escalation:
            esc = await self._get_escalation(conn, escalation_id)
            if esc.status in (EscalationStatus.resolved, EscalationStatus.taken_over) and role is MessageRole.agent:
                raise Conflict(f"escalation {escalation_id} is {esc.status.value}; the agent can no longer post to it")
            if esc.status is EscalationStatus.resolved:
                raise Conflict(f"escalation {escalation_id} is resolved", id=escalation_id)
            now = _ts(self.clock())
            await _q(
                conn,
                "INSERT INTO escalation_messages(escalation_id, author, role, text, at) VALUES (%s,%s,%s,%s,%s)",
                (escalation_id, author, MessageRole(role).value, text, now),
            )
            new_status = esc.status
            if role is MessageRole.human and esc.status is EscalationStatus.open:
                new_status = EscalationStatus.answered
            elif role is MessageRole.agent and esc.status is EscalationStatus.answered:
                new_status = EscalationStatus.open  # the agent asks again
            await _q(
                conn,
                "UPDATE escalations SET status=%s, updated_at=%s WHERE id=%s",
                (new_status.value, now, escalation_id),
            )
            esc = await self._get_escalation(conn, escalation_id)
            payload = message_event_payload(esc)
            events.append((EventKind.escalation_message, f"escalation:{escalation_id}", author, payload))
            return esc

        return await self._write(tx)

    async def set_escalation_status(
        self, escalation_id: int, status: EscalationStatus, actor: str, note: str | None = None
    ) -> Escalation:
        status = EscalationStatus(status)

        async def tx(conn: Conn, events: EventList) -> Escalation:
            esc = await self._get_escalation(conn, escalation_id)
            if esc.status is EscalationStatus.resolved and status is not EscalationStatus.resolved:
                raise Conflict(f"escalation {escalation_id} is already resolved", id=escalation_id)
            if esc.status is status:
                return esc
            now = _ts(self.clock())
            await _q(
                conn, "UPDATE escalations SET status=%s, updated_at=%s WHERE id=%s", (status.value, now, escalation_id)
            )
            esc = await self._get_escalation(conn, escalation_id)
            payload = esc.model_dump(mode="json")
            payload["note"] = note
            events.append((EventKind.escalation_status, f"escalation:{escalation_id}", actor, payload))
            return esc

        return await self._write(tx)

    # ================================================================= review items
    @staticmethod
    def _review_from_row(r: Row) -> ReviewItem:
        return ReviewItem(
            id=r["id"],
            agent=r["agent"],
            tool=r["tool"],
            args=json.loads(r["args"]),
            result=r["result"],
            result_length=r["result_length"],
            created_at=_dt(r["created_at"]),
            reviewed=bool(r["reviewed"]),
            verdict=r["verdict"],
            reviewer=r["reviewer"],
            reviewed_at=_dt(r["reviewed_at"]),
            note=r["note"],
            request_id=r["request_id"],
        )

    async def _get_review(self, conn: Conn, review_id: int) -> ReviewItem:
        r = await _one(conn, "SELECT * FROM reviews WHERE id = %s", (review_id,))
        if r is None:
            raise NotFound(f"no review item with id {review_id}", id=review_id)
        return self._review_from_row(r)

    async def log_review(self, data: ReviewCreate) -> ReviewItem:
        async def tx(conn: Conn, events: EventList) -> ReviewItem:
            row = await _one(
                conn,
                "INSERT INTO reviews(agent, tool, args, result, result_length, created_at, reviewed, request_id) "
                "VALUES (%s,%s,%s,%s,%s,%s,FALSE,%s) RETURNING *",
                (
                    data.agent,
                    data.tool,
                    _dumps(data.args),
                    data.result[: data.result_limit],
                    len(data.result),
                    _ts(self.clock()),
                    data.request_id,
                ),
            )
            assert row is not None
            item = self._review_from_row(row)
            events.append((EventKind.review_logged, f"review:{item.id}", data.agent, item.model_dump(mode="json")))
            return item

        return await self._write(tx)

    async def get_review(self, review_id: int) -> ReviewItem:
        return await self._read(lambda c: self._get_review(c, review_id))

    async def list_reviews(
        self,
        reviewed: bool | None = None,
        *,
        tool: str | None = None,
        agent: str | None = None,
        since: datetime | None = None,
        verdict: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> Page:
        where: list[str] = []
        params: list[Any] = []
        if reviewed is not None:
            where.append("reviewed = %s")
            params.append(bool(reviewed))
        if tool:
            where.append("tool = %s")
            params.append(tool)
        if agent:
            where.append("agent = %s")
            params.append(agent)
        if since is not None:
            where.append("created_at >= %s")
            params.append(_ts(since))
        if verdict:
            where.append("verdict = %s")
            params.append(str(verdict))
        clause = ("WHERE " + " AND ".join(where)) if where else ""

        async def q(conn: Conn) -> Page:
            total = await _one(conn, f"SELECT COUNT(*) AS n FROM reviews {clause}", params)
            rows = await _all(
                conn,
                f"SELECT * FROM reviews {clause} ORDER BY reviewed ASC, id DESC LIMIT %s OFFSET %s",
                [*params, max(0, limit), max(0, offset)],
            )
            assert total is not None
            return Page(items=[self._review_from_row(r) for r in rows], total=total["n"])

        return await self._read(q, snapshot=True)

    async def mark_review(self, review_id: int, mark: ReviewMark, reviewer: str) -> ReviewItem:
        async def tx(conn: Conn, events: EventList) -> ReviewItem:
            item = await self._get_review(conn, review_id)
            if item.reviewed and item.verdict == mark.verdict and item.note == mark.note and item.reviewer == reviewer:
                return item  # a retry: same answer, no second event
            row = await _one(
                conn,
                "UPDATE reviews SET reviewed=TRUE, verdict=%s, reviewer=%s, reviewed_at=%s, note=%s WHERE id=%s "
                "RETURNING *",
                (mark.verdict.value, reviewer, _ts(self.clock()), mark.note, review_id),
            )
            assert row is not None
            item = self._review_from_row(row)
            events.append((EventKind.review_marked, f"review:{review_id}", reviewer, item.model_dump(mode="json")))
            return item

        return await self._write(tx)

    # ================================================================= capabilities and rules
    async def _get_capability(self, conn: Conn, tool: str, agent: str | None) -> Capability | None:
        r = await _one(conn, "SELECT data FROM capabilities WHERE tool = %s AND agent = %s", (tool, agent or ""))
        if r is None:
            return None
        cap = Capability.model_validate_json(r["data"])
        hist = await _all(
            conn,
            "SELECT at, actor, from_stage, to_stage, reason, forced FROM stage_changes "
            "WHERE tool = %s AND agent = %s ORDER BY id",
            (tool, agent or ""),
        )
        cap.history = [
            StageChange(
                at=_dt(h["at"]),
                actor=h["actor"],
                from_stage=h["from_stage"],
                to_stage=h["to_stage"],
                reason=h["reason"],
                forced=bool(h["forced"]),
            )
            for h in hist
        ]
        return cap

    async def list_capabilities(self) -> list[Capability]:
        async def q(conn: Conn) -> list[Capability]:
            keys = await _all(conn, "SELECT tool, agent FROM capabilities ORDER BY tool, agent")
            out = []
            for k in keys:
                cap = await self._get_capability(conn, k["tool"], k["agent"] or None)
                if cap is not None:
                    out.append(cap)
            return out

        return await self._read(q, snapshot=True)

    async def get_capability(self, tool: str, agent: str | None = None) -> Capability:
        async def q(conn: Conn) -> Capability:
            cap = await self._get_capability(conn, tool, agent)
            if cap is None:
                who = f" for agent {agent}" if agent else ""
                raise NotFound(f"no capability {tool!r}{who}", tool=tool)
            return cap

        return await self._read(q, snapshot=True)

    async def _record_stage(
        self,
        conn: Conn,
        cap: Capability,
        from_stage: Stage | None,
        actor: str,
        reason: str | None,
        forced: bool,
        events: EventList,
    ) -> None:
        await _q(
            conn,
            "INSERT INTO stage_changes(tool, agent, at, actor, from_stage, to_stage, reason, forced) "
            "VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
            (
                cap.tool,
                cap.agent or "",
                _ts(self.clock()),
                actor,
                from_stage.value if from_stage else None,
                cap.stage.value,
                reason,
                forced,
            ),
        )
        events.append(
            (
                EventKind.stage_changed,
                f"capability:{cap.tool}" + (f"@{cap.agent}" if cap.agent else ""),
                actor,
                {
                    "tool": cap.tool,
                    "agent": cap.agent,
                    "from": from_stage.value if from_stage else None,
                    "to": cap.stage.value,
                    "reason": reason,
                    "forced": forced,
                },
            )
        )

    async def put_capability(self, cap: Capability, actor: str, reason: str | None = None) -> Capability:
        from ..policy import check_stage_change

        async def tx(conn: Conn, events: EventList) -> Capability:
            old = await self._get_capability(conn, cap.tool, cap.agent)
            data = cap.model_copy(update={"history": []})
            if old is not None and old.stage is not cap.stage:
                check_stage_change(old, cap.stage, force=False)
            await _q(
                conn,
                "INSERT INTO capabilities(tool, agent, data) VALUES (%s,%s,%s) "
                "ON CONFLICT (tool, agent) DO UPDATE SET data = excluded.data",
                (cap.tool, cap.agent or "", data.model_dump_json()),
            )
            if old is None or old.stage is not cap.stage:
                await self._record_stage(conn, cap, old.stage if old else None, actor, reason, False, events)
            old_cmp = old.model_copy(update={"history": [], "stage": cap.stage}) if old else None
            if old_cmp != data:
                events.append(
                    (
                        EventKind.capability_changed,
                        f"capability:{cap.tool}" + (f"@{cap.agent}" if cap.agent else ""),
                        actor,
                        {**data.model_dump(mode="json"), "reason": reason},
                    )
                )
            got = await self._get_capability(conn, cap.tool, cap.agent)
            assert got is not None
            return got

        return await self._write(tx)

    async def set_stage(
        self,
        tool: str,
        stage: Stage,
        actor: str,
        reason: str | None = None,
        *,
        force: bool = False,
        agent: str | None = None,
    ) -> Capability:
        from ..policy import check_stage_change

        stage = Stage(stage)

        async def tx(conn: Conn, events: EventList) -> Capability:
            cap = await self._get_capability(conn, tool, agent)
            if cap is None:
                who = f" for agent {agent}" if agent else ""
                raise NotFound(
                    f"no capability {tool!r}{who}; add it first (hitl policy preset, or the console)", tool=tool
                )
            if cap.stage is stage:
                return cap
            check_stage_change(cap, stage, force)
            forced = bool(force and cap.always_approval and stage is Stage.autonomous)
            old_stage = cap.stage
            cap.stage = stage
            await _q(
                conn,
                "UPDATE capabilities SET data=%s WHERE tool=%s AND agent=%s",
                (cap.model_copy(update={"history": []}).model_dump_json(), tool, agent or ""),
            )
            await self._record_stage(conn, cap, old_stage, actor, reason, forced, events)
            got = await self._get_capability(conn, tool, agent)
            assert got is not None
            return got

        return await self._write(tx)

    async def list_rules(self) -> list[Rule]:
        async def q(conn: Conn) -> list[Rule]:
            rows = await _all(conn, "SELECT data FROM rules ORDER BY position")
            return [Rule.model_validate_json(r["data"]) for r in rows]

        return await self._read(q)

    async def set_rules(self, rules: list[Rule], actor: str, reason: str | None = None) -> list[Rule]:
        rules = [Rule.model_validate(r) for r in rules]

        async def tx(conn: Conn, events: EventList) -> list[Rule]:
            await conn.execute("DELETE FROM rules")
            if rules:
                async with conn.cursor() as cur:
                    await cur.executemany(
                        "INSERT INTO rules(position, data) VALUES (%s, %s)",
                        [_params((i, r.model_dump_json())) for i, r in enumerate(rules)],
                    )
            events.append(
                (
                    EventKind.rules_changed,
                    "rules",
                    actor,
                    {"rules": [r.model_dump(mode="json") for r in rules], "reason": reason},
                )
            )
            return rules

        return await self._write(tx)

    # ================================================================= API tokens
    @staticmethod
    def _token_from_row(r: Row) -> TokenInfo:
        return TokenInfo(
            name=r["name"],
            role=TokenRole(r["role"]),
            created_at=_dt(r["created_at"]),
            created_by=r["created_by"],
            revoked_at=_dt(r["revoked_at"]),
        )

    async def create_token(self, name: str, role: TokenRole, token_hash: str, actor: str) -> TokenInfo:
        role = TokenRole(role)

        async def tx(conn: Conn, events: EventList) -> TokenInfo:
            if await _one(conn, "SELECT 1 AS x FROM tokens WHERE name=%s AND revoked_at IS NULL", (name,)):
                raise Conflict(f"an active token named {name!r} exists; revoke it first", name=name)
            row = await _one(
                conn,
                "INSERT INTO tokens(name, role, token_hash, created_at, created_by) "
                "VALUES (%s,%s,%s,%s,%s) RETURNING *",
                (name, role.value, token_hash, _ts(self.clock()), actor),
            )
            assert row is not None
            info = self._token_from_row(row)
            events.append((EventKind.token_created, f"token:{name}", actor, {"name": name, "role": role.value}))
            return info

        return await self._write(tx)

    async def list_tokens(self) -> list[TokenInfo]:
        async def q(conn: Conn) -> list[TokenInfo]:
            rows = await _all(conn, "SELECT * FROM tokens ORDER BY created_at, name, id")
            return [self._token_from_row(r) for r in rows]

        return await self._read(q)

    async def revoke_token(self, name: str, actor: str) -> TokenInfo:
        async def tx(conn: Conn, events: EventList) -> TokenInfo:
            row = await _one(
                conn,
                "UPDATE tokens SET revoked_at=%s WHERE name=%s AND revoked_at IS NULL RETURNING *",
                (_ts(self.clock()), name),
            )
            if row is None:
                raise NotFound(f"no active token named {name!r}", name=name)
            info = self._token_from_row(row)
            events.append((EventKind.token_revoked, f"token:{name}", actor, {"name": name, "role": info.role.value}))
            return info

        return await self._write(tx)

    async def find_token(self, token_hash: str) -> TokenInfo | None:
        async def q(conn: Conn) -> TokenInfo | None:
            r = await _one(conn, "SELECT * FROM tokens WHERE token_hash=%s AND revoked_at IS NULL", (token_hash,))
            return None if r is None else self._token_from_row(r)

        return await self._read(q)

    # ================================================================= events and audit
    @staticmethod
    def _event_from_row(r: Row) -> Event:
        return Event(
            seq=r["seq"],
            at=_dt(r["at"]),
            kind=r["kind"],
            subject=r["subject"],
            actor=r["actor"],
            payload=json.loads(r["payload"]),
            prev_hash=r["prev_hash"],
            hash=r["hash"],
        )

    async def events_after(self, seq: int, limit: int = 1000) -> list[Event]:
        async def q(conn: Conn) -> list[Event]:
            rows = await _all(conn, "SELECT * FROM events WHERE seq > %s ORDER BY seq LIMIT %s", (seq, max(1, limit)))
            return [self._event_from_row(r) for r in rows]

        return await self._read(q)

    async def last_seq(self) -> int:
        async def q(conn: Conn) -> int:
            row = await _one(conn, "SELECT COALESCE(MAX(seq), 0) AS seq FROM events")
            assert row is not None
            return int(row["seq"])

        return await self._read(q)

    async def verify_audit(self) -> AuditReport:
        async def q(conn: Conn) -> AuditReport:
            return verify_rows(await _all(conn, "SELECT * FROM events ORDER BY seq"))

        return await self._read(q)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        listener, self._listener = self._listener, None
        pool, self._pool = self._pool, None
        same_loop = self._loop is not None and self._loop is asyncio.get_running_loop()
        if listener is not None and same_loop:
            listener.cancel()
            await asyncio.wait({listener}, timeout=CLOSE_TIMEOUT)  # never hang a shutdown
            if listener.done() and not listener.cancelled():
                listener.exception()  # retrieved, so asyncio does not log it as lost
        if pool is not None and same_loop:
            await pool.close(timeout=CLOSE_TIMEOUT)
