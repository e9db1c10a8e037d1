"""The start-up fast path: single-shot commands and the Claude Code hook run *inline* on an embedded
SQLite store (no event loop, no store thread, no event hub, no asyncio import), and answer exactly
as the full path does. Real SQLite files, real `hitl` subprocesses."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from hitl_tui.backend.local import LocalBackend, run_inline
from hitl_tui.config import Settings
from hitl_tui.errors import HitlError
from hitl_tui.integrations.claude_code import NEEDS_GATE, answer_inline, handle_event
from hitl_tui.models import Capability, DecisionIn, RequestCreate, RequestStatus, Rule, RuleEffect, Stage
from hitl_tui.store.sqlite import SQLiteStore

from .conftest import HITL
from .server_utils import free_port


def inline_backend(path: Path, actor: str = "alice") -> LocalBackend:
    return LocalBackend(SQLiteStore(path, inline=True), actor=actor, hub=False)


def hook_event(tool: str, tool_input: dict[str, Any], name: str = "PreToolUse", **extra: Any) -> str:
    data = {"hook_event_name": name, "session_id": "5e55i0n-0001", "cwd": "/srv/app", "tool_name": tool,
            "tool_input": tool_input, **extra}
    return json.dumps(data)


# =========================================================================== the inline store


def test_inline_store_writes_what_the_threaded_store_reads(tmp_path: Path) -> None:
    path = tmp_path / "hitl.db"
    threads = {t.name for t in threading.enumerate()}
    backend = inline_backend(path)
    run_inline(backend.set_rules([Rule(pattern="Read", effect=RuleEffect.allow)], "admin", "test"))
    req = run_inline(backend.create_request(RequestCreate(agent="ci", tool="deploy", args={"env": "prod"})))
    decided = run_inline(backend.decide(req.id, DecisionIn(decision="approve", reason="ok"), "bob"))
    decision = run_inline(backend.evaluate("Read", {"file_path": "/x"}, agent="ci"))
    audit = run_inline(backend.verify_audit())
    assert not {t.name for t in threading.enumerate()} - threads  # no store thread, no watcher, no hub
    run_inline(backend.close())
    assert decided.status is RequestStatus.approved and decided.decided_by == "bob"
    assert decision.route.value == "autonomous" and decision.rule == "Read"
    assert audit.ok and audit.checked == 3

    async def read_back() -> tuple[Any, list[str]]:
        store = SQLiteStore(path)  # the ordinary threaded store, as a second process would open it
        try:
            return await store.get_request(req.id), [ev.kind.value for ev in await store.events_after(0)]
        finally:
            await store.close()

    again, kinds = asyncio.run(read_back())
    assert again.status is RequestStatus.approved and again.decision_reason == "ok"
    assert kinds == ["rules.changed", "request.created", "request.decided"]


def test_a_single_shot_backend_refuses_to_wait_instead_of_hanging(tmp_path: Path) -> None:
    backend = inline_backend(tmp_path / "hitl.db")
    req = run_inline(backend.create_request(RequestCreate(agent="ci", tool="deploy")))
    with pytest.raises(HitlError, match="single-shot"):
        run_inline(backend.wait_for_request(req.id, timeout=5))

    async def sleeps() -> None:
        await asyncio.sleep(0)

    with pytest.raises(HitlError, match="tried to wait"):
        run_inline(sleeps())
    run_inline(backend.close())


def test_an_inline_store_that_cannot_open_says_why(tmp_path: Path) -> None:
    (tmp_path / "garbage.db").write_bytes(b"not a database" * 100)
    with pytest.raises(HitlError, match="not a database"):
        SQLiteStore(tmp_path / "garbage.db", inline=True)
    with pytest.raises(HitlError, match="cannot open store"):
        SQLiteStore(tmp_path, inline=True)  # a directory


# =========================================================================== the hook: inline == gate


@pytest.fixture
def policy_store(tmp_path: Path) -> Path:
    path = tmp_path / "hitl.db"
    backend = inline_backend(path, actor="admin")
    run_inline(backend.set_rules([Rule(pattern="Read", effect=RuleEffect.allow),
                                  Rule(pattern="Bash(rm:*)", effect=RuleEffect.deny, reason="never delete")], "admin"))
    run_inline(backend.put_capability(Capability(tool="Edit", stage=Stage.autonomous, review_after=True), "admin"))
    run_inline(backend.put_capability(Capability(tool="Purge", stage=Stage.disabled), "admin"))
    run_inline(backend.close())
    return path


SETTLED = {
    "autonomous (rule)": hook_event("Read", {"file_path": "/srv/app/README.md"}),
    "autonomous review": hook_event("Edit", {"file_path": "/srv/app/x.py", "old_string": "a", "new_string": "b"}),
    "blocked (deny rule)": hook_event("Bash", {"command": "ls && rm -rf /srv/app"}),
    "blocked (disabled stage)": hook_event("Purge", {"what": "everything"}),
    "not JSON": "{nope",
    "unknown event": hook_event("Read", {}, name="Stop"),
    "bad --timeout": None,
}


@pytest.mark.parametrize("case", list(SETTLED))
def test_the_inline_hook_answers_exactly_as_the_gate_does(policy_store: Path, case: str) -> None:
    raw = SETTLED[case] or hook_event("Read", {"file_path": "/x"})
    timeout = "-1" if case == "bad --timeout" else None
    settings = Settings(store=str(policy_store))
    backends: list[LocalBackend] = []

    def single_shot() -> LocalBackend:
        backends.append(inline_backend(policy_store))
        return backends[-1]

    fast = answer_inline(raw, single_shot, settings=settings, timeout=timeout)
    for b in backends:
        run_inline(b.close())

    async def through_the_gate() -> Any:
        backend = LocalBackend(SQLiteStore(policy_store), actor="alice")
        try:
            return await handle_event(raw, lambda: backend, settings=settings, timeout=timeout)
        finally:
            await backend.close()

    assert fast is not NEEDS_GATE
    assert fast == asyncio.run(through_the_gate())
    decision = fast["hookSpecificOutput"]["permissionDecision"]
    assert decision == ("allow" if case.startswith("autonomous") else "deny")


NEEDS_A_HUMAN_OR_THE_GATE = {
    "approval (unknown tool)": (hook_event("Deploy", {"env": "prod"}), None),
    "arguments the gate refuses (NaN)": ('{"hook_event_name": "PreToolUse", "tool_name": "Read", '
                                         '"tool_input": {"file_path": "/x", "n": NaN}}', None),
    "agent name the gate refuses": (hook_event("Read", {"file_path": "/x"}), "a" * 201),
}


@pytest.mark.parametrize("case", list(NEEDS_A_HUMAN_OR_THE_GATE))
def test_the_inline_hook_leaves_the_rest_to_the_gate(policy_store: Path, case: str) -> None:
    raw, agent = NEEDS_A_HUMAN_OR_THE_GATE[case]
    backend = inline_backend(policy_store)
    try:
        assert answer_inline(raw, lambda: backend, settings=Settings(), agent=agent) is NEEDS_GATE
        assert run_inline(backend.list_requests(None)).total == 0  # it filed nothing
    finally:
        run_inline(backend.close())


def test_the_inline_hook_logs_post_tool_use_for_review(policy_store: Path) -> None:
    raw = hook_event("Edit", {"file_path": "/srv/app/x.py"}, name="PostToolUse", tool_response={"ok": True})
    backend = inline_backend(policy_store)
    try:
        assert answer_inline(raw, lambda: backend, settings=Settings()) is None
        items = run_inline(backend.list_reviews()).items
    finally:
        run_inline(backend.close())
    assert [(i.tool, i.agent, json.loads(i.result)) for i in items] == [("Edit", "claude-code:5e55i0n-", {"ok": True})]


# =========================================================================== the real CLI


def run(env: dict[str, str], *args: str, stdin: str | None = None, importtime: bool = False) -> tuple[
    subprocess.CompletedProcess[str], set[str]
]:
    flags = ["-X", "importtime"] if importtime else []
    env = {**env, "HITL_WARM": "0"}  # the in-process path is what these tests measure (not hitl_tui.warm)
    p = subprocess.run([HITL[0], *flags, *HITL[1:], *args], env=env, input=stdin, capture_output=True, text=True,
                       timeout=60)
    loaded = {line.split("|")[2].strip() for line in p.stderr.splitlines()
              if line.startswith("import time:") and line.count("|") >= 2}
    return p, loaded


def test_single_shot_commands_run_without_asyncio(cli_env: dict[str, str]) -> None:
    cli_env = {**cli_env, "HITL_REVIEWER": "alice"}
    assert run(cli_env, "policy", "rules", "add", "allow", "Read")[0].returncode == 0
    p, loaded = run(cli_env, "hook", "claude-code", stdin=hook_event("Read", {"file_path": "/x"}), importtime=True)
    assert json.loads(p.stdout)["hookSpecificOutput"]["permissionDecision"] == "allow"
    assert "asyncio" not in loaded and "hitl_tui.sdk.gate" not in loaded

    p, loaded = run(cli_env, "request", "deploy", "--args", '{"env": "prod"}', importtime=True)
    request_id = p.stdout.split()[0]
    assert p.returncode == 0 and request_id.isdigit()
    assert "asyncio" not in loaded

    p, loaded = run(cli_env, "approve", request_id, "--reason", "fine", importtime=True)
    assert (p.returncode, p.stdout) == (0, f"request {request_id} approved\n")
    assert "asyncio" not in loaded

    p, loaded = run(cli_env, "show", request_id, "--json", importtime=True)
    assert json.loads(p.stdout)["decided_by"] == "alice" and "asyncio" not in loaded


def test_commands_that_wait_or_notify_still_run_under_asyncio(cli_env: dict[str, str]) -> None:
    # the control for the test above: the detector sees asyncio when it loads
    p, loaded = run(cli_env, "request", "deploy", "--wait", "--timeout", "0.2", importtime=True)
    assert p.returncode == 2 and "asyncio" in loaded  # expired after waiting on the event hub

    env = {**cli_env, "HITL_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/hook"}
    p, loaded = run(env, "request", "deploy", importtime=True)
    assert p.returncode == 0 and p.stdout.split()[0].isdigit() and "asyncio" in loaded

    p, loaded = run(cli_env, "hook", "claude-code", "--timeout", "0.2", stdin=hook_event("Deploy", {}), importtime=True)
    assert json.loads(p.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny" and "asyncio" in loaded
