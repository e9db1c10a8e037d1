"""``hitl warm start|stop|status``: the warm daemon that makes ``hitl`` commands start fast
(see :mod:`hitl_tui.warm.client` and docs/warm.md)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from . import EXIT_ERROR, EXIT_OK, EXIT_USAGE, add_json_flag, fail

WARM_HELP = """\
Commands such as `hitl hook claude-code`, `hitl request` and `hitl approve` are handed to a warm
daemon that has already imported hitl (a fork per command; same code, same output, same exit code).
It starts by itself on the first such command, and exits after 15 minutes idle (env HITL_WARM_IDLE,
seconds), when hitl's source changes, or on `hitl warm stop`.

Disable it with HITL_WARM=0 (every command then runs in its own process, as it always can).
The socket lives in $XDG_RUNTIME_DIR/hitl/ or /tmp/hitl-<uid>/ (env HITL_WARM_DIR), mode 0700.
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "warm",
        help="the warm daemon that makes hook/request/approve start fast (start, stop, status)",
        description="Manage the warm daemon.",
        epilog=WARM_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    wsub = p.add_subparsers(dest="warm_action", metavar="ACTION", parser_class=type(p))
    q = wsub.add_parser("start", help="start the daemon now (it also starts by itself) and wait until it serves")
    q.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="how long to wait (30)")
    q.set_defaults(func=cmd_start)
    wsub.add_parser("stop", help="stop the daemon (commands already running finish)").set_defaults(func=cmd_stop)
    q = wsub.add_parser("status", help="socket, pid, uptime, jobs served, and whether warm start is enabled")
    add_json_flag(q)
    q.set_defaults(func=cmd_status)

    def usage(args: argparse.Namespace, ctx: Any) -> int:
        p.print_help()
        return EXIT_USAGE

    p.set_defaults(func=usage)


def cmd_start(args: argparse.Namespace, ctx: Any) -> int:
    from ..warm import client

    path = client.socket_path()
    if client.control("status", path):
        print(f"warm daemon already running on {path}")
        return EXIT_OK
    if not client.private_dir(client.socket_dir()):
        return fail(f"{client.socket_dir()} is not a private directory (mode 0700, owned by you)")
    client.spawn_daemon(path)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        status = client.control("status", path)
        if status:
            print(f"warm daemon started on {path} (pid {status['pid']})")
            ok, why = client.enabled()
            if not ok:
                print(f"note: warm start is {why}: commands will not use it")
            return EXIT_OK
        time.sleep(0.05)
    return fail(f"the warm daemon did not start within {args.timeout:g}s (see {path}.log)", EXIT_ERROR)


def cmd_stop(args: argparse.Namespace, ctx: Any) -> int:
    from ..warm import client

    path = client.socket_path()
    answer = client.control("stop", path)
    if not answer:
        print("no warm daemon running")
        return EXIT_OK
    pid = answer.get("stopped")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and client.control("status", path):
        time.sleep(0.05)
    print(f"warm daemon stopped (pid {pid})")
    return EXIT_OK


def cmd_status(args: argparse.Namespace, ctx: Any) -> int:
    from ..warm import client

    path = client.socket_path()
    ok, why = client.enabled()
    status = client.control("status", path)
    if args.json:
        from .output import emit_json

        emit_json({"enabled": ok, "why": why, "socket": path, "running": status is not None, **(status or {})})
        return EXIT_OK
    print(f"warm start: {why}")
    print(f"socket:     {path}")
    if status is None:
        print("daemon:     not running (starts with the next eligible command)")
        return EXIT_OK
    up = int(status["uptime"])
    print(
        f"daemon:     pid {status['pid']}, up {up // 3600}h{up % 3600 // 60:02d}m{up % 60:02d}s, "
        f"{status['jobs']} job(s) served, exits after {status['idle_exit']:g}s idle"
    )
    return EXIT_OK
