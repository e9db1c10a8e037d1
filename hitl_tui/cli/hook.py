"""Integrations on the command line: ``hitl hook claude-code``, ``hitl mcp`` and the policy importers
(``import-claude``, ``import-gemini``, added to the ``hitl policy`` group by
:func:`add_policy_import_commands`).

Nothing heavy is imported at module level: the hook runs before every Claude Code tool call.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from . import EXIT_OK, EXIT_USAGE, add_json_flag

HOOK_HELP = """\
Claude Code hook: reads one hook event (JSON) on stdin.

PreToolUse: prints {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision":
"allow"|"deny", "permissionDecisionReason": ..., "updatedInput": ...}} and exits 0. Any failure
(bad input, unreachable backend, no decision within --timeout) answers "deny" with the reason.
PostToolUse: logs the call and its result for after-the-fact review when the policy asks for that;
prints nothing.

.claude/settings.json (the hook's own timeout must exceed --timeout + 15 s):
  {"hooks": {"PreToolUse": [{"matcher": "*", "hooks": [{"type": "command",
     "command": "hitl hook claude-code --timeout 300 || exit 2", "timeout": 330}]}],
   "PostToolUse": [{"matcher": "*", "hooks": [{"type": "command",
     "command": "hitl hook claude-code"}]}]}}
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "hook",
        help="hooks for agent frameworks (Claude Code)",
        description="Hooks that agent frameworks run before (and after) each tool call.",
    )
    kinds = p.add_subparsers(dest="hook_kind", metavar="KIND", parser_class=type(p))
    cc = kinds.add_parser(
        "claude-code",
        help="Claude Code PreToolUse / PostToolUse hook (JSON on stdin)",
        description="Gate Claude Code's tool calls through the policy and the reviewers.",
        epilog=HOOK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # A string, validated by the command: a bad value must still answer "deny", not a usage error
    # (Claude Code treats exit codes other than 0 and 2 as "carry on").
    cc.add_argument("--timeout", metavar="SECONDS", help="how long to wait for a reviewer (default 300)")
    cc.add_argument("--agent", metavar="NAME", help="agent name (default: claude-code:<session id prefix>)")
    cc.set_defaults(func=cmd_claude_code)
    p.set_defaults(func=_usage(p))

    m = sub.add_parser(
        "mcp",
        help="MCP stdio server: approval_prompt (Claude Code permission prompt tool) and ask_human",
        description=(
            "Serve the approval_prompt and ask_human tools over MCP on stdin/stdout.\n"
            "  claude mcp add hitl -- hitl mcp\n"
            "  claude -p '...' --permission-prompt-tool mcp__hitl__approval_prompt"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument("--agent", metavar="NAME", default="claude-code", help="agent name (default: claude-code)")
    m.add_argument("--timeout", type=float, metavar="SECONDS", default=300.0, help="wait for a reviewer (300)")
    m.add_argument(
        "--question-timeout", type=float, metavar="SECONDS", default=1800.0, help="ask_human waits this long (1800)"
    )
    m.set_defaults(func=cmd_mcp)


def _usage(p: argparse.ArgumentParser) -> Any:
    def show(args: argparse.Namespace, ctx: Any) -> int:
        p.print_help()
        return EXIT_USAGE

    return show


# --------------------------------------------------------------------------- hook


def cmd_claude_code(args: argparse.Namespace, ctx: Any) -> int:
    """Always exits 0 with an answer for PreToolUse: a failure is a ``deny``, never a crash.

    On an embedded SQLite store, what the policy alone settles is answered inline (no event loop,
    no threads: this runs before every tool call); the rest goes through the gate under asyncio."""
    from ..backend import can_open_inline
    from ..integrations.claude_code import NEEDS_GATE, answer_inline, deny

    try:
        raw = sys.stdin.buffer.read()
    except Exception as exc:
        _print_json(deny(f"error: {type(exc).__name__}: {exc}").to_output())
        return EXIT_OK
    out: Any = NEEDS_GATE
    if can_open_inline(ctx.settings):
        from ..backend.local import run_inline

        ctx.inline = True
        try:
            out = answer_inline(raw, ctx.backend, settings=ctx.settings, agent=args.agent, timeout=args.timeout)
        finally:
            try:
                run_inline(ctx.aclose())
            except Exception:
                pass
            ctx.inline = False
    if out is NEEDS_GATE:
        import asyncio

        out = asyncio.run(_through_the_gate(raw, args, ctx))
    if out is not None:
        _print_json(out)
    return EXIT_OK


async def _through_the_gate(raw: bytes, args: argparse.Namespace, ctx: Any) -> dict[str, Any] | None:
    from ..integrations.claude_code import deny, handle_event

    try:
        from ..sdk.notify import notifiers_from_settings

        notifiers = notifiers_from_settings(ctx.settings.notify)
    except Exception as exc:
        return deny(f"error: {type(exc).__name__}: {exc}").to_output()
    try:
        return await handle_event(
            raw, ctx.backend, settings=ctx.settings, agent=args.agent, timeout=args.timeout, notifiers=notifiers
        )
    finally:
        try:
            await ctx.aclose()
        except Exception:
            pass


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False))
    sys.stdout.write("\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- mcp


def cmd_mcp(args: argparse.Namespace, ctx: Any) -> int:
    import anyio

    from ..integrations.mcp_server import HumanTools, serve_stdio
    from ..sdk.notify import notifiers_from_settings

    for name in ("timeout", "question_timeout"):
        if not getattr(args, name) > 0:
            print(f"hitl: --{name.replace('_', '-')} must be positive", file=sys.stderr)
            return EXIT_USAGE
    tools = HumanTools(
        ctx.backend,
        agent=args.agent,
        settings=ctx.settings,
        timeout=args.timeout,
        question_timeout=args.question_timeout,
        notifiers=notifiers_from_settings(ctx.settings.notify),
    )
    anyio.run(serve_stdio, tools)  # closes the backend on its own loop
    return EXIT_OK


# --------------------------------------------------------------------------- policy import


def add_policy_import_commands(policy_subparsers: Any) -> None:
    """Add ``import-claude`` and ``import-gemini`` to the ``hitl policy`` group."""
    p = policy_subparsers.add_parser(
        "import-claude",
        help="import Claude Code permission rules (settings.json permissions.allow/ask/deny)",
        description=(
            "Translate a Claude Code settings.json's permissions.allow / ask / deny into rules "
            "(same precedence: deny, then ask, then allow). Rules imported earlier from the same "
            "file are replaced; other rules are kept. Entries that cannot be translated are reported."
        ),
    )
    p.add_argument("path", help="settings.json (e.g. .claude/settings.json)")
    p.add_argument(
        "--root",
        metavar="DIR",
        help="project root that /path and ./path rules are relative to (default: the folder holding .claude/)",
    )
    p.add_argument("--dry-run", action="store_true", help="show what would be imported; write nothing")
    add_json_flag(p)
    p.set_defaults(func=cmd_import_claude)

    p = policy_subparsers.add_parser(
        "import-gemini",
        help="import Gemini CLI policy rules (TOML [[rule]] tables)",
        description=(
            "Translate a Gemini CLI policy file ([[rule]] with toolName, mcpName, commandPrefix, "
            "commandRegex, argsPattern, decision, priority) into rules. Rules imported earlier from the "
            "same file are replaced; other rules are kept. Entries that cannot be translated are reported."
        ),
    )
    p.add_argument("path", help="a policy .toml file (e.g. ~/.gemini/policies/my-rules.toml)")
    p.add_argument("--dry-run", action="store_true", help="show what would be imported; write nothing")
    add_json_flag(p)
    p.set_defaults(func=cmd_import_gemini)


async def cmd_import_claude(args: argparse.Namespace, ctx: Any) -> int:
    from ..integrations.claude_policy import import_claude_settings

    result = import_claude_settings(Path(args.path), root=Path(args.root) if args.root else None)
    return await _apply_import(result, args, ctx)


async def cmd_import_gemini(args: argparse.Namespace, ctx: Any) -> int:
    from ..integrations.gemini_policy import import_gemini_policy

    result = import_gemini_policy(Path(args.path))
    return await _apply_import(result, args, ctx)


async def _apply_import(result: Any, args: argparse.Namespace, ctx: Any) -> int:
    from ..integrations.policy_import import merge_rules
    from ..text import sanitise
    from .output import emit_json

    backend = ctx.backend()
    existing = await backend.list_rules()
    merged, replaced = merge_rules(existing, result.rules, result.source)
    if not args.dry_run:
        await backend.set_rules(merged, ctx.reviewer, f"imported {len(result.rules)} rule(s) from {result.path}")
    if args.json:
        emit_json(
            {
                "source": result.source,
                "dry_run": args.dry_run,
                "imported": result.rules,
                "replaced": replaced,
                "total_rules": len(merged),
                "skipped": [s.to_dict() for s in result.skipped],
                "notes": [n.to_dict() for n in result.notes],
            }
        )
        return EXIT_OK
    verb = "would import" if args.dry_run else "imported"
    print(f"{verb} {len(result.rules)} rule(s) from {sanitise(str(result.path), oneline=True)}")
    for rule in result.rules:
        scope = f" (agent {sanitise(rule.agent, oneline=True)})" if rule.agent else ""
        print(f"  {rule.effect.value:<5}  {sanitise(rule.pattern, oneline=True)}{scope}")
    if replaced:
        print(f"{'would replace' if args.dry_run else 'replaced'} {replaced} rule(s) imported earlier from this file")
    for note in result.notes:
        print(f"note: {sanitise(note.entry, oneline=True)}: {sanitise(note.reason, oneline=True)}")
    if result.skipped:
        print(f"not translated ({len(result.skipped)}):")
        for s in result.skipped:
            print(f"  {sanitise(s.entry, oneline=True)}: {sanitise(s.reason, oneline=True)}")
    return EXIT_OK
