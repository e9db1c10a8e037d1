"""Confidence plans: an agent rates each action it intends to take; the policy routes each one.

The seed asks a planning model for lines of the form ``ACTION | CONFIDENCE | REASON``.
:func:`parse_plan` reads them tolerantly (Markdown tables, bullets, headers, ``85%``) and reports
every line it could not read instead of guessing. The ACTION cell is a tool name, optionally
followed by a JSON object of arguments (``deploy {"env": "prod"}``); any other text after the tool
name becomes the request's summary.

Routing is not done here: :meth:`hitl_tui.sdk.Gate.plan` sends each action through the policy with
its confidence (>= 90 runs, >= 60 waits for approval, below escalates, by default).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

if TYPE_CHECKING:
    from ..models import Route
    from .gate import NotApproved

_BULLET = re.compile(r"^(?:[-*+\u2022]|\d{1,3}[.)])\s+")
_TOOL = re.compile(r"^([A-Za-z_][\w.:/-]*)\s*(.*)$", re.DOTALL)
_SEPARATOR_CELL = re.compile(r"^:?-{2,}:?$")
_CONFIDENCE = re.compile(r"^(\d{1,3}(?:\.\d+)?)\s*(?:%|/\s*100)?$")


class PlannedAction(BaseModel):
    """One step of a plan: which tool, with what, how sure the agent is and why."""

    model_config = ConfigDict(extra="forbid", defer_build=True)  # built on first use, not at import

    tool: Annotated[str, Field(min_length=1, max_length=200)]
    args: dict[str, Any] = Field(default_factory=dict)
    confidence: Annotated[int, Field(ge=0, le=100)]
    reason: str = ""
    summary: str | None = None
    line: int | None = None  # where it came from, when parsed from text

    @field_validator("args")
    @classmethod
    def _json_args(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(v, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"arguments must be a JSON object: {exc}") from None
        return v


@dataclass(frozen=True)
class PlanProblem:
    """A line of plan text that was not an action, and why."""

    line: int
    text: str
    why: str


@dataclass
class ParsedPlan:
    actions: list[PlannedAction] = field(default_factory=list)
    problems: list[PlanProblem] = field(default_factory=list)


def _clean_cell(cell: str) -> str:
    cell = cell.strip()
    for wrap in ("**", "__", "`"):
        if len(cell) >= 2 * len(wrap) and cell.startswith(wrap) and cell.endswith(wrap):
            cell = cell[len(wrap) : -len(wrap)].strip()
    return cell


def parse_confidence(text: str) -> int:
    """``85``, ``85%``, ``85/100`` or ``85.4`` (rounded) -> 85; ``ValueError`` otherwise."""
    m = _CONFIDENCE.match(_clean_cell(text))
    if m is None:
        raise ValueError(f"confidence {text.strip()!r} is not a number from 0 to 100")
    value = round(float(m.group(1)))
    if not 0 <= value <= 100:
        raise ValueError(f"confidence {value} is outside 0..100")
    return value


def _parse_action(cell: str) -> tuple[str, dict[str, Any], str | None]:
    m = _TOOL.match(_clean_cell(cell))
    if m is None:
        raise ValueError(f"action {cell.strip()!r} does not start with a tool name")
    tool, rest = m.group(1), m.group(2).strip()
    if rest.startswith("(") and rest.endswith(")"):
        rest = rest[1:-1].strip()
    if rest.startswith("{"):
        try:
            args = json.loads(rest)
        except json.JSONDecodeError as exc:
            raise ValueError(f"arguments of {tool!r} are not valid JSON: {exc.msg}") from None
        if not isinstance(args, dict):
            raise ValueError(f"arguments of {tool!r} must be a JSON object")
        return tool, args, None
    return tool, {}, rest or None


def _is_header(cells: list[str]) -> bool:
    first = _clean_cell(cells[0]).lower()
    second = _clean_cell(cells[1]).lower() if len(cells) > 1 else ""
    return first in {"action", "actions", "tool", "step"} and second.startswith(("confidence", "conf"))


def parse_plan(text: str) -> ParsedPlan:
    """Read ``ACTION | CONFIDENCE | REASON`` lines; skip blanks, headers, separators and fences."""
    plan = ParsedPlan()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("```"):
            continue
        line = _BULLET.sub("", line)
        if line.startswith("|"):
            line = line[1:]
        if line.endswith("|"):
            line = line[:-1]
        if "|" not in line:
            plan.problems.append(PlanProblem(number, raw, "not an ACTION | CONFIDENCE | REASON line"))
            continue
        cells = [c.strip() for c in line.split("|", 2)]
        if all(_SEPARATOR_CELL.match(c) for c in cells if c) or _is_header(cells):
            continue
        try:
            tool, args, summary = _parse_action(cells[0])
            confidence = parse_confidence(cells[1])
            reason = _clean_cell(cells[2]) if len(cells) > 2 else ""
            plan.actions.append(
                PlannedAction(tool=tool, args=args, confidence=confidence, reason=reason, summary=summary, line=number)
            )
        except (ValueError, ValidationError) as exc:
            why = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            plan.problems.append(PlanProblem(number, raw, why))
    return plan


ActionLike = PlannedAction | Mapping[str, Any] | tuple[Any, ...] | list[Any]


def coerce_action(item: ActionLike) -> PlannedAction:
    """A :class:`PlannedAction` from itself, a dict, or a tuple ``(tool, args, confidence[, reason])``."""
    if isinstance(item, PlannedAction):
        return item
    if isinstance(item, Mapping):
        return PlannedAction.model_validate(dict(item))
    if isinstance(item, tuple | list):
        if len(item) not in (3, 4):
            raise ValueError("a plan step tuple is (tool, args, confidence) or (tool, args, confidence, reason)")
        tool, args, confidence, *rest = item
        return PlannedAction(tool=tool, args=args or {}, confidence=confidence, reason=rest[0] if rest else "")
    raise TypeError(f"cannot read a plan step from {type(item).__name__}")


def coerce_plan(actions: str | ParsedPlan | Iterable[ActionLike]) -> ParsedPlan:
    if isinstance(actions, str):
        return parse_plan(actions)
    if isinstance(actions, ParsedPlan):
        return actions
    return ParsedPlan(actions=[coerce_action(a) for a in actions])


@dataclass
class StepResult:
    """What happened to one action: ``status`` is autonomous or approved when it ran."""

    action: PlannedAction
    status: str
    route: Route | None = None
    result: Any = None
    refusal: NotApproved | None = None

    @property
    def ran(self) -> bool:
        return self.refusal is None and self.status in ("autonomous", "approved")


@dataclass
class PlanReport:
    steps: list[StepResult] = field(default_factory=list)
    problems: list[PlanProblem] = field(default_factory=list)

    @property
    def ran(self) -> list[StepResult]:
        return [s for s in self.steps if s.ran]

    @property
    def refused(self) -> list[StepResult]:
        return [s for s in self.steps if not s.ran]

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": [
                {
                    "tool": s.action.tool,
                    "confidence": s.action.confidence,
                    "route": s.route.value if s.route is not None else None,
                    "status": s.status,
                    "reason": s.refusal.reason if s.refusal is not None else None,
                }
                for s in self.steps
            ],
            "problems": [{"line": p.line, "text": p.text, "why": p.why} for p in self.problems],
        }


@dataclass
class PlanStep:
    """One action the policy must clear: the tool to run and the ``check`` keywords to clear it with."""

    action: PlannedAction
    fn: Callable[..., Any]
    check_kwargs: dict[str, Any]


class PlanWalk:
    """The step loop shared by :meth:`Gate.plan` and :meth:`SyncGate.plan`.

    Iterating yields the steps to clear (missing tools and steps after a stop are recorded here);
    the caller clears each step its own way (awaited or not), then reports it with :meth:`refused`
    or :meth:`ran`. ``by_name(dispatch, tool, **args)`` adapts a single dispatch function.
    """

    def __init__(
        self,
        actions: str | ParsedPlan | Iterable[ActionLike],
        tools: Mapping[str, Callable[..., Any]] | Callable[[str, dict[str, Any]], Any],
        *,
        stop_on_refusal: bool,
        by_name: Callable[..., Any],
    ) -> None:
        self._parsed = coerce_plan(actions)
        self._tools = tools
        self._stop_on_refusal = stop_on_refusal
        self._by_name = by_name
        self._stopped = False
        self.report = PlanReport(problems=list(self._parsed.problems))

    def __iter__(self) -> Iterator[PlanStep]:
        from .gate import NotApproved

        for action in self._parsed.actions:
            if self._stopped:
                self.report.steps.append(StepResult(action, "skipped"))
                continue
            if isinstance(self._tools, Mapping):
                fn = self._tools.get(action.tool)
                if fn is None:
                    refusal = NotApproved(action.tool, "blocked", f"the agent has no tool named {action.tool!r}")
                    self.report.steps.append(StepResult(action, "blocked", None, None, refusal))
                    self._stopped = self._stop_on_refusal
                    continue
            else:
                fn = functools.partial(self._by_name, self._tools, action.tool)
            context = f"plan step (confidence {action.confidence}): {action.reason}" if action.reason else None
            kwargs = {"confidence": action.confidence, "summary": action.summary or action.reason or None,
                      "context": context}
            yield PlanStep(action, fn, kwargs)

    def refused(self, step: PlanStep, clearance: Any) -> bool:
        """Record a step the policy did not clear; False (and nothing recorded) when it may run."""
        if clearance.allowed:
            return False
        route = clearance.decision.route if clearance.decision is not None else None
        self.report.steps.append(StepResult(step.action, clearance.status, route, None, clearance.refusal()))
        self._stopped = self._stop_on_refusal
        return True

    def ran(self, step: PlanStep, clearance: Any, result: Any) -> None:
        route = clearance.decision.route if clearance.decision is not None else None
        self.report.steps.append(StepResult(step.action, clearance.status, route, result))
