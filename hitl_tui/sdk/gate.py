"""The agent-side gate: every tool call goes through the policy, and waits for a human when told to.

::

    gate = Gate.connect(agent="deploy-bot", store="~/hitl.db")
    result = await gate.run("deploy", {"env": "prod"}, deploy)   # deploy(**args) or a refusal

    @gate.tool("send_email")
    async def send_email(to: str, body: str) -> str: ...

Routes (decided by the policy through ``backend.evaluate``):

* autonomous: the tool runs; autonomous review: it runs and is logged for after-the-fact review;
* approval: a request is filed, notifiers are told, and the gate waits (event-driven, through the
  backend) for the decision; the tool then runs with the reviewer's edited arguments, if any;
* blocked: refused, naming the rule or stage; escalate: an escalation is opened for a human.

Everything that goes wrong while asking or waiting ends as :class:`NotApproved` (fail closed).
Exceptions raised by the tool itself propagate unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ..backend.base import Backend
from ..config import Settings
from ..errors import HitlError, InvalidInput
from ..models import (
    ApprovalRequest,
    Decision,
    Escalation,
    EscalationCreate,
    EscalationStatus,
    MessageRole,
    RequestCreate,
    RequestStatus,
    ReviewCreate,
    ReviewItem,
    Route,
)
from .escalation import EscalationOutcome, EscalationResult, find_trigger, outcome_of
from .notify import Notifier, escalation_notification, notifiers_from_settings, notify_all, request_notification

if TYPE_CHECKING:  # imported where used: `hitl request` and the Claude Code hook need neither (start-up time)
    from .digest import Digest
    from .plan import ActionLike, ParsedPlan, PlanReport

log = logging.getLogger(__name__)

T = TypeVar("T")

RefusalStatus = Literal["denied", "expired", "blocked", "error", "escalated", "cancelled"]
WAIT_GRACE_S = 30.0  # beyond the request's own deadline, before the gate gives up on the backend
CANCEL_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class NotApproved:
    """A structured refusal: the tool did not run, and why."""

    action: str
    status: RefusalStatus
    reason: str
    request_id: int | None = None
    escalation_id: int | None = None
    decided_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"error": "Action not approved", "action": self.action, "status": self.status, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.action} not approved ({self.status}): {self.reason}"


@dataclass
class Clearance:
    """The outcome of asking: whether the tool may run, with which arguments, and the paper trail."""

    tool: str
    args: dict[str, Any]
    status: Literal[
        "autonomous", "approved", "pending", "denied", "expired", "blocked", "error", "escalated", "cancelled"
    ]
    reason: str
    decision: Decision | None = None
    request: ApprovalRequest | None = None
    escalation: Escalation | None = None
    log_review: bool = False

    @property
    def allowed(self) -> bool:
        return self.status in ("autonomous", "approved")

    def refusal(self) -> NotApproved:
        if self.allowed or self.status == "pending":
            raise ValueError(f"a {self.status} call has no refusal")
        return NotApproved(
            action=self.tool,
            status=self.status,  # type: ignore[arg-type]
            reason=self.reason,
            request_id=self.request.id if self.request is not None else None,
            escalation_id=self.escalation.id if self.escalation is not None else None,
            decided_by=self.request.decided_by if self.request is not None else None,
        )


def _check_args(args: Mapping[str, Any] | None) -> dict[str, Any]:
    if args is None:
        return {}
    if not isinstance(args, Mapping):
        raise InvalidInput(f"tool arguments must be a mapping, got {type(args).__name__}")
    out = dict(args)
    try:
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"tool arguments must be JSON-serialisable: {exc}") from None
    return out


def _check_confidence(confidence: int | None) -> None:
    if confidence is None:
        return
    if isinstance(confidence, bool) or not isinstance(confidence, int) or not 0 <= confidence <= 100:
        raise InvalidInput(f"confidence must be a whole number from 0 to 100, got {confidence!r}")


def _one_line(exc: ValueError) -> str:
    """A validation error as one line: the first problem and where it is."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        more = f" (and {len(errors()) - 1} more)" if len(errors()) > 1 else ""
        msg = str(first["msg"]).removeprefix("Value error, ")
        return (f"{loc}: {msg}" if loc else msg) + more
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _explain(exc: BaseException) -> str:
    if isinstance(exc, HitlError):
        return exc.message
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _call(fn: Callable[..., Any], args: dict[str, Any]) -> Any:
    result = fn(**args)
    if inspect.isawaitable(result):
        result = await result
    return result


def command_prefix_for(settings: Settings | None) -> str:
    """How a reviewer on this machine would address the same backend from a shell."""
    import shlex

    if settings is None:
        return "hitl"
    if settings.server:
        return f"hitl --server {shlex.quote(settings.server)}"
    if settings.store:
        return f"hitl --store {shlex.quote(settings.store)}"
    return "hitl"


class Gate:
    """Bind a backend and an agent name; route each tool call through the policy."""

    def __init__(
        self,
        backend: Backend,
        agent: str,
        *,
        notifiers: Iterable[Notifier] = (),
        settings: Settings | None = None,
        command_prefix: str | None = None,
        owns_backend: bool = False,
    ) -> None:
        if not agent or len(agent) > 200:
            raise InvalidInput("the agent name must be 1 to 200 characters")
        self.backend = backend
        self.agent = agent
        self.notifiers = list(notifiers)
        self.settings = settings or Settings()
        self.command_prefix = command_prefix or command_prefix_for(settings)
        self._owns_backend = owns_backend

    # ----------------------------------------------------------------- construction
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
    ) -> Gate:
        """Open the configured backend (file, ``HITL_*`` environment, then these arguments).

        ``notifiers`` defaults to those of the ``[notify]`` config section.
        """
        settings = load_gate_settings(store=store, server=server, token=token, config=config)
        from ..backend import open_backend

        backend = open_backend(settings)
        chosen = notifiers_from_settings(settings.notify) if notifiers is None else notifiers
        return cls(backend, agent, notifiers=chosen, settings=settings, owns_backend=True)

    async def close(self) -> None:
        if self._owns_backend:
            await self.backend.close()

    async def __aenter__(self) -> Gate:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----------------------------------------------------------------- asking
    async def evaluate(
        self, tool: str, args: Mapping[str, Any] | None = None, confidence: int | None = None
    ) -> Decision:
        """What the policy says about this call, without filing anything."""
        _check_confidence(confidence)
        return await self.backend.evaluate(tool, _check_args(args), confidence, agent=self.agent)

    async def check(
        self,
        tool: str,
        args: Mapping[str, Any] | None = None,
        *,
        confidence: int | None = None,
        summary: str | None = None,
        context: str | None = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        wait: bool = True,
        renew_expired: bool = False,
    ) -> Clearance:
        """Ask for permission (and wait for a human when the policy says so); run nothing.

        With ``wait=False`` an approval request is filed but not waited for: the clearance has
        ``status == "pending"`` and the request (when it was already decided, e.g. a retry with the
        same idempotency key, the clearance says how). ``renew_expired``: when the request the
        idempotency key filed expired or was cancelled, ask again with a new one (default: the
        clearance says "expired" / "cancelled").
        """
        if not tool or len(tool) > 200:
            raise InvalidInput("the tool name must be 1 to 200 characters")
        call_args = _check_args(args)
        _check_confidence(confidence)
        if timeout is not None and not timeout > 0:
            raise InvalidInput(f"timeout must be a positive number of seconds, got {timeout!r}")
        try:
            decision = await self.backend.evaluate(tool, call_args, confidence, agent=self.agent)
        except Exception as exc:
            return Clearance(tool, call_args, "error", f"could not evaluate the policy: {_explain(exc)}")

        route = decision.route
        if route in (Route.autonomous, Route.review):
            return Clearance(tool, call_args, "autonomous", decision.reason, decision, log_review=route is Route.review)
        if route is Route.blocked:
            return Clearance(tool, call_args, "blocked", decision.reason, decision)
        if route is Route.escalate:
            return await self._escalate_call(tool, call_args, decision, confidence, summary, context)
        return await self._ask(
            tool, call_args, decision, confidence, summary, context, timeout, idempotency_key, wait, renew_expired
        )

    async def _ask(
        self,
        tool: str,
        args: dict[str, Any],
        decision: Decision,
        confidence: int | None,
        summary: str | None,
        context: str | None,
        timeout: float | None,
        idempotency_key: str | None,
        wait: bool,
        renew_expired: bool = False,
    ) -> Clearance:
        timeout_s = timeout or decision.timeout_s or self.settings.policy.default_timeout_s
        try:
            data = RequestCreate(
                agent=self.agent,
                tool=tool,
                args=args,
                summary=summary,
                context=context,
                risk=decision.risk,
                confidence=confidence,
                policy_reason=decision.reason,
                irreversible=decision.irreversible,
                timeout_s=timeout_s,
                idempotency_key=idempotency_key,
                renew_expired=renew_expired,
            )
        except ValueError as exc:
            raise InvalidInput(f"cannot file the request: {_one_line(exc)}") from None
        try:
            req = await (self._file_withdrawn_on_stop(data) if wait else self.backend.create_request(data))
        except Exception as exc:
            return Clearance(tool, args, "error", f"could not file the approval request: {_explain(exc)}", decision)
        if req.is_pending:
            try:
                await notify_all(self.notifiers, request_notification(req, self.command_prefix))  # never raises
            except BaseException:  # a stop (CancelledError) while announcing: as one during the wait
                if wait:
                    await self._cancel_quietly(req.id, "the agent stopped waiting")
                raise
        if not wait:  # filed to be decided later: nothing withdraws it
            return self._settled(tool, args, decision, req, pending_ok=True)
        import asyncio  # only here: a CLI call that files without waiting never loads asyncio (start-up time)

        try:
            req = await self.backend.wait_for_request(req.id, timeout=timeout_s + WAIT_GRACE_S)
        except asyncio.CancelledError:
            await self._cancel_quietly(req.id, "the agent stopped waiting")
            raise
        except Exception as exc:
            await self._cancel_quietly(req.id, "the agent lost its connection to the backend")
            return Clearance(
                tool, args, "error", f"lost the backend while waiting for a decision: {_explain(exc)}", decision, req
            )
        if req.is_pending:  # the backend never expired it: give up rather than wait forever
            await self._cancel_quietly(req.id, "no decision arrived")
            return Clearance(tool, args, "expired", "no decision arrived before the deadline", decision, req)
        return self._settled(tool, args, decision, req)

    def _settled(
        self, tool: str, args: dict[str, Any], decision: Decision, req: ApprovalRequest, pending_ok: bool = False
    ) -> Clearance:
        by = f" by {req.decided_by}" if req.decided_by else ""
        why = f": {req.decision_reason}" if req.decision_reason else ""
        status = req.status
        if status is RequestStatus.approved:
            return Clearance(
                tool,
                req.effective_args,
                "approved",
                f"approved{by}{why}",
                decision,
                req,
                log_review=decision.review_after,
            )
        if status is RequestStatus.pending and pending_ok:
            return Clearance(tool, args, "pending", "waiting for a decision", decision, req)
        if status is RequestStatus.denied:
            return Clearance(tool, args, "denied", f"denied{by}{why}", decision, req)
        if status is RequestStatus.expired:
            return Clearance(
                tool, args, "expired", req.decision_reason or "no decision before the deadline", decision, req
            )
        if status is RequestStatus.cancelled:
            return Clearance(tool, args, "cancelled", f"cancelled{by}{why}", decision, req)
        return Clearance(tool, args, "error", f"unexpected request status {status.value}", decision, req)

    async def _file_withdrawn_on_stop(self, data: RequestCreate) -> ApprovalRequest:
        """File ``data``; a stop (Ctrl-C, SIGTERM, a cancelled task) meanwhile lets the filing finish
        (shielded) and then withdraws it, as a stop during the wait does."""
        import asyncio

        filing = asyncio.ensure_future(self.backend.create_request(data))
        try:
            return await asyncio.shield(filing)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self._cancel_quietly((await filing).id, "the agent stopped waiting")
            raise

    async def _cancel_quietly(self, request_id: int, reason: str) -> None:
        import asyncio

        try:
            await asyncio.shield(
                asyncio.wait_for(self.backend.cancel_request(request_id, self.agent, reason), CANCEL_TIMEOUT_S)
            )
        except BaseException as exc:
            log.info("could not cancel request %s: %s", request_id, _explain(exc))

    async def _escalate_call(
        self,
        tool: str,
        args: dict[str, Any],
        decision: Decision,
        confidence: int | None,
        summary: str | None,
        context: str | None,
    ) -> Clearance:
        detail = {"tool": tool, "args": args, "confidence": confidence, "policy": decision.reason}
        if context:
            detail["context"] = context
        what = summary or f"run {tool}"
        message = f"Please take over: {what}. {decision.reason}"
        try:
            esc = await self.backend.create_escalation(
                EscalationCreate(
                    agent=self.agent,
                    message=message[:100_000],
                    context=json.dumps(detail, indent=2, ensure_ascii=False)[:100_000],
                )
            )
        except Exception as exc:
            return Clearance(tool, args, "error", f"could not open an escalation: {_explain(exc)}", decision)
        await notify_all(self.notifiers, escalation_notification(esc, self.command_prefix))
        return Clearance(
            tool,
            args,
            "escalated",
            f"escalated to a human (escalation {esc.id}): {decision.reason}",
            decision,
            escalation=esc,
        )

    # ----------------------------------------------------------------- running
    async def run(
        self,
        tool: str,
        args: Mapping[str, Any] | None,
        fn: Callable[..., Any],
        *,
        confidence: int | None = None,
        summary: str | None = None,
        context: str | None = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Run ``fn(**args)`` if the policy (or a human) allows it; else return :class:`NotApproved`."""
        clearance = await self.check(
            tool,
            args,
            confidence=confidence,
            summary=summary,
            context=context,
            timeout=timeout,
            idempotency_key=idempotency_key,
        )
        if not clearance.allowed:
            return clearance.refusal()
        try:
            result = await _call(fn, clearance.args)
        except BaseException as exc:
            import asyncio

            if clearance.log_review and not isinstance(exc, asyncio.CancelledError):
                await self.record(clearance, f"raised {type(exc).__name__}: {exc}")
            raise
        if clearance.log_review:
            await self.record(clearance, result)
        return result

    async def record(self, clearance: Clearance, result: Any) -> ReviewItem | None:
        """Log a call that ran for after-the-fact review. Never raises (the action already ran)."""
        try:
            return await self.log_review(
                clearance.tool,
                clearance.args,
                result,
                request_id=clearance.request.id if clearance.request is not None else None,
            )
        except Exception as exc:
            log.error("could not log %s for review: %s", clearance.tool, _explain(exc))
            return None

    async def log_review(
        self, tool: str, args: Mapping[str, Any] | None, result: Any, *, request_id: int | None = None
    ) -> ReviewItem:
        """Log an action that ran, for a human to review later (result cut to the configured length)."""
        text = result if isinstance(result, str) else str(result)
        data = ReviewCreate(
            agent=self.agent,
            tool=tool,
            args=_check_args(args),
            result=text,
            result_limit=self.settings.review.result_limit,
            request_id=request_id,
        )
        return await self.backend.log_review(data)

    def tool(
        self,
        name: str | None = None,
        *,
        confidence: int | None = None,
        summary: str | Callable[[dict[str, Any]], str] | None = None,
        timeout: float | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]]:
        """Decorator: calls of the function go through :meth:`run` (the result may be a refusal)."""

        def wrap(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
            tool_name = name or fn.__name__
            bind = _binder(fn)

            @functools.wraps(fn)
            async def gated(*a: Any, **kw: Any) -> Any:
                args = bind(*a, **kw)
                text = summary(args) if callable(summary) else summary
                return await self.run(tool_name, args, fn, confidence=confidence, summary=text, timeout=timeout)

            gated.tool_name = tool_name  # type: ignore[attr-defined]
            return gated

        return wrap

    # ----------------------------------------------------------------- confidence plans
    async def plan(
        self,
        actions: str | ParsedPlan | Iterable[ActionLike],
        tools: Mapping[str, Callable[..., Any]] | Callable[[str, dict[str, Any]], Any],
        *,
        stop_on_refusal: bool = False,
        timeout: float | None = None,
    ) -> PlanReport:
        """Route every action by its confidence and run those allowed.

        ``tools`` maps tool names to functions (called with ``**args``), or is one function
        ``tools(tool, args)``. A tool missing from the mapping is refused, never guessed.
        """
        from .plan import PlanWalk

        walk = PlanWalk(actions, tools, stop_on_refusal=stop_on_refusal, by_name=_call_by_name)
        for step in walk:
            clearance = await self.check(step.action.tool, step.action.args, **step.check_kwargs, timeout=timeout)
            if walk.refused(step, clearance):
                continue
            result = await _call(step.fn, clearance.args)
            if clearance.log_review:
                await self.record(clearance, result)
            walk.ran(step, clearance, result)
        return walk.report

    # ----------------------------------------------------------------- escalation
    def needs_escalation(self, text: str) -> bool:
        """Whether agent output contains one of the configured trigger phrases (any case)."""
        return self.escalation_trigger(text) is not None

    def escalation_trigger(self, text: str) -> str | None:
        return find_trigger(text, self.settings.escalation.triggers)

    async def escalate(
        self,
        message: str,
        context: str | None = None,
        *,
        timeout: float | None = None,
        wait: bool = True,
        request_id: int | None = None,
    ) -> EscalationResult:
        """Open an escalation thread, tell the humans, and wait for a reply or a take-over."""
        try:
            esc = await self.backend.create_escalation(
                EscalationCreate(agent=self.agent, message=message, context=context, request_id=request_id)
            )
        except ValueError as exc:
            raise InvalidInput(f"cannot escalate: {_one_line(exc)}") from None
        except Exception as exc:
            return EscalationResult(
                EscalationOutcome.error, None, None, f"could not open an escalation: {_explain(exc)}"
            )
        await notify_all(self.notifiers, escalation_notification(esc, self.command_prefix))
        if not wait:
            return EscalationResult(EscalationOutcome.posted, esc.id, None, None, esc)
        return await self.wait_for_guidance(esc.id, len(esc.messages), timeout=timeout)

    async def wait_for_guidance(
        self, escalation_id: int, seen_messages: int | None = None, *, timeout: float | None = None
    ) -> EscalationResult:
        """Wait for a human message after the first ``seen_messages`` (default: all so far)."""
        import asyncio

        limit = self.settings.escalation.timeout_s if timeout is None else timeout
        try:
            if seen_messages is None:
                seen_messages = len((await self.backend.get_escalation(escalation_id)).messages)
            esc = await self.backend.wait_for_escalation(escalation_id, seen_messages, timeout=limit)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return EscalationResult(
                EscalationOutcome.error, escalation_id, None, f"lost the backend while waiting: {_explain(exc)}"
            )
        return outcome_of(esc, seen_messages, limit)

    async def follow_up(
        self, escalation_id: int, text: str, *, wait: bool = True, timeout: float | None = None
    ) -> EscalationResult:
        """Post another agent message to the thread; by default wait for the next human reply."""
        try:
            esc = await self.backend.post_message(escalation_id, text, self.agent, MessageRole.agent)
        except Exception as exc:
            try:
                current = await self.backend.get_escalation(escalation_id)
            except Exception:
                current = None
            if current is not None and current.status in (EscalationStatus.taken_over, EscalationStatus.resolved):
                return outcome_of(current, len(current.messages), timeout)
            return EscalationResult(EscalationOutcome.error, escalation_id, None, f"could not post: {_explain(exc)}")
        if not wait:
            return EscalationResult(EscalationOutcome.posted, escalation_id, None, None, esc)
        return await self.wait_for_guidance(escalation_id, len(esc.messages), timeout=timeout)

    async def resolve(self, escalation_id: int, note: str | None = None) -> Escalation:
        """The agent closes its own escalation (e.g. after the guidance worked)."""
        return await self.backend.set_escalation_status(escalation_id, EscalationStatus.resolved, self.agent, note)

    # ----------------------------------------------------------------- review digest
    async def digest(self, since: Any = "24h") -> Digest:
        from .digest import build_digest, parse_since

        when = parse_since(since) if isinstance(since, str) else since
        return await build_digest(self.backend, when)


async def _call_by_name(dispatch: Callable[[str, dict[str, Any]], Any], tool: str, **args: Any) -> Any:
    result = dispatch(tool, args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _binder(fn: Callable[..., Any]) -> Callable[..., dict[str, Any]]:
    """Turn a call's positional and keyword arguments into one dict of named arguments."""
    sig = inspect.signature(fn)

    def bind(*a: Any, **kw: Any) -> dict[str, Any]:
        bound = sig.bind(*a, **kw)
        bound.apply_defaults()
        out: dict[str, Any] = {}
        for pname, value in bound.arguments.items():
            kind = sig.parameters[pname].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                out.update(value)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                if value:
                    raise InvalidInput(
                        f"{fn.__name__}: *{pname} cannot be passed through the gate; use named arguments"
                    )
            else:
                out[pname] = value
        return out

    return bind


def load_gate_settings(
    *,
    store: str | Path | None = None,
    server: str | None = None,
    token: str | None = None,
    config: str | Path | None = None,
) -> Settings:
    """Config file, then ``HITL_*`` environment, then these arguments; an explicit store wins
    over a server from the environment (and vice versa)."""
    from ..config import load_settings

    if store is not None and server is not None:
        raise InvalidInput("choose a store (embedded) or a server (shared), not both")
    settings = load_settings(
        Path(config).expanduser() if config is not None else None,
        {"store": str(store) if store is not None else None, "server": server, "token": token},
    )
    if store is not None:
        settings = settings.model_copy(update={"server": None})
    elif server is not None:
        settings = settings.model_copy(update={"store": None})
    return settings
