"""LangChain / LangGraph: reviewers answer the agent's interrupts.

::

    agent = create_agent(model, tools, middleware=[HumanInTheLoopMiddleware(interrupt_on={...})],
                         checkpointer=InMemorySaver())
    resolver = InterruptResolver(Gate.connect(agent="researcher"))
    final = await resolver.run(agent, {"messages": [...]}, {"configurable": {"thread_id": "t1"}})

The contract (checked against langchain 1.5 / langgraph 1.2): ``HumanInTheLoopMiddleware`` pauses
with a LangGraph interrupt whose value is, in ``batched`` mode, ``{"action_requests": [{"name",
"args", "description"}], "review_configs": [{"action_name", "allowed_decisions"}]}``, answered by
``Command(resume={"decisions": [...]})`` in the same order; in ``per_call`` mode ``{"type":
"tool_approval", "tool_call_id", "name", "args", "description"}``, answered by one decision keyed by
the interrupt id. A decision is ``{"type": "approve"}``, ``{"type": "edit", "edited_action": {"name",
"args"}}``, ``{"type": "reject", "message"}`` or ``{"type": "respond", "message"}``.

Each action goes through the gate (policy, then a reviewer when needed):

==================  ===================================================================
outcome             decision
==================  ===================================================================
autonomous          approve
approved            approve; ``edit`` with the reviewer's arguments when they edited
                    (``reject`` saying so when the tool does not accept edits)
denied / expired /  reject, with the reason as the message
blocked / error
escalated           a human is asked; their reply becomes ``respond`` (when the tool
                    allows it), otherwise, or without a reply, reject
==================  ===================================================================

A plain ``interrupt(value)`` elsewhere in a graph is asked of a human as an escalation; the reply
text is the resume value. Without a reply :class:`InterruptNotResolved` is raised and the graph
stays paused (nothing is resumed on a guess).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..sdk.escalation import EscalationOutcome

ALL_DECISIONS = ("approve", "edit", "reject", "respond")
DEFAULT_MAX_ROUNDS = 20


class InterruptNotResolved(RuntimeError):
    """No human answered a plain interrupt: the graph stays paused."""


def _is_batched(value: Any) -> bool:
    return isinstance(value, Mapping) and "action_requests" in value and "review_configs" in value


def _is_per_call(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("type") == "tool_approval" and "name" in value


def _reject(message: str) -> dict[str, Any]:
    return {"type": "reject", "message": message}


class InterruptResolver:
    """Answer LangGraph interrupts through a :class:`~hitl_tui.sdk.Gate`."""

    def __init__(self, gate: Any, *, timeout: float | None = None, question_timeout: float | None = None) -> None:
        self.gate = gate
        self.timeout = timeout
        self.question_timeout = question_timeout

    # ----------------------------------------------------------------- one action
    async def decide_action(
        self,
        name: str,
        args: Mapping[str, Any],
        allowed: Sequence[str] = ALL_DECISIONS,
        *,
        key: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """The decision for one tool call (never raises: failures are rejections)."""
        if not isinstance(args, Mapping):
            return _reject("the tool call's arguments are not an object")
        try:
            clearance = await self.gate.check(
                name,
                dict(args),
                context=description,
                timeout=self.timeout,
                idempotency_key=f"langgraph:{self.gate.agent}:{key}"[:200] if key else None,
                wait=True,
            )
        except Exception as exc:
            return _reject(f"Not approved (error): {exc}")
        req = clearance.request
        if clearance.allowed:
            if req is not None and req.edited_args is not None:
                if "edit" in allowed:
                    return {"type": "edit", "edited_action": {"name": name, "args": dict(req.edited_args)}}
                edited = json.dumps(req.edited_args, ensure_ascii=False)
                return _reject(
                    f"A reviewer approved this only with changed arguments ({edited}); call again with those."
                )
            if "approve" in allowed:
                return {"type": "approve"}
            return _reject(f"Approved ({clearance.reason}), but this tool does not accept an approval decision")
        if clearance.status == "escalated" and clearance.escalation is not None:
            return await self._escalated(clearance, allowed)
        return _reject(f"Not approved ({clearance.status}): {clearance.reason}")

    async def _escalated(self, clearance: Any, allowed: Sequence[str]) -> dict[str, Any]:
        esc = clearance.escalation
        if "respond" not in allowed:
            return _reject(f"Escalated to a human (escalation {esc.id}): {clearance.reason}. Do not retry.")
        result = await self.gate.wait_for_guidance(esc.id, len(esc.messages), timeout=self.question_timeout)
        if result.outcome is EscalationOutcome.guidance and result.reply:
            return {"type": "respond", "message": result.reply}
        return _reject(f"Escalated to a human (escalation {esc.id}): {result.reason or result.outcome.value}")

    # ----------------------------------------------------------------- one interrupt
    async def answer(self, interrupt: Any) -> Any:
        """The resume value for one interrupt (``langgraph.types.Interrupt`` or its value)."""
        value = getattr(interrupt, "value", interrupt)
        iid = getattr(interrupt, "id", None)
        if _is_batched(value):
            allowed_by_tool = {
                c.get("action_name"): c.get("allowed_decisions", ALL_DECISIONS) for c in value["review_configs"]
            }
            decisions = []
            for index, action in enumerate(value["action_requests"]):
                name = action.get("name", "")
                decisions.append(
                    await self.decide_action(
                        name,
                        action.get("args", {}),
                        allowed_by_tool.get(name, ALL_DECISIONS),
                        key=f"{iid}:{index}" if iid else None,
                        description=action.get("description"),
                    )
                )
            return {"decisions": decisions}
        if _is_per_call(value):
            allowed = ALL_DECISIONS
            return await self.decide_action(
                value["name"],
                value.get("args", {}),
                allowed,
                key=value.get("tool_call_id") or iid,
                description=value.get("description"),
            )
        return await self.ask(value)

    async def ask(self, value: Any) -> str:
        """A plain ``interrupt(value)``: ask a human (escalation) and return their reply."""
        if isinstance(value, str):
            question, context = value, None
        elif isinstance(value, Mapping) and isinstance(value.get("question"), str):
            question = value["question"]
            rest = {k: v for k, v in value.items() if k != "question"}
            context = json.dumps(rest, ensure_ascii=False, default=str) if rest else None
        else:
            question = "The agent paused and needs your input."
            context = json.dumps(value, ensure_ascii=False, default=str)
        result = await self.gate.escalate(
            question or "The agent needs your input.", context, timeout=self.question_timeout
        )
        if result.outcome is EscalationOutcome.guidance and result.reply:
            return result.reply
        raise InterruptNotResolved(
            f"no answer from a human (escalation {result.escalation_id}): {result.reason or result.outcome.value}"
        )

    # ----------------------------------------------------------------- graphs
    async def resume_command(self, interrupts: Iterable[Any]) -> Any:
        """``Command(resume=...)`` answering every pending interrupt (keyed by id when several)."""
        from langgraph.types import Command

        pending = list(interrupts)
        if not pending:
            raise ValueError("there is no interrupt to answer")
        if len(pending) == 1:
            return Command(resume=await self.answer(pending[0]))
        return Command(resume={i.id: await self.answer(i) for i in pending})

    async def run(
        self, graph: Any, input: Any, config: Mapping[str, Any], *, max_rounds: int = DEFAULT_MAX_ROUNDS
    ) -> Any:
        """``graph.ainvoke`` until it finishes, answering each pause; returns the final state."""
        result = await graph.ainvoke(input, config)
        for _ in range(max_rounds):
            interrupts = (await graph.aget_state(config)).interrupts
            if not interrupts:
                return result
            result = await graph.ainvoke(await self.resume_command(interrupts), config)
        raise RuntimeError(f"the graph paused more than {max_rounds} times; stopping")


def policy_interrupt_on(
    sync_gate: Any, tools: Iterable[str], allowed_decisions: Sequence[str] = ALL_DECISIONS
) -> dict[str, Any]:
    """``interrupt_on`` for ``HumanInTheLoopMiddleware`` whose ``when`` asks the policy: calls the
    policy lets run on their own do not pause. ``sync_gate`` is a :class:`~hitl_tui.sdk.SyncGate`
    (the middleware calls ``when`` synchronously). Fails closed: a policy error pauses the call."""
    from ..models import Route

    def when(request: Any) -> bool:
        call = request.tool_call
        try:
            decision = sync_gate.evaluate(call["name"], call.get("args") or {})
        except Exception:
            return True
        return decision.route not in (Route.autonomous, Route.review)

    return {name: {"allowed_decisions": list(allowed_decisions), "when": when} for name in tools}
