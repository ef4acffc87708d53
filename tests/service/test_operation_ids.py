"""Operation ids: clean and stable (`create_assessment`), and a client generated from /openapi.json by a
mainstream generator works against the real service."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from service.app import operation_id
from service.assessments.examples import REQUEST_EXAMPLE
from tests.service.conftest import Server, cli

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
METHODS = ("get", "put", "post", "patch", "delete", "head", "options")


def operation_ids(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (path, method, operation["operationId"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def problems_with(document: dict[str, Any]) -> list[str]:
    """Every operation id that is not snake_case, not unique, or made of path fragments or a method."""
    found = []
    seen: dict[str, str] = {}
    for path, method, op_id in operation_ids(document):
        where = f"{method.upper()} {path}: {op_id!r}"
        if not SNAKE_CASE.fullmatch(op_id):
            found.append(f"{where} is not snake_case")
        if op_id in seen:
            found.append(f"{where} is also the id of {seen[op_id]}")
        seen[op_id] = f"{method.upper()} {path}"
        words = op_id.split("_")
        if words[-1] in METHODS and len(words) > 1:
            found.append(f"{where} ends in an HTTP method")
        # FastAPI's default id appends the path with every non-word character made `_`, then the method.
        slug = re.sub(r"\W+", "_", path).strip("_")
        if "v1" in words or (slug.count("_") >= 1 and slug in op_id):
            found.append(f"{where} contains the path")
    return found


def test_every_operation_id_is_clean_unique_and_stable(app_client: TestClient) -> None:
    document = app_client.get("/openapi.json").json()
    assert problems_with(document) == []
    ids = {op_id for _, _, op_id in operation_ids(document)}
    # Ids integrators' generated code is named after; renaming one breaks their code.
    assert {
        "create_assessment",
        "get_assessment",
        "list_assessments",
        "list_situations",
        "create_roster",
        "get_roster",
        "get_roster_results",
    } <= ids


@pytest.mark.filterwarnings("ignore:Duplicate Operation ID")
def test_the_check_finds_fastapi_default_ids() -> None:
    # FastAPI's default ids are what the check must reject; the service's function must not produce them.
    router = APIRouter()

    @router.get("/v1/things/{thing_id}")
    def get_thing(thing_id: str) -> dict[str, str]:
        return {}

    @router.post("/v1/things")
    def get_thing_again() -> dict[str, str]:
        return {}

    default = FastAPI()
    default.include_router(router)
    assert problems_with(default.openapi())
    clean = FastAPI(generate_unique_id_function=operation_id)
    clean.include_router(router)
    assert problems_with(clean.openapi()) == []
    assert [op_id for _, _, op_id in operation_ids(clean.openapi())] == ["get_thing", "get_thing_again"]
    twice = FastAPI(generate_unique_id_function=operation_id)
    twice.include_router(router)
    twice.include_router(router, prefix="/v2")
    assert any("also the id" in p for p in problems_with(twice.openapi()))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Server]:
    started = Server(database_url, tmp_path_factory.mktemp("generated") / "server.log").start()
    yield started
    started.stop()


def test_a_generated_client_creates_and_reads_an_assessment(
    server: Server, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = cli(
        "keys", "create", "--tenant", f"gen-{uuid.uuid4().hex[:8]}", "--role", "requester", database_url=database_url
    ).stdout.strip()
    spec = tmp_path / "openapi.json"
    spec.write_bytes(httpx.get(f"{server.base_url}/openapi.json", timeout=30).content)
    config = tmp_path / "config.yaml"
    # No formatting hooks: generation must not depend on tools beyond the generator itself.
    config.write_text("post_hooks: []\npackage_name_override: travelrisk_generated\n", encoding="utf-8")
    generated = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(spec), "--meta", "none"]
        + ["--output-path", str(tmp_path / "travelrisk_generated"), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    package = importlib.import_module("travelrisk_generated")
    create_assessment = importlib.import_module("travelrisk_generated.api.assessments.create_assessment")
    get_assessment = importlib.import_module("travelrisk_generated.api.assessments.get_assessment")
    models = importlib.import_module("travelrisk_generated.models")

    with package.AuthenticatedClient(base_url=server.base_url, token=key) as client:
        created = create_assessment.sync_detailed(
            client=client, body=models.AssessmentRequest.from_dict(REQUEST_EXAMPLE), idempotency_key=str(uuid.uuid4())
        )
        assert created.status_code == 201, created.content
        assert isinstance(created.parsed, models.AssessmentResponse)
        read = get_assessment.sync(assessment_id=created.parsed.id, client=client)
    assert isinstance(read, models.AssessmentResponse)
    assert read.id == created.parsed.id
    assert read.score.band == created.parsed.score.band
    assert [f.id for f in read.factors] == [f.id for f in created.parsed.factors]
