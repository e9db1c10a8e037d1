"""Over a server the token names the actor: `hitl request --agent other --json` prints the agent the
server recorded, and `--as NAME` differing from the token's name warns once (a command that writes)."""

from __future__ import annotations

import json
import subprocess

from .conftest import HITL
from .server_utils import Team
from .server_utils import server as server  # the fixtures
from .server_utils import team as team


def hitl(env: dict[str, str], team: Team, who: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [*HITL, "--server", team.url, "--token", team.tokens[who], *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


def test_request_prints_the_recorded_agent(cli_env: dict[str, str], team: Team) -> None:
    out = hitl(cli_env, team, "bot", "request", "Deploy", "--agent", "other", "--json")
    assert out.returncode == 0, out
    data = json.loads(out.stdout)
    assert data["agent"] == "bot" == data["request"]["agent"]


def test_as_differing_from_the_token_warns_once(cli_env: dict[str, str], team: Team) -> None:
    rid = json.loads(hitl(cli_env, team, "bot", "request", "Deploy", "--json").stdout)["request_id"]
    out = hitl(cli_env, team, "alice", "--as", "bob", "approve", str(rid))
    assert out.returncode == 0, out
    warnings = [line for line in out.stderr.splitlines() if "warning" in line]
    assert warnings == ["hitl: warning: --as bob is ignored over a server: it records the token's name, alice"]
    shown = json.loads(hitl(cli_env, team, "alice", "show", str(rid), "--json").stdout)
    assert shown["decided_by"] == "alice"
    # the same name, or a command that writes nothing: no warning
    rid2 = json.loads(hitl(cli_env, team, "bot", "request", "Deploy2", "--json").stdout)["request_id"]
    same = hitl(cli_env, team, "alice", "--as", "alice", "deny", str(rid2), "--reason", "no")
    assert same.returncode == 0 and "warning" not in same.stderr, same
    reading = hitl(cli_env, team, "alice", "ls", "--as", "bob")
    assert reading.returncode == 0 and "warning" not in reading.stderr, reading


def test_confidence_out_of_range_is_a_usage_error(cli_env: dict[str, str]) -> None:
    for bad in ("150", "-1", "abc"):
        out = subprocess.run([*HITL, "request", "Deploy", "--confidence", bad], env=cli_env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 64, out
        assert "argument --confidence: the confidence must be" in out.stderr
