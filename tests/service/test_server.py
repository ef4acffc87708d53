"""`travelrisk serve` as a real process: durability across kill -9, concurrency, logs, body limits."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.assessments.examples import REQUEST_EXAMPLE
from tests.service.conftest import Server, cli


@pytest.fixture
def server_factory(tmp_path: Path, database_url: str) -> Iterator[Any]:
    started: list[Server] = []

    def start(workers: int = 1, log_name: str = "server.log") -> Server:
        server = Server(database_url, tmp_path / log_name, workers=workers).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# What GET adds to the stored scoring: which revision it is, and the list of revisions.
_REVISION_FIELDS = ("revision", "revisions", "revised_at", "revision_reason")


def new_key(database_url: str, role: str = "requester", tenant: str | None = None) -> tuple[str, str]:
    tenant = tenant or f"srv-{uuid.uuid4().hex[:10]}"
    key = cli("keys", "create", "--tenant", tenant, "--role", role, database_url=database_url).stdout.strip()
    return tenant, key


def body_for(reference: str) -> dict[str, Any]:
    body = json.loads(json.dumps(REQUEST_EXAMPLE))
    body["traveler"]["reference"] = reference
    return body


def test_acknowledged_assessments_survive_kill_9(server_factory: Any, database_url: str) -> None:
    _, key = new_key(database_url)
    headers = {"Authorization": f"Bearer {key}"}
    server = server_factory()
    acknowledged: dict[str, Any] = {}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
        for i in range(10):
            response = http.post("/v1/assessments", json=body_for(f"K9-{i}"))
            assert response.status_code == 201, response.text
            acknowledged[response.json()["id"]] = response.json()
    server.kill()

    server = server_factory(log_name="restarted.log")
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
        for assessment_id, body in acknowledged.items():
            response = http.get(f"/v1/assessments/{assessment_id}")
            assert response.status_code == 200, response.text
            assert {k: v for k, v in response.json().items() if k not in _REVISION_FIELDS} == body


def test_concurrent_same_key_requests_on_two_workers_create_one(server_factory: Any, database_url: str) -> None:
    tenant, key = new_key(database_url)
    reference = f"CC-{uuid.uuid4().hex[:8]}"
    server = server_factory(workers=2)
    idempotency_key = str(uuid.uuid4())
    threads = 16
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": idempotency_key}

    def worker(i: int) -> None:
        # One connection per thread, so the requests are spread over both worker processes.
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
            barrier.wait()
            results[i] = http.post("/v1/assessments", json=body_for(reference))

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    statuses = [r.status_code for r in results]
    assert statuses == [201] * threads, [r.text for r in results if r.status_code != 201]
    assert len({r.json()["id"] for r in results}) == 1
    listed = httpx.get(
        f"{server.base_url}/v1/assessments",
        params={"traveler_reference": reference},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ).json()
    assert len(listed["items"]) == 1


def test_logs_are_json_lines_without_traveller_data_or_keys(server_factory: Any, database_url: str) -> None:
    tenant, key = new_key(database_url)
    server = server_factory(log_name="logs.log")
    secret_reference = f"SECRET-REF-{uuid.uuid4().hex}"
    body = body_for(secret_reference)
    body["traveler"]["employer"]["name"] = "Very Private Employer Ltd"
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        created = http.post("/v1/assessments", json=body, headers={"X-Request-ID": "trace-123"})
        assert created.status_code == 201
        assert created.headers["x-request-id"] == "trace-123"
        http.get("/v1/assessments", params={"traveler_reference": secret_reference})
        bad = body_for(secret_reference)
        bad["trip"]["legs"][0]["country"] = "QQ"
        assert http.post("/v1/assessments", json=bad).status_code == 422
        http.get("/v1/assessments", headers={"Authorization": "Bearer trk_aaaaaaaaaaaa_wrong"})
    server.stop()

    text = server.log_path.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert len(lines) == len(text.splitlines())
    requests = [entry for entry in lines if entry.get("message") == "request"]
    post_line = next(entry for entry in requests if entry["request_id"] == "trace-123")
    assert post_line["tenant"] == tenant
    assert post_line["route"] == "/v1/assessments"
    assert post_line["status"] == 201
    assert post_line["method"] == "POST"
    assert isinstance(post_line["duration_ms"], float)
    assert {401, 422} <= {entry["status"] for entry in requests}
    for forbidden in (secret_reference, "Very Private Employer", key, key.split("_", 2)[2], "wrong", "QQ"):
        assert forbidden not in text


def test_streamed_body_over_the_limit_is_413(server_factory: Any, database_url: str) -> None:
    _, key = new_key(database_url)
    server = server_factory(log_name="limit.log")

    def chunks() -> Iterator[bytes]:
        for _ in range(1_000):
            yield b" " * 1_024

    response = httpx.post(
        f"{server.base_url}/v1/assessments",
        content=chunks(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.request.headers.get("transfer-encoding") == "chunked"
