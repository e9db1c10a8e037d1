"""After-the-fact review: agents log what ran; reviewers mark it ok or flagged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from ...models import ReviewCreate, ReviewItem, ReviewMark, Verdict
from ..auth import ANY_ROLE, FILERS, STAFF, Caller
from ..deps import BackendDep
from ..schemas import MAX_ID, ReviewPage, check_id

router = APIRouter(prefix="/v1/reviews", tags=["review"])

ReviewId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.post("", response_model=ReviewItem, summary="Log an action for review")
async def log_review(body: ReviewCreate, ident: Caller, backend: BackendDep) -> ReviewItem:
    """An agent token logs under its own name, whatever ``agent`` says."""
    ident.require(*FILERS, action="logging a review item")
    check_id(body.request_id, "request_id")
    if ident.is_agent:
        body = body.model_copy(update={"agent": ident.name})
    return await backend.log_review(body)


@router.get("", response_model=ReviewPage, summary="List review items (unreviewed first)")
async def list_reviews(
    ident: Caller,
    backend: BackendDep,
    reviewed: bool | None = None,
    tool: Annotated[str | None, Query(max_length=200)] = None,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    verdict: Verdict | None = None,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ReviewPage:
    if ident.is_agent:
        if agent is not None:
            ident.require_own(agent, f"agent {agent!r}'s review items")
        agent = ident.name
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)  # a time without a zone is UTC, like every time on the wire
    page = await backend.list_reviews(
        reviewed, tool=tool, agent=agent, since=since, verdict=None if verdict is None else verdict.value,
        offset=offset, limit=limit,
    )
    return ReviewPage(items=page.items, total=page.total)


@router.get("/{review_id}", response_model=ReviewItem, summary="Read one review item")
async def get_review(review_id: ReviewId, ident: Caller, backend: BackendDep) -> ReviewItem:
    ident.require(*ANY_ROLE, action="reading a review item")
    item = await backend.get_review(review_id)
    ident.require_own(item.agent, f"review item {review_id}")
    return item


@router.post("/{review_id}/mark", response_model=ReviewItem, summary="Mark reviewed (the reviewer is the token's name)")
async def mark_review(review_id: ReviewId, body: ReviewMark, ident: Caller, backend: BackendDep) -> ReviewItem:
    ident.require(*STAFF, action="marking a review item")
    return await backend.mark_review(review_id, body, ident.name)
