"""The migrations build exactly the schema the ORM models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from service.db import (
    alembic_config,
    create_db_engine,
    current_revision,
    downgrade_database,
    head_revision,
    metadata,
    upgrade_database,
)
from tests.service.conftest import make_settings


def diff(url: str) -> list[object]:
    engine = create_db_engine(make_settings(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata()))
    finally:
        engine.dispose()


def test_models_and_migrations_agree(database_url: str) -> None:
    assert current_revision(create_db_engine(make_settings(database_url))) == head_revision()
    assert diff(database_url) == []


def test_upgrade_downgrade_round_trip(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    upgrade_database(url)
    assert diff(url) == []
    downgrade_database(url, "base")
    engine = create_db_engine(make_settings(url))
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade_database(url)
    upgrade_database(url)  # idempotent at head
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_one_linear_history() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(scripts.get_heads()) == 1


def test_migrations_ship_with_the_package() -> None:
    # alembic.ini lives inside the migrations package, so an installed service finds it.
    ini = Path(alembic_config("sqlite://").config_file_name or "")
    assert ini.name == "alembic.ini" and ini.is_file()
    assert (ini.parent / "env.py").is_file()
