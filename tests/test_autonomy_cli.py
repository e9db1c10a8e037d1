"""``hitl suggest`` (accept / dismiss) and ``hitl calibration``, run in-process through ``hitl_tui.cli.main``.

``autonomy`` joins ``COMMAND_MODULES`` for these tests only (the lead adds it to the list).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hitl_tui.models import Stage
from hitl_tui.store.sqlite import SQLiteStore

from .conftest import FakeClock
from .test_autonomy_support import approvals, capability, decide, review


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import os

    import hitl_tui.cli as cli

    for key in list(os.environ):
        if key.startswith("HITL_"):
            monkeypatch.delenv(key)
    config = tmp_path / "config.toml"
    config.write_text("[autonomy]\nmin_approvals = 3\ncalibration_min_sample = 5\n")
    monkeypatch.setenv("HITL_CONFIG", str(config))
    monkeypatch.setenv("HITL_AUTONOMY_FILE", str(tmp_path / "dismissed.json"))
    monkeypatch.setenv("HITL_REVIEWER", "carol")
    monkeypatch.setenv("HITL_WARM", "0")
    if "autonomy" not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", [*cli.COMMAND_MODULES, "autonomy"])
    db = tmp_path / "hitl.db"
    asyncio.run(_fill(db))
    return db


async def _fill(db: Path) -> None:
    """Yesterday: deploy 3 approvals at confidence 95 in 41 s; rm autonomous, then flagged; ls 2
    approvals and a denial at 40; a tool whose name carries a terminal escape, 3 approvals."""
    clock = FakeClock(datetime.now(UTC) - timedelta(days=1))
    store = SQLiteStore(db, clock=clock)
    try:
        await capability(store, "deploy")
        await capability(store, "rm", Stage.autonomous)
        await capability(store, "ls")
        await capability(store, "evil\x1b]0;pwned\x07")
        await approvals(store, clock, "deploy", 3, after=41, confidence=95)
        await review(store, clock, "rm", "flagged", reviewer="alice", note="wrong file")
        await approvals(store, clock, "ls", 2, confidence=95)
        await decide(store, clock, "ls", "deny", confidence=40)
        await approvals(store, clock, "evil\x1b]0;pwned\x07", 3)
    finally:
        await store.close()


def hitl(db: Path, *argv: str) -> int:
    import hitl_tui.cli as cli

    return cli.main(["--store", str(db), *argv])


async def _cap(db: Path, tool: str):
    store = SQLiteStore(db)
    try:
        return await store.get_capability(tool)
    finally:
        await store.close()


def test_suggest_lists_promotions_and_demotions(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert hitl(env, "suggest") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["CAPABILITY", "CHANGE", "EVIDENCE"]
    assert lines[1].startswith("rm ") and "autonomous -> approval" in lines[1]
    assert "review #1 flagged by alice: wrong file" in lines[1]
    assert any(line.startswith("deploy") and "3 approved, 0 denied, 0 edited, 0 flagged in 30 days; "
               "median decision 41 s" in line for line in lines)
    assert "\x1b" not in out and "\x07" not in out
    assert "evil\\x1b]0;pwned\\x07" in out  # the hostile name, made visible
    assert not any(line.startswith("ls ") for line in lines)

    assert hitl(env, "suggest", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [(s["kind"], s["target"]) for s in data] == [
        ("demote", "rm"), ("promote", "deploy"), ("promote", "evil\x1b]0;pwned\x07"),
    ]
    assert data[1]["record"]["approved"] == 3 and data[1]["dismissed_until"] is None

    assert hitl(env, "suggest", "--explain") == 0
    out = capsys.readouterr().out
    assert "1 denied (last " in out and "2 approved in 30 days; needs 3" in out


def test_accept_records_the_evidence_and_refuses_what_is_not_suggested(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert hitl(env, "suggest", "accept", "deploy", "--reason", "steady") == 0
    out = capsys.readouterr().out
    assert "deploy: approval -> autonomous" in out
    cap = asyncio.run(_cap(env, "deploy"))
    assert cap.stage is Stage.autonomous
    assert (cap.history[-1].actor, cap.history[-1].reason) == (
        "carol",
        "accepted suggestion: 3 approved, 0 denied, 0 edited, 0 flagged in 30 days; median decision 41 s (steady)",
    )
    assert hitl(env, "suggest", "accept", "deploy") == 1  # refused: nothing to accept any more
    assert "no current suggestion for deploy: already autonomous" in capsys.readouterr().err
    assert hitl(env, "suggest", "accept", "ls") == 1
    assert "ls: 2 approved in 30 days; needs 3; 1 denied" in capsys.readouterr().err
    assert hitl(env, "suggest", "accept", "nope") == 3
    assert "no capability 'nope'" in capsys.readouterr().err

    assert hitl(env, "suggest", "accept", "rm", "--json") == 0  # the demotion, accepted by hand
    cap = json.loads(capsys.readouterr().out)
    assert cap["stage"] == "approval"
    assert cap["history"][-1]["reason"] == "accepted suggestion: review #1 flagged by alice: wrong file"


def test_dismiss_hides_a_suggestion_for_the_given_days(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert hitl(env, "suggest", "dismiss", "rm", "--days", "3") == 0
    assert "dismissed rm autonomous -> approval until" in capsys.readouterr().out
    assert hitl(env, "suggest") == 0
    out = capsys.readouterr().out
    assert "review #1" not in out and "(1 dismissed suggestion hidden; --all shows them)" in out
    assert hitl(env, "suggest", "--all", "--json") == 0
    data = {s["target"]: s for s in json.loads(capsys.readouterr().out)}
    until = datetime.fromisoformat(data["rm"]["dismissed_until"])
    assert timedelta(days=2, hours=23) < until - datetime.now(UTC) <= timedelta(days=3)
    assert data["deploy"]["dismissed_until"] is None
    assert hitl(env, "suggest", "dismiss", "ls") == 1  # nothing to dismiss
    assert hitl(env, "suggest", "dismiss", "deploy", "--days", "0") == 3


def test_calibration_table_chart_and_thresholds(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert hitl(env, "calibration") == 0
    out = capsys.readouterr().out
    assert out.startswith("confidence calibration: all tools, all agents; 30 days (")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:5]}
    assert rows == {"0-59": ["0", "1", "0", "0%", "(0/1)"], "60-89": ["0", "0", "0", "-"],
                    "90-100": ["5", "0", "0", "100%", "(5/5)"]}
    assert "90-100 ████████████████████ 100%  5/5 approved" in out
    assert "suggested thresholds: approval >= 95, autonomous >= 95" in out

    assert hitl(env, "calibration", "--tool", "ls", "--ascii", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [(b["label"], b["approved"], b["denied"]) for b in data["bands"]] == [
        ("0-59", 0, 1), ("60-89", 0, 0), ("90-100", 2, 0),
    ]
    assert data["thresholds"]["ok"] is False
    assert data["thresholds"]["reason"] == (
        "sample too small: 3 decided requests carried a confidence; a suggestion needs at least 5"
    )
    assert "90-100 #################### 100%  2/2 approved" in data["chart"]

    assert hitl(env, "calibration", "--by", "tool") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TOOL", "0-59", "60-89", "90-100", "EXPIRED", "THRESHOLDS"]
    assert lines[1].split() == ["deploy", "-", "-", "100%", "(3/3)", "0", "refused"]
    assert lines[2].split() == ["ls", "0%", "(0/1)", "-", "100%", "(2/2)", "0", "refused"]

    # as of a date before the history, nothing is there
    assert hitl(env, "calibration", "--as-of", "2020-01-01", "--json") == 0
    assert json.loads(capsys.readouterr().out)["approved"] == 0


def test_bad_flags_are_clear_errors(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert hitl(env, "calibration", "--as-of", "last tuesday") == 3
    assert "--as-of 'last tuesday' is not a date" in capsys.readouterr().err
    assert hitl(env, "suggest", "--window", "0") == 3
    assert "--window must be between 1 and 3650 days" in capsys.readouterr().err


def test_a_real_subprocess(env: Path, tmp_path: Path) -> None:
    """The same command in a separate process (the command list extended the same way)."""
    import os

    code = (
        "import sys, hitl_tui.cli as cli\n"
        "cli.COMMAND_MODULES.append('autonomy') if 'autonomy' not in cli.COMMAND_MODULES else None\n"
        "sys.exit(cli.main(sys.argv[1:]))\n"
    )
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", code, "--store", str(env), "suggest", "--json"],
        capture_output=True, text=True, timeout=60, cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert proc.returncode == 0, proc.stderr
    assert [s["target"] for s in json.loads(proc.stdout)][:2] == ["rm", "deploy"]
