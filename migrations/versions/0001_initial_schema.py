"""Initial schema: tenants, API keys, model versions and assessments.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("name", name=op.f("uq_tenants_name")),
    )
    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("rules_version", sa.String(length=100), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("first_loaded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_model_versions")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_api_keys_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    op.create_index(op.f("ix_api_keys_tenant_id"), "api_keys", ["tenant_id"])
    op.create_table(
        "assessments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("traveler_reference", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("band", sa.String(length=20), nullable=True),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("trip_start", sa.Date(), nullable=False),
        sa.Column("trip_end", sa.Date(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("rules_version", sa.String(length=100), nullable=False),
        sa.Column("reference_data_version", sa.String(length=100), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version"], ["model_versions.version"], name=op.f("fk_assessments_model_version_model_versions")
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_assessments_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessments")),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name=op.f("uq_assessments_tenant_id_idempotency_key")),
    )
    op.create_index(op.f("ix_assessments_model_version"), "assessments", ["model_version"])
    op.create_index("ix_assessments_tenant_band", "assessments", ["tenant_id", "band"])
    op.create_index("ix_assessments_tenant_created", "assessments", ["tenant_id", "created_at", "id"])
    op.create_index("ix_assessments_tenant_status", "assessments", ["tenant_id", "status"])
    op.create_index("ix_assessments_tenant_traveler", "assessments", ["tenant_id", "traveler_reference"])
    op.create_index("ix_assessments_tenant_trip", "assessments", ["tenant_id", "trip_start", "trip_end"])


def downgrade() -> None:
    op.drop_table("assessments")
    op.drop_table("api_keys")
    op.drop_table("model_versions")
    op.drop_table("tenants")
