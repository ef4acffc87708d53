"""Rosters through the API: uploads in JSON and CSV, per-row errors, progress, results, idempotency."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.assessments.examples import REQUEST_EXAMPLE
from service.assessments.models import Assessment
from service.db import create_db_engine, create_session_factory
from service.rosters import csv_format
from service.rosters.models import RosterItem
from service.tenants.models import Tenant as TenantRow
from tests.service.review_helpers import put_policy


@pytest.fixture(scope="module")
def sessions(settings: Any) -> Any:
    engine = create_db_engine(settings)
    yield create_session_factory(engine)
    engine.dispose()


def trip(reference: str, citizenship: str = "CA", country: str = "CN", start: str = "2018-12-05") -> dict[str, Any]:
    return {
        "traveler": {"reference": reference, "citizenships": [citizenship]},
        "trip": {"legs": [{"country": country, "arrive": start, "depart": "2018-12-20"}]},
    }


def wait_done(client: TestClient, headers: dict[str, str], location: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(location, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["state"] in ("done", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"roster not finished: {body}")


def results(client: TestClient, headers: dict[str, str], roster_id: str, **params: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/rosters/{roster_id}/results", headers=headers, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/jsonl")
    return [json.loads(line) for line in response.text.splitlines()]


def tenant_assessments(sessions: Any, tenant_name: str) -> int:
    with sessions() as session:
        return session.scalar(
            select(func.count())
            .select_from(Assessment)
            .join(TenantRow, TenantRow.id == Assessment.tenant_id)
            .where(TenantRow.name == tenant_name)
        )


def test_a_json_roster_is_scored_and_each_trip_stored_as_an_assessment(
    client: TestClient, tenant: Any, sessions: Any
) -> None:
    headers = tenant.auth("requester")
    bad = trip("R-bad")
    bad["trip"]["legs"][0]["depart"] = "2018-12-01"
    roster = [
        REQUEST_EXAMPLE,
        trip("R-1"),
        bad,
        trip("R-out", country="FR"),
        "not an object",
        trip("R-xx", citizenship="XX"),
    ]
    response = client.post("/v1/rosters", json=roster, headers=headers)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["total"] == 6 and accepted["format"] == "json"
    assert response.headers["location"] == f"/v1/rosters/{accepted['id']}"

    status = wait_done(client, headers, response.headers["location"])
    assert status["state"] == "done"
    assert (status["done"], status["total"], status["invalid"]) == (6, 6, 3)
    assert sum(status["counts"].values()) == 3 and status["counts"]["out_of_scope"] == 1
    errors = {(e["row"], e["field"]) for e in status["errors"]}
    assert errors == {(2, "trip.legs.0.depart"), (4, ""), (5, "traveler.citizenships.0")}
    assert tenant_assessments(sessions, tenant.name) == 3

    lines = results(client, headers, accepted["id"])
    assert [line["row"] for line in lines] == [0, 1, 2, 3, 4, 5]
    assert [line["status"] for line in lines] == ["scored", "scored", "invalid", "out_of_scope", "invalid", "invalid"]
    assert lines[2]["errors"][0]["message"].startswith("depart (2018-12-01) is before arrive")
    # The stored assessment is the one POST /v1/assessments would have made for the same body.
    first = client.get(f"/v1/assessments/{lines[0]['assessment_id']}", headers=headers).json()
    direct = client.post("/v1/assessments", json=REQUEST_EXAMPLE, headers=headers).json()
    assert lines[0]["reference"] == "E-10442"
    assert lines[0]["band"] == first["score"]["band"] == direct["score"]["band"]
    assert lines[0]["probability"] == first["score"]["probability"] == pytest.approx(direct["score"]["probability"])
    assert lines[0]["top_factors"] == [f["id"] for f in direct["factors"][:3]]
    for key in ("factors", "legs", "mitigations", "versions", "baseline"):
        assert first[key] == direct[key], key
    # The review's state and policy match; `since` is when each one was stored.
    assert {k: v for k, v in first["review"].items() if k != "since"} == {
        k: v for k, v in direct["review"].items() if k != "since"
    }
    # Roster trips are listed with the tenant's other assessments.
    listed = client.get("/v1/assessments", params={"traveler_reference": "R-1"}, headers=headers).json()
    assert [item["id"] for item in listed["items"]] == [lines[1]["assessment_id"]]


def test_a_csv_roster_reports_errors_by_row_and_column(client: TestClient, tenant: Any) -> None:
    headers = {**tenant.auth("admin"), "Content-Type": "text/csv"}
    template = client.get("/v1/rosters/template.csv", headers=tenant.auth("reviewer"))
    assert template.status_code == 200 and template.headers["content-type"].startswith("text/csv")
    text = template.text.rstrip("\r\n") + "\r\n"
    text += "E-3,CA,,,astronaut,,,,,,,,,,,,,,CN 2018-12-05 2018-12-20\r\n"
    text += "E-4,CA,,,,,,maybe,,,,,,,,,,,CN 2018-12-05\r\n"
    response = client.post("/v1/rosters", content=text.encode(), headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["format"] == "csv"
    status = wait_done(client, headers, response.headers["location"])
    assert (status["total"], status["invalid"]) == (4, 2)
    by_row = {(e["row"], e["column"]) for e in status["errors"]}
    # The header is line 1, so the template's two trips are lines 2 and 3.
    assert by_row == {(4, "occupation"), (5, "criticizes_destination_government"), (5, "legs")}
    csv_response = client.get(f"/v1/rosters/{status['id']}/results", headers={**headers, "Accept": "text/csv"})
    assert csv_response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_response.text)))
    assert [r["reference"] for r in rows] == ["E-10442", "E-20017", "E-3", "E-4"]
    assert rows[0]["band"] in ("low", "elevated", "high", "severe") and rows[0]["assessment_id"]
    assert rows[2]["status"] == "invalid" and rows[2]["errors"].startswith("occupation: ")
    assert results(client, headers, status["id"], format="jsonl")[3]["errors"][0]["column"] in (
        "criticizes_destination_government",
        "legs",
    )


@pytest.mark.parametrize(
    ("content", "content_type", "status", "field"),
    [
        (b"{}", "application/json", 422, ""),
        (b"[]", "application/json", 422, ""),
        (b"[{", "application/json", 400, ""),
        (b"reference,legs,colour\r\nx,CN 2018-01-01 2018-01-02,red\r\n", "text/csv", 422, "header"),
        (b"reference\r\nx\r\n", "text/csv", 422, "header"),
        (b"<xml/>", "application/xml", 415, None),
    ],
)
def test_an_unreadable_upload_is_refused_and_nothing_is_stored(
    client: TestClient, tenant: Any, content: bytes, content_type: str, status: int, field: str | None
) -> None:
    headers = {**tenant.auth("requester"), "Content-Type": content_type}
    response = client.post("/v1/rosters", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if field is not None:
        assert response.json()["errors"][0]["field"] == field


def test_too_many_trips_are_refused(client: TestClient, tenant: Any) -> None:
    body = json.dumps([trip("R")] * 50_001).encode()
    response = client.post(
        "/v1/rosters", content=body, headers={**tenant.auth("requester"), "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert "at most 50,000" in response.json()["detail"]


def test_roster_bodies_have_their_own_size_limit(client: TestClient, tenant: Any, settings: Any) -> None:
    # Far more than the 64 KB of other requests is accepted...
    body = json.dumps([trip(f"L-{i}") for i in range(1000)]).encode()
    assert len(body) > settings.max_body_bytes
    headers = {**tenant.auth("requester"), "Content-Type": "application/json"}
    assert client.post("/v1/rosters", content=body, headers=headers).status_code == 202
    # ...but the same body is still too large for a single assessment.
    assert client.post("/v1/assessments", content=body, headers=headers).status_code == 413


def test_roles_and_tenants(client: TestClient, tenant: Any, make_tenant: Any) -> None:
    assert client.post("/v1/rosters", json=[trip("R")]).status_code == 401
    assert client.post("/v1/rosters", json=[trip("R")], headers=tenant.auth("reviewer")).status_code == 403
    response = client.post("/v1/rosters", json=[trip("R")], headers=tenant.auth("requester"))
    other = make_tenant()
    assert client.get(response.headers["location"], headers=other.auth("admin")).status_code == 404
    assert client.get(response.headers["location"] + "/results", headers=other.auth("admin")).status_code == 404
    assert client.get(response.headers["location"], headers=tenant.auth("reviewer")).status_code == 200


def test_an_idempotency_key_makes_a_retried_upload_return_the_first_roster(
    client: TestClient, tenant: Any, sessions: Any
) -> None:
    headers = {**tenant.auth("requester"), "Idempotency-Key": str(uuid.uuid4())}
    roster = [trip(f"I-{i}") for i in range(3)]
    first = client.post("/v1/rosters", json=roster, headers=headers)
    again = client.post("/v1/rosters", json=roster, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    assert client.post("/v1/rosters", json=roster[:2], headers=headers).status_code == 409
    wait_done(client, headers, first.headers["location"])
    assert tenant_assessments(sessions, tenant.name) == 3


def test_template_rows_are_valid_requests() -> None:
    from risk_rules.forms import AssessmentRequest

    documents = list(csv_format.iterate_rows(csv_format.template()))
    assert len(documents) == 2
    for document, errors in documents:
        assert errors == []
        AssessmentRequest.model_validate(document)


def test_results_are_one_row_per_trip(client: TestClient, tenant: Any, sessions: Any) -> None:
    headers = tenant.auth("requester")
    response = client.post("/v1/rosters", json=[trip(f"P-{i}") for i in range(1200)], headers=headers)
    status = wait_done(client, headers, response.headers["location"])
    assert status["done"] == 1200 and status["counts"]["severe"] + status["counts"]["high"] > 0
    lines = results(client, headers, status["id"])
    assert [line["row"] for line in lines] == list(range(1200))
    assert len({line["assessment_id"] for line in lines}) == 1200
    with sessions() as session:
        stored = session.scalar(
            select(func.count()).select_from(RosterItem).where(RosterItem.roster_id == status["id"])
        )
    assert stored == 1200


def test_a_roster_that_keeps_failing_is_marked_failed(client: TestClient, tenant: Any, sessions: Any) -> None:
    from service.rosters import service as rosters
    from service.rosters.models import Roster

    upload = rosters.parse_upload(json.dumps([trip("F-1")]).encode(), "application/json")
    with sessions() as session:
        owner = session.scalar(select(TenantRow.id).where(TenantRow.name == tenant.name))
        roster = rosters.create(session, owner, upload, None)
        roster.payload = b"damaged"  # as if the stored upload had been damaged
        session.commit()
    rosters.wake()
    status = wait_done(client, tenant.auth("requester"), f"/v1/rosters/{roster.id}", timeout=60)
    assert status["state"] == "failed" and status["done"] == 0
    assert status["failure"].startswith(f"processing failed {rosters.MAX_ATTEMPTS} times (error)")
    with sessions() as session:
        assert session.get(Roster, roster.id).payload is None


def test_a_roster_over_its_own_limit_is_refused(settings: Any, make_tenant: Any) -> None:
    from service.app import create_app

    small = settings.model_copy(update={"roster_max_body_bytes": 4096})
    owner = make_tenant()
    with TestClient(create_app(small)) as limited:
        body = json.dumps([trip(f"B-{i}") for i in range(100)]).encode()
        headers = {**owner.auth("requester"), "Content-Type": "application/json"}
        response = limited.post("/v1/rosters", content=body, headers=headers)
        assert response.status_code == 413
        assert response.json()["detail"] == "The request body exceeds the limit of 4096 bytes."
        assert (
            limited.post("/v1/rosters", content=body[:2000], headers=headers).status_code == 400
        )  # cut JSON: malformed, as on every route


def test_roster_trips_are_judged_under_the_tenants_policy(client: TestClient, make_tenant: Any) -> None:
    """A tenant that reviews every band above `low` gets the same review from a roster as from a POST."""
    tenant = make_tenant()
    policy = put_policy(client, tenant, review_bands=["elevated", "high", "severe"])
    headers = tenant.auth("requester")
    response = client.post("/v1/rosters", json=[REQUEST_EXAMPLE], headers=headers)
    assert response.status_code == 202, response.text
    assert wait_done(client, headers, response.headers["location"])["state"] == "done"
    (line,) = results(client, headers, response.json()["id"])
    stored = client.get(f"/v1/assessments/{line['assessment_id']}", headers=headers).json()
    direct = client.post("/v1/assessments", json=REQUEST_EXAMPLE, headers=headers).json()
    assert stored["score"]["band"] in ("elevated", "high", "severe")
    assert stored["review"]["policy_version"] == direct["review"]["policy_version"] == policy["version"] == 1
    assert stored["review"]["required"] is direct["review"]["required"] is True
    assert stored["review"]["state"] == direct["review"]["state"] == "pending"
