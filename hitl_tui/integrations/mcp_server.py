"""``hitl mcp``: an MCP stdio server that lets an MCP client ask the humans.

Two tools:

* ``approval_prompt(tool_name, input, tool_use_id=None)`` is Claude Code's permission prompt tool
  (``claude -p --permission-prompt-tool mcp__hitl__approval_prompt``). It routes the call through
  the gate and returns JSON *text*: ``{"behavior": "allow", "updatedInput": {...}}`` (the reviewer's
  edited arguments when there are some, else the original input) or
  ``{"behavior": "deny", "message": "..."}``. Every failure is a deny with the reason.
* ``ask_human(question, context=None)`` opens an escalation and waits for a human's reply, which it
  returns; when nobody replies, or a human takes over, the text says so and tells the agent to stop.

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

INSTRUCTIONS = (
    "Human-in-the-loop gate. approval_prompt is a permission prompt tool: it asks the configured "
    "policy and, when needed, a human reviewer whether a tool call may run. ask_human sends a question "
    "to a human and returns the answer; use it when you are unsure how to proceed or need access."
)


def _explain(exc: BaseException) -> str:
    if isinstance(exc, HitlError):
        return exc.message
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


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

    async def approval_prompt(self, tool_name: str, input: dict[str, Any], tool_use_id: str | None = None) -> str:
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

    async def ask_human(self, question: str, context: str | None = None) -> str:
        from ..sdk.escalation import EscalationOutcome

        try:
            result = await self.gate().escalate(question, context, timeout=self.question_timeout)
        except Exception as exc:
            return f"No human could be asked ({_explain(exc)}). Do not proceed with the uncertain step."
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
        return f"No answer from a human ({ref}: {why}). Do not proceed with the uncertain step."


def build_server(tools: HumanTools) -> Any:
    """The MCP server exposing ``approval_prompt`` and ``ask_human``."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS, log_level="WARNING")

    async def approval_prompt(tool_name: str, input: dict[str, Any], tool_use_id: str | None = None) -> str:
        """Ask the hitl policy (and a human reviewer when needed) whether a tool call may run.

        Returns JSON text: {"behavior": "allow", "updatedInput": {...}} or {"behavior": "deny", "message": "..."}.
        """
        return await tools.approval_prompt(tool_name, input, tool_use_id)

    async def ask_human(question: str, context: str | None = None) -> str:
        """Ask a human a question (an escalation) and wait for the reply, which is returned as text."""
        return await tools.ask_human(question, context)

    server.add_tool(approval_prompt, structured_output=False)
    server.add_tool(ask_human, structured_output=False)
    return server


async def serve_stdio(tools: HumanTools) -> None:
    """Serve over stdin/stdout until the client disconnects; then close the backend."""
    server = build_server(tools)
    try:
        await server.run_stdio_async()
    finally:
        await tools.close()
