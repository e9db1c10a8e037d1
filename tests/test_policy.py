from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hitl_tui.errors import Conflict
from hitl_tui.models import Capability, PolicySettings, Risk, Route, Rule, RuleEffect, Stage, Thresholds
from hitl_tui.policy import (
    ROUTE_STRICTNESS,
    PolicyEngine,
    call_subject,
    check_stage_change,
    compile_pattern,
    decide,
    demote_target,
    parse_rule,
    promote_target,
    rule_matches,
    url_host,
)
from hitl_tui.presets import PRESETS, get_preset


def cap(tool: str, stage: Stage = Stage.approval, **kw: object) -> Capability:
    return Capability(tool=tool, stage=stage, **kw)  # type: ignore[arg-type]


def rule(pattern: str, effect: str, **kw: object) -> Rule:
    return parse_rule(pattern, effect, **kw)  # type: ignore[arg-type]


def route(tool: str, args: dict | None = None, *, caps=(), rules=(), confidence=None, agent=None, settings_=None):
    return decide(tool, args or {}, confidence, caps, rules, settings_, agent=agent).route


BASH_APPROVAL = [cap("Bash", Stage.approval)]


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "text",
    ["", "   ", "(ls)", "Bash(ls", "Bash)", "Bash(ls))", "Bash((ls)", "Bash(ls)x", "Ba sh", "Bash()", "Web(domain:)"],
)
def test_invalid_patterns_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="invalid rule pattern"):
        parse_rule(text, "deny")


def test_invalid_effect_raises() -> None:
    with pytest.raises(ValueError, match="allow, ask or deny"):
        parse_rule("Bash", "maybe")


def test_parse_rule_fields_and_strips() -> None:
    r = parse_rule("  Bash(git push:*) ", RuleEffect.ask, agent="bot", reason="pushes are public", source="cli")
    assert r == Rule(
        pattern="Bash(git push:*)", effect=RuleEffect.ask, agent="bot", reason="pushes are public", source="cli"
    )


def test_parens_inside_specifier_are_allowed_when_balanced() -> None:
    assert compile_pattern("Bash(echo (hi))").matches("Bash", {"command": "echo (hi)"})


def test_compile_is_cached() -> None:
    assert compile_pattern("Bash(ls:*)") is compile_pattern("Bash(ls:*)")


# --------------------------------------------------------------------------- subjects and matching


def test_call_subject_key_order_and_json_fallback() -> None:
    assert call_subject({"path": "/a", "command": "ls"}) == "ls"
    assert call_subject({"command": ["ls"], "file_path": "/x"}) == "/x"
    assert call_subject({"query": "q", "url": "https://e.com"}) == "https://e.com"
    assert call_subject({"pattern": "*.py"}) == "*.py"
    assert call_subject({"b": 1, "a": [1, "x"]}) == '{"a":[1,"x"],"b":1}'
    assert call_subject({}) == "{}"


@pytest.mark.parametrize(
    ("pattern", "tool", "args", "expected"),
    [
        ("Bash", "Bash", {"command": "anything"}, True),
        ("Bash", "Bashful", {}, False),
        ("Bash(*)", "Bash", {"command": "x"}, True),
        ("mcp__github__*", "mcp__github__create_issue", {}, True),
        ("mcp__github__*", "mcp__gitlab__create_issue", {}, False),
        ("*", "whatever", {"x": 1}, True),
        ("Bash(git push:*)", "Bash", {"command": "git push origin main"}, True),
        ("Bash(git push:*)", "Bash", {"command": "git push"}, True),
        ("Bash(git push:*)", "Bash", {"command": "git pull"}, False),
        ("Bash(npm run *)", "Bash", {"command": "npm run build"}, True),
        ("Bash(npm run *)", "Bash", {"command": "npm install"}, False),
        ("Bash(ls)", "Bash", {"command": "ls -la"}, False),
        ("Edit(src/*)", "Edit", {"file_path": "src/a/b/c.py"}, True),
        ("Edit(src/**)", "Edit", {"file_path": "src/a/b/c.py"}, True),
        ("Edit(*.py)", "Edit", {"file_path": "docs/x.md"}, False),
        ("Read(.env)", "Read", {"path": ".env"}, True),
        ("Read(a.b)", "Read", {"path": "axb"}, False),  # `.` is literal
        ('Tool(*"id":7*)', "Tool", {"id": 7, "z": "q"}, True),
        ("WebFetch(domain:example.com)", "WebFetch", {"url": "https://example.com/x"}, True),
        ("WebFetch(domain:example.com)", "WebFetch", {"url": "https://api.Example.com:8443/x"}, True),
        ("WebFetch(domain:example.com)", "WebFetch", {"url": "https://badexample.com/"}, False),
        ("WebFetch(domain:example.com)", "WebFetch", {"url": "https://example.com.evil.io/"}, False),
        ("WebFetch(domain:example.com)", "WebFetch", {"url": "https://example.com@evil.io/"}, False),
        ("WebFetch(domain:example.com)", "WebFetch", {"url": "example.com/page"}, True),
        ("WebFetch(domain:example.com)", "WebFetch", {"query": "example.com"}, False),
        ("WebFetch(domain:*.example.com)", "WebFetch", {"url": "https://example.com/"}, False),
        ("WebFetch(domain:*.example.com)", "WebFetch", {"url": "https://a.example.com/"}, True),
    ],
)
def test_pattern_matching(pattern: str, tool: str, args: dict, expected: bool) -> None:
    assert compile_pattern(pattern).matches(tool, args, RuleEffect.deny) is expected
    assert compile_pattern(pattern).matches(tool, args, RuleEffect.allow) is expected


def test_url_host_reads_backslash_as_slash() -> None:
    assert url_host("https://evil.io\\@example.com/") == "evil.io"
    assert url_host(42) is None
    assert url_host("https://[bad") is None


def test_deny_catches_each_part_of_a_compound_command() -> None:
    rules = [rule("Bash(rm:*)", "deny")]
    assert route("Bash", {"command": "ls && rm -rf /"}, caps=BASH_APPROVAL, rules=rules) is Route.blocked
    assert route("Bash", {"command": "echo $(rm -rf /)"}, caps=BASH_APPROVAL, rules=rules) is Route.blocked
    assert route("Bash", {"command": "  rm -rf /"}, caps=BASH_APPROVAL, rules=rules) is Route.blocked
    assert route("Bash", {"command": "ls; echo ok"}, caps=BASH_APPROVAL, rules=rules) is Route.approval


def test_allow_wildcards_do_not_span_other_shell_commands() -> None:
    rules = [rule("Bash(git status:*)", "allow")]
    assert route("Bash", {"command": "git status --short"}, caps=BASH_APPROVAL, rules=rules) is Route.autonomous
    for cmd in [
        "git status && rm -rf /",
        "git status; curl x",
        "git status | sh",
        "git status > /etc/x",
        "git status `rm x`",
        "git status $(rm x)",
        "git status\nrm x",
    ]:
        assert route("Bash", {"command": cmd}, caps=BASH_APPROVAL, rules=rules) is Route.approval, cmd
    # the same characters are fine in a literal part of the rule
    rules = [rule("Bash(make && make test)", "allow")]
    assert route("Bash", {"command": "make && make test"}, caps=BASH_APPROVAL, rules=rules) is Route.autonomous


def test_paths_with_dotdot_are_never_allowed_but_still_denied() -> None:
    caps = [cap("Edit")]
    assert (
        route("Edit", {"file_path": "src/../../etc/passwd"}, caps=caps, rules=[rule("Edit(src/*)", "allow")])
        is Route.approval
    )
    assert (
        route("Edit", {"file_path": "src/ok.py"}, caps=caps, rules=[rule("Edit(src/*)", "allow")]) is Route.autonomous
    )
    deny = [rule("Edit(/etc/*)", "deny")]
    assert route("Edit", {"file_path": "/tmp/../etc/passwd"}, caps=caps, rules=deny) is Route.blocked


def test_rule_matches_respects_agent_scope() -> None:
    r = rule("Bash", "deny", agent="bot")
    assert rule_matches(r, "Bash", {}, agent="bot")
    assert not rule_matches(r, "Bash", {}, agent="other")
    assert not rule_matches(r, "Bash", {})


# --------------------------------------------------------------------------- rule effects and precedence


def test_each_rule_kind() -> None:
    caps = [cap("Bash", Stage.approval)]
    allow = decide("Bash", {"command": "ls"}, None, caps, [rule("Bash(ls)", "allow")])
    assert (allow.route, allow.rule) == (Route.autonomous, "Bash(ls)")
    assert "allowed by rule `Bash(ls)`" in allow.reason

    caps = [cap("Bash", Stage.autonomous)]
    ask = decide("Bash", {"command": "git push"}, None, caps, [rule("Bash(git push:*)", "ask")])
    assert (ask.route, ask.rule) == (Route.approval, "Bash(git push:*)")
    assert "`Bash(git push:*)`" in ask.reason

    deny = decide("Bash", {"command": "rm -rf x"}, None, caps, [rule("Bash(rm:*)", "deny", reason="no deletes")])
    assert (deny.route, deny.rule) == (Route.blocked, "Bash(rm:*)")
    assert deny.reason == "denied by rule `Bash(rm:*)`: no deletes"

    other = decide("Bash", {"command": "ls"}, None, caps, [rule("Bash(rm:*)", "deny")])
    assert (other.route, other.rule) == (Route.autonomous, None)


def test_deny_beats_allow_and_ask_in_any_order() -> None:
    caps = [cap("Bash", Stage.autonomous)]
    for rules in (
        [rule("Bash", "allow"), rule("Bash", "ask"), rule("Bash(rm:*)", "deny")],
        [rule("Bash(rm:*)", "deny"), rule("Bash", "ask"), rule("Bash", "allow")],
    ):
        d = decide("Bash", {"command": "rm x"}, 100, caps, rules)
        assert (d.route, d.rule) == (Route.blocked, "Bash(rm:*)")


def test_ask_beats_allow() -> None:
    rules = [rule("Bash", "allow"), rule("Bash(git push:*)", "ask")]
    d = decide("Bash", {"command": "git push"}, 100, [cap("Bash", Stage.autonomous)], rules)
    assert (d.route, d.rule) == (Route.approval, "Bash(git push:*)")


def test_disabled_beats_allow_and_ask() -> None:
    caps = [cap("Bash", Stage.disabled)]
    for effect in ("allow", "ask"):
        d = decide("Bash", {"command": "ls"}, 100, caps, [rule("Bash", effect)])
        assert d.route is Route.blocked
        assert d.reason == "tool 'Bash' is disabled (stage: disabled)"


def test_first_matching_rule_of_an_effect_is_named() -> None:
    rules = [rule("Bash(git:*)", "deny"), rule("Bash", "deny"), rule("Bash(git push:*)", "deny")]
    assert decide("Bash", {"command": "git push"}, None, [], rules).rule == "Bash(git:*)"
    rules = [rule("Bash(ls)", "allow"), rule("*", "allow")]
    assert decide("Bash", {"command": "ls"}, None, [], rules).rule == "Bash(ls)"
    assert decide("Bash", {"command": "pwd"}, None, [], rules).rule == "*"


def test_allow_rule_does_not_lift_always_approval() -> None:
    caps = [cap("delete_resource", Stage.approval, always_approval=True)]
    d = decide("delete_resource", {}, 100, caps, [rule("delete_resource", "allow")])
    assert (d.route, d.rule) == (Route.approval, "delete_resource")
    assert "always-approval" in d.reason


def test_forced_autonomous_always_approval_tool_follows_its_stage() -> None:
    caps = [cap("delete_resource", Stage.autonomous, always_approval=True)]
    assert route("delete_resource", caps=caps) is Route.autonomous


def test_agent_scoped_rules() -> None:
    caps = [cap("Bash", Stage.autonomous)]
    rules = [rule("Bash", "deny", agent="intern"), rule("Bash(ls)", "ask", agent="senior")]
    assert route("Bash", {"command": "ls"}, caps=caps, rules=rules, agent="intern") is Route.blocked
    assert route("Bash", {"command": "ls"}, caps=caps, rules=rules, agent="senior") is Route.approval
    assert route("Bash", {"command": "ls"}, caps=caps, rules=rules, agent="other") is Route.autonomous
    assert route("Bash", {"command": "ls"}, caps=caps, rules=rules) is Route.autonomous


def test_agent_scoped_capability_takes_precedence_for_that_agent() -> None:
    caps = [cap("deploy", Stage.approval), cap("deploy", Stage.autonomous, agent="release-bot", risk=Risk.low)]
    engine = PolicyEngine(caps, [])
    assert engine.decide("deploy", {}, agent="release-bot").route is Route.autonomous
    assert engine.decide("deploy", {}, agent="release-bot").risk is Risk.low
    assert engine.decide("deploy", {}, agent="someone").route is Route.approval
    assert engine.decide("deploy", {}).route is Route.approval
    # an agent-only capability does not apply to others: they see an unknown tool
    only = PolicyEngine([cap("scan", Stage.autonomous, agent="a")], [])
    assert only.decide("scan", {}, agent="a").route is Route.autonomous
    assert only.decide("scan", {}, agent="b").route is Route.approval
    assert "unknown" in only.decide("scan", {}, agent="b").reason


def test_duplicate_capability_and_bad_rule_rejected_at_construction() -> None:
    with pytest.raises(ValueError, match="duplicate capability"):
        PolicyEngine([cap("x"), cap("x")], [])
    PolicyEngine([cap("x"), cap("x", agent="a")], [])  # different scopes are fine
    with pytest.raises(ValueError, match=r"unbalanced.*from settings.json"):
        PolicyEngine([], [Rule(pattern="Bash(ls", effect=RuleEffect.deny, source="settings.json")])


# --------------------------------------------------------------------------- unknown tools


def test_unknown_tool_defaults_to_approval() -> None:
    d = decide("mystery", {}, None, [], [])
    assert (d.route, d.stage) == (Route.approval, Stage.approval)
    assert "unknown" in d.reason and "mystery" in d.reason


def test_unknown_stage_is_configurable() -> None:
    blocked = PolicySettings(unknown_stage=Stage.disabled)
    d = decide("mystery", {}, None, [], [rule("mystery", "allow")], blocked)
    assert d.route is Route.blocked and "unknown" in d.reason
    auto = PolicySettings(unknown_stage=Stage.autonomous)
    assert route("mystery", settings_=auto) is Route.autonomous
    # an allow rule can make an unknown tool autonomous when unknown tools need approval
    assert route("mystery", rules=[rule("mystery", "allow")]) is Route.autonomous


# --------------------------------------------------------------------------- confidence


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [
        (100, Route.autonomous),
        (90, Route.autonomous),
        (89, Route.approval),
        (60, Route.approval),
        (59, Route.escalate),
        (0, Route.escalate),
        (None, Route.autonomous),
    ],
)
def test_confidence_boundaries_on_autonomous_stage(confidence: int | None, expected: Route) -> None:
    assert route("t", caps=[cap("t", Stage.autonomous)], confidence=confidence) is expected


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [
        (100, Route.approval),
        (90, Route.approval),
        (89, Route.approval),
        (60, Route.approval),
        (59, Route.escalate),
        (None, Route.approval),
    ],
)
def test_confidence_boundaries_on_approval_stage(confidence: int | None, expected: Route) -> None:
    assert route("t", caps=[cap("t", Stage.approval)], confidence=confidence) is expected


def test_confidence_reasons_name_the_threshold() -> None:
    d = decide("deploy", {}, 42, [cap("deploy")], [])
    assert d.route is Route.escalate
    assert d.reason.startswith("confidence 42 below 60: a human takes over")
    d = decide("t", {}, 75, [cap("t", Stage.autonomous)], [])
    assert d.reason.startswith("confidence 75 below 90")


def test_custom_per_tool_thresholds() -> None:
    caps = [cap("t", Stage.autonomous, thresholds=Thresholds(autonomous=95, approval=80))]
    assert route("t", caps=caps, confidence=95) is Route.autonomous
    assert route("t", caps=caps, confidence=94) is Route.approval
    assert route("t", caps=caps, confidence=80) is Route.approval
    assert route("t", caps=caps, confidence=79) is Route.escalate
    assert "own threshold" in decide("t", {}, 79, caps, []).reason
    # settings thresholds apply to tools without their own
    loose = PolicySettings(thresholds=Thresholds(autonomous=70, approval=30))
    assert route("u", caps=[cap("u", Stage.autonomous)], confidence=70, settings_=loose) is Route.autonomous
    assert route("u", caps=[cap("u", Stage.autonomous)], confidence=29, settings_=loose) is Route.escalate


def test_confidence_refines_rule_routes_too() -> None:
    caps = [cap("Bash", Stage.approval)]
    rules = [rule("Bash", "allow")]
    assert route("Bash", caps=caps, rules=rules, confidence=80) is Route.approval
    assert route("Bash", caps=caps, rules=rules, confidence=10) is Route.escalate


def test_confidence_routed_without_confidence_needs_approval() -> None:
    caps = [cap("issue", Stage.autonomous, confidence_routed=True)]
    d = decide("issue", {}, None, caps, [])
    assert d.route is Route.approval and "without a confidence" in d.reason
    assert route("issue", caps=caps, confidence=90) is Route.autonomous
    assert route("issue", caps=caps, rules=[rule("issue", "allow")]) is Route.approval


def test_invalid_confidence_raises() -> None:
    engine = PolicyEngine([cap("t")], [])
    for bad in (-1, 101, True, 50.5, "90"):
        with pytest.raises(ValueError, match="confidence"):
            engine.decide("t", {}, bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- review, facts


def test_review_after_routes() -> None:
    auto = [cap("t", Stage.autonomous, review_after=True)]
    d = decide("t", {}, None, auto, [])
    assert (d.route, d.review_after) == (Route.review, True)
    assert decide("t", {}, 70, auto, []).route is Route.approval
    appr = decide("m", {}, None, [cap("m", Stage.approval, review_after=True)], [])
    assert (appr.route, appr.review_after) == (Route.approval, True)
    plain = decide("p", {}, None, [cap("p", Stage.autonomous)], [])
    assert (plain.route, plain.review_after) == (Route.autonomous, False)


def test_decision_carries_capability_facts() -> None:
    c = cap("deploy", Stage.approval, irreversible=True, risk=Risk.critical, timeout_s=120)
    d = decide("deploy", {}, None, [c], [])
    assert (d.stage, d.irreversible, d.risk, d.timeout_s, d.rule) == (Stage.approval, True, Risk.critical, 120, None)
    d = decide("other", {}, None, [], [], PolicySettings(default_timeout_s=60))
    assert (d.irreversible, d.risk, d.timeout_s) == (False, Risk.medium, 60)


def test_engine_caches_do_not_leak_between_agents() -> None:
    engine = PolicyEngine([cap("Bash", Stage.autonomous)], [rule("Bash", "deny", agent="a")])
    assert engine.decide("Bash", {}, agent="a").route is Route.blocked
    assert engine.decide("Bash", {}, agent="b").route is Route.autonomous
    assert engine.decide("Bash", {}, agent="a").route is Route.blocked


# --------------------------------------------------------------------------- presets


SEED_ROUTES = {
    "deploy": Route.approval,
    "format_code": Route.autonomous,
    "send_customer_email": Route.approval,
    "read_logs": Route.autonomous,
    "db_migration": Route.approval,
    "create_github_issue": Route.approval,  # confidence-routed: no confidence → approval
    "delete_resource": Route.approval,
}


def test_seed_preset_routes() -> None:
    preset = get_preset("seed")
    assert {c.tool for c in preset.capabilities} == set(SEED_ROUTES)
    assert all(c.description for c in preset.capabilities)
    engine = PolicyEngine(preset.capabilities, preset.rules)
    for tool, expected in SEED_ROUTES.items():
        assert engine.decide(tool, {}).route is expected, tool
    assert engine.decide("create_github_issue", {}, 95).route is Route.autonomous
    assert engine.decide("create_github_issue", {}, 70).route is Route.approval
    assert engine.decide("format_code", {}, 40).route is Route.escalate
    migration = engine.decide("db_migration", {})
    assert migration.review_after and migration.irreversible and migration.risk is Risk.critical
    deploy = engine.decide("deploy", {})
    assert deploy.irreversible and deploy.risk is Risk.high
    delete = engine.capability("delete_resource")
    assert delete is not None and delete.always_approval and delete.irreversible
    with pytest.raises(Conflict):
        check_stage_change(delete, Stage.autonomous, force=False)


def test_rollout_preset_routes() -> None:
    preset = get_preset("rollout")
    engine = PolicyEngine(preset.capabilities, preset.rules)
    expected = {
        "read_file": Route.autonomous,
        "write_file": Route.autonomous,
        "run_tests": Route.autonomous,
        "create_pr": Route.approval,
        "deploy": Route.approval,
        "delete_branch": Route.blocked,
    }
    assert {t: engine.decide(t, {}).route for t in expected} == expected
    deploy = engine.capability("deploy")
    assert deploy is not None and deploy.always_approval


def test_get_preset_alias_copy_and_unknown() -> None:
    assert get_preset("default") == get_preset("seed")
    copy = get_preset("seed")
    copy.capabilities.clear()
    assert get_preset("seed").capabilities
    assert set(PRESETS) >= {"seed", "default", "rollout"}
    with pytest.raises(ValueError, match="available: default, rollout, seed"):
        get_preset("nope")


# --------------------------------------------------------------------------- stage changes


def test_check_stage_change() -> None:
    guarded = cap("delete_resource", Stage.approval, always_approval=True)
    with pytest.raises(Conflict, match=r"'delete_resource' is marked always-approval.*--force") as err:
        check_stage_change(guarded, Stage.autonomous, False)
    assert err.value.code == 409
    check_stage_change(guarded, Stage.autonomous, True)
    check_stage_change(guarded, Stage.disabled, False)
    check_stage_change(cap("x"), Stage.autonomous, False)
    check_stage_change(None, Stage.autonomous, False)


def test_promote_and_demote() -> None:
    assert promote_target(Stage.disabled) is Stage.approval
    assert promote_target(Stage.approval) is Stage.autonomous
    assert demote_target(Stage.autonomous) is Stage.approval
    assert demote_target(Stage.approval) is Stage.disabled
    with pytest.raises(Conflict, match="already autonomous"):
        promote_target(Stage.autonomous)
    with pytest.raises(Conflict, match="already disabled"):
        demote_target(Stage.disabled)


# --------------------------------------------------------------------------- properties

TOOLS = ["Bash", "Edit", "deploy", "mcp__github__issue", "unknown_tool"]
COMMANDS = ["ls", "rm -rf /", "git push origin", "git status && rm x", "cat a.txt", "", "echo $(id)"]
PATTERNS = [
    "Bash",
    "Bash(rm:*)",
    "Bash(git *)",
    "Bash(*status*)",
    "Edit(src/*)",
    "mcp__github__*",
    "*",
    "deploy",
    "Edit(*.py)",
    "*(ls)",
]

caps_st = st.lists(
    st.builds(
        Capability,
        tool=st.sampled_from(TOOLS[:-1]),
        stage=st.sampled_from(list(Stage)),
        always_approval=st.booleans(),
        confidence_routed=st.booleans(),
        review_after=st.booleans(),
        agent=st.sampled_from([None, None, "a"]),
        thresholds=st.one_of(
            st.none(),
            st.tuples(st.integers(0, 100), st.integers(0, 100)).map(
                lambda t: Thresholds(autonomous=max(t), approval=min(t))
            ),
        ),
    ),
    max_size=6,
    unique_by=lambda c: (c.tool, c.agent),
)
rules_st = st.lists(
    st.builds(
        Rule,
        pattern=st.sampled_from(PATTERNS),
        effect=st.sampled_from(list(RuleEffect)),
        agent=st.sampled_from([None, None, "a", "b"]),
    ),
    max_size=8,
)
args_st = st.one_of(
    st.builds(lambda c: {"command": c}, st.sampled_from(COMMANDS) | st.text(max_size=20)),
    st.builds(lambda p: {"file_path": p}, st.sampled_from(["src/a.py", "src/../x", "/etc/passwd"])),
    st.dictionaries(st.sampled_from(["x", "y"]), st.integers() | st.text(max_size=5), max_size=2),
)
call_st = st.tuples(
    st.sampled_from(TOOLS),
    args_st,
    st.sampled_from([None, "a", "b"]),
    caps_st,
    rules_st,
    st.sampled_from([Stage.approval, Stage.autonomous, Stage.disabled]),
)


@settings(max_examples=300, deadline=None)
@given(call=call_st, confidence=st.none() | st.integers(0, 100))
def test_property_deny_match_never_runs_unattended(call, confidence) -> None:
    tool, args, agent, caps, rules, unknown = call
    engine = PolicyEngine(caps, rules, PolicySettings(unknown_stage=unknown))
    d = engine.decide(tool, args, confidence, agent)
    if any(r.effect is RuleEffect.deny and rule_matches(r, tool, args, agent) for r in rules):
        assert d.route is Route.blocked
        assert d.rule is not None
    c = engine.capability(tool, agent)
    stage = c.stage if c is not None else unknown
    if stage is Stage.disabled:
        assert d.route is Route.blocked
    if d.route in (Route.autonomous, Route.review):
        assert stage is not Stage.disabled
        assert not any(r.effect is not RuleEffect.allow and rule_matches(r, tool, args, agent) for r in rules)


@settings(max_examples=200, deadline=None)
@given(call=call_st, confidence=st.none() | st.integers(0, 100))
def test_property_decide_is_deterministic(call, confidence) -> None:
    tool, args, agent, caps, rules, unknown = call
    policy = PolicySettings(unknown_stage=unknown)
    engine = PolicyEngine(caps, rules, policy)
    first = engine.decide(tool, args, confidence, agent)
    assert engine.decide(tool, args, confidence, agent) == first
    assert decide(tool, args, confidence, caps, rules, policy, agent=agent) == first


@settings(max_examples=300, deadline=None)
@given(call=call_st, low=st.integers(0, 100), high=st.integers(0, 100))
def test_property_lower_confidence_is_never_less_strict(call, low, high) -> None:
    tool, args, agent, caps, rules, unknown = call
    low, high = min(low, high), max(low, high)
    engine = PolicyEngine(caps, rules, PolicySettings(unknown_stage=unknown))
    at_low = engine.decide(tool, args, low, agent).route
    at_high = engine.decide(tool, args, high, agent).route
    at_full = engine.decide(tool, args, 100, agent).route
    assert ROUTE_STRICTNESS[at_low] >= ROUTE_STRICTNESS[at_high] >= ROUTE_STRICTNESS[at_full]


@settings(max_examples=200, deadline=None)
@given(call=call_st, confidence=st.integers(0, 100))
def test_property_confidence_never_loosens_the_no_confidence_route(call, confidence) -> None:
    tool, args, agent, caps, rules, unknown = call
    engine = PolicyEngine(caps, rules, PolicySettings(unknown_stage=unknown))
    without = engine.decide(tool, args, None, agent).route
    with_conf = engine.decide(tool, args, confidence, agent).route
    c = engine.capability(tool, agent)
    if c is None or not c.confidence_routed:
        assert ROUTE_STRICTNESS[with_conf] >= ROUTE_STRICTNESS[without]


def _reference_regex(spec: str, wildcard: str) -> re.Pattern[str]:
    if not spec.strip("*"):  # `Q(*)` is `Q`: every call
        return re.compile(".*", re.DOTALL)
    if spec.endswith(":*"):  # a prefix, alone or followed by a space or tab and anything
        head = wildcard.join(re.escape(part) for part in spec[:-2].split("*"))
        return re.compile(head + "(?:[ \t]" + wildcard + ")?", re.DOTALL)
    return re.compile(wildcard.join(re.escape(part) for part in spec.split("*")), re.DOTALL)


@settings(max_examples=400, deadline=None)
@given(
    specs=st.lists(
        st.tuples(st.text(alphabet="ab*:", min_size=1, max_size=5), st.sampled_from(["deny", "allow"])),
        min_size=1,
        max_size=14,
    ),
    subject=st.text(alphabet="ab:; ", max_size=9),
    key=st.sampled_from(["query", "command"]),
)
def test_property_first_matching_rule_agrees_with_a_naive_reference(specs, subject, key) -> None:
    """The grouped, prefiltered matcher names the same rule as trying each rule in order."""
    rules = [Rule(pattern=f"Q({spec})", effect=RuleEffect(effect)) for spec, effect in specs]
    d = PolicyEngine([cap("Q", Stage.approval)], rules).decide("Q", {key: subject})
    whole = subject.strip() if key == "command" else subject
    parts = [whole]
    if key == "command":
        parts += [p.strip() for p in re.split(r"[;&|`\n\r()]+", whole) if p.strip()]
    safe = r"[^;&|`\n\r>()]*" if key == "command" else ".*"
    denied = [
        r
        for r in rules
        if r.effect is RuleEffect.deny and any(_reference_regex(r.pattern[2:-1], ".*").fullmatch(p) for p in parts)
    ]
    allowed = [
        r for r in rules if r.effect is RuleEffect.allow and _reference_regex(r.pattern[2:-1], safe).fullmatch(whole)
    ]
    if denied:
        assert (d.route, d.rule) == (Route.blocked, denied[0].pattern)
    elif allowed:
        assert (d.route, d.rule) == (Route.autonomous, allowed[0].pattern)
    else:
        assert (d.route, d.rule) == (Route.approval, None)


def test_prefix_rule_has_a_word_boundary() -> None:
    rules = [parse_rule("Bash(git:*)", "allow"), parse_rule("Bash(rm:*)", "deny")]
    bash = [cap("Bash", Stage.approval)]
    assert route("Bash", {"command": "git"}, caps=bash, rules=rules) is Route.autonomous
    assert route("Bash", {"command": "git status"}, caps=bash, rules=rules) is Route.autonomous
    assert route("Bash", {"command": "gitk --all"}, caps=bash, rules=rules) is Route.approval
    assert route("Bash", {"command": "rmdir build"}, caps=bash, rules=rules) is Route.approval
    assert route("Bash", {"command": "rm -rf build"}, caps=bash, rules=rules) is Route.blocked


def test_agent_default_capability_restricts_a_subagent() -> None:
    caps = [
        Capability(tool="*", agent="reader", stage=Stage.disabled),
        Capability(tool="Read", agent="reader", stage=Stage.autonomous),
        Capability(tool="Write", stage=Stage.autonomous),
    ]
    engine = PolicyEngine(caps, [])
    assert engine.decide("Read", {}, agent="reader").route is Route.autonomous
    blocked = engine.decide("Write", {}, agent="reader")
    assert blocked.route is Route.blocked and "disabled" in blocked.reason
    assert engine.decide("Anything", {}, agent="reader").route is Route.blocked
    assert engine.decide("Write", {}, agent="someone-else").route is Route.autonomous
    assert engine.decide("Write", {}).route is Route.autonomous
