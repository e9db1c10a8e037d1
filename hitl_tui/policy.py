"""The policy engine: which route one tool call takes (autonomous, review, approval, escalate, blocked).

Pure and fast: no I/O, patterns are compiled once, and the rules that can apply to a tool are
gathered once per ``(tool, agent)`` into a few combined regexes per effect (about 10 µs a decision
with 200 rules).

Rule patterns follow Claude Code's permission rules: ``Tool`` or ``Tool(specifier)``.

* The tool part is a glob (``*`` matches anything): ``Bash``, ``mcp__github__*``, ``*``.
* The specifier is matched against the call's *subject*: the first string among the arguments
  ``command``, ``file_path``, ``path``, ``url``, ``query``, ``pattern``; otherwise the arguments as
  compact JSON with sorted keys.  ``*`` (and ``**``) match any run of characters, ``/`` included;
  a trailing ``:*`` means "this prefix, then anything" (``Bash(git push:*)``).
* ``domain:example.com`` matches a ``url`` argument whose host is ``example.com`` or a subdomain of it
  (``domain:*.example.com``: subdomains only).

Matching fails closed.  A deny or ask rule is also tried against each part of a compound shell command
(``ls && rm -rf x`` is caught by ``Bash(rm:*)``) and against the normalised form of a path.  An allow
rule's wildcards never span shell control characters (``; & | ` > ( )`` and newlines), so
``Bash(git status:*)`` does not allow ``git status && rm -rf x``, and an allow rule never matches a path
containing a ``..`` segment.  Splitting shell commands is best effort (``sudo rm`` is not ``rm``): deny
rules are a guard rail, the stages are the policy.

Decision order: deny rule → disabled stage → ask rule → allow rule → stage; then confidence, which can
only tighten the route; then ``review_after`` turns an autonomous route into autonomous review.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import urlsplit

from .errors import Conflict
from .models import (
    STAGE_ORDER,
    Capability,
    Decision,
    PolicySettings,
    Risk,
    Route,
    Rule,
    RuleEffect,
    Stage,
)

__all__ = [
    "ROUTE_STRICTNESS",
    "SUBJECT_KEYS",
    "CompiledPattern",
    "PolicyEngine",
    "call_subject",
    "check_stage_change",
    "compile_pattern",
    "decide",
    "demote_target",
    "parse_rule",
    "promote_target",
    "rule_matches",
    "url_host",
]

SUBJECT_KEYS = ("command", "file_path", "path", "url", "query", "pattern")

# Stricter routes have larger numbers: confidence may only move a call up this order.
ROUTE_STRICTNESS: dict[Route, int] = {
    Route.autonomous: 0,
    Route.review: 1,
    Route.approval: 2,
    Route.escalate: 3,
    Route.blocked: 4,
}

_PATH_KEYS = frozenset({"file_path", "path"})
_WILD = ".*"
_WILD_SAFE = r"[^;&|`\n\r>()]*"  # an allow rule's wildcard cannot run into another shell command
_SHELL_SPLIT = re.compile(r"[;&|`\n\r()]+")
_URL_JUNK = re.compile(r"[\t\r\n]")
_TOOL_CACHE_MAX = 4096


# --------------------------------------------------------------------------- patterns


@dataclass(frozen=True, slots=True)
class CompiledPattern:
    """One rule pattern, parsed and compiled.  Build with :func:`compile_pattern`."""

    text: str
    tool: str
    specifier: str | None
    tool_regex: re.Pattern[str] | None  # None when the tool part has no wildcard
    spec_source: str | None  # regex source of a glob specifier (None: any call, or a domain)
    spec_safe_source: str | None  # the same with allow-safe wildcards
    domain: str | None = None
    subdomains_only: bool = False
    literal: str = ""  # the longest literal run of a glob specifier: a match must contain it
    prefix: str = ""  # the literal text a match must start with ("" when the glob starts with `*`)

    def matches_tool(self, tool: str) -> bool:
        if self.tool_regex is None:
            return tool == self.tool
        return self.tool_regex.fullmatch(tool) is not None

    def matches(self, tool: str, args: Mapping[str, Any], effect: RuleEffect | str = RuleEffect.deny) -> bool:
        """Whether this pattern matches the call, with the matching semantics of ``effect``."""
        if not self.matches_tool(tool):
            return False
        return _EffectMatcher(RuleEffect(effect), [(0, self)]).first(_Call(args)) is not None


def _glob(text: str, wildcard: str) -> str:
    # Runs of stars collapse to one wildcard: `**` means the same as `*`, and no `.*.*` backtracking.
    return wildcard.join(re.escape(part) for part in re.split(r"\*+", text))


def _check_balanced(text: str, spec: str) -> None:
    depth = 0
    for ch in spec:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                break
    if depth != 0:
        raise ValueError(f"invalid rule pattern {text!r}: unbalanced parentheses in the specifier")


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> CompiledPattern:
    """Parse ``Tool`` or ``Tool(specifier)``; raise ``ValueError`` saying what is wrong."""
    text = pattern.strip()
    if not text:
        raise ValueError("invalid rule pattern: it is empty")
    open_at = text.find("(")
    if open_at < 0:
        if ")" in text:
            raise ValueError(f"invalid rule pattern {text!r}: ')' without a matching '('")
        tool, spec = text, None
    else:
        if not text.endswith(")"):
            raise ValueError(f"invalid rule pattern {text!r}: unbalanced parentheses; write Tool or Tool(specifier)")
        tool, spec = text[:open_at].strip(), text[open_at + 1 : -1]
        _check_balanced(text, spec)
        spec = spec.strip()
        if not spec:
            raise ValueError(f"invalid rule pattern {text!r}: the specifier is empty; write {tool or 'Tool'!r} alone")
    if not tool:
        raise ValueError(f"invalid rule pattern {text!r}: the tool name is empty")
    if any(ch.isspace() for ch in tool) or ")" in tool:
        raise ValueError(f"invalid rule pattern {text!r}: the tool name {tool!r} contains spaces or parentheses")

    tool_regex = re.compile(_glob(tool, _WILD), re.DOTALL) if "*" in tool else None
    if spec is None or spec.strip("*") == "":  # `Tool`, `Tool(*)`, `Tool(**)`: every call
        return CompiledPattern(text, tool, spec, tool_regex, None, None)
    if spec.startswith("domain:"):
        domain = spec[len("domain:") :].strip().lower().rstrip(".")
        subdomains_only = domain.startswith("*.")
        domain = domain.removeprefix("*.")
        if not domain or "*" in domain or "/" in domain or any(ch.isspace() for ch in domain):
            raise ValueError(f"invalid rule pattern {text!r}: write domain:example.com or domain:*.example.com")
        return CompiledPattern(text, tool, spec, tool_regex, None, None, domain, subdomains_only)
    if spec.endswith(":*"):
        # Claude Code's prefix syntax: `git push:*` is `git push` alone or followed by a space and
        # anything -- a word boundary, so `git:*` does not match `gitk`.
        glob = spec[:-2]
        broad = _glob(glob, _WILD) + r"(?:[ \t]" + _WILD + ")?"
        safe = _glob(glob, _WILD_SAFE) + r"(?:[ \t]" + _WILD_SAFE + ")?"
    else:
        glob = spec
        broad = _glob(glob, _WILD)
        safe = _glob(glob, _WILD_SAFE)
    literal = max(re.split(r"\*+", glob), key=len)
    prefix = glob.split("*", 1)[0]
    return CompiledPattern(text, tool, spec, tool_regex, broad, safe, literal=literal, prefix=prefix)


def parse_rule(
    text: str,
    effect: RuleEffect | str,
    agent: str | None = None,
    reason: str | None = None,
    source: str | None = None,
) -> Rule:
    """A validated :class:`Rule`; ``ValueError`` when the pattern or the effect is invalid."""
    try:
        kind = RuleEffect(effect)
    except ValueError:
        raise ValueError(f"invalid rule effect {effect!r}: use allow, ask or deny") from None
    compiled = compile_pattern(text)
    return Rule(pattern=compiled.text, effect=kind, agent=agent, reason=reason, source=source)


@lru_cache(maxsize=1024)
def _combine(sources: tuple[str, ...]) -> re.Pattern[str]:
    # Alternative k is capture group k: `match.lastindex` names the first rule (in order) that matched.
    return re.compile("|".join(f"({s})" for s in sources), re.DOTALL)


# --------------------------------------------------------------------------- call subject


def call_subject(args: Mapping[str, Any]) -> str:
    """The string a specifier is matched against (see the module docstring)."""
    return _subject(args)[0]


def _subject(args: Mapping[str, Any]) -> tuple[str, str]:
    for key in SUBJECT_KEYS:
        value = args.get(key)
        if isinstance(value, str):
            return value, key
    try:
        return json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str), ""
    except (TypeError, ValueError):  # keys of mixed types cannot be sorted
        return repr(args), ""


def url_host(url: object) -> str | None:
    """The lower-case host of a URL (scheme optional), or None when there is none."""
    if not isinstance(url, str):
        return None
    # Browsers drop tabs and newlines and read `\` as `/`: parse the URL the way it will be fetched.
    text = _URL_JUNK.sub("", url).strip().replace("\\", "/")
    if "://" not in text and not text.startswith("//"):
        text = "//" + text
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    return host.rstrip(".") or None if host else None


class _Call:
    """One call's arguments, with the views the matchers need computed on first use."""

    def __init__(self, args: Mapping[str, Any]) -> None:
        self.args = args

    @cached_property
    def _parts(self) -> tuple[str, str]:
        subject, kind = _subject(self.args)
        return (subject.strip() if kind == "command" else subject), kind

    @property
    def subject(self) -> str:
        return self._parts[0]

    @property
    def kind(self) -> str:
        return self._parts[1]

    @cached_property
    def broad(self) -> tuple[str, ...]:
        """What a deny or ask rule is tried against: the subject and each part or form of it."""
        subject, kind = self._parts
        if kind == "command" and _SHELL_SPLIT.search(subject):
            parts = (p.strip() for p in _SHELL_SPLIT.split(subject))
            return (subject, *dict.fromkeys(p for p in parts if p and p != subject))
        if kind in _PATH_KEYS and subject:
            norm = posixpath.normpath(subject.replace("\\", "/"))
            return (subject,) if norm == subject else (subject, norm)
        return (subject,)

    @cached_property
    def allow_subject(self) -> str | None:
        """What an allow rule is tried against; None when no allow rule may match."""
        subject, kind = self._parts
        if kind in _PATH_KEYS and ".." in subject.replace("\\", "/").split("/"):
            return None
        return subject

    @cached_property
    def host(self) -> str | None:
        return url_host(self.args.get("url"))


def _domain_matches(host: str, domain: str, subdomains_only: bool) -> bool:
    if host == domain:
        return not subdomains_only
    return host.endswith("." + domain)


class _GlobGroup:
    """Glob specifiers combined into one regex; alternative k is rule ``indexes[k]``."""

    __slots__ = ("indexes", "prefilter", "prefix", "regex", "safe_regex")

    def __init__(self, patterns: list[tuple[int, CompiledPattern]], allow: bool, prefiltered: bool) -> None:
        self.indexes = [index for index, _ in patterns]
        self.regex = _combine(tuple(p.spec_source or "" for _, p in patterns))
        self.safe_regex = _combine(tuple(p.spec_safe_source or "" for _, p in patterns)) if allow else self.regex
        literals = [p.literal for _, p in patterns]
        self.prefilter = _literals(tuple(literals)) if prefiltered and all(literals) else None
        self.prefix = _common_prefix([p.prefix for _, p in patterns])  # what every match starts with

    def first(self, subject: str, command: bool) -> int | None:
        if not subject.startswith(self.prefix):
            return None
        if self.prefilter is not None and self.prefilter.search(subject) is None:
            return None
        m = (self.safe_regex if command else self.regex).fullmatch(subject)
        if m is None or m.lastindex is None:
            return None
        return self.indexes[m.lastindex - 1]


def _common_prefix(texts: list[str]) -> str:
    low, high = min(texts), max(texts)  # the common prefix of all is that of the extremes
    size = 0
    while size < len(low) and low[size] == high[size]:
        size += 1
    return low[:size]


@lru_cache(maxsize=1024)
def _literals(literals: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(lit) for lit in sorted(set(literals))))


class _EffectMatcher:
    """All rules of one effect that apply to one (tool, agent), in their original order.

    Python's regex engine tries the alternatives of a combined regex one by one, so with hundreds of
    rules the work is split: specifiers that start with a literal are grouped by that first character
    (a subject only meets the group of its own first character), and specifiers that start with a
    wildcard are tried only when the subject contains the literal one of them requires.
    """

    __slots__ = ("allow", "any_index", "domains", "floating", "leading")

    def __init__(self, effect: RuleEffect, items: Iterable[tuple[int, CompiledPattern]]) -> None:
        self.allow = effect is RuleEffect.allow
        self.any_index: int | None = None
        by_lead: dict[str, list[tuple[int, CompiledPattern]]] = {}
        floating: list[tuple[int, CompiledPattern]] = []
        self.domains: list[tuple[int, str, bool]] = []
        for index, pat in items:
            if pat.domain is not None:
                self.domains.append((index, pat.domain, pat.subdomains_only))
            elif pat.spec_source is None:
                if self.any_index is None:
                    self.any_index = index
            elif pat.prefix:
                by_lead.setdefault(pat.prefix[0], []).append((index, pat))
            else:
                floating.append((index, pat))
        self.leading = {lead: _GlobGroup(group, self.allow, False) for lead, group in by_lead.items()}
        self.floating = _GlobGroup(floating, self.allow, True) if floating else None

    def first(self, call: _Call) -> int | None:
        """The index of the first rule that matches the call, or None."""
        best = self.any_index
        if best != 0 and (self.leading or self.floating is not None):
            if self.allow:
                subject = call.allow_subject
                subjects: tuple[str, ...] = () if subject is None else (subject,)
            else:
                subjects = call.broad
            command = call.kind == "command"
            floating = self.floating
            # The parts of a shell command are pieces of it: no required literal in the whole, none in a part.
            prefilter = floating.prefilter if floating is not None and command and subjects else None
            if prefilter is not None and prefilter.search(subjects[0]) is None:
                floating = None
            for subject in subjects:
                for group in (self.leading.get(subject[:1]), floating):
                    if group is None or (best is not None and best < group.indexes[0]):
                        continue
                    index = group.first(subject, command and self.allow)
                    if index is not None and (best is None or index < best):
                        best = index
        if self.domains and (best is None or best > self.domains[0][0]):
            host = call.host
            if host is not None:
                for index, domain, subdomains_only in self.domains:
                    if best is not None and index > best:
                        break
                    if _domain_matches(host, domain, subdomains_only):
                        best = index
                        break
        return best


def rule_matches(rule: Rule, tool: str, args: Mapping[str, Any], agent: str | None = None) -> bool:
    """Whether ``rule`` applies to this call (its agent scope, tool glob and specifier)."""
    if rule.agent is not None and rule.agent != agent:
        return False
    return compile_pattern(rule.pattern).matches(tool, args, rule.effect)


# --------------------------------------------------------------------------- the engine


def _rule_reason(lead: str, rule: Rule) -> str:
    text = f"{lead} `{rule.pattern}`"
    return f"{text}: {rule.reason}" if rule.reason else text


def _check_confidence(confidence: object) -> None:
    if confidence is None:
        return
    if isinstance(confidence, bool) or not isinstance(confidence, int) or not 0 <= confidence <= 100:
        raise ValueError(f"confidence must be a whole number from 0 to 100, got {confidence!r}")


_Matchers = tuple[_EffectMatcher | None, _EffectMatcher | None, _EffectMatcher | None]  # deny, ask, allow


class PolicyEngine:
    """Capabilities, rules and settings, precompiled; :meth:`decide` routes one call."""

    def __init__(
        self,
        capabilities: Iterable[Capability] = (),
        rules: Iterable[Rule] = (),
        settings: PolicySettings | None = None,
    ) -> None:
        self.settings = settings if settings is not None else PolicySettings()
        self._caps: dict[tuple[str, str | None], Capability] = {}
        for cap in capabilities:
            key = (cap.tool, cap.agent)
            if key in self._caps:
                scope = f" for agent {cap.agent!r}" if cap.agent else ""
                raise ValueError(f"duplicate capability for tool {cap.tool!r}{scope}")
            self._caps[key] = cap
        self._rules: list[tuple[Rule, CompiledPattern]] = []
        for rule in rules:
            try:
                self._rules.append((rule, compile_pattern(rule.pattern)))
            except ValueError as exc:
                source = f" (from {rule.source})" if rule.source else ""
                raise ValueError(f"{exc}{source}") from None
        self._matchers: dict[tuple[str, str | None], _Matchers] = {}

    @property
    def capabilities(self) -> list[Capability]:
        return list(self._caps.values())

    @property
    def rules(self) -> list[Rule]:
        return [rule for rule, _ in self._rules]

    def capability(self, tool: str, agent: str | None = None) -> Capability | None:
        """The capability that governs ``tool`` for ``agent``: the agent's own, else the agent's
        default (a capability for tool ``*`` scoped to that agent: how a restricted subagent gets
        "everything not listed is disabled"), else the unscoped one."""
        if agent is not None:
            cap = self._caps.get((tool, agent)) or self._caps.get(("*", agent))
            if cap is not None:
                return cap
        return self._caps.get((tool, None))

    def _matchers_for(self, tool: str, agent: str | None) -> _Matchers:
        key = (tool, agent)
        found = self._matchers.get(key)
        if found is None:
            grouped: dict[RuleEffect, list[tuple[int, CompiledPattern]]] = {e: [] for e in RuleEffect}
            for index, (rule, pat) in enumerate(self._rules):
                if (rule.agent is None or rule.agent == agent) and pat.matches_tool(tool):
                    grouped[rule.effect].append((index, pat))
            deny, ask, allow = (
                _EffectMatcher(e, grouped[e]) if grouped[e] else None
                for e in (RuleEffect.deny, RuleEffect.ask, RuleEffect.allow)
            )
            found = (deny, ask, allow)
            if len(self._matchers) >= _TOOL_CACHE_MAX:  # tool names come from agents: keep memory bounded
                self._matchers.clear()
            self._matchers[key] = found
        return found

    def decide(
        self,
        tool: str,
        args: Mapping[str, Any] | None = None,
        confidence: int | None = None,
        agent: str | None = None,
    ) -> Decision:
        """Route one call.  ``ValueError`` when ``confidence`` is not a whole number from 0 to 100."""
        _check_confidence(confidence)
        call = _Call(args if args is not None else {})
        cap = self.capability(tool, agent)
        stage = cap.stage if cap is not None else self.settings.unknown_stage
        facts: dict[str, Any] = {
            "stage": stage,
            "irreversible": cap.irreversible if cap is not None else False,
            "risk": cap.risk if cap is not None else Risk.medium,
            "timeout_s": (cap.timeout_s if cap is not None else None) or self.settings.default_timeout_s,
        }
        deny, ask, allow = self._matchers_for(tool, agent)

        if deny is not None and (index := deny.first(call)) is not None:
            rule = self._rules[index][0]
            return Decision(
                route=Route.blocked, reason=_rule_reason("denied by rule", rule), rule=rule.pattern, **facts
            )
        if stage is Stage.disabled:
            if cap is None:
                reason = f"tool {tool!r} is unknown (no capability) and unknown tools are disabled (stage: disabled)"
            else:
                reason = f"tool {tool!r} is disabled (stage: disabled)"
            return Decision(route=Route.blocked, reason=reason, **facts)

        rule_text: str | None = None
        if ask is not None and (index := ask.first(call)) is not None:
            rule = self._rules[index][0]
            route, reason, rule_text = Route.approval, _rule_reason("needs approval by rule", rule), rule.pattern
        elif allow is not None and (index := allow.first(call)) is not None:
            rule = self._rules[index][0]
            rule_text = rule.pattern
            if cap is not None and cap.always_approval:
                route = Route.approval
                allowed = _rule_reason("allowed by rule", rule)
                reason = f"{allowed}; but {tool!r} is marked always-approval, so it needs approval"
            else:
                route, reason = Route.autonomous, _rule_reason("allowed by rule", rule)
        elif cap is None:
            route = Route.autonomous if stage is Stage.autonomous else Route.approval
            reason = f"tool {tool!r} is unknown (no capability), so it gets the default stage: {stage.value}"
        elif stage is Stage.autonomous:
            route, reason = Route.autonomous, f"tool {tool!r} runs on its own (stage: autonomous)"
        else:
            route, reason = Route.approval, f"tool {tool!r} needs approval (stage: approval)"

        route, reason = self._refine(route, reason, confidence, cap)
        review_after = cap is not None and cap.review_after
        if route is Route.autonomous and review_after:
            route, reason = Route.review, f"{reason}; it runs now and is logged for review afterwards"
        return Decision(route=route, reason=reason, rule=rule_text, review_after=review_after, **facts)

    def _refine(self, route: Route, reason: str, confidence: int | None, cap: Capability | None) -> tuple[Route, str]:
        """Apply the confidence thresholds; this only ever tightens the route."""
        if confidence is None:
            if route is Route.autonomous and cap is not None and cap.confidence_routed:
                return (
                    Route.approval,
                    f"confidence-routed tool called without a confidence, so it needs approval; {reason}",
                )
            return route, reason
        own = cap is not None and cap.thresholds is not None
        limits = cap.thresholds if cap is not None and cap.thresholds is not None else self.settings.thresholds
        which = " (the tool's own threshold)" if own else ""
        if confidence < limits.approval:
            return (
                Route.escalate,
                f"confidence {confidence} below {limits.approval}{which}: a human takes over; {reason}",
            )
        if route is Route.autonomous:
            if confidence < limits.autonomous:
                return (
                    Route.approval,
                    f"confidence {confidence} below {limits.autonomous}{which}: needs approval; {reason}",
                )
            return route, f"{reason}; confidence {confidence} meets {limits.autonomous}{which}"
        return route, reason


def decide(
    tool: str,
    args: Mapping[str, Any] | None,
    confidence: int | None,
    capabilities: Iterable[Capability],
    rules: Iterable[Rule],
    settings: PolicySettings | None = None,
    agent: str | None = None,
) -> Decision:
    """One-off :meth:`PolicyEngine.decide`; build a :class:`PolicyEngine` to decide many calls."""
    return PolicyEngine(capabilities, rules, settings).decide(tool, args, confidence, agent)


# --------------------------------------------------------------------------- stage changes


def check_stage_change(cap: Capability | None, to: Stage | str, force: bool = False) -> None:
    """Raise :class:`Conflict` when the change needs ``--force`` (always-approval tool to autonomous)."""
    target = Stage(to)
    if cap is not None and cap.always_approval and target is Stage.autonomous and not force:
        raise Conflict(
            f"{cap.tool!r} is marked always-approval; promoting it to autonomous needs --force, which is audited",
            tool=cap.tool,
            to_stage=target.value,
        )


def promote_target(stage: Stage | str) -> Stage:
    """One step up: disabled → approval → autonomous."""
    current = Stage(stage)
    at = STAGE_ORDER.index(current)
    if at == len(STAGE_ORDER) - 1:
        raise Conflict("already autonomous; there is no stage above it", stage=current.value)
    return STAGE_ORDER[at + 1]


def demote_target(stage: Stage | str) -> Stage:
    """One step down: autonomous → approval → disabled."""
    current = Stage(stage)
    at = STAGE_ORDER.index(current)
    if at == 0:
        raise Conflict("already disabled; there is no stage below it", stage=current.value)
    return STAGE_ORDER[at - 1]
