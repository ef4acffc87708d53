"""`travelrisk roster FILE`: score a roster (CSV or a JSON array) in-process, or on a server with `--server`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from service.commands.common import fail

if TYPE_CHECKING:
    from rich.console import Console

    from service.rosters.schemas import RosterStatus


def roster(
    file: Annotated[Path, typer.Argument(help="The roster: *.csv (template columns) or a JSON array of requests.")],
    server: Annotated[
        str | None, typer.Option(help="Base URL of a travelrisk server; without it the roster runs in-process.")
    ] = None,
    key: Annotated[
        str | None, typer.Option(envvar="TRAVELRISK_KEY", help="API key for --server (requester or admin).")
    ] = None,
    tenant: Annotated[str, typer.Option(help="In-process only: the tenant the assessments are stored for.")] = "local",
    out: Annotated[
        Path | None, typer.Option(help="Write one result per trip here: *.csv as CSV, anything else JSON lines.")
    ] = None,
) -> None:
    """Score every trip of a roster with a progress bar, then print a summary by band and the first errors.

    In-process, the trips are stored as assessments in TRAVELRISK_DATABASE_URL (default ./travelrisk.db)."""
    from rich.console import Console

    console = Console(stderr=True)
    started = time.perf_counter()
    if server is not None:
        if not key:
            raise fail("--server needs --key (or TRAVELRISK_KEY)")
        status = _on_server(console, server, key, file, out)
    else:
        try:
            body = file.read_bytes()
        except OSError as exc:
            raise fail(f"cannot read {file}: {exc.strerror}") from None
        media_type = "text/csv" if file.suffix.lower() == ".csv" else "application/json"
        status = _in_process(console, body, media_type, tenant, out)
    _summary(console, status, time.perf_counter() - started)
    if status.state == "failed":
        raise typer.Exit(1)


def _progress(console: Console) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True
    )


def _on_server(console: Console, server: str, key: str, file: Path, out: Path | None) -> RosterStatus:
    from travelrisk_client import Client, TravelriskError

    try:
        with Client(server, key, timeout=120) as client:
            accepted = client.upload_roster_file(file)
            with _progress(console) as progress:
                task = progress.add_task("roster", total=accepted.total)
                status = client.wait_for_roster(
                    accepted.id, poll_interval=0.25, on_progress=lambda s: progress.update(task, completed=s.done)
                )
            if out is not None:
                if out.suffix.lower() == ".csv":
                    out.write_text(client.roster_results_csv(accepted.id), encoding="utf-8")
                else:
                    lines = [r.model_dump_json() for r in client.roster_results(accepted.id)]
                    out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None
    except TravelriskError as exc:
        raise fail(str(exc)) from None
    return status


def _in_process(console: Console, body: bytes, media_type: str, tenant: str, out: Path | None) -> RosterStatus:
    import orjson

    from service.assessments.router import trip_bounds
    from service.db import create_db_engine, create_session_factory, upgrade_database, write_lock
    from service.model.service import ScoringEngine
    from service.rosters import service
    from service.rosters.schemas import RosterStatus
    from service.settings import get_settings
    from service.tenants import service as tenants

    try:
        upload = service.parse_upload(body, media_type)
    except service.UploadRejected as exc:
        raise fail(f"the roster cannot be read: {exc}") from None
    settings = get_settings()
    upgrade_database(settings.database_url)
    engine = create_db_engine(settings)
    try:
        sessions = create_session_factory(engine)
        scoring = ScoringEngine(settings, sessions)
        if not scoring.load():
            raise fail(f"the model cannot be loaded: {scoring.failure}", code=1)
        with sessions() as session:
            try:
                owner = tenants.get_or_create(session, tenant)
            except ValueError as exc:
                raise fail(f"--tenant: {exc}") from None
            roster = service.create(session, owner.id, upload, None)
            session.commit()
            roster_id = roster.id
        with _progress(console) as progress:
            task = progress.add_task("roster", total=upload.total)
            worker = service.RosterWorker(
                sessions,
                scoring,
                write_lock(engine),
                chunk_size=settings.roster_chunk_size,
                trip_bounds=lambda: trip_bounds(settings),
                on_progress=lambda _id, done, _total: progress.update(task, completed=done),
            )
            # Work on the roster until it is finished. A service's worker on the same database may claim it
            # first (then this follows its progress), and a chunk that failed is claimed again after a pause.
            while not _finished(sessions, roster_id, lambda done: progress.update(task, completed=done)):
                if not worker.run_once(roster_id):
                    time.sleep(0.25)
        with sessions() as session:
            stored = session.get_one(service.Roster, roster_id)
            status = RosterStatus.model_validate(service.status_body(session, stored))
            if out is not None:
                rows = service.result_rows(sessions, stored)
                if out.suffix.lower() == ".csv":
                    out.write_text("".join(service.csv_results(rows)), encoding="utf-8", newline="")
                else:
                    out.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    finally:
        engine.dispose()
    return status


def _finished(sessions: Any, roster_id: str, update: Any) -> bool:
    """Whether the roster is done or failed; reports its progress."""
    from service.rosters.models import Roster

    with sessions() as session:
        roster = session.get_one(Roster, roster_id)
        state, done = roster.state, roster.done
    update(done)
    return state in ("done", "failed")


def _summary(console: Console, status: RosterStatus, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"roster {status.state}", title_justify="left")
    table.add_column("outcome")
    table.add_column("trips", justify="right")
    for name, count in status.counts.model_dump().items():
        table.add_row(name, f"{count:,}")
    table.add_row("invalid", f"{status.invalid:,}")
    table.add_row("total", f"{status.done:,} of {status.total:,}", end_section=True)
    rate = status.done / seconds if seconds > 0 else 0.0
    table.caption = f"{status.id}\n{seconds:.1f} s, {rate:,.0f} trips/s"
    stdout = Console()
    stdout.print(table)
    if status.errors:
        errors = Table(title="errors" + (" (first 100 trips)" if status.errors_truncated else ""), title_justify="left")
        for column in ("row", "column", "field", "message"):
            errors.add_column(column)
        for error in status.errors[:20]:
            errors.add_row(str(error.row), error.column or "", error.field or "", error.message)
        stdout.print(errors)
    if status.failure:
        console.print(f"failed: {status.failure}")
