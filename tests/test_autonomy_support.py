"""Helpers for the autonomy tests: write known histories into a real store with a fake clock.

(No tests here; the name keeps it among the files the autonomy work owns.)
"""

from __future__ import annotations

from typing import Any

from hitl_tui.models import (
    ApprovalRequest,
    Capability,
    DecisionIn,
    RequestCreate,
    ReviewCreate,
    ReviewItem,
    ReviewMark,
    Stage,
)

DAY = 86400


async def decide(
    store: Any,
    clock: Any,
    tool: str,
    decision: str = "approve",
    *,
    agent: str = "bot",
    after: float = 41,
    confidence: int | None = None,
    edited: dict[str, Any] | None = None,
    reviewer: str = "alice",
    reason: str | None = None,
) -> ApprovalRequest:
    """One request, decided ``after`` seconds later (the clock moves on by that much)."""
    req = await store.create_request(RequestCreate(agent=agent, tool=tool, confidence=confidence, args={"n": 1}))
    clock.advance(after)
    if decision == "deny":
        reason = reason or "no"
    return await store.decide(req.id, DecisionIn(decision=decision, reason=reason, edited_args=edited), reviewer)


async def expire(store: Any, clock: Any, tool: str, *, agent: str = "bot", confidence: int | None = None) -> None:
    await store.create_request(RequestCreate(agent=agent, tool=tool, confidence=confidence, timeout_s=60))
    clock.advance(61)
    assert len(await store.expire_due()) == 1


async def review(
    store: Any,
    clock: Any,
    tool: str,
    verdict: str = "ok",
    *,
    agent: str = "bot",
    reviewer: str = "alice",
    note: str | None = None,
) -> ReviewItem:
    item = await store.log_review(ReviewCreate(agent=agent, tool=tool, args={"n": 1}, result="done"))
    clock.advance(5)
    return await store.mark_review(item.id, ReviewMark(verdict=verdict, note=note), reviewer)


async def capability(store: Any, tool: str, stage: Stage = Stage.approval, **fields: Any) -> Capability:
    return await store.put_capability(Capability(tool=tool, stage=stage, **fields), "admin", "setup")


async def approvals(store: Any, clock: Any, tool: str, n: int, **kw: Any) -> None:
    for _ in range(n):
        await decide(store, clock, tool, **kw)
