"""Confidence plans: parsing the seed's text format, and routing at the threshold boundaries."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hitl_tui.models import DecisionIn, Route
from hitl_tui.sdk import Gate, NotApproved, PlannedAction, parse_plan
from hitl_tui.sdk.plan import parse_confidence
from tests.test_sdk_support import load_preset, open_local

PLAN_TEXT = """\
Here is what I would do:

| ACTION | CONFIDENCE | REASON |
|--------|-----------:|--------|
| format_code {"path": "src/app.py"} | 97% | style only |
1. create_github_issue Track the flaky login test | 72 | usually fine
- **deploy** | 40/100 | not sure the migration ran | really
read_logs | lots | I guess
deploy {"env": | 90 | broken json
```
"""


def test_parse_plan_reads_tables_bullets_and_reports_the_rest() -> None:
    plan = parse_plan(PLAN_TEXT)
    got = [(a.tool, a.args, a.confidence, a.reason, a.summary, a.line) for a in plan.actions]
    assert got == [
        ("format_code", {"path": "src/app.py"}, 97, "style only", None, 5),
        ("create_github_issue", {}, 72, "usually fine", "Track the flaky login test", 6),
        ("deploy", {}, 40, "not sure the migration ran | really", None, 7),
    ]
    problems = {p.line: p.why for p in plan.problems}
    assert set(problems) == {1, 8, 9}
    assert "not an ACTION" in problems[1]
    assert "lots" in problems[8]
    assert "not valid JSON" in problems[9]


@pytest.mark.parametrize(
    ("text", "value"), [("85", 85), ("85%", 85), (" 85 / 100 ", 85), ("0", 0), ("100", 100), ("89.6", 90)]
)
def test_confidence_formats(text: str, value: int) -> None:
    assert parse_confidence(text) == value


@pytest.mark.parametrize("text", ["101", "-5", "high", "", "85 percent"])
def test_bad_confidence_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_confidence(text)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def tools(self) -> dict[str, Any]:
        def make(name: str) -> Any:
            def fn(**args: Any) -> str:
                self.calls.append((name, args))
                return f"{name} ok"

            return fn

        return {n: make(n) for n in ("create_github_issue", "format_code", "deploy")}


async def _approve_everything(reviewer_backend: Any, approved: list[int]) -> None:
    async for ev in reviewer_backend.subscribe(after_seq=0):
        if ev.kind == "request.created":
            rid = int(ev.payload["id"])
            await reviewer_backend.decide(rid, DecisionIn(decision="approve"), "rita")
            approved.append(rid)


async def test_plan_routes_at_the_threshold_boundaries(tmp_path: Path) -> None:
    """59 escalates, 60 and 89 wait for approval, 90 runs on its own (confidence-routed tool)."""
    path = tmp_path / "plan.db"
    admin = open_local(path, "admin")
    await load_preset(admin)
    reviewer = open_local(path, "rita")
    gate = Gate(open_local(path, "planner"), "planner")
    approved: list[int] = []
    watcher = asyncio.create_task(_approve_everything(reviewer, approved))
    rec = Recorder()
    try:
        steps = [("create_github_issue", {"title": f"c{c}"}, c, f"confidence {c}") for c in (59, 60, 89, 90)]
        report = await gate.plan(steps, rec.tools())
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    routes = [(s.action.confidence, s.route, s.status) for s in report.steps]
    assert routes == [
        (59, Route.escalate, "escalated"),
        (60, Route.approval, "approved"),
        (89, Route.approval, "approved"),
        (90, Route.autonomous, "autonomous"),
    ]
    assert [c[1]["title"] for c in rec.calls] == ["c60", "c89", "c90"]
    assert len(approved) == 2
    escalated = report.steps[0].refusal
    assert isinstance(escalated, NotApproved) and escalated.escalation_id is not None
    esc = await admin.get_escalation(escalated.escalation_id)
    assert "c59" in (esc.context or "")
    requests = (await admin.list_requests(None)).items
    assert sorted(r.confidence for r in requests) == [60, 89]
    assert report.to_dict()["steps"][0]["status"] == "escalated"
    for b in (admin, reviewer, gate.backend):
        await b.close()


async def test_plan_text_unknown_tools_and_stop_on_refusal(tmp_path: Path) -> None:
    admin = open_local(tmp_path / "p.db", "admin")
    await load_preset(admin)
    gate = Gate(admin, "planner")
    rec = Recorder()
    text = "read_logs | 99 | look first\nformat_code | 95 | tidy\ndeploy | 30 | ship it\nformat_code | 99 | again"
    report = await gate.plan(text, rec.tools(), stop_on_refusal=True)
    assert [s.status for s in report.steps] == ["blocked", "skipped", "skipped", "skipped"]
    assert "no tool named 'read_logs'" in report.steps[0].refusal.reason
    assert rec.calls == []

    report = await gate.plan(
        [PlannedAction(tool="format_code", args={"path": "a"}, confidence=95), {"tool": "deploy", "confidence": 20}],
        lambda tool, args: f"{tool}:{args}",
    )
    assert [(s.status, s.result) for s in report.steps] == [
        ("autonomous", "format_code:{'path': 'a'}"),
        ("escalated", None),
    ]
    assert [s.action.tool for s in report.ran] == ["format_code"]
    await admin.close()


def test_sync_gate_plan_runs_tools_in_the_callers_thread_with_the_same_routing(tmp_path: Path) -> None:
    import threading

    from hitl_tui.sdk import SyncGate

    path = tmp_path / "sync-plan.db"

    async def seed() -> None:
        admin = open_local(path, "admin")
        await load_preset(admin)
        await admin.close()

    asyncio.run(seed())
    threads: list[str] = []
    rec = Recorder()
    tools = rec.tools()
    tools["format_code"] = lambda **args: threads.append(threading.current_thread().name) or "formatted"
    with SyncGate.connect("planner", store=path, notifiers=()) as gate:
        text = "read_logs | 99 | look first\nformat_code | 95 | tidy\ndeploy | 30 | ship it\nformat_code | 99 | again"
        report = gate.plan(text, tools)
        assert [s.status for s in report.steps] == ["blocked", "autonomous", "escalated", "autonomous"]
        assert threads == [threading.current_thread().name] * 2
        assert report.steps[2].refusal is not None and report.steps[2].refusal.escalation_id is not None
        stopped = gate.plan(text, tools, stop_on_refusal=True)
        assert [s.status for s in stopped.steps] == ["blocked", "skipped", "skipped", "skipped"]
        by_name = gate.plan([("format_code", {"path": "a"}, 95, "tidy")], lambda tool, args: f"{tool}:{args}")
        assert [(s.status, s.result) for s in by_name.steps] == [("autonomous", "format_code:{'path': 'a'}")]
    assert rec.calls == []  # deploy escalated, never ran
