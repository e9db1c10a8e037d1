"""OpenAI Agents SDK (``openai-agents``): the policy decides which tool calls pause the run, and the
reviewers decide the paused calls.

::

    approvals = HitlApprovals(Gate.connect(agent="ops-bot"))
    agent = approvals.gate_tools(Agent(name="ops", tools=[deploy, lookup]))
    result = await approvals.run(agent, "ship 1.4 to prod")   # pauses, files requests, resumes

The SDK's contract (checked against openai-agents 0.24): a function tool's ``needs_approval`` may be
an async callable ``(run_context, arguments, call_id) -> bool``; when it returns True the run stops
with ``result.interruptions`` (``ToolApprovalItem``); ``state = result.to_state()``, then
``state.approve(item)`` or ``state.reject(item, rejection_message=...)``, then
``Runner.run(agent, state)`` continues. ``state.to_string()`` / ``RunState.from_string(agent, text)``
store and restore a paused run.

* :meth:`HitlApprovals.needs_approval` asks the policy: autonomous (and autonomous-review) calls
  run, everything else pauses; a policy error pauses too (fail closed).
* :meth:`HitlApprovals.resolve` turns each interruption into an approval request (idempotent per
  call id, so a restarted process finds the same request), waits for the reviewers and approves or
  rejects (the rejection message carries the reason to the model). Blocked calls are rejected without
  a request; escalations open a thread for a human and are rejected.
* The SDK cannot run an approved call with different arguments, so a reviewer's edit is sent back as
  a rejection telling the model to call again with exactly the edited arguments; that one call is
  then pre-approved (in this process).
* Calls the policy routes to after-the-fact review are logged with their result by :attr:`hooks`
  (passed to ``Runner.run`` by :meth:`run`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agents import Agent, FunctionTool, RunHooks, Runner, function_tool
from agents.run_state import RunState

from ..models import Route

log = logging.getLogger(__name__)

DEFAULT_MAX_ROUNDS = 20
EDIT_MESSAGE = (
    "A human reviewer approved this action only with changed arguments. Call {tool} again with exactly "
    "these arguments (they are pre-approved): {args}"
)


def _canonical(tool: str, args: Mapping[str, Any]) -> str:
    return tool + "\x00" + json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ApprovalOutcome:
    """What the resolver did with one interruption."""

    tool: str
    call_id: str | None
    args: dict[str, Any]
    status: str  # a Clearance status: approved, autonomous, denied, expired, blocked, escalated, pending, error...
    reason: str
    approved: bool
    request_id: int | None = None
    edited_args: dict[str, Any] | None = None


class _ReviewHooks(RunHooks[Any]):
    """Logs calls the policy routed to after-the-fact review, with their result."""

    def __init__(self, owner: HitlApprovals) -> None:
        self._owner = owner

    async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: object) -> None:
        call_id = getattr(context, "tool_call_id", None)
        pending = self._owner._review_calls.pop(call_id, None) if call_id else None
        if pending is None:
            return
        tool_name, args, request_id = pending
        try:
            await self._owner.gate.log_review(tool_name, args, result, request_id=request_id)
        except Exception as exc:  # the tool already ran: report, never fail the run
            log.error("could not log %s for review: %s", tool_name, exc)


class HitlApprovals:
    """Bind a :class:`~hitl_tui.sdk.Gate` to Agents SDK runs."""

    def __init__(self, gate: Any, *, timeout: float | None = None) -> None:
        self.gate = gate
        self.timeout = timeout
        self.hooks: RunHooks[Any] = _ReviewHooks(self)
        self._preapproved: dict[str, int | None] = {}  # canonical call → the request that approved it
        self._review_calls: dict[str, tuple[str, dict[str, Any], int | None]] = {}

    # ----------------------------------------------------------------- needs_approval
    def needs_approval(self, tool_name: str) -> Callable[[Any, dict[str, Any], str], Any]:
        """The ``needs_approval`` callable for one tool: the policy decides each call."""

        async def check(ctx: Any, args: dict[str, Any], call_id: str) -> bool:
            return await self._needs_approval(tool_name, args, call_id)

        check.__name__ = f"hitl_needs_approval_{tool_name}"
        return check

    async def _needs_approval(self, tool: str, args: dict[str, Any], call_id: str) -> bool:
        key = _canonical(tool, args)
        if key in self._preapproved:  # a reviewer's edit, re-issued by the model: approved once
            del self._preapproved[key]
            return False
        try:
            decision = await self.gate.evaluate(tool, args)
        except Exception as exc:
            log.warning("policy unavailable for %s, pausing the call: %s", tool, exc)
            return True
        if decision.route in (Route.autonomous, Route.review):
            if decision.route is Route.review:
                self._review_calls[call_id] = (tool, dict(args), None)
            return False
        return True

    def gate_tools(self, agent: Agent[Any]) -> Agent[Any]:
        """Set ``needs_approval`` on every function tool of ``agent`` (and of its handoff agents)."""
        seen: set[int] = set()

        def visit(a: Any) -> None:
            if id(a) in seen:
                return
            seen.add(id(a))
            for tool in getattr(a, "tools", []):
                if isinstance(tool, FunctionTool):
                    tool.needs_approval = self.needs_approval(tool.name)
            for handoff in getattr(a, "handoffs", []):
                visit(getattr(handoff, "agent", handoff))

        visit(agent)
        return agent

    def function_tool(self, fn: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        """``agents.function_tool`` with the policy as its ``needs_approval``."""

        def wrap(f: Callable[..., Any]) -> FunctionTool:
            name = kwargs.get("name_override") or f.__name__
            return function_tool(f, needs_approval=self.needs_approval(name), **kwargs)

        return wrap(fn) if fn is not None else wrap

    # ----------------------------------------------------------------- resolving interruptions
    async def resolve(self, state: RunState[Any, Any], *, wait: bool = True) -> list[ApprovalOutcome]:
        """Decide every pending interruption of ``state`` (approve or reject it on the state).

        With ``wait=False`` the requests are filed and left pending (their outcomes say ``pending``
        and the state is not touched for them): store ``state.to_string()``, and call again, in this
        process or another, to collect the decisions.
        """
        outcomes = []
        for item in state.get_interruptions():
            outcome = await self._resolve_one(state, item, wait)
            outcomes.append(outcome)
        return outcomes

    async def _resolve_one(self, state: RunState[Any, Any], item: Any, wait: bool) -> ApprovalOutcome:
        tool = item.name or "unknown"
        call_id = item.call_id
        try:
            args = json.loads(item.arguments or "{}")
        except ValueError:
            args = None
        if not isinstance(args, dict):
            reason = "the tool call's arguments are not a JSON object"
            state.reject(item, rejection_message=f"Not approved: {reason}.")
            return ApprovalOutcome(tool, call_id, {}, "error", reason, False)
        agent_name = getattr(getattr(item, "agent", None), "name", None)
        key = f"openai-agents:{self.gate.agent}:{call_id}"[:200] if call_id else None
        try:
            clearance = await self.gate.check(
                tool,
                args,
                context=f"OpenAI Agents SDK run, agent {agent_name or '?'}, call {call_id or '?'}",
                timeout=self.timeout,
                idempotency_key=key,
                wait=wait,
            )
        except Exception as exc:
            reason = f"could not ask for approval: {exc}"
            state.reject(item, rejection_message=f"Not approved: {reason}.")
            return ApprovalOutcome(tool, call_id, args, "error", reason, False)
        req = clearance.request
        rid = req.id if req is not None else None
        if clearance.status == "pending":
            return ApprovalOutcome(tool, call_id, args, "pending", clearance.reason, False, rid)
        if clearance.allowed and req is not None and req.edited_args is not None:
            edited = dict(req.edited_args)
            self._preapproved[_canonical(tool, edited)] = rid
            message = EDIT_MESSAGE.format(tool=tool, args=json.dumps(edited, ensure_ascii=False))
            state.reject(item, rejection_message=message)
            return ApprovalOutcome(tool, call_id, args, "edited", clearance.reason, False, rid, edited)
        if clearance.allowed:
            if clearance.log_review and call_id:
                self._review_calls[call_id] = (tool, args, rid)
            state.approve(item)
            return ApprovalOutcome(tool, call_id, args, clearance.status, clearance.reason, True, rid)
        message = f"Not approved ({clearance.status}): {clearance.reason}"
        if clearance.status == "escalated":
            message += ". A human takes over this step; do not retry it."
        state.reject(item, rejection_message=message)
        return ApprovalOutcome(tool, call_id, args, clearance.status, clearance.reason, False, rid)

    # ----------------------------------------------------------------- running
    async def run(self, agent: Agent[Any], input: Any, *, max_rounds: int = DEFAULT_MAX_ROUNDS, **kwargs: Any) -> Any:
        """``Runner.run`` until the run finishes, resolving each pause through the reviewers."""
        kwargs.setdefault("hooks", self.hooks)
        result = await Runner.run(agent, input, **kwargs)
        for _ in range(max_rounds):
            if not result.interruptions:
                return result
            state = result.to_state()
            await self.resolve(state)
            result = await Runner.run(agent, state, **kwargs)
        if result.interruptions:
            raise RuntimeError(f"the run paused more than {max_rounds} times; stopping")
        return result


def save_state(state: RunState[Any, Any]) -> str:
    """A paused run as JSON text (``RunState.to_string``); keep it on the server, not with the client."""
    return state.to_string()


async def load_state(agent: Agent[Any], text: str) -> RunState[Any, Any]:
    """Restore a paused run saved by :func:`save_state` (``RunState.from_string``)."""
    return await RunState.from_string(agent, text)
