"""Escalations: ``hitl escalate`` (an agent asks for help), ``reply``, ``takeover``, ``resolve``,
``escalations`` (the list) and ``thread`` (one conversation)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..models import EscalationStatus, MessageRole
from ..text import sanitise
from . import EXIT_DENIED, EXIT_ERROR, EXIT_EXPIRED, EXIT_OK, add_json_flag, fail
from .output import age, emit_json, print_table

ESCALATE_EXIT_HELP = """\
exit codes (with --wait):
  0  a human replied (the reply is printed on stdout) or resolved the escalation
  1  a human took over: the agent should stop
  2  nobody replied before --timeout
  3  error: backend unreachable, store error, invalid input
"""

OUTCOME_EXIT = {
    "guidance": EXIT_OK,
    "resolved": EXIT_OK,
    "posted": EXIT_OK,
    "taken_over": EXIT_DENIED,
    "timeout": EXIT_EXPIRED,
    "error": EXIT_ERROR,
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "escalate",
        help="ask a human for help (opens an escalation thread)",
        epilog=ESCALATE_EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("message", help="what the agent is stuck on")
    p.add_argument("--agent", help="who is asking (default: $HITL_AGENT, else 'shell')")
    p.add_argument("--context", metavar="TEXT", help="more context for the human")
    p.add_argument("--wait", action="store_true", help="block until a human replies, takes over or resolves")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="how long --wait waits (default: config)")
    add_json_flag(p)
    p.set_defaults(func=cmd_escalate)

    p = sub.add_parser("escalations", help="list escalations (open and answered first)")
    p.add_argument("--status", choices=[*(s.value for s in EscalationStatus), "all"], default="all")
    p.add_argument("--agent", help="only this agent's")
    p.add_argument("--limit", type=int, default=100)
    add_json_flag(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("thread", help="show one escalation with all its messages")
    p.add_argument("id", type=int)
    add_json_flag(p)
    p.set_defaults(func=cmd_thread)

    p = sub.add_parser("reply", help="answer an escalation with guidance for the agent")
    p.add_argument("id", type=int)
    p.add_argument("text", help="the guidance ('-' reads stdin)")
    add_json_flag(p)
    p.set_defaults(func=cmd_reply)

    p = sub.add_parser("takeover", help="take an escalation over: the agent stops, you do the work")
    p.add_argument("id", type=int)
    p.add_argument("--note", help="recorded with the change")
    add_json_flag(p)
    p.set_defaults(func=cmd_takeover)

    p = sub.add_parser("resolve", help="close an escalation")
    p.add_argument("id", type=int)
    p.add_argument("--note", help="recorded with the change")
    add_json_flag(p)
    p.set_defaults(func=cmd_resolve)


async def cmd_escalate(args: argparse.Namespace, ctx: Any) -> int:
    """Like ``hitl request``, every failure exits 3."""
    try:
        from ..sdk.gate import Gate
        from ..sdk.notify import notifiers_from_settings

        gate = Gate(
            ctx.backend(),
            args.agent or os.environ.get("HITL_AGENT") or "shell",
            notifiers=notifiers_from_settings(ctx.settings.notify),
            settings=ctx.settings,
        )
        result = await gate.escalate(args.message, args.context, timeout=args.timeout, wait=args.wait)
    except Exception as exc:
        from ..errors import HitlError

        return fail(exc.message if isinstance(exc, HitlError) else f"{type(exc).__name__}: {exc}", EXIT_ERROR)
    if args.json:
        emit_json(result.to_dict())
    elif result.outcome.value == "posted":
        print(result.escalation_id)
        print(
            f"escalation {result.escalation_id} is open: {gate.command_prefix} reply {result.escalation_id} TEXT",
            file=sys.stderr,
        )
    elif result.outcome.value == "guidance":
        print(sanitise(result.reply or ""))
    else:
        ref = f"escalation {result.escalation_id} " if result.escalation_id is not None else ""
        print(f"{ref}{result.outcome.value}: {sanitise(result.reason or '')}", file=sys.stderr)
        if result.reply:
            print(sanitise(result.reply))
    return OUTCOME_EXIT[result.outcome.value]


async def cmd_list(args: argparse.Namespace, ctx: Any) -> int:
    status = None if args.status == "all" else EscalationStatus(args.status)
    page = await ctx.backend().list_escalations(status, agent=args.agent, limit=args.limit)
    if args.json:
        emit_json(page.items)
        return 0
    if not page.items:
        print("no escalations")
        return 0
    rows = [(e.id, e.status.value, e.agent, len(e.messages), age(e.updated_at), e.message) for e in page.items]
    print_table(["id", "status", "agent", "msgs", "updated", "message"], rows)
    if page.total > len(rows):
        print(f"... {page.total - len(rows)} more (use --limit)")
    return 0


def describe_thread(esc: Any) -> str:
    lines = [
        f"escalation {esc.id} by {sanitise(esc.agent, oneline=True)}: {esc.status.value}",
        f"  opened:  {esc.created_at:%Y-%m-%d %H:%M:%S} UTC",
    ]
    if esc.request_id is not None:
        lines.append(f"  request: {esc.request_id}")
    if esc.context:
        lines.append("  context:")
        lines += ["    " + line for line in sanitise(esc.context).splitlines()]
    lines.append("")
    for m in esc.messages:
        who = "agent" if m.role is MessageRole.agent else "human"
        lines.append(f"[{m.at:%H:%M:%S}] {who} {sanitise(m.author, oneline=True)}:")
        lines += ["    " + line for line in sanitise(m.text).splitlines() or [""]]
    return "\n".join(lines)


async def cmd_thread(args: argparse.Namespace, ctx: Any) -> int:
    esc = await ctx.backend().get_escalation(args.id)
    if args.json:
        emit_json(esc)
    else:
        print(describe_thread(esc))
    return 0


async def cmd_reply(args: argparse.Namespace, ctx: Any) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    if not text.strip():
        return fail("the reply is empty")
    esc = await ctx.backend().post_message(args.id, text, ctx.reviewer, MessageRole.human)
    if args.json:
        emit_json(esc)
    else:
        print(f"escalation {esc.id}: replied ({esc.status.value})")
    return 0


async def _set_status(args: argparse.Namespace, ctx: Any, status: EscalationStatus) -> int:
    esc = await ctx.backend().set_escalation_status(args.id, status, ctx.reviewer, args.note)
    if args.json:
        emit_json(esc)
    else:
        print(f"escalation {esc.id} {esc.status.value}")
    return 0


async def cmd_takeover(args: argparse.Namespace, ctx: Any) -> int:
    return await _set_status(args, ctx, EscalationStatus.taken_over)


async def cmd_resolve(args: argparse.Namespace, ctx: Any) -> int:
    return await _set_status(args, ctx, EscalationStatus.resolved)
