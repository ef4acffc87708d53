"""POST/GET /v1/assessments through the real scoring core and a real database."""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from risk_rules.forms import AssessmentResponse
from service.assessments.examples import REQUEST_EXAMPLE
from service.assessments.models import Assessment
from service.db import create_db_engine, create_session_factory
from service.model.models import ModelVersion
from tests.service.test_openapi import schema_errors


@pytest.fixture(scope="module")
def sessions(settings: Any) -> Any:
    engine = create_db_engine(settings)
    yield create_session_factory(engine)
    engine.dispose()


def trip(reference: str | None = None, *, legs: list[dict[str, Any]] | None = None, **traveler: Any) -> dict[str, Any]:
    body = copy.deepcopy(REQUEST_EXAMPLE)
    body["traveler"]["reference"] = reference or f"R-{uuid.uuid4().hex[:8]}"
    body["traveler"].update(traveler)
    if legs is not None:
        body["trip"]["legs"] = legs
    return body


def post(client: TestClient, tenant: Any, body: Any, *, role: str = "requester", key: str | None = None) -> Any:
    headers = tenant.auth(role)
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post("/v1/assessments", json=body, headers=headers)


def count(sessions: Any, tenant_name: str, **where: Any) -> int:
    from service.tenants.models import Tenant

    with sessions() as session:
        query = select(func.count()).select_from(Assessment).join(Tenant, Tenant.id == Assessment.tenant_id)
        query = query.where(Tenant.name == tenant_name)
        for column, value in where.items():
            query = query.where(getattr(Assessment, column) == value)
        return session.scalar(query)


# ---------------------------------------------------------------------------------------------
# Create and read


def test_create_scores_stores_and_reads_back(client: TestClient, tenant: Any, sessions: Any) -> None:
    response = post(client, tenant, REQUEST_EXAMPLE)
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/assessments/{body['id']}"
    assert response.headers["content-type"] == "application/json"
    AssessmentResponse.model_validate(body)
    assert body["status"] == "scored"
    assert 0 < body["score"]["probability"] < 1
    low, high = body["score"]["interval"]
    assert low <= body["score"]["probability"] <= high
    assert body["score"]["band"] in {"low", "elevated", "high", "severe"}
    assert body["factors"], "the contract's example traveller fires factors"
    contributions = [f["contribution"] for f in body["factors"]]
    assert contributions == sorted(contributions, reverse=True)
    for factor in body["factors"]:
        assert factor["reason"] and factor["evidence"] and factor["evidence"][0]["quote"]
    assert {leg["country"] for leg in body["legs"]} == {"TH", "CN"}
    assert set(body["versions"]) == {"model", "rules", "reference_data"}
    created = dt.datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 60

    for role in ("requester", "reviewer", "admin"):
        again = client.get(response.headers["location"], headers=tenant.auth(role))
        assert again.status_code == 200
        read = again.json()
        # The stored scoring, marked as revision 1 and listed as the only one so far; the fields of a
        # re-scoring are there, as null, as the README documents them.
        unchanged = {
            k: v for k, v in read.items() if k not in ("revision", "revisions", "revised_at", "revision_reason")
        }
        assert unchanged == body
        assert read["revision"] == 1
        assert read["revised_at"] is None and read["revision_reason"] is None
        assert [(r["revision"], r["reason"]) for r in read["revisions"]] == [(1, "scored")]

    with sessions() as session:
        row = session.get(Assessment, body["id"])
        assert row is not None
        assert row.response == body
        assert row.request["traveler"]["citizenships"] == ["CA"]
        assert (row.model_version, row.rules_version, row.reference_data_version) == (
            body["versions"]["model"],
            body["versions"]["rules"],
            body["versions"]["reference_data"],
        )
        assert row.band == body["score"]["band"] and row.probability == body["score"]["probability"]
        assert (row.trip_start, row.trip_end) == (dt.date(2018, 12, 4), dt.date(2018, 12, 20))
        # The model that scored it is recorded with its card, so the assessment can be re-explained.
        version = session.get(ModelVersion, row.model_version)
        assert version is not None and version.card["version"] == row.model_version


def test_response_matches_published_schema(client: TestClient, tenant: Any) -> None:
    document = client.get("/openapi.json").json()
    body = post(client, tenant, REQUEST_EXAMPLE).json()
    schema = document["paths"]["/v1/assessments"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert schema_errors(document, schema, body) == []


def test_minimal_request(client: TestClient, tenant: Any) -> None:
    leg = {"country": "CN", "arrive": "2025-03-01", "depart": "2025-03-04"}
    body = {"traveler": {"citizenships": ["DE"]}, "trip": {"legs": [leg]}}
    response = post(client, tenant, body)
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["status"] == "scored"
    # Not given is not "no": every field a factor could not be judged without is listed with its range.
    not_given = {item["field"]: item for item in result["not_given"]}
    assert {"traveler.occupation", "traveler.legal_exposure.sought_by_destination_authorities"} <= set(not_given)
    assert "personally_sought" in not_given["traveler.legal_exposure.sought_by_destination_authorities"]["factors"]
    for item in result["not_given"]:
        low, high = item["probability_range"]
        assert low <= result["score"]["probability"] <= high
    document = client.get("/openapi.json").json()
    schema = document["paths"]["/v1/assessments"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert schema_errors(document, schema, result) == []
    # Null reads as left out too; stating false and [] is a statement, and removes the field from the list.
    stated = {
        "traveler": {"citizenships": ["DE"], "occupation": None, "legal_exposure": {"criminal_investigation": False}},
        "trip": {"legs": [leg]},
    }
    again = post(client, tenant, stated).json()
    fields = {item["field"] for item in again["not_given"]}
    assert "traveler.occupation" in fields and "traveler.legal_exposure.criminal_investigation" not in fields


def test_out_of_scope_trip(client: TestClient, tenant: Any) -> None:
    body = trip(legs=[{"country": "IS", "arrive": "2025-03-01", "depart": "2025-03-04"}])
    response = post(client, tenant, body)
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["status"] == "out_of_scope"
    assert result["score"] is None
    assert {"CN", "HK", "MO"} <= set(result["covered_destinations"])


def test_admin_may_create_reviewer_and_analyst_may_not(client: TestClient, tenant: Any) -> None:
    assert post(client, tenant, REQUEST_EXAMPLE, role="admin").status_code == 201
    assert post(client, tenant, REQUEST_EXAMPLE, role="reviewer").status_code == 403
    assert post(client, tenant, REQUEST_EXAMPLE, role="analyst").status_code == 403


def test_another_tenants_assessment_is_not_found(client: TestClient, tenant: Any, make_tenant: Any) -> None:
    created = post(client, tenant, REQUEST_EXAMPLE).json()
    other = make_tenant()
    response = client.get(f"/v1/assessments/{created['id']}", headers=other.auth("admin"))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/assessments/no-such-id", headers=tenant.auth("reviewer")).status_code == 404
    assert client.get(f"/v1/assessments/{created['id']}", headers=tenant.auth("analyst")).status_code == 403


def test_invalid_request_stores_nothing(client: TestClient, tenant: Any, sessions: Any) -> None:
    body = trip()
    body["trip"]["legs"][0]["country"] = "ZZ"
    assert post(client, tenant, body).status_code == 422
    assert count(sessions, tenant.name) == 0


# ---------------------------------------------------------------------------------------------
# Idempotency


def test_retry_with_same_key_returns_the_first_result(client: TestClient, tenant: Any, sessions: Any) -> None:
    key = str(uuid.uuid4())
    first = post(client, tenant, REQUEST_EXAMPLE, key=key)
    assert first.status_code == 201
    # The same request with another layout and key order is the same request.
    reordered = json.dumps({"trip": REQUEST_EXAMPLE["trip"], "traveler": REQUEST_EXAMPLE["traveler"]}, indent=2)
    retry = client.post(
        "/v1/assessments",
        content=reordered,
        headers={**tenant.auth("requester"), "Idempotency-Key": key, "Content-Type": "application/json"},
    )
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["location"] == first.headers["location"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert count(sessions, tenant.name, idempotency_key=key) == 1


def test_same_key_different_body_is_409(client: TestClient, tenant: Any) -> None:
    key = str(uuid.uuid4())
    assert post(client, tenant, REQUEST_EXAMPLE, key=key).status_code == 201
    changed = trip(REQUEST_EXAMPLE["traveler"]["reference"], relatives_in_destination=False)
    response = post(client, tenant, changed, key=key)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("idempotency-key-reused")


def test_keys_are_scoped_to_the_tenant(client: TestClient, tenant: Any, make_tenant: Any) -> None:
    key = str(uuid.uuid4())
    other = make_tenant()
    mine = post(client, tenant, REQUEST_EXAMPLE, key=key).json()
    theirs = post(client, other, trip(), key=key)
    assert theirs.status_code == 201
    assert theirs.json()["id"] != mine["id"]


def test_without_a_key_each_request_is_a_new_assessment(client: TestClient, tenant: Any) -> None:
    first = post(client, tenant, REQUEST_EXAMPLE).json()
    second = post(client, tenant, REQUEST_EXAMPLE).json()
    assert first["id"] != second["id"]


def test_concurrent_requests_with_one_key_create_one_assessment(client: TestClient, tenant: Any, sessions: Any) -> None:
    key = str(uuid.uuid4())
    threads = 8
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = post(client, tenant, REQUEST_EXAMPLE, key=key)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert [r.status_code for r in results] == [201] * threads, [r.text for r in results if r.status_code != 201]
    assert len({r.json()["id"] for r in results}) == 1
    assert count(sessions, tenant.name, idempotency_key=key) == 1


# ---------------------------------------------------------------------------------------------
# Listing


def list_all(client: TestClient, tenant: Any, query: str = "", limit: int = 2) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        url = f"/v1/assessments?limit={limit}{'&' + query if query else ''}"
        if cursor:
            url += f"&cursor={cursor}"
        page = client.get(url, headers=tenant.auth("reviewer"))
        assert page.status_code == 200, page.text
        data = page.json()
        assert len(data["items"]) <= limit
        items.extend(data["items"])
        cursor = data["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


def test_list_pages_through_the_tenants_assessments(client: TestClient, tenant: Any, make_tenant: Any) -> None:
    created = [post(client, tenant, trip(f"P-{i}")).json()["id"] for i in range(5)]
    post(client, make_tenant(), trip("P-other"))
    items = list_all(client, tenant, limit=2)
    assert [i["id"] for i in items] == list(reversed(created))
    assert {i["traveler_reference"] for i in items} == {f"P-{i}" for i in range(5)}
    first = items[0]
    assert set(first) >= {"id", "created_at", "status", "band", "probability", "trip_start", "trip_end"}


def test_list_filters(client: TestClient, tenant: Any) -> None:
    early = trip("F-early", legs=[{"country": "CN", "arrive": "2019-01-01", "depart": "2019-01-10"}])
    late = trip("F-late", legs=[{"country": "HK", "arrive": "2024-06-01", "depart": "2024-06-05"}])
    away = trip("F-away", legs=[{"country": "IS", "arrive": "2024-06-01", "depart": "2024-06-05"}])
    before = dt.datetime.now(dt.UTC)
    bodies = {name: post(client, tenant, b).json() for name, b in {"early": early, "late": late, "away": away}.items()}

    def refs(query: str) -> set[str]:
        return {i["traveler_reference"] for i in list_all(client, tenant, query, limit=10)}

    assert refs("traveler_reference=F-late") == {"F-late"}
    assert refs("status=out_of_scope") == {"F-away"}
    assert refs("status=scored") == {"F-early", "F-late"}
    band = bodies["early"]["score"]["band"]
    assert "F-early" in refs(f"band={band}") and "F-away" not in refs(f"band={band}")
    assert refs("trip_from=2024-01-01") == {"F-late", "F-away"}
    assert refs("trip_to=2019-01-01") == {"F-early"}
    assert refs("trip_from=2019-01-05&trip_to=2019-01-06") == {"F-early"}
    created_from = before.isoformat().replace("+00:00", "Z")
    assert refs(f"created_from={created_from}") == {"F-early", "F-late", "F-away"}
    assert refs("created_to=2000-01-01T00:00:00") == set()


def test_list_rejects_a_forged_cursor(client: TestClient, tenant: Any) -> None:
    response = client.get("/v1/assessments?cursor=bm90LWEtY3Vyc29y", headers=tenant.auth("reviewer"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "cursor"
