"""`hitl mcp` over a real stdio session (the `mcp` client library spawns `python -m hitl_tui mcp`):
bad arguments get the documented deny, and an ask_human nobody answers is closed, not left open."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from mcp.client.session import ClientSession

from hitl_tui.backend.local import LocalBackend
from hitl_tui.models import EscalationStatus
from hitl_tui.store.sqlite import SQLiteStore

from .test_integration_mcp import first_event, session


async def raw_call(client: ClientSession, tool: str, arguments: dict[str, Any]) -> str:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result  # the tool's own answer, never the MCP library's validation error
    assert len(result.content) == 1
    return result.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"tool_name": "Bash", "input": "notadict"}, "input must be a JSON object"),
        ({"tool_name": "Bash", "input": ["rm", "-rf"]}, "input must be a JSON object"),
        ({"tool_name": "Bash"}, "input is required"),
        ({"input": {"command": "ls"}}, "tool_name is required"),
        ({"tool_name": 5, "input": {}}, "tool_name must be a string"),
        ({"tool_name": "Bash", "input": {}, "tool_use_id": 7}, "tool_use_id must be a string"),
    ],
)
async def test_bad_approval_prompt_arguments_are_a_clear_deny(
    cli_env: dict[str, str], arguments: dict[str, Any], expected: str
) -> None:
    async with session(cli_env) as client:
        text = await raw_call(client, "approval_prompt", arguments)
    data = json.loads(text)
    assert set(data) == {"behavior", "message"} and data["behavior"] == "deny"
    assert data["message"].startswith("hitl: error: ") and expected in data["message"]
    assert "validation error" not in data["message"] and "pydantic" not in data["message"]


async def test_the_published_schema_is_unchanged(cli_env: dict[str, str]) -> None:
    async with session(cli_env) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    schema = tools["approval_prompt"].input_schema
    assert set(schema["required"]) == {"tool_name", "input"}
    assert schema["properties"]["input"]["type"] == "object"
    assert schema["properties"]["tool_name"]["type"] == "string"
    assert tools["ask_human"].input_schema["required"] == ["question"]
    assert "whether a tool call may run" in (tools["approval_prompt"].description or "")


async def test_ask_human_without_a_question_says_so(cli_env: dict[str, str]) -> None:
    async with session(cli_env) as client:
        text = await raw_call(client, "ask_human", {"context": "no question"})
    assert text.startswith("No human could be asked (question is required)")


async def _closing_note(backend: LocalBackend, escalation_id: int) -> str:
    """The note of the status change that resolved the thread (from the change feed)."""
    async with asyncio.timeout(20):
        feed = backend.subscribe(after_seq=0)
        async for ev in feed:
            mine = ev.kind == "escalation.status" and ev.subject == f"escalation:{escalation_id}"
            if mine and ev.payload.get("status") == "resolved":
                await feed.aclose()
                return str(ev.payload.get("note"))
    raise AssertionError("never resolved")


async def test_ask_human_timeout_closes_the_escalation(cli_env: dict[str, str]) -> None:
    async with session(cli_env, "--agent", "helper", "--question-timeout", "0.3") as client:
        text = await raw_call(client, "ask_human", {"question": "Anyone there?"})
    assert text.startswith("No answer from a human") and "closed" in text and "Do not proceed" in text
    backend = LocalBackend(SQLiteStore(cli_env["HITL_STORE"]), actor="alice")
    try:
        [esc] = (await backend.list_escalations(None)).items
        assert esc.status is EscalationStatus.resolved  # no reviewer answers a thread nobody reads
        assert (await _closing_note(backend, esc.id)).startswith("the agent stopped waiting: no human replied")
    finally:
        await backend.close()


async def test_ask_human_cancelled_by_the_client_closes_the_escalation(cli_env: dict[str, str]) -> None:
    reviewer = LocalBackend(SQLiteStore(cli_env["HITL_STORE"]), actor="alice")
    try:
        async with session(cli_env, "--question-timeout", "600") as client:
            task = asyncio.create_task(client.call_tool("ask_human", {"question": "Which region?"}))
            eid = await first_event(reviewer, "escalation.opened")
            task.cancel()  # the client stops waiting: the MCP client sends notifications/cancelled
            with pytest.raises(asyncio.CancelledError):
                await task
            note = await _closing_note(reviewer, eid)
        assert (await reviewer.get_escalation(eid)).status is EscalationStatus.resolved
        assert note.startswith("the agent stopped waiting")
    finally:
        await reviewer.close()
