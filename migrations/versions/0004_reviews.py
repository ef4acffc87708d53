"""Reviews: key holders, tenant review policies, review decisions and their state history; assessments
record who requested them, the policy version and their review state.

Revision ID: 0004_reviews
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_reviews"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("holder", sa.String(length=64), nullable=True))

    op.create_table(
        "review_policies",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("review_bands", sa.JSON(), nullable=False),
        sa.Column("severe_approvals", sa.Integer(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("changed_by_key", sa.String(length=32), nullable=False),
        sa.Column("changed_by_holder", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_review_policies_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "version", name=op.f("pk_review_policies")),
    )

    with op.batch_alter_table("assessments") as batch:
        batch.add_column(sa.Column("requested_by_key", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("requested_by_holder", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("policy_version", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("review_state", sa.String(length=30), server_default="not_required", nullable=False))
        batch.add_column(sa.Column("review_state_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("destinations", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("top_factor_id", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("top_factor_title", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("row_version", sa.Integer(), server_default="1", nullable=False))
        batch.create_index("ix_assessments_tenant_review", ["tenant_id", "review_state", "trip_start", "id"])
    _backfill_assessments()

    op.create_table(
        "assessment_reviews",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("assessment_id", sa.String(length=36), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=30), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("band", sa.String(length=20), nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("state_before", sa.String(length=30), nullable=False),
        sa.Column("state_after", sa.String(length=30), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["assessment_id"], ["assessments.id"], name=op.f("fk_assessment_reviews_assessment_id_assessments")
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_assessment_reviews_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_reviews")),
        sa.UniqueConstraint(
            "tenant_id", "idempotency_key", name=op.f("uq_assessment_reviews_tenant_id_idempotency_key")
        ),
    )
    op.create_index("ix_assessment_reviews_assessment", "assessment_reviews", ["assessment_id", "created_at", "id"])
    op.create_table(
        "review_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("assessment_id", sa.String(length=36), nullable=False),
        sa.Column("cause", sa.String(length=20), nullable=False),
        sa.Column("state_before", sa.String(length=30), nullable=False),
        sa.Column("state_after", sa.String(length=30), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("band", sa.String(length=20), nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=800), nullable=False),
        sa.Column("review_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assessment_id"], ["assessments.id"], name=op.f("fk_review_events_assessment_id_assessments")
        ),
        sa.ForeignKeyConstraint(
            ["review_id"], ["assessment_reviews.id"], name=op.f("fk_review_events_review_id_assessment_reviews")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_events")),
    )
    op.create_index("ix_review_events_assessment", "review_events", ["assessment_id", "id"])
    _forbid_changes(APPEND_ONLY)


# Decisions and their history are evidence: the database itself refuses to change or delete them, so that
# neither a bug nor a hand-written statement can rewrite what was decided.
APPEND_ONLY = ("assessment_reviews", "review_events")


def _forbid_changes(tables: Sequence[str]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION travelrisk_append_only() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN RAISE EXCEPTION '% is append-only: rows are never changed or deleted', TG_TABLE_NAME; END $$"
        )
        for table in tables:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION travelrisk_append_only()"
            )
        return
    for table in tables:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table}"
                f" BEGIN SELECT RAISE(ABORT, '{table} is append-only: rows are never changed or deleted'); END"
            )


def _backfill_assessments() -> None:
    """Stored assessments get their review state (as scored: pending or not required), destinations and
    top factor from their latest revision; who requested them is not known."""
    assessments = sa.table(
        "assessments",
        sa.column("id", sa.String),
        sa.column("request", sa.JSON),
        sa.column("response", sa.JSON),
        sa.column("current_revision", sa.Integer),
        sa.column("changed_at", sa.DateTime),
        sa.column("review_state", sa.String),
        sa.column("review_state_at", sa.DateTime),
        sa.column("destinations", sa.String),
        sa.column("top_factor_id", sa.String),
        sa.column("top_factor_title", sa.String),
    )
    revisions = sa.table(
        "assessment_revisions",
        sa.column("assessment_id", sa.String),
        sa.column("revision", sa.Integer),
        sa.column("response", sa.JSON),
    )
    connection = op.get_bind()
    latest = sa.select(revisions.c.response).where(
        revisions.c.assessment_id == assessments.c.id, revisions.c.revision == assessments.c.current_revision
    )
    rows = connection.execute(
        sa.select(
            assessments.c.id,
            assessments.c.request,
            assessments.c.response,
            assessments.c.changed_at,
            latest.scalar_subquery().label("latest"),
        )
    ).all()
    for assessment_id, request, response, changed_at, latest_response in rows:
        body = latest_response or response
        factors = body.get("factors") or []
        countries = list(dict.fromkeys(leg["country"] for leg in request["trip"]["legs"]))
        connection.execute(
            assessments.update()
            .where(assessments.c.id == assessment_id)
            .values(
                review_state=(body.get("review") or {}).get("state", "not_required"),
                review_state_at=changed_at,
                destinations=" ".join(countries),
                top_factor_id=factors[0]["id"] if factors else None,
                top_factor_title=factors[0]["title"][:300] if factors else None,
            )
        )


def downgrade() -> None:
    # Dropping the tables drops their triggers; the PostgreSQL trigger function goes with them.
    op.drop_index("ix_review_events_assessment", table_name="review_events")
    op.drop_table("review_events")
    op.drop_index("ix_assessment_reviews_assessment", table_name="assessment_reviews")
    op.drop_table("assessment_reviews")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS travelrisk_append_only()")
    with op.batch_alter_table("assessments") as batch:
        batch.drop_index("ix_assessments_tenant_review")
        for column in (
            "row_version",
            "top_factor_title",
            "top_factor_id",
            "destinations",
            "review_state_at",
            "review_state",
            "policy_version",
            "requested_by_holder",
            "requested_by_key",
        ):
            batch.drop_column(column)
    op.drop_table("review_policies")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("holder")
