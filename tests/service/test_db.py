"""Each connection of the service's engine is configured for its database when it opens, and keeps that
configuration across transactions (whichever database the run uses: SQLite, or PostgreSQL in CI)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from service.db import create_db_engine


def test_connections_are_configured_for_their_database_and_stay_so(settings: Any) -> None:
    engine = create_db_engine(settings)
    try:
        for _ in range(2):  # the second checkout reuses the connection the first one's rollback returned
            with engine.connect() as connection:
                if engine.dialect.name == "sqlite":
                    assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
                    assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
                    assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
                else:
                    # Index-range queries are not worth the start-up of parallel workers.
                    workers = connection.execute(text("SHOW max_parallel_workers_per_gather")).scalar()
                    assert workers == "0"
                connection.rollback()
        assert engine.pool.checkedout() == 0
    finally:
        engine.dispose()
