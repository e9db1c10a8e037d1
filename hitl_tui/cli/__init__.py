"""The ``hitl`` command. Thin: each command parses, calls the backend, prints.

Command groups live in sibling modules, each with ``register(subparsers)``. Heavy imports
(textual, httpx, fastapi) happen inside the commands that need them, so ``hitl request`` and
``hitl hook`` start fast.

Start-up time matters: the Claude Code hook and shell gates start a process per tool call. A
command marked :func:`single_shot` (one round of backend calls, no waiting) runs *inline* on an
embedded SQLite store: the same async command and backend methods, driven to completion without
an event loop, a store thread or the event hub (see ``hitl_tui.backend.local``), so such a process
never imports asyncio. Every other command, and every command on a server or on PostgreSQL, runs
under ``asyncio.run`` as before.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ..config import ConfigError, Settings, load_settings
from ..errors import Conflict, Forbidden, HitlError, InvalidInput, NotFound, StoreUnavailable

EXIT_OK = 0
EXIT_DENIED = 1  # denied, blocked, or refused (already decided)
EXIT_EXPIRED = 2  # expired or timed out
EXIT_ERROR = 3  # backend unreachable, store error, bad input, not found
EXIT_EDITED = 4  # `request --wait`: approved with the reviewer's edited arguments (without --accept-edits)
EXIT_USAGE = 64

EXIT_CODES_HELP = """\
exit codes:
  0   success (for `request --wait`: approved, or allowed to run autonomously)
  1   denied, blocked by policy, or refused (already decided, self-review, a token without the right)
  2   expired: no decision before the deadline (or --wait timed out)
  3   error: backend unreachable, store error, invalid input, not found (fail closed)
  4   `request --wait`: approved with edited arguments: run with the printed ones (--accept-edits: 0)
  64  usage error (bad flags)
"""

COMMAND_MODULES = [
    "requests",
    "escalations",
    "review",
    "stages",
    "audit",
    "config_cmd",
    "console_cmd",
    "demo_cmd",
    "serve",
    "hook",
    "autonomy",
    "warm_cmd",
]


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class Context:
    """What every command gets: settings, and a backend opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._backend: Any = None
        self.inline = False  # set by main for a single-shot command on an embedded SQLite store

    @property
    def reviewer(self) -> str:
        from ..backend.local import default_actor

        return self.settings.reviewer or default_actor()

    def backend(self) -> Any:
        if self._backend is None:
            from ..backend import open_backend

            self._backend = open_backend(self.settings, inline=self.inline)
        return self._backend

    async def aclose(self) -> None:
        if self._backend is not None:
            await self._backend.close()
            self._backend = None


def single_shot(
    when: Callable[[argparse.Namespace, Context], bool] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark an async command that makes one round of backend calls and never waits for an event
    (``when(args, ctx)``: only then). On an embedded SQLite store it runs inline (module docstring).
    A marked command that does try to wait fails with an internal error (exit 3): never a hang."""

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        func.single_shot = when or (lambda args, ctx: True)  # type: ignore[attr-defined]
        return func

    return mark


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


#: which module registers each command, so ``hitl request`` imports only ``requests`` (start-up time:
#: the Claude Code hook and shell gates run a fresh process per call). A command missing here, or
#: not registered by the module named, falls back to importing every module: always correct.
COMMAND_HOMES = {
    **dict.fromkeys(["request", "cancel", "ls", "show", "approve", "deny"], "requests"),
    **dict.fromkeys(["escalate", "escalations", "thread", "reply", "takeover", "resolve"], "escalations"),
    **dict.fromkeys(["review", "digest"], "review"),
    **dict.fromkeys(["stages", "promote", "demote", "policy"], "stages"),
    "audit": "audit",
    "config": "config_cmd",
    "console": "console_cmd",
    "demo": "demo_cmd",
    **dict.fromkeys(["serve", "token"], "serve"),
    **dict.fromkeys(["hook", "mcp"], "hook"),
    **dict.fromkeys(["suggest", "calibration"], "autonomy"),
    "warm": "warm_cmd",
}

#: global options that take a value (to find the command word in argv without parsing it)
_VALUE_OPTIONS = frozenset({"--store", "--server", "--token", "--as", "--config"})


def _command_word(argv: list[str]) -> str | None:
    """The command named in ``argv`` (``hitl [global options] COMMAND ...``), or None."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUE_OPTIONS or (arg.startswith("--") and "=" not in arg and len(arg) > 3
                                       and any(o.startswith(arg) for o in _VALUE_OPTIONS)):
            skip = True  # the option's value follows (argparse also accepts unambiguous prefixes)
        elif arg.startswith("-"):
            if arg in ("-h", "--help", "--version") or arg == "--":
                return None
        else:
            return arg
    return None


def _base_parser() -> tuple[Parser, Any]:
    parser = Parser(
        prog="hitl",
        description=(
            "hitl-tui: a human-in-the-loop control plane for AI agents.\n"
            "With no command, opens the reviewer console on the configured backend.\n"
            "The options below also work after the command (hitl console --store PATH)."
        ),
        epilog=EXIT_CODES_HELP + "\nenvironment: HITL_STORE, HITL_SERVER, HITL_TOKEN, HITL_REVIEWER, HITL_CONFIG,"
        " HITL_WARM=0 (run every command in-process; see docs/warm.md)\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"hitl-tui {__version__}")
    parser.add_argument(
        "--store", metavar="PATH", help="embedded SQLite store (default: the user data dir; env HITL_STORE)"
    )
    parser.add_argument("--server", metavar="URL", help="shared approval server (env HITL_SERVER)")
    parser.add_argument("--token", metavar="T", help="bearer token for --server (env HITL_TOKEN)")
    parser.add_argument(
        "--as", dest="reviewer", metavar="NAME", help="who you are (default: config `reviewer`, else the OS user)"
    )
    parser.add_argument("--config", metavar="FILE", help="config file (default: `hitl config path`; env HITL_CONFIG)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    return parser, sub


#: the global options a command also takes after its name (``hitl console --store X``, as kubectl and gh
#: take flags anywhere): flag, dest, metavar
_GLOBAL_OPTIONS = (
    ("--store", "store", "PATH"),
    ("--server", "server", "URL"),
    ("--token", "token", "T"),
    ("--as", "reviewer", "NAME"),
    ("--config", "config", "FILE"),
)


def _globals_after_the_command(parser: argparse.ArgumentParser) -> None:
    """Give every (sub-)command the global options, hidden from its help and with no default, so
    one given after the command sets the same setting and one not given leaves the global value
    alone. A command with an option of its own by that name (``serve --store``) keeps its own."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for command in {id(c): c for c in action.choices.values()}.values():
            taken = {flag for a in command._actions for flag in a.option_strings}
            for flag, dest, metavar in _GLOBAL_OPTIONS:
                if flag not in taken:
                    command.add_argument(
                        flag, dest=dest, metavar=metavar, default=argparse.SUPPRESS, help=argparse.SUPPRESS
                    )
            _globals_after_the_command(command)


def _register(sub: Any, name: str) -> None:
    import importlib

    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        return  # a command group not written yet
    module.register(sub)


def build_parser(argv: list[str] | None = None) -> Parser:
    """The ``hitl`` parser. Given the arguments, it registers only the module of the command they
    name (when known); otherwise (help, no or unknown command) every command."""
    word = _command_word(argv) if argv is not None else None
    home = COMMAND_HOMES.get(word) if word is not None else None
    if home is not None and home in COMMAND_MODULES:
        parser, sub = _base_parser()
        _register(sub, home)
        if word in sub.choices:
            _globals_after_the_command(parser)
            return parser
    parser, sub = _base_parser()
    for name in COMMAND_MODULES:
        _register(sub, name)
    _globals_after_the_command(parser)
    return parser


def fail(message: str, code: int = EXIT_ERROR) -> int:
    print(f"hitl: {message}", file=sys.stderr)
    return code


#: stopping signals a command turns into a cancellation (as asyncio does with SIGINT), so that
#: ``finally`` and ``except CancelledError`` run: a waiting gate withdraws its request first
STOPPING_SIGNALS = ("SIGTERM", "SIGHUP")


async def _run_async(func: Callable[..., Any], args: argparse.Namespace, ctx: Context) -> int:
    try:
        return int(await func(args, ctx) or 0)
    finally:
        if ctx._backend is not None and getattr(args, "reviewer", None):
            from .output import WRITING_COMMANDS, as_ignored_warning

            warning = as_ignored_warning(args.reviewer, ctx._backend) if args.command in WRITING_COMMANDS else None
            if warning:
                print(warning, file=sys.stderr)
        try:
            await ctx.aclose()
        except Exception:
            pass


async def _run_stoppable(func: Callable[..., Any], args: argparse.Namespace, ctx: Context) -> int:
    """On an event loop (a command that may wait): SIGTERM and SIGHUP cancel it as SIGINT does."""
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    stopped: list[int] = []

    def stop(signum: int) -> None:
        if not stopped and main is not None:
            stopped.append(signum)
            main.cancel()

    installed = []
    if args.command != "serve":  # the server shuts down gracefully on its own
        for name in STOPPING_SIGNALS:
            sig = getattr(signal, name, None)
            if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:  # ignored (nohup) stays ignored
                loop.add_signal_handler(sig, stop, sig)
                installed.append(sig)
    try:
        return await _run_async(func, args, ctx)
    except asyncio.CancelledError:
        if stopped:
            return 128 + stopped[0]
        raise
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _runs_inline(func: Callable[..., Any], args: argparse.Namespace, ctx: Context) -> bool:
    when = getattr(func, "single_shot", None)
    if when is None:
        return False
    from ..backend import can_open_inline

    return can_open_inline(ctx.settings) and bool(when(args, ctx))


def _run_command(func: Callable[..., Any], args: argparse.Namespace, ctx: Context) -> int:
    import inspect

    if not inspect.iscoroutinefunction(func):
        return int(func(args, ctx) or 0)
    if not _runs_inline(func, args, ctx):
        import asyncio

        return asyncio.run(_run_stoppable(func, args, ctx))
    from ..backend.local import run_inline

    ctx.inline = True
    return run_inline(_run_async(func, args, ctx))


def setup_process(command: str | None) -> None:
    """For every command but ``serve`` (a server, which logs properly and may be observed):

    * warnings stay out of the terminal: an error is reported once, in one line, by the command
      itself (not again as, say, the event hub's "event hub stopped" warning through logging's
      last-resort handler); errors logged on purpose (the hook's "could not log ... for review")
      still reach stderr that way;
    * pydantic plugins are off (``PYDANTIC_DISABLE_PLUGINS``, unless set): finding them scans the
      entry points of every installed distribution when the first model validator is built, which
      costs a hook or gate call more than its own work does (start-up time).
    """
    if command == "serve":
        return
    import logging
    import os

    logging.getLogger().setLevel(logging.ERROR)
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def main(argv: list[str] | None = None) -> int:
    words = list(argv if argv is not None else sys.argv[1:])
    parser = build_parser(words)
    args = parser.parse_args(words)
    if args.command is None:
        args.command = "console"
        args = build_parser([*words, "console"]).parse_args([*words, "console"])
    setup_process(args.command)
    from pathlib import Path

    try:
        settings = load_settings(
            Path(args.config).expanduser() if args.config else None,
            {"store": args.store, "server": args.server, "token": args.token, "reviewer": args.reviewer},
        )
    except ConfigError as exc:
        return fail(str(exc))
    if args.server and args.store:
        return fail("choose --store (embedded) or --server (shared), not both", EXIT_USAGE)
    ctx = Context(settings)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return _run_command(func, args, ctx)
    except KeyboardInterrupt:
        return 130
    except (NotFound, InvalidInput) as exc:
        return fail(exc.message)
    except (Conflict, Forbidden) as exc:  # refused: already decided, self-review, a token without the right
        return fail(exc.message, EXIT_DENIED)
    except StoreUnavailable as exc:
        return fail(f"backend unavailable: {exc.message}")
    except HitlError as exc:
        return fail(exc.message)
    except ConfigError as exc:
        return fail(str(exc))
    except BrokenPipeError:
        return EXIT_OK


def _is_hook(argv: list[str]) -> bool:
    """``hitl [global options] hook claude-code ...``"""
    return any(a == "hook" and argv[i + 1 : i + 2] == ["claude-code"] for i, a in enumerate(argv))


def entrypoint() -> None:  # console script
    argv = sys.argv[1:]
    if not _is_hook(argv):
        sys.exit(main())
    # Claude Code treats exit 2 as "block the tool" and any other non-zero exit as a non-blocking
    # error (the tool runs!). A hook that fails before it can answer must therefore exit 2.
    try:
        code = main()
    except SystemExit as exc:  # argparse usage errors
        code = exc.code if isinstance(exc.code, int) else 2
    except BaseException as exc:
        print(f"hitl: hook failed: {exc}", file=sys.stderr)
        code = 2
    sys.exit(0 if code == 0 else 2)
