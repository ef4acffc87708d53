"""Re-scoring jobs, and the revisions they add to assessments."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.compact import CompactJSON
from service.db import Base, UTCDateTime


class RescoringJob(Base):
    """A change to reference data whose upcoming assessments must be scored again.

    Written in the same transaction as the change, so a change is never acknowledged without its job;
    a worker claims it with a lease, and a job whose worker died is claimed again when the lease ends.
    """

    __tablename__ = "rescoring_jobs"
    __table_args__ = (Index("ix_rescoring_jobs_finished", "finished_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reason: Mapped[str] = mapped_column(String(500))
    record_type: Mapped[str] = mapped_column(String(30))
    record_id: Mapped[str] = mapped_column(String(64))
    # The union of the record's periods before and after the change: trips outside it are untouched.
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    examined: Mapped[int] = mapped_column(Integer, default=0)
    rescored: Mapped[int] = mapped_column(Integer, default=0)


class AssessmentRevision(Base):
    """A later scoring of a stored assessment; revision 1 is the assessment's original response."""

    __tablename__ = "assessment_revisions"
    __table_args__ = (
        UniqueConstraint("assessment_id", "revision"),
        # A job re-scores an assessment at most once, even if it is run again after a crash.
        UniqueConstraint("assessment_id", "job_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assessment_id: Mapped[str] = mapped_column(ForeignKey("assessments.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("rescoring_jobs.id"))
    reason: Mapped[str] = mapped_column(String(500))
    # A full response per re-scored trip: stored compactly as assessments' documents are (service/compact.py).
    response: Mapped[dict[str, Any]] = mapped_column(CompactJSON)
    model_version: Mapped[str] = mapped_column(String(100))
    rules_version: Mapped[str] = mapped_column(String(100))
    reference_data_version: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
