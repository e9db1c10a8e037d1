"""The global options also work after the command (``hitl console --store PATH``), through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from hitl_tui.cli import build_parser
from tests.test_sdk_support import hitl


async def test_store_and_as_after_the_command(cli_env: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in cli_env.items() if k != "HITL_STORE"}
    other = tmp_path / "other.db"
    code, out, err = await hitl(env, "request", "deploy", "--agent", "ci", "--store", str(other))
    assert code == 0, err
    request_id = out.strip()
    # the same store, named before the command: the request is there
    code, out, err = await hitl(env, "--store", str(other), "ls", "--json")
    assert code == 0, err
    assert [r["id"] for r in json.loads(out)] == [int(request_id)]
    # a sub-sub-command takes them too; --as after the command is who decides
    code, _, err = await hitl(env, "approve", request_id, "--store", str(other), "--as", "bob")
    assert code == 0, err
    code, out, err = await hitl(env, "show", request_id, "--json", "--store", str(other))
    assert code == 0, err
    assert json.loads(out)["decided_by"] == "bob"
    # not given after the command: the global value stands; given in both places: the later one wins
    code, out, _ = await hitl(env, "--store", str(other), "--as", "carol", "ls", "--status", "approved", "--json")
    assert [r["decided_by"] for r in json.loads(out)] == ["bob"]
    later = ("--store", str(tmp_path / "x.db"))
    code, out, _ = await hitl(env, "--store", str(other), "ls", "--status", "approved", "--json", *later)
    assert code == 0 and json.loads(out) == []


def test_every_command_parses_them_after_its_name() -> None:
    for argv in (["console"], ["review", "mark", "1", "ok"], ["stages", "history", "deploy"], ["hook", "claude-code"]):
        args = build_parser(argv).parse_args([*argv, "--store", "s.db", "--as", "bob", "--config", "c.toml"])
        assert (args.store, args.reviewer, args.config) == ("s.db", "bob", "c.toml"), argv
        plain = build_parser(argv).parse_args(["--store", "g.db", *argv])
        assert plain.store == "g.db" and plain.reviewer is None
    # a command with its own --store keeps it (hitl serve --store URL)
    args = build_parser(["serve"]).parse_args(["--store", "g.db", "serve", "--store", "sqlite:///x.db"])
    assert args.store == "g.db" and args.cmd_store == "sqlite:///x.db"
