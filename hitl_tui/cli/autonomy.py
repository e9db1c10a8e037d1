"""Evidence-driven autonomy: ``hitl suggest`` (accept / dismiss) and ``hitl calibration``.

Both fold the whole event log once (the console keeps the fold and refreshes it incrementally).
``add_suggest_command(subparsers)`` builds the ``suggest`` group, so ``hitl stages suggest`` can be
the same command.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from ..errors import Conflict, InvalidInput
from ..text import sanitise
from . import add_json_flag
from .output import emit_json, print_table

__all__ = ["add_suggest_command", "register"]


def register(sub: Any) -> None:
    add_suggest_command(sub)
    p = sub.add_parser(
        "calibration",
        help="agent confidence against reviewers' decisions, and a suggested threshold pair",
        description=(
            "For requests that carried the agent's confidence: the share approved by reviewers per "
            "confidence band (expired requests counted apart), and the (approval, autonomous) threshold "
            "pair that would have kept the denial rate at or above the autonomous threshold under "
            "[autonomy] calibration_target; refused when the sample is smaller than calibration_min_sample."
        ),
    )
    p.add_argument("--tool", help="only this tool")
    p.add_argument("--agent", help="only this agent")
    p.add_argument("--by", choices=["tool", "agent"], help="one summary line per tool or per agent")
    _window_flags(p)
    p.add_argument("--ascii", action="store_true", help="draw the chart with # and . only")
    add_json_flag(p)
    p.set_defaults(func=cmd_calibration)


def add_suggest_command(sub: Any, name: str = "suggest") -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help="stage changes the evidence supports (promote to autonomous, demote on a flag)",
        description=(
            "Suggests approval -> autonomous for capabilities with at least [autonomy] min_approvals "
            "approvals in the window and no denial, edit or flagged review in it (never for always-approval "
            "capabilities; disabled -> approval is never suggested), and autonomous -> approval after a "
            "flagged after-the-fact review. Nothing changes until you accept."
        ),
    )
    _window_flags(p)
    p.add_argument("--all", action="store_true", help="include dismissed suggestions")
    p.add_argument("--explain", action="store_true", help="also say why each other capability is not suggested")
    add_json_flag(p)
    p.set_defaults(func=cmd_suggest)
    actions = p.add_subparsers(dest="suggest_action", metavar="ACTION")

    a = actions.add_parser("accept", help="apply a current suggestion (the evidence is recorded as the reason)")
    a.add_argument("tool")
    a.add_argument("--agent", help="the agent-scoped capability (default: the unscoped one)")
    a.add_argument("--reason", help="your reason, recorded after the evidence")
    a.add_argument("--window", type=int, metavar="DAYS", help="window in days (default: [autonomy] window_days)")
    add_json_flag(a)
    a.set_defaults(func=cmd_accept)

    d = actions.add_parser("dismiss", help="hide a current suggestion for a while (on this machine)")
    d.add_argument("tool")
    d.add_argument("--agent", help="the agent-scoped capability (default: the unscoped one)")
    d.add_argument("--days", type=float, default=7.0, help="how long to hide it (default 7)")
    d.add_argument("--window", type=int, metavar="DAYS", help="window in days (default: [autonomy] window_days)")
    add_json_flag(d)
    d.set_defaults(func=cmd_dismiss)
    return p


def _window_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--window", type=int, metavar="DAYS", help="window in days (default: [autonomy] window_days)")
    p.add_argument("--as-of", dest="as_of", metavar="DATE", help="compute as of this UTC date (default: today)")


def _as_of(args: argparse.Namespace) -> datetime:
    text = getattr(args, "as_of", None)
    if not text:
        return datetime.now(UTC)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--as-of {text!r} is not a date like 2026-01-31") from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _window(args: argparse.Namespace, ctx: Any) -> int:
    window = ctx.settings.autonomy.window_days if args.window is None else args.window
    if not 1 <= window <= 3650:
        raise InvalidInput("--window must be between 1 and 3650 days")
    return int(window)


async def _autonomy(ctx: Any) -> Any:
    from ..autonomy import Autonomy

    autonomy = Autonomy(ctx.backend(), ctx.settings)
    await autonomy.refresh()
    return autonomy


def _name(tool: str, agent: str | None) -> str:
    return sanitise(tool + (f"@{agent}" if agent else ""), oneline=True, limit=80)


# --------------------------------------------------------------------------- hitl suggest


async def cmd_suggest(args: argparse.Namespace, ctx: Any) -> int:
    now, window = _as_of(args), _window(args, ctx)
    autonomy = await _autonomy(ctx)
    found = autonomy.suggestions(now=now, window_days=window, include_dismissed=True)
    hidden = autonomy.dismissed(now=now)
    shown = [s for s in found if args.all or s.key not in hidden]
    if args.json:
        emit_json([
            {**s.model_dump(mode="json"),
             "dismissed_until": hidden[s.key].until.isoformat() if s.key in hidden else None}
            for s in shown
        ])
        return 0
    if shown:
        rows = []
        for s in shown:
            row = [s.target, f"{s.from_stage.value} -> {s.to_stage.value}", s.evidence]
            if args.all:
                row.append(f"{hidden[s.key].until:%Y-%m-%d}" if s.key in hidden else "")
            rows.append(row)
        headers = ["capability", "change", "evidence"] + (["dismissed until"] if args.all else [])
        print_table(headers, rows, max_width=120)
        print("\naccept: hitl suggest accept TOOL [--agent A] [--reason R]")
        print("dismiss: hitl suggest dismiss TOOL [--agent A] [--days N]")
    else:
        print(f"no suggestions ({len(autonomy.capabilities)} capabilities, {window}-day window)")
    n_hidden = sum(1 for s in found if s.key in hidden)
    if n_hidden and not args.all:
        print(f"({n_hidden} dismissed suggestion{'s' if n_hidden != 1 else ''} hidden; --all shows them)")
    if args.explain:
        suggested = {(s.tool, s.agent) for s in found}
        rows = []
        for cap in autonomy.capabilities:
            if (cap.tool, cap.agent) in suggested:
                continue
            record = autonomy.record(cap, now=now, window_days=window)
            why = autonomy.blockers(cap, now=now, window_days=window)
            rows.append([_name(cap.tool, cap.agent), cap.stage.value, "; ".join(why) or "-",
                         f"{record.approved}/{record.denied}/{record.edited}/{record.reviews_flagged}"])
        if rows:
            print()
            print_table(["capability", "stage", "not suggested because", "appr/den/edit/flag"], rows, max_width=120)
    return 0


async def _find(args: argparse.Namespace, ctx: Any) -> tuple[Any, Any]:
    autonomy = await _autonomy(ctx)
    window = _window(args, ctx)
    now = datetime.now(UTC)
    cap = await autonomy.backend.get_capability(args.tool, args.agent)  # NotFound names the capability
    found = autonomy.find(cap.tool, cap.agent, now=now, window_days=window)
    if found is None:
        why = autonomy.blockers(cap, now=now, window_days=window)
        detail = "; ".join(why) if why else "no flag since it became autonomous"
        raise Conflict(f"no current suggestion for {_name(cap.tool, cap.agent)}: {detail}", tool=cap.tool)
    return autonomy, found


async def cmd_accept(args: argparse.Namespace, ctx: Any) -> int:
    autonomy, found = await _find(args, ctx)
    cap = await autonomy.accept(found, actor=ctx.reviewer, reason=args.reason)
    if args.json:
        emit_json(cap)
        return 0
    reason = cap.history[-1].reason if cap.history else found.evidence
    print(f"{_name(cap.tool, cap.agent)}: {found.from_stage.value} -> {cap.stage.value}")
    print(f"  reason: {sanitise(reason or '', oneline=True)}")
    return 0


async def cmd_dismiss(args: argparse.Namespace, ctx: Any) -> int:
    autonomy, found = await _find(args, ctx)
    entry = autonomy.dismiss(found, days=args.days, by=ctx.reviewer)
    if args.json:
        emit_json(entry)
        return 0
    print(
        f"dismissed {_name(found.tool, found.agent)} {found.from_stage.value} -> "
        f"{found.to_stage.value} until {entry.until:%Y-%m-%d %H:%M} UTC"
    )
    return 0


# --------------------------------------------------------------------------- hitl calibration


def _share(row: Any) -> str:
    share = row.share_approved
    return "-" if share is None else f"{share * 100:.0f}% ({row.approved}/{row.decided})"


def _thresholds_line(t: Any) -> str:
    if not t.ok:
        return f"no threshold suggestion: {t.reason}"
    return f"suggested thresholds: approval >= {t.approval}, autonomous >= {t.autonomous}\n  {t.reason}"


async def cmd_calibration(args: argparse.Namespace, ctx: Any) -> int:
    now, window = _as_of(args), _window(args, ctx)
    autonomy = await _autonomy(ctx)
    if args.by:
        if args.by == "tool":
            names = [t for t in autonomy.records.tools() if args.tool is None or t == args.tool]
            tables = [autonomy.calibration(tool=t, agent=args.agent, now=now, window_days=window) for t in names]
        else:
            names = [a for a in autonomy.records.agents(args.tool) if args.agent is None or a == args.agent]
            tables = [autonomy.calibration(tool=args.tool, agent=a, now=now, window_days=window) for a in names]
        tables = [t for t in tables if t.approved + t.denied + t.expired]
        if args.json:
            emit_json(tables)
            return 0
        if not tables:
            print(f"no request carried a confidence in the {window}-day window")
            return 0
        rows = []
        for t in tables:
            th = t.thresholds
            rows.append([
                t.tool if args.by == "tool" else t.agent,
                *(_share(b) for b in t.bands),
                t.expired,
                f"{th.approval}/{th.autonomous}" if th.ok else "refused",
            ])
        print_table([args.by, "0-59", "60-89", "90-100", "expired", "thresholds"], rows)
        return 0
    table = autonomy.calibration(tool=args.tool, agent=args.agent, now=now, window_days=window)
    if args.json:
        emit_json({**table.model_dump(mode="json"), "chart": autonomy.chart(table, ascii=args.ascii)})
        return 0
    scope = f"{'tool ' + sanitise(args.tool, oneline=True) if args.tool else 'all tools'}, "
    scope += f"{'agent ' + sanitise(args.agent, oneline=True) if args.agent else 'all agents'}"
    print(f"confidence calibration: {scope}; {window} days ({table.since} to {table.until} UTC)")
    print_table(
        ["confidence", "approved", "denied", "expired", "share approved"],
        [[b.label, b.approved, b.denied, b.expired, _share(b)] for b in table.bands],
    )
    print()
    for line in autonomy.chart(table, ascii=args.ascii):
        print("  " + line)
    print()
    print(_thresholds_line(table.thresholds))
    return 0
