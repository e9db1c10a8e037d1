"""SQLite store: WAL, ``BEGIN IMMEDIATE`` writes, ``synchronous=FULL``, migrations on open.

All SQL runs on one worker thread that owns the connection, so the asyncio loop never blocks on
the database. A second, tiny thread watches ``PRAGMA data_version`` while anyone is waiting for
changes: that is the cross-process change signal (another process's commit shows up within one
tick, about 10 ms) and it costs one cheap pragma per tick only while there are listeners.

``inline=True`` opens the same store for one short-lived process (a CLI command, the Claude Code
hook): no worker thread, each job runs on the caller's thread the moment it is submitted, so a
coroutine of this store finishes without ever suspending and needs no event loop (see
``hitl_tui.backend.local.run_inline``). Writes still go through ``_flush``: same transaction,
same events, same durability.
"""

from __future__ import annotations

import bisect
import errno
import functools
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import Conflict, InvalidInput, NotFound, StoreUnavailable, Unauthorized, decided_conflict
from ..models import (
    MAX_NAME,
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
from .base import GENESIS_HASH, AuditReport, LazyEvent, Store, TokenGrant, event_hash
from .schema import SQLITE_MIGRATIONS

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")
Clock = Callable[[], datetime]

WATCH_INTERVAL = 0.01  # seconds between data_version checks while someone listens
_ID_ZERO = '{"id":0'  # how a request's JSON starts before its id is known (create_request)
RECENT_EVENTS = 2048  # committed event rows kept for the event hub (recent_events), at least


def _ts(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _dumps(obj: Any) -> str:
    return _ENCODER.encode(obj)  # json.dumps with these options, without building an encoder per call


def _row_seq(row: tuple[Any, ...]) -> int:
    return int(row[0])


def _event_from_tuple(r: tuple[Any, ...]) -> Event:
    """An event row as _append_events wrote it: (seq, at, kind, subject, actor, payload, prev, hash)."""
    seq, at, kind, subject, actor, payload, prev, h = r
    return Event(
        seq=seq,
        at=_dt(at),
        kind=kind,
        subject=subject,
        actor=actor,
        payload=json.loads(payload),
        prev_hash=prev,
        hash=h,
    )


# ================================================================= idempotency keys
# A key stands for one call: the same agent, tool and arguments (summary, context, risk and the
# rest may differ). Filed again while its request is pending, approved or denied, it answers that
# request (a denial stays denied); once that request expired or was cancelled, a filing that asks
# for it (RequestCreate.renew_expired) files a new one, which takes the key over (others are answered
# with the expired or cancelled request). The old row keeps its key in a retired form that no key can equal (it
# is longer than any): RETIRED_KEY + "<old id>:" + key, which reads back as the key itself. So the
# old request still shows the key it was filed with, its events are untouched, and the column
# stays UNIQUE (no schema change). Shared with the PostgreSQL store.
RETIRED_KEY = "retired:" + "~" * (MAX_NAME + 1 - len("retired:"))
REFILED_STATUSES = frozenset({RequestStatus.expired, RequestStatus.cancelled})


def retired_key(key: str, request_id: int) -> str:
    """What the row of request ``request_id`` keeps of ``key`` once a new request took it over."""
    return f"{RETIRED_KEY}{request_id}:{key}"


def stored_key(value: str | None) -> str | None:
    """An ``idempotency_key`` column as the request shows it (a retired key as the key itself)."""
    if value is None or len(value) <= MAX_NAME or not value.startswith(RETIRED_KEY):
        return value
    return value[len(RETIRED_KEY) :].split(":", 1)[1]


def search_words(search: str | None) -> list[str]:
    """The words of a request search, lowercased: a request matches when each is in its tool, agent
    or summary ("add index" finds "Add an index"). At most 16 words."""
    return [w.lower() for w in (search or "").split()][:16]


def message_event_payload(esc: Escalation) -> dict[str, Any]:
    """An ``escalation.message`` event: the thread's fields, its message count and the new message,
    not every message again (a thread of n messages would log n²/2 of them: an agent looping on
    "still stuck" grew the audit log quadratically). Readers fetch the thread for the rest."""
    payload = esc.model_dump(mode="json", exclude={"messages"})
    payload["message_count"] = len(esc.messages)
    payload["new_message"] = esc.messages[-1].model_dump(mode="json")
    return payload


def _canonical(value: Any) -> str:
    # 1, 1.0 and true differ here (they are equal as Python values); the order of keys does not
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def key_conflict(existing: ApprovalRequest, key: str, agent: str, tool: str, args: dict[str, Any]) -> Conflict | None:
    """The conflict when a filing with ``key`` is not the call ``existing`` (which that key filed)
    was: another agent, tool or arguments. It names the key, what differs and the request, never
    the values of the arguments."""
    if existing.agent != agent:  # another agent's request: nothing of it is this caller's to read
        return Conflict(
            f"idempotency key {key!r} is already used by another agent's request: a different call needs a "
            "different key"
        )
    differs = []
    if existing.tool != tool:
        differs.append(f"tool {tool!r}")
    if _canonical(existing.args) != _canonical(args):
        old, new = existing.args, args
        names = sorted(
            k
            for k in old.keys() | new.keys()
            if k not in old or k not in new or _canonical(old[k]) != _canonical(new[k])
        )
        shown = ", ".join(repr(n[:40]) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        differs.append(f"other arguments (differing: {shown})" if names else "other arguments")
    if not differs:
        return None
    return Conflict(
        f"idempotency key {key!r} was already used for request {existing.id} ({existing.agent}/{existing.tool}); "
        f"this call has {' and '.join(differs)}: a different call needs a different key",
        id=existing.id,
    )


def _lapsed(req: ApprovalRequest, now: datetime) -> bool:
    """Whether a filing with ``req``'s key files a new request: ``req`` expired (or is past its
    deadline, not yet marked) or was cancelled."""
    if req.status is RequestStatus.pending:
        return req.expires_at is not None and now >= req.expires_at
    return req.status in REFILED_STATUSES


def _keyed(existing: ApprovalRequest, f: _Filing) -> tuple[Any, BaseException | None]:
    """A filing whose idempotency key filed ``existing`` (still in force): that request, or a
    conflict (as create_request)."""
    assert f.key is not None
    conflict = key_conflict(existing, f.key, f.agent, f.tool, json.loads(f.row[2]))
    return (None, conflict) if conflict is not None else (existing, None)


_REQUEST_COLUMNS = (
    "INSERT INTO requests(agent, tool, args, summary, context, risk, risk_rank, confidence, policy_reason, "
    "irreversible, status, created_at, expires_at, idempotency_key, required_approvals, approvals) VALUES "
)
_REQUEST_VALUES = "(?,?,?,?,?,?,?,?,?,?,'pending',?,?,?,?,'[]')"


@functools.lru_cache(maxsize=256)
def _insert_requests_sql(n: int) -> str:
    return _REQUEST_COLUMNS + ",".join([_REQUEST_VALUES] * n)


@functools.lru_cache(maxsize=512)
def _insert_events_sql(n: int) -> str:
    return "INSERT INTO events(seq, at, kind, subject, actor, payload, prev_hash, hash) VALUES " + ",".join(
        ["(?,?,?,?,?,?,?,?)"] * n
    )


def _system_clock() -> datetime:
    return datetime.now(UTC)


class ChangeNotifier:
    """Fans the newest sequence number out to asyncio waiters on any loop, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[int], int]] = []

    @property
    def seq(self) -> int:
        return self._seq

    @property
    def listening(self) -> bool:
        return bool(self._waiters)

    def publish(self, seq: int) -> None:
        with self._lock:
            if seq <= self._seq:
                return
            self._seq = seq
            ready = [w for w in self._waiters if w[2] < seq]
            self._waiters = [w for w in self._waiters if w[2] >= seq]
        for loop, fut, _ in ready:
            try:
                loop.call_soon_threadsafe(_resolve, fut, seq)
            except RuntimeError:  # that loop is closed
                pass

    async def wait(self, after: int, timeout: float) -> int:
        import asyncio  # not at module level: an inline store (a CLI command) never loads asyncio

        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        with self._lock:
            if self._seq > after:
                return self._seq
            entry = (loop, fut, after)
            self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            return self._seq
        finally:
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)


@dataclass(slots=True)
class _Filing:
    """A new request as ``create_request`` prepared it, so that ``_flush`` can insert the filings
    of one batch together: one statement for their rows and one for their events, instead of a
    savepoint and two statements each. (Every statement gives up the GIL while SQLite works and
    must win it back from the event loop's thread: under load, those waits made most of a batch.)"""

    row: tuple[Any, ...]  # the INSERT's parameters
    token: TokenGrant | None
    key: str | None  # idempotency key
    agent: str
    tool: str
    actor: str  # of the event
    rest: str  # the event's payload after its id


@dataclass(slots=True)
class _Job:
    kind: str  # "write": fn(conn, events) inside the shared transaction; "call": fn(*args)
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    fut: Future[Any] | _Reply
    filing: _Filing | None = None  # a create_request write: fn does it alone, _file_together with others


class _Reply:
    """The outcome of a job whose caller awaits it on an event loop. The worker does not wake the
    loop once per job: outcomes wait in the store's outbox and go over in one
    ``call_soon_threadsafe`` per batch phase (reads, then the commit), however many jobs it held.
    It answers to the three ``concurrent.futures.Future`` methods the worker uses."""

    __slots__ = ("fut", "loop", "outbox")

    def __init__(self, fut: asyncio.Future[Any], loop: asyncio.AbstractEventLoop, outbox: list[Any]) -> None:
        self.fut = fut
        self.loop = loop
        self.outbox = outbox

    def set_running_or_notify_cancel(self) -> bool:
        return not self.fut.cancelled()  # a caller that gave up before the job started: skip it

    def set_result(self, value: Any) -> None:
        self.outbox.append((self.loop, self.fut, value, None))

    def set_exception(self, exc: BaseException) -> None:
        self.outbox.append((self.loop, self.fut, None, exc))


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    """On the caller's loop: hand each job its outcome (unless its caller stopped waiting)."""
    for fut, value, exc in outcomes:
        if not fut.done():
            if exc is None:
                fut.set_result(value)
            else:
                fut.set_exception(exc)


def _resolve(fut: asyncio.Future[int], seq: int) -> None:
    if not fut.done():
        fut.set_result(seq)


class SQLiteStore(Store):
    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock | None = None,
        prevent_self_review: bool = True,
        busy_timeout: float = 60.0,
        inline: bool = False,
    ) -> None:
        """``busy_timeout``: the longest a write waits for another connection's lock before it
        fails (``StoreUnavailable``, so callers fail closed) instead of hanging. ``inline``: no
        worker thread; every call runs on the caller's thread (see the module docstring)."""
        self.path = Path(path).expanduser()
        self.busy_timeout = busy_timeout
        self.url = f"sqlite:///{self.path}"
        self.clock: Clock = clock or _system_clock  # type: ignore[method-assign]
        self._inode: tuple[int, int] | None = None
        self.prevent_self_review = prevent_self_review
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._outbox: list[Any] = []  # outcomes for event loops, sent per batch phase (_deliver)
        self._head: tuple[int, str] | None = None  # the chain's last (seq, hash) in a write batch (_flush)
        self._tx_rows: list[tuple[Any, ...]] = []  # event rows of the write batch in progress
        self._tx_grants: set[TokenGrant] = set()  # token grants found active in the write batch in progress
        self._recent: list[tuple[Any, ...]] = []  # event rows this process committed lately (recent_events)
        self._recent_lock = threading.Lock()
        #: write batches committed, the writes in them (mean batch size = writes / batches) and the
        #: time their COMMITs took (the fsync, mostly)
        self.write_batches = 0
        self.writes_committed = 0
        self.commit_seconds = 0.0
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self.notifier = ChangeNotifier()
        self._watcher: threading.Thread | None = None
        self._watch_stop = threading.Event()
        self.inline = inline
        self._worker: threading.Thread | None = None
        if not inline:
            self._worker = threading.Thread(target=self._work, name="hitl-sqlite", daemon=True)
            self._worker.start()
        try:
            self._submit("call", self._open, ()).result()
        except (sqlite3.Error, OSError) as exc:
            self._jobs.put(None)
            if inline and self._conn is not None:
                self._conn.close()
                self._conn = None
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise StoreUnavailable(f"cannot open store {self.path}: {detail}") from None

    # ================================================================= plumbing
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _open(self) -> None:
        if str(self.path) != ":memory:":
            self._create_private()
        conn = self._connect()
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal" and str(self.path) != ":memory:":
            raise sqlite3.OperationalError(f"could not switch {self.path} to WAL (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        self._conn = conn
        self._migrate(conn)
        if str(self.path) != ":memory:":
            st = os.stat(self.path)
            self._inode = (st.st_dev, st.st_ino)
        row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        self.notifier.publish(int(row[0]))

    def _create_private(self) -> None:
        """A new store is readable by its owner only: requests carry agents' arguments (commands,
        addresses, sometimes secrets). SQLite gives its -wal and -shm files the database file's
        mode. The default data directory is created (0700); another missing directory is an error,
        as a typo in --store / HITL_STORE must not quietly start a store nobody reviews."""
        parent = self.path.parent
        if not parent.exists():
            from ..config import default_store_path

            if parent != default_store_path().parent:
                raise OSError(errno.ENOENT, f"directory {parent} does not exist (create it, or check the path)")
            parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            pass

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version >= len(SQLITE_MIGRATIONS):
            return  # the schema is current: one pragma read, no transaction
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for i, script in enumerate(SQLITE_MIGRATIONS[version:], start=version + 1):
                for stmt in _split_sql(script):
                    conn.execute(stmt)
                conn.execute(f"PRAGMA user_version = {i}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # All SQL runs on one worker thread that owns the connection. Consecutive writes queued while
    # a commit is in flight are grouped into one transaction (each in its own SAVEPOINT, so one
    # failing write rolls back alone): one fsync acknowledges many writes, and every write is
    # durable (synchronous=FULL) before its caller hears back.
    def _submit(self, kind: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> Future[Any]:
        fut: Future[Any] = Future()
        if not self.inline:
            self._jobs.put(_Job(kind, fn, args, fut))
        elif kind == "write":  # inline: a batch of one, on this thread
            self._flush([_Job(kind, fn, args, fut)])
        elif fut.set_running_or_notify_cancel():
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:
                fut.set_exception(exc)
        return fut

    async def _run(self, fn: Callable[..., T], *args: Any, filing: _Filing | None = None) -> T:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        kind, job_fn, job_args = ("write", args[0], ()) if fn == self._write else ("call", fn, args)
        try:
            if self.inline:  # it runs now, on this thread: return without suspending
                return self._submit(kind, job_fn, job_args).result()  # type: ignore[no-any-return]
            import asyncio

            loop = asyncio.get_running_loop()
            fut: asyncio.Future[T] = loop.create_future()
            self._jobs.put(_Job(kind, job_fn, job_args, _Reply(fut, loop, self._outbox), filing))
            return await fut
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"store error ({self.path}): {exc}") from exc
        except UnicodeEncodeError:  # a lone surrogate (say, invalid UTF-8 from a shell argument)
            raise InvalidInput("the text is not valid Unicode (it holds an unpaired surrogate)") from None

    def _write(self, fn: Callable[[sqlite3.Connection, list[tuple[Any, ...]]], T]) -> T:
        """Marker: ``_run(self._write, tx)`` queues ``tx`` as a write (see ``_flush``)."""
        raise AssertionError("writes go through _run")

    def _work(self) -> None:
        stop = False
        while not stop:
            job = self._jobs.get()
            if job is None:
                break
            batch = [job]
            while len(batch) < 256:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            # Jobs in one batch were queued concurrently (a caller awaits each job before it
            # sends the next), so their order among themselves carries no meaning: run the reads
            # first, then commit every write of the batch together -- one fsync for all of them.
            writes = []
            for j in batch:
                if j.kind == "write":
                    writes.append(j)
                elif j.fut.set_running_or_notify_cancel():
                    try:
                        j.fut.set_result(j.fn(*j.args))
                    except BaseException as exc:
                        j.fut.set_exception(exc)
            self._deliver()  # the reads' answers go out before the commit's fsync
            self._flush(writes)
            self._deliver()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _deliver(self) -> None:
        """Send the outbox's outcomes to their loops: one wake-up per loop, not one per job."""
        if not self._outbox:
            return
        by_loop: dict[Any, list[tuple[Any, Any, BaseException | None]]] = {}
        for loop, fut, value, exc in self._outbox:
            by_loop.setdefault(loop, []).append((fut, value, exc))
        self._outbox.clear()
        for loop, outcomes in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, outcomes)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass

    def _flush(self, writes: list[_Job]) -> None:
        # A write whose caller gave up before it started is skipped; once started it completes.
        writes = [j for j in writes if j.fut.set_running_or_notify_cancel()]
        if not writes:
            return
        conn = self._conn
        if conn is None:
            for j in writes:
                j.fut.set_exception(StoreUnavailable("the store is closed"))
            return
        try:
            self._begin(conn, self.busy_timeout)
        except BaseException as exc:
            for j in writes:
                j.fut.set_exception(exc)
            return
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        last = 0
        self._head = None  # the chain's last (seq, hash): read once per transaction, then carried
        self._tx_rows = []
        self._tx_grants.clear()
        one_by_one = writes
        filings = [j for j in writes if j.filing is not None]
        if len(filings) > 1:
            try:
                one_by_one, last = self._file_together(conn, filings, outcomes)
            except BaseException as exc:  # SQLite rolled the whole transaction back
                for j in writes:
                    j.fut.set_exception(exc)
                return
            one_by_one += [j for j in writes if j.filing is None]
        for j in one_by_one:
            conn.execute("SAVEPOINT w")
            events: list[tuple[Any, ...]] = []
            head, rows = self._head, len(self._tx_rows)
            try:
                result = j.fn(conn, events)
                last = max(last, self._append_events(conn, events))
                conn.execute("RELEASE w")
                outcomes.append((j, result, None))
            except BaseException as exc:
                if not conn.in_transaction:  # SQLite rolled the whole transaction back
                    for other in writes:
                        other.fut.set_exception(exc)
                    return
                conn.execute("ROLLBACK TO w")
                conn.execute("RELEASE w")
                self._head = head  # this write's events are gone with its savepoint
                del self._tx_rows[rows:]
                outcomes.append((j, None, exc))
        started = time.perf_counter()
        try:
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for j in writes:
                j.fut.set_exception(exc)
            return
        self.commit_seconds += time.perf_counter() - started
        self.write_batches += 1
        self.writes_committed += len(writes)
        if self._tx_rows:
            with self._recent_lock:
                self._recent.extend(self._tx_rows)
                if len(self._recent) > 2 * RECENT_EVENTS:
                    del self._recent[:-RECENT_EVENTS]
            self._tx_rows = []
        if last:
            self.notifier.publish(last)
        for j, result, exc in outcomes:
            if exc is None:
                j.fut.set_result(result)
            else:
                j.fut.set_exception(exc)

    def _file_together(
        self, conn: sqlite3.Connection, jobs: list[_Job], outcomes: list[tuple[_Job, Any, BaseException | None]]
    ) -> tuple[list[_Job], int]:
        """Insert the new requests of ``jobs`` with one statement and their events with another,
        inside the open transaction; settle what can be settled without writing (a refused token,
        an idempotency key filed before). Returns the jobs left to run one by one (a key repeated
        in the batch; all of them if anything fails here, rolled back) and the last event seq."""
        conn.execute("SAVEPOINT filings")
        head, rows = self._head, len(self._tx_rows)
        settled: list[tuple[_Job, Any, BaseException | None]] = []
        later: list[_Job] = []
        last = 0
        try:
            refused: dict[TokenGrant, BaseException] = {}
            todo: list[_Job] = []
            for j in jobs:
                f = j.filing
                assert f is not None
                if f.token is not None and f.token not in refused:
                    try:
                        self._check_grant(conn, f.token)
                    except Unauthorized as exc:
                        refused[f.token] = exc
                if f.token is not None and f.token in refused:
                    settled.append((j, None, refused[f.token]))
                else:
                    todo.append(j)
            keys = sorted({j.filing.key for j in todo if j.filing is not None and j.filing.key is not None})
            filed: dict[str, ApprovalRequest] = {}
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for r in conn.execute(f"SELECT * FROM requests WHERE idempotency_key IN ({marks})", chunk):
                    filed[r["idempotency_key"]] = self._request_from_row(r)
            fresh: list[_Job] = []
            seen: set[str] = set()
            now = self.clock()
            for j in todo:
                f = j.filing
                assert f is not None
                if f.key is not None and f.key in filed:
                    answer = _keyed(filed[f.key], f)
                    if answer[1] is None and _lapsed(filed[f.key], now):
                        later.append(j)  # expired or cancelled: one by one (marked expired, or renewed)
                    else:
                        settled.append((j, *answer))
                elif f.key is not None and f.key in seen:
                    later.append(j)  # the same new key twice: the second finds the first, one by one
                else:
                    if f.key is not None:
                        seen.add(f.key)
                    fresh.append(j)
            if fresh:
                before = conn.total_changes
                cur = conn.execute(_insert_requests_sql(len(fresh)), [p for j in fresh for p in j.filing.row])  # type: ignore[union-attr]
                if conn.total_changes - before != len(fresh) or cur.lastrowid is None:
                    raise AssertionError("a filing batch did not insert one row per filing")
                # AUTOINCREMENT hands the rows of one statement consecutive ids, in order
                first = int(cur.lastrowid) - len(fresh) + 1
                events = []
                for rid, j in enumerate(fresh, start=first):
                    f = j.filing
                    assert f is not None
                    events.append((EventKind.request_created, f"request:{rid}", f.actor, f'{{"id":{rid}{f.rest}'))
                    settled.append((j, rid, None))
                last = self._append_events(conn, events)
            conn.execute("RELEASE filings")
        except BaseException:
            if not conn.in_transaction:
                raise
            conn.execute("ROLLBACK TO filings")
            conn.execute("RELEASE filings")
            self._head = head
            del self._tx_rows[rows:]
            self._tx_grants.clear()
            return jobs, 0  # each the ordinary way, where a failure stays with its own write
        outcomes.extend(settled)
        return later, last

    @staticmethod
    def _begin(conn: sqlite3.Connection, budget: float) -> None:
        # busy_timeout covers lock waits; a stubborn SQLITE_BUSY (returned without waiting) is
        # retried, but only within the same budget: a lock held for longer fails, it never hangs.
        give_up = time.monotonic() + budget
        attempt = 0
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() >= give_up:
                    raise
            attempt += 1
            time.sleep(min(0.05 * attempt, 0.5, max(0.0, give_up - time.monotonic())))

    def _append_events(self, conn: sqlite3.Connection, events: list[tuple[Any, ...]]) -> int:
        """Chain ``events`` (kind, subject, actor, payload: a JSON-able object or its JSON text) onto
        the log, inside the open write transaction."""
        if not events:
            return 0
        if self._head is None:  # BEGIN IMMEDIATE holds the write lock: no one else appends until COMMIT
            row = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
            self._head = (int(row[0]), row[1]) if row else (0, GENESIS_HASH)
        seq, prev = self._head
        at = _ts(self.clock())
        rows = []
        for kind, subject, actor, payload in events:
            seq += 1
            text = payload if isinstance(payload, str) else _dumps(payload)
            h = event_hash(prev, seq, at, str(kind), subject, actor, text)
            rows.append((seq, at, str(kind), subject, actor, text, prev, h))
            prev = h
        for i in range(0, len(rows), 500):  # one statement per 500 rows (each statement costs a GIL round trip)
            chunk = rows[i : i + 500]
            conn.execute(_insert_events_sql(len(chunk)), [v for r in chunk for v in r])
        self._head = (seq, prev)
        self._tx_rows.extend(rows)
        return seq

    def recent_events(self, after_seq: int) -> list[LazyEvent] | None:
        # Rows this process committed, in seq order; other processes' commits leave gaps between
        # them, so only a run that starts right after ``after_seq`` and has no gap is the log.
        with self._recent_lock:
            rows = self._recent
            if not rows or rows[-1][0] <= after_seq:
                return None
            i = bisect.bisect_left(rows, after_seq + 1, key=_row_seq)
            if rows[i][0] != after_seq + 1:
                return None
            end = i + 1
            while end < len(rows) and rows[end][0] == rows[end - 1][0] + 1:
                end += 1
            run = rows[i:end]
        return [LazyEvent(r[0], r[2], r[3], functools.partial(_event_from_tuple, r)) for r in run]

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert self._conn is not None
        return fn(self._conn)

    # ================================================================= change signal
    def _ensure_watcher(self) -> None:
        if self._watcher is not None and self._watcher.is_alive():
            return
        self._watch_stop.clear()
        self._watcher = threading.Thread(target=self._watch, name="hitl-sqlite-watch", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        try:
            conn = self._connect()
        except sqlite3.Error:
            return
        try:
            last_version = None
            idle_since = time.monotonic()
            while not self._watch_stop.is_set():
                if self.notifier.listening:
                    idle_since = time.monotonic()
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                    if version != last_version:
                        last_version = version
                        row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
                        self.notifier.publish(int(row[0]))
                elif time.monotonic() - idle_since > 5.0:
                    break  # nobody listening for a while: stop; the next waiter restarts us
                self._watch_stop.wait(WATCH_INTERVAL)
        except sqlite3.Error:
            pass
        finally:
            conn.close()

    async def check(self) -> None:
        def probe(conn: sqlite3.Connection) -> None:
            if self._inode is not None:
                try:
                    st = os.stat(self.path)
                except OSError as exc:
                    raise StoreUnavailable(f"the store file {self.path} is gone: {exc.strerror}") from None
                if (st.st_dev, st.st_ino) != self._inode:
                    raise StoreUnavailable(f"the store file {self.path} was replaced")
            conn.execute("SELECT 1").fetchone()

        await self._run(self._read, probe)

    async def wait_for_change(self, after_seq: int, timeout: float) -> int:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        self._ensure_watcher()
        return await self.notifier.wait(after_seq, timeout)

    # ================================================================= requests
    def _request_from_row(self, r: sqlite3.Row) -> ApprovalRequest:
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

    def _get_request(self, conn: sqlite3.Connection, request_id: int) -> ApprovalRequest:
        row = conn.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()
        if row is None:
            raise NotFound(f"no request with id {request_id}", id=request_id)
        return self._request_from_row(row)

    async def create_request(
        self, data: RequestCreate, *, actor: str | None = None, token: TokenGrant | None = None
    ) -> ApprovalRequest:
        return (await self.create_request_json(data, actor=actor, token=token))[0]

    async def create_request_json(
        self, data: RequestCreate, *, actor: str | None = None, token: TokenGrant | None = None
    ) -> tuple[ApprovalRequest, str]:
        # Everything but the id is known before the write: the request and its event payload are
        # built here, on the caller's thread, as _request_from_row would read them back (the same
        # columns through their stored forms), and the store's thread only inserts the rows and
        # splices the id into the payload. That keeps the write transaction, which every queued
        # write waits for, short.
        created = _ts(self.clock())
        assert created is not None
        expires = created + data.timeout_s if data.timeout_s else None
        args = _dumps(data.args)
        req = ApprovalRequest(
            id=0,
            agent=data.agent,
            tool=data.tool,
            args=json.loads(args),
            summary=data.summary,
            context=data.context,
            risk=data.risk,
            confidence=data.confidence,
            policy_reason=data.policy_reason,
            irreversible=data.irreversible,
            status=RequestStatus.pending,
            created_at=_dt(created),
            expires_at=_dt(expires),
            idempotency_key=data.idempotency_key,
            required_approvals=data.required_approvals,
            approvals=[],
        )
        payload = req.model_dump_json()
        if not payload.startswith(_ID_ZERO):  # the id leads the model's fields
            raise AssertionError(f"unexpected request JSON: {payload[:40]!r}")
        rest = payload[len(_ID_ZERO) :]
        row = (
            data.agent,
            data.tool,
            args,
            data.summary,
            data.context,
            data.risk.value,
            RISK_ORDER[data.risk],
            data.confidence,
            data.policy_reason,
            int(data.irreversible),
            created,
            expires,
            data.idempotency_key,
            data.required_approvals,
        )
        who = actor or data.agent

        def tx(conn: sqlite3.Connection, events: list[tuple[Any, ...]]) -> ApprovalRequest | int:
            if token is not None:
                self._check_grant(conn, token)
            if data.idempotency_key is not None:
                found = conn.execute(
                    "SELECT * FROM requests WHERE idempotency_key = ?", (data.idempotency_key,)
                ).fetchone()
                if found is not None:
                    existing = self._request_from_row(found)
                    conflict = key_conflict(existing, data.idempotency_key, data.agent, data.tool, req.args)
                    if conflict is not None:
                        raise conflict
                    existing = self._expire_if_due(conn, existing, self.clock(), events)
                    if existing.status not in REFILED_STATUSES or not data.renew_expired:
                        return existing
                    # it expired or was cancelled: file a new request, which takes the key over
                    conn.execute(
                        "UPDATE requests SET idempotency_key = ? WHERE id = ?",
                        (retired_key(data.idempotency_key, existing.id), existing.id),
                    )
            cur = conn.execute(
                """INSERT INTO requests(agent, tool, args, summary, context, risk, risk_rank, confidence,
                       policy_reason, irreversible, status, created_at, expires_at, idempotency_key,
                       required_approvals, approvals)
                   VALUES (?,?,?,?,?,?,?,?,?,?,'pending',?,?,?,?,'[]')""",
                row,
            )
            rid = int(cur.lastrowid)  # type: ignore[arg-type]
            events.append((EventKind.request_created, f"request:{rid}", who, f'{{"id":{rid}{rest}'))
            return rid

        filing = _Filing(row, token, data.idempotency_key, data.agent, data.tool, who, rest)
        out = await self._run(self._write, tx, filing=filing)
        if isinstance(out, ApprovalRequest):  # its idempotency key had filed it before
            return out, out.model_dump_json()
        req.id = out
        return req, f'{{"id":{out}{rest}'  # the event's payload: req.model_dump_json(), already made

    def _check_grant(self, conn: sqlite3.Connection, token: TokenGrant) -> None:
        # Once per grant and write transaction: BEGIN IMMEDIATE holds the write lock, so no other
        # connection can revoke the token before COMMIT, and a revocation in this same transaction
        # (revoke_token) forgets what was found.
        if token in self._tx_grants:
            return
        row = conn.execute(
            "SELECT 1 FROM tokens WHERE token_hash=? AND name=? AND role=? AND revoked_at IS NULL",
            (token.token_hash, token.name, token.role.value),
        ).fetchone()
        if row is None:
            raise Unauthorized("the token is not valid (unknown or revoked)")
        self._tx_grants.add(token)

    async def get_request(self, request_id: int) -> ApprovalRequest:
        return await self._run(self._read, lambda c: self._get_request(c, request_id))

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
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(RequestStatus(status).value)
        if agent:
            where.append("agent = ?")
            params.append(agent)
        if tool:
            where.append("tool = ?")
            params.append(tool)
        for s in search_words(search):  # every word, each in the tool, the agent or the summary
            where.append(
                "(instr(lower(tool), ?) > 0 OR instr(lower(agent), ?) > 0 OR instr(lower(COALESCE(summary,'')), ?) > 0)"
            )
            params += [s, s, s]
        clause = ("WHERE " + " AND ".join(where)) if where else ""

        def q(conn: sqlite3.Connection) -> Page:
            total = conn.execute(f"SELECT COUNT(*) FROM requests {clause}", params).fetchone()[0]
            rows = conn.execute(
                f"SELECT * FROM requests {clause} ORDER BY risk_rank DESC, id DESC LIMIT ? OFFSET ?",
                [*params, max(0, limit), max(0, offset)],
            ).fetchall()
            return Page(items=[self._request_from_row(r) for r in rows], total=total)

        return await self._run(self._read, q)

    def _expire_if_due(
        self, conn: sqlite3.Connection, req: ApprovalRequest, now: datetime, events: list[Any]
    ) -> ApprovalRequest:
        if req.status is RequestStatus.pending and req.expires_at is not None and now >= req.expires_at:
            cur = conn.execute(
                "UPDATE requests SET status='expired', decided_at=?, decided_by=NULL, decision_reason=? "
                "WHERE id=? AND status='pending'",
                (_ts(req.expires_at), "no decision before the deadline", req.id),
            )
            if cur.rowcount == 1:
                req = self._get_request(conn, req.id)
                events.append((EventKind.request_expired, f"request:{req.id}", "system", req.model_dump(mode="json")))
        return req

    async def decide(self, request_id: int, decision: DecisionIn, reviewer: str) -> ApprovalRequest:
        if not reviewer:
            raise InvalidInput("a decision needs the reviewer's name")

        def tx(conn: sqlite3.Connection, events: list[Any]) -> ApprovalRequest | Conflict:
            now = self.clock()
            req = self._get_request(conn, request_id)
            req = self._expire_if_due(conn, req, now, events)
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
                cur = conn.execute(
                    "UPDATE requests SET status=?, decided_at=?, decided_by=?, decision_reason=?, edited_args=?, "
                    "approvals=? WHERE id=? AND status='pending'",
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
                cur = conn.execute(
                    "UPDATE requests SET approvals=? WHERE id=? AND status='pending'", (votes_json, req.id)
                )
                kind = EventKind.request_voted
            if cur.rowcount != 1:  # cannot happen under BEGIN IMMEDIATE; refuse rather than guess
                raise Conflict(f"request {req.id} changed while deciding; try again", id=req.id)
            req = self._get_request(conn, req.id)
            payload = req.model_dump(mode="json")
            payload["vote"] = vote.model_dump(mode="json")
            events.append((kind, f"request:{req.id}", reviewer, payload))
            return req

        # A conflict found after expiring in the same transaction must still commit the expiry,
        # so the transaction returns the error and we raise it after commit.
        result = await self._run(self._write, tx)
        if isinstance(result, Conflict):
            raise result
        return result

    async def cancel_request(self, request_id: int, actor: str, reason: str | None = None) -> ApprovalRequest:
        def tx(conn: sqlite3.Connection, events: list[Any]) -> ApprovalRequest | Conflict:
            req = self._get_request(conn, request_id)
            req = self._expire_if_due(conn, req, self.clock(), events)
            if req.status is not RequestStatus.pending:
                if req.status is RequestStatus.cancelled:
                    return req
                return decided_conflict(req.status.value, req.decided_by, req.decided_at, req.id)
            conn.execute(
                "UPDATE requests SET status='cancelled', decided_at=?, decided_by=?, decision_reason=? "
                "WHERE id=? AND status='pending'",
                (_ts(self.clock()), actor, reason, req.id),
            )
            req = self._get_request(conn, req.id)
            events.append((EventKind.request_cancelled, f"request:{req.id}", actor, req.model_dump(mode="json")))
            return req

        result = await self._run(self._write, tx)
        if isinstance(result, Conflict):
            raise result
        return result

    async def expire_due(self, now: datetime | None = None) -> list[ApprovalRequest]:
        def tx(conn: sqlite3.Connection, events: list[Any]) -> list[ApprovalRequest]:
            at = now or self.clock()
            rows = conn.execute(
                "SELECT * FROM requests WHERE status='pending' AND expires_at IS NOT NULL AND expires_at <= ?",
                (_ts(at),),
            ).fetchall()
            out = []
            for r in rows:
                req = self._expire_if_due(conn, self._request_from_row(r), at, events)
                if req.status is RequestStatus.expired:
                    out.append(req)
            return out

        return await self._run(self._write, tx)

    # ================================================================= escalations
    def _get_escalation(self, conn: sqlite3.Connection, escalation_id: int) -> Escalation:
        r = conn.execute("SELECT * FROM escalations WHERE id = ?", (escalation_id,)).fetchone()
        if r is None:
            raise NotFound(f"no escalation with id {escalation_id}", id=escalation_id)
        msgs = conn.execute(
            "SELECT author, role, text, at FROM escalation_messages WHERE escalation_id = ? ORDER BY id",
            (escalation_id,),
        ).fetchall()
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

    async def create_escalation(self, data: EscalationCreate) -> Escalation:
        def tx(conn: sqlite3.Connection, events: list[Any]) -> Escalation:
            now = _ts(self.clock())
            cur = conn.execute(
                "INSERT INTO escalations(agent, message, context, status, created_at, updated_at, request_id) "
                "VALUES (?,?,?,'open',?,?,?)",
                (data.agent, data.message, data.context, now, now, data.request_id),
            )
            eid = int(cur.lastrowid)
            conn.execute(
                "INSERT INTO escalation_messages(escalation_id, author, role, text, at) VALUES (?,?,?,?,?)",
                (eid, data.agent, MessageRole.agent.value, data.message, now),
            )
            esc = self._get_escalation(conn, eid)
            events.append((EventKind.escalation_opened, f"escalation:{eid}", data.agent, esc.model_dump(mode="json")))
            return esc

        return await self._run(self._write, tx)

    async def get_escalation(self, escalation_id: int) -> Escalation:
        return await self._run(self._read, lambda c: self._get_escalation(c, escalation_id))

    async def list_escalations(
        self, status: EscalationStatus | None = None, *, agent: str | None = None, offset: int = 0, limit: int = 100
    ) -> Page:
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(EscalationStatus(status).value)
        if agent:
            where.append("agent = ?")
            params.append(agent)
        clause = ("WHERE " + " AND ".join(where)) if where else ""

        def q(conn: sqlite3.Connection) -> Page:
            total = conn.execute(f"SELECT COUNT(*) FROM escalations {clause}", params).fetchone()[0]
            ids = conn.execute(
                f"SELECT id FROM escalations {clause} ORDER BY (status IN ('open','answered')) DESC, "
                f"updated_at DESC, id DESC LIMIT ? OFFSET ?",
                [*params, max(0, limit), max(0, offset)],
            ).fetchall()
            return Page(items=[self._get_escalation(conn, r[0]) for r in ids], total=total)

        return await self._run(self._read, q)

    async def post_message(self, escalation_id: int, text: str, author: str, role: MessageRole) -> Escalation:
        if not text:
            raise InvalidInput("a message needs text")

        def tx(conn: sqlite3.Connection, events: list[Any]) -> Escalation:
            esc = self._get_escalation(conn, escalation_id)
            if esc.status in (EscalationStatus.resolved, EscalationStatus.taken_over) and role is MessageRole.agent:
                raise Conflict(f"escalation {escalation_id} is {esc.status.value}; the agent can no longer post to it")
            if esc.status is EscalationStatus.resolved:
                raise Conflict(f"escalation {escalation_id} is resolved", id=escalation_id)
            now = _ts(self.clock())
            conn.execute(
                "INSERT INTO escalation_messages(escalation_id, author, role, text, at) VALUES (?,?,?,?,?)",
                (escalation_id, author, MessageRole(role).value, text, now),
            )
            new_status = esc.status
            if role is MessageRole.human and esc.status is EscalationStatus.open:
                new_status = EscalationStatus.answered
            elif role is MessageRole.agent and esc.status is EscalationStatus.answered:
                new_status = EscalationStatus.open  # the agent asks again
            conn.execute(
                "UPDATE escalations SET status=?, updated_at=? WHERE id=?", (new_status.value, now, escalation_id)
            )
            esc = self._get_escalation(conn, escalation_id)
            payload = message_event_payload(esc)
            events.append((EventKind.escalation_message, f"escalation:{escalation_id}", author, payload))
            return esc

        return await self._run(self._write, tx)

    async def set_escalation_status(
        self, escalation_id: int, status: EscalationStatus, actor: str, note: str | None = None
    ) -> Escalation:
        status = EscalationStatus(status)

        def tx(conn: sqlite3.Connection, events: list[Any]) -> Escalation:
            esc = self._get_escalation(conn, escalation_id)
            if esc.status is EscalationStatus.resolved and status is not EscalationStatus.resolved:
                raise Conflict(f"escalation {escalation_id} is already resolved", id=escalation_id)
            if esc.status is status:
                return esc
            now = _ts(self.clock())
            conn.execute("UPDATE escalations SET status=?, updated_at=? WHERE id=?", (status.value, now, escalation_id))
            esc = self._get_escalation(conn, escalation_id)
            payload = esc.model_dump(mode="json")
            payload["note"] = note
            events.append((EventKind.escalation_status, f"escalation:{escalation_id}", actor, payload))
            return esc

        return await self._run(self._write, tx)

    # ================================================================= review items
    @staticmethod
    def _review_from_row(r: sqlite3.Row) -> ReviewItem:
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

    def _get_review(self, conn: sqlite3.Connection, review_id: int) -> ReviewItem:
        r = conn.execute("SELECT * FROM reviews WHERE id = ?", (review_id,)).fetchone()
        if r is None:
            raise NotFound(f"no review item with id {review_id}", id=review_id)
        return self._review_from_row(r)

    async def log_review(self, data: ReviewCreate) -> ReviewItem:
        def tx(conn: sqlite3.Connection, events: list[Any]) -> ReviewItem:
            cur = conn.execute(
                "INSERT INTO reviews(agent, tool, args, result, result_length, created_at, reviewed, request_id) "
                "VALUES (?,?,?,?,?,?,0,?)",
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
            item = self._get_review(conn, int(cur.lastrowid))
            events.append((EventKind.review_logged, f"review:{item.id}", data.agent, item.model_dump(mode="json")))
            return item

        return await self._run(self._write, tx)

    async def get_review(self, review_id: int) -> ReviewItem:
        return await self._run(self._read, lambda c: self._get_review(c, review_id))

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
        where, params = [], []
        if reviewed is not None:
            where.append("reviewed = ?")
            params.append(int(reviewed))
        if tool:
            where.append("tool = ?")
            params.append(tool)
        if agent:
            where.append("agent = ?")
            params.append(agent)
        if since is not None:
            where.append("created_at >= ?")
            params.append(_ts(since))
        if verdict:
            where.append("verdict = ?")
            params.append(verdict)
        clause = ("WHERE " + " AND ".join(where)) if where else ""

        def q(conn: sqlite3.Connection) -> Page:
            total = conn.execute(f"SELECT COUNT(*) FROM reviews {clause}", params).fetchone()[0]
            rows = conn.execute(
                f"SELECT * FROM reviews {clause} ORDER BY reviewed ASC, id DESC LIMIT ? OFFSET ?",
                [*params, max(0, limit), max(0, offset)],
            ).fetchall()
            return Page(items=[self._review_from_row(r) for r in rows], total=total)

        return await self._run(self._read, q)

    async def mark_review(self, review_id: int, mark: ReviewMark, reviewer: str) -> ReviewItem:
        def tx(conn: sqlite3.Connection, events: list[Any]) -> ReviewItem:
            item = self._get_review(conn, review_id)
            if item.reviewed and item.verdict == mark.verdict and item.note == mark.note and item.reviewer == reviewer:
                return item  # a retry: same answer, no second event
            conn.execute(
                "UPDATE reviews SET reviewed=1, verdict=?, reviewer=?, reviewed_at=?, note=? WHERE id=?",
                (mark.verdict.value, reviewer, _ts(self.clock()), mark.note, review_id),
            )
            item = self._get_review(conn, review_id)
            events.append((EventKind.review_marked, f"review:{review_id}", reviewer, item.model_dump(mode="json")))
            return item

        return await self._run(self._write, tx)

    # ================================================================= capabilities and rules
    def _get_capability(self, conn: sqlite3.Connection, tool: str, agent: str | None) -> Capability | None:
        r = conn.execute("SELECT data FROM capabilities WHERE tool = ? AND agent = ?", (tool, agent or "")).fetchone()
        if r is None:
            return None
        cap = Capability.model_validate_json(r["data"])
        hist = conn.execute(
            "SELECT at, actor, from_stage, to_stage, reason, forced FROM stage_changes "
            "WHERE tool = ? AND agent = ? ORDER BY id",
            (tool, agent or ""),
        ).fetchall()
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
        def q(conn: sqlite3.Connection) -> list[Capability]:
            keys = conn.execute("SELECT tool, agent FROM capabilities ORDER BY tool, agent").fetchall()
            return [c for k in keys if (c := self._get_capability(conn, k[0], k[1] or None)) is not None]

        return await self._run(self._read, q)

    async def get_capability(self, tool: str, agent: str | None = None) -> Capability:
        def q(conn: sqlite3.Connection) -> Capability:
            cap = self._get_capability(conn, tool, agent)
            if cap is None:
                who = f" for agent {agent}" if agent else ""
                raise NotFound(f"no capability {tool!r}{who}", tool=tool)
            return cap

        return await self._run(self._read, q)

    def _record_stage(
        self,
        conn: sqlite3.Connection,
        cap: Capability,
        from_stage: Stage | None,
        actor: str,
        reason: str | None,
        forced: bool,
        events: list[Any],
    ) -> None:
        conn.execute(
            "INSERT INTO stage_changes(tool, agent, at, actor, from_stage, to_stage, reason, forced) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (
                cap.tool,
                cap.agent or "",
                _ts(self.clock()),
                actor,
                from_stage.value if from_stage else None,
                cap.stage.value,
                reason,
                int(forced),
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

        def tx(conn: sqlite3.Connection, events: list[Any]) -> Capability:
            old = self._get_capability(conn, cap.tool, cap.agent)
            data = cap.model_copy(update={"history": []})
            if old is not None and old.stage is not cap.stage:
                check_stage_change(old, cap.stage, force=False)
            conn.execute(
                "INSERT INTO capabilities(tool, agent, data) VALUES (?,?,?) "
                "ON CONFLICT(tool, agent) DO UPDATE SET data=excluded.data",
                (cap.tool, cap.agent or "", data.model_dump_json()),
            )
            if old is None or old.stage is not cap.stage:
                self._record_stage(conn, cap, old.stage if old else None, actor, reason, False, events)
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
            got = self._get_capability(conn, cap.tool, cap.agent)
            assert got is not None
            return got

        return await self._run(self._write, tx)

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

        def tx(conn: sqlite3.Connection, events: list[Any]) -> Capability:
            cap = self._get_capability(conn, tool, agent)
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
            conn.execute(
                "UPDATE capabilities SET data=? WHERE tool=? AND agent=?",
                (cap.model_copy(update={"history": []}).model_dump_json(), tool, agent or ""),
            )
            self._record_stage(conn, cap, old_stage, actor, reason, forced, events)
            got = self._get_capability(conn, tool, agent)
            assert got is not None
            return got

        return await self._run(self._write, tx)

    async def list_rules(self) -> list[Rule]:
        def q(conn: sqlite3.Connection) -> list[Rule]:
            return [Rule.model_validate_json(r[0]) for r in conn.execute("SELECT data FROM rules ORDER BY position")]

        return await self._run(self._read, q)

    async def set_rules(self, rules: list[Rule], actor: str, reason: str | None = None) -> list[Rule]:
        rules = [Rule.model_validate(r) for r in rules]

        def tx(conn: sqlite3.Connection, events: list[Any]) -> list[Rule]:
            conn.execute("DELETE FROM rules")
            conn.executemany(
                "INSERT INTO rules(position, data) VALUES (?, ?)",
                [(i, r.model_dump_json()) for i, r in enumerate(rules)],
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

        return await self._run(self._write, tx)

    # ================================================================= API tokens
    @staticmethod
    def _token_from_row(r: sqlite3.Row) -> TokenInfo:
        return TokenInfo(
            name=r["name"],
            role=TokenRole(r["role"]),
            created_at=_dt(r["created_at"]),
            created_by=r["created_by"],
            revoked_at=_dt(r["revoked_at"]),
        )

    async def create_token(self, name: str, role: TokenRole, token_hash: str, actor: str) -> TokenInfo:
        role = TokenRole(role)

        def tx(conn: sqlite3.Connection, events: list[Any]) -> TokenInfo:
            if conn.execute("SELECT 1 FROM tokens WHERE name=? AND revoked_at IS NULL", (name,)).fetchone():
                raise Conflict(f"an active token named {name!r} exists; revoke it first", name=name)
            conn.execute(
                "INSERT INTO tokens(name, role, token_hash, created_at, created_by) VALUES (?,?,?,?,?)",
                (name, role.value, token_hash, _ts(self.clock()), actor),
            )
            row = conn.execute("SELECT * FROM tokens WHERE token_hash=?", (token_hash,)).fetchone()
            info = self._token_from_row(row)
            events.append((EventKind.token_created, f"token:{name}", actor, {"name": name, "role": role.value}))
            return info

        return await self._run(self._write, tx)

    async def list_tokens(self) -> list[TokenInfo]:
        return await self._run(
            self._read,
            lambda c: [self._token_from_row(r) for r in c.execute("SELECT * FROM tokens ORDER BY created_at, name")],
        )

    async def revoke_token(self, name: str, actor: str) -> TokenInfo:
        def tx(conn: sqlite3.Connection, events: list[Any]) -> TokenInfo:
            self._tx_grants.clear()  # later writes in this transaction check their tokens afresh
            row = conn.execute("SELECT rowid, * FROM tokens WHERE name=? AND revoked_at IS NULL", (name,)).fetchone()
            if row is None:
                raise NotFound(f"no active token named {name!r}", name=name)
            conn.execute("UPDATE tokens SET revoked_at=? WHERE rowid=?", (_ts(self.clock()), row["rowid"]))
            info = self._token_from_row(conn.execute("SELECT * FROM tokens WHERE rowid=?", (row["rowid"],)).fetchone())
            events.append((EventKind.token_revoked, f"token:{name}", actor, {"name": name, "role": info.role.value}))
            return info

        return await self._run(self._write, tx)

    async def find_token(self, token_hash: str) -> TokenInfo | None:
        def q(conn: sqlite3.Connection) -> TokenInfo | None:
            r = conn.execute("SELECT * FROM tokens WHERE token_hash=? AND revoked_at IS NULL", (token_hash,)).fetchone()
            return None if r is None else self._token_from_row(r)

        return await self._run(self._read, q)

    # ================================================================= events and audit
    @staticmethod
    def _event_from_row(r: sqlite3.Row) -> Event:
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
        def q(conn: sqlite3.Connection) -> list[Event]:
            rows = conn.execute(
                "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, max(1, limit))
            ).fetchall()
            return [self._event_from_row(r) for r in rows]

        return await self._run(self._read, q)

    async def last_seq(self) -> int:
        return await self._run(
            self._read, lambda c: int(c.execute("SELECT COALESCE(MAX(seq),0) FROM events").fetchone()[0])
        )

    async def verify_audit(self) -> AuditReport:
        return await self._run(self._read, lambda c: verify_rows(c.execute("SELECT * FROM events ORDER BY seq")))

    async def close(self) -> None:
        if self._closed:
            return
        if self._worker is None and self._watcher is None:  # inline, nothing to wait for
            self.close_sync()
            return
        self._closed = True
        self._watch_stop.set()
        self._jobs.put(None)
        import asyncio

        await asyncio.to_thread(self._join)

    def _join(self) -> None:
        if self._worker is not None:
            self._worker.join(30)
        elif self._conn is not None:  # inline: the connection lives on the caller's thread
            self._conn.close()
            self._conn = None
        if self._watcher is not None:
            self._watcher.join(5)

    def close_sync(self) -> None:
        """Close from synchronous code (no running loop)."""
        if self._closed:
            return
        self._closed = True
        self._watch_stop.set()
        self._jobs.put(None)
        self._join()


def verify_rows(rows: Iterable[Any]) -> AuditReport:
    """Walk the chain: every event's hash must match its content and the previous hash, and
    sequence numbers must run 1, 2, 3, ... without a gap (a deleted row breaks both)."""
    problems: list[tuple[int, str]] = []
    prev = GENESIS_HASH
    expected = 1
    checked = 0
    for r in rows:
        checked += 1
        seq = int(r["seq"])
        if seq != expected:
            problems.append((seq, f"sequence jumps from {expected - 1} to {seq}: events missing or reordered"))
        if r["prev_hash"] != prev:
            problems.append((seq, "previous-hash link broken: an earlier event was edited, deleted or reordered"))
        h = event_hash(r["prev_hash"], seq, float(r["at"]), r["kind"], r["subject"], r["actor"], r["payload"])
        if h != r["hash"]:
            problems.append((seq, "content does not match its hash: this event was edited"))
        prev = r["hash"]
        expected = seq + 1
    return AuditReport(ok=not problems, checked=checked, problems=problems)


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
