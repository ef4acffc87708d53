"""`travelrisk data`: load, export and import the reference data as one YAML or JSON file.

An import is checked as the API checks each record (ISO country codes, covered destinations, quotes found
word for word in their sources) and applied whole or not at all. Records are created or updated, each with
a revision; records absent from the file are left as they are. Every situation or employer dispute that
changes queues the re-scoring of the assessments it may touch, as a change through the API does.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from service.commands.common import command_session, fail

app = typer.Typer(help="Reference data: load, export and import the whole set as one file.", no_args_is_help=True)


def _sections() -> tuple[tuple[str, str], ...]:
    """The sections of the file and their record types, in the order records are written and counted."""
    from service.reference.models import DESTINATION, EMPLOYER_DISPUTE, SITUATION, THIRD_COUNTRY

    return (
        ("destinations", DESTINATION),
        ("third_countries", THIRD_COUNTRY),
        ("situations", SITUATION),
        ("employer_disputes", EMPLOYER_DISPUTE),
    )


def _actor(command: str, origin: str) -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name, as in some containers
        user = "unknown"
    return f"cli:data {command} file:{origin} user:{user}"[:200]


def _read(file: str) -> Any:
    """The document in `file` ('-': standard input): JSON for *.json, YAML (which includes JSON) otherwise."""
    import yaml

    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None
    try:
        return json.loads(text) if file.lower().endswith(".json") else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise fail(f"{file}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        raise fail(f"{file}: malformed YAML: {exc}") from None


def _apply(document: Any, origin: str, command: str) -> None:
    """Check the whole set, then write it in one transaction, or report every problem and write nothing."""
    from service.reference.checks import check_reference_set
    from service.reference.models import EMPLOYER_DISPUTE, SITUATION
    from service.reference.records import covered_destinations
    from service.reference.store import load_reference_set, reference_version
    from service.rescoring.service import enqueue_rescoring

    with command_session() as session:
        parsed, problems = check_reference_set(document, covered_destinations(session))
        if parsed is None:
            for problem in problems:
                typer.echo(f"{origin}: {problem}", err=True)
            count = len(problems)
            # Raising leaves the transaction uncommitted: nothing of the file is written.
            raise fail(f"{count} problem{'s' if count != 1 else ''} in {origin}; nothing was written")
        changes = load_reference_set(session, parsed, _actor(command, origin))
        for change in changes:
            if change.revision is not None and change.record_type in (SITUATION, EMPLOYER_DISPUTE):
                enqueue_rescoring(session, change)
        counts = Counter((c.record_type, c.action or "unchanged") for c in changes)
        session.flush()
        version = reference_version(session)
    for section, record_type in _sections():
        created, updated, unchanged = (counts[(record_type, a)] for a in ("created", "updated", "unchanged"))
        typer.echo(f"{section}: {created} created, {updated} updated, {unchanged} unchanged")
    typer.echo(f"reference data version: {version}")


@app.command()
def load(
    file: Annotated[
        str | None, typer.Argument(help="A YAML or JSON reference set ('-': stdin); the bundled set when left out.")
    ] = None,
) -> None:
    """Load the bundled reference set, or FILE, into the database, and print how many records were
    created, updated and unchanged. Checked as `data import` checks; each change is a revision."""
    from risk_rules.reference import bundled_reference_path

    path = file or str(bundled_reference_path())
    _apply(_read(path), file or "bundled reference set", "load")


@app.command("import")
def import_(
    file: Annotated[str, typer.Argument(help="A YAML or JSON reference set, as `data export` writes ('-': stdin).")],
) -> None:
    """Import a reference set: checked whole with the API's checks (schema, ISO country codes, covered
    destinations, quotes word for word in their sources); on any problem, print each with its record and
    field and write nothing. Otherwise create or update each record with a revision; records not in the
    file are left as they are."""
    _apply(_read(file), file, "import")


def _without_empty_citation_fields(node: Any, in_sources: bool = False) -> Any:
    """The document with the null fields of each citation left out (a quote has no url, a publication no
    quote), so that a reviewer reads only what is cited; an import restores them as null."""
    if isinstance(node, dict):
        if in_sources:
            return {k: v for k, v in node.items() if v is not None}
        return {k: _without_empty_citation_fields(v, k == "sources" or k.endswith("_sources")) for k, v in node.items()}
    if isinstance(node, list):
        return [_without_empty_citation_fields(item, in_sources) for item in node]
    return node


@app.command()
def export(
    file: Annotated[str, typer.Argument(help="Where to write: *.yaml, *.yml or *.json; '-' writes YAML to stdout.")],
) -> None:
    """Write the whole reference set as one file (in the bundled file's schema), for review or import."""
    import yaml

    from service.reference.store import export_reference_set, reference_version

    suffix = Path(file).suffix.lower() if file != "-" else ".yaml"
    if suffix not in (".yaml", ".yml", ".json"):
        raise fail(f"cannot tell the format of {file}: name it *.yaml, *.yml or *.json (or '-' for YAML on stdout)")
    with command_session() as session:
        document = _without_empty_citation_fields(export_reference_set(session))
        version = reference_version(session)
    if suffix == ".json":
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    else:
        header = f"# travelrisk reference data, version {version}. Import with `travelrisk data import FILE`.\n"
        text = header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)
    if file == "-":
        sys.stdout.write(text)
        return
    try:
        Path(file).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {file}: {exc.strerror}") from None
    counts = ", ".join(f"{len(document[section])} {section}" for section, _ in _sections())
    typer.echo(f"exported {counts} ({version}) to {file}", err=True)
