"""The demo: the deterministic fill, the simulated fleet reacting to real decisions, and `hitl demo`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hitl_tui.backend.local import LocalBackend
from hitl_tui.demo import REVIEWERS, FleetAction, run_fleet, seed_demo
from hitl_tui.errors import HitlError
from hitl_tui.models import (
    DecisionIn,
    EscalationStatus,
    EventKind,
    MessageRole,
    RequestStatus,
    Stage,
    Verdict,
)
from hitl_tui.presets import get_preset
from hitl_tui.store.sqlite import SQLiteStore

from .conftest import HITL, FakeClock

NOW = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
SEED_AGENTS = {"deploy-bot", "support-mailer", "migrator", "triage-bot", "janitor", "docs-writer"}


async def _snapshot(backend: LocalBackend) -> dict[str, Any]:
    return {
        "requests": [r.model_dump(mode="json") for r in (await backend.list_requests(None, limit=1000)).items],
        "escalations": [e.model_dump(mode="json") for e in (await backend.list_escalations(limit=1000)).items],
        "reviews": [r.model_dump(mode="json") for r in (await backend.list_reviews(limit=1000)).items],
        "capabilities": [c.model_dump(mode="json") for c in await backend.list_capabilities()],
        "events": [e.model_dump(mode="json") for e in await backend.events_after(0, 10_000)],
    }


async def _seeded(path: Path, clock: FakeClock) -> LocalBackend:
    backend = LocalBackend(SQLiteStore(path, clock=clock), actor="demo-test")
    await seed_demo(backend, NOW)
    return backend


async def test_seed_is_deterministic(tmp_path: Path) -> None:
    a = await _seeded(tmp_path / "a.db", FakeClock(NOW))
    b = await _seeded(tmp_path / "b.db", FakeClock(NOW))
    try:
        first, second = await _snapshot(a), await _snapshot(b)
        assert first["events"], "the seed wrote nothing"
        assert first == second  # rows and the hash-chained event log, byte for byte
    finally:
        await a.close()
        await b.close()


async def test_seed_fills_every_pane(tmp_path: Path) -> None:
    backend = await _seeded(tmp_path / "demo.db", FakeClock(NOW))
    try:
        # Approvals: several agents and tools, varied risk, a half-voted quorum, a long multi-line value.
        pending = (await backend.list_requests(RequestStatus.pending, limit=1000)).items
        assert len(pending) >= 8
        assert len({r.agent for r in pending}) >= 5
        assert {"deploy", "send_customer_email", "db_migration", "write_file", "create_github_issue",
                "delete_resource"} <= {r.tool for r in pending}
        assert len({r.risk for r in pending}) >= 3
        assert all(r.summary and r.policy_reason and r.confidence is not None for r in pending)
        assert all(r.expires_at is not None and r.expires_at > NOW for r in pending)
        quorum = [r for r in pending if r.required_approvals == 2]
        assert quorum and quorum[0].approval_count == 1
        assert any(isinstance(v, str) and v.count("\n") >= 20 for r in pending for v in r.args.values())
        assert {r.agent for r in pending} <= SEED_AGENTS

        # Decided history, by named reviewers, with reasons; one approval carries an edit.
        decided = {s: (await backend.list_requests(s)).items for s in RequestStatus}
        for status in (RequestStatus.approved, RequestStatus.denied):
            assert decided[status]
            assert all(r.decided_by in REVIEWERS and r.decision_reason for r in decided[status])
        assert decided[RequestStatus.expired]
        assert any(r.edited_args is not None and r.edited_args != r.args for r in decided[RequestStatus.approved])

        # Escalations: human replies, an agent answering back, one taken over, one still unanswered.
        escalations = (await backend.list_escalations()).items
        assert len(escalations) >= 3
        statuses = {e.status for e in escalations}
        assert {EscalationStatus.taken_over, EscalationStatus.answered, EscalationStatus.open} <= statuses
        assert sum(1 for e in escalations if e.last_human_message is not None) >= 3
        roles = [[m.role for m in e.messages] for e in escalations]
        assert [MessageRole.agent, MessageRole.human, MessageRole.agent] in roles

        # Review queue: unreviewed and reviewed items, OK and flagged with a note, linked to requests too.
        reviews = (await backend.list_reviews(limit=1000)).items
        assert len(reviews) >= 15
        assert {"format_code", "read_logs", "db_migration"} <= {r.tool for r in reviews}
        assert any(not r.reviewed for r in reviews)
        assert any(r.verdict is Verdict.ok for r in reviews)
        assert any(r.verdict is Verdict.flagged and r.note and r.reviewer in REVIEWERS for r in reviews)
        approved_ids = {r.id for r in decided[RequestStatus.approved]}
        assert approved_ids <= {r.request_id for r in reviews}
        assert all(not r.truncated for r in reviews)

        # Capabilities: the seed preset's table, with recorded stage changes and reasons.
        caps = {c.tool: c for c in await backend.list_capabilities()}
        preset = {c.tool: c for c in get_preset("seed").capabilities}
        assert {t: c.stage for t, c in caps.items()} == {t: c.stage for t, c in preset.items()}
        assert caps["delete_resource"].always_approval and caps["db_migration"].review_after
        changed = [c for c in caps.values() if len(c.history) >= 2]
        assert len(changed) >= 2
        assert all(c.history[-1].reason and c.history[-1].actor in REVIEWERS for c in changed)
        assert any(c.history[-1].to_stage is Stage.approval for c in changed)  # a demotion, too

        assert (await backend.verify_audit()).ok
    finally:
        await backend.close()


class Reviewer:
    """A human stand-in on its own backend: decides whatever the fleet files and answers escalations."""

    def __init__(self, backend: LocalBackend, fleet_agents: set[str]) -> None:
        self.backend = backend
        self.fleet_agents = fleet_agents
        self.approved: dict[int, dict[str, Any]] = {}  # request id -> the arguments that should run
        self.denied: set[int] = set()
        self.replied: set[int] = set()
        self._n = 0

    async def run(self) -> None:
        async for ev in self.backend.subscribe():
            try:
                if ev.kind is EventKind.request_created and ev.payload["agent"] in self.fleet_agents:
                    await self._decide(ev.payload)
                elif ev.kind is EventKind.escalation_opened and ev.payload["agent"] in self.fleet_agents:
                    esc_id = int(ev.subject.split(":")[1])
                    await self.backend.post_message(esc_id, "Drop it for today; retry tomorrow.", "alice")
                    self.replied.add(esc_id)
            except HitlError:
                pass  # e.g. the request expired first: the fleet copes, so does the reviewer

    async def _decide(self, payload: dict[str, Any]) -> None:
        self._n += 1
        rid, args = int(payload["id"]), payload["args"]
        if self._n % 3 == 0:
            await self.backend.decide(rid, DecisionIn(decision="deny", reason="not now"), "alice")
            self.denied.add(rid)
        elif self._n % 3 == 1:
            edited = {**args, "reviewed_by": "alice"}
            await self.backend.decide(rid, DecisionIn(decision="approve", edited_args=edited), "alice")
            self.approved[rid] = edited
        else:
            await self.backend.decide(rid, DecisionIn(decision="approve"), "alice")
            self.approved[rid] = args


async def _until(check: Callable[[], Any], what: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while not await check():
        if loop.time() > give_up:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_fleet_reacts_to_decisions_and_replies(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    fleet_backend = LocalBackend(SQLiteStore(path), actor="fleet")
    human_backend = LocalBackend(SQLiteStore(path), actor="alice")
    await seed_demo(fleet_backend)
    seeded_max = max(r.id for r in (await fleet_backend.list_requests(None, limit=1000)).items)
    fleet_agents = {"deploy-bot", "support-mailer", "migrator", "triage-bot", "janitor"}
    reviewer = Reviewer(human_backend, fleet_agents)
    reviewing = asyncio.create_task(reviewer.run())
    await asyncio.sleep(0.1)  # the reviewer's subscription is live before the fleet starts
    actions: list[FleetAction] = []
    stop = asyncio.Event()
    fleet = asyncio.create_task(run_fleet(fleet_backend, stop, agents=5, pace=0.05, seed=7, report=actions.append))
    try:
        async def ran_approved_with_edits() -> bool:
            reviews = (await human_backend.list_reviews(limit=1000)).items
            ran = {r.request_id: r for r in reviews if r.request_id in reviewer.approved}
            edited = [rid for rid in ran if "reviewed_by" in reviewer.approved[rid]]
            return len(ran) >= 3 and bool(edited)

        async def acknowledged_reply() -> bool:
            for esc_id in reviewer.replied:
                esc = await human_backend.get_escalation(esc_id)
                roles = [m.role for m in esc.messages]
                if MessageRole.human in roles and roles[-1] is MessageRole.agent:
                    return True
            return False

        await _until(ran_approved_with_edits, "the fleet to run approved requests and log them for review")
        await _until(acknowledged_reply, "an agent to acknowledge a human reply")
        stop.set()
        await asyncio.wait_for(fleet, 10)  # a bound, not a timing assertion: stop ends the fleet
        assert fleet.exception() is None
    finally:
        stop.set()
        reviewing.cancel()
        with contextlib.suppress(BaseException):
            await reviewing
        with contextlib.suppress(BaseException):
            await fleet

    try:
        reviews = (await human_backend.list_reviews(limit=10_000)).items
        by_request = {r.request_id: r for r in reviews if r.request_id is not None}
        for rid in reviewer.approved.keys() & by_request.keys():
            assert by_request[rid].args == reviewer.approved[rid]  # what ran is what the human approved
        assert not reviewer.denied & by_request.keys()  # a denied action never runs
        # After stop nothing of the fleet's is left waiting for a human: it was decided or withdrawn.
        pending = (await human_backend.list_requests(RequestStatus.pending, limit=1000)).items
        assert not [r for r in pending if r.id > seeded_max]
        cancelled = (await human_backend.list_requests(RequestStatus.cancelled, limit=1000)).items
        assert all(r.decision_reason == "the demo fleet stopped" for r in cancelled)
        # The log says what each agent did, as sanitised single lines.
        outcomes = " ".join(a.outcome for a in actions)
        assert "asked for approval" in outcomes and "approved by alice" in outcomes
        assert "acknowledged" in outcomes
        assert all("\n" not in a.line() for a in actions)
        assert (await human_backend.verify_audit()).ok
    finally:
        await fleet_backend.close()
        await human_backend.close()


async def test_fleet_survives_a_lost_store_and_still_stops(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "gone.db")
    backend = LocalBackend(store, actor="fleet")
    await seed_demo(backend)
    actions: list[FleetAction] = []
    stop = asyncio.Event()
    fleet = asyncio.create_task(run_fleet(backend, stop, agents=3, pace=0.02, seed=3, report=actions.append))
    try:
        await _until(_async(lambda: len(actions) >= 3), "the fleet to act")
        await store.close()  # every call now raises StoreUnavailable
        await _until(_async(lambda: any(a.outcome.startswith("error:") for a in actions)), "an error report")
        await asyncio.sleep(0.2)
        assert not fleet.done()  # agents back off and retry; the fleet does not crash
        stop.set()
        await asyncio.wait_for(fleet, 10)
        assert fleet.exception() is None
    finally:
        stop.set()
        with contextlib.suppress(BaseException):
            await fleet
        await backend.close()


def _async(fn: Callable[[], bool]) -> Callable[[], Any]:
    async def check() -> bool:
        return fn()

    return check


async def test_fleet_rejects_bad_arguments(tmp_path: Path) -> None:
    backend = LocalBackend(SQLiteStore(tmp_path / "x.db"))
    try:
        with pytest.raises(ValueError, match="at least one agent"):
            await run_fleet(backend, asyncio.Event(), agents=0)
        with pytest.raises(ValueError, match="pace"):
            await run_fleet(backend, asyncio.Event(), pace=0)
    finally:
        await backend.close()


# --------------------------------------------------------------------------- the command


def test_demo_help(cli_env: dict[str, str]) -> None:
    out = subprocess.run([*HITL, "demo", "--help"], env=cli_env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    for flag in ("--console", "--agents", "--pace", "--reset", "--duration"):
        assert flag in out.stdout
    assert "demo.db" in out.stdout and "HITL_STORE" in out.stdout


def test_demo_rejects_bad_flags(cli_env: dict[str, str]) -> None:
    for argv in (["--agents", "0"], ["--pace", "-1"], ["--pace", "fast"]):
        out = subprocess.run([*HITL, "demo", *argv], env=cli_env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 64, (argv, out.stderr)
    # --reset never deletes a store the user named
    out = subprocess.run([*HITL, "demo", "--reset"], env=cli_env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 64 and "--reset" in out.stderr
    assert not Path(cli_env["HITL_STORE"]).exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_demo_runs_until_ctrl_c_on_the_named_store(cli_env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*HITL, "demo", "--pace", "0.05", "--agents", "3"], env=cli_env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "asked for approval" in line:
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "filled with the demo story" in lines[0] and cli_env["HITL_STORE"] in lines[0]
    assert "fleet stopped" in rest
    # The fill and the fleet's work are in the named store; the fleet withdrew what was still pending.
    out = subprocess.run([*HITL, "ls", "--status", "all", "--json"], env=cli_env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    requests = json.loads(out.stdout)
    seeded = asyncio.run(_seeded_request_count(tmp_path / "reference.db"))
    assert len(requests) > seeded  # the fill, then the fleet's own requests
    assert not [r for r in requests if r["status"] == "pending" and r["id"] > seeded]
    assert any(r["status"] == "cancelled" and r["decision_reason"] == "the demo fleet stopped" for r in requests), [
        (r["id"], r["status"], r["decision_reason"]) for r in requests
    ]


async def _seeded_request_count(path: Path) -> int:
    backend = LocalBackend(SQLiteStore(path))
    try:
        await seed_demo(backend)
        return (await backend.list_requests(None, limit=1000)).total
    finally:
        await backend.close()


def test_demo_defaults_to_a_dedicated_store_and_resets_it(cli_env: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in cli_env.items() if k != "HITL_STORE"}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["HOME"] = str(tmp_path / "home")
    run = [*HITL, "demo", "--pace", "0.02", "--agents", "2", "--duration", "0.5"]
    first = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    demo_db = tmp_path / "data" / "hitl-tui" / "demo.db"
    assert demo_db.exists() and str(demo_db) in first.stdout
    assert not (tmp_path / "data" / "hitl-tui" / "hitl.db").exists()  # the real default store is untouched

    again = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert "already has data" in again.stdout

    reset = subprocess.run([*run, "--reset"], env=env, capture_output=True, text=True, timeout=60)
    assert reset.returncode == 0, reset.stderr
    assert "filled with the demo story" in reset.stdout


# --------------------------------------------------------------------------- --console


class ApprovingApp:
    """Stands in for the console (``run_async`` like a Textual app): on its own backend, it approves
    the first request the fleet files and returns once the agent has run it."""

    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend
        self.approved: int | None = None

    async def run_async(self) -> None:
        async for ev in self.backend.subscribe():
            if ev.kind is EventKind.request_created and self.approved is None:
                try:
                    await self.backend.decide(int(ev.payload["id"]), DecisionIn(decision="approve"), "alice")
                except HitlError:
                    continue
                self.approved = int(ev.payload["id"])
            elif ev.kind is EventKind.review_logged and ev.payload.get("request_id") == self.approved:
                return


async def test_console_mode_runs_the_fleet_beside_the_app_and_stops_it(tmp_path: Path) -> None:
    from hitl_tui.cli.demo_cmd import run_with_console

    path = tmp_path / "console.db"
    fleet_backend = LocalBackend(SQLiteStore(path), actor="fleet")
    console_backend = LocalBackend(SQLiteStore(path), actor="alice")
    try:
        await seed_demo(fleet_backend)
        seeded_max = (await fleet_backend.list_requests(None, limit=1)).total
        app = ApprovingApp(console_backend)
        await asyncio.wait_for(run_with_console(app, fleet_backend, agents=3, pace=0.05), 30)
        assert app.approved is not None and app.approved > seeded_max
        # The app ended, so did the fleet: nothing of its is left waiting.
        pending = (await console_backend.list_requests(RequestStatus.pending, limit=1000)).items
        assert not [r for r in pending if r.id > seeded_max]
    finally:
        await fleet_backend.close()
        await console_backend.close()


async def test_console_mode_with_the_real_console(tmp_path: Path) -> None:
    console_app = pytest.importorskip("hitl_tui.console.app", reason="the reviewer console is not built yet")
    from hitl_tui.cli.demo_cmd import run_with_console
    from hitl_tui.config import Settings

    path = tmp_path / "real-console.db"
    fleet_backend = LocalBackend(SQLiteStore(path), actor="fleet")
    console_backend = LocalBackend(SQLiteStore(path), actor="alice")
    try:
        await seed_demo(fleet_backend)
        seeded = (await fleet_backend.list_requests(None, limit=1)).total
        app = console_app.HitlConsole(console_backend, Settings(store=str(path)))

        async def drive(app: Any) -> None:
            async with app.run_test(size=(120, 40)) as pilot:
                async def fleet_filed() -> bool:
                    return (await console_backend.list_requests(None, limit=1)).total > seeded

                await _until(fleet_filed, "the fleet to file a request while the console runs")
                await pilot.pause()

        await asyncio.wait_for(run_with_console(app, fleet_backend, agents=3, pace=0.05, run=drive), 60)
    finally:
        await fleet_backend.close()
        await console_backend.close()
