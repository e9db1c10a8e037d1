"""Claude Code permission rules (``settings.json`` → ``permissions.allow / ask / deny``) as product rules.

The rule syntax is the same (``Tool`` or ``Tool(specifier)``) and so is the precedence (deny, then
ask, then allow, whatever the order in the file), so most rules are copied. The differences that
matter are translated:

* Path rules (``Read``, ``Edit``, ``Write``, ...) follow gitignore conventions in Claude Code and are
  matched against absolute paths: ``//abs`` is ``/abs``, ``~/x`` is the home folder, ``/x`` and
  ``./x`` (and ``x/y``) are relative to the project root, a bare name like ``.env`` or ``*.pem``
  matches at any depth. They become absolute globs.
* ``Edit(...)`` covers every file-editing tool in Claude Code: it is imported for ``Edit``,
  ``Write`` and ``MultiEdit``.
* ``Bash(ls *)`` also matches plain ``ls`` in Claude Code, and ``Bash(npm:*)`` means ``npm`` or
  ``npm <anything>`` (word boundary). For allow rules both become the two exact rules, so an allow
  never reaches further than it did in Claude Code; deny and ask rules keep the broader form.
* ``mcp__server`` (a whole MCP server) becomes ``mcp__server__*``.

Rules whose specifier is not about a command, path, URL or query (``Agent(Explore)``, MCP tools with
a specifier) are reported and skipped, as are settings with no counterpart (``defaultMode``, ...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from ..models import RuleEffect
from ..policy import parse_rule
from .policy_import import ImportResult

PATH_TOOLS = {
    "Read": ("Read",),
    "Edit": ("Edit", "Write", "MultiEdit"),
    "Write": ("Write",),
    "MultiEdit": ("MultiEdit",),
}
COMMAND_TOOLS = frozenset({"Bash", "PowerShell"})
VERBATIM_TOOLS = frozenset({"WebFetch", "WebSearch"})
EFFECTS = (RuleEffect.deny, RuleEffect.ask, RuleEffect.allow)
IGNORED_KEYS = {
    "defaultMode": "the default permission mode is Claude Code's; in hitl the stages decide",
    "additionalDirectories": "extra working directories are Claude Code's concern",
    "disableBypassPermissionsMode": "Claude Code setting without a hitl counterpart",
    "disableAutoMode": "Claude Code setting without a hitl counterpart",
}


def project_root_for(settings_path: Path) -> Path:
    """The folder holding ``.claude/`` when the file lives there, else the file's own folder."""
    folder = settings_path.resolve().parent
    return folder.parent if folder.name == ".claude" else folder


def load_permissions(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: the settings must be a JSON object")
    permissions = data.get("permissions")
    if permissions is None:
        raise InvalidInput(f'{path} has no "permissions" section')
    if not isinstance(permissions, dict):
        raise InvalidInput(f'{path}: "permissions" must be an object')
    for key in ("allow", "ask", "deny"):
        value = permissions.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidInput(f"{path}: permissions.{key} must be a list of strings")
    return permissions


def import_claude_settings(path: Path, *, root: Path | None = None, home: Path | None = None) -> ImportResult:
    """Translate the file's permission rules; :class:`InvalidInput` when the file itself is unusable."""
    permissions = load_permissions(path)
    result = ImportResult(path=path, source=f"claude:{path.resolve()}")
    base = (root or project_root_for(path)).resolve()
    home_dir = (home or Path.home()).resolve()
    for key, why in IGNORED_KEYS.items():
        if key in permissions:
            result.note(f"permissions.{key}", f"not imported: {why}")
    for key in permissions:
        if key not in IGNORED_KEYS and key not in ("allow", "ask", "deny"):
            result.note(f"permissions.{key}", "not imported: unknown permissions key")
    for effect in EFFECTS:
        for text in permissions.get(effect.value, []):
            _translate(text, effect, base, home_dir, result)
    return result


def _split(text: str) -> tuple[str, str | None]:
    text = text.strip()
    at = text.find("(")
    if at < 0 or not text.endswith(")"):
        return text, None
    return text[:at].strip(), text[at + 1 : -1].strip()


def _translate(text: str, effect: RuleEffect, root: Path, home: Path, result: ImportResult) -> None:
    entry = f"{effect.value}: {text}"
    tool, spec = _split(text)
    reason = f"Claude Code {effect.value} rule {text.strip()}"
    patterns: list[str] = []
    if spec is None or spec.strip("*") == "":
        if tool.startswith("mcp__") and tool.count("__") == 1 and "*" not in tool:
            patterns.append(f"{tool}__*")  # the whole server
        else:
            patterns.append(text.strip())
    elif tool in COMMAND_TOOLS:
        patterns += _command_patterns(tool, spec, effect)
    elif tool in PATH_TOOLS:
        path_glob = _path_glob(spec, root, home)
        if spec.startswith("~/"):
            result.note(entry, f"~ expanded to {home} (the home folder of the machine that imported it)")
        patterns += [f"{t}({path_glob})" for t in PATH_TOOLS[tool]]
        if tool == "Read":
            result.note(entry, "Claude Code also applies Read rules to Grep and Glob; hitl applies it to Read")
    elif tool in VERBATIM_TOOLS:
        patterns.append(text.strip())
    else:
        result.skip(
            entry,
            f"hitl matches a specifier against the call's command, file path, URL or query; "
            f"{tool}({spec}) names something else",
        )
        return
    try:
        rules = [parse_rule(p, effect, reason=reason, source=result.source) for p in patterns]
    except ValueError as exc:
        result.skip(entry, str(exc))
        return
    for rule in rules:
        result.add(rule)


def _command_patterns(tool: str, spec: str, effect: RuleEffect) -> list[str]:
    if effect is RuleEffect.allow:
        if spec.endswith(":*") and spec.count("*") == 1:  # `npm:*`: npm, or npm then a space and more
            prefix = spec[:-2].rstrip()
            return [f"{tool}({prefix})", f"{tool}({prefix} *)"]
        if spec.endswith(" *") and spec.count("*") == 1:  # `ls *` also matches plain `ls`
            return [f"{tool}({spec[:-2].rstrip()})", f"{tool}({spec})"]
        return [f"{tool}({spec})"]
    out = [f"{tool}({spec})"]
    if spec.endswith(" *") and spec.count("*") == 1:
        out.insert(0, f"{tool}({spec[:-2].rstrip()})")
    return out


def _path_glob(spec: str, root: Path, home: Path) -> str:
    """A gitignore-style Claude Code path specifier as an absolute glob."""
    if spec.endswith("/"):
        spec += "**"
    if spec.startswith("//"):
        return "/" + spec[2:].lstrip("/")
    if spec.startswith("~/"):
        return _join(home, spec[2:])
    if spec.startswith("/"):
        return _join(root, spec[1:])
    if spec.startswith("./"):
        return _join(root, spec[2:])
    if "/" not in spec:  # gitignore: a bare name matches at any depth
        return "*/" + spec
    return _join(root, spec)


def _join(base: Path, rest: str) -> str:
    prefix = base.as_posix().rstrip("/")
    return f"{prefix}/{rest}" if rest else prefix
