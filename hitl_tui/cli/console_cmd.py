"""``hitl console`` (and plain ``hitl``): the reviewer console on the configured backend."""

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
    from ..console import HitlConsole

    backend = ctx.backend()
    try:
        HitlConsole(backend, ctx.settings).run()
    finally:
        asyncio.run(ctx.aclose())
    return 0
