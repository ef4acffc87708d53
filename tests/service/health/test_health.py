"""/healthz and /readyz."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.app import create_app
from service.assessments.examples import REQUEST_EXAMPLE
from service.db import downgrade_database, upgrade_database
from tests.service.conftest import free_port, make_settings


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_when_ready(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "model": "ok"}


def test_readyz_names_an_unmigrated_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with TestClient(create_app(make_settings(url))) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert "travelrisk db upgrade" in body["checks"]["database"]
        assert body["checks"]["model"] == "ok"
        upgrade_database(url)
        assert client.get("/readyz").status_code == 200
        downgrade_database(url, "base")
        assert client.get("/readyz").status_code == 503


def test_readyz_names_an_unreachable_database() -> None:
    # Nothing listens on this port: every connection is refused at once.
    url = f"postgresql+psycopg://nobody:nothing@127.0.0.1:{free_port()}/none"
    with TestClient(create_app(make_settings(url))) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["checks"]["database"].startswith("database unreachable")
        assert client.get("/healthz").status_code == 200


def test_readyz_names_a_missing_model(tmp_path, database_url: str, make_tenant) -> None:  # type: ignore[no-untyped-def]
    # A model directory whose active.json names a version that exists nowhere.
    (tmp_path / "active.json").write_text('{"version": "no-such-version"}', encoding="utf-8")
    settings = make_settings(database_url, model_dir=tmp_path)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["model"].startswith("model not loaded")
        assert client.get("/healthz").status_code == 200
        # Scoring answers 503 as a problem; nothing is stored.
        tenant = make_tenant()
        scored = client.post("/v1/assessments", json=REQUEST_EXAMPLE, headers=tenant.auth("requester"))
        assert scored.status_code == 503
        assert scored.headers["content-type"] == "application/problem+json"
        assert client.get("/v1/assessments", headers=tenant.auth("reviewer")).json()["items"] == []
