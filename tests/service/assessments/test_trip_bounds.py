"""Trips are bounded by the deployment's settings: legs within the period the model knows to a few years
ahead, and a longest trip. The request form itself stays unbounded, for the CLI and for training."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from risk_rules.forms import AssessmentRequest
from service.app import create_app
from service.assessments.examples import REQUEST_EXAMPLE
from service.assessments.service import TripBounds
from service.db import create_db_engine, create_session_factory, session_scope
from service.keys import service as keys
from service.keys.models import Role
from service.settings import Settings
from tests.service.conftest import make_settings


def trip(*legs: tuple[str, str]) -> dict[str, Any]:
    body = copy.deepcopy(REQUEST_EXAMPLE)
    template = body["trip"]["legs"][0]
    body["trip"]["legs"] = [{**template, "arrive": arrive, "depart": depart} for arrive, depart in legs]
    return body


def fields(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {e["field"]: e["message"] for e in response.json()["errors"]}


def test_the_endless_trip_is_refused_at_both_ends_and_for_its_length(client: TestClient, tenant: Any) -> None:
    response = client.post("/v1/assessments", json=trip(("0001-01-01", "9999-12-31")), headers=tenant.auth("requester"))
    errors = fields(response)
    assert "1929-01-01" in errors["trip.legs.0.arrive"]
    assert "latest date" in errors["trip.legs.0.depart"]
    assert "days" in errors["trip.legs"]
    assert client.get("/v1/assessments", headers=tenant.auth("requester")).json()["items"] == []


def test_the_first_day_and_the_longest_trip_are_accepted(client: TestClient, tenant: Any) -> None:
    start = dt.date(2019, 3, 1)
    longest = (start + dt.timedelta(days=729)).isoformat()
    ok = client.post("/v1/assessments", json=trip(("1929-01-01", "1929-01-02")), headers=tenant.auth("requester"))
    assert ok.status_code == 201, ok.text
    ok = client.post("/v1/assessments", json=trip((start.isoformat(), longest)), headers=tenant.auth("requester"))
    assert ok.status_code == 201, ok.text
    one_more = (start + dt.timedelta(days=730)).isoformat()
    response = client.post(
        "/v1/assessments", json=trip((start.isoformat(), one_more)), headers=tenant.auth("requester")
    )
    assert "731 days" in fields(response)["trip.legs"]


@pytest.fixture
def strict(database_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = make_settings(database_url, trip_earliest_date=dt.date(2000, 1, 1), trip_years_ahead=0, trip_max_days=10)
    engine = create_db_engine(settings)
    with session_scope(create_session_factory(engine)) as session:
        key = keys.create_key(session, "bounds", Role.requester).secret
    engine.dispose()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, {"Authorization": f"Bearer {key}"}


def test_each_leg_is_checked_at_its_own_field(strict: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = strict
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    errors = fields(
        client.post("/v1/assessments", json=trip(("1999-12-31", "2000-01-02"), (tomorrow, tomorrow)), headers=auth)
    )
    assert set(errors) >= {"trip.legs.0.arrive", "trip.legs.1.depart"}
    assert "trip.legs.0.depart" not in errors and "trip.legs.1.arrive" not in errors


def test_the_bounds_come_from_the_settings(strict: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = strict
    assert "trip.legs.0.arrive" in fields(
        client.post("/v1/assessments", json=trip(("1999-12-31", "2000-01-02")), headers=auth)
    )
    assert "trip.legs" in fields(client.post("/v1/assessments", json=trip(("2019-01-01", "2019-01-11")), headers=auth))
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    assert "trip.legs.0.depart" in fields(client.post("/v1/assessments", json=trip((tomorrow, tomorrow)), headers=auth))
    assert client.post("/v1/assessments", json=trip(("2019-01-01", "2019-01-10")), headers=auth).status_code == 201


def test_the_form_itself_is_unbounded_for_the_cli_and_training() -> None:
    # Training reads incidents back to 1929 (and any date YAML gives), through the same form.
    request = AssessmentRequest.model_validate(trip(("1934-05-01", "1934-05-02")))
    assert request.trip.start == dt.date(1934, 5, 1)
    parsed = AssessmentRequest.model_validate(
        {
            **REQUEST_EXAMPLE,
            "trip": {
                **REQUEST_EXAMPLE["trip"],
                "legs": [{"country": "CN", "arrive": dt.date(1901, 1, 1), "depart": dt.date(1901, 1, 2)}],
            },
        }
    )
    assert parsed.trip.end == dt.date(1901, 1, 2)


def test_the_latest_day_is_years_ahead_of_today() -> None:
    bounds = TripBounds.from_settings(dt.date(1930, 1, 1), 5, 730, dt.date(2028, 2, 29))
    assert bounds.latest == dt.date(2033, 2, 28)
    assert TripBounds.from_settings(dt.date(1930, 1, 1), 5, 730, dt.date(2026, 11, 30)).latest == dt.date(2031, 11, 30)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRIP_EARLIEST_DATE", "TRIP_YEARS_AHEAD", "TRIP_MAX_DAYS"):
        monkeypatch.delenv(f"TRAVELRISK_{name}", raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.trip_earliest_date, settings.trip_years_ahead, settings.trip_max_days) == (
        dt.date(1929, 1, 1),
        5,
        730,
    )
