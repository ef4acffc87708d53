"""Command groups of the `travelrisk` CLI, one module each."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach every command group to the top-level CLI."""
    from service.commands import assess, data, db, keys, model, roster, serve

    app.command("assess")(assess.assess)
    app.add_typer(model.app, name="model")
    app.command("serve")(serve.serve)
    app.command("roster")(roster.roster)
    app.add_typer(db.app, name="db")
    app.add_typer(keys.app, name="keys")
    app.add_typer(data.app, name="data")
