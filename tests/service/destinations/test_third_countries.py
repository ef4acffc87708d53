"""Analysts record third-country profiles; trips through them are assessed for the travellers a
destination claims, seeks or targets, and stored trips through them are re-scored."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.db import create_db_engine, create_session_factory
from service.rescoring.models import RescoringJob
from tests.service.reference_helpers import PUBLICATION, QUOTE, assert_problem, revision_count

FUTURE = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=300)
CODE = "BO"  # a country with no bundled profile


@pytest.fixture(scope="module")
def sessions(settings: Any) -> Any:
    engine = create_db_engine(settings)
    yield create_session_factory(engine)
    engine.dispose()


def profile(code: str = CODE, **changes: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": "Bolivia",
        "forced_returns": [
            {
                "destination": "CN",
                "occurred_on": "2026-02-01",
                "date_precision": "month",
                "kind": "refoulement",
                "description": "A return an analyst documents",
                "sources": [PUBLICATION],
            }
        ],
        **changes,
    }


def trip(citizenship: str, **traveler: Any) -> dict[str, Any]:
    end = FUTURE + dt.timedelta(days=6)
    return {
        "traveler": {"citizenships": [citizenship], **traveler},
        "trip": {"legs": [{"country": CODE, "arrive": FUTURE.isoformat(), "depart": end.isoformat()}]},
    }


def wait_for_jobs(sessions: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as session:
            if session.scalar(select(RescoringJob.id).where(RescoringJob.finished_at.is_(None))) is None:
                return
        time.sleep(0.1)
    raise AssertionError("re-scoring jobs did not finish")


def test_an_analyst_adds_a_third_country_and_trips_through_it_are_scored(
    client: TestClient, tenant: Any, sessions: Any
) -> None:
    requester = tenant.auth("requester")
    before = client.post("/v1/assessments", json=trip("CN"), headers=requester)
    assert before.status_code == 201 and before.json()["status"] == "out_of_scope"

    created = client.put(f"/v1/destinations/third-countries/{CODE}", json=profile(), headers=tenant.auth("analyst"))
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"/v1/destinations/third-countries/{CODE}"
    assert created.json()["revision"] == 1
    assert client.get(f"/v1/destinations/third-countries/{CODE}", headers=requester).json()["name"] == "Bolivia"
    history = client.get(f"/v1/destinations/third-countries/{CODE}/history", headers=requester).json()
    assert [item["revision"] for item in history["items"]] == [1]

    # The same profile again changes nothing and writes nothing.
    again = client.put(f"/v1/destinations/third-countries/{CODE}", json=profile(), headers=tenant.auth("analyst"))
    assert again.status_code == 200 and again.json()["revision"] == 1

    national = client.post("/v1/assessments", json=trip("CN"), headers=requester).json()
    assert national["status"] == "scored"
    sought = trip("CN", legal_exposure={"sought_by_destination_authorities": True})
    fugitive = client.post("/v1/assessments", json=sought, headers=requester).json()
    assert "third_country_forced_returns" in {f["id"] for f in fugitive["factors"]}
    tourist = client.post("/v1/assessments", json=trip("GB"), headers=requester).json()
    assert tourist["status"] == "out_of_scope"

    # The stored trip that was out of scope is re-scored in the background.
    wait_for_jobs(sessions)
    latest = client.get(f"/v1/assessments/{before.json()['id']}", headers=requester).json()
    assert latest["status"] == "scored" and latest["revision"] == 2
    assert f"third-country profile {CODE}" in latest["revision_reason"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (profile(code="PE"), "code"),
        (profile(code="HK", name="Hong Kong"), "code"),
        (
            profile(forced_returns=[{**profile()["forced_returns"][0], "destination": "FR"}]),
            "forced_returns.0.destination",
        ),
        (profile(forced_returns=[{**profile()["forced_returns"][0], "sources": []}]), "forced_returns.0.sources"),
        (
            profile(forced_returns=[{**profile()["forced_returns"][0], "sources": [{**QUOTE, "quote": "Not in it."}]}]),
            "forced_returns.0.sources.0.quote",
        ),
        (profile(forced_returns=[{**profile()["forced_returns"][0], "kind": "holiday"}]), "forced_returns.0.kind"),
    ],
)
def test_an_invalid_profile_is_refused_and_nothing_is_written(
    client: TestClient, tenant: Any, sessions: Any, body: dict[str, Any], field: str
) -> None:
    code = "PY"
    if body["code"] != "PE" and body["code"] != "HK":
        body = {**body, "code": code}
    path_code = "HK" if body["code"] == "HK" else code
    revisions = revision_count(sessions)
    response = client.put(f"/v1/destinations/third-countries/{path_code}", json=body, headers=tenant.auth("analyst"))
    assert_problem(response, 422, field)
    assert revision_count(sessions) == revisions


def test_only_analysts_write_third_countries(client: TestClient, tenant: Any) -> None:
    for role in ("requester", "reviewer", "admin"):
        response = client.put("/v1/destinations/third-countries/PY", json=profile("PY"), headers=tenant.auth(role))
        assert_problem(response, 403)
    assert_problem(client.get("/v1/destinations/third-countries/UY", headers=tenant.auth("requester")), 404)
