"""Escalation flows: notice when an agent is stuck, and what came back from the human.

:func:`find_trigger` compares trigger phrases with agent text case-insensitively on *both* sides
(the seed lower-cases only the text, so its capitalised triggers can never match), ignoring runs of
whitespace and typographic apostrophes (``I’m`` matches ``I'm``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from ..models import Escalation, EscalationStatus, MessageRole

_SPACES = re.compile(r"\s+")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"'})


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return _SPACES.sub(" ", text).casefold().strip()


def find_trigger(text: str, triggers: Iterable[str]) -> str | None:
    """The first trigger phrase found in ``text`` (as configured), or None."""
    folded = _fold(text)
    for trigger in triggers:
        needle = _fold(trigger)
        if needle and needle in folded:
            return trigger
    return None


class EscalationOutcome(StrEnum):
    guidance = "guidance"  # a human replied: re-run with the reply
    taken_over = "taken_over"  # a human does the work: the agent stops
    resolved = "resolved"  # closed without more guidance
    timeout = "timeout"  # nobody answered in time
    error = "error"  # the backend failed: treat as "no guidance"
    posted = "posted"  # a follow-up was posted without waiting


@dataclass(frozen=True)
class EscalationResult:
    outcome: EscalationOutcome
    escalation_id: int | None = None
    reply: str | None = None  # the human's new message(s), for guidance
    reason: str | None = None  # why it ended that way (error text, timeout)
    escalation: Escalation | None = None

    @property
    def has_guidance(self) -> bool:
        return self.outcome is EscalationOutcome.guidance and bool(self.reply)

    def to_dict(self) -> dict[str, object]:
        return {
            "outcome": self.outcome.value,
            "escalation_id": self.escalation_id,
            "reply": self.reply,
            "reason": self.reason,
            "status": self.escalation.status.value if self.escalation is not None else None,
        }


def new_human_text(esc: Escalation, seen_messages: int) -> str | None:
    """The human messages after the first ``seen_messages`` of the thread, joined."""
    texts = [m.text for m in esc.messages[seen_messages:] if m.role is MessageRole.human]
    return "\n\n".join(texts) if texts else None


def outcome_of(esc: Escalation, seen_messages: int, timeout: float | None) -> EscalationResult:
    """Turn the thread as a wait left it into a result."""
    reply = new_human_text(esc, seen_messages)
    if esc.status is EscalationStatus.taken_over:
        return EscalationResult(EscalationOutcome.taken_over, esc.id, reply, "a human took over", esc)
    if esc.status is EscalationStatus.resolved:
        return EscalationResult(EscalationOutcome.resolved, esc.id, reply, "the escalation was resolved", esc)
    if reply is not None:
        return EscalationResult(EscalationOutcome.guidance, esc.id, reply, None, esc)
    waited = f" within {timeout:g}s" if timeout is not None else ""
    return EscalationResult(EscalationOutcome.timeout, esc.id, None, f"no human replied{waited}", esc)
