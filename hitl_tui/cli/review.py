"""After-the-fact review: ``hitl review log|ls|show|mark`` and the daily ``hitl digest``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..models import ReviewCreate, ReviewMark
from ..text import sanitise
from . import add_json_flag
from .output import age, build, emit_json, parse_json_object, print_table


def register(sub: Any) -> None:
    p = sub.add_parser("review", help="log actions for review, list them, mark them ok or flagged")
    rsub = p.add_subparsers(dest="review_command", metavar="ACTION", required=True)

    q = rsub.add_parser("log", help="log an action that ran, for a human to review later")
    q.add_argument("tool")
    q.add_argument("--args", dest="tool_args", metavar="JSON", help="the arguments it ran with")
    q.add_argument("--result", required=True, metavar="TEXT", help="what it returned ('-' reads stdin)")
    q.add_argument("--agent", help="who ran it (default: $HITL_AGENT, else 'shell')")
    q.add_argument("--request", type=int, metavar="ID", help="the approval request it ran under")
    add_json_flag(q)
    q.set_defaults(func=cmd_log)

    q = rsub.add_parser("ls", help="list logged actions (unreviewed first)")
    state = q.add_mutually_exclusive_group()
    state.add_argument("--unreviewed", action="store_true", help="only those nobody reviewed yet")
    state.add_argument("--reviewed", action="store_true", help="only reviewed ones")
    q.add_argument("--flagged", action="store_true", help="only those marked flagged")
    q.add_argument("--tool", help="only this tool")
    q.add_argument("--agent", help="only this agent")
    q.add_argument("--since", metavar="WHEN", help="only newer than 24h, 7d, or an ISO date")
    q.add_argument("--limit", type=int, default=100)
    add_json_flag(q)
    q.set_defaults(func=cmd_ls)

    q = rsub.add_parser("show", help="show one logged action in full")
    q.add_argument("id", type=int)
    add_json_flag(q)
    q.set_defaults(func=cmd_show)

    q = rsub.add_parser("mark", help="record your verdict on a logged action")
    q.add_argument("id", type=int)
    q.add_argument("verdict", choices=["ok", "flagged"])
    q.add_argument("--note", help="why (recorded)")
    add_json_flag(q)
    q.set_defaults(func=cmd_mark)

    p = sub.add_parser("digest", help="what agents did on their own: counts, unreviewed and flagged items")
    p.add_argument("--since", default="24h", metavar="WHEN", help="24h (default), 7d, 90m or an ISO date")
    p.add_argument("--format", choices=["text", "md", "json"], default="text")
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p.set_defaults(func=cmd_digest)


async def cmd_log(args: argparse.Namespace, ctx: Any) -> int:
    result = sys.stdin.read() if args.result == "-" else args.result
    data = build(
        ReviewCreate,
        agent=args.agent or os.environ.get("HITL_AGENT") or "shell",
        tool=args.tool,
        args=parse_json_object(args.tool_args),
        result=result,
        result_limit=ctx.settings.review.result_limit,
        request_id=args.request,
    )
    item = await ctx.backend().log_review(data)
    if args.json:
        emit_json(item)
    else:
        print(item.id)
    return 0


async def cmd_ls(args: argparse.Namespace, ctx: Any) -> int:
    from ..sdk.digest import parse_since

    reviewed = True if args.reviewed or args.flagged else (False if args.unreviewed else None)
    page = await ctx.backend().list_reviews(
        reviewed,
        tool=args.tool,
        agent=args.agent,
        since=parse_since(args.since) if args.since else None,
        verdict="flagged" if args.flagged else None,
        limit=args.limit,
    )
    if args.json:
        emit_json(page.items)
        return 0
    if not page.items:
        print("no review items")
        return 0
    from ..sdk.redact import redact

    rows = [
        (
            i.id,
            i.verdict.value if i.verdict else "unreviewed",
            i.agent,
            i.tool,
            age(i.created_at),
            json.dumps(redact(i.args), ensure_ascii=False, sort_keys=True),
            i.result,
        )
        for i in page.items
    ]
    print_table(["id", "state", "agent", "tool", "age", "args", "result"], rows, max_width=50)
    if page.total > len(rows):
        print(f"... {page.total - len(rows)} more (use --limit)")
    return 0


async def cmd_show(args: argparse.Namespace, ctx: Any) -> int:
    item = await ctx.backend().get_review(args.id)
    if args.json:
        emit_json(item)
        return 0
    lines = [
        f"review item {item.id}: {sanitise(item.tool, oneline=True)} by {sanitise(item.agent, oneline=True)}",
        f"  logged:  {item.created_at:%Y-%m-%d %H:%M:%S} UTC",
        f"  state:   {item.verdict.value if item.verdict else 'unreviewed'}"
        + (f" by {sanitise(item.reviewer, oneline=True)}" if item.reviewer else ""),
    ]
    if item.request_id is not None:
        lines.append(f"  request: {item.request_id}")
    if item.note:
        lines.append(f"  note:    {sanitise(item.note)}")
    lines.append("  args:")
    lines += ["    " + sanitise(x) for x in json.dumps(item.args, indent=2, ensure_ascii=False).splitlines()]
    cut = f" (first {len(item.result)} of {item.result_length} characters)" if item.truncated else ""
    lines.append(f"  result{cut}:")
    lines += ["    " + x for x in sanitise(item.result).splitlines() or [""]]
    print("\n".join(lines))
    return 0


async def cmd_mark(args: argparse.Namespace, ctx: Any) -> int:
    mark = build(ReviewMark, verdict=args.verdict, note=args.note)
    backend = ctx.backend()
    item = await backend.mark_review(args.id, mark, ctx.reviewer)
    demotion = await _after_flag(backend, item, ctx)
    if args.json:
        emit_json(item)
    else:
        print(f"review item {item.id} marked {item.verdict.value if item.verdict else '?'}")
        if demotion is not None:
            print(demotion)
    return 0


async def _after_flag(backend: Any, item: Any, ctx: Any) -> str | None:
    """On an embedded store, a flag acts on ``[autonomy] demote_on_flag`` here, as the server and the
    console do for theirs: ``act`` demotes the tool's autonomous capability to approval at once,
    ``suggest`` says what ``hitl suggest`` proposes. (Through ``hitl serve`` the server acts.)"""
    from ..backend.local import LocalBackend

    mode = ctx.settings.autonomy.demote_on_flag
    flagged = item.verdict is not None and item.verdict.value == "flagged"
    if not flagged or mode == "off" or not isinstance(backend, LocalBackend):
        return None
    from ..autonomy.demotion import on_review_flagged

    result = await on_review_flagged(backend, item, mode)
    if result is None:
        return None
    if result.applied:
        text = f"{result.target} demoted to approval (demote_on_flag = act): {result.evidence}"
    else:
        text = f"suggested: demote {result.target} to approval (see hitl suggest): {result.evidence}"
    return sanitise(text, oneline=True)


async def cmd_digest(args: argparse.Namespace, ctx: Any) -> int:
    from ..sdk.digest import build_digest, parse_since, render

    digest = await build_digest(ctx.backend(), parse_since(args.since))
    sys.stdout.write(render(digest, "json" if args.json else args.format))
    return 0
