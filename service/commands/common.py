"""What the commands share: a migrated database session, failing with a message, and a missing optional
package said in one line.

Nothing here imports the web or database stack at module level: `travelrisk --help` and `travelrisk assess`
must not pay for SQLAlchemy, FastAPI or uvicorn. Each command imports what it needs when it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

DISTRIBUTION = "travelrisk"

# Import names of optional packages whose distribution is named otherwise.
_DISTRIBUTION_OF_MODULE = {"sklearn": "scikit-learn", "yaml": "pyyaml"}

# Our own packages: a missing module among them is a bug to show in full, not an install to suggest.
_OWN_PACKAGES = {"service", "models", "risk_rules", "migrations"}


@contextmanager
def command_session() -> Iterator[Session]:
    """A session on the configured database for one command, committed when the command succeeds."""
    from service.db import create_db_engine, create_session_factory, session_scope, upgrade_database
    from service.settings import get_settings

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


def _extras_providing(distribution: str) -> list[str]:
    """The extras of this project that install `distribution` (the test extra aside)."""
    import re
    from importlib import metadata

    try:
        requirements = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return []
    wanted = distribution.lower().replace("_", "-")
    extras = []
    for requirement in requirements:
        name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        marker = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", requirement)
        if name == wanted and marker and marker.group(1) != "test" and marker.group(1) not in extras:
            extras.append(marker.group(1))
    return extras


def missing_module_message(module: str) -> str | None:
    """One line saying what to install for a missing third-party module; None for one of our own modules."""
    top = module.split(".", 1)[0]
    if not top or top in _OWN_PACKAGES:
        return None
    distribution = _DISTRIBUTION_OF_MODULE.get(top, top)
    extras = _extras_providing(distribution)
    if extras:
        spec = f"{DISTRIBUTION}[{','.join(extras)}]"
        return (
            f"this command needs {distribution}, which is not installed: install the {extras[0]!r} extra,"
            f" e.g. `pip install '{spec}'` (from a clone: `.venv/bin/pip install -e '.[{','.join(extras)}]'`)"
        )
    return (
        f"the Python package {distribution!r} is missing: reinstall {DISTRIBUTION} with its dependencies"
        f" (from a clone: `.venv/bin/pip install -e .`)"
    )
