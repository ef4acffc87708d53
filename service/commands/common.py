"""What the commands share: a migrated database session, and failing with a message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy.orm import Session

from service.db import create_db_engine, create_session_factory, session_scope, upgrade_database
from service.settings import get_settings


@contextmanager
def command_session() -> Iterator[Session]:
    """A session on the configured database for one command, committed when the command succeeds."""
    settings = get_settings()
    # The embedded default should work before the first `serve`: bring the schema up to date first.
    upgrade_database(settings.database_url)
    engine = create_db_engine(settings)
    try:
        with session_scope(create_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: message` on stderr; raise the returned exit (status 2 for bad input)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)
