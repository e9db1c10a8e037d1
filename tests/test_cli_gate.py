"""``hitl request --wait``: the gate for shell scripts, through the real CLI in subprocesses."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from hitl_tui.models import RequestStatus
from tests.test_sdk_support import HITL, hitl, load_preset, open_local, wait_pending


@pytest.fixture
async def env(cli_env: dict[str, str]) -> Any:
    admin = open_local(cli_env["HITL_STORE"], "admin")
    await load_preset(admin)
    yield cli_env, admin
    await admin.close()


async def _start(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *HITL, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


async def _finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_wait_exits_0_when_approved_in_another_process_and_prints_edited_args(env: Any) -> None:
    cli, admin = env
    agent = await _start(
        cli, "request", "deploy", "--args", '{"env": "prod"}', "--agent", "ci", "--wait", "--json", "--accept-edits"
    )
    rid = await wait_pending(admin, "deploy")
    code, _, err = await hitl(cli, "--as", "alice", "approve", str(rid), "--args", '{"env": "canary"}')
    assert code == 0, err
    code, out, err = await _finish(agent)
    assert code == 0, err
    data = json.loads(out)
    assert data["status"] == "approved" and data["args"] == {"env": "canary"} and data["request_id"] == rid
    assert data["agent"] == "ci" and data["request"]["decided_by"] == "alice"


@pytest.mark.parametrize("json_out", [False, True], ids=["text", "json"])
async def test_an_edited_approval_exits_4_unless_the_script_accepts_edits(env: Any, json_out: bool) -> None:
    """`hitl request deploy --args '{"env":"prod"}' --wait && ./deploy.sh prod`: a reviewer who
    edited prod to staging approved staging, not prod, so the chain must stop (exit 4)."""
    cli, admin = env
    more = ["--json"] if json_out else []
    agent = await _start(cli, "request", "deploy", "--args", '{"env": "prod"}', "--wait", *more)
    rid = await wait_pending(admin, "deploy")
    code, _, err = await hitl(cli, "--as", "alice", "approve", str(rid), "--args", '{"env": "staging"}')
    assert code == 0, err
    code, out, err = await _finish(agent)
    assert code == 4, (out, err)
    assert "approved with edited arguments" in err and "--accept-edits" in err
    if json_out:
        assert json.loads(out)["args"] == {"env": "staging"}
    else:
        assert out.splitlines()[-1] == '{"env": "staging"}'
    # the same call approved as filed still exits 0
    agent = await _start(cli, "request", "send_customer_email", "--args", '{"to": "dev"}', "--wait", *more)
    rid = await wait_pending(admin, "send_customer_email")
    assert (await hitl(cli, "--as", "alice", "approve", str(rid)))[0] == 0
    code, out, err = await _finish(agent)
    assert code == 0, (out, err)


async def test_wait_exits_1_when_denied(env: Any) -> None:
    cli, admin = env
    agent = await _start(cli, "request", "send_customer_email", "--summary", "welcome mail", "--wait")
    rid = await wait_pending(admin, "send_customer_email")
    code, _, err = await hitl(cli, "--as", "bob", "deny", str(rid), "--reason", "typo in the mail")
    assert code == 0, err
    code, out, _ = await _finish(agent)
    assert code == 1
    assert f"request {rid} denied: denied by bob: typo in the mail" in out
    req = await admin.get_request(rid)
    assert req.summary == "welcome mail" and req.agent == "shell"


async def test_wait_exits_2_when_it_expires(env: Any) -> None:
    cli, admin = env
    code, out, _ = await hitl(cli, "request", "deploy", "--wait", "--timeout", "0.5")
    assert code == 2 and "expired" in out
    [req] = (await admin.list_requests(None)).items
    assert req.status is RequestStatus.expired


async def test_exit_3_when_the_backend_cannot_be_reached(env: Any, tmp_path: Path) -> None:
    cli, admin = env
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    no_store = {k: v for k, v in cli.items() if k != "HITL_STORE"}
    code, _, err = await hitl(no_store, "--server", f"http://127.0.0.1:{port}", "request", "deploy", "--wait")
    assert code == 3 and err.strip()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    code, _, err = await hitl(cli, "--store", str(blocker / "x.db"), "request", "deploy", "--wait", "--json")
    assert code == 3 and "cannot open store" in err
    code, _, err = await hitl(cli, "request", "deploy", "--args", "[1, 2]", "--wait")
    assert code == 3 and "JSON object" in err
    assert (await admin.list_requests(None)).total == 0


async def test_autonomous_blocked_and_escalated_without_waiting(env: Any) -> None:
    cli, admin = env
    code, out, _ = await hitl(cli, "request", "read_logs", "--args", '{"path": "/var/log"}', "--wait")
    assert code == 0 and out.startswith("autonomous:")
    await admin.set_stage("deploy", "disabled", "admin", "freeze")
    code, out, _ = await hitl(cli, "request", "deploy", "--wait", "--json")
    assert code == 1 and json.loads(out)["status"] == "blocked" and "disabled" in json.loads(out)["reason"]
    code, out, _ = await hitl(cli, "request", "create_github_issue", "--confidence", "30", "--json")
    data = json.loads(out)
    assert code == 1 and data["status"] == "escalated" and data["escalation_id"] is not None
    assert (await admin.list_requests(None)).total == 0


async def test_without_wait_prints_the_id_then_cancel(env: Any) -> None:
    cli, admin = env
    code, out, err = await hitl(cli, "request", "deploy", "--idempotency-key", "build-9")
    assert code == 0
    rid = int(out.strip())
    assert f"approve {rid}" in err
    code, out, _ = await hitl(cli, "request", "deploy", "--idempotency-key", "build-9")
    assert int(out.strip()) == rid  # the same request
    code, out, _ = await hitl(cli, "cancel", str(rid), "--reason", "build superseded")
    assert code == 0 and "cancelled" in out
    code, _, err = await hitl(cli, "--as", "alice", "approve", str(rid))
    assert code == 1 and "cancelled" in err
    assert (await admin.get_request(rid)).decision_reason == "build superseded"


async def test_agent_name_from_the_environment(env: Any) -> None:
    cli, admin = env
    code, out, _ = await hitl({**cli, "HITL_AGENT": "nightly-job"}, "request", "deploy")
    assert code == 0
    assert (await admin.get_request(int(out.strip()))).agent == "nightly-job"


def test_a_stop_while_the_request_is_announced_withdraws_it(cli_env: dict[str, str]) -> None:
    """SIGTERM while the webhook notification is still being sent (after filing, before the wait):
    the request is withdrawn as in the wait, not left pending for someone to approve."""
    import signal
    import subprocess
    import time

    from .conftest import HITL

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts the connection, never answers: the notification hangs
    env = {**cli_env, "HITL_WEBHOOK_URL": f"http://127.0.0.1:{listener.getsockname()[1]}/hook"}  # 5 s timeout
    try:
        proc = subprocess.Popen(
            [*HITL, "request", "deploy", "--wait", "--timeout", "600"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL),
        )
        conn, _ = listener.accept()  # the request is filed and its announcement is on the way
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        assert proc.returncode == 143
        shown = subprocess.run([*HITL, "show", "1", "--json"], env=cli_env, capture_output=True, text=True, timeout=60)
        assert json.loads(shown.stdout)["status"] == "cancelled", shown.stdout
        conn.close()
    finally:
        listener.close()
