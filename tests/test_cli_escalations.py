"""``hitl escalate --wait`` and the reviewer's side (reply, takeover, resolve, list, thread)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from hitl_tui.models import EscalationStatus
from tests.test_sdk_support import HITL, hitl, open_local, wait_escalation


@pytest.fixture
async def env(cli_env: dict[str, str]) -> Any:
    watcher = open_local(cli_env["HITL_STORE"], "watcher")
    yield cli_env, watcher
    await watcher.close()


async def _escalate(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *HITL, "escalate", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


async def test_wait_prints_the_reply_and_exits_0(env: Any) -> None:
    cli, watcher = env
    agent = await _escalate(cli, "I need access to the prod DB", "--agent", "db-bot", "--context", "ticket 9", "--wait")
    eid = await wait_escalation(watcher)
    code, out, err = await hitl(cli, "--as", "hana", "reply", str(eid), "Use the replica.\nRead-only.")
    assert code == 0 and "replied" in out, err
    out, err = await asyncio.wait_for(agent.communicate(), 120)
    assert agent.returncode == 0, err
    assert out.decode() == "Use the replica.\nRead-only.\n"

    code, out, _ = await hitl(cli, "thread", str(eid))
    assert code == 0 and "db-bot" in out and "hana" in out and "ticket 9" in out and "Read-only." in out
    code, out, _ = await hitl(cli, "escalations", "--json")
    [row] = json.loads(out)
    assert row["id"] == eid and row["status"] == "answered" and len(row["messages"]) == 2


async def test_takeover_exits_1_timeout_exits_2_resolve(env: Any) -> None:
    cli, watcher = env
    agent = await _escalate(cli, "stuck", "--wait", "--json")
    eid = await wait_escalation(watcher)
    code, _, err = await hitl(cli, "--as", "ivan", "takeover", str(eid), "--note", "mine now")
    assert code == 0, err
    out, _ = await asyncio.wait_for(agent.communicate(), 120)
    assert agent.returncode == 1
    assert json.loads(out)["outcome"] == "taken_over"

    code, out, _ = await hitl(cli, "escalate", "anyone?", "--wait", "--timeout", "0.3")
    assert code == 2
    code, out, _ = await hitl(cli, "escalate", "fyi only")
    assert code == 0
    later = int(out.strip())
    code, out, _ = await hitl(cli, "resolve", str(later))
    assert code == 0 and "resolved" in out
    assert (await watcher.get_escalation(later)).status is EscalationStatus.resolved
    code, out, _ = await hitl(cli, "escalations", "--status", "taken_over")
    assert code == 0 and "stuck" in out and "fyi only" not in out
    code, _, err = await hitl(cli, "reply", str(later), "too late")
    assert code == 1 and "resolved" in err


async def test_hostile_agent_text_is_sanitised_in_listings(env: Any) -> None:
    cli, _ = env
    code, _, _ = await hitl(cli, "escalate", "help \x1b]0;pwned\x07 [bold]me[/bold]", "--agent", "evil\u202ebot")
    assert code == 0
    code, out, _ = await hitl(cli, "escalations")
    assert code == 0 and "\x1b" not in out and "\u202e" not in out and "\\x1b" in out and "[bold]" in out
    code, out, _ = await hitl(cli, "thread", "1")
    assert "\x07" not in out and "\\x07" in out
