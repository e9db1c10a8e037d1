"""The real `hitl` CLI in a subprocess: listing, showing, deciding, audit, config errors."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from hitl_tui.models import RequestCreate
from hitl_tui.store.sqlite import SQLiteStore

from .conftest import HITL


def run(env: dict[str, str], *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HITL, *args], env=env, capture_output=True, text=True, timeout=60, input=input)


def seed(path: str, *reqs: RequestCreate) -> list[int]:
    async def go() -> list[int]:
        s = SQLiteStore(path)
        try:
            return [(await s.create_request(r)).id for r in reqs]
        finally:
            await s.close()

    return asyncio.run(go())


def test_help_lists_commands_and_exit_codes(cli_env: dict[str, str]) -> None:
    p = run(cli_env, "--help")
    assert p.returncode == 0
    for word in ("ls", "show", "approve", "deny", "audit", "config", "exit codes", "HITL_STORE"):
        assert word in p.stdout


def test_ls_empty_store(cli_env: dict[str, str]) -> None:
    p = run(cli_env, "ls")
    assert p.returncode == 0, p.stderr
    assert "no pending requests" in p.stdout
    assert Path(cli_env["HITL_STORE"]).exists()


def test_ls_show_approve_deny_round_trip(cli_env: dict[str, str]) -> None:
    a, b = seed(
        cli_env["HITL_STORE"],
        RequestCreate(agent="deploy-bot", tool="deploy", args={"env": "prod"}, summary="ship 1.2"),
        RequestCreate(agent="mailer", tool="send_email", args={"to": "x@example.com"}),
    )
    p = run(cli_env, "ls")
    assert p.returncode == 0 and "ship 1.2" in p.stdout and "send_email" in p.stdout
    rows = json.loads(run(cli_env, "ls", "--json").stdout)
    assert {r["id"] for r in rows} == {a, b}
    shown = run(cli_env, "show", str(a))
    assert '"env": "prod"' in shown.stdout and "deploy-bot" in shown.stdout

    ok = run(cli_env, "--as", "alice", "approve", str(a), "--reason", "fine", "--args", '{"env": "staging"}')
    assert ok.returncode == 0, ok.stderr
    rec = json.loads(run(cli_env, "show", str(a), "--json").stdout)
    assert rec["status"] == "approved" and rec["decided_by"] == "alice" and rec["edited_args"] == {"env": "staging"}

    again = run(cli_env, "--as", "bob", "deny", str(a), "--reason", "too late")
    assert again.returncode == 1
    assert "already approved by alice" in again.stderr

    d = run(cli_env, "--as", "bob", "deny", str(b), "--reason", "spam")
    assert d.returncode == 0
    assert json.loads(run(cli_env, "ls", "--status", "all", "--json").stdout)[0]["status"] in ("approved", "denied")


def test_a_repeated_decision_or_vote_says_nothing_changed(cli_env: dict[str, str]) -> None:
    """The same reviewer repeating a decision (or a quorum vote) is idempotent: exit 0, but it says
    so instead of reporting a new vote or decision; another reviewer is refused (exit 1)."""
    one, quorum = seed(
        cli_env["HITL_STORE"],
        RequestCreate(agent="bot", tool="deploy"),
        RequestCreate(agent="bot", tool="drop_table", required_approvals=2),
    )
    first = run(cli_env, "--as", "alice", "approve", str(one))
    assert first.returncode == 0 and first.stdout == f"request {one} approved\n"
    again = run(cli_env, "--as", "alice", "approve", str(one))
    assert again.returncode == 0 and again.stdout == f"request {one} was already approved by alice; nothing changed\n"
    other = run(cli_env, "--as", "bob", "approve", str(one))
    assert other.returncode == 1 and "already approved by alice" in other.stderr
    vote = run(cli_env, "--as", "alice", "approve", str(quorum), "--reason", "looks fine")
    assert vote.returncode == 0 and vote.stdout == f"request {quorum}: vote recorded (1 of 2 approvals)\n"
    again = run(cli_env, "--as", "alice", "approve", str(quorum), "--reason", "looks fine")
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"request {quorum}: your vote was already recorded (1 of 2 approvals); nothing changed\n"


def test_a_named_config_file_that_is_missing_is_an_error(cli_env: dict[str, str], tmp_path: Path) -> None:
    """`--config` with a typo must not silently mean the defaults (and the default store)."""
    p = run(cli_env, "--config", str(tmp_path / "typo.toml"), "ls")
    assert p.returncode == 3 and p.stderr == f"hitl: {tmp_path / 'typo.toml'}: no such config file\n"
    assert not Path(cli_env["HITL_STORE"]).exists()


def test_a_new_store_is_private_and_a_missing_directory_is_an_error(cli_env: dict[str, str], tmp_path: Path) -> None:
    """Requests carry agents' arguments: the store file (and so its -wal/-shm) is 0600 and the
    default data directory 0700. A typo'd directory in HITL_STORE is an error, not a new store."""
    import stat

    env = {**cli_env, "HITL_STORE": str(tmp_path / "s.db")}
    assert run(env, "request", "deploy").returncode == 0
    assert stat.S_IMODE((tmp_path / "s.db").stat().st_mode) == 0o600
    typo = {**cli_env, "HITL_STORE": str(tmp_path / "no-such-dir" / "s.db")}
    p = run(typo, "request", "deploy", "--wait")
    assert p.returncode == 3 and "does not exist" in p.stderr and not (tmp_path / "no-such-dir").exists()
    default = {k: v for k, v in cli_env.items() if k != "HITL_STORE"} | {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert run(default, "ls").returncode == 0
    [made] = (tmp_path / "xdg").iterdir()
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    assert stat.S_IMODE((made / "hitl.db").stat().st_mode) == 0o600


def test_the_console_without_a_terminal_says_so(cli_env: dict[str, str]) -> None:
    """`hitl </dev/null` (no command: the console) in a pipe or a cron job: exit 64 at once."""
    p = subprocess.run([*HITL], env=cli_env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert p.returncode == 64 and "the console needs a terminal" in p.stderr


def test_bad_input_is_one_line_error_and_writes_nothing(cli_env: dict[str, str]) -> None:
    (rid,) = seed(cli_env["HITL_STORE"], RequestCreate(agent="bot", tool="deploy"))
    p = run(cli_env, "approve", str(rid), "--args", "{not json")
    assert p.returncode == 3 and "not valid JSON" in p.stderr and "Traceback" not in p.stderr
    p = run(cli_env, "approve", str(rid), "--args", "[1, 2]")
    assert p.returncode == 3 and "JSON object" in p.stderr
    p = run(cli_env, "show", "999")
    assert p.returncode == 3 and "no request with id 999" in p.stderr
    p = run(cli_env, "approve", "not-a-number")
    assert p.returncode == 64
    assert json.loads(run(cli_env, "show", str(rid), "--json").stdout)["status"] == "pending"


def test_hostile_text_is_escaped_in_listings(cli_env: dict[str, str]) -> None:
    seed(cli_env["HITL_STORE"], RequestCreate(agent="bot", tool="x", summary="evil \x1b]52;c;aGk=\x07 \u202eabc"))
    p = run(cli_env, "ls")
    assert "\x1b" not in p.stdout and "\u202e" not in p.stdout and "\x07" not in p.stdout
    assert "\\x1b]52" in p.stdout and "\\u202e" in p.stdout


def test_audit_verify_detects_tampering(cli_env: dict[str, str]) -> None:
    (rid,) = seed(cli_env["HITL_STORE"], RequestCreate(agent="bot", tool="deploy", args={"n": 1}))
    assert run(cli_env, "--as", "alice", "approve", str(rid)).returncode == 0
    seed(cli_env["HITL_STORE"], RequestCreate(agent="bot", tool="deploy"))
    ok = run(cli_env, "audit", "verify")
    assert ok.returncode == 0 and "3 events verified" in ok.stdout

    conn = sqlite3.connect(cli_env["HITL_STORE"])
    conn.execute("UPDATE events SET actor = 'mallory' WHERE seq = 2")
    conn.commit()
    conn.close()
    bad = run(cli_env, "audit", "verify")
    assert bad.returncode == 1 and "event 2" in bad.stdout and "edited" in bad.stdout

    conn = sqlite3.connect(cli_env["HITL_STORE"])
    conn.execute("UPDATE events SET actor = 'alice' WHERE seq = 2")  # restore, then delete a row
    conn.execute("DELETE FROM events WHERE seq = 2")
    conn.commit()
    conn.close()
    report = json.loads(run(cli_env, "audit", "verify", "--json").stdout)
    assert not report["ok"] and any(p["seq"] == 3 for p in report["problems"])


def test_audit_export_jsonl(cli_env: dict[str, str]) -> None:
    (rid,) = seed(cli_env["HITL_STORE"], RequestCreate(agent="bot", tool="deploy"))
    run(cli_env, "--as", "alice", "deny", str(rid), "--reason", "not today")
    lines = [json.loads(x) for x in run(cli_env, "audit", "export").stdout.splitlines()]
    assert [e["kind"] for e in lines] == ["request.created", "request.decided"]
    assert lines[1]["actor"] == "alice" and lines[1]["payload"]["decision_reason"] == "not today"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("store = [unclosed", "not valid TOML"),
        ("colour = 'blue'\n", "colour: unknown key"),
        ("[policy]\nunknown_stage = 'sometimes'\n", "policy.unknown_stage"),
        ("[serve]\nport = 99999\n", "serve.port"),
    ],
)
def test_config_errors_name_key_and_file(cli_env: dict[str, str], content: str, expected: str) -> None:
    Path(cli_env["HITL_CONFIG"]).write_text(content)
    p = run(cli_env, "ls")
    assert p.returncode == 3
    assert expected in p.stderr and cli_env["HITL_CONFIG"] in p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_config_file_env_and_flag_precedence(cli_env: dict[str, str], tmp_path: Path) -> None:
    Path(cli_env["HITL_CONFIG"]).write_text(f'store = "{tmp_path / "from-file.db"}"\nreviewer = "filer"\n')
    env = {k: v for k, v in cli_env.items() if k != "HITL_STORE"}
    shown = json.loads(run(env, "config", "show").stdout)
    assert shown["store"].endswith("from-file.db") and shown["reviewer"] == "filer"
    env["HITL_STORE"] = str(tmp_path / "from-env.db")
    assert json.loads(run(env, "config", "show").stdout)["store"].endswith("from-env.db")
    flag = json.loads(run(env, "--store", str(tmp_path / "from-flag.db"), "config", "show").stdout)
    assert flag["store"].endswith("from-flag.db")
    assert run(env, "config", "path").stdout.strip() == cli_env["HITL_CONFIG"]


def test_unopenable_store_is_one_line_error(cli_env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    p = run(cli_env, "--store", str(blocker / "sub" / "x.db"), "ls")
    assert p.returncode == 3 and "Traceback" not in p.stderr and p.stderr.startswith("hitl:")
