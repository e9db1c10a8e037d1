"""The shipped examples run as documented: each pauses, a reviewer decides with the real `hitl` CLI, and
the example finishes; the Claude Code settings snippet's hook command is run exactly as written."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hitl_tui.backend.local import LocalBackend
from hitl_tui.integrations.claude_policy import import_claude_settings
from hitl_tui.store.sqlite import SQLiteStore

from .conftest import HITL, ROOT

EXAMPLES = ROOT / "examples"


async def decide_each(env: dict[str, str], commands: dict[str, list[str]]) -> None:
    """Watch the store's change feed; for each new request run `hitl <command> <id> ...` for its tool."""
    backend = LocalBackend(SQLiteStore(env["HITL_STORE"]))
    try:
        async with asyncio.timeout(60):
            left = dict(commands)
            feed = backend.subscribe(after_seq=0)
            async for ev in feed:
                if ev.kind != "request.created":
                    continue
                req = await backend.get_request(int(ev.subject.split(":")[1]))
                verb, *rest = left.pop(req.tool)
                p = await asyncio.create_subprocess_exec(*HITL, "--as", "alice", verb, str(req.id), *rest, env=env)
                assert await p.wait() == 0
                if not left:
                    await feed.aclose()
                    return
    finally:
        await backend.close()


async def run_example(env: dict[str, str], script: str, commands: dict[str, list[str]]) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / script), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    await decide_each(env, commands)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_openai_agents_example(cli_env: dict[str, str]) -> None:
    pytest.importorskip("agents")
    out = await run_example(cli_env, "openai_agents_example.py", {"deploy": ["approve"]})
    assert "final: api is healthy" in out


async def test_langgraph_example(cli_env: dict[str, str]) -> None:
    pytest.importorskip("langchain")
    edited = json.dumps({"to": "team@example.com", "subject": "Q3", "body": "draft"})
    out = await run_example(
        cli_env,
        "langgraph_example.py",
        {"send_email": ["approve", "--args", edited], "delete_file": ["deny", "--reason", "keep the file"]},
    )
    assert "email 'Q3' sent to team@example.com" in out
    assert "keep the file" in out and "final: Done." in out


def test_claude_code_settings_snippet_hook_command(cli_env: dict[str, str], tmp_path: Path) -> None:
    """The PreToolUse command from examples/claude_code/settings.json, run by a shell as Claude Code does."""
    settings = json.loads((EXAMPLES / "claude_code" / "settings.json").read_text())
    command = settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    assert command.startswith("hitl hook claude-code")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "hitl"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hitl_tui "$@"\n')
    shim.chmod(0o755)
    env = dict(cli_env, PATH=f"{bindir}{os.pathsep}{cli_env.get('PATH', '')}")
    hook_event = {
        "session_id": "abc12345-0000",
        "hook_event_name": "PreToolUse",
        "tool_name": "Read",
        "tool_input": {"file_path": "/x/.env"},
        "tool_use_id": "toolu_1",
        "cwd": "/x",
    }
    # deny rules imported from the snippet's own permissions apply to the hook
    result = import_claude_settings(EXAMPLES / "claude_code" / "settings.json", root=Path("/x"))

    async def seed() -> None:
        backend = LocalBackend(SQLiteStore(env["HITL_STORE"]))
        try:
            await backend.set_rules(result.rules)
        finally:
            await backend.close()

    asyncio.run(seed())
    p = subprocess.run(
        ["sh", "-c", command], env=env, input=json.dumps(hook_event), capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    spec = json.loads(p.stdout)["hookSpecificOutput"]
    assert spec["permissionDecision"] == "deny" and "Read(/x/.env)" in spec["permissionDecisionReason"]

    broken = dict(env, HITL_CONFIG=str(tmp_path / "bad.toml"))
    (tmp_path / "bad.toml").write_text("this is not toml =")
    p = subprocess.run(
        ["sh", "-c", command], env=broken, input=json.dumps(hook_event), capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 2  # `|| exit 2`: a hitl that cannot start blocks the call instead of letting it through


def test_openai_agents_example_leaves_a_users_capabilities_alone(cli_env: dict[str, str]) -> None:
    """A tool the user demoted stays demoted (stage, risk, description); the example says what happened."""
    pytest.importorskip("agents")
    from hitl_tui.models import Capability, Risk, Stage

    async def cap(put: Capability | None = None) -> Capability:
        backend = LocalBackend(SQLiteStore(cli_env["HITL_STORE"]))
        try:
            if put is not None:
                await backend.put_capability(put, "me", "demoted")
            return await backend.get_capability("deploy")
        finally:
            await backend.close()

    mine = asyncio.run(cap(Capability(tool="deploy", stage=Stage.disabled, risk=Risk.critical, description="mine")))
    p = subprocess.run(
        [sys.executable, str(EXAMPLES / "openai_agents_example.py"), "--timeout", "5"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "already configures deploy (disabled, risk critical)" in p.stdout
    assert "is live in prod" not in p.stdout and "tool result: Not approved (blocked)" in p.stdout
    assert asyncio.run(cap()).model_dump() == mine.model_dump()
