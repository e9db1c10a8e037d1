"""`hitl token ...` and `hitl serve` as real subprocesses."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx

from hitl_tui.server.credentials import hash_token

from .conftest import HITL
from .server_utils import free_port, server_env


def hitl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HITL, *args], env=env, capture_output=True, text=True, timeout=60)


def test_token_lifecycle_and_the_secret_is_never_stored(tmp_path: Path) -> None:
    db = tmp_path / "team.db"
    env = {**server_env(tmp_path), "HITL_STORE": str(db)}
    made = hitl(env, "--as", "ops", "token", "create", "--name", "alice", "--role", "reviewer")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("hitl_") and len(secret) > 40
    assert "shown once" in made.stderr
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("team.db*"))
    assert secret.encode() not in raw
    assert hash_token(secret).encode() in raw

    listed = hitl(env, "token", "ls", "--json")
    assert [(t["name"], t["role"], t["created_by"], t["revoked_at"]) for t in json.loads(listed.stdout)] == [
        ("alice", "reviewer", "ops", None)
    ]
    assert secret not in listed.stdout
    dup = hitl(env, "token", "create", "--name", "alice", "--role", "admin")
    assert dup.returncode == 1 and "revoke it first" in dup.stderr
    bad = hitl(env, "token", "create", "--name", "alice smith", "--role", "admin")
    assert bad.returncode == 3 and "invalid token name" in bad.stderr
    wrong_role = hitl(env, "token", "create", "--name", "x", "--role", "god")
    assert wrong_role.returncode == 64

    revoked = hitl(env, "token", "revoke", "alice")
    assert revoked.returncode == 0 and "revoked token alice" in revoked.stdout
    table = hitl(env, "token", "ls")
    assert "alice" in table.stdout and "revoked" in table.stdout
    again = hitl(env, "token", "revoke", "alice")
    assert again.returncode == 3 and "no active token" in again.stderr


def test_token_commands_take_store_after_the_subcommand_too(tmp_path: Path) -> None:
    env = server_env(tmp_path)
    db = tmp_path / "elsewhere.db"
    made = hitl(env, "token", "create", "--name", "bot", "--role", "agent", "--store", f"sqlite:///{db}", "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["role"] == "agent"
    listed = hitl(env, "--store", str(db), "token", "ls", "--json")
    assert [t["name"] for t in json.loads(listed.stdout)] == ["bot"]


def test_serve_with_the_global_store_flag(tmp_path: Path) -> None:
    db = tmp_path / "global.db"
    env = server_env(tmp_path)
    secret = hitl(env, "--store", str(db), "token", "create", "--name", "root", "--role", "admin").stdout.strip()
    port = free_port()
    proc = subprocess.Popen([*HITL, "--store", str(db), "serve", "--port", str(port), "--log-level", "warning"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.05)
        me = httpx.get(f"{url}/v1/whoami", headers={"Authorization": f"Bearer {secret}"})
        assert me.json() == {"name": "root", "role": "admin"}  # the server opened the global --store
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}" in err and "global.db" in err


def test_refusals_exit_1_through_the_server_as_on_the_embedded_store(tmp_path: Path) -> None:
    """Self-review and a token without the right are refusals (exit 1) on both backends, not errors (3)."""
    from .server_utils import ServerProcess, Team, sqlite_url

    proc = ServerProcess(sqlite_url(tmp_path), tmp_path).start()
    try:
        team = Team(proc)
        env = {k: v for k, v in server_env(tmp_path).items() if not k.startswith("HITL_")}
        env.update({"HITL_SERVER": team.url, "HITL_CONFIG": str(tmp_path / "none.toml"), "HITL_WARM": "0"})
        with team.client("root") as root:
            own = root.post("/v1/requests", json={"agent": "alice", "tool": "deploy", "args": {}}).json()["id"]
            other = root.post("/v1/requests", json={"agent": "bot", "tool": "deploy", "args": {}}).json()["id"]
        self_review = hitl({**env, "HITL_TOKEN": team.tokens["alice"]}, "approve", str(own))
        assert self_review.returncode == 1 and "self-review" in self_review.stderr
        agent = hitl({**env, "HITL_TOKEN": team.tokens["bot"]}, "approve", str(other))
        assert agent.returncode == 1 and "reviewer or admin token" in agent.stderr
        bad = hitl({**env, "HITL_TOKEN": "hitl_not-a-token"}, "approve", str(other))
        assert bad.returncode == 3  # an unknown token is an error, not a refusal
        ok = hitl({**env, "HITL_TOKEN": team.tokens["bob"]}, "approve", str(other))
        assert ok.returncode == 0, ok.stderr
        again = hitl({**env, "HITL_TOKEN": team.tokens["alice"]}, "deny", str(other), "--reason", "no")
        assert again.returncode == 1 and "already approved" in again.stderr
    finally:
        proc.stop()
