"""Database access: the declarative base, the engine factory, migrations and the per-request session.

A request gets one session and one transaction. Route handlers commit explicitly before they return, so an
acknowledged write is durable before its response is sent; service functions never commit, and whatever a
handler did not commit is rolled back when the session closes.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import orjson
from alembic import command
from alembic.config import Config
from fastapi import Request
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator
from starlette.concurrency import run_in_threadpool

from service.settings import Settings

T = TypeVar("T")

# Stable constraint names, so that migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored as naive UTC and read back as an aware UTC datetime.

    SQLite has no time-zone type; storing UTC everywhere keeps comparisons and ordering (which cursor
    pagination relies on) identical on SQLite and PostgreSQL.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def metadata() -> MetaData:
    """The metadata of every table, with all table modules imported (for Alembic and tests)."""
    import service.assessments.models  # noqa: F401
    import service.keys.models  # noqa: F401
    import service.model.models  # noqa: F401
    import service.policy.models  # noqa: F401
    import service.reference.models  # noqa: F401
    import service.rescoring.models  # noqa: F401
    import service.reviews.models  # noqa: F401
    import service.rosters.models  # noqa: F401
    import service.tenants.models  # noqa: F401
    import service.ui.models  # noqa: F401
    import service.webhooks.models  # noqa: F401

    return Base.metadata


def _json_serializer(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_db_engine(settings: Settings, url: str | None = None) -> Engine:
    """An engine for `url` (default: the configured database), with per-dialect connection settings."""
    database_url = make_url(url or settings.database_url)
    if database_url.get_backend_name() == "sqlite":
        if database_url.database and database_url.database != ":memory:":
            Path(database_url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            database_url,
            json_serializer=_json_serializer,
            json_deserializer=orjson.loads,
            connect_args={"check_same_thread": False, "timeout": settings.sqlite_busy_timeout_ms / 1000},
            # A SQLite connection is only a file handle: allow one per thread-pool thread.
            pool_size=settings.db_pool_size,
            max_overflow=64,
        )
        _configure_sqlite(engine, settings)
        engine.dialect.statement_compiler = _SQLiteHintingCompiler
        return engine
    engine = create_engine(
        database_url,
        json_serializer=_json_serializer,
        json_deserializer=orjson.loads,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
    )
    if database_url.get_backend_name() == "postgresql":
        _configure_postgresql(engine)
    return engine


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Every query of the service reads an index range of a page or a batch. PostgreSQL would still
        # plan some with parallel workers (a window of trip dates, whose row estimates are loose), and
        # starting them cost 15-20 ms for a query that runs in under one: more than the query's target.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET max_parallel_workers_per_gather = 0")
        dbapi_connection.commit()  # a SET in a transaction rolled back on checkin would be undone


class _SQLiteHintingCompiler(SQLiteCompiler):
    """SQLite's statement compiler, also rendering a query's table hints (`with_hint(..., "sqlite")`, such as
    `INDEXED BY ix_...`), which SQLAlchemy leaves out for SQLite. Its planner knows only average counts
    (ANALYZE without STAT4); a few queries name the index that their data's shape calls for."""

    def get_from_hint_text(self, table: Any, text: str | None) -> str | None:
        return text


def _configure_sqlite(engine: Engine, settings: Settings) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # WAL lets readers proceed while one writer commits; foreign keys are off by default in SQLite.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={settings.sqlite_synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
            # No connection checkpoints on commit: a checkpoint writes and fsyncs the whole log, which
            # would stall the request that happened to cross the threshold. `WalCheckpointer` does it.
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        finally:
            cursor.close()


class WalCheckpointer:
    """A daemon thread that checkpoints a SQLite database's write-ahead log every `interval` seconds.

    PASSIVE checkpoints never block readers or writers; the thread releases the GIL while SQLite writes
    and fsyncs, so requests keep running. On stop, a last TRUNCATE checkpoint empties the log.
    """

    def __init__(self, engine: Engine, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._checkpoint("TRUNCATE")

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._checkpoint("PASSIVE")

    def _checkpoint(self, mode: str) -> None:
        try:
            with self._engine.connect() as connection:
                connection.exec_driver_sql(f"PRAGMA wal_checkpoint({mode})")
        except Exception:  # noqa: BLE001 - a missed checkpoint is retried on the next tick
            logging.getLogger("travelrisk.db").warning("WAL checkpoint failed", exc_info=False)


def write_lock(engine: Engine) -> AbstractContextManager[Any]:
    """What a worker holds while it writes and commits.

    SQLite has one writer at a time, and a writer that finds the database locked sleeps in growing steps
    before it retries. Queuing a process's own writers on a lock hands the database over without those
    sleeps; PostgreSQL needs no such thing.
    """
    return threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (responses are built from them)."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session outside a request (CLI, start-up): committed on success, rolled back on error."""
    with factory() as session, session.begin():
        yield session


async def get_session(request: Request) -> AsyncIterator[Session]:
    """FastAPI dependency: one session per request, rolled back unless the handler committed.

    Creating a session does no I/O, so this runs on the event loop; handlers use the session from the
    thread pool, one at a time.
    """
    factory: sessionmaker[Session] = request.app.state.session_factory
    session = factory()
    try:
        yield session
    finally:
        # Closing rolls back anything left uncommitted: a failure part-way leaves nothing behind. After a
        # commit the connection is already back in the pool and closing does no I/O.
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


async def run_db_work(request: Request, work: Callable[..., T], *args: Any) -> T:
    """Run `work(*args)`, a request's synchronous database work, in the thread pool.

    Measured under load, running SQLite work inline on the event loop gave no more throughput and a far
    worse tail (p99 ~400 ms against ~70 ms at 32 connections): requests queued behind blocking work were
    served unfairly. The thread pool keeps the loop responsive; SQLite writers still queue on
    `write_lock`.
    """
    return await run_in_threadpool(work, *args)


# ---------------------------------------------------------------------------------------------
# Migrations


def alembic_config(url: str) -> Config:
    """Alembic configuration of the bundled migrations, pointed at `url`."""
    ini = Path(str(resources.files("migrations") / "alembic.ini"))
    config = Config(str(ini))
    config.set_main_option("script_location", str(ini.parent))
    # The URL is passed as an attribute, not through the ini, so that '%' in passwords needs no escaping.
    config.attributes["database_url"] = url
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (idempotent when the database is already there)."""
    command.upgrade(alembic_config(url), revision)


def downgrade_database(url: str, revision: str = "base") -> None:
    """Revert migrations down to `revision`."""
    command.downgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it has never been migrated."""
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The newest revision among the bundled migrations."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
