"""Rosters (an upload of many trips, worked through in the background) and their per-trip outcomes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime


class Roster(Base):
    """One upload of trips and its progress.

    The upload is kept (compressed) until the roster is done, so a worker that dies part-way is replaced
    by one that resumes at `done`: every chunk of trips is committed together with its progress.
    """

    __tablename__ = "rosters"
    __table_args__ = (
        # An Idempotency-Key is scoped to its tenant; NULL keys (no header) never collide.
        UniqueConstraint("tenant_id", "idempotency_key"),
        # Workers look for unfinished rosters, oldest first.
        Index("ix_rosters_state", "state", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    # queued, running, done, failed
    state: Mapped[str] = mapped_column(String(10))
    # json or csv: how `payload` is read and how rows are numbered
    format: Mapped[str] = mapped_column(String(4))
    # Deferred: only a worker starting on the roster reads the upload, never a status poll.
    payload: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    invalid: Mapped[int] = mapped_column(Integer, default=0)
    # Trips scored so far by band, and out_of_scope.
    counts: Mapped[dict[str, int]] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # The lease: who works on the roster (a token per claim) and when it last showed progress.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    failure: Mapped[str | None] = mapped_column(String(500))


class RosterItem(Base):
    """The outcome of one trip of a roster: its assessment and what it scored, or why it was not valid."""

    __tablename__ = "roster_items"

    roster_id: Mapped[str] = mapped_column(ForeignKey("rosters.id"), primary_key=True)
    # 0-based position of the trip in the upload; the primary key keeps a trip from being stored twice.
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    reference: Mapped[str | None] = mapped_column(String(100))
    assessment_id: Mapped[str | None] = mapped_column(ForeignKey("assessments.id"))
    status: Mapped[str] = mapped_column(String(20))
    band: Mapped[str | None] = mapped_column(String(20))
    probability: Mapped[float | None] = mapped_column(Float)
    top_factors: Mapped[list[str]] = mapped_column(JSON)
    errors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
