"""``SyncGate``: the gate for agents that are not async.

The async :class:`~hitl_tui.sdk.gate.Gate` lives on a private event loop in a daemon thread, so the
backend's event hub, its waiters and its store connection stay on one loop for the gate's whole
life. Each call is handed to that loop; the tool itself runs in the caller's thread. It works from
any thread, including one whose own event loop is running (that loop is simply blocked while the
call waits, as any synchronous call would block it). ``Ctrl-C`` while waiting cancels the request.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ..models import Decision, Escalation, ReviewItem
from .digest import Digest
from .escalation import EscalationResult
from .gate import CANCEL_TIMEOUT_S, Clearance, Gate, _binder
from .notify import Notifier
from .plan import ActionLike, ParsedPlan, PlanReport, PlanWalk

T = TypeVar("T")


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name="hitl-sync-gate", daemon=True)
        self.thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("a SyncGate cannot be called from inside its own loop; use the async Gate there")
        if not self.thread.is_alive():
            coro.close()
            raise RuntimeError("this SyncGate is closed")
        finished = threading.Event()

        async def guarded() -> T:
            try:
                return await coro
            finally:
                finished.set()

        fut = asyncio.run_coroutine_threadsafe(guarded(), self.loop)
        try:
            return fut.result()
        except BaseException:
            if not fut.done():
                fut.cancel()  # e.g. KeyboardInterrupt: the gate cancels its pending request
                finished.wait(CANCEL_TIMEOUT_S + 1.0)
            raise

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            if threading.current_thread() is not self.thread:
                self.thread.join(timeout=10.0)


class SyncGate:
    """Blocking twin of :class:`Gate`; same methods, same results."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self._loop = _LoopThread()
        self._closed = False

    @classmethod
    def connect(
        cls,
        agent: str,
        *,
        store: str | Path | None = None,
        server: str | None = None,
        token: str | None = None,
        config: str | Path | None = None,
        notifiers: Iterable[Notifier] | None = None,
    ) -> SyncGate:
        return cls(Gate.connect(agent, store=store, server=server, token=token, config=config, notifiers=notifiers))

    @property
    def agent(self) -> str:
        return self.gate.agent

    @property
    def backend(self) -> Any:
        return self.gate.backend

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.call(self.gate.close())
        finally:
            self._loop.stop()

    def __enter__(self) -> SyncGate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- approval gate
    def evaluate(self, tool: str, args: Mapping[str, Any] | None = None, confidence: int | None = None) -> Decision:
        return self._loop.call(self.gate.evaluate(tool, args, confidence))

    def check(self, tool: str, args: Mapping[str, Any] | None = None, **kw: Any) -> Clearance:
        return self._loop.call(self.gate.check(tool, args, **kw))

    def run(self, tool: str, args: Mapping[str, Any] | None, fn: Callable[..., Any], **kw: Any) -> Any:
        """Like :meth:`Gate.run`; ``fn`` runs in the calling thread (a coroutine result is awaited)."""
        clearance = self.check(tool, args, **kw)
        if not clearance.allowed:
            return clearance.refusal()
        return self._execute(clearance, fn)

    def _execute(self, clearance: Clearance, fn: Callable[..., Any]) -> Any:
        try:
            result = fn(**clearance.args)
            if inspect.isawaitable(result):
                result = self._loop.call(_await(result))
        except Exception as exc:
            if clearance.log_review:
                self._loop.call(self.gate.record(clearance, f"raised {type(exc).__name__}: {exc}"))
            raise
        if clearance.log_review:
            self._loop.call(self.gate.record(clearance, result))
        return result

    def tool(
        self,
        name: str | None = None,
        *,
        confidence: int | None = None,
        summary: Any = None,
        timeout: float | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
            tool_name = name or fn.__name__
            bind = _binder(fn)

            @functools.wraps(fn)
            def gated(*a: Any, **kw: Any) -> Any:
                args = bind(*a, **kw)
                text = summary(args) if callable(summary) else summary
                return self.run(tool_name, args, fn, confidence=confidence, summary=text, timeout=timeout)

            gated.tool_name = tool_name  # type: ignore[attr-defined]
            return gated

        return wrap

    def log_review(self, tool: str, args: Mapping[str, Any] | None, result: Any, **kw: Any) -> ReviewItem:
        return self._loop.call(self.gate.log_review(tool, args, result, **kw))

    # ----------------------------------------------------------------- confidence plans
    def plan(
        self,
        actions: str | ParsedPlan | Iterable[ActionLike],
        tools: Mapping[str, Callable[..., Any]] | Callable[[str, dict[str, Any]], Any],
        *,
        stop_on_refusal: bool = False,
        timeout: float | None = None,
    ) -> PlanReport:
        """Like :meth:`Gate.plan`; each tool runs in the calling thread."""
        walk = PlanWalk(actions, tools, stop_on_refusal=stop_on_refusal, by_name=_dispatch)
        for step in walk:
            clearance = self.check(step.action.tool, step.action.args, **step.check_kwargs, timeout=timeout)
            if not walk.refused(step, clearance):
                walk.ran(step, clearance, self._execute(clearance, step.fn))
        return walk.report

    # ----------------------------------------------------------------- escalation
    def needs_escalation(self, text: str) -> bool:
        return self.gate.needs_escalation(text)

    def escalate(self, message: str, context: str | None = None, **kw: Any) -> EscalationResult:
        return self._loop.call(self.gate.escalate(message, context, **kw))

    def wait_for_guidance(self, escalation_id: int, seen_messages: int | None = None, **kw: Any) -> EscalationResult:
        return self._loop.call(self.gate.wait_for_guidance(escalation_id, seen_messages, **kw))

    def follow_up(self, escalation_id: int, text: str, **kw: Any) -> EscalationResult:
        return self._loop.call(self.gate.follow_up(escalation_id, text, **kw))

    def resolve(self, escalation_id: int, note: str | None = None) -> Escalation:
        return self._loop.call(self.gate.resolve(escalation_id, note))

    # ----------------------------------------------------------------- review digest
    def digest(self, since: Any = "24h") -> Digest:
        return self._loop.call(self.gate.digest(since))


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _dispatch(tools: Callable[[str, dict[str, Any]], Any], tool: str, **args: Any) -> Any:
    return tools(tool, args)
