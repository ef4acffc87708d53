"""`travelrisk db`: database migrations."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Database schema: apply and inspect migrations.", no_args_is_help=True)


@app.command()
def upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply Alembic migrations to TRAVELRISK_DATABASE_URL (default: ./travelrisk.db)."""
    from service.db import create_db_engine, current_revision, upgrade_database
    from service.settings import get_settings

    settings = get_settings()
    upgrade_database(settings.database_url, revision)
    engine = create_db_engine(settings)
    try:
        typer.echo(f"database at revision {current_revision(engine)}")
    finally:
        engine.dispose()


@app.command()
def current() -> None:
    """Print the database's revision and the newest one available."""
    from service.db import create_db_engine, current_revision, head_revision
    from service.settings import get_settings

    engine = create_db_engine(get_settings())
    try:
        typer.echo(f"database: {current_revision(engine) or 'not migrated'}; newest: {head_revision()}")
    finally:
        engine.dispose()
