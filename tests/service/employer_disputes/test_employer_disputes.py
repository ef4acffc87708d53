"""/v1/employer-disputes through a real database: create, read, patch, history, as_of, filters (the name
filter matches as employers are matched), roles, validation, and the effect on the next assessment.

The database is shared by the whole run: every organisation name here carries a random token.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.db import create_db_engine, create_session_factory
from service.reference.models import EMPLOYER_DISPUTE, EmployerDisputeRecord
from tests.service.reference_helpers import (
    PUBLICATION,
    assert_problem,
    backdate,
    dispute,
    pages,
    revision_count,
    token,
)

PATH = "/v1/employer-disputes"


@pytest.fixture(scope="module")
def sessions(settings: Any) -> Any:
    engine = create_db_engine(settings)
    yield create_session_factory(engine)
    engine.dispose()


def create(client: TestClient, tenant: Any, **overrides: Any) -> dict[str, Any]:
    response = client.post(PATH, json=dispute(**overrides), headers=tenant.auth("analyst"))
    assert response.status_code == 201, response.text
    return response.json()


def test_create_read_patch_history(client: TestClient, tenant: Any, sessions: Any) -> None:
    body = dispute(start_precision="year", date_note="Only the year is known.")
    response = client.post(PATH, json=body, headers=tenant.auth("analyst"))
    assert response.status_code == 201, response.text
    created = response.json()
    assert re.fullmatch(r"emp-[0-9a-f]{8}", created["id"])
    assert response.headers["location"] == f"{PATH}/{created['id']}"
    assert {k: created[k] for k in body if k != "sources"} == {k: v for k, v in body.items() if k != "sources"}
    assert created["revision"] == 1
    url = response.headers["location"]
    assert client.get(url, headers=tenant.auth("reviewer")).json() == created

    aliases = [*body["aliases"], "Another Name GmbH"]
    patched = client.patch(url, json={"aliases": aliases, "ended_on": None}, headers=tenant.auth("analyst"))
    assert patched.status_code == 200, patched.text
    assert patched.json()["aliases"] == aliases and patched.json()["ended_on"] is None
    assert patched.json()["revision"] == 2 and patched.json()["name"] == body["name"]

    before = revision_count(sessions)
    assert_problem(
        client.patch(url, json={"started_on": "2031-01-01", "ended_on": "2030-01-01"}, headers=tenant.auth("analyst")),
        422,
        "ended_on",
    )
    assert_problem(client.patch(url, json={"aliases": ["ok", "..."]}, headers=tenant.auth("analyst")), 422, "aliases.1")
    assert revision_count(sessions) == before

    history = client.get(f"{url}/history", headers=tenant.auth("requester")).json()["items"]
    assert [e["action"] for e in history] == ["created", "updated"]
    assert history[1]["changes"] == {
        "aliases": {"from": body["aliases"], "to": aliases},
        "ended_on": {"from": "2030-12-31", "to": None},
    }
    assert history[1]["actor"].endswith(f"tenant:{tenant.name} role:analyst")

    own = f"emp-own-{uuid.uuid4().hex[:6]}"
    create(client, tenant, id=own, sources=[PUBLICATION])
    assert_problem(client.post(PATH, json=dispute(id=own), headers=tenant.auth("analyst")), 409)


BAD = [
    ({"name": ""}, "name", "at least 1 character"),
    ({"name": "..."}, "name", "no letters or digits"),
    ({"aliases": ["Fine", ""]}, "aliases.1", "at least 1 character"),
    ({"kind": "feud"}, "kind", "'commercial_dispute'"),
    ({"severity": "high"}, "severity", "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD, ids=[b[1] + ":" + b[2][:20] for b in BAD])
def test_invalid_dispute_is_422_naming_the_field(
    client: TestClient, tenant: Any, sessions: Any, change: dict[str, Any], field: str, message: str
) -> None:
    before = revision_count(sessions)
    problem = assert_problem(client.post(PATH, json=dispute(**change), headers=tenant.auth("analyst")), 422, field)
    assert any(message in e["message"] for e in problem["errors"] if e["field"] == field), problem
    assert revision_count(sessions) == before


def test_filters_name_as_of_and_pages(client: TestClient, tenant: Any, sessions: Any) -> None:
    name = token()
    headers = tenant.auth("requester")
    acme = create(client, tenant, name=f"{name} Holdings Ltd.", aliases=[f"{name} Mining"], kind="sanctions")
    hk = create(
        client, tenant, name=f"Other {name}", aliases=[], destination="HK", started_on="2031-01-01", ended_on=None
    )

    def found(**params: Any) -> list[str]:
        return [d["id"] for p in pages(client, PATH, headers, **params) for d in p["items"]]

    # Case, punctuation and legal suffixes aside; an alias counts; a near name does not.
    assert found(name=f"{name.upper()} holdings") == [acme["id"]]
    assert found(name=f"{name} mining, inc.") == [acme["id"]]
    assert found(name=f"{name}x Holdings") == []
    assert found(name=f"other {name}", destination="HK") == [hk["id"]]
    assert found(name=f"other {name}", destination="CN") == []
    assert found(name=f"{name} Holdings", kind="commercial_dispute") == []
    assert found(name=f"other {name}", active_on="2040-01-01") == [hk["id"]]
    assert found(name=f"{name} Holdings", active_on="2031-01-01") == []

    everything = found(limit=3)
    assert everything == found(limit=100) and len(everything) == len(set(everything))
    assert {acme["id"], hk["id"]} <= set(everything)
    assert "rio-tinto-2009" in everything

    backdate(sessions, EMPLOYER_DISPUTE, EmployerDisputeRecord, acme["id"], days=3)
    client.patch(f"{PATH}/{acme['id']}", json={"kind": "political_pressure"}, headers=tenant.auth("analyst"))
    two_days_ago = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)).isoformat()
    then = client.get(PATH, params={"name": f"{name} holdings", "as_of": two_days_ago}, headers=headers).json()
    assert [(d["id"], d["kind"], d["revision"]) for d in then["items"]] == [(acme["id"], "sanctions", 1)]
    assert client.get(PATH, params={"name": f"other {name}", "as_of": two_days_ago}, headers=headers).json() == {
        "items": [],
        "next_cursor": None,
    }
    now = client.get(PATH, params={"name": f"{name} holdings"}, headers=headers).json()["items"]
    assert [(d["kind"], d["revision"]) for d in now] == [("political_pressure", 2)]


def test_a_new_dispute_fires_the_factor_for_its_staff(client: TestClient, tenant: Any) -> None:
    name = token()
    created = create(
        client, tenant, name=f"Acme {name} Holdings Ltd.", aliases=[], started_on="2048-01-01", ended_on=None
    )

    def assess(employer: str) -> dict[str, Any]:
        body = {
            "traveler": {"citizenships": ["GB"], "employer": {"name": employer}},
            "trip": {"legs": [{"country": "CN", "arrive": "2048-05-01", "depart": "2048-05-10"}]},
        }
        response = client.post("/v1/assessments", json=body, headers=tenant.auth("requester"))
        assert response.status_code == 201, response.text
        return response.json()

    staff = assess(f"ACME {name} holdings")
    factor = next(f for f in staff["factors"] if f["id"] == "employer_dispute")
    assert f"Acme {name} Holdings Ltd." in factor["reason"]
    typo = assess(f"Acme {name}x Holdings")
    assert "employer_dispute" not in [f["id"] for f in typo["factors"]]
    assert [m["dispute_id"] for m in typo["possible_employer_matches"]] == [created["id"]]
