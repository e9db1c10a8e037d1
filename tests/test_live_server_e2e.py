"""The SDK gate and the reviewer console against a real `hitl serve`, exactly as on the embedded store.

An agent (Gate over HttpBackend, agent token) files a call; a reviewer's console (HitlConsole over
HttpBackend, reviewer token) shows it live and approves it with a key press; the agent's tool runs
with the reviewer's decision. And the other way round: a denial reaches the agent as a refusal.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hitl_tui.config import Settings
from hitl_tui.console.app import HitlConsole
from hitl_tui.console.widgets.approvals import ApprovalsPane
from hitl_tui.models import Capability, DecisionIn, RequestStatus, Stage
from hitl_tui.sdk import Gate

from .server_utils import Team, team  # noqa: F401 - fixtures
from .server_utils import server as server


async def _wait_for(condition, pilot, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await pilot.pause(0.05)


async def test_gate_and_console_over_a_live_server(team: Team) -> None:  # noqa: F811
    admin = team.backend("root")
    agent_backend = team.backend("bot")
    reviewer_backend = team.backend("alice")
    ran: list[dict[str, Any]] = []

    async def deploy(**kwargs: Any) -> str:
        ran.append(kwargs)
        return "deployed"

    try:
        await admin.put_capability(Capability(tool="deploy", stage=Stage.approval), reason="test set-up")
        gate = Gate(agent_backend, agent="bot")
        agent = asyncio.create_task(gate.run("deploy", {"service": "api", "version": "1.2"}, deploy, timeout=60))

        app = HitlConsole(reviewer_backend, Settings(reviewer="alice"))
        async with app.run_test(size=(100, 30)) as pilot:
            pane = app.query_one(ApprovalsPane)
            # the request arrives through the server's event stream, without a key press
            await _wait_for(lambda: pane.table.row_count >= 1 and pane.table.cursor_item is not None, pilot)
            assert pane.table.cursor_item.tool == "deploy"
            await pilot.press("a")
            result = await asyncio.wait_for(agent, 30)
        assert result == "deployed"
        assert ran == [{"service": "api", "version": "1.2"}]
        page = await admin.list_requests(RequestStatus.approved)
        assert [(r.tool, r.decided_by) for r in page.items] == [("deploy", "alice")]

        # a denial from the reviewer reaches the agent as a structured refusal; the tool never runs
        second = asyncio.create_task(gate.run("deploy", {"service": "db"}, deploy, timeout=60))
        for _ in range(300):
            pending = await reviewer_backend.list_requests(RequestStatus.pending)
            if pending.items:
                break
            await asyncio.sleep(0.02)
        await reviewer_backend.decide(pending.items[0].id, DecisionIn(decision="deny", reason="freeze"))
        refusal = await asyncio.wait_for(second, 30)
        assert refusal.to_dict() == {
            "error": "Action not approved",
            "action": "deploy",
            "status": "denied",
            "reason": "denied by alice: freeze",
        }
        assert len(ran) == 1
    finally:
        for b in (admin, agent_backend, reviewer_backend):
            await b.close()


async def test_console_shows_a_dead_server_at_once_and_comes_back_live(team: Team) -> None:  # noqa: F811
    """A killed server shows as "disconnected" within seconds, not after the backend's own
    reconnect window (the console ran on as "live" for a minute while nothing could be sent);
    the restarted server brings it back live. The status line names the token, which is who the
    server records, not HITL_REVIEWER."""
    from hitl_tui.console.live import LinkState
    from hitl_tui.console.widgets.status_line import StatusLine

    backend = team.backend("alice", reconnect_for=600)
    try:
        app = HitlConsole(backend, Settings(reviewer="oncall"))
        async with app.run_test(size=(100, 30)) as pilot:
            await _wait_for(lambda: app.feed.link.state is LinkState.live, pilot)
            await _wait_for(lambda: app.reviewer == "alice", pilot)
            assert "you: alice" in str(app.query_one(StatusLine).render())
            team.server.kill()
            await _wait_for(lambda: app.feed.link.state is LinkState.disconnected, pilot, timeout=10)
            assert "disconnected" in str(app.query_one(StatusLine).render())
            await asyncio.to_thread(team.server.start)
            await _wait_for(lambda: app.feed.link.state is LinkState.live, pilot, timeout=30)
    finally:
        await backend.close()
