"""The warm daemon: a process that has imported hitl and built its pydantic validators, and forks a
child per ``hitl`` command handed to it by :mod:`hitl_tui.warm.client` (see docs/warm.md).

The daemon itself stays single-threaded and never opens a store, an event loop or a thread: it only
accepts connections, checks them (same uid, protocol, fresh source), and forks. The child takes the
client's stdin/stdout/stderr, arguments, environment, working directory and umask, tells the client
its pid (so the client can forward Ctrl-C), and runs ``hitl_tui.cli.entrypoint`` exactly as a fresh
process would; it then sends the exit code and exits. If the client goes away (say Claude Code kills
a slow hook), the child goes too.

Run by the client (``python -m hitl_tui.warm.server --socket PATH --package DIR``), detached.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import gc
import importlib
import io
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from typing import Any

from . import client

#: how long the daemon waits for a job before it exits (env HITL_WARM_IDLE, seconds)
DEFAULT_IDLE = 900.0
#: how often an idle daemon wakes to check that its socket is still its own
WAKE_EVERY = 30.0

#: what the eligible commands import, loaded before the first fork (the rest is imported by them)
PRELOAD = (
    "asyncio",
    "sqlite3",
    "tomllib",
    "getpass",
    "uuid",
    "hashlib",
    "shlex",
    "platformdirs",
    "hitl_tui.cli",
    "hitl_tui.cli.output",
    "hitl_tui.cli.requests",
    "hitl_tui.cli.escalations",
    "hitl_tui.cli.review",
    "hitl_tui.cli.stages",
    "hitl_tui.cli.audit",
    "hitl_tui.cli.config_cmd",
    "hitl_tui.cli.hook",
    "hitl_tui.cli.autonomy",
    "hitl_tui.models",
    "hitl_tui.config",
    "hitl_tui.errors",
    "hitl_tui.text",
    "hitl_tui.policy",
    "hitl_tui.presets",
    "hitl_tui.autonomy",
    "hitl_tui.store.sqlite",
    "hitl_tui.backend",
    "hitl_tui.backend.local",
    "hitl_tui.integrations.claude_code",
    "hitl_tui.sdk.gate",
    "hitl_tui.sdk.notify",
    "hitl_tui.sdk.digest",
    "hitl_tui.sdk.plan",
    "hitl_tui.sdk.redact",
    "hitl_tui.backend.http",  # --server / HITL_SERVER (httpx)
)


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} hitl warm [{os.getpid()}]: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- warm-up


def warm_up() -> None:
    """Import what the eligible commands need and build every hitl model's validator (they are
    deferred, ``defer_build``, which is what makes an in-process command pay for them)."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")  # as cli.setup_process does
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            log(f"preload {name}: {exc}")
    from pydantic import BaseModel

    seen: set[type] = set()
    todo = list(BaseModel.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("hitl_tui.") and not cls.__pydantic_complete__:
            try:
                cls.model_rebuild()
            except Exception as exc:  # a generic or forward-referenced model: built on first use, as before
                log(f"model_rebuild {cls.__module__}.{cls.__qualname__}: {exc}")
    from hitl_tui.cli import build_parser

    build_parser()  # argparse's own lazy imports (gettext, textwrap...)


# ---------------------------------------------------------------------------------------- staleness


def fingerprint(package: str) -> tuple:
    """What a child would run from memory instead of from disk: every module of the package the
    daemon has loaded (path, mtime, size), and the directories of pydantic and pydantic_core (an
    upgrade replaces their files). A module the daemon has not loaded is read from disk by the child
    anyway, so it cannot be stale."""
    out: list[tuple] = []
    prefix = os.path.join(package, "")
    for m in list(sys.modules.values()):
        path = getattr(m, "__file__", None)
        if path and path.startswith(prefix):
            try:
                st = os.stat(path)
                out.append((path, st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((path, 0, -1))  # deleted
    for mod in ("pydantic", "pydantic_core"):
        path = getattr(sys.modules.get(mod), "__file__", None)
        if path:
            st = os.stat(os.path.dirname(path))
            out.append((path, st.st_mtime_ns, st.st_ino))
    out.sort()
    return tuple(out)


# ---------------------------------------------------------------------------------------- the child


def _stdio(spec: list[list]) -> None:
    """Rebuild sys.stdin/stdout/stderr on fds 0/1/2 as the client process had them."""
    streams = []
    for fd, (encoding, errors, line_buffering, write_through) in enumerate(spec):
        mode = "r" if fd == 0 else "w"
        raw = io.FileIO(fd, mode, closefd=False)
        buffered: Any = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
        streams.append(
            io.TextIOWrapper(
                buffered,
                encoding=encoding,
                errors=errors,
                newline="\n",
                line_buffering=line_buffering,
                write_through=write_through,
            )
        )
    sys.stdin, sys.stdout, sys.stderr = streams
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = streams


def _exit_code(code: Any) -> int:
    """As the interpreter maps ``SystemExit.code`` to an exit status."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _send(conn: socket.socket, message: dict) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def run_child(conn: socket.socket, fds: list[int], header: dict) -> None:
    """In the forked child: become the client's command, run it, report its exit. Never returns."""
    code = 1
    try:
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in header.get("ignore", []):
            signal.signal(sig, signal.SIG_IGN)
        try:
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            os.chdir(header["cwd"])
            os.environ.clear()
            os.environ.update(header["env"])
            time.tzset()
            os.umask(int(header["umask"]))
            _stdio(header["stdio"])
            sys.argv = list(header["argv"])
        except Exception as exc:  # nothing ran: the client runs the command itself
            _send(conn, {"refused": f"cannot take the job: {exc}"})
            os._exit(0)
        _send(conn, {"pid": os.getpid()})
        conn.settimeout(client.HANDSHAKE_TIMEOUT * 2)
        if conn.recv(1) != b"g":
            os._exit(0)  # the client gave up and runs the command itself
        conn.settimeout(None)

        def watch() -> None:  # the client went away (killed): so do we, as the in-process command would
            try:
                while conn.recv(64):
                    pass
            except OSError:
                pass
            os._exit(143)

        threading.Thread(target=watch, name="hitl-warm-watch", daemon=True).start()
        message: dict[str, int]
        try:
            from hitl_tui.cli import entrypoint

            entrypoint()
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc.code)
        except KeyboardInterrupt:
            sys.excepthook(*sys.exc_info())
            code = -signal.SIGINT
        except BaseException:
            sys.excepthook(*sys.exc_info())
            code = 1
        try:
            import atexit

            atexit._run_exitfuncs()
        except BaseException:
            pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                if code == 0:
                    code = 120  # as the interpreter does when stdout cannot be flushed at exit
        message = {"signal": -code} if code < 0 else {"exit": code}
        try:
            _send(conn, message)
        except OSError:
            pass
    finally:
        os._exit(code if code >= 0 else 130)


# ---------------------------------------------------------------------------------------- the daemon


class Daemon:
    def __init__(self, path: str, package: str, idle: float, lock: int | None = None) -> None:
        self.path = path
        self.package = package
        self.idle = idle
        self.lock = lock  # the one-daemon lock: held by the daemon, never by its jobs
        self.started = time.time()
        self.jobs = 0
        self.listener: socket.socket | None = None
        self.inode = 0
        self.print = fingerprint(package)
        costs = []
        for _ in range(3):
            t = time.perf_counter()
            fingerprint(package)
            costs.append(time.perf_counter() - t)
        self.check_cost = min(costs)
        self.last_check = time.monotonic()

    def stale(self) -> bool:
        # ~50 stat calls, ~0.1 ms: on every job (at most once a second if that ever exceeds 1 ms)
        if self.check_cost > 0.001 and time.monotonic() - self.last_check < 1.0:
            return False
        self.last_check = time.monotonic()
        return fingerprint(self.package) != self.print

    def still_ours(self) -> bool:
        try:
            return os.stat(self.path).st_ino == self.inode
        except OSError:
            return False

    def bind(self) -> None:
        try:
            os.unlink(self.path)  # a dead daemon's socket (we hold the lock)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(self.path)
        finally:
            os.umask(old)
        sock.listen(64)
        self.listener = sock
        self.inode = os.stat(self.path).st_ino

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if self.still_ours():
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def status(self) -> dict:
        return {
            "pid": os.getpid(),
            "socket": self.path,
            "package": self.package,
            "python": sys.executable,
            "started": self.started,
            "uptime": time.time() - self.started,
            "jobs": self.jobs,
            "idle_exit": self.idle,
            "protocol": client.PROTOCOL,
        }

    def serve(self) -> None:
        assert self.listener is not None
        last_job = time.monotonic()
        while True:
            left = self.idle - (time.monotonic() - last_job)
            if left <= 0:
                log("idle: exiting")
                return
            self.listener.settimeout(min(left, WAKE_EVERY))
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                if not self.still_ours():
                    log("socket replaced or removed: exiting")
                    return
                continue
            except InterruptedError:
                continue
            try:
                conn.settimeout(client.HANDSHAKE_TIMEOUT)
                outcome = self.handle(conn)
            except Exception as exc:  # a bad client never takes the daemon down
                log(f"job refused: {exc!r}")
                outcome = "next"
            finally:
                conn.close()
            if outcome == "stop":
                return
            last_job = time.monotonic()

    def handle(self, conn: socket.socket) -> str:
        uid = client.peer_uid(conn)  # type: ignore[arg-type]
        if uid is not None and uid != os.getuid():
            log(f"refused a connection from uid {uid}")
            return "next"
        head, fds, _flags, _addr = socket.recv_fds(conn, 8, 3)
        try:
            if len(head) < 8:
                head += _recv_exact(conn, 8 - len(head))
            if head[:4] != client.MAGIC:
                raise ValueError("not a hitl warm client")
            (size,) = struct.unpack("!I", head[4:])
            if size > 16 * 1024 * 1024:
                raise ValueError("header too large")
            header = json.loads(_recv_exact(conn, size))
            op = header.get("op")
            if header.get("v") != client.PROTOCOL:
                _send(conn, {"refused": "stale"})  # another version of the client: make way
                return "stop"
            if op == "status":
                _send(conn, self.status())
                return "next"
            if op == "stop":
                _send(conn, {"stopped": os.getpid()})
                log("stopped by request")
                return "stop"
            if op != "run" or len(fds) != 3:
                raise ValueError(f"bad request {op!r} with {len(fds)} fds")
            if self.stale():
                _send(conn, {"refused": "stale"})
                log("source changed: exiting")
                return "stop"
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child (covered by tests/test_warm.py, in a subprocess)
                assert self.listener is not None
                self.listener.close()
                if self.lock is not None:  # flock is shared across fork: a long job would keep a
                    os.close(self.lock)  # new daemon from starting after this one has gone
                run_child(conn, fds, header)
            self.jobs += 1
            return "next"
        finally:
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("client closed during the header")
        buf += chunk
    return buf


def _lock(path: str, wait: float) -> int | None:
    """The daemon's lock (one daemon per socket), waiting up to ``wait`` s for an exiting one.
    None if another daemon holds it and serves."""
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() > deadline or client.control("status", path, timeout=1.0):
            os.close(fd)
            return None
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hitl_tui.warm.server")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--package", required=True)
    parser.add_argument("--idle", type=float, default=None)
    args = parser.parse_args(argv)
    idle = args.idle if args.idle is not None else float(os.environ.get("HITL_WARM_IDLE") or DEFAULT_IDLE)
    here = client.package_dir()
    if os.path.realpath(here) != os.path.realpath(args.package):
        log(f"this is the hitl_tui of {here}, not {args.package}: exiting")
        return 1
    if not client.private_dir(os.path.dirname(args.socket), create=False):
        log(f"{os.path.dirname(args.socket)} is not a private directory (0700, ours): exiting")
        return 1
    lock = _lock(args.socket, wait=10.0)
    if lock is None:
        log("another daemon serves this socket: exiting")
        return 0
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    t = time.perf_counter()
    warm_up()
    daemon = Daemon(args.socket, here, idle, lock)
    gc.collect()
    gc.freeze()  # the children share these pages: no copy-on-write from the collector touching them
    daemon.bind()
    log(
        f"serving on {args.socket} (warm-up {time.perf_counter() - t:.2f}s, "
        f"staleness check {daemon.check_cost * 1000:.2f} ms, idle exit {idle:.0f}s)"
    )
    try:
        daemon.serve()
    finally:
        daemon.close()
        os.close(lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
