"""``hitl review log|ls|show|mark`` and ``hitl digest`` through the real CLI."""

from __future__ import annotations

import json

from tests.test_sdk_support import hitl


async def test_log_list_mark_and_digest(cli_env: dict[str, str]) -> None:
    env = cli_env
    with open(env["HITL_CONFIG"], "w") as fh:
        fh.write("[review]\nresult_limit = 12\n")
    code, out, err = await hitl(
        env,
        "review",
        "log",
        "format_code",
        "--args",
        '{"path": "a.py"}',
        "--result",
        "reformatted 3 files",
        "--agent",
        "fmt-bot",
    )
    assert code == 0, err
    first = int(out.strip())
    code, out, _ = await hitl(
        env,
        "review",
        "log",
        "send_email",
        "--args",
        '{"to": "x@example.com", "password": "hunter2"}',
        "--result",
        "-",
        "--agent",
        "mail-bot",
        stdin="sent\n",
    )
    second = int(out.strip())

    code, out, _ = await hitl(env, "review", "show", str(first), "--json")
    item = json.loads(out)
    assert item["result"] == "reformatted " and item["result_length"] == 19 and item["reviewed"] is False

    code, out, _ = await hitl(env, "review", "ls", "--unreviewed")
    assert code == 0 and "fmt-bot" in out and "mail-bot" in out and "hunter2" not in out

    code, out, _ = await hitl(env, "--as", "rosa", "review", "mark", str(second), "flagged", "--note", "wrong list")
    assert code == 0 and "flagged" in out
    code, out, _ = await hitl(env, "review", "ls", "--flagged", "--json")
    [flagged] = json.loads(out)
    assert flagged["id"] == second and flagged["reviewer"] == "rosa" and flagged["note"] == "wrong list"
    code, out, _ = await hitl(env, "review", "ls", "--unreviewed", "--tool", "send_email", "--json")
    assert json.loads(out) == []

    code, out, _ = await hitl(env, "digest", "--since", "1h", "--format", "json")
    digest = json.loads(out)
    assert digest["actions"] == 2 and digest["by_agent"] == {"fmt-bot": 1, "mail-bot": 1}
    assert [i["id"] for i in digest["unreviewed"]] == [first]
    assert [i["id"] for i in digest["flagged"]] == [second]
    assert digest["flagged"][0]["args"]["password"] == "[redacted]"
    code, out, _ = await hitl(env, "digest")
    assert code == 0 and "2 action(s) logged for review: 1 unreviewed, 1 flagged" in out and "hunter2" not in out
    code, out, _ = await hitl(env, "digest", "--format", "md")
    assert out.startswith("# Agent activity digest") and "## Flagged" in out
    code, out, _ = await hitl(env, "digest", "--since", "1h", "--json")  # like every listing
    assert code == 0
    window = ("since", "until")  # the window moves with the clock
    assert {k: v for k, v in json.loads(out).items() if k not in window} == {
        k: v for k, v in digest.items() if k not in window
    }


async def test_bad_input_writes_nothing(cli_env: dict[str, str]) -> None:
    code, _, err = await hitl(cli_env, "review", "log", "x", "--args", "{bad", "--result", "r")
    assert code == 3 and "not valid JSON" in err
    code, _, err = await hitl(cli_env, "review", "mark", "99", "ok")
    assert code == 3 and "99" in err
    code, _, err = await hitl(cli_env, "digest", "--since", "last week")
    assert code == 3 and "--since" in err
    code, out, _ = await hitl(cli_env, "review", "ls", "--json")
    assert json.loads(out) == []
