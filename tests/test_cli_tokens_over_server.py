"""`hitl token create/ls/revoke` with a server configured: they go through the server's token API
(``/v1/tokens``) with the admin token, never to a local store; the command's own ``--store`` still
works on a store directly (making the first admin token). The real `hitl serve`, the real CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from .conftest import HITL
from .server_utils import Team, free_port, server_env
from .server_utils import module_pg_team as module_pg_team  # fixtures, re-exported
from .server_utils import module_team as module_team


@pytest.fixture(params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest) -> Team:
    """The server on SQLite, then on PostgreSQL (skipped without it)."""
    return request.getfixturevalue("module_team" if request.param == "sqlite" else "module_pg_team")

TOKEN_FIELDS = {"token", "name", "role", "created_at", "created_by", "revoked_at"}


def hitl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HITL, *args], env=env, capture_output=True, text=True, timeout=60)


def client_env(tmp: Path) -> dict[str, str]:
    """No HITL_STORE, and a data directory of its own: a local default store would show up there."""
    env = server_env(tmp)
    env["XDG_DATA_HOME"] = str(tmp / "xdg-data")
    env["HOME"] = str(tmp / "home")
    return env


def no_local_store(tmp: Path) -> bool:
    return not list(tmp.glob("xdg-data/**/*.db*")) and not list(tmp.glob("home/**/*.db*"))


def whoami(team: Team, token: str) -> httpx.Response:
    return httpx.get(f"{team.url}/v1/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def names_on_server(team: Team) -> dict[str, bool]:
    with team.client("root") as c:
        return {t["name"]: t["revoked_at"] is None for t in c.get("/v1/tokens").json()}


def test_create_over_server_makes_a_token_the_server_accepts(served: Team, tmp_path: Path) -> None:
    module_team = served
    env = client_env(tmp_path)
    admin = ("--server", module_team.url, "--token", module_team.tokens["root"])
    made = hitl(env, *admin, "token", "create", "--name", "bot2", "--role", "agent")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("hitl_") and made.stdout == secret + "\n"  # as on the store: the token alone
    assert "shown once" in made.stderr
    assert whoami(module_team, secret).json() == {"name": "bot2", "role": "agent"}

    as_json = hitl(env, *admin, "token", "create", "--name", "bot3", "--role", "reviewer", "--json")
    assert as_json.returncode == 0, as_json.stderr
    out = json.loads(as_json.stdout)
    assert set(out) == TOKEN_FIELDS and out["created_by"] == "root" and out["role"] == "reviewer"
    assert whoami(module_team, out["token"]).json() == {"name": "bot3", "role": "reviewer"}

    dup = hitl(env, *admin, "token", "create", "--name", "bot2", "--role", "admin")
    assert dup.returncode == 1 and "revoke it first" in dup.stderr
    bad = hitl(env, *admin, "token", "create", "--name", "bot two", "--role", "admin")
    assert bad.returncode == 3 and "invalid token name" in bad.stderr
    assert no_local_store(tmp_path)


def test_ls_and_revoke_over_server_from_the_environment(served: Team, tmp_path: Path) -> None:
    module_team = served
    victim = "carol"
    with module_team.client("root") as c:
        secret = c.post("/v1/tokens", json={"name": victim, "role": "reviewer"}).json()["token"]
    env = {**client_env(tmp_path), "HITL_SERVER": module_team.url, "HITL_TOKEN": module_team.tokens["root"]}

    listed = hitl(env, "token", "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {t["name"]: t for t in json.loads(listed.stdout)}
    assert {"bot", "alice", "bob", "root", victim} <= set(rows)
    assert rows[victim]["role"] == "reviewer" and rows[victim]["revoked_at"] is None
    assert all(tok not in listed.stdout for tok in module_team.tokens.values())
    table = hitl(env, "token", "ls")
    assert table.returncode == 0 and "root" in table.stdout and victim in table.stdout

    revoked = hitl(env, "token", "revoke", victim)
    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked token {victim} (reviewer)" in revoked.stdout
    assert whoami(module_team, secret).status_code == 401  # it stopped working on the server
    assert names_on_server(module_team)[victim] is False
    table = hitl(env, "token", "ls")
    assert any(victim in line and "revoked" in line for line in table.stdout.splitlines())

    again = hitl(env, "token", "revoke", victim)
    assert again.returncode == 3 and "no active token" in again.stderr
    for odd in ("nobody", "..", "a/b", ""):
        gone = hitl(env, "token", "revoke", odd)
        assert gone.returncode == 3 and "no active token" in gone.stderr, (odd, gone.stderr)
    as_json = hitl(env, "token", "create", "--name", "dave", "--role", "agent", "--json")
    revoked_json = hitl(env, "token", "revoke", "dave", "--json")
    assert json.loads(revoked_json.stdout)["revoked_at"] is not None, as_json.stderr
    assert no_local_store(tmp_path)


def test_the_config_file_server_is_used_too(module_team: Team, tmp_path: Path) -> None:
    env = client_env(tmp_path)
    Path(env["HITL_CONFIG"]).write_text(f'server = "{module_team.url}"\ntoken = "{module_team.tokens["root"]}"\n')
    listed = hitl(env, "token", "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "root" in {t["name"] for t in json.loads(listed.stdout)}
    assert no_local_store(tmp_path)


def test_only_an_admin_token_manages_tokens_over_server(module_team: Team, tmp_path: Path) -> None:
    env = {**client_env(tmp_path), "HITL_SERVER": module_team.url}
    for who in ("alice", "bot"):
        as_who = {**env, "HITL_TOKEN": module_team.tokens[who]}
        made = hitl(as_who, "token", "create", "--name", f"sneaky-{who}", "--role", "admin")
        assert made.returncode == 1 and "needs an admin token" in made.stderr, made.stderr
        assert made.stdout == ""
        listed = hitl(as_who, "token", "ls")
        assert listed.returncode == 1 and "needs an admin token" in listed.stderr
        revoked = hitl(as_who, "token", "revoke", "root")
        assert revoked.returncode == 1 and "needs an admin token" in revoked.stderr
    assert "sneaky-alice" not in names_on_server(module_team)
    assert names_on_server(module_team)["root"] is True

    no_token = hitl(env, "token", "ls")
    assert no_token.returncode == 3 and "check --token / HITL_TOKEN" in no_token.stderr
    wrong = hitl({**env, "HITL_TOKEN": "hitl_not-a-token"}, "token", "revoke", "alice")
    assert wrong.returncode == 3 and "check --token / HITL_TOKEN" in wrong.stderr
    assert names_on_server(module_team)["alice"] is True
    assert no_local_store(tmp_path)


def test_a_server_that_is_down_fails_and_touches_no_local_store(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = {**client_env(tmp_path), "HITL_SERVER": url, "HITL_TOKEN": "hitl_whatever"}
    for args in (("create", "--name", "x", "--role", "agent"), ("ls",), ("revoke", "x")):
        out = hitl(env, "token", *args)
        assert out.returncode == 3, (args, out.stderr)
        assert f"backend unavailable: cannot reach the server at {url}" in out.stderr
        assert out.stdout == ""
    assert no_local_store(tmp_path)


def test_the_commands_own_store_wins_over_a_configured_server(module_team: Team, tmp_path: Path) -> None:
    """Bootstrap: the first admin token is made on the server's store, whatever HITL_SERVER says."""
    env = {**client_env(tmp_path), "HITL_SERVER": module_team.url}  # and no token at all
    store = module_team.server.store_url
    made = hitl(env, "token", "create", "--name", "boot-admin", "--role", "admin", "--store", store)
    assert made.returncode == 0, made.stderr
    assert whoami(module_team, made.stdout.strip()).json() == {"name": "boot-admin", "role": "admin"}
    listed = hitl(env, "token", "ls", "--json", "--store", store)
    assert listed.returncode == 0 and "boot-admin" in {t["name"] for t in json.loads(listed.stdout)}
    revoked = hitl(env, "token", "revoke", "boot-admin", "--store", store)
    assert revoked.returncode == 0, revoked.stderr
    assert whoami(module_team, made.stdout.strip()).status_code == 401
    assert no_local_store(tmp_path)
