"""Claude Code hooks: every tool call Claude Code makes goes through the gate first.

``hitl hook claude-code`` reads one hook event (JSON) from stdin and answers on stdout.

PreToolUse (before the tool runs) answers ``{"hookSpecificOutput": {"hookEventName": "PreToolUse",
"permissionDecision": ..., "permissionDecisionReason": ..., "updatedInput": ...}}`` and exits 0:

=====================  ================================================================
policy route           answer
=====================  ================================================================
autonomous             ``allow``
autonomous review      ``allow``; the PostToolUse event logs the call *with its result*
                       for after-the-fact review (the tool has not run yet at PreToolUse)
approval               a request is filed and the hook waits (``--timeout``, default 300 s)
                       for a reviewer: approved → ``allow`` (``updatedInput`` carries the
                       reviewer's edited arguments), denied / expired → ``deny``
blocked                ``deny`` naming the rule or stage
escalate               ``deny``: an escalation is opened and a human takes over; Claude is
                       told so (``ask`` would hand the decision back to whoever sits at the
                       Claude Code prompt, bypassing the reviewers)
=====================  ================================================================

Fail closed: bad JSON, an unknown event, an unreachable backend, a store error or running out of
time all answer ``deny`` with the reason, never a silent ``allow``. The whole answer arrives at
most ``timeout + ANSWER_MARGIN_S`` seconds after the hook starts, so configure the hook's own
``timeout`` in ``.claude/settings.json`` above that (Claude Code kills slower hooks).

PostToolUse (after the tool ran) prints nothing and never blocks: when the policy routes the call
to after-the-fact review (``review_after``), it logs the call and the tool's response.

The agent name is ``claude-code:<first 8 characters of the session id>`` unless ``--agent`` names
it, so rules and stages can be scoped to it (see the policy module).

The hook runs before every tool call, so its start-up time counts: :func:`answer_inline` answers
what the policy alone settles (and bad input, and PostToolUse) on a single-shot backend, without
an event loop or the gate's waiting machinery; everything else goes through :func:`handle_event`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..backend.base import Backend
from ..config import Settings
from ..errors import HitlError, InvalidInput
from ..models import Decision, ReviewCreate, ReviewItem, Route
from ..text import sanitise

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 300.0  # how long the hook waits for a reviewer by default
MAX_TIMEOUT_S = 3000.0  # well past Claude Code's default; its own hook timeout must be larger
ANSWER_MARGIN_S = 15.0  # beyond --timeout, for filing, cancelling and printing the answer
REASON_LIMIT = 2000
RESULT_PLACEHOLDER = "(run by Claude Code; the hook did not receive a result)"
PRE_TOOL_USE = "PreToolUse"
POST_TOOL_USE = "PostToolUse"

PermissionDecision = Literal["allow", "deny", "ask"]


class _NeedsGate:
    def __repr__(self) -> str:
        return "NEEDS_GATE"


#: what :func:`answer_inline` returns when it cannot answer alone: call :func:`handle_event`
NEEDS_GATE = _NeedsGate()


class HookInput(BaseModel):
    """The part of a Claude Code hook event the gate reads (unknown fields are kept and ignored)."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    hook_event_name: str
    session_id: str | None = None
    transcript_path: str | None = None
    cwd: str | None = None
    permission_mode: str | None = None
    tool_name: str = Field(min_length=1, max_length=200)
    tool_input: dict[str, Any] = Field(default_factory=dict)
    tool_use_id: str | None = None
    tool_response: Any = None


@dataclass(frozen=True)
class HookDecision:
    """What the PreToolUse hook tells Claude Code."""

    decision: PermissionDecision
    reason: str
    updated_input: dict[str, Any] | None = None

    def to_output(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "hookEventName": PRE_TOOL_USE,
            "permissionDecision": self.decision,
            "permissionDecisionReason": sanitise(self.reason, limit=REASON_LIMIT),
        }
        if self.updated_input is not None:
            out["updatedInput"] = self.updated_input
        return {"hookSpecificOutput": out}


def deny(reason: str) -> HookDecision:
    return HookDecision("deny", f"hitl: {reason}")


def parse_hook_input(raw: str | bytes) -> HookInput:
    """Validate one hook event; :class:`InvalidInput` says what is wrong."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the hook input is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput("the hook input must be a JSON object")
    try:
        return HookInput.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        raise InvalidInput(f"the hook input is not a tool event: {where}: {first['msg']}") from None


def agent_name(hook: HookInput, override: str | None = None) -> str:
    """``--agent`` when given, else ``claude-code:<session id prefix>``."""
    if override:
        return override
    session = (hook.session_id or "").strip()
    return f"claude-code:{session[:8]}" if session else "claude-code"


def check_timeout(value: str | float | None) -> float:
    """Parse ``--timeout`` (seconds); a bad value raises :class:`InvalidInput` (the hook then denies)."""
    if value is None:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"--timeout must be a number of seconds, got {value!r}") from None
    if not 0 < seconds <= MAX_TIMEOUT_S:
        raise InvalidInput(f"--timeout must be greater than 0 and at most {MAX_TIMEOUT_S:g} seconds, got {value!r}")
    return seconds


def _context(hook: HookInput) -> str:
    parts = ["Claude Code"]
    if hook.session_id:
        parts.append(f"session {hook.session_id}")
    if hook.cwd:
        parts.append(f"in {hook.cwd}")
    if hook.permission_mode:
        parts.append(f"(permission mode {hook.permission_mode})")
    if hook.tool_use_id:
        parts.append(f"tool use {hook.tool_use_id}")
    return " ".join(parts)


def _summary(hook: HookInput) -> str | None:
    description = hook.tool_input.get("description")  # Bash and Task calls carry one
    return description[:1000] if isinstance(description, str) and description.strip() else None


def _idempotency_key(hook: HookInput, agent: str) -> str | None:
    # Claude Code may re-run a hook for the same call: reuse the request instead of filing a second.
    if not hook.tool_use_id:
        return None
    return f"claude-code:{agent}:{hook.tool_use_id}"[:200]


async def pre_tool_use(gate: Any, hook: HookInput, timeout: float) -> HookDecision:
    """Route one PreToolUse event through the gate (waiting for a reviewer when needed)."""
    clearance = await gate.check(
        hook.tool_name,
        hook.tool_input,
        summary=_summary(hook),
        context=_context(hook),
        timeout=timeout,
        idempotency_key=_idempotency_key(hook, gate.agent),
        wait=True,
    )
    return _answer(clearance.status, clearance.reason, clearance.log_review, clearance.request, clearance.args)


def _answer(
    status: str, reason: str, log_review: bool = False, req: Any = None, args: dict[str, Any] | None = None
) -> HookDecision:
    """The hook's answer for a gate clearance (its status, reason, request and arguments)."""
    ref = f" (request {req.id})" if req is not None else ""
    if status == "autonomous":
        note = "; logged for review after it runs" if log_review else ""
        return HookDecision("allow", f"hitl: {reason}{note}")
    if status == "approved":
        edited = req is not None and req.edited_args is not None
        if edited:
            return HookDecision("allow", f"hitl: {reason}{ref}; run with the reviewer's edit", args)
        return HookDecision("allow", f"hitl: {reason}{ref}")
    if status == "escalated":
        return deny(f"{reason}. A human takes over this step: do not retry it; wait for instructions.")
    if status == "pending":  # cannot happen with wait=True; never allow it
        return deny(f"no decision yet{ref}")
    return deny(f"{status}: {reason}{ref}")


def _settled_by_policy(decision: Decision) -> HookDecision | None:
    """The answer when the policy alone settles the call, as ``Gate.check`` settles it: the tool
    runs (autonomous, or autonomous with review after it) or it is blocked. None: a human is needed."""
    if decision.route in (Route.autonomous, Route.review):
        return _answer("autonomous", decision.reason, log_review=decision.route is Route.review)
    if decision.route is Route.blocked:
        return _answer("blocked", decision.reason)
    return None


async def post_tool_use(backend: Backend, agent: str, hook: HookInput, settings: Settings) -> ReviewItem | None:
    """Log a call that ran for after-the-fact review, when the policy asks for that."""
    decision = await backend.evaluate(hook.tool_name, hook.tool_input, None, agent=agent)
    if decision.route is not Route.review and not decision.review_after:
        return None
    if hook.tool_response is None:
        result = RESULT_PLACEHOLDER
    elif isinstance(hook.tool_response, str):
        result = hook.tool_response
    else:
        result = json.dumps(hook.tool_response, ensure_ascii=False, default=str)
    data = ReviewCreate(
        agent=agent,
        tool=hook.tool_name,
        args=hook.tool_input,
        result=result,
        result_limit=settings.review.result_limit,
    )
    return await backend.log_review(data)


def _explain(exc: BaseException) -> str:
    if isinstance(exc, HitlError):
        return exc.message
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def handle_event(
    raw: str | bytes,
    backend_factory: Callable[[], Backend],
    *,
    settings: Settings | None = None,
    agent: str | None = None,
    timeout: str | float | None = None,
    notifiers: Any = (),
) -> dict[str, Any] | None:
    """Answer one hook event. Returns the JSON to print (None: print nothing). Never raises
    for a PreToolUse event: every failure becomes a ``deny`` with the reason."""
    import asyncio

    settings = settings or Settings()
    triage = _triage(raw, timeout)
    if isinstance(triage, dict):
        return triage
    hook, seconds = triage
    if hook.hook_event_name == POST_TOOL_USE:
        await _post(backend_factory, hook, agent, settings)
        return None
    try:
        decision = await asyncio.wait_for(
            _pre(backend_factory, hook, agent, seconds, settings, notifiers), seconds + ANSWER_MARGIN_S
        )
    except TimeoutError:
        decision = deny(f"no answer from the approval backend within {seconds + ANSWER_MARGIN_S:g}s")
    except Exception as exc:
        decision = deny(f"error: {_explain(exc)}")
    return decision.to_output()


def answer_inline(
    raw: str | bytes,
    backend_factory: Callable[[], Backend],
    *,
    settings: Settings | None = None,
    agent: str | None = None,
    timeout: str | float | None = None,
) -> dict[str, Any] | _NeedsGate | None:
    """:func:`handle_event` for what needs no waiting, on a single-shot backend (``hub=False``, an
    inline store: its calls run with ``run_inline``, no event loop): bad input, PostToolUse, and a
    PreToolUse call the policy alone settles (it runs, or it is blocked), answered exactly as
    :func:`handle_event` answers it. Returns :data:`NEEDS_GATE` for everything else -- a human is
    needed, the policy cannot be read, the call fails the gate's own checks -- and then
    :func:`handle_event` (with a full backend) files, waits and explains."""
    from ..backend.local import run_inline

    settings = settings or Settings()
    triage = _triage(raw, timeout)
    if isinstance(triage, dict):
        return triage
    hook, _ = triage
    if hook.hook_event_name == POST_TOOL_USE:
        run_inline(_post(backend_factory, hook, agent, settings))
        return None
    who = agent_name(hook, agent)
    if len(who) > 200 or not _json_safe(hook.tool_input):  # the gate refuses these: let it say why
        return NEEDS_GATE
    try:
        decision = run_inline(backend_factory().evaluate(hook.tool_name, hook.tool_input, None, agent=who))
    except Exception:  # the gate reports it (and fails closed)
        return NEEDS_GATE
    answer = _settled_by_policy(decision)
    return NEEDS_GATE if answer is None else answer.to_output()


def _json_safe(args: dict[str, Any]) -> bool:
    try:
        json.dumps(args, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _triage(raw: str | bytes, timeout: str | float | None) -> dict[str, Any] | tuple[HookInput, float]:
    """The ``deny`` to print for bad input, an unknown event or a bad ``--timeout``; else the event
    and the timeout (not checked for PostToolUse, which waits for nothing)."""
    try:
        hook = parse_hook_input(raw)
    except InvalidInput as exc:
        return deny(exc.message).to_output()
    if hook.hook_event_name == POST_TOOL_USE:
        return hook, 0.0
    if hook.hook_event_name != PRE_TOOL_USE:
        return deny(
            f"`hitl hook claude-code` handles PreToolUse and PostToolUse, not {hook.hook_event_name!r}"
        ).to_output()
    try:
        return hook, check_timeout(timeout)
    except InvalidInput as exc:
        return deny(exc.message).to_output()


async def _post(backend_factory: Callable[[], Backend], hook: HookInput, agent: str | None, settings: Settings) -> None:
    try:
        await post_tool_use(backend_factory(), agent_name(hook, agent), hook, settings)
    except Exception as exc:  # the tool already ran: report, never block
        log.error("hitl: could not log %s for review: %s", hook.tool_name, _explain(exc))


async def _pre(
    backend_factory: Callable[[], Backend],
    hook: HookInput,
    agent: str | None,
    timeout: float,
    settings: Settings,
    notifiers: Any,
) -> HookDecision:
    from ..sdk.gate import Gate

    gate = Gate(backend_factory(), agent_name(hook, agent), notifiers=notifiers, settings=settings)
    return await pre_tool_use(gate, hook, timeout)
