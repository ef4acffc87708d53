"""Control characters in text fields are a 422 naming the field, and nothing is stored: the same answer on
SQLite and on PostgreSQL (which cannot store NUL in text at all). The suite runs on both."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.assessments.examples import REQUEST_EXAMPLE
from tests.service.reference_helpers import PUBLICATION, QUOTE

CONTROLS = ["a\x00b", "\x00", "line\x07bell", "esc\x1b[31m", "del\x7f", "c1\x85"]


def assessment(path: str, value: str) -> dict[str, Any]:
    body = copy.deepcopy(REQUEST_EXAMPLE)
    node: Any = body
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[last] = value
    return body


def situation(**changes: Any) -> dict[str, Any]:
    body = {
        "home_country": "IS",
        "destination": "CN",
        "kind": "trade_dispute",
        "title": f"Control character test {uuid.uuid4().hex[:8]}",
        "started_on": "1991-01-01",
        "ended_on": "1991-02-01",
        "severity": "low",
        "sources": [QUOTE],
    }
    body.update(changes)
    return body


def dispute(**changes: Any) -> dict[str, Any]:
    body = {
        "name": f"Control Test {uuid.uuid4().hex[:8]} Ltd",
        "destination": "CN",
        "kind": "commercial_dispute",
        "started_on": "1991-01-01",
        "sources": [PUBLICATION],
    }
    body.update(changes)
    return body


def assert_refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert any(e["field"] == field and "control character" in e["message"] for e in errors), errors


@pytest.mark.parametrize("field", ["traveler.reference", "traveler.employer.name", "trip.legs.0.region"])
@pytest.mark.parametrize("value", CONTROLS)
def test_an_assessment_text_with_a_control_character_is_422(
    client: TestClient, tenant: Any, field: str, value: str
) -> None:
    response = client.post("/v1/assessments", json=assessment(field, value), headers=tenant.auth("requester"))
    assert_refused(response, field)
    assert client.get("/v1/assessments", headers=tenant.auth("requester")).json()["items"] == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": "Dispute\x00"}, "title"),
        ({"date_note": "A note\x00with NUL"}, "date_note"),
        ({"severity_note": "bell\x07"}, "severity_note"),
        ({"id": "id\x00x"}, "id"),
        ({"sources": [{"title": "Report\x00"}]}, "sources.0.title"),
        ({"sources": [{"title": "Report", "url": "https://example.org/\x00"}]}, "sources.0.url"),
        ({"sources": [{**QUOTE, "quote": QUOTE["quote"] + "\x00"}]}, "sources.0.quote"),
    ],
)
def test_a_situation_text_with_a_control_character_is_422(
    client: TestClient, tenant: Any, changes: dict[str, Any], field: str
) -> None:
    body = situation(**changes)
    response = client.post("/v1/situations", json=body, headers=tenant.auth("analyst"))
    if field == "id":
        assert response.status_code == 422 and "id" in [e["field"] for e in response.json()["errors"]]
    else:
        assert_refused(response, field)
    titles = [
        item["title"]
        for item in client.get("/v1/situations?home_country=IS&limit=100", headers=tenant.auth("analyst")).json()[
            "items"
        ]
    ]
    assert body["title"] not in titles


def test_notes_keep_line_breaks_and_tabs(client: TestClient, tenant: Any) -> None:
    note = "First line.\n\tSecond line."
    created = client.post("/v1/situations", json=situation(date_note=note), headers=tenant.auth("analyst"))
    assert created.status_code == 201, created.text
    assert created.json()["date_note"] == note
    # A title is one line.
    assert_refused(
        client.post("/v1/situations", json=situation(title="One\nTwo"), headers=tenant.auth("analyst")), "title"
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"name": "Acme\x00 Ltd"}, "name"), ({"aliases": ["Fine", "Acme\x1f"]}, "aliases.1")],
)
def test_an_employer_dispute_text_with_a_control_character_is_422(
    client: TestClient, tenant: Any, changes: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/employer-disputes", json=dispute(**changes), headers=tenant.auth("analyst"))
    assert_refused(response, field)


def test_a_patch_with_a_control_character_is_422_and_changes_nothing(client: TestClient, tenant: Any) -> None:
    created = client.post("/v1/situations", json=situation(), headers=tenant.auth("analyst")).json()
    response = client.patch(f"/v1/situations/{created['id']}", json={"title": "x\x00"}, headers=tenant.auth("analyst"))
    assert_refused(response, "title")
    after = client.get(f"/v1/situations/{created['id']}", headers=tenant.auth("analyst")).json()
    assert after["title"] == created["title"] and after["revision"] == 1
