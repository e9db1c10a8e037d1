"""The real ``hitl`` CLI against hostile configuration and input: one-line errors, never a traceback,
and nothing written.

``tests/test_cli_core.py`` covers a few config mistakes (bad TOML, an unknown key, a bad value) and
an unopenable store; this file covers the rest: broken files (not UTF-8, nested too deeply, a
directory), unknown keys in every section, wrong types, bad store paths and URLs, bad server URLs,
and invalid UTF-8 in command-line text (which Python hands over as lone surrogates).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from hitl_tui.errors import InvalidInput
from hitl_tui.models import EscalationCreate, MessageRole, RequestCreate

from .conftest import HITL
from .server_utils import free_port

BAD_UTF8 = os.fsdecode(b"caf\xe9 \xff\xfe")  # what Python makes of a Latin-1 argument: lone surrogates


def run(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HITL, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          errors="surrogateescape")


def one_line_error(p: subprocess.CompletedProcess[str], code: int = 3) -> str:
    """The process failed with ``code`` and said why in exactly one line, without a traceback."""
    assert "Traceback" not in p.stderr, p.stderr
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert p.returncode == code, (p.returncode, p.stderr)
    assert len(lines) == 1 and lines[0].startswith("hitl"), p.stderr
    return lines[0]


def store_rows(path: str) -> int:
    if not Path(path).exists():
        return 0
    conn = sqlite3.connect(path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]) if "events" in tables else 0
    finally:
        conn.close()


# =========================================================================== config files

CONFIGS: list[tuple[str, bytes, str]] = [
    ("not UTF-8", b"\xff\xfe\x00store = 1", "not UTF-8"),
    ("NUL byte", b'store = "a\x00b"\n', "not valid TOML"),
    ("nested too deeply", b"a = " + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    ("duplicate key", b'store = "a"\nstore = "b"\n', "not valid TOML"),
    ("table redefined", b"[serve]\nport = 1\n[serve]\nport = 2\n", "not valid TOML"),
    ("unterminated string", b'reviewer = "alice\n', "not valid TOML"),
    ("unknown section", b"[plugins]\nx = 1\n", "plugins: unknown key"),
    ("unknown key in serve", b"[serve]\nlisten_everywhere = true\n", "serve.listen_everywhere: unknown key"),
    ("unknown key in notify", b"[notify]\nwebhook = 'http://x'\n", "notify.webhook: unknown key"),
    ("unknown key in policy", b"[policy]\nauto_approve = true\n", "policy.auto_approve: unknown key"),
    ("unknown key in console", b"[console]\ncolour = 'red'\n", "console.colour: unknown key"),
    ("wrong type", b"reviewer = 5\n", "reviewer"),
    ("wrong type in a list", b"[escalation]\ntriggers = [1, 2]\n", "escalation.triggers"),
    ("section as a value", b'serve = "yes"\n', "serve"),
    ("value as a section", b"[reviewer]\nname = 'x'\n", "reviewer"),
    ("thresholds out of order", b"[policy.thresholds]\nautonomous = 50\napproval = 80\n", "policy.thresholds"),
    ("negative timeout", b"[policy]\ndefault_timeout_s = -1\n", "policy.default_timeout_s"),
    ("huge number", b"[serve]\nport = 1" + b"0" * 400 + b"\n", "serve.port"),
    ("bad demote mode", b'[autonomy]\ndemote_on_flag = "sometimes"\n', "autonomy.demote_on_flag"),
    ("bad server URL in the file", b'server = "http://[::1"\n', "server: not a valid URL"),
]


@pytest.mark.parametrize(("what", "content", "expected"), CONFIGS, ids=[c[0] for c in CONFIGS])
def test_bad_config_file_is_a_one_line_error(cli_env: dict[str, str], what: str, content: bytes, expected: str) -> None:
    Path(cli_env["HITL_CONFIG"]).write_bytes(content)
    for command in (["ls"], ["request", "deploy"], ["config", "show"]):
        line = one_line_error(run(cli_env, *command))
        assert expected in line and cli_env["HITL_CONFIG"] in line, line
    assert store_rows(cli_env["HITL_STORE"]) == 0


def test_config_that_is_a_directory(cli_env: dict[str, str]) -> None:
    Path(cli_env["HITL_CONFIG"]).mkdir()
    assert "cannot read" in one_line_error(run(cli_env, "ls"))


def test_config_named_on_the_command_line_that_does_not_parse(cli_env: dict[str, str], tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_bytes(b"[[[")
    line = one_line_error(run(cli_env, "--config", str(other), "ls"))
    assert str(other) in line and "not valid TOML" in line


# =========================================================================== store paths


def _store_cases(tmp: Path) -> list[tuple[str, str, str]]:
    blocker = tmp / "a-file"
    blocker.write_text("x")
    garbage = tmp / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    return [
        ("a directory", str(tmp), "cannot open store"),
        ("under a regular file", str(blocker / "x.db"), "cannot open store"),
        ("not a database", str(garbage), "not a database"),
        ("name too long", str(tmp / ("x" * 5000)), "cannot open store"),
        ("a device", "/dev/null/x.db", "cannot open store"),
        ("proc", "/proc/version", "cannot open store"),
        ("unreachable PostgreSQL", f"postgresql://nobody@127.0.0.1:{free_port()}/nothing",
         "cannot open PostgreSQL store"),
    ]


@pytest.mark.parametrize("index", range(7), ids=["dir", "under-file", "garbage", "long", "device", "proc", "pg"])
def test_bad_store_path_is_a_one_line_error(cli_env: dict[str, str], tmp_path: Path, index: int) -> None:
    what, store, expected = _store_cases(tmp_path)[index]
    for command in (["ls"], ["request", "deploy"], ["audit", "verify"]):
        p = run(cli_env, "--store", store, *command)
        assert expected in one_line_error(p), (what, p.stderr)


def test_gate_on_an_unreachable_postgres_store_says_it_in_one_line(cli_env: dict[str, str]) -> None:
    # (the event hub's "event hub stopped" warning used to reach stderr as a second line)
    store = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"
    line = one_line_error(run(cli_env, "--store", store, "request", "deploy"))
    assert "could not evaluate the policy: cannot open PostgreSQL store" in line


def test_garbage_store_file_is_left_untouched(cli_env: dict[str, str], tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    one_line_error(run(cli_env, "--store", str(garbage), "request", "deploy"))
    assert garbage.read_bytes() == b"this is not a database" * 100


# =========================================================================== server URLs

SERVER_URLS = [
    ("no scheme", "localhost:8750", "http:// or https://"),
    ("other scheme", "ftp://example.com", "http:// or https://"),
    ("no host", "http://", "host"),
    ("space in host", "https://exa mple.com", "host"),
    ("broken IPv6", "http://[::1", "not a valid URL"),
    ("port out of range", "http://127.0.0.1:99999", "not a valid URL"),
    ("port not a number", "http://127.0.0.1:http", "not a valid URL"),
    ("port zero", "http://127.0.0.1:0", "port 0"),
    ("nobody listens", "http://127.0.0.1:{port}", "backend unavailable"),
]


@pytest.mark.parametrize(("what", "url", "expected"), SERVER_URLS, ids=[s[0] for s in SERVER_URLS])
def test_bad_server_url_is_a_one_line_error(cli_env: dict[str, str], what: str, url: str, expected: str) -> None:
    env = {k: v for k, v in cli_env.items() if k != "HITL_STORE"}
    url = url.format(port=free_port())
    for how in ("flag", "env", "file"):
        args: list[str] = ["ls"]
        e = dict(env)
        if how == "flag":
            args = ["--server", url, "ls"]
        elif how == "env":
            e["HITL_SERVER"] = url
        else:
            Path(e["HITL_CONFIG"]).write_text(f"server = {url!r}\n".replace("'", '"'))
        line = one_line_error(run(e, *args))
        assert expected in line, (how, line)
    Path(env["HITL_CONFIG"]).unlink()


def test_credentials_in_a_bad_server_url_are_not_echoed(cli_env: dict[str, str]) -> None:
    env = {k: v for k, v in cli_env.items() if k != "HITL_STORE"}
    line = one_line_error(run(env, "--server", "http://admin:s3cret@127.0.0.1:99999/", "ls"))
    assert "s3cret" not in line


async def test_http_backend_refuses_an_unparseable_url_cleanly() -> None:
    """A URL that starts right but does not parse is refused when the backend is made: one line,
    an InvalidInput (not httpx's own error), and never the credentials it carries."""
    from hitl_tui.backend.http import HttpBackend

    with pytest.raises(InvalidInput):
        async with HttpBackend("http://127.0.0.1:99999", "hitl_x") as b:
            await b.get_request(1)
    for url in ("http://admin:s3cret@127.0.0.1:99999/", "https://admin:s3cret@/x", "http://admin:s3cret@h st:1",
                "ftp://admin:s3cret@127.0.0.1/", "http://admin:s3cret@127.0.0.1:0"):
        with pytest.raises(InvalidInput) as caught:
            HttpBackend(url, "hitl_x")
        message = caught.value.message
        assert "s3cret" not in message and "\n" not in message and message.startswith("the server URL"), url


# =========================================================================== hostile text on the command line


def test_invalid_utf8_arguments_are_one_line_errors_and_write_nothing(cli_env: dict[str, str]) -> None:
    import asyncio

    from hitl_tui.store.sqlite import SQLiteStore

    async def seed() -> tuple[int, int]:
        s = SQLiteStore(cli_env["HITL_STORE"])
        try:
            rid = (await s.create_request(RequestCreate(agent="bot", tool="deploy"))).id
            eid = (await s.create_escalation(EscalationCreate(agent="bot", message="help"))).id
            return rid, eid
        finally:
            await s.close()

    rid, eid = asyncio.run(seed())
    before = store_rows(cli_env["HITL_STORE"])
    commands = [
        ["request", "deploy", "--summary", BAD_UTF8],
        ["request", BAD_UTF8],
        ["request", "deploy", "--args", '{"path": "' + BAD_UTF8 + '"}'],
        ["escalate", BAD_UTF8],
        ["reply", str(eid), BAD_UTF8],
        ["takeover", str(eid), "--note", BAD_UTF8],
        ["cancel", str(rid), "--reason", BAD_UTF8],
        ["--as", "alice", "approve", str(rid), "--reason", BAD_UTF8],
        ["--as", "alice", "deny", str(rid), "--reason", BAD_UTF8],
        ["review", "log", "Read", "--result", BAD_UTF8],
        ["ls", "--agent", BAD_UTF8],
    ]
    for command in commands:
        p = run(cli_env, *command)
        line = one_line_error(p)
        assert any(w in line.lower() for w in ("unicode", "utf-8", "surrogate")), (command, line)
    assert store_rows(cli_env["HITL_STORE"]) == before


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"], indirect=True)
async def test_the_stores_refuse_lone_surrogates_as_invalid_input(make_store) -> None:
    store = make_store()
    esc = await store.create_escalation(EscalationCreate(agent="bot", message="help"))
    req = await store.create_request(RequestCreate(agent="bot", tool="deploy"))
    seq = await store.last_seq()
    with pytest.raises(InvalidInput, match="Unicode"):
        await store.post_message(esc.id, "x\udcff", "bot", MessageRole.agent)
    with pytest.raises(InvalidInput, match="Unicode"):
        await store.cancel_request(req.id, "bot", "why\ud800")
    with pytest.raises(InvalidInput, match="Unicode"):
        await store.list_requests(None, search="\udcff")
    assert await store.last_seq() == seq
    assert (await store.verify_audit()).ok
