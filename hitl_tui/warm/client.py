"""The ``hitl`` entry point: hand the command to the warm daemon, or run it in this process.

Start-up time: the Claude Code hook and shell gates start a ``hitl`` process per tool call, and a
process that imports pydantic and builds one model already takes ~2x ``import pydantic``. A warm
daemon (``hitl_tui.warm.server``) has imported everything and built the validators once; it forks
a child per command that runs the very same ``hitl_tui.cli.entrypoint`` on *this* process's stdin,
stdout and stderr (passed over a unix socket), arguments, environment, working directory and umask.
This process then only forwards signals and exits with the child's exit code. See docs/warm.md.

This module is imported by every ``hitl`` call: standard library only, and only cheap modules
(``_socket``, not ``socket``, which imports ``selectors``). Anything goes wrong before the daemon's
child has taken the job (no daemon, a stale one, a garbage socket, a refusal): the command runs
in-process, exactly as without a daemon, and a daemon is started in the background for the next call.
"""

from __future__ import annotations

import _signal
import _socket
import json
import os
import struct
import sys

PROTOCOL = 1
MAGIC = b"HITL"
#: seconds to wait for the daemon's child to take the job before running it in-process instead
HANDSHAKE_TIMEOUT = 5.0

#: commands that run warm: single-shot or waiting, none needs a controlling terminal. Not here:
#: console and demo (interactive), serve and mcp (long-running servers that own stdio and signals),
#: token (rare, imports the server), warm (manages the daemon). ``hook`` only as ``hook claude-code``.
ELIGIBLE = frozenset(
    {
        "request",
        "cancel",
        "ls",
        "show",
        "approve",
        "deny",
        "escalate",
        "escalations",
        "thread",
        "reply",
        "takeover",
        "resolve",
        "review",
        "digest",
        "stages",
        "promote",
        "demote",
        "policy",
        "audit",
        "config",
        "suggest",
        "calibration",
        "hook",
    }
)
#: commands eligible only with this sub-command
ELIGIBLE_SUB = {"hook": frozenset({"claude-code"})}

#: global options that take a value: a copy of ``hitl_tui.cli._VALUE_OPTIONS`` (that module imports
#: pydantic; tests/test_warm.py checks the two agree)
VALUE_OPTIONS = frozenset({"--store", "--server", "--token", "--as", "--config"})

FORWARDED_SIGNALS = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP)


# ---------------------------------------------------------------------------------------- policy


def enabled(environ: dict[str, str] | os._Environ[str] | None = None) -> tuple[bool, str]:
    """Whether warm start may be used here, and if not, why."""
    env = os.environ if environ is None else environ
    if env.get("HITL_WARM", "1").strip().lower() in ("0", "false", "no", "off"):
        return False, "disabled by HITL_WARM=0"
    if os.name != "posix" or not hasattr(_socket, "AF_UNIX") or not hasattr(_socket, "SCM_RIGHTS"):
        return False, "needs unix sockets with fd passing (Linux, macOS)"
    return True, "enabled"


def _words(argv: list[str]) -> list[str]:
    """The positional words of ``hitl [global options] COMMAND [SUB] ...`` (as cli._command_word)."""
    words: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in VALUE_OPTIONS or (
            arg.startswith("--") and "=" not in arg and len(arg) > 3 and any(o.startswith(arg) for o in VALUE_OPTIONS)
        ):
            skip = True
        elif arg == "--":
            break
        elif arg.startswith("-"):
            if not words and arg in ("-h", "--help", "--version"):
                return []  # `hitl --help`: the global help, in-process
            continue
        else:
            words.append(arg)
            if len(words) == 2:
                break
    return words


def eligible(argv: list[str]) -> bool:
    """Whether ``hitl *argv`` may run in the warm daemon (see :data:`ELIGIBLE`)."""
    words = _words(argv)
    if not words or words[0] not in ELIGIBLE:
        return False
    subs = ELIGIBLE_SUB.get(words[0])
    return subs is None or (len(words) > 1 and words[1] in subs)


def _plain_interpreter() -> bool:
    """No interpreter options that the daemon's children would not share (-X importtime, -O, -W...)."""
    f = sys.flags
    return not (
        sys._xoptions
        or sys.warnoptions
        or f.optimize
        or f.dev_mode
        or f.verbose
        or f.isolated
        or f.ignore_environment
        or f.no_site
        or f.inspect
        or f.interactive
    )


# ---------------------------------------------------------------------------------------- places


def package_dir() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fnv1a(text: str) -> str:
    h = 0xCBF29CE484222325
    for b in text.encode("utf-8", "surrogateescape"):
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"[:12]


def socket_dir(environ: dict[str, str] | os._Environ[str] | None = None) -> str:
    env = os.environ if environ is None else environ
    override = env.get("HITL_WARM_DIR")
    if override:
        return os.path.abspath(override)
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and _ours(runtime):  # not one inherited through su/sudo -E
        return os.path.join(runtime, "hitl")
    return f"/tmp/hitl-{os.getuid()}"


def _ours(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid == os.getuid() and os.access(path, os.W_OK | os.X_OK)


def socket_path(environ: dict[str, str] | os._Environ[str] | None = None) -> str:
    """The daemon's socket: one per (python, hitl_tui checkout), so venvs and checkouts never share one."""
    # sys.prefix: venvs share one interpreter binary (their python is a symlink)
    key = _fnv1a(f"{os.path.realpath(sys.executable)}\0{sys.prefix}\0{os.path.realpath(package_dir())}")
    return os.path.join(socket_dir(environ), f"warm-{key}.sock")


def private_dir(path: str, create: bool = True) -> bool:
    """``path`` is (made) a real directory owned by this user, closed to everyone else (0700)."""
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    import stat

    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and (st.st_mode & 0o077) == 0


# ---------------------------------------------------------------------------------------- the wire


def peer_uid(sock: _socket.socket) -> int | None:
    """The uid at the other end of a unix socket (Linux SO_PEERCRED), or None where unknown."""
    opt = getattr(_socket, "SO_PEERCRED", None)
    if opt is None:
        return None
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(_socket.SOL_SOCKET, opt, struct.calcsize("3i")))
    return uid


def send_message(sock: _socket.socket, message: dict, fds: list[int] | None = None) -> None:
    """A frame: MAGIC + length (carrying the fds, if any), then the JSON body."""
    body = json.dumps(message).encode("utf-8", "surrogateescape")
    head = MAGIC + struct.pack("!I", len(body))
    if fds:
        sock.sendmsg([head], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))])
    else:
        sock.sendall(head)
    sock.sendall(body)


class Lines:
    """JSON lines read from a socket."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def next(self) -> dict | None:
        """The next message, or None at end of stream."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


def connect(path: str, timeout: float | None) -> _socket.socket:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        uid = peer_uid(sock)
        if uid is not None and uid != os.getuid():
            raise PermissionError(f"warm daemon socket {path} belongs to uid {uid}")
        return sock
    except BaseException:
        sock.close()
        raise


def control(op: str, path: str | None = None, timeout: float = 5.0) -> dict | None:
    """Ask the daemon for ``status`` or to ``stop``: its answer, or None if none is there."""
    try:
        sock = connect(path or socket_path(), timeout)
    except OSError:
        return None
    try:
        send_message(sock, {"v": PROTOCOL, "op": op})
        return Lines(sock).next()
    except (OSError, ValueError):
        return None
    finally:
        sock.close()


# ---------------------------------------------------------------------------------------- the daemon


def spawn_daemon(path: str | None = None, force: bool = False) -> bool:
    """Start a daemon in the background (detached: its own session, stdio to a log, cwd /), unless
    one is already starting (it holds the lock file). True if one was started."""
    path = path or socket_path()
    if not private_dir(os.path.dirname(path)):
        return False
    if not force:
        import fcntl

        try:
            fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a daemon is starting (or running)
        finally:
            os.close(fd)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPROFILEIMPORTTIME", "PYTHONINSPECT")}
    parent = os.path.dirname(package_dir())
    env["PYTHONPATH"] = parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    args = [sys.executable, "-m", "hitl_tui.warm.server", "--socket", path, "--package", package_dir()]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - in the forked child
        try:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            null = os.open(os.devnull, os.O_RDONLY)
            log = os.open(path + ".log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(null, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            # nothing else of the caller's: an inherited pipe (`x=$(hitl ls 3>&1)`) or lock
            # (`flock 9`) held by a daemon that lives for minutes would hang or block the caller
            os.closerange(3, os.sysconf("SC_OPEN_MAX"))
            os.chdir("/")
            os.execve(sys.executable, args, env)
        finally:
            os._exit(127)
    os.waitpid(pid, 0)
    return True


# ---------------------------------------------------------------------------------------- a job


class _Fallback(Exception):
    """The daemon did not take the job: run it in-process (``stale``: and start a fresh daemon)."""

    def __init__(self, why: str, spawn: bool = False) -> None:
        super().__init__(why)
        self.spawn = spawn


def _stdio() -> list[list]:
    """How this process's stdin/stdout/stderr are set up, for the child to rebuild them alike."""
    out = []
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        if stream is None or not hasattr(stream, "line_buffering"):
            raise _Fallback("a standard stream is closed or replaced")
        out.append([stream.encoding, stream.errors, stream.line_buffering, stream.write_through])
    return out


def run_warm(argv: list[str], path: str) -> int:
    """Hand ``hitl *argv`` to the daemon and wait for its exit code. Raises :class:`_Fallback` if the
    daemon did not take it (nothing ran)."""
    try:
        sock = connect(path, HANDSHAKE_TIMEOUT)
    except FileNotFoundError:
        raise _Fallback("no daemon", spawn=True) from None
    except ConnectionRefusedError:
        raise _Fallback("daemon gone", spawn=True) from None
    except OSError as exc:
        raise _Fallback(f"cannot connect: {exc}") from None
    received: list[int] = []  # signals forwarded (or to be)
    early: list[int] = []  # of those, the ones that came before the child's pid
    child = [0]
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        header = {
            "v": PROTOCOL,
            "op": "run",
            "argv": ["hitl", *argv],
            "env": dict(os.environ),
            "cwd": os.getcwd(),
            "umask": umask,
            "stdio": _stdio(),
            # ignored here (nohup, a background job of a script): ignored there too, as in-process
            "ignore": [sig for sig in FORWARDED_SIGNALS if _signal.getsignal(sig) == _signal.SIG_IGN],
        }
        lines = Lines(sock)
        try:
            send_message(sock, header, [0, 1, 2])
            first = lines.next()
        except (OSError, ValueError) as exc:
            raise _Fallback(f"hand-over failed: {exc}") from None
        if not first or "pid" not in first:
            why = (first or {}).get("refused", "connection closed")
            raise _Fallback(str(why), spawn=why == "stale")

        def forward(signum: int, _frame: object) -> None:
            received.append(signum)
            if not child[0]:
                early.append(signum)
                return
            try:
                os.kill(child[0], signum)
            except OSError:
                pass

        before = {sig: _signal.getsignal(sig) for sig in FORWARDED_SIGNALS if sig not in header["ignore"]}
        for sig in before:
            _signal.signal(sig, forward)
        try:
            sock.sendall(b"g")  # from here on the job is the child's: no fallback
        except OSError as exc:
            # the command runs in-process after all: with this process's own handlers again, and
            # any signal that came meanwhile delivered to it
            for sig, handler in before.items():
                _signal.signal(sig, handler)
            for signum in early:
                os.kill(os.getpid(), signum)
            raise _Fallback(f"hand-over failed: {exc}") from None
        child[0] = int(first["pid"])  # one bytecode: a handler runs before (early) or after it
        for signum in list(early):
            try:
                os.kill(child[0], signum)
            except OSError:
                pass
        sock.settimeout(None)
        try:
            last = lines.next()
        except (OSError, ValueError):
            last = None
    finally:
        sock.close()
    if last and "exit" in last:
        return int(last["exit"])
    signum = int(last["signal"]) if last and "signal" in last else (received[-1] if received else 0)
    if signum:  # killed by a signal we forwarded (or a KeyboardInterrupt it did not catch): die alike
        _signal.signal(signum, _signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    print("hitl: the warm daemon's worker ended without an exit code (see docs/warm.md)", file=sys.stderr)
    return 2 if _words(argv)[:1] == ["hook"] else 3  # fail closed (a hook blocks the tool on 2)


def _in_process() -> None:
    from hitl_tui.cli import entrypoint

    entrypoint()


def main() -> None:
    """Console script ``hitl`` and ``python -m hitl_tui``."""
    argv = sys.argv[1:]
    if not (eligible(argv) and enabled()[0] and _plain_interpreter()):
        return _in_process()
    path = socket_path()
    if len(path.encode()) >= 100 or not private_dir(os.path.dirname(path)):
        return _in_process()  # AF_UNIX paths are short; a directory others can enter is refused
    try:
        code = run_warm(argv, path)
    except _Fallback as why:
        if why.spawn:
            try:
                spawn_daemon(path, force=str(why) == "stale")
            except OSError:
                pass
        return _in_process()
    sys.exit(code)
