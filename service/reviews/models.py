"""The assessment_reviews and review_events tables. Both are append-only: rows are inserted, never
updated or deleted (no route or service function does either)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime


class AssessmentReview(Base):
    """One review decision on one revision of an assessment."""

    __tablename__ = "assessment_reviews"
    __table_args__ = (
        # An Idempotency-Key is scoped to its tenant, as for assessments; NULL keys never collide.
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_assessment_reviews_assessment", "assessment_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    assessment_id: Mapped[str] = mapped_column(ForeignKey("assessments.id"))
    # Re-opening starts a new round; four-eyes rules count the decisions of the current round only.
    round: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(30))
    rationale: Mapped[str] = mapped_column(Text)
    conditions: Mapped[list[str]] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(Integer)
    band: Mapped[str | None] = mapped_column(String(20))
    policy_version: Mapped[int] = mapped_column(Integer)
    state_before: Mapped[str] = mapped_column(String(30))
    state_after: Mapped[str] = mapped_column(String(30))
    holder: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))


class ReviewEvent(Base):
    """A change of an assessment's review state, or a re-score that kept it: the state history."""

    __tablename__ = "review_events"
    __table_args__ = (Index("ix_review_events_assessment", "assessment_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assessment_id: Mapped[str] = mapped_column(ForeignKey("assessments.id"))
    # "decision" (a review), "reopened" (a re-score re-opened it), "rescored" (a re-score changed or kept it).
    cause: Mapped[str] = mapped_column(String(20))
    state_before: Mapped[str] = mapped_column(String(30))
    state_after: Mapped[str] = mapped_column(String(30))
    revision: Mapped[int] = mapped_column(Integer)
    band: Mapped[str | None] = mapped_column(String(20))
    policy_version: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(800))
    review_id: Mapped[str | None] = mapped_column(ForeignKey("assessment_reviews.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
