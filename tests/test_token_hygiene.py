"""A token is a secret: surrounding whitespace (a pasted newline) is stripped, a token that cannot
go into a header is refused without being echoed, and no error HttpBackend raises carries it, not
even one built from an httpx exception or from a server's answer that quotes it. Through the CLI,
`hitl hook claude-code` (whose reason the model reads) and HttpBackend, against a real `hitl serve`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from hitl_tui.backend.http import HttpBackend
from hitl_tui.errors import HitlError, InvalidInput, StoreUnavailable

from .conftest import HITL
from .server_utils import Team, server_env, serving
from .server_utils import module_team as module_team  # the fixture

MALFORMED = "malformed token (it has whitespace or control characters)"


def hitl(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HITL, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)


def env_with(team: Team, tmp: Path, token: str) -> dict[str, str]:
    return {**server_env(tmp), "HITL_SERVER": team.url, "HITL_TOKEN": token}


def leaks(secret: str, *texts: str) -> bool:
    """Whether any text shows 16 characters in a row of the secret (its printable part: a repr
    that escapes a control character in the middle still shows the rest)."""
    core = "".join(c for c in secret if "!" <= c <= "~")
    return any(core[i : i + 16] in t for i in range(len(core) - 15) for t in texts)


@pytest.mark.parametrize("pad", [" ", "\n", "\r\n", "\t ", "  \n"], ids=["space", "lf", "crlf", "tab", "mixed"])
def test_surrounding_whitespace_is_stripped(module_team: Team, tmp_path: Path, pad: str) -> None:
    token = module_team.tokens["alice"]
    out = hitl(env_with(module_team, tmp_path, token + pad), "ls")
    assert out.returncode == 0, out.stderr
    lead = hitl(env_with(module_team, tmp_path, pad + token), "ls", "--json")
    assert lead.returncode == 0, lead.stderr
    flag = hitl(server_env(tmp_path), "--server", module_team.url, "--token", token + pad, "ls")
    assert flag.returncode == 0, flag.stderr


@pytest.mark.parametrize("inside", [" ", "\t", "\x01", "\x7f"], ids=["space", "tab", "ctrl-a", "del"])
def test_a_token_with_whitespace_or_control_characters_inside_is_refused_unechoed(
    module_team: Team, tmp_path: Path, inside: str
) -> None:
    good = module_team.tokens["alice"]
    bad = good[:20] + inside + good[20:]
    out = hitl(env_with(module_team, tmp_path, bad + "\n"), "ls")
    assert out.returncode == 3
    assert f"hitl: {MALFORMED}" in out.stderr
    assert not leaks(bad, out.stdout, out.stderr)


def test_a_non_ascii_token_is_refused_unechoed(module_team: Team, tmp_path: Path) -> None:
    bad = module_team.tokens["alice"] + "é"
    out = hitl(env_with(module_team, tmp_path, bad), "ls")
    assert out.returncode == 3 and "malformed token" in out.stderr
    assert not leaks(bad, out.stdout, out.stderr)


def _hook_event() -> str:
    return json.dumps({
        "session_id": "3f1c2a9e-7b1d-4c55-9a0e-0d5be0c0ffee", "hook_event_name": "PreToolUse",
        "cwd": "/home/dev/app", "tool_name": "Read", "tool_input": {"file_path": "/etc/hosts"},
        "tool_use_id": "toolu_01ABCDEF",
    })


def test_the_hook_never_shows_the_model_the_token(module_team: Team, tmp_path: Path) -> None:
    good = module_team.tokens["bot"]
    bad = good[:20] + "\x01" + good[20:] + "\n"
    out = hitl(env_with(module_team, tmp_path, bad), "hook", "claude-code", stdin=_hook_event())
    assert out.returncode == 0, out.stderr
    spec = json.loads(out.stdout)["hookSpecificOutput"]
    assert spec["permissionDecision"] == "deny"  # fails closed
    assert MALFORMED in spec["permissionDecisionReason"]
    assert not leaks(bad, out.stdout, out.stderr)

    padded = hitl(env_with(module_team, tmp_path, good + " \n"), "hook", "claude-code", "--agent", "bot",
                  "--timeout", "1", stdin=_hook_event())
    assert padded.returncode == 0, padded.stderr
    reason = json.loads(padded.stdout)["hookSpecificOutput"].get("permissionDecisionReason", "")
    assert "malformed" not in reason and "Illegal header" not in reason and "cannot reach" not in reason
    assert not leaks(good, padded.stdout, padded.stderr)


async def test_http_backend_strips_and_refuses(module_team: Team) -> None:
    token = module_team.tokens["alice"]
    async with HttpBackend(module_team.url, f"\n {token}\r\n") as b:
        assert b.token == token
        assert (await b.whoami()).name == "alice"
    async with HttpBackend(module_team.url, "  \n") as b:  # nothing left: no token at all
        assert b.token is None
    with pytest.raises(InvalidInput) as info:
        HttpBackend(module_team.url, token[:10] + "\n" + token[10:])
    assert info.value.message == MALFORMED and not leaks(token, str(info.value))


async def test_an_httpx_error_that_quotes_the_header_is_scrubbed(module_team: Team) -> None:
    """Defence in depth: a token that got past the constructor (set afterwards, as a caller might)
    makes httpx refuse the header and quote it; the message and its chain must not carry it."""
    token = module_team.tokens["alice"]
    b = HttpBackend(module_team.url, token)
    b.token = token + "\n"
    try:
        with pytest.raises(StoreUnavailable) as info:
            await b.whoami()
    finally:
        await b.close()
    err = info.value
    assert "cannot reach the server" in err.message and "<token>" in err.message
    assert not leaks(token, err.message, str(err), repr(err.__cause__), repr(err.__context__ if not
                                                                           err.__suppress_context__ else None))


class _Echo(BaseHTTPRequestHandler):
    """A real HTTP server (a misbehaving proxy, say) whose error answers quote the Authorization header."""

    status = 500

    def do_GET(self) -> None:
        body = json.dumps({"error": "Oops", "message": f"bad header: {self.headers.get('Authorization')}"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=[500, 401, 403, 418])
def echo(request: pytest.FixtureRequest) -> Iterator[str]:
    with serving(_Echo, status=request.param) as url:
        yield url


async def test_a_server_answer_that_quotes_the_token_is_scrubbed(echo: str) -> None:
    token = "hitl_" + "s3cr3t" * 7
    async with HttpBackend(echo, token) as b:
        with pytest.raises(HitlError) as info:
            await b.whoami()
    assert "bad header: Bearer <token>" in info.value.message
    assert not leaks(token, info.value.message, str(info.value))


async def test_a_password_or_query_in_the_server_url_is_never_shown() -> None:
    """`--server http://u:PASSWORD@host/?token=T`: error messages and the console's status line
    show the URL with the password masked and without its query."""
    import socket

    from hitl_tui.backend.http import HttpBackend
    from hitl_tui.errors import HitlError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    b = HttpBackend(f"http://u:s3cretpw@127.0.0.1:{port}/hitl?token=qtok123", "hitl_x", reconnect_for=0)
    try:
        assert b.describe() == f"http://u:***@127.0.0.1:{port}/hitl"
        try:
            await b.list_requests()
        except HitlError as exc:
            message = exc.message
        else:
            raise AssertionError("a closed port answered")
        assert "cannot reach the server at" in message
        assert "s3cretpw" not in message and "qtok123" not in message, message
    finally:
        await b.close()
