"""Re-scorings' responses stored compactly, as assessments' documents are since 0007b: Zstandard frames with
the shipped dictionary (`service/compact.py`) instead of JSON.

`assessment_revisions.response` becomes binary. A situation touching many upcoming trips writes one revision
per trip, each a full response, so these rows grow as fast as assessments do. Existing rows keep their JSON
text (as bytes), which is read as it is, so nothing is rewritten on upgrade; downgrading rewrites every
compressed response as JSON text first.

Revision ID: 0008_compact_revisions
Revises: 0007b_compact_documents
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import orjson
import sqlalchemy as sa
from alembic import op

revision: str = "0008_compact_revisions"
down_revision: str | None = "0007b_compact_documents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "assessment_revisions"
COLUMN = "response"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Rows unpacked per statement on downgrade: bounded memory however many re-scorings are stored.
_PAGE = 1000


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {TABLE} ALTER COLUMN {COLUMN} TYPE bytea USING convert_to({COLUMN}::text, 'UTF8')")
    else:
        # SQLite alters a column's type by copying the table; the copy casts each JSON text to a blob.
        with _sqlite_foreign_keys_off(), op.batch_alter_table(TABLE) as batch:
            batch.alter_column(COLUMN, existing_type=sa.JSON(), type_=sa.LargeBinary(), existing_nullable=False)


def downgrade() -> None:
    # Compressed responses are unpacked here (SQL cannot): every row becomes JSON again.
    from service.compact import unpack

    bind = op.get_bind()
    select = sa.text(f"SELECT id, {COLUMN} FROM {TABLE} WHERE id > :after ORDER BY id LIMIT {_PAGE}")
    update = sa.text(f"UPDATE {TABLE} SET {COLUMN} = :value WHERE id = :id")
    after = 0
    while rows := bind.execute(select, {"after": after}).all():
        for row_id, value in rows:
            if isinstance(value, (bytes, memoryview)) and bytes(value[:4]) == _ZSTD_MAGIC:
                bind.execute(update, {"id": row_id, "value": orjson.dumps(unpack(value))})
        after = rows[-1][0]
    if bind.dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {TABLE} ALTER COLUMN {COLUMN} TYPE json USING convert_from({COLUMN}, 'UTF8')::json")
    else:
        with _sqlite_foreign_keys_off(), op.batch_alter_table(TABLE) as batch:
            batch.alter_column(COLUMN, existing_type=sa.LargeBinary(), type_=sa.JSON(), existing_nullable=False)
        # The copy back does not cast (JSON has no affinity to cast to); the column held JSON text before.
        op.execute(f"UPDATE {TABLE} SET {COLUMN} = CAST({COLUMN} AS TEXT) WHERE typeof({COLUMN}) = 'blob'")


@contextmanager
def _sqlite_foreign_keys_off() -> Iterator[None]:
    # As in 0007b: the copy that replaces the table is not checked against `assessments` and
    # `rescoring_jobs` (the rows are copied unchanged). Outside a transaction only, as SQLite requires:
    # inside one (a fresh database migrated in one go) the table is still empty and nothing can fail.
    op.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        op.execute("PRAGMA foreign_keys = ON")
