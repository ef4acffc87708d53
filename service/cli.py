"""The `travelrisk` command line.

Each command group lives in its own module under `service/commands/`; `register` assembles them. The
modules import the web, database and model stacks only inside the commands that use them, so that
`travelrisk --help` answers at once.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from service.commands import register
from service.commands.common import missing_module_message


class TravelriskCli(typer.Typer):
    """The CLI, which turns a missing optional package into one line saying what to install (exit 2)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ModuleNotFoundError as exc:
            message = missing_module_message(exc.name or "")
            if message is None:
                raise
            typer.echo(f"error: {message}", err=True)
            sys.exit(2)


app = TravelriskCli(
    name="travelrisk",
    help="Travel-risk scoring: detention and exit-ban risk for a planned trip, and why.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
