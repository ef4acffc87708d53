"""Assessment requests and responses stored compactly: Zstandard frames with a shared dictionary
(`service/compact.py`) instead of JSON.

The two columns of `assessments` become binary. Existing rows keep their JSON text (as bytes), which is
read as it is, so nothing is rewritten on upgrade; downgrading rewrites every compressed document as JSON
first. (Re-scorings' documents in `assessment_revisions` stay JSON.)

Revision ID: 0007b_compact_documents
Revises: 0007_scale_indexes
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import orjson
import sqlalchemy as sa
from alembic import op

revision: str = "0007b_compact_documents"
down_revision: str | None = "0007_scale_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("assessments", "request"), ("assessments", "response"))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column in COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE bytea USING convert_to({column}::text, 'UTF8')")
    else:
        # One copy of the table for both columns (SQLite alters a column's type by copying the table).
        with _sqlite_foreign_keys_off(), op.batch_alter_table("assessments") as batch:
            for _, column in COLUMNS:
                batch.alter_column(column, existing_type=sa.JSON(), type_=sa.LargeBinary(), existing_nullable=False)


def downgrade() -> None:
    # Compressed documents are unpacked here (SQL cannot): every row becomes JSON text again.
    from service.compact import unpack

    bind = op.get_bind()
    for table, column in COLUMNS:
        rows = bind.execute(sa.text(f"SELECT id, {column} FROM {table}")).all()
        update = sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id")
        for row_id, value in rows:
            if value is not None and bytes(value)[:1] != b"{":
                bind.execute(update, {"id": row_id, "value": orjson.dumps(unpack(value))})
    if bind.dialect.name == "postgresql":
        for table, column in COLUMNS:
            op.execute(
                f"ALTER TABLE {table} ALTER COLUMN {column} TYPE json USING convert_from({column}, 'UTF8')::json"
            )
    else:
        with _sqlite_foreign_keys_off(), op.batch_alter_table("assessments") as batch:
            for _, column in COLUMNS:
                batch.alter_column(column, existing_type=sa.LargeBinary(), type_=sa.JSON(), existing_nullable=False)


@contextmanager
def _sqlite_foreign_keys_off() -> Iterator[None]:
    # SQLite alters a table by copying it and dropping the original; dropping `assessments` while its
    # revisions refer to it fails the foreign-key check, so checks are off while the copy replaces it
    # (the rows are copied unchanged). Outside a transaction only, as SQLite requires: inside one (a
    # fresh database migrated in one go) the tables are still empty and nothing can fail.
    op.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        op.execute("PRAGMA foreign_keys = ON")
