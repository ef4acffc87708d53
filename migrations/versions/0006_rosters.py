"""Rosters: uploads of many trips scored in the background, and the outcome of each trip.

Revision ID: 0006_rosters
Revises: 0005_webhooks
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_rosters"
down_revision: str | None = "0005_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rosters",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("format", sa.String(length=4), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("invalid", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("failure", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_rosters_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rosters")),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name=op.f("uq_rosters_tenant_id_idempotency_key")),
    )
    op.create_index("ix_rosters_state", "rosters", ["state", "created_at"])
    op.create_index(op.f("ix_rosters_tenant_id"), "rosters", ["tenant_id"])
    op.create_table(
        "roster_items",
        sa.Column("roster_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("assessment_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("band", sa.String(length=20), nullable=True),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("top_factors", sa.JSON(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["assessment_id"], ["assessments.id"], name=op.f("fk_roster_items_assessment_id_assessments")
        ),
        sa.ForeignKeyConstraint(["roster_id"], ["rosters.id"], name=op.f("fk_roster_items_roster_id_rosters")),
        sa.PrimaryKeyConstraint("roster_id", "position", name=op.f("pk_roster_items")),
    )


def downgrade() -> None:
    op.drop_table("roster_items")
    op.drop_index(op.f("ix_rosters_tenant_id"), table_name="rosters")
    op.drop_index("ix_rosters_state", table_name="rosters")
    op.drop_table("rosters")
