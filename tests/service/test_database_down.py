"""With its database gone, every /v1 call answers 503 with Retry-After, never a 500.

The failures are real: a SQLite database whose directory has been removed (the pool's open connections
closed, so the next one must open the file again), and a PostgreSQL URL where nothing listens.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.assessments.examples import REQUEST_EXAMPLE
from service.db import create_db_engine, create_session_factory, session_scope, upgrade_database
from service.keys import service as keys
from service.keys.models import Role
from tests.service.conftest import free_port, make_settings

# A key of the right shape: with no database it cannot be checked, which is the point.
SOME_KEY = "trk_0123456789ab_" + "A" * 43


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for path, item in document["paths"].items():
        if path.startswith("/v1"):
            for method in item:
                yield method.upper(), path.replace("{", "x").replace("}", "")


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["type"] == "urn:travelrisk:problem:database-unavailable"


def sweep(client: TestClient, key: str) -> int:
    document = client.get("/openapi.json").json()
    count = 0
    for method, path in operations(document):
        body = {"json": REQUEST_EXAMPLE} if method in ("POST", "PATCH") else {}
        response = client.request(method, path, headers={"Authorization": f"Bearer {key}"}, **body)
        assert_unavailable(response)
        count += 1
    return count


@pytest.mark.parametrize("kind", ["sqlite-removed", "postgresql-unreachable"])
def test_every_v1_call_is_503_when_the_database_cannot_be_reached(tmp_path: Path, kind: str) -> None:
    if kind == "sqlite-removed":
        directory = tmp_path / "gone"
        url = f"sqlite:///{directory}/travelrisk.db"
        app = create_app(make_settings(url))  # creates the directory
        shutil.rmtree(directory)
    else:
        app = create_app(make_settings(f"postgresql+psycopg://travelrisk@127.0.0.1:{free_port()}/travelrisk"))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert sweep(client, SOME_KEY) >= 15
        assert client.get("/readyz").status_code == 503


def test_a_database_lost_while_serving_is_503_for_a_known_key(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    url = f"sqlite:///{directory}/travelrisk.db"
    upgrade_database(url)
    settings = make_settings(url, key_cache_seconds=300)
    engine = create_db_engine(settings)
    with session_scope(create_session_factory(engine)) as session:
        key = keys.create_key(session, "down", Role.requester).secret
    engine.dispose()
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        auth = {"Authorization": f"Bearer {key}"}
        assert client.post("/v1/assessments", json=REQUEST_EXAMPLE, headers=auth).status_code == 201
        shutil.rmtree(directory)
        app.state.engine.dispose()
        # The key is still trusted from the worker's cache; the database work itself fails.
        assert_unavailable(client.post("/v1/assessments", json=REQUEST_EXAMPLE, headers=auth))
        assert_unavailable(client.get("/v1/assessments", headers=auth))
