"""``hitl review mark ID flagged`` on an embedded store acts on ``[autonomy] demote_on_flag`` at once,
as the server and the console do (before, only a running console or server demoted the tool)."""

from __future__ import annotations

import json

import pytest

from tests.test_sdk_support import hitl


async def _stage(env: dict[str, str], tool: str) -> str:
    code, out, err = await hitl(env, "stages", "--json")
    assert code == 0, err
    return next(c["stage"] for c in json.loads(out) if c["tool"] == tool and c.get("agent") is None)


async def _flag_one(env: dict[str, str]) -> tuple[int, str]:
    code, _, err = await hitl(env, "policy", "preset", "seed")
    assert code == 0, err
    assert await _stage(env, "read_logs") == "autonomous"
    code, out, err = await hitl(env, "review", "log", "read_logs", "--agent", "a", "--result", "ok")
    assert code == 0, err
    review_id = out.strip()
    code, out, err = await hitl(env, "--as", "alice", "review", "mark", review_id, "flagged", "--note", "wrong file")
    assert code == 0, err
    return int(review_id), out


async def test_flag_demotes_the_autonomous_tool_at_once(cli_env: dict[str, str]) -> None:
    review_id, out = await _flag_one(cli_env)
    assert f"review item {review_id} marked flagged" in out
    assert "read_logs demoted to approval" in out and "flagged by alice: wrong file" in out
    assert await _stage(cli_env, "read_logs") == "approval"
    # the demotion is recorded like any other stage change, with the flag as its reason
    code, out, err = await hitl(cli_env, "stages", "history", "read_logs")
    assert code == 0, err
    assert "auto-demoted" in out and f"review #{review_id}" in out
    # flagging again changes nothing more: the tool is no longer autonomous
    code, out, err = await hitl(cli_env, "review", "mark", str(review_id), "flagged")
    assert code == 0, err
    assert "demoted" not in out


@pytest.mark.parametrize("mode", ["suggest", "off"])
async def test_suggest_and_off_leave_the_stage_alone(cli_env: dict[str, str], mode: str) -> None:
    with open(cli_env["HITL_CONFIG"], "w") as fh:
        fh.write(f'[autonomy]\ndemote_on_flag = "{mode}"\n')
    _, out = await _flag_one(cli_env)
    assert await _stage(cli_env, "read_logs") == "autonomous"
    assert "demoted to approval (" not in out
    assert ("suggested: demote read_logs to approval" in out) is (mode == "suggest")
