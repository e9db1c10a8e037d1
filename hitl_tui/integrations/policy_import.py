"""What the policy importers (Claude Code settings, Gemini CLI policy TOML) have in common: a result
that says what was translated, what was not and why, and the merge into the existing rules."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..models import Rule


@dataclass(frozen=True)
class ImportIssue:
    """One entry of the source file, and what happened to it."""

    entry: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"entry": self.entry, "reason": self.reason}


@dataclass
class ImportResult:
    path: Path
    source: str  # stored in Rule.source: re-importing the same file replaces these rules
    rules: list[Rule] = field(default_factory=list)
    skipped: list[ImportIssue] = field(default_factory=list)  # not translated at all
    notes: list[ImportIssue] = field(default_factory=list)  # translated, with a difference worth knowing

    def skip(self, entry: str, reason: str) -> None:
        self.skipped.append(ImportIssue(entry, reason))

    def note(self, entry: str, reason: str) -> None:
        self.notes.append(ImportIssue(entry, reason))

    def add(self, rule: Rule) -> None:
        if not any(r.pattern == rule.pattern and r.effect == rule.effect and r.agent == rule.agent for r in self.rules):
            self.rules.append(rule)


def merge_rules(existing: Iterable[Rule], imported: list[Rule], source: str) -> tuple[list[Rule], int]:
    """Existing rules minus those from ``source``, then the imported ones; and how many were replaced."""
    kept: list[Rule] = []
    replaced = 0
    for rule in existing:
        if rule.source == source:
            replaced += 1
        else:
            kept.append(rule)
    return kept + list(imported), replaced
