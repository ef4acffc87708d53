"""What every kind of dated record does alike, run for each declared kind: roles, unknown ids, sharing
across tenants, the checks every create form makes, and that the derived PATCH form checks its fields."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.dated_records.kinds import KINDS
from service.db import create_db_engine, create_session_factory
from tests.service.reference_helpers import assert_problem, dispute, revision_count, situation


@dataclass(frozen=True)
class Kind:
    path: str
    body: Callable[..., dict[str, Any]]
    unknown_id: str
    patch: dict[str, Any]  # a valid change


CASES = {
    "/v1/situations": Kind("/v1/situations", situation, "sit-00000000", {"severity": "low"}),
    "/v1/employer-disputes": Kind("/v1/employer-disputes", dispute, "emp-00000000", {"kind": "sanctions"}),
}


@pytest.fixture(params=sorted(CASES), ids=lambda path: path.rsplit("/", 1)[-1])
def kind(request: pytest.FixtureRequest) -> Kind:
    return CASES[request.param]


@pytest.fixture(scope="module")
def sessions(settings: Any) -> Any:
    engine = create_db_engine(settings)
    yield create_session_factory(engine)
    engine.dispose()


def create(client: TestClient, tenant: Any, kind: Kind, **overrides: Any) -> dict[str, Any]:
    response = client.post(kind.path, json=kind.body(**overrides), headers=tenant.auth("analyst"))
    assert response.status_code == 201, response.text
    return response.json()


def test_every_declared_kind_is_tested() -> None:
    assert {k.collection for k in KINDS} == set(CASES)


def test_any_role_reads_only_analysts_write(client: TestClient, tenant: Any, sessions: Any, kind: Kind) -> None:
    created = create(client, tenant, kind)
    url = f"{kind.path}/{created['id']}"
    before = revision_count(sessions)
    for role in ("requester", "reviewer", "admin"):
        assert_problem(client.post(kind.path, json=kind.body(), headers=tenant.auth(role)), 403)
        assert_problem(client.patch(url, json=kind.patch, headers=tenant.auth(role)), 403)
        assert client.get(kind.path, params={"limit": 1}, headers=tenant.auth(role)).status_code == 200
        assert client.get(url, headers=tenant.auth(role)).status_code == 200
        assert client.get(f"{url}/history", headers=tenant.auth(role)).status_code == 200
    assert revision_count(sessions) == before
    assert_problem(client.get(kind.path), 401)
    assert_problem(client.post(kind.path, json=kind.body()), 401)
    patched = client.patch(url, json=kind.patch, headers=tenant.auth("analyst"))
    assert patched.status_code == 200 and patched.json()["revision"] == 2


def test_unknown_id_is_404(client: TestClient, tenant: Any, kind: Kind) -> None:
    missing = f"{kind.path}/{kind.unknown_id}"
    assert_problem(client.get(missing, headers=tenant.auth("requester")), 404)
    assert_problem(client.get(f"{missing}/history", headers=tenant.auth("requester")), 404)
    assert_problem(client.patch(missing, json=kind.patch, headers=tenant.auth("analyst")), 404)
    # A longer id than any record may have is not cut down to one that exists.
    created = create(client, tenant, kind, id="x" * 63 + kind.unknown_id[0])
    assert_problem(client.get(f"{kind.path}/{created['id']}y", headers=tenant.auth("requester")), 404)


def test_reference_data_is_shared_by_tenants(client: TestClient, make_tenant: Any, kind: Kind) -> None:
    writer, reader = make_tenant(), make_tenant()
    created = create(client, writer, kind)
    assert client.get(f"{kind.path}/{created['id']}", headers=reader.auth("requester")).json() == created


COMMON_BAD = [
    ({"ended_on": "2029-12-31"}, "ended_on", "before started_on"),
    ({"destination": "QQ"}, "destination", "ISO 3166-1"),
    ({"destination": "FR"}, "destination", "not a covered destination (covered: CN, HK, MO)"),
    ({"sources": []}, "sources", "at least 1 item"),
    (
        {"sources": [{"source": "csis-kennedy-beijing-suffers-major-loss", "quote": "Invented words."}]},
        "sources.0.quote",
        "not found verbatim",
    ),
    ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
    ({"id": "has spaces"}, "id", "should match pattern"),
    ({"start_precision": "week"}, "start_precision", "'day'"),
]


@pytest.mark.parametrize(("change", "field", "message"), COMMON_BAD, ids=[b[1] + ":" + b[2][:20] for b in COMMON_BAD])
def test_invalid_record_is_422_naming_the_field(
    client: TestClient, tenant: Any, sessions: Any, kind: Kind, change: dict[str, Any], field: str, message: str
) -> None:
    before = revision_count(sessions)
    response = client.post(kind.path, json=kind.body(**change), headers=tenant.auth("analyst"))
    problem = assert_problem(response, 422, field)
    assert any(message in e["message"] for e in problem["errors"] if e["field"] == field), problem
    assert revision_count(sessions) == before


def test_the_patch_form_checks_each_field_and_the_merged_record(
    client: TestClient, tenant: Any, sessions: Any, kind: Kind
) -> None:
    url = f"{kind.path}/{create(client, tenant, kind)['id']}"
    before = revision_count(sessions)
    for change, field in (
        ({"colour": "red"}, "colour"),
        ({"destination": "QQ"}, "destination"),
        ({"start_precision": "week"}, "start_precision"),
        ({"sources": []}, "sources"),
        ({"id": "has spaces"}, "id"),
        ({"ended_on": "2029-12-31"}, "ended_on"),  # before the stored started_on
    ):
        assert_problem(client.patch(url, json=change, headers=tenant.auth("analyst")), 422, field)
    assert revision_count(sessions) == before
