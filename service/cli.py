"""The `travelrisk` command line.

Each command group lives in its own module under `service/commands/`; `register` assembles them.
"""

from __future__ import annotations

import typer

from service.commands import register

app = typer.Typer(
    name="travelrisk",
    help="Travel-risk scoring: detention and exit-ban risk for a planned trip, and why.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
