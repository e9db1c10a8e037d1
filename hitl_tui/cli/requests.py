"""Approval requests: ``hitl ls``, ``show``, ``approve``, ``deny``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..models import ApprovalRequest, DecisionIn, RequestStatus
from ..text import sanitise
from . import add_json_flag
from .output import age, build, emit_json, parse_json_object, print_table


def register(sub: Any) -> None:
    p = sub.add_parser("ls", help="list approval requests (pending by default)")
    p.add_argument("--status", choices=[*(s.value for s in RequestStatus), "all"], default="pending")
    p.add_argument("--agent", help="only this agent's requests")
    p.add_argument("--tool", help="only this tool")
    p.add_argument("--limit", type=int, default=100)
    add_json_flag(p)
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("show", help="show one request in full")
    p.add_argument("id", type=int)
    add_json_flag(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("approve", help="approve a pending request")
    p.add_argument("id", type=int)
    p.add_argument("--reason", help="why (recorded)")
    p.add_argument("--args", dest="edited_args", metavar="JSON", help="approve with these edited arguments")
    add_json_flag(p)
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("deny", help="deny a pending request")
    p.add_argument("id", type=int)
    p.add_argument("--reason", required=True, help="why (recorded and shown to the agent)")
    add_json_flag(p)
    p.set_defaults(func=cmd_deny)


async def cmd_ls(args: argparse.Namespace, ctx: Any) -> int:
    status = None if args.status == "all" else RequestStatus(args.status)
    page = await ctx.backend().list_requests(status, agent=args.agent, tool=args.tool, limit=args.limit)
    if args.json:
        emit_json(page.items)
        return 0
    rows = [
        (
            r.id,
            r.status.value,
            r.risk.value,
            r.agent,
            r.tool,
            "-" if r.confidence is None else r.confidence,
            age(r.created_at),
            r.summary or json.dumps(r.args, ensure_ascii=False),
        )
        for r in page.items
    ]
    if not rows:
        print(f"no {args.status if args.status != 'all' else ''} requests".replace("  ", " "))
        return 0
    print_table(["id", "status", "risk", "agent", "tool", "conf", "age", "summary"], rows)
    if page.total > len(rows):
        print(f"... {page.total - len(rows)} more (use --limit)")
    return 0


def describe_request(r: ApprovalRequest) -> str:
    lines = [
        f"request {r.id}: {sanitise(r.tool, oneline=True)} by {sanitise(r.agent, oneline=True)}",
        f"  status:     {r.status.value}"
        + (f" by {sanitise(r.decided_by, oneline=True)} at {r.decided_at:%Y-%m-%d %H:%M:%S}" if r.decided_at and r.decided_by else ""),
        f"  risk:       {r.risk.value}{' (irreversible)' if r.irreversible else ''}",
        f"  confidence: {'-' if r.confidence is None else r.confidence}",
        f"  created:    {r.created_at:%Y-%m-%d %H:%M:%S} UTC",
    ]
    if r.expires_at:
        lines.append(f"  expires:    {r.expires_at:%Y-%m-%d %H:%M:%S} UTC")
    if r.required_approvals > 1:
        lines.append(f"  approvals:  {r.approval_count} of {r.required_approvals}")
    if r.summary:
        lines.append(f"  summary:    {sanitise(r.summary)}")
    if r.policy_reason:
        lines.append(f"  policy:     {sanitise(r.policy_reason)}")
    if r.decision_reason:
        lines.append(f"  reason:     {sanitise(r.decision_reason)}")
    lines.append("  args:")
    lines += ["    " + sanitise(line) for line in json.dumps(r.args, indent=2, ensure_ascii=False).splitlines()]
    if r.edited_args is not None:
        lines.append("  edited args (what runs):")
        lines += ["    " + sanitise(line) for line in json.dumps(r.edited_args, indent=2, ensure_ascii=False).splitlines()]
    if r.context:
        lines.append(f"  context:    {sanitise(r.context)}")
    return "\n".join(lines)


async def cmd_show(args: argparse.Namespace, ctx: Any) -> int:
    r = await ctx.backend().get_request(args.id)
    if args.json:
        emit_json(r)
    else:
        print(describe_request(r))
    return 0


async def _decide(args: argparse.Namespace, ctx: Any, decision: DecisionIn) -> int:
    r = await ctx.backend().decide(args.id, decision, ctx.reviewer)
    if args.json:
        emit_json(r)
    elif r.status is RequestStatus.pending:
        print(f"request {r.id}: vote recorded ({r.approval_count} of {r.required_approvals} approvals)")
    else:
        print(f"request {r.id} {r.status.value}")
    return 0


async def cmd_approve(args: argparse.Namespace, ctx: Any) -> int:
    edited = parse_json_object(args.edited_args) if args.edited_args is not None else None
    return await _decide(args, ctx, build(DecisionIn, decision="approve", reason=args.reason, edited_args=edited))


async def cmd_deny(args: argparse.Namespace, ctx: Any) -> int:
    return await _decide(args, ctx, build(DecisionIn, decision="deny", reason=args.reason))
