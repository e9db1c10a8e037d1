"""``LocalBackend``: a store in-process, plus the policy, the event hub and waiting.

The event hub is the one reader of the change feed in a process: it sleeps on the store's change
signal, reads "events after N" once per wake, and fans each event out to every subscriber (console
panes, the server's SSE streams) and to every waiter on that event's subject (agents waiting for a
decision). 10,000 waiting agents cost one read per change, not 10,000.

A short-lived process that makes one round of calls and waits for nothing (a CLI command, the
Claude Code hook deciding an autonomous tool) opens ``LocalBackend(SQLiteStore(path, inline=True),
hub=False)`` and drives its coroutines with :func:`run_inline`: the same methods, the same policy
engine and the same store code, without an event loop, a store thread or the hub (and without
importing asyncio: start-up time).
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Coroutine, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import HitlError, InvalidInput, StoreUnavailable
from ..models import (
    TERMINAL_STATUSES,
    ApprovalRequest,
    Capability,
    Decision,
    DecisionIn,
    Escalation,
    EscalationCreate,
    EscalationStatus,
    Event,
    MessageRole,
    Page,
    PolicySettings,
    RequestCreate,
    RequestStatus,
    ReviewCreate,
    ReviewItem,
    ReviewMark,
    Rule,
    Stage,
)
from ..store.base import AuditReport, LazyEvent, Store, TokenGrant
from .base import Backend

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)
T = TypeVar("T")

HUB_IDLE_CHECK = 1.0  # seconds: how often an idle hub re-checks the store's health and deadlines


def default_actor() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers)
        return "reviewer"


def run_inline(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end on this thread, without an event loop: for the calls of a
    ``hub=False`` backend on an inline store, which never suspend. A coroutine that does suspend
    (it would wait for something) is closed and raises ``HitlError``: callers fail closed."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise HitlError("internal error: a single-shot backend call tried to wait (that needs an event loop)")


async def _wait_flag(flag: asyncio.Event, timeout: float | None) -> None:
    """Wait for ``flag`` up to ``timeout``. (Not ``asyncio.wait_for``: on Python 3.11 it can
    swallow a cancellation that arrives just as the flag is set.)"""
    import asyncio

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await flag.wait()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class LocalBackend(Backend):
    def __init__(
        self,
        store: Store,
        *,
        actor: str | None = None,
        settings: PolicySettings | None = None,
        expire_sweep: bool = True,
        hub: bool = True,
    ) -> None:
        """``hub=False``: single-shot calls only (see the module docstring): the policy is read
        from the store on each evaluation, and waiting or subscribing raises ``HitlError``."""
        self.store = store
        self._hub_enabled = hub
        self.actor = actor or default_actor()
        self.settings = settings or PolicySettings()
        self.expire_sweep = expire_sweep
        self._engine: Any = None
        self._hub: asyncio.Task[None] | None = None
        self._hub_loop: asyncio.AbstractEventLoop | None = None
        self._hub_seq = 0
        self._hub_ready: asyncio.Event | None = None
        #: subscriber queues, each with the event kinds it wants (None: all)
        self._subs: dict[asyncio.Queue[Event | _Failure], frozenset[str] | None] = {}
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._failure: BaseException | None = None

    def describe(self) -> str:
        return self.store.url

    def _now(self) -> datetime:
        clock = getattr(self.store, "clock", None)
        return clock() if clock else datetime.now(UTC)

    # ================================================================= event hub
    def _need_hub(self) -> None:
        if not self._hub_enabled:
            raise HitlError("internal error: this backend was opened for single-shot calls: it cannot wait")

    async def _ensure_hub(self) -> None:
        self._need_hub()
        import asyncio

        loop = asyncio.get_running_loop()
        if self._hub is not None and not self._hub.done() and self._hub_loop is loop:
            assert self._hub_ready is not None
            await self._hub_ready.wait()
            return
        self._hub_loop = loop
        self._hub_ready = asyncio.Event()
        self._failure = None
        self._hub = loop.create_task(self._run_hub(), name="hitl-event-hub")
        await self._hub_ready.wait()
        if self._failure is not None:
            raise StoreUnavailable(f"the store cannot be read: {self._failure}")

    async def _run_hub(self) -> None:
        import asyncio

        assert self._hub_ready is not None
        try:
            self._hub_seq = await self.store.last_seq()
        except BaseException as exc:
            self._fail(exc)
            self._hub_ready.set()
            return
        self._hub_ready.set()
        while True:
            try:
                newest = await self.store.wait_for_change(self._hub_seq, HUB_IDLE_CHECK)
                if newest <= self._hub_seq:
                    await self.store.check()
                    if self.expire_sweep:
                        await self.store.expire_due()
                    continue
                while True:
                    # This process's own commits come from the store's memory (no read, and no
                    # Event built unless a subscriber wants its kind); anything else from the log.
                    recent = self.store.recent_events(self._hub_seq)
                    if recent:
                        for lev in recent:
                            self._hub_seq = lev.seq
                            self._dispatch(lev)
                        continue
                    if self._hub_seq >= newest:
                        break
                    events = await self.store.events_after(self._hub_seq, 1000)
                    for ev in events:
                        self._hub_seq = ev.seq
                        self._dispatch(LazyEvent.of(ev))
                    if len(events) < 1000:
                        break
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                self._fail(exc)
                return

    def _dispatch(self, ev: LazyEvent) -> None:
        kind = ev.kind
        if kind.startswith(("capability.", "rules.")):
            self._engine = None
        for q, kinds in self._subs.items():
            if kinds is None or kind in kinds:
                q.put_nowait(ev.event())
        for flag in self._waiters.get(ev.subject, ()):
            flag.set()

    def _fail(self, exc: BaseException) -> None:
        log.warning("event hub stopped: %s", exc)
        self._failure = exc
        for q in self._subs:
            q.put_nowait(_Failure(exc))
        for flags in self._waiters.values():
            for flag in flags:
                flag.set()

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            exc = self._failure
            if isinstance(exc, HitlError):
                raise StoreUnavailable(f"lost the store while waiting: {exc.message}")
            raise StoreUnavailable(f"lost the store while waiting: {exc}")

    # ================================================================= policy
    async def _policy(self) -> Any:
        from ..policy import PolicyEngine

        if self._hub_enabled:
            with contextlib.suppress(StoreUnavailable):
                await self._ensure_hub()  # keeps the cached engine fresh; without it, reload each time
        engine = self._engine
        if engine is not None and await self.store.last_seq() > self._hub_seq:
            engine = None  # the hub has not seen the newest events yet: they may change the policy
        if engine is None:
            caps = await self.store.list_capabilities()
            rules = await self.store.list_rules()
            try:
                engine = PolicyEngine(caps, rules, self.settings)
            except ValueError as exc:  # stored before patterns were checked on write: fail closed, say why
                raise StoreUnavailable(f"the stored policy cannot be used: {exc}") from None
            if self._hub is not None and not self._hub.done():
                self._engine = engine
        return engine

    async def evaluate(
        self, tool: str, args: dict[str, Any], confidence: int | None = None, agent: str | None = None
    ) -> Decision:
        engine = await self._policy()
        return engine.decide(tool, args, confidence, agent=agent)

    # ================================================================= requests
    async def create_request(self, data: RequestCreate, *, token: TokenGrant | None = None) -> ApprovalRequest:
        """``token``: file only while that bearer token is active (see ``TokenGrant``; the server's)."""
        return await self.store.create_request(data, token=token)

    async def create_request_json(
        self, data: RequestCreate, *, token: TokenGrant | None = None
    ) -> tuple[ApprovalRequest, str]:
        """``create_request`` and the request's JSON (the server's answer), made once."""
        return await self.store.create_request_json(data, token=token)

    async def get_request(self, request_id: int) -> ApprovalRequest:
        return await self.store.get_request(request_id)

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
        return await self.store.list_requests(status, agent=agent, tool=tool, search=search, offset=offset, limit=limit)

    async def decide(self, request_id: int, decision: DecisionIn, reviewer: str | None = None) -> ApprovalRequest:
        return await self.store.decide(request_id, decision, reviewer or self.actor)

    async def cancel_request(
        self, request_id: int, actor: str | None = None, reason: str | None = None
    ) -> ApprovalRequest:
        return await self.store.cancel_request(request_id, actor or self.actor, reason)

    async def _wait_subject(self, subject: str, until_loop_time: float | None) -> None:
        """Sleep until an event on ``subject`` arrives, the hub fails, or the time comes."""
        import asyncio

        flag = asyncio.Event()
        self._waiters[subject].add(flag)
        try:
            timeout = None if until_loop_time is None else max(0.0, until_loop_time - asyncio.get_running_loop().time())
            await _wait_flag(flag, timeout)
        finally:
            flags = self._waiters.get(subject)
            if flags is not None:
                flags.discard(flag)
                if not flags:
                    self._waiters.pop(subject, None)

    async def wait_for_request(self, request_id: int, timeout: float | None = None) -> ApprovalRequest:
        self._need_hub()
        import asyncio

        loop = asyncio.get_running_loop()
        give_up = None if timeout is None else loop.time() + timeout
        subject = f"request:{request_id}"
        await self._ensure_hub()
        while True:
            self._raise_if_failed()
            flag = asyncio.Event()
            self._waiters[subject].add(flag)  # registered before reading: no decision slips between
            try:
                req = await self.store.get_request(request_id)
                if req.status in TERMINAL_STATUSES:
                    return req
                now = self._now()
                if req.expires_at is not None and now >= req.expires_at:
                    await self.store.expire_due(now)
                    continue
                wake = give_up
                if req.expires_at is not None:
                    until_expiry = loop.time() + (req.expires_at - now).total_seconds()
                    wake = until_expiry if wake is None else min(wake, until_expiry)
                if give_up is not None and loop.time() >= give_up:
                    return req
                remaining = None if wake is None else max(0.0, wake - loop.time())
                await _wait_flag(flag, remaining)
            finally:
                flags = self._waiters.get(subject)
                if flags is not None:
                    flags.discard(flag)
                    if not flags:
                        self._waiters.pop(subject, None)

    # ================================================================= escalations
    async def create_escalation(self, data: EscalationCreate) -> Escalation:
        return await self.store.create_escalation(data)

    async def get_escalation(self, escalation_id: int) -> Escalation:
        return await self.store.get_escalation(escalation_id)

    async def list_escalations(
        self, status: EscalationStatus | None = None, *, agent: str | None = None, offset: int = 0, limit: int = 100
    ) -> Page:
        return await self.store.list_escalations(status, agent=agent, offset=offset, limit=limit)

    async def post_message(
        self, escalation_id: int, text: str, author: str | None = None, role: MessageRole = MessageRole.human
    ) -> Escalation:
        return await self.store.post_message(escalation_id, text, author or self.actor, role)

    async def set_escalation_status(
        self, escalation_id: int, status: EscalationStatus, actor: str | None = None, note: str | None = None
    ) -> Escalation:
        return await self.store.set_escalation_status(escalation_id, status, actor or self.actor, note)

    async def wait_for_escalation(
        self, escalation_id: int, seen_messages: int, timeout: float | None = None
    ) -> Escalation:
        self._need_hub()
        import asyncio

        loop = asyncio.get_running_loop()
        give_up = None if timeout is None else loop.time() + timeout
        subject = f"escalation:{escalation_id}"
        await self._ensure_hub()
        while True:
            self._raise_if_failed()
            flag = asyncio.Event()
            self._waiters[subject].add(flag)
            try:
                esc = await self.store.get_escalation(escalation_id)
                if esc.status in (EscalationStatus.taken_over, EscalationStatus.resolved):
                    return esc
                if any(m.role is MessageRole.human for m in esc.messages[seen_messages:]):
                    return esc
                if give_up is not None and loop.time() >= give_up:
                    return esc
                remaining = None if give_up is None else max(0.0, give_up - loop.time())
                await _wait_flag(flag, remaining)
            finally:
                flags = self._waiters.get(subject)
                if flags is not None:
                    flags.discard(flag)
                    if not flags:
                        self._waiters.pop(subject, None)

    # ================================================================= review
    async def log_review(self, data: ReviewCreate) -> ReviewItem:
        return await self.store.log_review(data)

    async def get_review(self, review_id: int) -> ReviewItem:
        return await self.store.get_review(review_id)

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
        return await self.store.list_reviews(
            reviewed, tool=tool, agent=agent, since=since, verdict=verdict, offset=offset, limit=limit
        )

    async def mark_review(self, review_id: int, mark: ReviewMark, reviewer: str | None = None) -> ReviewItem:
        return await self.store.mark_review(review_id, mark, reviewer or self.actor)

    # ================================================================= capabilities / rules
    async def list_capabilities(self) -> list[Capability]:
        return await self.store.list_capabilities()

    async def get_capability(self, tool: str, agent: str | None = None) -> Capability:
        return await self.store.get_capability(tool, agent)

    async def put_capability(self, cap: Capability, actor: str | None = None, reason: str | None = None) -> Capability:
        out = await self.store.put_capability(cap, actor or self.actor, reason)
        self._engine = None
        return out

    async def set_stage(
        self,
        tool: str,
        stage: Stage,
        actor: str | None = None,
        reason: str | None = None,
        *,
        force: bool = False,
        agent: str | None = None,
    ) -> Capability:
        out = await self.store.set_stage(tool, stage, actor or self.actor, reason, force=force, agent=agent)
        self._engine = None
        return out

    async def list_rules(self) -> list[Rule]:
        return await self.store.list_rules()

    async def set_rules(self, rules: list[Rule], actor: str | None = None, reason: str | None = None) -> list[Rule]:
        from ..policy import compile_pattern

        for rule in rules:  # a pattern the policy cannot use would make every later evaluation fail
            try:
                compile_pattern(Rule.model_validate(rule).pattern)
            except ValueError as exc:
                raise InvalidInput(str(exc), pattern=rule.pattern) from None
        out = await self.store.set_rules(rules, actor or self.actor, reason)
        self._engine = None
        return out

    # ================================================================= change feed
    async def last_seq(self) -> int:
        return await self.store.last_seq()

    async def events_after(self, seq: int, limit: int = 1000) -> list[Event]:
        return await self.store.events_after(seq, limit)

    async def subscribe(  # type: ignore[override]
        self, after_seq: int | None = None, *, reconnect: bool = True, kinds: Iterable[str] | None = None
    ) -> AsyncIterator[Event]:
        """``kinds``: only events of these kinds (a follower that counts decisions need not be
        handed every filing); default all. ``reconnect`` changes nothing here: there is no
        connection to lose (a store failure always raises)."""
        self._need_hub()
        import asyncio

        await self._ensure_hub()
        wanted = None if kinds is None else frozenset(str(k) for k in kinds)
        queue: asyncio.Queue[Event | _Failure] = asyncio.Queue()
        self._subs[queue] = wanted
        try:
            last = self._hub_seq if after_seq is None else after_seq
            if after_seq is not None:
                while True:  # the backlog, from the log itself
                    events = await self.store.events_after(last, 1000)
                    for ev in events:
                        last = ev.seq
                        if wanted is None or ev.kind in wanted:
                            yield ev
                    if len(events) < 1000:
                        break
            while True:
                item = await queue.get()
                if isinstance(item, _Failure):
                    raise StoreUnavailable(f"lost the store: {item.exc}")
                if item.seq > last:
                    last = item.seq
                    yield item
        finally:
            self._subs.pop(queue, None)

    async def verify_audit(self) -> AuditReport:
        return await self.store.verify_audit()

    async def close(self) -> None:
        if self._hub is not None and not self._hub.done():
            self._hub.cancel()
            with contextlib.suppress(BaseException):
                await self._hub
        await self.store.close()
