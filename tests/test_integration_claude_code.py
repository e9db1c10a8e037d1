"""`hitl hook claude-code`: real Claude Code hook JSON through the real `hitl` subprocess, with a
reviewer deciding from another process on the same SQLite file."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hitl_tui.backend.local import LocalBackend
from hitl_tui.integrations.claude_code import HookDecision, agent_name, parse_hook_input
from hitl_tui.models import Capability, DecisionIn, RequestStatus, Rule, RuleEffect, Stage
from hitl_tui.store.sqlite import SQLiteStore

from .conftest import HITL

SESSION = "3f1c2a9e-7b1d-4c55-9a0e-0d5be0c0ffee"
AGENT = "claude-code:3f1c2a9e"


def event(tool: str, tool_input: dict[str, Any], *, name: str = "PreToolUse", **extra: Any) -> str:
    """A hook event as Claude Code sends it."""
    data: dict[str, Any] = {
        "session_id": SESSION,
        "transcript_path": f"/home/dev/.claude/projects/app/{SESSION}.jsonl",
        "cwd": "/home/dev/app",
        "permission_mode": "default",
        "hook_event_name": name,
        "tool_name": tool,
        "tool_input": tool_input,
        "tool_use_id": "toolu_01ABCDEF",
    }
    data.update(extra)
    return json.dumps(data)


def run_hook(
    env: dict[str, str], stdin: str, *flags: str, pre: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HITL, *pre, "hook", "claude-code", *flags], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def answer(p: subprocess.CompletedProcess[str] | tuple[int, str]) -> dict[str, Any]:
    code, out = (p.returncode, p.stdout) if isinstance(p, subprocess.CompletedProcess) else p
    assert code == 0, out
    data = json.loads(out)
    spec = data["hookSpecificOutput"]
    assert spec["hookEventName"] == "PreToolUse"
    assert spec["permissionDecision"] in ("allow", "deny", "ask")
    return spec


@pytest.fixture
async def reviewer(cli_env: dict[str, str]) -> AsyncIterator[LocalBackend]:
    backend = LocalBackend(SQLiteStore(cli_env["HITL_STORE"]), actor="alice")
    yield backend
    await backend.close()


async def start_hook(env: dict[str, str], stdin: str, *flags: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        *HITL,
        "hook",
        "claude-code",
        *flags,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None
    proc.stdin.write(stdin.encode())
    await proc.stdin.drain()
    proc.stdin.close()
    return proc


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode() or err.decode()


async def pending_request(backend: LocalBackend, proc: asyncio.subprocess.Process) -> Any:
    """Wait (event-driven, through the change feed) until the hook has filed its request."""
    async with asyncio.timeout(30):
        feed = backend.subscribe(after_seq=0)
        async for ev in feed:
            if ev.kind == "request.created":
                await feed.aclose()
                return await backend.get_request(int(ev.subject.split(":")[1]))
    raise AssertionError("the hook never filed a request")


# --------------------------------------------------------------------------- parsing


def test_hook_input_and_agent_name() -> None:
    hook = parse_hook_input(event("Bash", {"command": "ls"}, extra_field=1))
    assert hook.tool_name == "Bash" and hook.tool_input == {"command": "ls"}
    assert agent_name(hook) == AGENT
    assert agent_name(hook, "ci-bot") == "ci-bot"
    assert (
        agent_name(parse_hook_input(json.dumps({"hook_event_name": "PreToolUse", "tool_name": "X"}))) == "claude-code"
    )


def test_decision_output_is_sanitised_and_carries_updated_input() -> None:
    out = HookDecision("allow", "ok \x1b[31mred\u202e", {"command": "ls"}).to_output()["hookSpecificOutput"]
    assert "\x1b" not in out["permissionDecisionReason"] and "\u202e" not in out["permissionDecisionReason"]
    assert out["updatedInput"] == {"command": "ls"}
    assert "updatedInput" not in HookDecision("deny", "no").to_output()["hookSpecificOutput"]


# --------------------------------------------------------------------------- routes through the subprocess


async def test_autonomous_tool_is_allowed(cli_env: dict[str, str], reviewer: LocalBackend) -> None:
    await reviewer.put_capability(Capability(tool="Read", stage=Stage.autonomous))
    spec = answer(run_hook(cli_env, event("Read", {"file_path": "/home/dev/app/README.md"})))
    assert spec["permissionDecision"] == "allow"
    assert "autonomous" in spec["permissionDecisionReason"]
    assert "updatedInput" not in spec
    assert (await reviewer.list_requests(None)).total == 0


async def test_approved_from_another_process_with_edited_args(cli_env: dict[str, str], reviewer: LocalBackend) -> None:
    proc = await start_hook(cli_env, event("Bash", {"command": "rm -rf build", "description": "clean"}))
    req = await pending_request(reviewer, proc)
    assert req.tool == "Bash" and req.agent == AGENT and req.summary == "clean"
    assert SESSION in (req.context or "")
    edited = {"command": "rm -rf build/tmp", "description": "clean"}
    p = await asyncio.create_subprocess_exec(
        *HITL, "--as", "bob", "approve", str(req.id), "--args", json.dumps(edited), "--reason", "narrower", env=cli_env
    )
    assert await p.wait() == 0
    spec = answer(await finish(proc))
    assert spec["permissionDecision"] == "allow"
    assert spec["updatedInput"] == edited
    assert "bob" in spec["permissionDecisionReason"] and "narrower" in spec["permissionDecisionReason"]


async def test_plain_approval_has_no_updated_input(cli_env: dict[str, str], reviewer: LocalBackend) -> None:
    proc = await start_hook(cli_env, event("Write", {"file_path": "/home/dev/app/a.txt", "content": "x"}))
    req = await pending_request(reviewer, proc)
    await reviewer.decide(req.id, DecisionIn(decision="approve"))
    spec = answer(await finish(proc))
    assert spec["permissionDecision"] == "allow" and "updatedInput" not in spec


async def test_denied_by_reviewer(cli_env: dict[str, str], reviewer: LocalBackend) -> None:
    proc = await start_hook(cli_env, event("Bash", {"command": "git push --force"}))
    req = await pending_request(reviewer, proc)
    await reviewer.decide(req.id, DecisionIn(decision="deny", reason="never force-push main"))
    spec = answer(await finish(proc))
    assert spec["permissionDecision"] == "deny"
    assert "never force-push main" in spec["permissionDecisionReason"]
    assert f"request {req.id}" in spec["permissionDecisionReason"]


async def test_same_tool_use_reuses_its_request(cli_env: dict[str, str], reviewer: LocalBackend) -> None:
    proc = await start_hook(cli_env, event("Bash", {"command": "make deploy"}))
    req = await pending_request(reviewer, proc)
    await reviewer.decide(req.id, DecisionIn(decision="deny", reason="not today"))
    answer(await finish(proc))
    again = answer(run_hook(cli_env, event("Bash", {"command": "make deploy"})))  # Claude Code re-ran the hook
    assert again["permissionDecision"] == "deny" and "not today" in again["permissionDecisionReason"]
    assert (await reviewer.list_requests(None)).total == 1


async def test_no_decision_before_timeout_denies(cli_env: dict[str, str], reviewer: LocalBackend) -> None:
    spec = answer(run_hook(cli_env, event("Bash", {"command": "terraform apply"}), "--timeout", "0.5"))
    assert spec["permissionDecision"] == "deny"
    assert "expired" in spec["permissionDecisionReason"]
    page = await reviewer.list_requests(None)
    assert [r.status for r in page.items] == [RequestStatus.expired]


async def test_blocked_by_rule_denies_naming_the_rule(cli_env: dict[str, str], reviewer: LocalBackend) -> None:
    await reviewer.set_rules([Rule(pattern="Bash(rm:*)", effect=RuleEffect.deny, reason="no deletes")])
    spec = answer(run_hook(cli_env, event("Bash", {"command": "ls && rm -rf /"})))
    assert spec["permissionDecision"] == "deny"
    assert "Bash(rm:*)" in spec["permissionDecisionReason"] and "no deletes" in spec["permissionDecisionReason"]
    assert (await reviewer.list_requests(None)).total == 0


def test_unopenable_store_denies(cli_env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a folder should be")
    env = dict(cli_env, HITL_STORE=str(blocker / "hitl.db"))
    spec = answer(run_hook(env, event("Read", {"file_path": "/etc/hosts"})))
    assert spec["permissionDecision"] == "deny"
    assert spec["permissionDecisionReason"].startswith("hitl: error:")


def test_unreachable_server_denies(cli_env: dict[str, str]) -> None:
    env = {k: v for k, v in cli_env.items() if k != "HITL_STORE"}
    spec = answer(run_hook(env, event("Read", {"file_path": "/etc/hosts"}), pre=("--server", "http://127.0.0.1:1")))
    assert spec["permissionDecision"] == "deny"
    assert spec["permissionDecisionReason"].startswith("hitl: error:")


@pytest.mark.parametrize(
    ("stdin", "why"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"hook_event_name": "Stop", "session_id": SESSION}), "tool_name"),
        (event("Read", {"file_path": "x"}, name="PermissionRequest"), "PermissionRequest"),
        (event("Read", {"file_path": "x"}).replace('{"file_path": "x"}', '"not an object"'), "tool_input"),
    ],
)
def test_bad_input_denies(cli_env: dict[str, str], stdin: str, why: str) -> None:
    spec = answer(run_hook(cli_env, stdin))
    assert spec["permissionDecision"] == "deny" and why in spec["permissionDecisionReason"]


@pytest.mark.parametrize("timeout", ["abc", "0", "-5", "1e9"])
def test_bad_timeout_denies_instead_of_failing(cli_env: dict[str, str], timeout: str) -> None:
    spec = answer(run_hook(cli_env, event("Read", {"file_path": "x"}), f"--timeout={timeout}"))
    assert spec["permissionDecision"] == "deny" and "--timeout" in spec["permissionDecisionReason"]


async def test_review_route_is_logged_with_the_result_after_the_tool_ran(
    cli_env: dict[str, str], reviewer: LocalBackend
) -> None:
    await reviewer.put_capability(Capability(tool="WebFetch", stage=Stage.autonomous, review_after=True))
    call = {"url": "https://example.com/docs", "prompt": "summarise"}
    spec = answer(run_hook(cli_env, event("WebFetch", call)))
    assert spec["permissionDecision"] == "allow" and "review" in spec["permissionDecisionReason"]
    assert (await reviewer.list_reviews()).total == 0  # the tool has not run yet
    post = run_hook(cli_env, event("WebFetch", call, name="PostToolUse", tool_response={"result": "Docs say hi"}))
    assert post.returncode == 0 and post.stdout == ""
    items = (await reviewer.list_reviews()).items
    assert len(items) == 1
    assert items[0].agent == AGENT and items[0].tool == "WebFetch" and items[0].args == call
    assert "Docs say hi" in items[0].result


async def test_post_tool_use_logs_nothing_for_plain_autonomous_tools(
    cli_env: dict[str, str], reviewer: LocalBackend
) -> None:
    await reviewer.put_capability(Capability(tool="Read", stage=Stage.autonomous))
    post = run_hook(cli_env, event("Read", {"file_path": "a"}, name="PostToolUse", tool_response="text"))
    assert post.returncode == 0 and post.stdout == ""
    assert (await reviewer.list_reviews()).total == 0


# --------------------------------------------------------------------------- per-agent tool access


async def test_agent_limited_to_read_only_tools(cli_env: dict[str, str], reviewer: LocalBackend) -> None:
    """The seed's "subagents with restricted tool access", with rules scoped to one agent name."""
    why = "the researcher only reads"
    await reviewer.set_rules(
        [
            Rule(pattern="Read", effect=RuleEffect.allow, agent="researcher"),
            Rule(pattern="Grep", effect=RuleEffect.allow, agent="researcher"),
            *(
                Rule(pattern=p, effect=RuleEffect.deny, agent="researcher", reason=why)
                for p in ("Bash", "Edit", "Write", "MultiEdit", "NotebookEdit", "WebFetch", "mcp__*")
            ),
        ]
    )
    await reviewer.put_capability(Capability(tool="Bash", stage=Stage.autonomous))

    read = answer(run_hook(cli_env, event("Read", {"file_path": "/src/a.py"}), "--agent", "researcher"))
    assert read["permissionDecision"] == "allow" and "allowed by rule `Read`" in read["permissionDecisionReason"]
    for tool, args in (
        ("Bash", {"command": "ls"}),
        ("Edit", {"file_path": "/src/a.py", "old_string": "a", "new_string": "b"}),
        ("mcp__github__create_issue", {"title": "x"}),
    ):
        spec = answer(run_hook(cli_env, event(tool, args), "--agent", "researcher"))
        assert spec["permissionDecision"] == "deny", tool
        assert why in spec["permissionDecisionReason"]
    # the same call from another agent follows the ordinary policy
    other = answer(run_hook(cli_env, event("Bash", {"command": "ls"}), "--agent", "builder"))
    assert other["permissionDecision"] == "allow"


async def test_agent_default_stage_refuses_every_unlisted_tool(cli_env: dict[str, str], reviewer: LocalBackend) -> None:
    await reviewer.put_capability(Capability(tool="*", agent="researcher", stage=Stage.disabled))
    await reviewer.put_capability(Capability(tool="Read", agent="researcher", stage=Stage.autonomous))
    decision = await reviewer.evaluate("SomeNewTool", {}, agent="researcher")
    assert decision.route.value == "blocked"
