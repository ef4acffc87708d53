"""Reference data in the database (with its revision log), loaded with the bundled set; assessment
revisions and re-scoring jobs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import sqlalchemy as sa
import yaml
from alembic import op
from sqlalchemy.orm import Session

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _record_table(name: str, key: str, extra: list[sa.Column]) -> None:
    op.create_table(
        name,
        sa.Column(key, sa.String(length=64 if key == "id" else 2), nullable=False),
        *extra,
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint(key, name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    def dated() -> list[sa.Column]:
        return [
            sa.Column("started_on", sa.Date(), nullable=False),
            sa.Column("ended_on", sa.Date(), nullable=True),
            sa.Column("created_at", sa.DateTime(), nullable=False),
        ]

    _record_table(
        "situations",
        "id",
        [
            sa.Column("home_country", sa.String(length=2), nullable=False),
            sa.Column("destination", sa.String(length=2), nullable=False),
            sa.Column("kind", sa.String(length=40), nullable=False),
            *dated(),
        ],
    )
    op.create_index("ix_situations_pair_start", "situations", ["home_country", "destination", "started_on"])
    _record_table(
        "employer_disputes",
        "id",
        [
            sa.Column("name", sa.String(length=300), nullable=False),
            sa.Column("destination", sa.String(length=2), nullable=False),
            sa.Column("kind", sa.String(length=40), nullable=False),
            *dated(),
        ],
    )
    op.create_index("ix_employer_disputes_destination_start", "employer_disputes", ["destination", "started_on"])
    _record_table("destination_profiles", "code", [])
    _record_table("third_country_profiles", "code", [])
    op.create_table(
        "reference_revisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("record_type", sa.String(length=30), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_revisions")),
        sa.UniqueConstraint(
            "record_type", "record_id", "revision", name=op.f("uq_reference_revisions_record_type_record_id_revision")
        ),
    )
    op.create_index("ix_reference_revisions_changed_at", "reference_revisions", ["changed_at"])
    op.create_table(
        "rescoring_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("record_type", sa.String(length=30), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("examined", sa.Integer(), nullable=False),
        sa.Column("rescored", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rescoring_jobs")),
    )
    op.create_index("ix_rescoring_jobs_finished", "rescoring_jobs", ["finished_at", "id"])
    op.create_table(
        "assessment_revisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("assessment_id", sa.String(length=36), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("rules_version", sa.String(length=100), nullable=False),
        sa.Column("reference_data_version", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assessment_id"], ["assessments.id"], name=op.f("fk_assessment_revisions_assessment_id_assessments")
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["rescoring_jobs.id"], name=op.f("fk_assessment_revisions_job_id_rescoring_jobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_revisions")),
        sa.UniqueConstraint("assessment_id", "revision", name=op.f("uq_assessment_revisions_assessment_id_revision")),
        sa.UniqueConstraint("assessment_id", "job_id", name=op.f("uq_assessment_revisions_assessment_id_job_id")),
    )
    op.create_index(op.f("ix_assessment_revisions_assessment_id"), "assessment_revisions", ["assessment_id"])
    with op.batch_alter_table("assessments") as batch:
        batch.add_column(sa.Column("current_revision", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("changed_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE assessments SET changed_at = created_at")
    with op.batch_alter_table("assessments") as batch:
        batch.alter_column("changed_at", existing_type=sa.DateTime(), nullable=False)
        batch.create_index("ix_assessments_tenant_changed", ["tenant_id", "changed_at"])
        batch.create_index("ix_assessments_trip_end", ["trip_end"])
    _load_bundled_reference_set()


def _load_bundled_reference_set() -> None:
    """Load the reference set shipped with the package, as the first revision of every record."""
    from risk_rules.reference import ReferenceSetIn
    from service.reference.store import load_reference_set

    path = resources.files("risk_rules") / "data" / "reference.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    session = Session(bind=op.get_bind())
    load_reference_set(session, ReferenceSetIn.model_validate(document), actor="bundled reference set")
    session.flush()


def downgrade() -> None:
    with op.batch_alter_table("assessments") as batch:
        batch.drop_index("ix_assessments_trip_end")
        batch.drop_index("ix_assessments_tenant_changed")
        batch.drop_column("changed_at")
        batch.drop_column("current_revision")
    op.drop_index(op.f("ix_assessment_revisions_assessment_id"), table_name="assessment_revisions")
    op.drop_table("assessment_revisions")
    op.drop_index("ix_rescoring_jobs_finished", table_name="rescoring_jobs")
    op.drop_table("rescoring_jobs")
    op.drop_index("ix_reference_revisions_changed_at", table_name="reference_revisions")
    op.drop_table("reference_revisions")
    op.drop_table("third_country_profiles")
    op.drop_table("destination_profiles")
    op.drop_index("ix_employer_disputes_destination_start", table_name="employer_disputes")
    op.drop_table("employer_disputes")
    op.drop_index("ix_situations_pair_start", table_name="situations")
    op.drop_table("situations")
