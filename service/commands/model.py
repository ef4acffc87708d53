"""`travelrisk model ...`: fit, list and activate model versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Fit, list and activate model versions.", no_args_is_help=True)


@app.command("train")
def train(
    incidents: Annotated[
        Path | None,
        typer.Option(help="Incident file (YAML/JSON list in the corpus format); default: the bundled corpus."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the control population and the posterior draws.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Directory to write the artifact and card to; default: the model directory.")
    ] = None,
    activate: Annotated[bool, typer.Option("--activate", help="Make the new version the active model.")] = False,
    base_rate: Annotated[float | None, typer.Option(help="Per-trip base rate τ for the prior correction.")] = None,
    base_rate_source: Annotated[
        str | None, typer.Option(help="Where the base rate comes from (shown on the model card).")
    ] = None,
    draws: Annotated[int, typer.Option(min=10, help="Number of posterior draws stored for intervals.")] = 200,
) -> None:
    """Fit a model version; write its JSON artifact and model card (Markdown and JSON)."""
    from models.artifact import model_dir
    from models.training import DEFAULT_BASE_RATE, DEFAULT_BASE_RATE_PROVENANCE, train_model, write_model
    from risk_rules.errors import TravelriskError

    if base_rate is not None and not base_rate_source:
        typer.echo("error: --base-rate needs --base-rate-source saying where the figure comes from", err=True)
        raise typer.Exit(2)
    try:
        document, _, _ = train_model(
            incidents_path=incidents,
            seed=seed,
            base_rate=base_rate if base_rate is not None else DEFAULT_BASE_RATE,
            base_rate_provenance=base_rate_source or DEFAULT_BASE_RATE_PROVENANCE,
            draws=draws,
        )
    except (TravelriskError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    directory = out or model_dir()
    path = write_model(document, directory, make_active=activate)
    metrics = document["metrics"]
    lo, hi = metrics["roc_auc_interval_90"]
    typer.echo(
        f"model {document['version']}: {document['data']['incidents']} incidents, {document['data']['controls']}"
        f" control trips; leave-one-event-out ROC AUC {metrics['roc_auc']} [90%: {lo}, {hi}] (checklist of fired"
        f" factors {metrics['checklist_roc_auc']}), {100 * metrics['incidents_high_or_severe']:.0f}% of held-out"
        f" incidents high or severe; written to {path}" + ("; active" if activate else "")
    )
    for missed in metrics["targets_missed"]:
        typer.echo(f"target missed: {missed}")


@app.command("reproduce")
def reproduce(
    version: Annotated[
        str | None, typer.Argument(help="The model version to reproduce; default: the active one.")
    ] = None,
    validate: Annotated[
        bool, typer.Option("--validate/--no-validate", help="Also recompute both validation schemes.")
    ] = True,
) -> None:
    """Retrain a stored model version from the bundled inputs and compare: the same inputs must give the same
    version, and every number must agree within the stated tolerance. Exits 1 when it does not reproduce."""
    from models.artifact import active_version, load_artifact
    from models.training import reproduction_differences, train_model
    from risk_rules.errors import TravelriskError

    try:
        stored = load_artifact(version or active_version()).document
    except TravelriskError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    inputs = stored.get("inputs")
    if inputs is None:
        typer.echo(f"error: model {stored['version']} does not record its inputs (format {stored['format']})", err=True)
        raise typer.Exit(2)
    document, _, _ = train_model(
        seed=inputs["seed"],
        base_rate=inputs["base_rate"],
        draws=inputs["posterior_draws"],
        controls=inputs["controls"],
        exclude_events=frozenset(inputs["events_excluded"]),
        validate=validate and "validation" in stored,
    )
    differences = reproduction_differences(stored, document)
    if differences:
        for line in differences:
            typer.echo(f"differs: {line}")
        raise typer.Exit(1)
    typer.echo(f"model {stored['version']} reproduced within tolerance (version {document['version']})")


@app.command("list")
def list_models() -> None:
    """List model versions, marking the active one."""
    from models.artifact import active_version, list_versions
    from risk_rules.errors import TravelriskError

    try:
        active = active_version()
    except TravelriskError:
        active = None
    for version in list_versions():
        typer.echo(f"{'*' if version == active else ' '} {version}")


@app.command("activate")
def activate_model(version: str) -> None:
    """Make an existing model version the active one."""
    from models.artifact import activate, model_dir
    from risk_rules.errors import TravelriskError

    try:
        activate(version, model_dir())
    except TravelriskError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"active model: {version}")
