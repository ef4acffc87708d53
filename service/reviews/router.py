"""POST/GET /v1/assessments/{id}/reviews and GET /v1/reviews (the review queue).

No route updates or deletes a review: PATCH, PUT and DELETE on these paths answer 405.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from starlette.responses import Response

from risk_rules.forms import Band
from risk_rules.values import IsoDate
from service.assessments import service as assessments
from service.assessments.router import read_idempotency_key
from service.auth import require
from service.bodies import JsonRoute
from service.db import get_session
from service.keys.models import Role
from service.keys.service import Principal
from service.problems import Conflict, found_or_404, invalid_cursor, openapi_responses
from service.reviews import service
from service.reviews.schemas import QueueItem, QueuePage, ReviewHistory, ReviewIn, ReviewOut
from service.reviews.states import OPEN, State

router = APIRouter(tags=["reviews"], route_class=JsonRoute)
log = logging.getLogger("travelrisk.reviews")

DbSession = Annotated[Session, Depends(get_session)]
Reader = Annotated[Principal, Depends(require(Role.requester, Role.reviewer, Role.admin))]
Reviewer = Annotated[Principal, Depends(require(Role.reviewer, Role.admin))]

IDEMPOTENCY_OPENAPI = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
            "description": "As for POST /v1/assessments: a retry with the same key and body returns the recorded"
            " decision (201, `Idempotent-Replayed: true`) instead of a second one; the same key with another body"
            " is a 409. Keys are scoped to the caller's tenant.",
        }
    ]
}


@router.post(
    "/v1/assessments/{assessment_id}/reviews",
    status_code=201,
    response_model=ReviewOut,
    summary="Record a review decision",
    responses=openapi_responses(401, 403, 404, 409, 422),
    openapi_extra=IDEMPOTENCY_OPENAPI,
)
def create_review(
    assessment_id: str, body: ReviewIn, principal: Reviewer, session: DbSession, request: Request, response: Response
) -> ReviewOut:
    """Records a decision on the revision you read. 409 when the assessment needs no review
    (`review-not-open`), is already decided, or was re-scored since (`stale-revision`, naming the current
    revision); 403 (`review-forbidden`) when you requested it, already approved it (a severe assessment
    under a two-approval policy needs another holder), escalated it, or your key has no holder. The decision
    is committed before the 201."""
    key = read_idempotency_key(request)
    # Take a connection before the write lock, never while holding it (see service.db.write_lock).
    session.connection()
    try:
        with request.app.state.write_lock:
            decided = service.decide(session, principal, assessment_id, body, key)
            if not decided.replayed:
                session.commit()
    except (IntegrityError, StaleDataError):
        session.rollback()
        if key is not None:
            existing = service.find_by_idempotency_key(session, principal.tenant_id, key)
            if existing is not None:
                decided = service.replay(existing, service.decision_hash(assessment_id[:64], body), key)
                return _created(decided, response)
        raise Conflict(
            "The assessment's review changed while you were deciding (another decision or a re-score); read it"
            " again and decide on what it says now.",
            kind="concurrent-change",
            title="Concurrent change",
        ) from None
    return _created(decided, response)


def _created(decided: service.Decided, response: Response) -> ReviewOut:
    review = decided.review
    response.headers["Location"] = f"/v1/assessments/{review.assessment_id}/reviews/{review.id}"
    if decided.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return ReviewOut.model_validate(service.review_document(review))


@router.get(
    "/v1/assessments/{assessment_id}/reviews",
    response_model=ReviewHistory,
    summary="Every review decision on an assessment, and its review-state history",
    responses=openapi_responses(401, 403, 404),
)
def list_reviews(assessment_id: str, principal: Reader, session: DbSession) -> ReviewHistory:
    """Decisions oldest first (holder, key id, time, revision, policy version, decision, rationale,
    conditions), and every change of the review state, with each re-score's reason. Never changed or
    deleted."""
    return ReviewHistory.model_validate(service.history(session, principal.tenant_id, assessment_id))


@router.get(
    "/v1/assessments/{assessment_id}/reviews/{review_id}",
    response_model=ReviewOut,
    summary="One review decision",
    responses=openapi_responses(401, 403, 404),
)
def get_review(assessment_id: str, review_id: str, principal: Reader, session: DbSession) -> ReviewOut:
    """One recorded decision on the tenant's assessment."""
    row = assessments.owned(session, principal.tenant_id, assessment_id)
    found = found_or_404(
        next((r for r in service.reviews_of(session, row.id) if r.id == review_id), None),
        f"Assessment '{row.id}' has no review '{review_id[:64]}'.",
    )
    return ReviewOut.model_validate(service.review_document(found))


@router.get(
    "/v1/reviews",
    response_model=QueuePage,
    summary="Your tenant's review queue, earliest departure first",
    responses=openapi_responses(401, 403, 422),
)
def review_queue(
    principal: Reviewer,
    session: DbSession,
    state: Annotated[
        list[State] | None,
        Query(
            description="Only these review states (repeat for several); default: the open ones (pending,"
            " awaiting_second_review, escalated)."
        ),
    ] = None,
    band: Annotated[Band | None, Query(description="Only this band.")] = None,
    destination: Annotated[
        str | None, Query(pattern="^[A-Z]{2}$", description="Only trips with a leg in this country (ISO code).")
    ] = None,
    depart_from: Annotated[IsoDate | None, Query(description="Only trips departing on or after this date.")] = None,
    depart_to: Annotated[IsoDate | None, Query(description="Only trips departing on or before this date.")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")] = None,
) -> QueuePage:
    """Assessments of your tenant in the given review states; filters combine with AND."""
    states = tuple(s.value for s in state) if state else tuple(sorted(s.value for s in OPEN))
    filters = service.QueueFilters(
        states=states,
        band=band.value if band else None,
        destination=destination,
        depart_from=depart_from,
        depart_to=depart_to,
    )
    try:
        rows, next_cursor = service.queue_page(session, principal.tenant_id, filters, limit, cursor)
    except service.InvalidCursor as exc:
        raise invalid_cursor(exc) from exc
    return QueuePage(items=[QueueItem.model_validate(service.queue_item(r)) for r in rows], next_cursor=next_cursor)
