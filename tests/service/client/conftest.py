"""A real `travelrisk serve` for the client's tests, and keys on it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.service.conftest import Server, cli


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Server]:
    started = Server(database_url, tmp_path_factory.mktemp("client") / "server.log").start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def new_key(database_url: str) -> Callable[..., str]:
    def make(role: str = "requester", tenant: str | None = None) -> str:
        tenant = tenant or f"cl-{uuid.uuid4().hex[:10]}"
        return cli("keys", "create", "--tenant", tenant, "--role", role, database_url=database_url).stdout.strip()

    return make
