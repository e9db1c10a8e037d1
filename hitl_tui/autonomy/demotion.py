"""Automatic demotion: a flagged after-the-fact review takes its capability back to approval.

``demote_on_flag`` (``[autonomy]`` in the config) chooses: ``act`` demotes through
``backend.set_stage`` with the flag as the reason, which writes the capability's history and a
``capability.stage`` event (every console sees it and can notify its reviewer); ``suggest`` only
returns a demotion :class:`~hitl_tui.autonomy.suggestions.Suggestion`; ``off`` does nothing.

Idempotent: a flag on a capability that is not autonomous (already demoted) does nothing, and a
flag older than the capability's latest promotion to autonomous (a replayed event, a flag that was
dealt with before the re-promotion) does nothing either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Literal

from pydantic import ValidationError

from ..config import AutonomySettings, Settings
from ..errors import HitlError, NotFound
from ..models import Capability, Event, EventKind, ReviewItem, Stage, Verdict
from ..text import sanitise
from .suggestions import Suggestion, flag_sentence, promoted_at

__all__ = ["AUTO_DEMOTED", "DemoteMode", "auto_demotion_notice", "governing_capability", "on_review_flagged",
           "watch_flags"]

log = logging.getLogger(__name__)

DemoteMode = Literal["suggest", "act", "off"]
AUTO_ACTOR = "system"
AUTO_DEMOTED = "auto-demoted: "  # the reason prefix of an automatic demotion


def auto_demotion_notice(ev: Event) -> str | None:
    """The one-line, sanitised notice a console shows for an automatic demotion event, else None.

    ``rm@bot demoted to approval: review #12 flagged by alice: wrong file``
    """
    if ev.kind != EventKind.stage_changed:
        return None
    p = ev.payload
    reason = p.get("reason")
    if not isinstance(reason, str) or not reason.startswith(AUTO_DEMOTED) or not isinstance(p.get("tool"), str):
        return None
    agent = p.get("agent")
    target = p["tool"] + (f"@{agent}" if isinstance(agent, str) and agent else "")
    return sanitise(f"{target} demoted to {p.get('to')}: {reason[len(AUTO_DEMOTED):]}", oneline=True, limit=300)


async def governing_capability(backend: Any, tool: str, agent: str | None) -> Capability | None:
    """The capability the policy applies to ``tool`` for ``agent``: the agent's own, else the unscoped one."""
    if agent:
        with contextlib.suppress(NotFound):
            return await backend.get_capability(tool, agent)
    try:
        return await backend.get_capability(tool)
    except NotFound:
        return None


async def on_review_flagged(
    backend: Any, item: ReviewItem, mode: DemoteMode, *, actor: str = AUTO_ACTOR
) -> Suggestion | None:
    """Demote (``act``) or propose demoting (``suggest``) the autonomous capability of a flagged review.

    Returns the demotion (``applied`` true when it was made), or None when there is nothing to do.
    """
    if mode == "off" or item.verdict is not Verdict.flagged:
        return None
    cap = await governing_capability(backend, item.tool, item.agent)
    if cap is None or cap.stage is not Stage.autonomous:
        return None
    since = promoted_at(cap)
    if since is not None and item.reviewed_at is not None and item.reviewed_at < since:
        return None  # flagged before the latest promotion: already dealt with
    evidence = flag_sentence(item.id, item.reviewer, item.note)
    suggestion = Suggestion(
        kind="demote",
        tool=cap.tool,
        agent=cap.agent,
        from_stage=Stage.autonomous,
        to_stage=Stage.approval,
        evidence=evidence,
        window_days=0,
        review_id=item.id,
    )
    if mode == "suggest":
        return suggestion
    updated = await backend.set_stage(cap.tool, Stage.approval, actor, AUTO_DEMOTED + evidence, agent=cap.agent)
    if updated.stage is not Stage.approval:  # someone else changed it in between; leave it be
        return None
    return suggestion.model_copy(update={"applied": True})


def _mode(settings: Settings | AutonomySettings) -> DemoteMode:
    autonomy = settings.autonomy if isinstance(settings, Settings) else settings
    return autonomy.demote_on_flag


async def watch_flags(
    backend: Any,
    settings: Settings | AutonomySettings,
    stop: asyncio.Event,
    *,
    on_result: Callable[[Suggestion], Any] | None = None,
    after_seq: int | None = None,
    retry_s: float = 1.0,
    max_retry_s: float = 30.0,
) -> None:
    """Follow the change feed until ``stop`` is set; call :func:`on_review_flagged` for each flag.

    Starts after ``after_seq`` (default: the log's current end). ``on_result`` receives each
    demotion made or suggested. Store failures are logged and the feed resumed after ``retry_s``
    from the last event seen, so no flag is skipped (the wait doubles up to ``max_retry_s`` while the
    store stays down, and starts again at ``retry_s`` once an event arrives); a failed demotion
    (e.g. a reviewer token that may not change stages) is logged and the watch goes on.
    """
    mode = _mode(settings)
    if mode == "off":
        return
    last = after_seq
    delay = retry_s

    async def consume() -> None:
        nonlocal last, delay
        if last is None:
            last = await backend.last_seq()
        async for ev in backend.subscribe(last):
            last = ev.seq
            delay = retry_s
            if ev.kind != EventKind.review_marked or ev.payload.get("verdict") != Verdict.flagged.value:
                continue
            try:
                item = ReviewItem.model_validate(ev.payload)
            except ValidationError:
                log.warning("event %s: not a review item; ignored", ev.seq)
                continue
            try:
                result = await on_review_flagged(backend, item, mode)
            except HitlError as exc:
                log.warning("could not demote after review #%s was flagged: %s", item.id, exc.message)
                continue
            if result is not None and on_result is not None:
                out = on_result(result)
                if asyncio.iscoroutine(out):
                    await out

    stopper = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            task = asyncio.ensure_future(consume())
            done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if task not in done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                return
            exc = task.exception()
            if exc is not None and not isinstance(exc, HitlError | OSError):
                raise exc
            log.warning("flag watch lost the change feed (%s); retrying in %.1f s", exc or "it ended", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(stopper), delay)
            delay = min(max_retry_s, delay * 2)
    finally:
        stopper.cancel()
