"""`travelrisk serve`: run the HTTP service with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from service.db import upgrade_database
from service.logs import configure_logging, uvicorn_log_config
from service.settings import get_settings


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Start the service: apply database migrations, load the model, serve HTTP.

    The database is TRAVELRISK_DATABASE_URL (default: the SQLite file ./travelrisk.db).
    """
    import uvicorn

    settings = get_settings()
    configure_logging(settings.log_level)
    if settings.apply_migrations:
        upgrade_database(settings.database_url)
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
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
