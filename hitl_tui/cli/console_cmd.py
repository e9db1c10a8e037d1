"""``hitl console`` (and plain ``hitl``): the reviewer console on the configured backend.

On a server the console first asks who its token is (``/v1/whoami``), so an agent token's console
is read-only and says so from its first frame. An unknown or revoked token is refused here, in one
line, rather than opening a console that can only say "disconnected"; an unreachable server is
left to the console, which shows the outage and reconnects (and learns the role when it does).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "console",
        help="open the reviewer console (the default command)",
        description="Open the reviewer console: approvals, escalations, review queue and capabilities, live.",
    )
    p.set_defaults(func=cmd_console)


def cmd_console(args: argparse.Namespace, ctx: Any) -> int:
    import sys

    if not (sys.stdin.isatty() and sys.stdout.isatty()):  # `hitl </dev/null`, a pipe, a cron job
        from . import EXIT_USAGE, fail

        return fail(
            "the console needs a terminal (stdin and stdout); in scripts use hitl ls, show, approve, deny",
            EXIT_USAGE,
        )
    from ..console import HitlConsole

    backend = ctx.backend()
    try:
        asyncio.run(learn_role(backend))
        HitlConsole(backend, ctx.settings).run()
    finally:
        asyncio.run(ctx.aclose())
    return 0


async def learn_role(backend: Any) -> None:
    """Ask a server backend its token's role (``backend.read_only`` follows from it)."""
    from ..backend.http import HttpBackend
    from ..errors import StoreUnavailable

    if not isinstance(backend, HttpBackend):
        return  # an embedded store: the local user may decide
    try:
        await backend.whoami()
    except StoreUnavailable:
        pass  # unreachable or not the API: the console says so and keeps trying
    finally:
        await backend.close()  # its connection belongs to this event loop; the console makes its own
