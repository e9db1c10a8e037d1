"""The review digest: what agents did on their own in a window, for a human's morning read.

Counts per tool and agent, the items nobody has reviewed yet, the flagged ones, and the approval
requests decided in the window. Arguments are redacted and result text is scrubbed of secrets in
every format; the text format is also sanitised for terminals and the Markdown format escaped.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InvalidInput
from ..models import TERMINAL_STATUSES, ReviewItem, Verdict
from ..text import sanitise
from .redact import redact, scrub_text

if TYPE_CHECKING:
    from ..backend.base import Backend

PAGE = 500
MAX_SCAN = 50_000  # rows read per section before the digest says it is incomplete
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``24h``, ``90m``, ``7d``, ``2w`` ago, or an ISO date/time (UTC when no zone is given)."""
    now = now or datetime.now(UTC)
    m = _DURATION.match(text)
    if m:
        return now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"--since {text!r}: use a duration like 24h, 90m, 7d or an ISO date like 2026-01-15"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# Schemas build on first use (``defer_build``), not at import: the Claude Code hook imports the gate,
# and so this module, once per tool call.
_DEFERRED = ConfigDict(defer_build=True)


class DigestItem(BaseModel):
    model_config = _DEFERRED

    id: int
    agent: str
    tool: str
    args: dict[str, Any]
    result: str
    result_length: int
    truncated: bool
    created_at: datetime
    verdict: Verdict | None = None
    reviewer: str | None = None
    note: str | None = None

    @classmethod
    def of(cls, item: ReviewItem) -> DigestItem:
        return cls(
            id=item.id,
            agent=item.agent,
            tool=item.tool,
            args=redact(item.args),
            result=scrub_text(item.result),
            result_length=item.result_length,
            truncated=item.truncated,
            created_at=item.created_at,
            verdict=item.verdict,
            reviewer=item.reviewer,
            note=item.note,
        )


class DecidedRequest(BaseModel):
    model_config = _DEFERRED

    id: int
    agent: str
    tool: str
    status: str
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None


class Digest(BaseModel):
    model_config = _DEFERRED

    since: datetime
    until: datetime
    actions: int = 0
    by_tool: dict[str, int] = Field(default_factory=dict)
    by_agent: dict[str, int] = Field(default_factory=dict)
    unreviewed: list[DigestItem] = Field(default_factory=list)
    flagged: list[DigestItem] = Field(default_factory=list)
    ok: int = 0
    older_unreviewed: int = 0  # still waiting from before the window
    requests: list[DecidedRequest] = Field(default_factory=list)
    request_counts: dict[str, int] = Field(default_factory=dict)
    complete: bool = True  # False when a section hit the scan cap


async def build_digest(backend: Backend, since: datetime, until: datetime | None = None) -> Digest:
    until = until or datetime.now(UTC)
    digest = Digest(since=since, until=until)
    tools: Counter[str] = Counter()
    agents: Counter[str] = Counter()
    offset = 0
    while True:
        page = await backend.list_reviews(None, since=since, offset=offset, limit=PAGE)
        for item in page.items:
            if item.created_at > until:
                continue
            digest.actions += 1
            tools[item.tool] += 1
            agents[item.agent] += 1
            if not item.reviewed:
                digest.unreviewed.append(DigestItem.of(item))
            elif item.verdict is Verdict.flagged:
                digest.flagged.append(DigestItem.of(item))
            else:
                digest.ok += 1
        offset += len(page.items)
        if len(page.items) < PAGE or offset >= page.total:
            break
        if offset >= MAX_SCAN:
            digest.complete = False
            break
    digest.by_tool = dict(tools.most_common())
    digest.by_agent = dict(agents.most_common())
    digest.unreviewed.sort(key=lambda i: i.id)
    digest.flagged.sort(key=lambda i: i.id)
    pending_total = (await backend.list_reviews(False, limit=1)).total
    digest.older_unreviewed = max(0, pending_total - len(digest.unreviewed))

    statuses: Counter[str] = Counter()
    for status in sorted(TERMINAL_STATUSES):
        offset = 0
        while True:
            page = await backend.list_requests(status, offset=offset, limit=PAGE)
            for r in page.items:
                if r.decided_at is not None and since <= r.decided_at <= until:
                    statuses[r.status.value] += 1
                    digest.requests.append(
                        DecidedRequest(
                            id=r.id,
                            agent=r.agent,
                            tool=r.tool,
                            status=r.status.value,
                            decided_by=r.decided_by,
                            decided_at=r.decided_at,
                            reason=r.decision_reason,
                        )
                    )
            offset += len(page.items)
            if len(page.items) < PAGE or offset >= page.total:
                break
            if offset >= MAX_SCAN:
                digest.complete = False
                break
    digest.requests.sort(key=lambda r: r.id)
    digest.request_counts = dict(sorted(statuses.items()))
    return digest


# --------------------------------------------------------------------------- rendering


def _t(text: object, limit: int = 120) -> str:
    return sanitise("" if text is None else text, oneline=True, limit=limit)


def _args_line(args: dict[str, Any], limit: int = 120) -> str:
    return _t(json.dumps(args, ensure_ascii=False, sort_keys=True, default=str), limit)


def _window(d: Digest) -> str:
    return f"{d.since:%Y-%m-%d %H:%M} to {d.until:%Y-%m-%d %H:%M} UTC"


def render_text(d: Digest) -> str:
    out = [f"Agent activity digest, {_window(d)}", ""]
    out.append(
        f"{d.actions} action(s) logged for review: {len(d.unreviewed)} unreviewed, {len(d.flagged)} flagged, {d.ok} ok"
    )
    if d.older_unreviewed:
        out.append(f"{d.older_unreviewed} older item(s) are still unreviewed (hitl review ls --unreviewed)")
    if d.by_tool:
        out += ["", "By tool:"] + [f"  {_t(k, 60):<30} {v}" for k, v in d.by_tool.items()]
        out += ["", "By agent:"] + [f"  {_t(k, 60):<30} {v}" for k, v in d.by_agent.items()]
    for title, items in (("Flagged", d.flagged), ("Unreviewed", d.unreviewed)):
        if not items:
            continue
        out += ["", f"{title}:"]
        for i in items:
            more = f" (of {i.result_length} chars)" if i.truncated else ""
            out.append(f"  #{i.id} {i.created_at:%m-%d %H:%M} {_t(i.agent, 40)} {_t(i.tool, 40)} {_args_line(i.args)}")
            out.append(f"      result{more}: {_t(i.result)}")
            if i.note:
                out.append(f"      note by {_t(i.reviewer, 40)}: {_t(i.note)}")
    if d.requests:
        counts = ", ".join(f"{v} {k}" for k, v in d.request_counts.items())
        out += ["", f"Approval requests decided: {counts}"]
        for r in d.requests:
            by = f" by {_t(r.decided_by, 40)}" if r.decided_by else ""
            why = f": {_t(r.reason, 80)}" if r.reason else ""
            out.append(f"  #{r.id} {_t(r.tool, 40)} ({_t(r.agent, 40)}) {r.status}{by}{why}")
    if not d.complete:
        out += ["", "(incomplete: too many rows in the window; narrow --since)"]
    return "\n".join(out) + "\n"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def _md(text: object, limit: int = 120) -> str:
    return _MD_SPECIAL.sub(r"\\\1", _t(text, limit))


def _md_code(text: str) -> str:
    body = _t(text).replace("`", "\u02cb").replace("|", "\\|")
    return f"`{body}`"


def render_markdown(d: Digest) -> str:
    out = ["# Agent activity digest", "", f"_{_window(d)}_", ""]
    out.append(
        f"**{d.actions}** action(s) logged for review: **{len(d.unreviewed)}** unreviewed, "
        f"**{len(d.flagged)}** flagged, {d.ok} ok."
    )
    if d.older_unreviewed:
        out.append(f"\n{d.older_unreviewed} older item(s) are still unreviewed.")
    if d.by_tool:
        out += ["", "## By tool", "", "| Tool | Actions |", "|---|---:|"]
        out += [f"| {_md(k, 60)} | {v} |" for k, v in d.by_tool.items()]
        out += ["", "## By agent", "", "| Agent | Actions |", "|---|---:|"]
        out += [f"| {_md(k, 60)} | {v} |" for k, v in d.by_agent.items()]
    for title, items in (("Flagged", d.flagged), ("Unreviewed", d.unreviewed)):
        if not items:
            continue
        out += ["", f"## {title}", "", "| # | When | Agent | Tool | Args | Result |", "|---:|---|---|---|---|---|"]
        for i in items:
            result = _md_code(i.result) + (f" ({i.result_length} chars)" if i.truncated else "")
            out.append(
                f"| {i.id} | {i.created_at:%Y-%m-%d %H:%M} | {_md(i.agent, 40)} | {_md(i.tool, 40)} "
                f"| {_md_code(json.dumps(i.args, ensure_ascii=False, sort_keys=True, default=str))} | {result} |"
            )
    if d.requests:
        out += ["", "## Approval requests decided", "", "| # | Tool | Agent | Status | By | Reason |"]
        out.append("|---:|---|---|---|---|---|")
        for r in d.requests:
            out.append(
                f"| {r.id} | {_md(r.tool, 40)} | {_md(r.agent, 40)} | {r.status} | {_md(r.decided_by or '', 40)} "
                f"| {_md(r.reason or '', 80)} |"
            )
    if not d.complete:
        out += ["", "_Incomplete: too many rows in the window._"]
    return "\n".join(out) + "\n"


def render_json(d: Digest) -> str:
    return d.model_dump_json(indent=2) + "\n"


def render(d: Digest, fmt: str) -> str:
    if fmt == "json":
        return render_json(d)
    if fmt in ("md", "markdown"):
        return render_markdown(d)
    return render_text(d)
