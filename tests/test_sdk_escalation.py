"""Escalation flows: trigger detection, guidance from another process, follow-ups, take-over."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hitl_tui.config import DEFAULT_TRIGGERS, Settings
from hitl_tui.models import EscalationStatus, MessageRole
from hitl_tui.sdk import EscalationOutcome, Gate, find_trigger
from tests.test_sdk_support import hitl, open_local, wait_escalation


@pytest.mark.parametrize(
    "text",
    [
        "Honestly, I'M NOT SURE HOW TO PROCEED here.",
        "i need access to the billing database",
        "This   could have\nunintended consequences for users",
        "I don\u2019t have enough context about the schema",  # typographic apostrophe
    ],
)
def test_default_triggers_match_in_any_case(text: str) -> None:
    assert find_trigger(text, DEFAULT_TRIGGERS) is not None


async def test_no_trigger_and_custom_triggers(tmp_path: Path) -> None:
    assert find_trigger("All tests pass; deploying.", DEFAULT_TRIGGERS) is None
    settings = Settings()
    settings.escalation.triggers = ["BLOCKED ON"]
    async with Gate(open_local(tmp_path / "t.db"), "bot", settings=settings, owns_backend=True) as gate:
        assert gate.needs_escalation("we are blocked on review")
        assert gate.escalation_trigger("we are Blocked On review") == "BLOCKED ON"
        assert not gate.needs_escalation("I'm not sure how to proceed")  # the defaults were replaced


@pytest.fixture
async def gate_and_env(cli_env: dict[str, str]) -> Any:
    path = Path(cli_env["HITL_STORE"])
    gate = Gate(open_local(path, "helper-bot"), "helper-bot")
    watcher = open_local(path, "watcher")
    yield gate, watcher, cli_env
    await gate.backend.close()
    await watcher.close()


async def test_guidance_from_hitl_reply_then_follow_up_and_resolve(gate_and_env: Any) -> None:
    gate, watcher, env = gate_and_env
    task = asyncio.create_task(gate.escalate("I need access to prod logs", context="ticket 7", timeout=60))
    eid = await wait_escalation(watcher)
    code, _, err = await hitl(env, "--as", "hana", "reply", str(eid), "Use the read replica instead.")
    assert code == 0, err
    result = await asyncio.wait_for(task, 60)
    assert result.outcome is EscalationOutcome.guidance and result.has_guidance
    assert result.reply == "Use the read replica instead." and result.escalation_id == eid

    follow = asyncio.create_task(gate.follow_up(eid, "The replica lags 2h; is that fine?", timeout=60))
    await _wait_for_messages(watcher, eid, 3)
    await watcher.post_message(eid, "Yes, fine.", "hana", MessageRole.human)
    again = await asyncio.wait_for(follow, 60)
    assert again.outcome is EscalationOutcome.guidance and again.reply == "Yes, fine."

    await gate.resolve(eid, "done with the replica")
    esc = await watcher.get_escalation(eid)
    assert esc.status is EscalationStatus.resolved
    assert [(m.role.value, m.text) for m in esc.messages] == [
        ("agent", "I need access to prod logs"),
        ("human", "Use the read replica instead."),
        ("agent", "The replica lags 2h; is that fine?"),
        ("human", "Yes, fine."),
    ]


async def _wait_for_messages(backend: Any, eid: int, count: int) -> None:
    async def until() -> None:
        async for ev in backend.subscribe(after_seq=0):
            held = ev.payload.get("message_count", len(ev.payload.get("messages", [])))  # message events count
            if ev.subject == f"escalation:{eid}" and held >= count:
                return

    await asyncio.wait_for(until(), 60)


async def test_take_over_from_another_process_stops_the_agent(gate_and_env: Any) -> None:
    gate, watcher, env = gate_and_env
    task = asyncio.create_task(gate.escalate("This could have unintended consequences", timeout=60))
    eid = await wait_escalation(watcher)
    code, _, err = await hitl(env, "--as", "ivan", "takeover", str(eid), "--note", "I'll do it")
    assert code == 0, err
    result = await asyncio.wait_for(task, 60)
    assert result.outcome is EscalationOutcome.taken_over and result.reply is None
    after = await gate.follow_up(eid, "may I continue?")
    assert after.outcome is EscalationOutcome.taken_over  # the agent may not post any more


async def test_nobody_answers_is_a_timeout(gate_and_env: Any) -> None:
    gate, _, _ = gate_and_env
    result = await gate.escalate("I'm not sure how to proceed", timeout=0.3)
    assert result.outcome is EscalationOutcome.timeout and result.reply is None
    assert result.escalation_id is not None


async def test_store_gone_while_waiting_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    gate = Gate(open_local(path), "bot")
    task = asyncio.create_task(gate.escalate("help", timeout=600))
    watcher = open_local(path, "w")
    await wait_escalation(watcher)
    await watcher.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    result = await asyncio.wait_for(task, 60)
    assert result.outcome is EscalationOutcome.error and "store" in (result.reason or "")
    await gate.backend.close()
