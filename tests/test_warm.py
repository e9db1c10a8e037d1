"""The warm daemon (``hitl warm``): a real daemon process in a private directory, real SQLite stores,
real ``hitl`` client processes. A command run warm answers exactly as it does in-process: same
stdout, stderr and exit code; it gets the client's stdin, environment and working directory; and
anything wrong with the daemon makes the client run the command itself."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import HITL, ROOT

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the warm daemon is tested on Linux (SO_PEERCRED)")


def hitl(
    env: dict[str, str], *args: str, stdin: str | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    # cwd: not the checkout, so PYTHONPATH decides which hitl_tui runs (the stale test runs a copy)
    return subprocess.run(
        [*HITL, *args], env=env, input=stdin, capture_output=True, text=True, timeout=timeout, cwd=cwd or "/"
    )


def status(env: dict[str, str]) -> dict[str, Any]:
    p = hitl({**env, "HITL_WARM": "0"}, "warm", "status", "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def eventually(check: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
    return out


def stop(env: dict[str, str]) -> None:
    """Stop the daemon of ``env`` and make sure it is gone."""
    pid = status(env).get("pid")
    hitl({**env, "HITL_WARM": "0"}, "warm", "stop")
    if pid:
        try:
            eventually(lambda: not alive(pid), "the daemon to exit", timeout=10)
        except AssertionError:
            os.kill(pid, signal.SIGKILL)  # leave nothing behind, and fail
            raise


@pytest.fixture
def warm_dir() -> Iterator[Path]:
    # short: a unix socket's path must fit in ~100 bytes, pytest's tmp_path may not
    d = Path(tempfile.mkdtemp(prefix="hw-"))
    try:
        yield d / "w"
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def warm_env(cli_env: dict[str, str], warm_dir: Path) -> Iterator[dict[str, str]]:
    """``cli_env`` with warm start on, a private daemon directory and a running daemon."""
    env = {**cli_env, "HITL_WARM": "1", "HITL_WARM_DIR": str(warm_dir), "HITL_REVIEWER": "alice"}
    started = hitl(env, "warm", "start")
    assert started.returncode == 0, started.stderr
    try:
        yield env
    finally:
        stop(env)


def cold(env: dict[str, str], store: Path) -> dict[str, str]:
    return {**env, "HITL_WARM": "0", "HITL_STORE": str(store)}


def hook_event(tool: str, tool_input: dict[str, Any]) -> str:
    return json.dumps(
        {
            "hook_event_name": "PreToolUse",
            "session_id": "5e55i0n-0001",
            "cwd": "/srv/app",
            "tool_name": tool,
            "tool_input": tool_input,
        }
    )


# =========================================================================== the client stays light


def test_the_client_imports_only_cheap_standard_modules() -> None:
    # What the import adds on top of what this interpreter loads at start-up anyway: site and
    # .pth files differ between machines (CI's interpreter has a .pth that imports certifi,
    # which loads threading), and those cost every Python command the same.
    p = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys; before = set(sys.modules); import hitl_tui.warm.client; "
            "print(json.dumps(sorted(set(sys.modules) - before)))",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr
    added = set(json.loads(p.stdout))
    assert "hitl_tui.warm.client" in added  # the detector works
    for heavy in (
        "pydantic",
        "hitl_tui.cli",
        "hitl_tui.config",
        "socket",
        "selectors",
        "asyncio",
        "subprocess",
        "argparse",
        "hashlib",
        "threading",
    ):
        assert heavy not in added, heavy


def test_the_client_finds_the_command_as_the_cli_does() -> None:
    from hitl_tui import cli
    from hitl_tui.warm import client

    assert client.VALUE_OPTIONS == cli._VALUE_OPTIONS
    for word in client.ELIGIBLE:
        assert word in cli.COMMAND_HOMES, word
    assert client.eligible(["--store", "x.db", "request", "deploy"])
    assert client.eligible(["--sto", "request", "approve", "request", "1"])  # the value of a prefix
    assert client.eligible(["hook", "claude-code", "--timeout", "5"])
    assert client.eligible(["approve", "--help"])
    for argv in (
        ["hook", "mcp"],
        ["hook"],
        ["mcp"],
        ["console"],
        [],
        ["--help"],
        ["serve"],
        ["demo"],
        ["warm", "status"],
        ["--store", "request", "console"],
        ["--version"],
    ):
        assert not client.eligible(argv), argv


# =========================================================================== parity


TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?")
AGE = re.compile(r" \d+[smhd] ")  # the age column of `hitl ls`: the two runs are seconds apart


def scenario(env: dict[str, str]) -> list[tuple[int, str, str]]:
    """Hook answers (allow, deny, bad JSON, bad flag), the request life cycle (file, show, approve,
    decide again: a conflict), help, usage and not-found errors."""
    store = env["HITL_STORE"]
    steps: list[tuple[tuple[str, ...], str | None]] = [
        (("policy", "rules", "add", "allow", "Read"), None),
        (("policy", "rules", "add", "deny", "Bash(rm:*)", "--reason", "never delete"), None),
        (("hook", "claude-code"), hook_event("Read", {"file_path": "/srv/app/README.md"})),
        (("hook", "claude-code"), hook_event("Bash", {"command": "rm -rf /srv/app"})),
        (("hook", "claude-code"), "{nope"),
        (("hook", "claude-code", "--timeout", "-1"), hook_event("Read", {"file_path": "/x"})),
        (("hook", "claude-code", "--bogus"), hook_event("Read", {"file_path": "/x"})),
        (("request", "deploy", "--args", '{"env": "prod"}', "--agent", "ci-bot"), None),
        (("ls",), None),
        (("approve", "1", "--reason", "fine"), None),
        (("approve", "1"), None),
        (("deny", "1", "--reason", "too late"), None),
        (("show", "999"), None),
        (("request", "--no-such-flag"), None),
        (("request", "--help"), None),
        (("hook", "claude-code", "--help"), None),
        (("--store", store, "ls", "--status", "approved"), None),
    ]
    out = []
    for args, stdin in steps:
        p = hitl(env, *args, stdin=stdin)
        texts = (AGE.sub(" AGE ", TIME.sub("TIME", text.replace(store, "STORE"))) for text in (p.stdout, p.stderr))
        out.append((p.returncode, *texts))
    return out


def test_warm_commands_answer_exactly_as_in_process(warm_env: dict[str, str], tmp_path: Path) -> None:
    before = status(warm_env)["jobs"]
    warm = scenario({**warm_env, "HITL_STORE": str(tmp_path / "warm.db")})
    assert status(warm_env)["jobs"] - before == 17  # every step ran in the daemon
    in_process = scenario(cold(warm_env, tmp_path / "cold.db"))
    assert warm == in_process
    codes = [code for code, _, _ in warm]
    assert codes == [0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 3, 64, 0, 0, 0]  # the control: they differ
    assert json.loads(warm[2][1])["hookSpecificOutput"]["permissionDecision"] == "allow"
    assert json.loads(warm[3][1])["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert warm[9][1] == "request 1 approved\n"  # approving twice: the same decision, nothing written
    assert warm[10][1] == "request 1 was already approved by alice; nothing changed\n"
    assert "already approved by alice" in warm[11][2]  # denying after: a conflict
    assert "usage: hitl request" in warm[14][1]


def test_the_job_gets_the_clients_environment_cwd_and_stdin(warm_env: dict[str, str], tmp_path: Path) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    assert hitl({**warm_env, "HITL_STORE": str(a)}, "request", "deploy", "--agent", "one").returncode == 0
    assert hitl({**warm_env, "HITL_STORE": str(b)}, "request", "deploy", "--agent", "two").returncode == 0
    approved = hitl({**warm_env, "HITL_STORE": str(b), "HITL_REVIEWER": "bob"}, "approve", "1")
    assert approved.returncode == 0
    in_a = json.loads(hitl(cold(warm_env, a), "ls", "--json", "--status", "all").stdout)
    in_b = json.loads(hitl(cold(warm_env, b), "show", "1", "--json").stdout)
    assert [r["agent"] for r in in_a] == ["one"]
    assert (in_b["agent"], in_b["decided_by"]) == ("two", "bob")

    sub = tmp_path / "sub"
    sub.mkdir()
    p = hitl(warm_env, "--store", "relative.db", "request", "deploy", cwd=sub)
    assert p.returncode == 0 and (sub / "relative.db").exists()

    big = hook_event("Read", {"file_path": "/x", "pad": "x" * 200_000})  # more than a pipe buffer
    hitl(warm_env, "policy", "rules", "add", "allow", "Read")
    p = hitl(warm_env, "hook", "claude-code", stdin=big)
    assert json.loads(p.stdout)["hookSpecificOutput"]["permissionDecision"] == "allow"
    assert status(warm_env)["jobs"] >= 6


def test_the_job_gets_the_clients_umask(warm_env: dict[str, str], tmp_path: Path) -> None:
    # the umask decides the new store's mode; the job runs with the client's, not the daemon's
    script = (
        "import os, sys; os.umask(0o077); sys.argv[1:] = ['request', 'deploy']; import runpy; "
        "runpy.run_module('hitl_tui', run_name='__main__')"
    )
    env = {**warm_env, "HITL_STORE": str(tmp_path / "private.db")}
    p = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "private.db").stat().st_mode & 0o077 == 0


# =========================================================================== fallback


def test_without_a_daemon_the_command_runs_in_process_and_starts_one(cli_env: dict[str, str], warm_dir: Path) -> None:
    env = {**cli_env, "HITL_WARM": "1", "HITL_WARM_DIR": str(warm_dir)}
    try:
        p = hitl(env, "request", "deploy")
        assert p.returncode == 0 and p.stdout.split()[0] == "1"
        s = eventually(lambda: status(env).get("pid") and status(env), "the daemon to start")
        assert s["jobs"] == 0 and oct(warm_dir.stat().st_mode & 0o777) == "0o700"
        assert hitl(env, "approve", "1").returncode == 0
        assert status(env)["jobs"] == 1
    finally:
        stop(env)


def test_warm_start_off_never_starts_a_daemon(cli_env: dict[str, str], warm_dir: Path) -> None:
    env = {**cli_env, "HITL_WARM": "0", "HITL_WARM_DIR": str(warm_dir)}
    assert hitl(env, "request", "deploy").returncode == 0
    time.sleep(0.5)
    assert not warm_dir.exists()
    p = hitl(env, "warm", "status")
    assert "disabled by HITL_WARM=0" in p.stdout and "not running" in p.stdout


def test_a_directory_others_can_enter_is_refused(cli_env: dict[str, str], warm_dir: Path) -> None:
    warm_dir.mkdir(mode=0o755)
    warm_dir.chmod(0o755)
    env = {**cli_env, "HITL_WARM": "1", "HITL_WARM_DIR": str(warm_dir)}
    assert hitl(env, "request", "deploy").returncode == 0  # in-process
    time.sleep(0.5)
    assert list(warm_dir.iterdir()) == []  # no socket, no daemon
    assert hitl(env, "warm", "start").returncode == 3


def _fake_daemon(path: str, answer: Callable[[socket.socket], None]) -> socket.socket:
    """Something listening on the daemon's socket: reads each client's hand-over, lets ``answer``
    reply (or not), hangs up. Close the returned socket to stop it."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(65536)
            answer(conn)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server


@pytest.mark.parametrize("garbage", ["a regular file", "a socket that hangs up", "a socket that talks nonsense"])
def test_a_garbage_socket_means_in_process(cli_env: dict[str, str], warm_dir: Path, garbage: str) -> None:
    from hitl_tui.warm import client

    env = {**cli_env, "HITL_WARM": "1", "HITL_WARM_DIR": str(warm_dir), "HITL_WARM_IDLE": "2"}
    warm_dir.mkdir(mode=0o700)
    path = client.socket_path(env)
    server = None
    if garbage == "a regular file":
        Path(path).write_text("not a socket")
    else:

        def answer(conn: socket.socket) -> None:
            if garbage == "a socket that talks nonsense":
                conn.sendall(b"garbage\n")

        server = _fake_daemon(path, answer)
    try:
        p = hitl(env, "request", "deploy")
        assert p.returncode == 0 and p.stdout.split()[0] == "1"
        listed = json.loads(hitl({**env, "HITL_WARM": "0"}, "ls", "--json").stdout)
        assert len(listed) == 1  # it ran exactly once
        if garbage == "a regular file":  # nothing listens there: a daemon is started, and replaces it
            eventually(lambda: status(env).get("pid"), "the daemon to start")
            assert hitl(env, "approve", "1").returncode == 0 and status(env)["jobs"] == 1
        else:  # something listens there: it is left alone
            time.sleep(0.5)
            assert not status(env)["running"]
    finally:
        if server is not None:
            server.close()
        stop(env)


def test_a_stale_daemon_refuses_the_job_and_is_replaced(
    cli_env: dict[str, str], warm_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "hitl_tui", copy / "hitl_tui", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**cli_env, "HITL_WARM": "1", "HITL_WARM_DIR": str(warm_dir), "PYTHONPATH": str(copy)}
    try:
        assert hitl(env, "warm", "start").returncode == 0
        old = status(env)
        assert old["package"] == str(copy / "hitl_tui")  # the copy's own daemon
        assert hitl(env, "request", "deploy").returncode == 0
        assert status(env)["jobs"] == 1
        models = copy / "hitl_tui" / "models.py"
        st = models.stat()
        os.utime(models, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
        p = hitl(env, "approve", "1")
        assert (p.returncode, p.stdout) == (0, "request 1 approved\n")  # in-process
        assert eventually(lambda: not alive(old["pid"]), "the stale daemon to exit")
        new = eventually(lambda: status(env).get("pid") and status(env), "a fresh daemon")
        assert new["pid"] != old["pid"] and new["jobs"] == 0
        assert "source changed" in Path(status(env)["socket"] + ".log").read_text()
    finally:
        stop(env)


def test_an_idle_daemon_exits(cli_env: dict[str, str], warm_dir: Path) -> None:
    env = {**cli_env, "HITL_WARM": "1", "HITL_WARM_DIR": str(warm_dir), "HITL_WARM_IDLE": "1"}
    try:
        assert hitl(env, "warm", "start").returncode == 0
        pid = status(env)["pid"]
        assert eventually(lambda: not alive(pid), "the idle daemon to exit")
        assert not status(env)["running"] and not os.path.exists(status(env)["socket"])
    finally:
        stop(env)


# =========================================================================== signals and lifetimes


def _as_from_a_terminal() -> None:
    """Ctrl-C as a shell user has it: a job started in the background of a non-interactive shell (CI
    runners can run the suite that way) inherits SIGINT and SIGQUIT ignored, and then ``hitl``
    rightly ignores them too, warm or in-process alike."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = children_of(todo.pop())
        out += kids
        todo += kids
    return out


def _warm_children(env: dict[str, str]) -> list[int]:
    try:
        daemon = status(env).get("pid")
    except Exception:
        return []
    return children_of(daemon) if daemon else []


def _signal_report(pids: list[int]) -> str:
    """Per process: its command, state, wait channel, and blocked / ignored / pending / caught signals."""
    lines = []
    for pid in dict.fromkeys(pids):
        try:
            status_text = Path(f"/proc/{pid}/status").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            wchan = Path(f"/proc/{pid}/wchan").read_text()
        except OSError:
            continue
        keep = ("State", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt", "Threads")
        fields = [ln for ln in status_text.splitlines() if ln.split(":")[0] in keep]
        lines.append(f"pid {pid} [{cmd.strip()}] wchan={wchan}: " + "; ".join(fields))
    return "\n".join(lines)


def _waiting_request(env: dict[str, str]) -> subprocess.Popen[str]:
    """`hitl request deploy --wait` in the background, with Ctrl-C at its default as from a terminal."""
    return subprocess.Popen(
        [*HITL, "request", "deploy", "--wait", "--timeout", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_from_a_terminal,
    )


def _wait_for_pending(env: dict[str, str], store: str) -> None:
    def filed() -> bool:
        p = hitl({**env, "HITL_WARM": "0", "HITL_STORE": store}, "ls", "--json")
        return p.returncode == 0 and len(json.loads(p.stdout)) == 1

    eventually(filed, "the request to be filed")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["INT", "TERM", "HUP"])
def test_a_stopped_wait_withdraws_its_request_as_in_process(
    warm_env: dict[str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C, a CI cancel or `timeout` (SIGTERM), a dropped SSH session (SIGHUP): the waiting
    request is cancelled before hitl exits 128+N, so no reviewer can approve a call nobody waits
    for any more; warm and in-process alike."""
    results = []
    for mode in ("warm", "in-process"):
        store = str(tmp_path / f"{mode}.db")
        env = {**warm_env, "HITL_STORE": store, "HITL_WARM": "1" if mode == "warm" else "0"}
        proc = _waiting_request(env)
        _wait_for_pending(env, store)
        time.sleep(0.3)  # into the wait
        proc.send_signal(sig)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # say where it hangs (seen once in CI), then fail
            report = _signal_report([proc.pid, *_descendants(proc.pid), *_warm_children(env)])
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"{mode}: no exit 30 s after {sig.name}\n{report}\nstderr: {err[-2000:]}")
        err = re.sub(r"until \d\d:\d\d:\d\d UTC", "until T", err.replace(store, "STORE"))
        results.append((proc.returncode, out.replace(store, "STORE"), err))
        shown = hitl({**env, "HITL_WARM": "0"}, "show", "1", "--json")
        assert json.loads(shown.stdout)["status"] == "cancelled", (mode, shown.stdout)
    assert results[0] == results[1]
    assert results[0][0] == 128 + sig
    assert "request 1 (deploy) waits for a human" in results[0][2]


def test_a_killed_client_takes_its_job_with_it(warm_env: dict[str, str]) -> None:
    daemon = status(warm_env)["pid"]
    proc = _waiting_request(warm_env)
    _wait_for_pending(warm_env, warm_env["HITL_STORE"])
    (child,) = children_of(daemon)
    assert alive(child)
    proc.kill()
    proc.wait()
    assert eventually(lambda: not alive(child), "the job to end with its client", timeout=10)


def test_sigterm_to_the_client_ends_the_job_alike(warm_env: dict[str, str]) -> None:
    proc = _waiting_request(warm_env)
    _wait_for_pending(warm_env, warm_env["HITL_STORE"])
    (child,) = children_of(status(warm_env)["pid"])
    proc.terminate()
    proc.wait(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM  # as in-process: the job withdrew its request, then exited
    assert eventually(lambda: not alive(child), "the job to end")


def test_status_and_help_read_right(warm_env: dict[str, str]) -> None:
    p = hitl(warm_env, "warm", "status")
    s = status(warm_env)
    assert p.returncode == 0 and "warm start: enabled" in p.stdout
    assert s["socket"] in p.stdout and f"pid {s['pid']}" in p.stdout and "job(s) served" in p.stdout
    assert s["socket"].startswith(warm_env["HITL_WARM_DIR"])
    top = hitl(warm_env, "--help")
    assert top.returncode == 0 and "warm" in top.stdout
    p = hitl(warm_env, "warm", "--help")
    assert "HITL_WARM=0" in p.stdout and all(a in p.stdout for a in ("start", "stop", "status"))
    assert status(warm_env)["jobs"] == s["jobs"]  # help and warm itself run in-process


def test_the_started_daemon_keeps_none_of_the_callers_descriptors(cli_env: dict[str, str], warm_dir: Path) -> None:
    """`x=$(hitl ls 3>&1)` or `flock 9; hitl ...`: the daemon a call starts must not hold the caller's
    pipe or lock for its lifetime (the caller would wait for EOF, or the lock, for 15 minutes)."""
    import select

    env = {**cli_env, "HITL_WARM": "1", "HITL_WARM_DIR": str(warm_dir)}
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen([*HITL, "ls"], env=env, pass_fds=[write_end], cwd="/", stdout=subprocess.DEVNULL)
        os.close(write_end)
        assert proc.wait(timeout=60) == 0
        assert eventually(lambda: status(env)["running"], "the daemon the call started")
        ready, _, _ = select.select([read_end], [], [], 10)
        assert ready and os.read(read_end, 1) == b"", "the daemon holds the caller's pipe open"
    finally:
        os.close(read_end)
        stop(env)


def test_a_running_job_does_not_keep_a_new_daemon_from_starting(warm_env: dict[str, str]) -> None:
    proc = _waiting_request(warm_env)
    try:
        _wait_for_pending(warm_env, warm_env["HITL_STORE"])
        old = status(warm_env)["pid"]
        (job,) = children_of(old)
        assert hitl({**warm_env, "HITL_WARM": "0"}, "warm", "stop").returncode == 0
        assert alive(job)  # the waiting job carries on after its daemon has gone
        started = hitl({**warm_env, "HITL_WARM": "0"}, "warm", "start", "--timeout", "20")
        assert started.returncode == 0, started.stderr
        assert status(warm_env)["pid"] not in (old, job)
    finally:
        proc.kill()
        proc.wait()


def test_ctrl_c_still_works_when_the_hand_over_fails_at_the_last_step(cli_env: dict[str, str], warm_dir: Path) -> None:
    """A daemon whose child announces itself and dies before the "go": the command runs in-process,
    with its own signal handlers back (not the forwarding ones, which had no child to forward to)."""
    from hitl_tui.warm import client

    env = {**cli_env, "HITL_WARM": "1", "HITL_WARM_DIR": str(warm_dir)}
    warm_dir.mkdir(mode=0o700)

    def answer(conn: socket.socket) -> None:
        conn.shutdown(socket.SHUT_RD)  # the "go" cannot arrive: the client's send fails (EPIPE)
        conn.sendall(b'{"pid": 999999}\n')

    server = _fake_daemon(client.socket_path(env), answer)
    try:
        proc = _waiting_request(env)
        _wait_for_pending(env, env["HITL_STORE"])  # filed in-process, after the failed hand-over
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=30) == 130
        finally:
            proc.kill()
            proc.communicate()
    finally:
        server.close()


def test_a_runtime_dir_that_is_not_ours_is_not_used(tmp_path: Path) -> None:
    """XDG_RUNTIME_DIR inherited from another user (su, sudo -E): the socket goes to /tmp/hitl-<uid>."""
    from hitl_tui.warm import client

    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    assert client.socket_dir({"XDG_RUNTIME_DIR": str(mine)}) == str(mine / "hitl")
    assert client.socket_dir({"XDG_RUNTIME_DIR": str(tmp_path / "missing")}) == f"/tmp/hitl-{os.getuid()}"
    if os.getuid() == 0:  # only root can give a directory away
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o700)
        os.chown(theirs, 65534, 65534)
        assert client.socket_dir({"XDG_RUNTIME_DIR": str(theirs)}) == "/tmp/hitl-0"
