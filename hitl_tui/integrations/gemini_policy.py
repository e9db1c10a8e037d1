"""Gemini CLI policy files (TOML ``[[rule]]`` tables) as product rules.

Gemini CLI rules (https://geminicli.com/docs/reference/policy-engine/) name a tool (``toolName``, a
string or a list; ``mcpName`` for MCP servers) and optionally constrain its arguments: with a regex
over the arguments as stable JSON (``argsPattern``), or, for ``run_shell_command``, with
``commandPrefix`` (whole words: ``git`` matches ``git`` and ``git status``, not ``gitk``) or
``commandRegex`` (a regex from the start of the command). ``decision`` is ``allow``, ``deny`` or
``ask_user``; the highest ``priority`` wins.

What translates:

* tool names as they are (MCP tools as ``mcp_<server>_<tool>``, ``mcp_<server>_*``, ``mcp_*``);
* ``commandPrefix`` exactly, as two rules (``Tool(git)`` and ``Tool(git *)``);
* ``commandRegex`` and ``argsPattern = '"command":"..."'`` (or another subject key: ``file_path``,
  ``path``, ``url``, ``query``, ``pattern``) when the regex is literal text, ``.*`` and groups of
  alternatives like ``(commit|push)``, which expand into one rule each;
* ``subagent`` becomes the rule's agent scope, ``denyMessage`` its reason, ``ask_user`` is ``ask``.

What does not, and is reported: other regexes (character classes, ``+``, ``?``, ``\\s``, anchors,
...), ``argsPattern`` over other keys, ``toolAnnotations``, and allow rules limited to some approval
modes or to (non-)interactive use (deny and ask rules so limited are imported for every mode, which
is stricter, with a note). Priorities are not: in this product deny beats ask beats allow whatever the
priority, so where a lower-priority deny or ask rule overlaps a higher-priority allow (or a deny a
higher-priority ask), a note says the outcome differs.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from ..models import RuleEffect
from ..policy import SUBJECT_KEYS, parse_rule
from .policy_import import ImportResult

SHELL_TOOL = "run_shell_command"
DECISIONS = {"allow": RuleEffect.allow, "deny": RuleEffect.deny, "ask_user": RuleEffect.ask}
STRICTNESS = {RuleEffect.allow: 0, RuleEffect.ask: 1, RuleEffect.deny: 2}
MAX_EXPANSION = 32  # rules one regex may expand into
KNOWN_KEYS = frozenset(
    {
        "toolName",
        "mcpName",
        "subagent",
        "argsPattern",
        "commandPrefix",
        "commandRegex",
        "decision",
        "priority",
        "denyMessage",
        "modes",
        "interactive",
        "allowRedirection",
        "toolAnnotations",
    }
)
_ARGS_SUBJECT = re.compile(r'^"(?P<key>[a-z_]+)":"(?P<rest>.*)$', re.DOTALL)


class Untranslatable(ValueError):
    """A regex that cannot be written as the product's globs."""


@dataclass
class _Imported:
    entry: str
    effect: RuleEffect
    priority: float
    tools: list[str]
    patterns: list[str]


def load_policy(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path} is not valid TOML: {exc}") from None
    rules = data.get("rule")
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise InvalidInput(f"{path} has no [[rule]] tables")
    return rules


def import_gemini_policy(path: Path) -> ImportResult:
    """Translate a Gemini CLI policy file; :class:`InvalidInput` when the file itself is unusable."""
    result = ImportResult(path=path, source=f"gemini:{path.resolve()}")
    imported: list[_Imported] = []
    for index, raw in enumerate(load_policy(path), start=1):
        item = _translate(index, raw, result)
        if item is not None:
            imported.append(item)
    _precedence_notes(imported, result)
    return result


def _entry(index: int, raw: dict[str, Any]) -> str:
    shown = {k: raw[k] for k in ("toolName", "mcpName", "commandPrefix", "commandRegex", "argsPattern", "decision")}
    text = json.dumps({k: v for k, v in shown.items() if v is not None}, ensure_ascii=False)
    return f"rule {index} {text}"


def _strings(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v for v in values):
        raise Untranslatable(f"{name} must be a non-empty string or a list of them")
    return values


def _translate(index: int, raw: dict[str, Any], result: ImportResult) -> _Imported | None:
    raw = {k: raw.get(k) for k in KNOWN_KEYS} | {k: v for k, v in raw.items() if k not in KNOWN_KEYS}
    entry = _entry(index, raw)
    unknown = sorted(k for k in raw if k not in KNOWN_KEYS)
    if unknown:
        result.skip(entry, f"unknown field(s) {', '.join(unknown)}")
        return None
    effect = DECISIONS.get(raw["decision"]) if isinstance(raw["decision"], str) else None
    if effect is None:
        result.skip(entry, f"decision must be allow, deny or ask_user, not {raw['decision']!r}")
        return None
    priority = raw["priority"] if raw["priority"] is not None else 0
    if isinstance(priority, bool) or not isinstance(priority, int | float):
        result.skip(entry, f"priority must be a number, not {priority!r}")
        return None
    if raw["toolAnnotations"] is not None:
        result.skip(entry, "toolAnnotations (matching on a tool's metadata hints) has no counterpart here")
        return None
    limited = [k for k in ("modes", "interactive") if raw[k] not in (None, [])]
    if limited:
        if effect is RuleEffect.allow:
            result.skip(entry, f"an allow rule limited by {' and '.join(limited)} would apply always here")
            return None
        result.note(entry, f"{' and '.join(limited)} ignored: the rule applies in every mode here (stricter)")
    if raw["allowRedirection"]:
        result.note(entry, "allowRedirection ignored: allow rules here never match shell redirections")
    try:
        tools = _tool_names(raw)
        specifiers = _specifiers(raw)
    except Untranslatable as exc:
        result.skip(entry, str(exc))
        return None
    agent = raw["subagent"] if isinstance(raw["subagent"], str) and raw["subagent"] else None
    deny_message = raw["denyMessage"] if isinstance(raw["denyMessage"], str) else None
    reason = deny_message or f"Gemini CLI {raw['decision']} rule (priority {priority})"
    patterns = [f"{tool}({spec})" if spec is not None else tool for tool in tools for spec in specifiers]
    try:
        rules = [parse_rule(p, effect, agent=agent, reason=reason, source=result.source) for p in patterns]
    except ValueError as exc:
        result.skip(entry, str(exc))
        return None
    for rule in rules:
        result.add(rule)
    return _Imported(entry, effect, float(priority), tools, patterns)


def _tool_names(raw: dict[str, Any]) -> list[str]:
    names = _strings(raw["toolName"], "toolName")
    server = raw["mcpName"]
    if server is not None:
        if not isinstance(server, str) or not server:
            raise Untranslatable("mcpName must be a non-empty string")
        if server == "*":
            return ["mcp_*"] if not names or names == ["*"] else [f"mcp_*_{n}" for n in names]
        return [f"mcp_{server}_{n}" for n in names] if names and names != ["*"] else [f"mcp_{server}_*"]
    if names:
        return names
    if raw["commandPrefix"] is not None or raw["commandRegex"] is not None:
        return [SHELL_TOOL]
    return ["*"]


def _specifiers(raw: dict[str, Any]) -> list[str | None]:
    prefix, regex, args = raw["commandPrefix"], raw["commandRegex"], raw["argsPattern"]
    if sum(x is not None for x in (prefix, regex, args)) > 1:
        raise Untranslatable("combines commandPrefix, commandRegex and argsPattern")
    if prefix is not None:
        out: list[str | None] = []
        for p in _strings(prefix, "commandPrefix"):
            if "*" in p:
                raise Untranslatable(f"commandPrefix {p!r} contains '*', which is a wildcard here")
            out += [p, f"{p} *"]
        return out
    if regex is not None:
        if not isinstance(regex, str) or not regex:
            raise Untranslatable("commandRegex must be a non-empty string")
        return list(regex_to_globs(regex))
    if args is not None:
        if not isinstance(args, str) or not args:
            raise Untranslatable("argsPattern must be a non-empty string")
        m = _ARGS_SUBJECT.match(args)
        if m is None or m.group("key") not in SUBJECT_KEYS:
            raise Untranslatable(
                f"argsPattern {args!r} is a regex over all the arguments; only patterns of the form "
                f'"<key>":"<text>" with key one of {", ".join(SUBJECT_KEYS)} translate'
            )
        return list(regex_to_globs(m.group("rest")))
    return [None]


# --------------------------------------------------------------------------- regex → globs


def regex_to_globs(regex: str) -> list[str]:
    """A regex applied from the start of a JSON string value, as the globs that match the same values.

    Understands literal text, escaped punctuation, ``.*``, a final ``"`` (the end of the value) and
    groups of literal alternatives; raises :class:`Untranslatable` for anything else.
    """
    pieces: list[list[str]] = []  # each piece: its alternatives
    i, n = 0, len(regex)
    anchored = False
    while i < n:
        ch = regex[i]
        if ch == '"':
            if i != n - 1:
                raise Untranslatable(f"regex {regex!r} reaches past the end of the argument's value")
            anchored = True
            i += 1
        elif ch == ".":
            if regex[i + 1 : i + 2] != "*" or regex[i + 2 : i + 3] in ("?", "+"):
                raise Untranslatable(f"regex {regex!r}: only '.*' is supported among wildcards")
            pieces.append(["*"])
            i += 2
        elif ch == "(":
            end = regex.find(")", i)
            if end < 0:
                raise Untranslatable(f"regex {regex!r}: unbalanced group")
            body = regex[i + 1 : end]
            if body.startswith("?:"):
                body = body[2:]
            if regex[end + 1 : end + 2] in ("*", "+", "?", "{"):
                raise Untranslatable(f"regex {regex!r}: repeated or optional groups have no glob form")
            pieces.append([_literal(alt, regex) for alt in body.split("|")])
            i = end + 1
        elif ch == "\\":
            nxt = regex[i + 1 : i + 2]
            if not nxt or nxt.isalnum() or nxt in ("\\", "*", '"'):
                raise Untranslatable(f"regex {regex!r}: the escape \\{nxt} has no glob form")
            pieces.append([nxt])
            i += 2
        elif ch in "^$|[]{}+?*)":
            raise Untranslatable(f"regex {regex!r}: {ch!r} has no glob form")
        else:
            pieces.append([ch])
            i += 1
    if not anchored:
        pieces.append(["*"])  # the regex matches a prefix of the value: anything may follow
    combos = 1
    for alts in pieces:
        combos *= len(alts)
    if combos > MAX_EXPANSION:
        raise Untranslatable(f"regex {regex!r} expands into {combos} rules (at most {MAX_EXPANSION})")
    globs = ["".join(parts) for parts in itertools.product(*pieces)]
    return [re.sub(r"\*+", "*", g) for g in dict.fromkeys(globs)]


def _literal(text: str, regex: str) -> str:
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and not text[i + 1].isalnum() and text[i + 1] not in ("\\", "*", '"'):
            out.append(text[i + 1])
            i += 2
            continue
        if ch in '\\.^$|[]{}()+?*"':
            raise Untranslatable(f"regex {regex!r}: only literal alternatives are supported inside a group")
        out.append(ch)
        i += 1
    return "".join(out)


# --------------------------------------------------------------------------- precedence


def _overlap(a: list[str], b: list[str]) -> bool:
    return any(x == y or fnmatch.fnmatchcase(x, y) or fnmatch.fnmatchcase(y, x) for x in a for y in b)


def _precedence_notes(items: list[_Imported], result: ImportResult) -> None:
    for strict in items:
        for loose in items:
            if STRICTNESS[strict.effect] <= STRICTNESS[loose.effect] or strict.priority >= loose.priority:
                continue
            if _overlap(strict.tools, loose.tools):
                result.note(
                    strict.entry,
                    f"here {strict.effect.value} beats {loose.effect.value} whatever the priority: it may now "
                    f"override the higher-priority {loose.entry}",
                )
