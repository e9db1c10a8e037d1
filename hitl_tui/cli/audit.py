"""``hitl audit verify`` and ``hitl audit export``: the hash-chained event log."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import EXIT_DENIED, add_json_flag
from .output import emit_json


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="verify or export the audit log (the event log)")
    asub = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    v = asub.add_parser("verify", help="check the hash chain: exit 1 if any event was edited, deleted or reordered")
    add_json_flag(v)
    v.set_defaults(func=cmd_verify)
    e = asub.add_parser("export", help="print every event (who, when, what, why) as JSON lines")
    e.add_argument("--format", choices=["jsonl"], default="jsonl")
    e.add_argument("--after", type=int, default=0, metavar="SEQ", help="only events after this sequence number")
    e.set_defaults(func=cmd_export)


async def cmd_verify(args: argparse.Namespace, ctx: Any) -> int:
    report = await ctx.backend().verify_audit()
    if args.json:
        emit_json(report.to_dict())
    elif report.ok:
        print(f"audit chain OK: {report.checked} events verified")
    else:
        print(f"audit chain BROKEN: {len(report.problems)} problem(s) in {report.checked} events")
        for seq, problem in report.problems:
            print(f"  event {seq}: {problem}")
    return 0 if report.ok else EXIT_DENIED


async def cmd_export(args: argparse.Namespace, ctx: Any) -> int:
    backend = ctx.backend()
    seq = args.after
    while True:
        events = await backend.events_after(seq, 1000)
        for ev in events:
            sys.stdout.write(json.dumps(ev.model_dump(mode="json"), ensure_ascii=False) + "\n")
            seq = ev.seq
        if len(events) < 1000:
            return 0
