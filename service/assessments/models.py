"""The assessments table."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Index, Integer, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.compact import CompactJSON
from service.db import Base, UTCDateTime


class Assessment(Base):
    """One scored trip. `response` is the original scoring and is never changed; when reference data
    changes, re-scorings are added as `assessment_revisions` and `current_revision` / `changed_at` move."""

    __tablename__ = "assessments"
    __table_args__ = (
        # An Idempotency-Key is scoped to its tenant; NULL keys (no header) never collide.
        UniqueConstraint("tenant_id", "idempotency_key"),
        # The list endpoint always filters by tenant and pages by (created_at, id), newest first.
        Index("ix_assessments_tenant_created", "tenant_id", "created_at", "id"),
        # Equality filters with the list's order behind them: a page is read in order, whatever the share
        # of matching rows (a million stored assessments: see benchmarks/scale/README.md).
        Index("ix_assessments_tenant_traveler_created", "tenant_id", "traveler_reference", "created_at", "id"),
        Index("ix_assessments_tenant_band_created", "tenant_id", "band", "created_at", "id"),
        Index("ix_assessments_tenant_status_created", "tenant_id", "status", "created_at", "id"),
        # Trips overlapping a date window: per creation period, one range of start dates per length class,
        # read from the index alone (with the band and status filters and the list's order); see
        # `service.trip_window_ids`.
        Index(
            "ix_assessments_tenant_trip_window",
            "tenant_id",
            "created_period",
            "trip_span",
            "trip_start",
            "trip_end",
            "created_at",
            "id",
            "band",
            "status",
        ),
        # Assessments re-scored since a time, with their place in the list's order (`changed_since`).
        Index("ix_assessments_tenant_changed_created", "tenant_id", "changed_at", "created_at", "id"),
        # Re-scoring walks trips that have not ended yet in (trip_end, id) order, a batch at a time.
        Index("ix_assessments_trip_end_id", "trip_end", "id"),
        # The review queue: a tenant's assessments in a review state, earliest departure first.
        # (The band, so that a band's queue is also read from the index alone.)
        Index("ix_assessments_tenant_review_queue", "tenant_id", "review_state", "trip_start", "id", "band"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    traveler_reference: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    band: Mapped[str | None] = mapped_column(String(20))
    probability: Mapped[float | None] = mapped_column(Float)
    trip_start: Mapped[dt.date] = mapped_column(Date)
    trip_end: Mapped[dt.date] = mapped_column(Date)
    # The trip's length class: it lasts at most 2**trip_span days (`service.trip_span`).
    trip_span: Mapped[int] = mapped_column(SmallInteger)
    # The 8-day period the assessment was created in (`service.created_period`).
    created_period: Mapped[int] = mapped_column(Integer)
    # Stored compactly (compressed with a shipped dictionary): see service/compact.py.
    request: Mapped[dict[str, Any]] = mapped_column(CompactJSON())
    response: Mapped[dict[str, Any]] = mapped_column(CompactJSON())
    model_version: Mapped[str] = mapped_column(ForeignKey("model_versions.version"), index=True)
    rules_version: Mapped[str] = mapped_column(String(100))
    reference_data_version: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    current_revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # When the assessment was created or last re-scored (what `changed_since` filters on).
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Who asked for it: four-eyes rules keep this holder (or key) from reviewing it.
    requested_by_key: Mapped[str | None] = mapped_column(String(32))
    requested_by_holder: Mapped[str | None] = mapped_column(String(64))
    # The tenant policy version the current revision was judged under (0: the default policy).
    policy_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The review state (see service/reviews/states.py) and since when it holds ("waiting since").
    review_state: Mapped[str] = mapped_column(String(30), default="not_required", server_default="not_required")
    review_state_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The queue shows and filters these without reading the response document.
    destinations: Mapped[str | None] = mapped_column(String(200))
    top_factor_id: Mapped[str | None] = mapped_column(String(100))
    top_factor_title: Mapped[str | None] = mapped_column(String(300))
    # Optimistic concurrency: every ORM update checks and bumps it, so a review decision and a re-score
    # racing on one assessment cannot both apply to what they read.
    row_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": row_version}  # noqa: RUF012 - SQLAlchemy's declarative hook
