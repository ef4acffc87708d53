"""Fixtures of the service tests: a real, migrated database and the application over it.

The database is a SQLite file in a temporary directory, or the PostgreSQL database named by
TRAVELRISK_TEST_DATABASE_URL (which is emptied and migrated at the start of the run: point it at a
scratch database). Tests keep to their own tenants, so they never see each other's rows.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from service.app import create_app
from service.db import create_db_engine, create_session_factory, downgrade_database, session_scope, upgrade_database
from service.keys import service as keys
from service.keys.models import Role
from service.settings import Settings

TEST_DATABASE_ENV = "TRAVELRISK_TEST_DATABASE_URL"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def make_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for tests: nothing read from the developer's environment or .env file.

    The suite makes more requests a minute, and more with bad keys, than the default limits allow a
    client, and dates trips decades ahead; the limits and bounds themselves are tested on applications of
    their own.
    """
    overrides.setdefault("rate_limit_per_key", "1000000/minute")
    overrides.setdefault("rate_limit_failed_auth_per_address", "1000000/minute")
    # Tests keep their reference data and trips apart from each other's by dating them decades ahead.
    overrides.setdefault("trip_years_ahead", 50)
    return Settings(_env_file=None, database_url=database_url, **overrides)  # type: ignore[call-arg]


def _reset(url: str) -> None:
    engine = create_db_engine(make_settings(url))
    try:
        if "alembic_version" in inspect(engine).get_table_names():
            downgrade_database(url, "base")
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database for the whole run."""
    url = os.environ.get(TEST_DATABASE_ENV)
    if url:
        _reset(url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'travelrisk.db'}"
    upgrade_database(url)
    return url


# The shared application delivers webhooks to receivers the tests run on 127.0.0.1, and retries quickly.
WEBHOOK_TEST_SETTINGS: dict[str, object] = {
    "webhooks_allow_private": True,
    "webhooks_backoff_base_seconds": 0.05,
    "webhooks_poll_seconds": 0.1,
    "webhooks_timeout_seconds": 5.0,
    "webhooks_max_attempts": 4,
    "webhooks_disable_after_failed_events": 2,
}


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url, **WEBHOOK_TEST_SETTINGS)


@pytest.fixture(scope="session")
def app_client(settings: Settings) -> Iterator[TestClient]:
    """The application over the test database, started once (its lifespan loads the model)."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def client(app_client: TestClient) -> TestClient:
    app_client.headers.clear()
    app_client.cookies.clear()
    return app_client


@dataclass
class Tenant:
    """A fresh tenant with one key per role, each issued to its own holder (`holder(role)`)."""

    name: str
    keys: dict[Role, str]

    def auth(self, role: Role | str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[Role(role)]}"}

    def holder(self, role: Role | str) -> str:
        return f"{Role(role).value}-{self.name}"


@pytest.fixture(scope="session")
def make_tenant(settings: Settings) -> Iterator[Callable[[], Tenant]]:
    """Creates tenants directly through the keys service, each with a key for every role."""
    engine = create_db_engine(settings)
    factory = create_session_factory(engine)

    def make() -> Tenant:
        name = f"t-{uuid.uuid4().hex[:12]}"
        with session_scope(factory) as session:
            issued = {role: keys.create_key(session, name, role, f"{role.value}-{name}").secret for role in Role}
        return Tenant(name=name, keys=issued)

    yield make
    engine.dispose()


@pytest.fixture
def tenant(make_tenant: Callable[[], Tenant]) -> Tenant:
    return make_tenant()


# ---------------------------------------------------------------------------------------------
# The real server, as a subprocess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str, database_url: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `travelrisk ARGS` in a subprocess against `database_url`."""
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
        stdin=subprocess.DEVNULL,
    )


def server_env(database_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != TEST_DATABASE_ENV}
    env["TRAVELRISK_DATABASE_URL"] = database_url
    env.update(extra or {})
    return env


class Server:
    """`travelrisk serve` in its own process group, on a free port, logging to a file."""

    def __init__(self, database_url: str, log_path: Path, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.database_url = database_url
        self.log_path = log_path
        self.workers = workers
        self.env = env
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> Server:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps writing after this returns
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(self.port), "--workers", str(self.workers)],
            env=server_env(self.database_url, self.env),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.log_path.parent,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown code runs."""
        assert self.process is not None
        os.killpg(self.process.pid, 9)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, 15)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=10)
