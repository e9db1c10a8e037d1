"""Staged rollout through the CLI: presets, promote/demote with history, always-approval, rules."""

from __future__ import annotations

import json

from tests.test_sdk_support import hitl


async def test_promote_demote_history_and_forced_always_approval(cli_env: dict[str, str]) -> None:
    env = cli_env
    code, out, err = await hitl(env, "policy", "preset", "seed")
    assert code == 0 and "7 capabilities" in out, err
    code, out, _ = await hitl(env, "stages", "--json")
    stages = {c["tool"]: c["stage"] for c in json.loads(out)}
    assert stages["deploy"] == "approval" and stages["format_code"] == "autonomous"

    code, out, _ = await hitl(env, "--as", "lee", "demote", "deploy", "--reason", "incident 12")
    assert code == 0 and "approval -> disabled" in out
    code, out, _ = await hitl(env, "request", "deploy", "--wait")
    assert code == 1 and "disabled" in out  # a disabled tool refuses
    code, out, _ = await hitl(env, "--as", "lee", "promote", "deploy", "--reason", "fixed")
    assert code == 0 and "disabled -> approval" in out
    code, out, _ = await hitl(env, "--as", "lee", "promote", "deploy")
    assert code == 0 and "approval -> autonomous" in out
    code, _, err = await hitl(env, "promote", "deploy")
    assert code == 1 and "already autonomous" in err

    code, out, _ = await hitl(env, "stages", "history", "deploy", "--json")
    history = [(h["actor"], h["from_stage"], h["to_stage"], h["reason"]) for h in json.loads(out)]
    assert history[1:] == [
        ("lee", "approval", "disabled", "incident 12"),
        ("lee", "disabled", "approval", "fixed"),
        ("lee", "approval", "autonomous", None),
    ]

    code, _, err = await hitl(env, "promote", "delete_resource")
    assert code == 1 and "always-approval" in err and "--force" in err
    code, out, _ = await hitl(env, "stages", "history", "delete_resource", "--json")
    assert [h["to_stage"] for h in json.loads(out)] == ["approval"]  # the refusal wrote nothing
    code, out, _ = await hitl(env, "--as", "root-admin", "promote", "delete_resource", "--force", "--reason", "drill")
    assert code == 0 and "forced, audited" in out
    code, out, _ = await hitl(env, "stages", "history", "delete_resource")
    assert "root-admin" in out and "yes" in out and "drill" in out
    code, out, _ = await hitl(env, "audit", "export")
    forced = [
        e for e in map(json.loads, out.splitlines()) if e["kind"] == "capability.stage" and e["payload"]["forced"]
    ]
    assert [(e["actor"], e["payload"]["tool"]) for e in forced] == [("root-admin", "delete_resource")]
    code, _, _ = await hitl(env, "audit", "verify")
    assert code == 0

    code, out, _ = await hitl(env, "stages", "set", "format_code", "disabled", "--reason", "noisy")
    assert code == 0 and "autonomous -> disabled" in out
    code, out, _ = await hitl(env, "policy", "preset", "seed", "--keep-stages")
    code, out, _ = await hitl(env, "stages", "--json")
    assert {c["tool"]: c["stage"] for c in json.loads(out)}["format_code"] == "disabled"


async def test_rules_add_list_remove_and_their_effect(cli_env: dict[str, str]) -> None:
    env = cli_env
    await hitl(env, "policy", "preset", "seed")
    code, out, err = await hitl(env, "policy", "rules", "add", "deny", "read_logs(/etc/*)", "--reason", "secrets")
    assert code == 0, err
    code, _, err = await hitl(env, "policy", "rules", "add", "deny", "Bash(rm:*")
    assert code == 3 and "unbalanced" in err
    code, out, _ = await hitl(env, "request", "read_logs", "--args", '{"path": "/etc/passwd"}', "--wait")
    assert code == 1 and "read_logs(/etc/*)" in out
    code, out, _ = await hitl(env, "policy", "show", "--json")
    assert [r["pattern"] for r in json.loads(out)["rules"]] == ["read_logs(/etc/*)"]
    code, out, _ = await hitl(env, "policy", "rules", "rm", "read_logs(/etc/*)")
    assert code == 0
    code, out, _ = await hitl(env, "policy", "rules", "ls", "--json")
    assert json.loads(out) == []
    code, _, err = await hitl(env, "policy", "preset", "nope")
    assert code == 3 and "available" in err
