"""Exit codes and messages of bad flag values: a value out of a flag's range is a usage error (64),
found when the command line is parsed, like a value that is no number at all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import HITL
from .server_utils import server_env, sqlite_url


def _serve(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "hitl_tui", "serve", "--store", sqlite_url(tmp_path), *flags]
    return subprocess.run(cmd, env=server_env(tmp_path), capture_output=True, text=True, timeout=60)


def test_port_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    for bad in ("99999", "0", "-1", "http"):
        out = _serve(tmp_path, "--port", bad)
        assert out.returncode == 64, (bad, out)
        assert "argument --port: a port must be" in out.stderr and "65535" in out.stderr


def test_hook_timeout_message_says_what_is_allowed(cli_env: dict[str, str]) -> None:
    event = {"hook_event_name": "PreToolUse", "session_id": "s1", "tool_name": "Bash", "tool_input": {}}
    for bad in ("0", "3001", "-5"):
        out = subprocess.run(
            [*HITL, "hook", "claude-code", "--timeout", bad],
            input=json.dumps(event), env=cli_env, capture_output=True, text=True, timeout=60,
        )
        assert out.returncode == 0, out  # the hook always answers
        answer = json.loads(out.stdout)["hookSpecificOutput"]
        assert answer["permissionDecision"] == "deny"
        reason = answer["permissionDecisionReason"]
        assert f"--timeout must be greater than 0 and at most 3000 seconds, got '{bad}'" in reason, reason
