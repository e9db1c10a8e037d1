"""Adapters between backend models and what the console shows.

Every agent-provided string passes through :func:`hitl_tui.text.sanitise` here, and the results
are rendered as literal text (``Content`` / Rich segments), never as markup. Widgets take cells
and ``Content`` from these functions and never format a model themselves.
"""

from __future__ import annotations

import difflib
import json
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from textual.content import Content

from ..models import (
    ApprovalRequest,
    Capability,
    Escalation,
    EscalationStatus,
    MessageRole,
    RequestStatus,
    ReviewItem,
    Risk,
    Stage,
    Verdict,
)
from ..text import _UNSAFE, sanitise

if TYPE_CHECKING:
    from .evidence import Evidence

#: a table cell: literal text and an optional component-class name (``"vt--risk-high"``) for its style
Cell = tuple[str, str | None]


def one_line(value: object, limit: int | None = None) -> str:
    """Agent text for a single line: control characters escaped, newlines folded to ``↵``."""
    return sanitise("" if value is None else value, oneline=True, limit=limit)


def block(value: object) -> str:
    """Agent text for a multi-line block: control characters escaped, newlines kept."""
    return sanitise("" if value is None else value)


def literal(value: object, style: str = "") -> Content:
    """Sanitised agent text as literal ``Content`` (markup in it stays text)."""
    text = block(value)
    return Content.styled(text, style) if style else Content(text)


# --------------------------------------------------------------------------- time


def short_duration(seconds: float) -> str:
    """``45s``, ``3m``, ``2h``, ``4d``: whole units, for narrow columns."""
    secs = int(abs(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def countdown(seconds: float) -> str:
    """``4m12s``, ``1h05m``, ``59s``: precise enough to watch a deadline approach."""
    secs = max(0, int(seconds))
    if secs >= 86400:
        return f"{secs // 86400}d{(secs % 86400) // 3600:02d}h"
    if secs >= 3600:
        return f"{secs // 3600}h{(secs % 3600) // 60:02d}m"
    if secs >= 60:
        return f"{secs // 60}m{secs % 60:02d}s"
    return f"{secs}s"


def age(dt: datetime | None, now: datetime) -> str:
    return "-" if dt is None else short_duration((now - dt).total_seconds())


def clock_time(dt: datetime | None, now: datetime) -> str:
    """Wall time in the zone of ``now`` (the console's clock): ``09:31:05``, with the date when not today."""
    if dt is None:
        return "-"
    tz = now.tzinfo
    local = dt.astimezone(tz) if tz is not None else dt
    today = now.astimezone(tz) if tz is not None else now
    if local.date() == today.date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


_ISO_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")


def local_times(text: str, now: datetime) -> str:
    """Our own messages (a conflict's "decided at 2026-11-25T17:52:03+00:00") in the console's
    clock format, as everything else on screen: ``17:52:03``, with the date when not today."""

    def local(m: re.Match[str]) -> str:
        try:
            dt = datetime.fromisoformat(m.group().replace("Z", "+00:00"))
        except ValueError:
            return m.group()
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=now.tzinfo)
        return clock_time(dt, now)

    return _ISO_TIME.sub(local, text)


def expiry_cell(req: ApprovalRequest, now: datetime) -> Cell:
    if req.status is not RequestStatus.pending:
        return (req.status.value, "vt--dim")
    if req.expires_at is None:
        return ("no limit", "vt--dim")
    left = (req.expires_at - now).total_seconds()
    if left <= 0:
        return ("due", "vt--err")
    return (countdown(left), "vt--err" if left < 60 else "vt--warn" if left < 300 else None)


# --------------------------------------------------------------------------- JSON


def _json_escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def safe_json(obj: Any) -> str:
    """Pretty JSON that is safe on a terminal and still valid, equivalent JSON.

    ``json.dumps`` escapes C0 controls in strings; C1 controls, bidi overrides, invisible
    characters and lone surrogates are escaped here as ``\\uXXXX`` (they can only occur inside
    strings), so the text parses back to exactly the same value.
    """
    text = json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False)
    return _UNSAFE.sub(_json_escape, text)


def compact_json(obj: Any, limit: int | None = None) -> str:
    return one_line(json.dumps(obj, ensure_ascii=False, separators=(", ", ": ")), limit)


def json_content(obj: Any) -> Content:
    """Syntax-highlighted, pretty-printed JSON, safe to render."""
    from textual.highlight import highlight

    return highlight(safe_json(obj), language="json")


def changed_paths(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Dotted paths whose values differ: ``["env", "replicas", "tags[1]"]``."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for key in list(before) + [k for k in after if k not in before]:
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in before or key not in after:
                out.append(path)
            else:
                out.extend(changed_paths(before[key], after[key], path))
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        out = []
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            out.extend(changed_paths(b, a, f"{prefix}[{i}]"))
        return out
    return [] if before == after else [prefix or "(arguments)"]


def args_diff(before: dict[str, Any], after: dict[str, Any]) -> Content:
    """A coloured unified diff of two argument objects, safe to render."""
    lines = difflib.unified_diff(
        safe_json(before).splitlines(), safe_json(after).splitlines(), "proposed", "edited", lineterm="", n=2
    )
    parts: list[Content] = []
    for line in lines:
        style = ""
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "$text-success"
        elif line.startswith("-"):
            style = "$text-error"
        elif line.startswith("@@"):
            style = "$text-accent"
        parts.append(Content.styled(line, style) if style else Content(line))
    return Content("\n").join(parts) if parts else Content("(no change)")


# --------------------------------------------------------------------------- requests


RISK_CLASS = {
    Risk.low: "vt--risk-low",
    Risk.medium: "vt--risk-medium",
    Risk.high: "vt--risk-high",
    Risk.critical: "vt--risk-critical",
}


def quorum_text(req: ApprovalRequest) -> str:
    return f"{req.approval_count} of {req.required_approvals} approvals"


def request_summary(req: ApprovalRequest, limit: int | None = None) -> str:
    return one_line(req.summary, limit) if req.summary else compact_json(req.args, limit)


def request_cells(req: ApprovalRequest, now: datetime) -> dict[str, Cell]:
    # VOTES holds votes only (a decided quorum keeps its count); the outcome reads whole under EXPIRES
    status: Cell = ("", None)
    if req.required_approvals > 1:
        votes = f"{req.approval_count}/{req.required_approvals}"
        status = (votes, "vt--warn") if req.status is RequestStatus.pending else (votes, "vt--dim")
    return {
        "id": (str(req.id), "vt--dim"),
        "risk": (req.risk.value + ("!" if req.irreversible else ""), RISK_CLASS[req.risk]),
        "agent": (one_line(req.agent, 40), None),
        "tool": (one_line(req.tool, 60), "vt--strong"),
        "summary": (request_summary(req, 300), None),
        "conf": ("-" if req.confidence is None else f"{req.confidence}%", None),
        "age": (age(req.created_at, now), "vt--dim"),
        "expires": expiry_cell(req, now),
        "quorum": status,
    }


def decided_banner(req: ApprovalRequest, now: datetime, reviewer: str) -> Content | None:
    """The line shown when a request is no longer pending (decided by someone, expired...)."""
    if req.status is RequestStatus.pending:
        return None
    who = req.decided_by or ("the deadline" if req.status is RequestStatus.expired else "someone")
    who = f"you ({one_line(reviewer, 40)})" if req.decided_by == reviewer else one_line(who, 40)
    when = clock_time(req.decided_at, now)
    style = "$text-success" if req.status is RequestStatus.approved else "$text-error"
    text = f"{req.status.value.upper()} by {who} at {when}"
    if req.status is RequestStatus.expired:
        text = f"EXPIRED at {when}: no decision before the deadline"
    if req.decision_reason and req.status is not RequestStatus.expired:
        text += f": {one_line(req.decision_reason, 200)}"
    return Content.styled(text, f"bold {style}")


# --------------------------------------------------------------------------- escalations


ESCALATION_CLASS = {
    EscalationStatus.open: "vt--warn",
    EscalationStatus.answered: "vt--ok",
    EscalationStatus.taken_over: "vt--risk-high",
    EscalationStatus.resolved: "vt--dim",
}


def escalation_cells(esc: Escalation, now: datetime, reviewer: str | None = None) -> dict[str, Cell]:
    last = esc.messages[-1] if esc.messages else None
    who = ""
    if last is not None and last.role is MessageRole.human:  # the agent's own words need no name
        who = "you: " if last.author == reviewer else f"{one_line(last.author, 40)}: "
    preview = one_line(last.text if last else esc.message, 200)
    return {
        "id": (str(esc.id), "vt--dim"),
        "status": (esc.status.value.replace("_", " "), ESCALATION_CLASS[esc.status]),
        "agent": (one_line(esc.agent, 40), "vt--strong"),
        "last": (who + preview, None),
        "msgs": (str(len(esc.messages)), "vt--dim"),
        "age": (age(esc.updated_at, now), "vt--dim"),
    }


# --------------------------------------------------------------------------- review


def review_cells(item: ReviewItem, now: datetime) -> dict[str, Cell]:
    if not item.reviewed:
        mark: Cell = ("unreviewed", "vt--warn")  # the CLI's word (hitl review ls --unreviewed)
    elif item.verdict is Verdict.flagged:
        mark = ("flagged", "vt--err")
    else:
        mark = ("ok", "vt--ok")
    return {
        "id": (str(item.id), "vt--dim"),
        "mark": mark,
        "agent": (one_line(item.agent, 40), None),
        "tool": (one_line(item.tool, 60), "vt--strong"),
        "result": (one_line(item.result, 300) or compact_json(item.args, 300), None),
        "age": (age(item.created_at, now), "vt--dim"),
    }


# --------------------------------------------------------------------------- capabilities


STAGE_CLASS = {Stage.disabled: "vt--err", Stage.approval: "vt--warn", Stage.autonomous: "vt--ok"}


#: a capability's flags: (attribute, the FLAGS column's word, the detail's words). The short words
#: share no prefix ("irrev,rev" read as irreversible plus reversible; rev meant review-after).
FLAG_WORDS = (
    ("always_approval", "always", "always needs approval"),
    ("irreversible", "no-undo", "irreversible"),
    ("confidence_routed", "by-conf", "routed by confidence"),
    ("review_after", "review", "reviewed after it runs"),
)
FLAGS_LEGEND = "FLAGS: " + " · ".join(f"{short} {long}" for _, short, long in FLAG_WORDS)


def capability_flags(cap: Capability, *, long: bool = False) -> str:
    words = [w_long if long else w_short for attr, w_short, w_long in FLAG_WORDS if getattr(cap, attr)]
    return (", " if long else ",").join(words)


def _duration_or_dash(seconds: float | None) -> str:
    return "-" if seconds is None else short_duration(seconds)


def capability_cells(cap: Capability, evidence: Evidence | None) -> dict[str, Cell]:
    """One row of the capability list; the record columns are ``…`` until the log is folded."""
    th = cap.thresholds
    rec = None if evidence is None else evidence.record
    marker = "" if evidence is None else evidence.marker
    return {
        "tool": (one_line(cap.tool, 60) + (f"@{one_line(cap.agent, 30)}" if cap.agent else ""), "vt--strong"),
        "stage": (cap.stage.value, STAGE_CLASS[cap.stage]),
        "suggest": (marker, "vt--ok" if marker == "▲" else "vt--err"),
        "risk": (cap.risk.value, RISK_CLASS[cap.risk]),
        "flags": (capability_flags(cap), "vt--dim"),
        "thresholds": ("-" if th is None else f"{th.autonomous}/{th.approval}", None),
        "timeout": ("-" if cap.timeout_s is None else short_duration(cap.timeout_s), None),
        "approved": ("…" if rec is None else str(rec.approved), "vt--ok"),
        "denied": ("…" if rec is None else str(rec.denied), "vt--err"),
        "flagged": ("…" if rec is None else str(rec.reviews_flagged), "vt--warn"),
        "median": (_duration_or_dash(None if rec is None else rec.median_decision_s), None),
    }


def capability_key(cap: Capability) -> str:
    return cap.tool + (f"@{cap.agent}" if cap.agent else "")


def stage_history_lines(cap: Capability, now: datetime) -> list[Content]:
    out = []
    for ch in reversed(cap.history):
        frm = ch.from_stage.value if ch.from_stage else "(new)"
        forced = " FORCED" if ch.forced else ""
        line = Content.assemble(
            (clock_time(ch.at, now), "dim"),
            "  ",
            (f"{frm} → {ch.to_stage.value}{forced}", "bold"),
            "  by ",
            one_line(ch.actor, 40),
            (f": {one_line(ch.reason, 300)}" if ch.reason else ""),
        )
        out.append(line)
    return out


def timedelta_text(td: timedelta) -> str:
    return short_duration(td.total_seconds())
