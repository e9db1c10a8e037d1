"""``hitl demo``: fill a store with the demo story and run a simulated agent fleet against it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from . import EXIT_USAGE, fail

DEMO_HELP = """\
where the demo writes:
  By default a dedicated demo store, so the demo never mixes with your real requests:
    DEMO_DB
  Name a store or server explicitly to use it instead:
    hitl --store PATH demo        hitl --server URL --token T demo
  or set HITL_STORE / HITL_SERVER. A store or server set only in the config file is ignored
  here. The story (capabilities, requests, escalations, review items) is written only into an
  empty store; --reset deletes the dedicated demo store first (never a store you named).

what runs:
  Simulated agents (deploy-bot, support-mailer, migrator, triage-bot, janitor, ...) ask the
  policy, run what may run, file approval requests, wait for your decision and react to it:
  approved actions run (with your edits) and are logged for review; after a denial an agent
  may escalate and ask for guidance; your replies to escalations are acknowledged.
  One line per action is printed; Ctrl-C stops the fleet and cancels its pending requests.

examples:
  hitl demo --console            the fleet and the reviewer console, in one terminal
  hitl demo                      the fleet only; open the console in another terminal
                                 with the command it prints
  hitl demo --agents 10 --pace 0.5
"""


def demo_store_path() -> Path:
    """The dedicated demo store, next to the default store in the user data dir."""
    from platformdirs import user_data_dir

    from ..config import APP_NAME

    return Path(user_data_dir(APP_NAME)) / "demo.db"


def _agents(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= n <= 50:
        raise argparse.ArgumentTypeError("choose 1 to 50 agents")
    return n


def _positive(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < x < float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number")
    return x


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="a simulated agent fleet on a demo store (try: hitl demo --console)",
        description="Fill a store with a realistic demo and run a simulated, continuously acting agent fleet.",
        epilog=DEMO_HELP.replace("DEMO_DB", str(demo_store_path())),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--console", action="store_true", help="also open the reviewer console on the same store")
    p.add_argument("--agents", type=_agents, default=5, metavar="N", help="how many simulated agents (default: 5)")
    p.add_argument(
        "--pace", type=_positive, default=1.0, metavar="F",
        help="time scale: 0.5 runs twice as fast, 2 half as fast (default: 1.0, a new request every few seconds)",
    )
    p.add_argument("--reset", action="store_true", help="delete the dedicated demo store first and start over")
    p.add_argument("--duration", type=_positive, metavar="SECONDS", help="stop after this long (default: Ctrl-C)")
    p.set_defaults(func=cmd_demo)


def _named_target(args: argparse.Namespace) -> bool:
    """True when the user named a store or server for this run (flag or environment)."""
    return bool(args.store or args.server or os.environ.get("HITL_STORE") or os.environ.get("HITL_SERVER"))


def _wipe(path: Path) -> None:
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)


async def _is_empty(backend: Any) -> bool:
    """No capabilities, requests, escalations or review items yet (API tokens do not count)."""
    return (
        not await backend.list_capabilities()
        and (await backend.list_requests(None, limit=1)).total == 0
        and (await backend.list_escalations(limit=1)).total == 0
        and (await backend.list_reviews(limit=1)).total == 0
    )


def _printer() -> Callable[[Any], None]:
    def report(action: Any) -> None:
        print(f"{datetime.now():%H:%M:%S}  {action.line()}", flush=True)

    return report


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Ctrl-C (and SIGTERM) set ``stop`` so the fleet shuts down cleanly instead of being torn down."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def run_with_console(
    app: Any,
    fleet_backend: Any,
    *,
    agents: int,
    pace: float,
    run: Callable[[Any], Awaitable[Any]] | None = None,
) -> None:
    """Run the fleet in the background while ``run(app)`` (default: ``app.run_async()``) runs the
    console; when the console ends, stop the fleet. The fleet never writes to the terminal."""
    from ..demo import run_fleet

    demo_log = logging.getLogger("hitl_tui.demo")
    propagate, quiet = demo_log.propagate, logging.NullHandler()
    demo_log.propagate = False  # nothing may write over the console
    demo_log.addHandler(quiet)  # (and no handler at all would mean logging's last-resort stderr one)
    stop = asyncio.Event()
    fleet = asyncio.create_task(run_fleet(fleet_backend, stop, agents=agents, pace=pace), name="hitl-demo-fleet")
    try:
        await (run(app) if run is not None else app.run_async())
    finally:
        stop.set()
        with contextlib.suppress(Exception, TimeoutError):
            await asyncio.wait_for(fleet, 10.0)
        demo_log.propagate = propagate
        demo_log.removeHandler(quiet)
    if fleet.done() and not fleet.cancelled() and fleet.exception() is not None:
        print(f"hitl demo: the fleet failed: {fleet.exception()}", file=sys.stderr)


async def cmd_demo(args: argparse.Namespace, ctx: Any) -> int:
    from ..backend import open_backend
    from ..demo import run_fleet, seed_demo

    console_cls = None
    if args.console:
        try:
            from ..console.app import HitlConsole
        except ImportError as exc:
            return fail(f"the reviewer console is not available in this build ({exc}); run `hitl demo` alone")
        console_cls = HitlConsole

    settings = ctx.settings
    if _named_target(args):
        if args.reset:
            return fail("--reset only deletes the dedicated demo store, never a store or server you named", EXIT_USAGE)
        where = settings.server or settings.store
    else:
        path = demo_store_path()
        if args.reset:
            _wipe(path)
        settings = settings.model_copy(update={"store": str(path), "server": None, "token": None})
        where = str(path)

    try:
        fleet_backend = open_backend(settings)
    except ImportError as exc:
        return fail(f"cannot reach {where}: this build lacks the backend for it ({exc})")
    console_backend = None
    try:
        if await _is_empty(fleet_backend):
            await seed_demo(fleet_backend)
            seeded = "filled with the demo story"
        else:
            seeded = "already has data, kept as it is (--reset starts over)"
        if console_cls is None:
            stop = asyncio.Event()
            print(f"hitl demo: {where} {seeded}", flush=True)
            if not settings.server:
                print(f"open the console elsewhere: hitl --store {where}", flush=True)
            print(f"{args.agents} agents at pace {args.pace:g}; Ctrl-C stops", flush=True)
            with _stop_on_signals(stop):
                if args.duration:
                    asyncio.get_running_loop().call_later(args.duration, stop.set)
                await run_fleet(fleet_backend, stop, agents=args.agents, pace=args.pace, report=_printer())
            print("hitl demo: fleet stopped", flush=True)
            return 0

        # The console and the fleet use separate backends on the same store, like separate processes.
        console_backend = open_backend(settings)
        app = console_cls(console_backend, settings)
        if args.duration:
            asyncio.get_running_loop().call_later(args.duration, app.exit)
        await run_with_console(app, fleet_backend, agents=args.agents, pace=args.pace)
        return 0
    finally:
        if console_backend is not None:
            with contextlib.suppress(Exception):
                await console_backend.close()
        with contextlib.suppress(Exception):
            await fleet_backend.close()
