"""`travelrisk serve`: run the HTTP service with uvicorn."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fastapi import FastAPI


def worker_app() -> FastAPI:
    """The application of one worker process (uvicorn's factory): armed to exit with its supervisor."""
    from service.app import create_app
    from service.supervision import exit_with_parent

    exit_with_parent()
    return create_app()


def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (0.0.0.0 for every interface); default TRAVELRISK_HOST, 127.0.0.1."),
    ] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="TCP port; default TRAVELRISK_PORT, 8000.")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Worker processes; default TRAVELRISK_WORKERS, 1.")
    ] = None,
) -> None:
    """Start the service: apply database migrations, load the model, serve HTTP.

    The database is TRAVELRISK_DATABASE_URL (default: the SQLite file ./travelrisk.db). With --workers N,
    the workers exit by themselves if this process dies, even by `kill -9`.
    """
    import uvicorn

    from service.db import upgrade_database
    from service.logs import configure_logging, uvicorn_log_config
    from service.settings import get_settings
    from service.supervision import SUPERVISOR_PID_ENV

    settings = get_settings()
    configure_logging(settings.log_level)
    if settings.apply_migrations:
        upgrade_database(settings.database_url)
    # Worker processes inherit the environment: this is how each learns which process is its supervisor.
    os.environ[SUPERVISOR_PID_ENV] = str(os.getpid())
    uvicorn.run(
        "service.commands.serve:worker_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        log_config=uvicorn_log_config(settings.log_level),
        access_log=False,
        # Our own problem responses and JSON logs replace uvicorn's defaults; the server header says nothing.
        server_header=False,
        timeout_graceful_shutdown=10,
        # A worker answers the supervisor's health checks from a thread while it imports and loads the model;
        # on a busy host that thread can be starved for more than uvicorn's 5 s default, and the worker would
        # be killed and restarted over and over before it ever serves.
        timeout_worker_healthcheck=30,
    )
