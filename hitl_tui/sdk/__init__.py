"""The agent-side SDK: the five HITL patterns over one backend.

``Gate`` (async) and ``SyncGate`` (for synchronous agents) route each tool call through the
policy; see :mod:`hitl_tui.sdk.gate`.
"""

from __future__ import annotations

from .digest import Digest, build_digest, parse_since, render
from .escalation import EscalationOutcome, EscalationResult, find_trigger
from .gate import Clearance, Gate, NotApproved
from .notify import Notification, Notifier, SmtpNotifier, WebhookNotifier, notifiers_from_settings
from .plan import ParsedPlan, PlannedAction, PlanReport, StepResult, parse_plan
from .redact import redact
from .sync import SyncGate

__all__ = [
    "Clearance",
    "Digest",
    "EscalationOutcome",
    "EscalationResult",
    "Gate",
    "NotApproved",
    "Notification",
    "Notifier",
    "ParsedPlan",
    "PlanReport",
    "PlannedAction",
    "SmtpNotifier",
    "StepResult",
    "SyncGate",
    "WebhookNotifier",
    "build_digest",
    "find_trigger",
    "notifiers_from_settings",
    "parse_plan",
    "parse_since",
    "redact",
    "render",
]
