"""Indexes for a million stored assessments.

The list's equality filters (traveller, band, status) get indexes that continue with the list's order
(created_at, id), so a page is read in order and the scan stops after a page whatever share of the rows
match. Trips overlapping a date window are found through `trip_span` (the trip's length class: it lasts
at most 2**trip_span days), which turns the two-sided overlap test into one bounded range of start dates
per class, and `created_period` (the 8-day period of creation), which lets the newest periods be read
first and the rest skipped once a page is full: `ix_assessments_tenant_trip_window`. Re-scoring walks
upcoming trips in (trip_end, id) order, one index range per batch: `ix_assessments_trip_end_id`. The
review queue's index also holds the band, so a page of the queue is found from the index alone.

Revision ID: 0007_scale_indexes
Revises: 0006_rosters
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_scale_indexes"
down_revision: str | None = "0006_rosters"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPLACED = {
    "ix_assessments_tenant_traveler": ["tenant_id", "traveler_reference"],
    "ix_assessments_tenant_band": ["tenant_id", "band"],
    "ix_assessments_tenant_status": ["tenant_id", "status"],
    "ix_assessments_tenant_trip": ["tenant_id", "trip_start", "trip_end"],
    "ix_assessments_trip_end": ["trip_end"],
    "ix_assessments_tenant_changed": ["tenant_id", "changed_at"],
    "ix_assessments_tenant_review": ["tenant_id", "review_state", "trip_start", "id"],
}
NEW = {
    "ix_assessments_tenant_traveler_created": ["tenant_id", "traveler_reference", "created_at", "id"],
    "ix_assessments_tenant_band_created": ["tenant_id", "band", "created_at", "id"],
    "ix_assessments_tenant_status_created": ["tenant_id", "status", "created_at", "id"],
    "ix_assessments_tenant_trip_window": [
        "tenant_id",
        "created_period",
        "trip_span",
        "trip_start",
        "trip_end",
        "created_at",
        "id",
        "band",
        "status",
    ],
    "ix_assessments_trip_end_id": ["trip_end", "id"],
    "ix_assessments_tenant_changed_created": ["tenant_id", "changed_at", "created_at", "id"],
    "ix_assessments_tenant_review_queue": ["tenant_id", "review_state", "trip_start", "id", "band"],
}
# The largest class: trips last at most 36,600 days (the largest `TRAVELRISK_TRIP_MAX_DAYS`) < 2**16.
LARGEST_SPAN = 16
PERIOD_DAYS = 8


def upgrade() -> None:
    bind = op.get_bind()
    # Existing rows get their class from their dates in one UPDATE; the default only serves that.
    op.add_column("assessments", sa.Column("trip_span", sa.SmallInteger(), nullable=False, server_default="0"))
    if bind.dialect.name == "postgresql":
        days_after_start = "(trip_end - trip_start)"
    else:
        days_after_start = "CAST(julianday(trip_end) - julianday(trip_start) AS INTEGER)"
    # (days - 1).bit_length(), as service.assessments.service.trip_span computes it for new rows.
    classes = " ".join(f"WHEN {days_after_start} < {2**k} THEN {k}" for k in range(LARGEST_SPAN + 1))
    op.execute(f"UPDATE assessments SET trip_span = CASE {classes} ELSE {LARGEST_SPAN} END")
    op.add_column("assessments", sa.Column("created_period", sa.Integer(), nullable=False, server_default="0"))
    # (days from 1970-01-01 to the creation day, in UTC) // 8, as service.assessments.service.created_period.
    if bind.dialect.name == "postgresql":
        days = "(CAST(created_at AS date) - DATE '1970-01-01')"
    else:
        days = "CAST(julianday(date(created_at)) - julianday('1970-01-01') AS INTEGER)"
    op.execute(f"UPDATE assessments SET created_period = {days} / {PERIOD_DAYS}")
    if bind.dialect.name == "postgresql":
        # Every insert names both. (SQLite keeps the defaults: dropping them would copy the whole table.)
        op.alter_column("assessments", "trip_span", server_default=None)
        op.alter_column("assessments", "created_period", server_default=None)
    # Plain CREATE/DROP INDEX (no table copy on SQLite): quick even with a million rows.
    for name, columns in NEW.items():
        op.create_index(name, "assessments", columns)
    for name in REPLACED:
        op.drop_index(name, table_name="assessments")


def downgrade() -> None:
    for name, columns in REPLACED.items():
        op.create_index(name, "assessments", columns)
    for name in NEW:
        op.drop_index(name, table_name="assessments")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later), once no index names the columns.
    op.drop_column("assessments", "created_period")
    op.drop_column("assessments", "trip_span")
