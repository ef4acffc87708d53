"""/v1/situations through a real database: create, read, patch, history, as_of, filters, pages, roles,
validation, and the effect of a new situation on the next assessment.

The database is shared by the whole run: each test uses home countries no other test records situations
for (AR, BR, NZ, PE), and unique titles.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.db import create_db_engine, create_session_factory
from service.reference.models import SITUATION, SituationRecord
from tests.service.reference_helpers import (
    PUBLICATION,
    QUOTE,
    assert_problem,
    backdate,
    pages,
    revision_count,
    situation,
)

PATH = "/v1/situations"


@pytest.fixture(scope="module")
def sessions(settings: Any) -> Any:
    engine = create_db_engine(settings)
    yield create_session_factory(engine)
    engine.dispose()


def create(client: TestClient, tenant: Any, **overrides: Any) -> dict[str, Any]:
    response = client.post(PATH, json=situation(**overrides), headers=tenant.auth("analyst"))
    assert response.status_code == 201, response.text
    return response.json()


# ---------------------------------------------------------------------------------------------
# Create and read


def test_create_and_read(client: TestClient, tenant: Any) -> None:
    body = situation(date_note="Dates from the analyst's notes.", start_precision="month")
    response = client.post(PATH, json=body, headers=tenant.auth("analyst"))
    assert response.status_code == 201, response.text
    created = response.json()
    assert re.fullmatch(r"sit-[0-9a-f]{8}", created["id"])
    assert response.headers["location"] == f"{PATH}/{created['id']}"
    assert {k: created[k] for k in body if k != "sources"} == {k: v for k, v in body.items() if k != "sources"}
    assert created["sources"] == [{**QUOTE, "title": None, "url": None, "date": None}]
    assert created["revision"] == 1 and created["created_at"] == created["updated_at"]
    assert created["end_precision"] is None and created["severity_note"] is None

    for role in ("requester", "reviewer", "analyst", "admin"):
        read = client.get(response.headers["location"], headers=tenant.auth(role))
        assert read.status_code == 200 and read.json() == created


def test_own_id_and_publication_citation(client: TestClient, tenant: Any, sessions: Any) -> None:
    own = f"ar-cn-{uuid.uuid4().hex[:8]}"
    created = create(client, tenant, id=own, sources=[PUBLICATION])
    assert created["id"] == own
    assert created["sources"] == [{"source": None, "quote": None, **PUBLICATION}]

    before = revision_count(sessions)
    again = client.post(PATH, json=situation(id=own), headers=tenant.auth("analyst"))
    assert "already exists" in assert_problem(again, 409)["detail"]
    assert revision_count(sessions) == before
    assert client.get(f"{PATH}/{own}", headers=tenant.auth("analyst")).json() == created


# ---------------------------------------------------------------------------------------------
# Validation: a 422 naming the field, nothing written


BAD = [
    ({"home_country": "XX"}, "home_country", "ISO 3166-1"),
    ({"home_country": "ar"}, "home_country", "ISO 3166-1"),
    ({"home_country": "CN", "destination": "CN"}, "destination", "equals home_country"),
    ({"kind": "war"}, "kind", "'extradition_case'"),
    ({"severity": "extreme"}, "severity", "'low', 'medium' or 'high'"),
    ({"title": ""}, "title", "at least 1 character"),
    ({"title": "   "}, "title", "at least 1 character"),
    ({"started_on": "2030-02-30"}, "started_on", "date"),
    ({"sources": [{"source": "no-such-source", "quote": "x"}]}, "sources.0.source", "unknown reference source"),
    ({"sources": [{"source": QUOTE["source"]}]}, "sources.0", "needs the `quote`"),
    ({"sources": [{**QUOTE, "title": "A title"}]}, "sources.0", "not both"),
    ({"sources": [{"url": "https://example.org"}]}, "sources.0", "needs `source` and `quote`"),
    ({"sources": [{"title": "T", "url": "ftp://x"}]}, "sources.0.url", "should match pattern"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD, ids=[b[1] + ":" + b[2][:20] for b in BAD])
def test_invalid_situation_is_422_naming_the_field(
    client: TestClient, tenant: Any, sessions: Any, change: dict[str, Any], field: str, message: str
) -> None:
    before = revision_count(sessions)
    response = client.post(PATH, json=situation(**change), headers=tenant.auth("analyst"))
    problem = assert_problem(response, 422, field)
    assert any(message in e["message"] for e in problem["errors"] if e["field"] == field), problem
    assert revision_count(sessions) == before


def test_missing_fields_are_named(client: TestClient, tenant: Any) -> None:
    problem = assert_problem(client.post(PATH, json={}, headers=tenant.auth("analyst")), 422)
    named = {e["field"] for e in problem["errors"]}
    assert {"home_country", "destination", "kind", "title", "started_on", "severity", "sources"} <= named


# ---------------------------------------------------------------------------------------------
# Patch and history


def test_patch_merges_revalidates_and_keeps_history(client: TestClient, tenant: Any, sessions: Any) -> None:
    created = create(client, tenant)
    url = f"{PATH}/{created['id']}"
    analyst = tenant.auth("analyst")

    patched = client.patch(url, json={"severity": "low", "severity_note": "Calmer now."}, headers=analyst)
    assert patched.status_code == 200, patched.text
    after = patched.json()
    assert after["severity"] == "low" and after["severity_note"] == "Calmer now." and after["revision"] == 2
    assert {k: v for k, v in after.items() if k not in ("severity", "severity_note", "revision", "updated_at")} == {
        k: v for k, v in created.items() if k not in ("severity", "severity_note", "revision", "updated_at")
    }
    assert after["updated_at"] > created["updated_at"]

    # The merged record is checked as a whole: an end before the stored start is refused.
    before = revision_count(sessions)
    assert_problem(client.patch(url, json={"ended_on": "2029-01-01"}, headers=analyst), 422, "ended_on")
    assert_problem(client.patch(url, json={"destination": "AR"}, headers=analyst), 422, "destination")
    assert_problem(client.patch(url, json={"destination": "JP"}, headers=analyst), 422, "destination")
    assert_problem(client.patch(url, json={"title": None}, headers=analyst), 422, "title")
    assert_problem(client.patch(url, json={"id": "another-id"}, headers=analyst), 422, "id")
    assert_problem(client.patch(url, json={"colour": "red"}, headers=analyst), 422, "colour")
    assert_problem(client.patch(url, json={"sources": [{**QUOTE, "quote": "made up"}]}, headers=analyst), 422)
    # A change that changes nothing writes nothing.
    same = client.patch(url, json={"severity": "low", "id": created["id"]}, headers=analyst)
    assert same.status_code == 200 and same.json() == after
    assert revision_count(sessions) == before

    # Clearing an optional field.
    reopened = client.patch(url, json={"ended_on": None}, headers=analyst).json()
    assert reopened["ended_on"] is None and reopened["revision"] == 3
    assert client.get(url, headers=tenant.auth("requester")).json() == reopened

    history = client.get(f"{url}/history", headers=tenant.auth("requester"))
    assert history.status_code == 200
    entries = history.json()["items"]
    assert [(e["revision"], e["action"]) for e in entries] == [(1, "created"), (2, "updated"), (3, "updated")]
    analyst_key = tenant.keys["analyst"]
    key_id = analyst_key.split("_")[1]
    assert {e["actor"] for e in entries} == {f"key:{key_id} tenant:{tenant.name} role:analyst"}
    assert analyst_key not in history.text
    assert entries[0]["changes"]["title"] == {"from": None, "to": created["title"]}
    assert entries[1]["changes"] == {
        "severity": {"from": "high", "to": "low"},
        "severity_note": {"from": None, "to": "Calmer now."},
    }
    assert entries[2]["changes"] == {"ended_on": {"from": "2030-06-30", "to": None}}
    assert entries[0]["changed_at"] < entries[1]["changed_at"] < entries[2]["changed_at"]


def test_as_of_shows_the_data_as_recorded_then(client: TestClient, tenant: Any, sessions: Any) -> None:
    today = dt.datetime.now(dt.UTC).date()
    changed = create(client, tenant, home_country="PE", severity="high")
    backdate(sessions, SITUATION, SituationRecord, changed["id"], days=10)
    client.patch(f"{PATH}/{changed['id']}", json={"severity": "medium"}, headers=tenant.auth("analyst"))
    added_today = create(client, tenant, home_country="PE", kind="sanctions")

    def listed(as_of: dt.date | None) -> dict[str, dict[str, Any]]:
        params: dict[str, Any] = {"home_country": "PE", "limit": 100}
        if as_of is not None:
            params["as_of"] = as_of.isoformat()
        return {s["id"]: s for page in pages(client, PATH, tenant.auth("reviewer"), **params) for s in page["items"]}

    eleven_days_ago = listed(today - dt.timedelta(days=11))
    assert changed["id"] not in eleven_days_ago and added_today["id"] not in eleven_days_ago
    five_days_ago = listed(today - dt.timedelta(days=5))
    assert added_today["id"] not in five_days_ago
    then = five_days_ago[changed["id"]]
    assert then["severity"] == "high" and then["revision"] == 1
    assert then["created_at"] == then["updated_at"] < changed["created_at"]
    now = listed(today)
    assert now[changed["id"]]["severity"] == "medium" and now[changed["id"]]["revision"] == 2
    assert now[added_today["id"]]["revision"] == 1
    assert now == listed(None)
    # Filters apply to the data as recorded then.
    old = client.get(
        PATH,
        params={"home_country": "PE", "kind": "sanctions", "as_of": (today - dt.timedelta(days=5)).isoformat()},
        headers=tenant.auth("reviewer"),
    ).json()
    assert old["items"] == []


def test_as_of_today_shows_the_bundled_set_on_a_new_database(client: TestClient, tenant: Any) -> None:
    # The README's example: the bundled set is recorded by the migration that created the database (during
    # this run), so today shows it and any earlier day shows nothing yet.
    today = dt.datetime.now(dt.UTC).date()
    headers = tenant.auth("requester")
    params = {"home_country": "CA", "destination": "CN", "kind": "extradition_case"}
    now = client.get(PATH, params={**params, "as_of": today.isoformat()}, headers=headers)
    assert now.status_code == 200
    assert "ca-cn-meng-extradition" in {s["id"] for s in now.json()["items"]}
    before = client.get(PATH, params={**params, "as_of": (today - dt.timedelta(days=1)).isoformat()}, headers=headers)
    assert before.status_code == 200 and before.json()["items"] == []


# ---------------------------------------------------------------------------------------------
# Lists: filters and pages


def test_filters_and_pages(client: TestClient, tenant: Any) -> None:
    made = [
        create(client, tenant, home_country="BR", destination="CN", kind="trade_dispute", ended_on=None),
        create(client, tenant, home_country="BR", destination="HK", kind="sanctions"),
        create(client, tenant, home_country="BR", destination="MO", kind="trade_dispute"),
        create(client, tenant, home_country="BR", started_on="2031-01-01", ended_on="2031-12-31"),
        create(client, tenant, home_country="BR", started_on="2029-01-01", ended_on="2029-12-31"),
    ]
    ids = sorted(s["id"] for s in made)
    headers = tenant.auth("requester")

    seen = [s["id"] for page in pages(client, PATH, headers, home_country="BR", limit=2) for s in page["items"]]
    assert seen == ids
    first = client.get(PATH, params={"home_country": "BR", "limit": 2}, headers=headers).json()
    assert len(first["items"]) == 2 and first["next_cursor"]

    def found(**params: Any) -> set[str]:
        return {s["id"] for p in pages(client, PATH, headers, home_country="BR", **params) for s in p["items"]}

    assert found(destination="HK") == {made[1]["id"]}
    assert found(kind="trade_dispute") == {made[0]["id"], made[2]["id"]}
    assert found(kind="trade_dispute", destination="MO") == {made[2]["id"]}
    assert found(active_on="2031-06-01") == {made[0]["id"], made[3]["id"]}
    assert found(active_on="2030-06-30") == {made[0]["id"], made[1]["id"], made[2]["id"]}
    assert found(active_on="2028-01-01") == set()

    # Small pages follow one another without gaps or repeats (in the database's order of ids).
    everything = [s["id"] for page in pages(client, PATH, headers, limit=100) for s in page["items"]]
    assert [s["id"] for page in pages(client, PATH, headers, limit=7) for s in page["items"]] == everything
    assert len(everything) == len(set(everything)) and set(ids) <= set(everything)
    assert "ca-cn-meng-extradition" in everything  # the bundled set is there too

    assert_problem(client.get(PATH, params={"cursor": "not-a-cursor"}, headers=headers), 422, "cursor")
    assert_problem(client.get(PATH, params={"kind": "war"}, headers=headers), 422, "kind")
    assert_problem(client.get(PATH, params={"home_country": "brazil"}, headers=headers), 422, "home_country")
    assert_problem(client.get(PATH, params={"limit": 0}, headers=headers), 422, "limit")
    assert_problem(client.get(PATH, params={"as_of": "yesterday"}, headers=headers), 422, "as_of")


# ---------------------------------------------------------------------------------------------
# The next assessment reflects the change


def trip(arrive: str, depart: str) -> dict[str, Any]:
    return {
        "traveler": {"reference": f"R-{uuid.uuid4().hex[:8]}", "citizenships": ["NZ"]},
        "trip": {"legs": [{"country": "CN", "arrive": arrive, "depart": depart}]},
    }


def assess(client: TestClient, tenant: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/assessments", json=body, headers=tenant.auth("requester"))
    assert response.status_code == 201, response.text
    return response.json()


def factor_ids(assessment: dict[str, Any]) -> list[str]:
    return [f["id"] for f in assessment["factors"]]


def test_a_new_situation_changes_the_next_assessment(client: TestClient, tenant: Any) -> None:
    during, after = trip("2047-03-10", "2047-03-20"), trip("2047-04-10", "2047-04-20")
    before = assess(client, tenant, during)
    assert "home_country_extradition_case" not in factor_ids(before)

    title = f"New Zealand holds a person Beijing wants back ({uuid.uuid4().hex[:6]})"
    created = create(
        client,
        tenant,
        home_country="NZ",
        destination="CN",
        kind="extradition_case",
        title=title,
        severity="high",
        started_on="2047-03-01",
        ended_on="2047-03-31",
    )

    scored = assess(client, tenant, during)
    assert scored["versions"]["reference_data"] != before["versions"]["reference_data"]
    factor = next(f for f in scored["factors"] if f["id"] == "home_country_extradition_case")
    assert title in factor["reason"] and created["id"] in factor["reason"]
    assert f"situation:{created['id']}" in factor["derived_from"]
    assert scored["score"]["probability"] > before["score"]["probability"]

    later = assess(client, tenant, after)
    assert "home_country_extradition_case" not in factor_ids(later)

    # Ending the situation earlier takes effect at once too.
    patched = client.patch(f"{PATH}/{created['id']}", json={"ended_on": "2047-03-05"}, headers=tenant.auth("analyst"))
    assert patched.status_code == 200
    rescored = assess(client, tenant, during)
    assert rescored["versions"]["reference_data"] != scored["versions"]["reference_data"]
    assert "home_country_extradition_case" not in factor_ids(rescored)
