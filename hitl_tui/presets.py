"""Named starting policies: the seed article's scenario table and its staged-rollout table.

``get_preset(name)`` returns a deep copy, so a caller may edit it before storing it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .models import Capability, Risk, Rule, Stage

__all__ = ["PRESETS", "Preset", "get_preset"]


class Preset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    capabilities: list[Capability] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)


SEED = Preset(
    name="seed",
    description="The seed article's scenario table: which actions run alone, which wait for a human.",
    capabilities=[
        Capability(
            tool="deploy",
            stage=Stage.approval,
            description="Deploy a build to production; a human approves every deploy.",
            irreversible=True,
            risk=Risk.high,
        ),
        Capability(
            tool="format_code",
            stage=Stage.autonomous,
            description="Run the code formatter; harmless and easy to undo.",
            risk=Risk.low,
        ),
        Capability(
            tool="send_customer_email",
            stage=Stage.approval,
            description="Email a customer; a human reads it before it goes out.",
            risk=Risk.high,
        ),
        Capability(
            tool="read_logs",
            stage=Stage.autonomous,
            description="Read service logs; read-only.",
            risk=Risk.low,
        ),
        Capability(
            tool="db_migration",
            stage=Stage.approval,
            description="Run a database migration; approved first and reviewed after it ran.",
            review_after=True,
            irreversible=True,
            risk=Risk.critical,
        ),
        Capability(
            tool="create_github_issue",
            stage=Stage.autonomous,
            description="Open a GitHub issue; runs alone when the agent is confident, else asks.",
            confidence_routed=True,
            risk=Risk.medium,
        ),
        Capability(
            tool="delete_resource",
            stage=Stage.approval,
            description="Delete a cloud resource; always needs a human, even when promoted.",
            always_approval=True,
            irreversible=True,
            risk=Risk.critical,
        ),
    ],
)

ROLLOUT = Preset(
    name="rollout",
    description="The seed article's staged rollout: read and test alone, propose changes, gate the rest.",
    capabilities=[
        Capability(
            tool="read_file",
            stage=Stage.autonomous,
            description="Read a file in the workspace; read-only.",
            risk=Risk.low,
        ),
        Capability(
            tool="write_file",
            stage=Stage.autonomous,
            description="Write a file in the workspace; changes are reviewed in the pull request.",
            risk=Risk.medium,
        ),
        Capability(
            tool="run_tests",
            stage=Stage.autonomous,
            description="Run the test suite; no side effects outside the workspace.",
            risk=Risk.low,
        ),
        Capability(
            tool="create_pr",
            stage=Stage.approval,
            description="Open a pull request; a human approves before others are asked to review.",
            risk=Risk.medium,
        ),
        Capability(
            tool="deploy",
            stage=Stage.approval,
            description="Deploy to production; always needs a human, even when promoted.",
            always_approval=True,
            irreversible=True,
            risk=Risk.high,
        ),
        Capability(
            tool="delete_branch",
            stage=Stage.disabled,
            description="Delete a git branch; not enabled during the rollout.",
            irreversible=True,
            risk=Risk.high,
        ),
    ],
)

PRESETS: dict[str, Preset] = {"seed": SEED, "default": SEED, "rollout": ROLLOUT}


def get_preset(name: str) -> Preset:
    """A copy of the named preset; ``ValueError`` listing the names when there is no such preset."""
    try:
        preset = PRESETS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(sorted(PRESETS))}") from None
    return preset.model_copy(deep=True)
