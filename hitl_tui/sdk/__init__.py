"""The agent-side SDK: the five HITL patterns over one backend.

``Gate`` (async) and ``SyncGate`` (for synchronous agents) route each tool call through the
policy; see :mod:`hitl_tui.sdk.gate`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Eager, and small: the submodule of the same name would otherwise shadow the function once imported.
from .redact import redact

if TYPE_CHECKING:
    from .digest import Digest, build_digest, parse_since, render
    from .escalation import EscalationOutcome, EscalationResult, find_trigger
    from .gate import Clearance, Gate, NotApproved
    from .notify import Notification, Notifier, SmtpNotifier, WebhookNotifier, notifiers_from_settings
    from .plan import ParsedPlan, PlannedAction, PlanReport, StepResult, parse_plan
    from .sync import SyncGate

# Exports load on first use (PEP 562): ``hitl hook`` imports one submodule per tool call and should
# not pay for the rest of the SDK.
_HOMES = {
    **dict.fromkeys(["Digest", "build_digest", "parse_since", "render"], "digest"),
    **dict.fromkeys(["EscalationOutcome", "EscalationResult", "find_trigger"], "escalation"),
    **dict.fromkeys(["Clearance", "Gate", "NotApproved"], "gate"),
    **dict.fromkeys(["Notification", "Notifier", "SmtpNotifier", "WebhookNotifier", "notifiers_from_settings"],
                    "notify"),
    **dict.fromkeys(["ParsedPlan", "PlannedAction", "PlanReport", "StepResult", "parse_plan"], "plan"),
    "SyncGate": "sync",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


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
