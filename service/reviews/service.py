"""Recording review decisions, the review history, re-opening on re-score, and the review queue.

Plain functions over a Session and a Principal, raising typed problems (service/problems.py): callable
from the API, the web pages or a command alike. Nothing here commits; the caller does, so that whatever is
added to a decision (an outgoing event, say) lands in the same transaction.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Select, and_, func, literal, or_, select
from sqlalchemy.orm import Session

from service.assessments.models import Assessment
from service.assessments.service import new_id, owned, request_hash, timestamp
from service.db import utcnow
from service.keys.service import Principal
from service.policy import service as policies
from service.problems import Conflict, ReviewForbidden, ReviewNotOpen, StaleRevision, invalid_input
from service.reviews.models import AssessmentReview, ReviewEvent
from service.reviews.schemas import ReviewIn
from service.reviews.states import DECIDED, OPEN, Decision, PriorDecision, State, after_rescore, next_state, refusal
from service.webhooks import service as webhooks

REOPENED = "reopened"


def _round(session: Session, assessment_id: str) -> int:
    reopened = session.scalar(
        select(func.count())
        .select_from(ReviewEvent)
        .where(ReviewEvent.assessment_id == assessment_id, ReviewEvent.cause == REOPENED)
    )
    return 1 + int(reopened or 0)


def _prior(session: Session, assessment_id: str, round_: int) -> list[PriorDecision]:
    rows = session.execute(
        select(AssessmentReview.holder, AssessmentReview.decision)
        .where(AssessmentReview.assessment_id == assessment_id, AssessmentReview.round == round_)
        .order_by(AssessmentReview.created_at, AssessmentReview.id)
    )
    return [PriorDecision(holder, Decision(decision)) for holder, decision in rows]


@dataclass(frozen=True, slots=True)
class Decided:
    """A recorded decision; `replayed` when an Idempotency-Key retry returned an earlier one."""

    review: AssessmentReview
    replayed: bool = False


def find_by_idempotency_key(session: Session, tenant_id: str, key: str) -> AssessmentReview | None:
    """The tenant's review recorded with this Idempotency-Key, if any."""
    return session.scalar(
        select(AssessmentReview).where(AssessmentReview.tenant_id == tenant_id, AssessmentReview.idempotency_key == key)
    )


def decision_hash(assessment_id: str, form: ReviewIn) -> str:
    """What an Idempotency-Key retry must repeat: the assessment and the decision's body."""
    return request_hash({"assessment_id": assessment_id, **form.model_dump(mode="json")})


def replay(existing: AssessmentReview, body_hash: str, key: str) -> Decided:
    """The earlier decision for a retried request; 409 when the key was used for another request."""
    if existing.request_hash != body_hash:
        raise Conflict(
            f"The Idempotency-Key '{key}' was already used with a different request; use a new key for a new decision.",
            kind="idempotency-key-reused",
            title="Idempotency-Key reused",
        )
    return Decided(existing, replayed=True)


def decide(
    session: Session,
    principal: Principal,
    assessment_id: str,
    form: ReviewIn,
    idempotency_key: str | None = None,
) -> Decided:
    """Record `principal`'s decision on the tenant's assessment and move its review state.

    This is the one place a decision is written (the review row, the state history and the assessment's
    state, in the caller's transaction). Raises: 404 (not the tenant's), 409 (`review-not-open`: no review
    is required or it is already decided; `stale-revision`: the assessment was re-scored since the revision
    read), 422 (a revision that does not exist), 403 (`review-forbidden`: no holder, the requester's own
    assessment, or a second decision by the same holder).
    """
    row = owned(session, principal.tenant_id, assessment_id)
    body_hash = decision_hash(row.id, form)
    if idempotency_key is not None:
        existing = find_by_idempotency_key(session, principal.tenant_id, idempotency_key)
        if existing is not None:
            return replay(existing, body_hash, idempotency_key)
    state = State(row.review_state)
    if state is State.not_required:
        raise ReviewNotOpen(
            f"Assessment '{row.id}' needs no review: its band ({row.band or 'none, out of scope'}) is not one your"
            f" tenant's policy (version {row.policy_version}) sends to review.",
            state.value,
        )
    if state in DECIDED:
        raise ReviewNotOpen(
            f"Assessment '{row.id}' is already decided ({state.value}); decisions are final until a re-score that"
            " raises its band re-opens the review.",
            state.value,
        )
    if form.revision > row.current_revision:
        raise invalid_input(
            [
                {
                    "loc": ("body", "revision"),
                    "msg": f"assessment '{row.id}' has no revision {form.revision}; the current revision is"
                    f" {row.current_revision}",
                }
            ]
        )
    if form.revision < row.current_revision:
        raise StaleRevision(row.id, form.revision, row.current_revision)
    round_ = _round(session, row.id)
    prior = _prior(session, row.id, round_)
    reason = refusal(state, principal.holder, principal.key_id, row.requested_by_holder, row.requested_by_key, prior)
    if reason is not None:
        raise ReviewForbidden(reason)
    assert principal.holder is not None  # refusal() refuses a key without a holder
    policy = policies.version(session, principal.tenant_id, row.policy_version) or policies.DEFAULT
    after = next_state(form.decision, principal.holder, policy.approvals_needed(row.band), prior)
    now = utcnow()
    review = AssessmentReview(
        id=new_id(),
        tenant_id=principal.tenant_id,
        assessment_id=row.id,
        round=round_,
        decision=form.decision.value,
        rationale=form.rationale,
        conditions=list(form.conditions),
        revision=row.current_revision,
        band=row.band,
        policy_version=row.policy_version,
        state_before=state.value,
        state_after=after.value,
        holder=principal.holder,
        key_id=principal.key_id,
        created_at=now,
        idempotency_key=idempotency_key,
        request_hash=body_hash,
    )
    session.add(review)
    session.add(
        ReviewEvent(
            assessment_id=row.id,
            cause="decision",
            state_before=state.value,
            state_after=after.value,
            revision=row.current_revision,
            band=row.band,
            policy_version=row.policy_version,
            note=f"{form.decision.value} by {principal.holder}",
            review_id=review.id,
            created_at=now,
        )
    )
    # An ORM update: the row's version is checked, so a concurrent decision or re-score fails this one.
    row.review_state = after.value
    row.review_state_at = now
    session.flush()
    # The webhook event is committed with the decision, or not at all.
    webhooks.emit(
        session,
        principal.tenant_id,
        "review.decided",
        {
            "assessment_id": row.id,
            "review_id": review.id,
            "decision": review.decision,
            "state": after.value,
            "revision": review.revision,
        },
    )
    return Decided(review)


def review_document(review: AssessmentReview) -> dict[str, Any]:
    """A decision as the API shows it (`ReviewOut`)."""
    return {
        "id": review.id,
        "assessment_id": review.assessment_id,
        "decision": review.decision,
        "rationale": review.rationale,
        "conditions": list(review.conditions),
        "revision": review.revision,
        "band": review.band,
        "policy_version": review.policy_version,
        "round": review.round,
        "state_before": review.state_before,
        "state_after": review.state_after,
        "holder": review.holder,
        "key_id": review.key_id,
        "created_at": timestamp(review.created_at),
    }


def reviews_of(session: Session, assessment_id: str) -> list[AssessmentReview]:
    """Every decision on an assessment, oldest first."""
    return list(
        session.scalars(
            select(AssessmentReview)
            .where(AssessmentReview.assessment_id == assessment_id)
            .order_by(AssessmentReview.created_at, AssessmentReview.id)
        )
    )


def history(session: Session, tenant_id: str, assessment_id: str) -> dict[str, Any]:
    """The tenant's assessment's decisions and review-state history, oldest first (`ReviewHistory`)."""
    row = owned(session, tenant_id, assessment_id)
    original = row.response
    score = original.get("score") or {}
    first_review = original.get("review") or {}
    events: list[dict[str, Any]] = [
        {
            "at": original["created_at"],
            "cause": "scored",
            "state_before": None,
            "state_after": first_review.get("state", "not_required"),
            "revision": 1,
            "band": score.get("band"),
            "policy_version": first_review.get("policy_version", 0),
            "note": "scored",
            "review_id": None,
        }
    ]
    for event in session.scalars(
        select(ReviewEvent).where(ReviewEvent.assessment_id == row.id).order_by(ReviewEvent.id)
    ):
        events.append(
            {
                "at": timestamp(event.created_at),
                "cause": event.cause,
                "state_before": event.state_before,
                "state_after": event.state_after,
                "revision": event.revision,
                "band": event.band,
                "policy_version": event.policy_version,
                "note": event.note,
                "review_id": event.review_id,
            }
        )
    return {
        "assessment_id": row.id,
        "state": row.review_state,
        "current_revision": row.current_revision,
        "requested_by": {"key_id": row.requested_by_key, "holder": row.requested_by_holder},
        "items": [review_document(r) for r in reviews_of(session, row.id)],
        "history": events,
    }


def on_rescore(
    session: Session,
    row: Assessment,
    old_band: str | None,
    policy: policies.Policy,
    reason: str,
    now: dt.datetime,
) -> None:
    """Move the review of a just re-scored assessment (its band, revision and policy version already
    updated): a raised band re-opens a decision, a lower or equal one keeps it; the history says which."""
    state = State(row.review_state)
    outcome = after_rescore(state, old_band, row.band, policy.requires_review(row.band), reason)
    if outcome.note is None:
        return
    session.add(
        ReviewEvent(
            assessment_id=row.id,
            cause=REOPENED if outcome.reopened else "rescored",
            state_before=state.value,
            state_after=outcome.state.value,
            revision=row.current_revision,
            band=row.band,
            policy_version=row.policy_version,
            note=outcome.note[:800],
            review_id=None,
            created_at=now,
        )
    )
    if outcome.state is not state:
        row.review_state = outcome.state.value
        row.review_state_at = now


# ---------------------------------------------------------------------------------------------
# The queue


class InvalidCursor(ValueError):
    """A cursor that this service did not issue."""


@dataclass(frozen=True, slots=True)
class QueueFilters:
    """Filters of GET /v1/reviews; None means "any"."""

    states: tuple[str, ...] = tuple(sorted(OPEN))
    band: str | None = None
    destination: str | None = None
    depart_from: dt.date | None = None
    depart_to: dt.date | None = None


def _encode_cursor(row: Assessment) -> str:
    raw = orjson.dumps([row.trip_start.isoformat(), row.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[dt.date, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        start, assessment_id = orjson.loads(raw)
        if not isinstance(assessment_id, str):
            raise ValueError
        return dt.date.fromisoformat(start), assessment_id
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise InvalidCursor("not a cursor issued by this service") from exc


def queue_page(
    session: Session, tenant_id: str, filters: QueueFilters, limit: int, cursor: str | None
) -> tuple[list[Assessment], str | None]:
    """One page of the tenant's review queue, earliest departure first, and the next page's cursor."""
    rows = list(session.scalars(queue_query(tenant_id, filters, limit, cursor)))
    if len(rows) > limit:
        return rows[:limit], _encode_cursor(rows[limit - 1])
    return rows, None


def queue_query(tenant_id: str, filters: QueueFilters, limit: int, cursor: str | None) -> Select[tuple[Assessment]]:
    """The query of one queue page: `limit` + 1 rows, to know whether another page follows.

    The page's ids are found first, from the queue's index alone (state, departure, id and band: open
    reviews are few, however many assessments a tenant has), then only those rows are read.
    """
    ids = (
        select(Assessment.id)
        .where(Assessment.tenant_id == tenant_id, Assessment.review_state.in_(filters.states))
        .order_by(Assessment.trip_start, Assessment.id)
        .limit(limit + 1)
        # SQLite's planner knows only average counts, and would rather read a band's whole history.
        .with_hint(Assessment, "INDEXED BY ix_assessments_tenant_review_queue", "sqlite")
    )
    if filters.band is not None:
        ids = ids.where(Assessment.band == filters.band)
    if filters.destination is not None:
        # Destinations are stored space-separated; padding both ends matches whole codes only.
        padded = literal(" ") + func.coalesce(Assessment.destinations, "") + literal(" ")
        ids = ids.where(padded.like(f"% {filters.destination} %"))
    if filters.depart_from is not None:
        ids = ids.where(Assessment.trip_start >= filters.depart_from)
    if filters.depart_to is not None:
        ids = ids.where(Assessment.trip_start <= filters.depart_to)
    if cursor is not None:
        start, last_id = _decode_cursor(cursor)
        ids = ids.where(
            or_(Assessment.trip_start > start, and_(Assessment.trip_start == start, Assessment.id > last_id))
        )
    page = ids.correlate(None)  # a query of its own, not of the outer query's row
    return select(Assessment).where(Assessment.id.in_(page)).order_by(Assessment.trip_start, Assessment.id)


def queue_item(row: Assessment) -> dict[str, Any]:
    """An assessment as a queue item (`QueueItem`)."""
    return {
        "assessment_id": row.id,
        "state": row.review_state,
        "revision": row.current_revision,
        "band": row.band,
        "probability": row.probability,
        "traveler_reference": row.traveler_reference,
        "destinations": (row.destinations or "").split(),
        "trip_start": row.trip_start,
        "trip_end": row.trip_end,
        "top_factor_id": row.top_factor_id,
        "top_factor_title": row.top_factor_title,
        "waiting_since": row.review_state_at,
    }
