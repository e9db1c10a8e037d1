"""``hitl mcp``: an MCP stdio server that lets an MCP client ask the humans.

Two tools:

* ``approval_prompt(tool_name, input, tool_use_id=None)`` is Claude Code's permission prompt tool
  (``claude -p --permission-prompt-tool mcp__hitl__approval_prompt``). It routes the call through
  the gate and returns JSON *text*: ``{"behavior": "allow", "updatedInput": {...}}`` (the reviewer's
  edited arguments when there are some, else the original input) or
  ``{"behavior": "deny", "message": "..."}``. Every failure is a deny with the reason, bad arguments
  too (the tools check their own arguments: the published schema is the documented one).
* ``ask_human(question, context=None)`` opens an escalation and waits for a human's reply, which it
  returns; when nobody replies, or a human takes over, the text says so and tells the agent to stop.
  A thread the agent stops waiting on (no reply in time, the call cancelled) is resolved with a note
  saying so, as the gate cancels a request it stops waiting for.

Built on ``mcp.server.mcpserver.MCPServer`` (mcp 2.x; ``FastMCP`` in 1.x). The backend is opened on
the first call, on the server's event loop, and closed when the session ends.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from ..backend.base import Backend
from ..config import Settings
from ..errors import HitlError
from ..text import sanitise

log = logging.getLogger(__name__)

SERVER_NAME = "hitl"
DEFAULT_AGENT = "claude-code"
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_QUESTION_TIMEOUT_S = 1800.0
MESSAGE_LIMIT = 2000
CLOSE_TIMEOUT_S = 10.0

INSTRUCTIONS = (
    "Human-in-the-loop gate. approval_prompt is a permission prompt tool: it asks the configured "
    "policy and, when needed, a human reviewer whether a tool call may run. ask_human sends a question "
    "to a human and returns the answer; use it when you are unsure how to proceed or need access."
)


def _explain(exc: BaseException) -> str:
    if isinstance(exc, HitlError):
        return exc.message
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _bad_text(name: str, value: Any, *, required: bool = False) -> str | None:
    if value is None:
        return f"{name} is required" if required else None
    if not isinstance(value, str):
        return f"{name} must be a string, not {_json_type(value)}"
    return None


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a string" if isinstance(value, str) else type(value).__name__


def _bad_arguments(tool_name: Any, input: Any, tool_use_id: Any) -> str | None:
    """What is wrong with approval_prompt's arguments (the MCP client sends any JSON), or None."""
    problem = _bad_text("tool_name", tool_name, required=True)
    if problem:
        return problem
    if not tool_name.strip():
        return "tool_name is empty"
    if input is None:
        return "input is required: the tool call's arguments, a JSON object"
    if not isinstance(input, dict):
        return f"input must be a JSON object (the tool call's arguments), not {_json_type(input)}"
    return _bad_text("tool_use_id", tool_use_id)


def allow_text(updated_input: dict[str, Any]) -> str:
    return json.dumps({"behavior": "allow", "updatedInput": updated_input}, ensure_ascii=False)


def deny_text(message: str) -> str:
    return json.dumps({"behavior": "deny", "message": sanitise(message, limit=MESSAGE_LIMIT)}, ensure_ascii=False)


class HumanTools:
    """The tools' behaviour, independent of MCP (one gate per server process)."""

    def __init__(
        self,
        backend_factory: Callable[[], Backend],
        *,
        agent: str = DEFAULT_AGENT,
        settings: Settings | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        question_timeout: float = DEFAULT_QUESTION_TIMEOUT_S,
        notifiers: Any = (),
    ) -> None:
        self._factory = backend_factory
        self.agent = agent
        self.settings = settings or Settings()
        self.timeout = timeout
        self.question_timeout = question_timeout
        self.notifiers = notifiers
        self._gate: Any = None

    def gate(self) -> Any:
        if self._gate is None:
            from ..sdk.gate import Gate

            self._gate = Gate(self._factory(), self.agent, notifiers=self.notifiers, settings=self.settings)
        return self._gate

    async def close(self) -> None:
        if self._gate is not None:
            gate, self._gate = self._gate, None
            await gate.backend.close()

    async def approval_prompt(self, tool_name: Any, input: Any, tool_use_id: Any = None) -> str:
        """Arguments as the client sent them: anything that is not the documented shape is a deny."""
        problem = _bad_arguments(tool_name, input, tool_use_id)
        if problem:
            return deny_text(f"hitl: error: {problem}")
        try:
            gate = self.gate()
            key = f"mcp:{self.agent}:{tool_use_id}"[:200] if tool_use_id else None
            clearance = await gate.check(
                tool_name,
                input,
                context=f"permission prompt from an MCP client (tool use {tool_use_id or 'unknown'})",
                timeout=self.timeout,
                idempotency_key=key,
                wait=True,
            )
        except Exception as exc:
            return deny_text(f"hitl: error: {_explain(exc)}")
        if clearance.allowed:
            return allow_text(clearance.args)
        ref = f" (request {clearance.request.id})" if clearance.request is not None else ""
        return deny_text(f"hitl: {clearance.status}: {clearance.reason}{ref}")

    async def ask_human(self, question: Any, context: Any = None) -> str:
        import asyncio

        from ..sdk.escalation import EscalationOutcome, new_human_text

        problem = _bad_text("question", question, required=True) or _bad_text("context", context)
        if problem:
            return f"No human could be asked ({problem}). Do not proceed with the uncertain step."
        try:
            gate = self.gate()
            posted = await gate.escalate(question, context, wait=False)
        except Exception as exc:
            return f"No human could be asked ({_explain(exc)}). Do not proceed with the uncertain step."
        if posted.outcome is EscalationOutcome.error or posted.escalation_id is None:
            return f"No human could be asked ({posted.reason}). Do not proceed with the uncertain step."
        eid = posted.escalation_id
        seen = len(posted.escalation.messages) if posted.escalation is not None else None
        try:
            result = await gate.wait_for_guidance(eid, seen, timeout=self.question_timeout)
        except asyncio.CancelledError:  # the client cancelled the call (or went away)
            await self._close_unanswered(gate, eid, seen, "the agent stopped waiting (its MCP call was cancelled)")
            raise
        closed = ""
        if result.outcome in (EscalationOutcome.timeout, EscalationOutcome.error):
            why = result.reason or result.outcome.value
            esc = await self._close_unanswered(gate, eid, seen, f"the agent stopped waiting: {why}")
            late = new_human_text(esc, seen) if esc is not None and seen is not None else None
            if late is not None:  # a human answered in the meantime: the agent gets it after all
                return late
            closed = "; it is closed now" if esc is not None else ""
        ref = f"escalation {result.escalation_id}" if result.escalation_id is not None else "the escalation"
        if result.outcome is EscalationOutcome.guidance and result.reply:
            return result.reply
        if result.outcome is EscalationOutcome.taken_over:
            tail = f" Their note: {result.reply}" if result.reply else ""
            return f"A human took over this task ({ref}). Stop working on it.{tail}"
        if result.outcome is EscalationOutcome.resolved:
            tail = f" Their note: {result.reply}" if result.reply else ""
            return f"A human closed {ref} without further guidance.{tail}"
        why = result.reason or result.outcome.value
        return f"No answer from a human ({ref}: {why}{closed}). Do not proceed with the uncertain step."

    async def _close_unanswered(self, gate: Any, escalation_id: int, seen: int | None, note: str) -> Any:
        """Resolve a thread the agent no longer waits on, so no reviewer answers into the void (as the
        gate cancels a request it stops waiting for). The escalation as closed, or None."""
        import asyncio

        try:
            return await asyncio.shield(asyncio.wait_for(gate.resolve(escalation_id, note), CLOSE_TIMEOUT_S))
        except BaseException as exc:  # taken over or resolved meanwhile, or the backend is gone
            log.info("could not close escalation %s: %s", escalation_id, _explain(exc))
            return None


def build_server(tools: HumanTools) -> Any:
    """The MCP server exposing ``approval_prompt`` and ``ask_human``."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.tools import Tool

    async def approval_prompt(tool_name: str, input: dict[str, Any], tool_use_id: str | None = None) -> str:
        """Ask the hitl policy (and a human reviewer when needed) whether a tool call may run.

        Returns JSON text: {"behavior": "allow", "updatedInput": {...}} or {"behavior": "deny", "message": "..."}.
        """
        return await tools.approval_prompt(tool_name, input, tool_use_id)

    async def ask_human(question: str, context: str | None = None) -> str:
        """Ask a human a question (an escalation) and wait for the reply, which is returned as text."""
        return await tools.ask_human(question, context)

    async def approval_prompt_any(tool_name: Any = None, input: Any = None, tool_use_id: Any = None) -> str:
        return await tools.approval_prompt(tool_name, input, tool_use_id)

    async def ask_human_any(question: Any = None, context: Any = None) -> str:
        return await tools.ask_human(question, context)

    def tool(documented: Any, lenient: Any) -> Any:
        """The documented signature is what clients see (schema and description); the arguments are
        checked by the tool itself, so bad ones get the tool's own answer (approval_prompt: a deny),
        not the MCP library's validation error."""
        shown = Tool.from_function(documented, structured_output=False)
        runs = Tool.from_function(lenient, name=shown.name, description=shown.description, structured_output=False)
        runs.parameters = shown.parameters
        return runs

    return MCPServer(
        SERVER_NAME,
        instructions=INSTRUCTIONS,
        log_level="WARNING",
        tools=[tool(approval_prompt, approval_prompt_any), tool(ask_human, ask_human_any)],
    )


async def serve_stdio(tools: HumanTools) -> None:
    """Serve over stdin/stdout until the client disconnects; then close the backend."""
    server = build_server(tools)
    try:
        await server.run_stdio_async()
    finally:
        await tools.close()
