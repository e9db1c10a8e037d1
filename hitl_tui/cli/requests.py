"""Approval requests: ``hitl request`` (the gate for shell scripts), ``ls``, ``show``, ``approve``,
``deny`` and ``cancel``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..models import ApprovalRequest, DecisionIn, RequestStatus
from ..text import sanitise
from . import EXIT_DENIED, EXIT_EDITED, EXIT_ERROR, EXIT_EXPIRED, EXIT_OK, add_json_flag, fail, single_shot
from .output import age, build, emit_json, int_between, parse_json_object, print_table

REQUEST_EXIT_HELP = """\
exit codes (with --wait):
  0  approved (run it, with the printed arguments), or allowed to run autonomously
  1  denied, blocked by policy, escalated to a human, or cancelled: do not run it
  2  expired: nobody decided before the deadline
  3  error: backend unreachable, store error, invalid input (fail closed: do not run it)
  4  approved, but the reviewer edited the arguments: run with the printed ones, not yours
     (`cmd --wait && ./deploy.sh prod` then stops instead of running what was not approved);
     with --accept-edits it exits 0, for a script that runs what --json prints as "args"
  130, 143, 129  stopped by SIGINT (Ctrl-C), SIGTERM (a CI cancel, `timeout`) or SIGHUP: the
     pending request is cancelled first, so nobody can approve a call that no longer waits
without --wait, 0 means filed (the request id is printed) or allowed; 1, 2, 3 as above.
While waiting, one line on stderr says which request waits and how to decide it.

The agent name defaults to $HITL_AGENT, else "shell".
"""

STATUS_EXIT = {
    "autonomous": EXIT_OK,
    "approved": EXIT_OK,
    "pending": EXIT_OK,
    "denied": EXIT_DENIED,
    "blocked": EXIT_DENIED,
    "escalated": EXIT_DENIED,
    "cancelled": EXIT_DENIED,
    "expired": EXIT_EXPIRED,
    "error": EXIT_ERROR,
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "request",
        help="ask the policy (and a human, when needed) whether a tool may run",
        description="File a tool call through the policy. With --wait, block until a human decides.",
        epilog=REQUEST_EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("tool", help="the tool or action name, e.g. deploy")
    p.add_argument("--args", dest="tool_args", metavar="JSON", help="arguments as a JSON object ('-' reads stdin)")
    p.add_argument("--agent", help="who is asking (default: $HITL_AGENT, else 'shell')")
    p.add_argument(
        "--confidence", type=int_between(0, 100, "the confidence"), metavar="N", help="the agent's confidence, 0-100"
    )
    p.add_argument("--summary", metavar="TEXT", help="one line for the reviewer")
    p.add_argument("--context", metavar="TEXT", help="longer context for the reviewer")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="deadline for a decision (default: the policy's)")
    p.add_argument("--wait", action="store_true", help="block until decided; the exit code says how")
    p.add_argument(
        "--accept-edits",
        action="store_true",
        help="exit 0 (not 4) when approved with edited arguments: this script runs the printed ones",
    )
    p.add_argument(
        "--idempotency-key",
        metavar="K",
        help="re-running with the same key finds the same request (a new one once it expired or was "
        "cancelled; the same key with other arguments: exit 3)",
    )
    add_json_flag(p)
    p.set_defaults(func=cmd_request)

    p = sub.add_parser("cancel", help="withdraw a pending request")
    p.add_argument("id", type=int)
    p.add_argument("--reason", help="why (recorded)")
    add_json_flag(p)
    p.set_defaults(func=cmd_cancel)

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


@single_shot()
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
        + (
            f" by {sanitise(r.decided_by, oneline=True)} at {r.decided_at:%Y-%m-%d %H:%M:%S}"
            if r.decided_at and r.decided_by
            else ""
        ),
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
        edited = json.dumps(r.edited_args, indent=2, ensure_ascii=False)
        lines += ["    " + sanitise(line) for line in edited.splitlines()]
    if r.context:
        lines.append(f"  context:    {sanitise(r.context)}")
    return "\n".join(lines)


@single_shot()
async def cmd_show(args: argparse.Namespace, ctx: Any) -> int:
    r = await ctx.backend().get_request(args.id)
    if args.json:
        emit_json(r)
    else:
        print(describe_request(r))
    return 0


async def _decide(args: argparse.Namespace, ctx: Any, decision: DecisionIn) -> int:
    backend = ctx.backend()
    before = None if args.json else await backend.get_request(args.id)  # (--json prints the request alone)
    r = await backend.decide(args.id, decision, ctx.reviewer)
    again = r == before  # the same decision (or vote) by the same reviewer, repeated: nothing was written
    if args.json:
        emit_json(r)
    elif r.status is RequestStatus.pending:
        votes = f"{r.approval_count} of {r.required_approvals} approvals"
        print(
            f"request {r.id}: your vote was already recorded ({votes}); nothing changed"
            if again
            else f"request {r.id}: vote recorded ({votes})"
        )
    elif again:
        print(
            f"request {r.id} was already {r.status.value} by {sanitise(r.decided_by or '?', oneline=True)}; "
            "nothing changed"
        )
    else:
        print(f"request {r.id} {r.status.value}")
    return 0


@single_shot()
async def cmd_approve(args: argparse.Namespace, ctx: Any) -> int:
    edited = parse_json_object(args.edited_args) if args.edited_args is not None else None
    return await _decide(args, ctx, build(DecisionIn, decision="approve", reason=args.reason, edited_args=edited))


@single_shot()
async def cmd_deny(args: argparse.Namespace, ctx: Any) -> int:
    return await _decide(args, ctx, build(DecisionIn, decision="deny", reason=args.reason))


# --------------------------------------------------------------------------- hitl request


def _agent_name(args: argparse.Namespace) -> str:
    return args.agent or os.environ.get("HITL_AGENT") or "shell"


def _files_without_waiting(args: argparse.Namespace, ctx: Any) -> bool:
    """``hitl request`` without ``--wait`` and without notifiers to send: one round of calls."""
    from ..sdk.notify import notifiers_from_settings

    return not args.wait and not notifiers_from_settings(ctx.settings.notify)


@single_shot(_files_without_waiting)
async def cmd_request(args: argparse.Namespace, ctx: Any) -> int:
    """Every failure exits 3 (never 0, never a misleading 1): the caller must not run the tool."""
    try:
        return await _request(args, ctx)
    except Exception as exc:
        from ..errors import HitlError

        message = exc.message if isinstance(exc, HitlError) else f"{type(exc).__name__}: {exc}"
        if args.json:
            emit_json({"status": "error", "tool": args.tool, "reason": message})
        return fail(message, EXIT_ERROR)


async def _request(args: argparse.Namespace, ctx: Any) -> int:
    from ..sdk.gate import Gate
    from ..sdk.notify import notifiers_from_settings

    tool_args = parse_json_object(args.tool_args)
    notifiers = notifiers_from_settings(ctx.settings.notify)
    if args.wait:
        notifiers.append(_WaitingLine())
    gate = Gate(ctx.backend(), _agent_name(args), notifiers=notifiers, settings=ctx.settings)
    clearance = await gate.check(
        args.tool,
        tool_args,
        confidence=args.confidence,
        summary=args.summary,
        context=args.context,
        timeout=args.timeout,
        idempotency_key=args.idempotency_key,
        renew_expired=True,  # a re-run job asks again once the request it filed expired
        wait=args.wait,
    )
    req = clearance.request
    edited = clearance.status == "approved" and req is not None and req.edited_args is not None
    if clearance.status == "pending" and req is not None and not args.json:
        print(req.id)
        print(
            f"request {req.id} waits for a human: {gate.command_prefix} approve {req.id}  |  "
            f"{gate.command_prefix} deny {req.id} --reason TEXT",
            file=sys.stderr,
        )
    elif args.json:
        emit_json(
            {
                "status": clearance.status,
                "tool": clearance.tool,
                "agent": req.agent if req is not None else gate.agent,  # as recorded (an agent token's name)
                "route": clearance.decision.route.value if clearance.decision is not None else None,
                "reason": clearance.reason,
                "args": clearance.args,
                "request_id": req.id if req is not None else None,
                "escalation_id": clearance.escalation.id if clearance.escalation is not None else None,
                "request": req,
            }
        )
    else:
        ref = f"request {req.id} " if req is not None else ""
        line = f"{ref}{clearance.status}: {sanitise(clearance.reason)}"
        print(
            f"hitl: {line}" if clearance.status == "error" else line,
            file=sys.stderr if clearance.status == "error" else sys.stdout,
        )
        if edited:
            print("run with the reviewer's edited arguments:")
            print(json.dumps(clearance.args, ensure_ascii=False))
        if clearance.log_review:
            print(
                f"log the result for review: hitl review log {sanitise(args.tool, oneline=True)} --args JSON "
                "--result TEXT",
                file=sys.stderr,
            )
    if edited and not args.accept_edits:
        where = '"args" above' if args.json else "the ones above"
        print(
            f"hitl: exit {EXIT_EDITED}: approved with edited arguments; run with {where}, not yours "
            "(--accept-edits exits 0 for a script that does)",
            file=sys.stderr,
        )
        return EXIT_EDITED
    return STATUS_EXIT[clearance.status]


class _WaitingLine:
    """``request --wait``: one line on stderr once the request waits, so a person watching a
    script or a CI log knows which request to decide (stdout stays the result alone)."""

    async def send(self, note: Any) -> None:
        req = note.request
        if req is None:
            return
        until = f" until {req.expires_at:%H:%M:%S} UTC" if req.expires_at is not None else ""
        print(
            f"hitl: request {req.id} ({sanitise(req.tool, oneline=True, limit=80)}) waits for a human{until}: "
            + "  |  ".join(note.commands),
            file=sys.stderr,
            flush=True,
        )


@single_shot()
async def cmd_cancel(args: argparse.Namespace, ctx: Any) -> int:
    r = await ctx.backend().cancel_request(args.id, ctx.reviewer, args.reason)
    if args.json:
        emit_json(r)
    else:
        print(f"request {r.id} {r.status.value}")
    return 0
