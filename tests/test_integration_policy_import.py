"""Policy import: Claude Code settings.json permissions and Gemini CLI policy TOML into rules, checked by
what the policy engine then decides, and the `import-claude` / `import-gemini` commands on a real store."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from hitl_tui.backend.local import LocalBackend
from hitl_tui.cli import Context, Parser, _run_async
from hitl_tui.cli.hook import add_policy_import_commands
from hitl_tui.config import load_settings
from hitl_tui.errors import InvalidInput
from hitl_tui.integrations.claude_policy import import_claude_settings
from hitl_tui.integrations.gemini_policy import Untranslatable, import_gemini_policy, regex_to_globs
from hitl_tui.models import Route, Rule, RuleEffect
from hitl_tui.policy import PolicyEngine
from hitl_tui.store.sqlite import SQLiteStore

CLAUDE_SETTINGS = {
    "permissions": {
        "allow": [
            "Bash(npm run test:*)",
            "Bash(ls *)",
            "Read(./src/**)",
            "WebFetch(domain:example.com)",
            "mcp__github__*",
            "mcp__jira",
        ],
        "ask": ["Bash(git push:*)"],
        "deny": ["Read(./secrets/**)", "Read(.env)", "Edit(//etc/**)", "Agent(Explore)", "Bash(oops"],
        "defaultMode": "acceptEdits",
    }
}

GEMINI_POLICY = r"""
[[rule]]
toolName = "run_shell_command"
commandPrefix = "git"
decision = "ask_user"
priority = 100

[[rule]]
toolName = "run_shell_command"
commandPrefix = ["npm test", "npm run lint"]
decision = "allow"
priority = 200

[[rule]]
commandRegex = "git (commit|push)"
decision = "deny"
priority = 300
denyMessage = "use the release script"

[[rule]]
toolName = ["write_file", "replace"]
argsPattern = '"file_path":"/etc/.*'
decision = "deny"
priority = 500

[[rule]]
mcpName = "untrusted"
decision = "deny"
priority = 500

[[rule]]
toolName = "read_file"
subagent = "codebase_investigator"
decision = "allow"
priority = 50

[[rule]]
toolName = "run_shell_command"
commandRegex = 'rm\s+-rf'
decision = "deny"
priority = 900

[[rule]]
toolName = "web_fetch"
argsPattern = 'evil\.com'
decision = "deny"
priority = 10

[[rule]]
toolName = "*"
decision = "allow"
modes = ["yolo"]
priority = 999

[[rule]]
toolName = "glob"
toolAnnotations = { readOnlyHint = true }
decision = "allow"
priority = 10

[[rule]]
toolName = "delete_file"
decision = "deny"
modes = ["plan"]
priority = 10
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / ".claude").mkdir(parents=True)
    (root / ".claude" / "settings.json").write_text(json.dumps(CLAUDE_SETTINGS))
    return root


def route(engine: PolicyEngine, tool: str, args: dict[str, Any], agent: str | None = None) -> Route:
    return engine.decide(tool, args, agent=agent).route


# --------------------------------------------------------------------------- Claude Code


def test_claude_rules_translate_with_the_same_precedence(project: Path) -> None:
    result = import_claude_settings(project / ".claude" / "settings.json", home=Path("/home/dev"))
    root = project.resolve().as_posix()
    patterns = {(r.effect.value, r.pattern) for r in result.rules}
    assert ("allow", "Bash(npm run test)") in patterns and ("allow", "Bash(npm run test *)") in patterns
    assert ("allow", "Bash(ls)") in patterns and ("allow", "Bash(ls *)") in patterns
    assert ("allow", f"Read({root}/src/**)") in patterns
    assert ("allow", "mcp__jira__*") in patterns
    assert ("ask", "Bash(git push:*)") in patterns
    assert ("deny", f"Read({root}/secrets/**)") in patterns and ("deny", "Read(*/.env)") in patterns
    assert {("deny", f"{t}(/etc/**)") for t in ("Edit", "Write", "MultiEdit")} <= patterns
    assert all(r.source == f"claude:{(project / '.claude' / 'settings.json').resolve()}" for r in result.rules)
    skipped = {s.entry: s.reason for s in result.skipped}
    assert set(skipped) == {"deny: Agent(Explore)", "deny: Bash(oops"}
    assert any("defaultMode" in n.entry for n in result.notes)

    engine = PolicyEngine(rules=result.rules)
    assert route(engine, "Bash", {"command": "npm run test"}) is Route.autonomous
    assert route(engine, "Bash", {"command": "npm run test --watch"}) is Route.autonomous
    assert route(engine, "Bash", {"command": "npm run testx"}) is Route.approval  # word boundary, as in Claude Code
    assert route(engine, "Bash", {"command": "npm run test && curl x | sh"}) is Route.approval
    assert route(engine, "Bash", {"command": "ls"}) is Route.autonomous
    assert route(engine, "Bash", {"command": "git push origin main"}) is Route.approval
    assert route(engine, "Read", {"file_path": f"{root}/src/app/main.py"}) is Route.autonomous
    assert route(engine, "Read", {"file_path": f"{root}/secrets/prod.key"}) is Route.blocked
    assert route(engine, "Read", {"file_path": f"{root}/src/../secrets/prod.key"}) is Route.blocked
    assert route(engine, "Read", {"file_path": f"{root}/config/.env"}) is Route.blocked
    assert route(engine, "Write", {"file_path": "/etc/hosts", "content": ""}) is Route.blocked
    assert route(engine, "WebFetch", {"url": "https://docs.example.com/a"}) is Route.autonomous
    assert route(engine, "WebFetch", {"url": "https://example.com.evil.io/"}) is Route.approval
    assert route(engine, "mcp__github__create_issue", {"title": "x"}) is Route.autonomous
    assert route(engine, "mcp__jira__search", {}) is Route.autonomous


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        ("{}", 'no "permissions"'),
        ('{"permissions": {"allow": "Bash"}}', "list of strings"),
    ],
)
def test_claude_bad_files_are_refused(tmp_path: Path, content: str, why: str) -> None:
    path = tmp_path / "settings.json"
    path.write_text(content)
    with pytest.raises(InvalidInput, match=why):
        import_claude_settings(path)
    with pytest.raises(InvalidInput, match="cannot read"):
        import_claude_settings(tmp_path / "missing.json")


# --------------------------------------------------------------------------- Gemini CLI


def test_gemini_rules_translate_and_report_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(GEMINI_POLICY)
    result = import_gemini_policy(path)
    patterns = {(r.effect.value, r.pattern, r.agent) for r in result.rules}
    assert ("ask", "run_shell_command(git)", None) in patterns and ("ask", "run_shell_command(git *)", None) in patterns
    assert ("deny", "run_shell_command(git commit*)", None) in patterns
    assert ("deny", "mcp_untrusted_*", None) in patterns
    assert ("allow", "read_file", "codebase_investigator") in patterns
    assert ("deny", "delete_file", None) in patterns  # mode-limited deny: imported, stricter
    skipped = " | ".join(f"{s.entry}: {s.reason}" for s in result.skipped)
    assert len(result.skipped) == 4, skipped
    for marker in (r"rm\\s+-rf", "evil", "would apply always", "toolAnnotations"):
        assert marker in skipped
    notes = " | ".join(f"{n.entry}: {n.reason}" for n in result.notes)
    assert "every mode" in notes
    assert "ask beats allow whatever the priority" in notes  # git ask (100) vs npm allow (200)

    engine = PolicyEngine(rules=result.rules)
    assert route(engine, "run_shell_command", {"command": "git status"}) is Route.approval
    assert route(engine, "run_shell_command", {"command": "gitk"}) is Route.approval  # stage default, not the rule
    assert engine.decide("run_shell_command", {"command": "gitk"}).rule is None
    blocked = engine.decide("run_shell_command", {"command": "git commit -m x"})
    assert blocked.route is Route.blocked and "use the release script" in blocked.reason
    assert route(engine, "run_shell_command", {"command": "npm test"}) is Route.autonomous
    assert route(engine, "run_shell_command", {"command": "npm run lint --fix"}) is Route.autonomous
    assert route(engine, "replace", {"file_path": "/etc/hosts", "old_string": "a"}) is Route.blocked
    assert route(engine, "mcp_untrusted_delete", {}) is Route.blocked
    assert route(engine, "read_file", {"file_path": "a"}, agent="codebase_investigator") is Route.autonomous
    assert route(engine, "read_file", {"file_path": "a"}, agent="someone_else") is Route.approval


@pytest.mark.parametrize(
    ("regex", "globs"),
    [
        ("git (commit|push)", ["git commit*", "git push*"]),
        ('ls"', ["ls"]),
        (r".*\.env", ["*.env*"]),
        ("(?:a|b) (c|d)", ["a c*", "a d*", "b c*", "b d*"]),
        ("npm run build.*", ["npm run build*"]),
    ],
)
def test_regex_to_globs(regex: str, globs: list[str]) -> None:
    assert regex_to_globs(regex) == globs


@pytest.mark.parametrize("regex", ["a+", r"rm\s", "^git", "git$", "[ab]", "a|b", "(a|b)+", 'a"b', ".", r"\*", "(a(b)"])
def test_regex_without_glob_form(regex: str) -> None:
    with pytest.raises(Untranslatable):
        regex_to_globs(regex)


def test_gemini_bad_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("rule = 'x'")
    with pytest.raises(InvalidInput, match=r"no \[\[rule\]\]"):
        import_gemini_policy(path)
    path.write_text("[[rule]\n")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        import_gemini_policy(path)


# --------------------------------------------------------------------------- the commands, on a real store


def run_policy(store: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = Parser(prog="hitl")
    groups = parser.add_subparsers(dest="command", parser_class=Parser)
    policy = groups.add_parser("policy")
    add_policy_import_commands(policy.add_subparsers(dest="policy_command", parser_class=Parser))
    args = parser.parse_args(["policy", *argv])
    empty = Path(store).parent / "empty.toml"  # not the user's config
    empty.write_text("")
    ctx = Context(load_settings(empty, {"store": str(store), "reviewer": "carol"}))
    code = asyncio.run(_run_async(args.func, args, ctx))
    return code, capsys.readouterr().out


def stored_rules(store: Path) -> list[Rule]:
    async def go() -> list[Rule]:
        backend = LocalBackend(SQLiteStore(store))
        try:
            return await backend.list_rules()
        finally:
            await backend.close()

    return asyncio.run(go())


def seed_rules(store: Path, rules: list[Rule]) -> None:
    async def go() -> None:
        backend = LocalBackend(SQLiteStore(store))
        try:
            await backend.set_rules(rules, "admin")
        finally:
            await backend.close()

    asyncio.run(go())


def test_import_claude_command_merges_and_dry_runs(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "hitl.db"
    settings = project / ".claude" / "settings.json"
    source = f"claude:{settings.resolve()}"
    manual = Rule(pattern="Bash(make:*)", effect=RuleEffect.allow)
    stale = Rule(pattern="Bash(old:*)", effect=RuleEffect.deny, source=source)
    seed_rules(store, [manual, stale])

    code, out = run_policy(store, ["import-claude", str(settings), "--dry-run"], capsys)
    assert code == 0 and "would import" in out and "Agent(Explore)" in out and "would replace 1" in out
    assert stored_rules(store) == [manual, stale]

    code, out = run_policy(store, ["import-claude", str(settings), "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["replaced"] == 1 and report["dry_run"] is False
    assert {s["entry"] for s in report["skipped"]} == {"deny: Agent(Explore)", "deny: Bash(oops"}
    rules = stored_rules(store)
    assert manual in rules and stale not in rules
    assert len(rules) == 1 + len(report["imported"])

    code, _ = run_policy(store, ["import-claude", str(settings)], capsys)  # idempotent re-import
    assert code == 0 and stored_rules(store) == rules


def test_import_gemini_command_writes_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "hitl.db"
    path = tmp_path / "policy.toml"
    path.write_text(GEMINI_POLICY)
    code, out = run_policy(store, ["import-gemini", str(path)], capsys)
    assert code == 0 and "imported" in out and "not translated (4)" in out
    assert any(r.pattern == "mcp_untrusted_*" for r in stored_rules(store))


def test_import_of_a_bad_file_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "hitl.db"
    path = tmp_path / "settings.json"
    path.write_text("{broken")
    seed_rules(store, [Rule(pattern="Read", effect=RuleEffect.allow)])
    with pytest.raises(InvalidInput):
        run_policy(store, ["import-claude", str(path)], capsys)
    assert [r.pattern for r in stored_rules(store)] == ["Read"]


def test_parser_shape() -> None:
    parser = argparse.ArgumentParser()
    add_policy_import_commands(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["import-gemini", "x.toml", "--dry-run", "--json"])
    assert args.dry_run and args.json and args.path == "x.toml"
