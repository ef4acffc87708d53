"""JSON bodies of every route: one reader that refuses duplicate keys, NaN and absurd nesting, and says
where a malformed body goes wrong; dates given as numbers are refused in every form."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.assessments.examples import REQUEST_EXAMPLE
from service.bodies import MAX_DEPTH, parse_json
from service.keys.models import Role
from service.problems import MalformedJson

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def document(app_client: TestClient) -> dict[str, Any]:
    return app_client.get("/openapi.json").json()


def body_operations(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                yield method.upper(), path.replace("{", "").replace("}", "")


def send(client: TestClient, tenant: Any, method: str, path: str, content: bytes) -> Any:
    """The answer of the first role allowed on the route."""
    response = None
    for role in (Role.admin, Role.analyst, Role.requester):
        response = client.request(method, path, content=content, headers={**JSON, **tenant.auth(role)})
        if response.status_code != 403:
            return response
    return response


def problem(response: Any, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"urn:travelrisk:problem:{kind}", body
    return body


# ---------------------------------------------------------------------------------------------
# Every route with a body


def test_every_body_route_refuses_a_duplicate_key_naming_it(
    client: TestClient, tenant: Any, document: dict[str, Any]
) -> None:
    operations = list(body_operations(document))
    assert ("POST", "/v1/assessments") in operations and len(operations) >= 5
    for method, path in operations:
        response = send(client, tenant, method, path, b'{"role": "requester", "zz_key": 1, "zz_key": 2}')
        body = problem(response, 400, "duplicate-key")
        assert "'zz_key'" in body["detail"] and body["errors"][0]["field"] == ""


def test_every_body_route_says_where_malformed_json_goes_wrong(
    client: TestClient, tenant: Any, document: dict[str, Any]
) -> None:
    for method, path in body_operations(document):
        response = send(client, tenant, method, path, b'{\n  "a": 1,\n  "b": 2\n  "c": 3\n}')
        body = problem(response, 400, "malformed-json")
        assert "line 4, column 3" in body["detail"], body["detail"]
        assert "character 0" not in body["detail"]


def test_every_body_route_refuses_nan_and_deep_nesting_without_a_5xx(
    client: TestClient, tenant: Any, document: dict[str, Any]
) -> None:
    for method, path in body_operations(document):
        for content in (b'{"a": NaN}', b'{"a": -Infinity}', b"[" * 20_000 + b"]" * 20_000, b'{"a": "\xff"}'):
            problem(send(client, tenant, method, path, content), 400, "malformed-json")


def test_a_duplicate_key_deep_in_an_assessment_is_refused_before_anything_is_stored(
    client: TestClient, tenant: Any
) -> None:
    text = json.dumps(REQUEST_EXAMPLE)
    # The same key twice inside `traveler`: a parser that keeps the first would see another traveller.
    twice = text.replace('"citizenships": ["CA"]', '"citizenships": ["CA"], "citizenships": ["CN"]', 1)
    assert twice != text
    response = client.post("/v1/assessments", content=twice.encode(), headers={**JSON, **tenant.auth("requester")})
    body = problem(response, 400, "duplicate-key")
    assert "'citizenships'" in body["detail"]
    listed = client.get("/v1/assessments", headers=tenant.auth("requester")).json()
    assert listed["items"] == []


def test_the_hot_path_reports_the_line_and_column(client: TestClient, tenant: Any) -> None:
    response = client.post(
        "/v1/assessments",
        content=b'{"traveler": {"citizenships": ["CA"],}',
        headers={**JSON, **tenant.auth("requester")},
    )
    body = problem(response, 400, "malformed-json")
    assert body["detail"] == (
        "The body is not valid JSON: Expecting property name enclosed in double quotes at line 1, column 38."
    )


def test_parse_json_reads_what_json_allows() -> None:
    assert parse_json(b'\xef\xbb\xbf{"a": [1, 2.5, "x", null, true], "b": {"a": 1}}') == {
        "a": [1, 2.5, "x", None, True],
        "b": {"a": 1},
    }
    # The same key in two different objects is no duplicate.
    assert parse_json(b'[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]
    nested = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert parse_json(nested) is not None
    with pytest.raises(MalformedJson):
        parse_json(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    # Brackets inside strings are not nesting.
    assert parse_json(json.dumps({"a": "[" * 100}).encode()) == {"a": "[" * 100}


# ---------------------------------------------------------------------------------------------
# Dates are ISO 8601 strings, in every form


def with_leg(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(REQUEST_EXAMPLE)
    body["trip"]["legs"][0].update(changes)
    return body


@pytest.mark.parametrize("value", [1893456000, 0, "1893456000", True, 2030.5, "2030-01-01T00:00:00", "01/02/2030"])
def test_an_assessment_date_that_is_not_an_iso_date_string_is_422(client: TestClient, tenant: Any, value: Any) -> None:
    response = client.post("/v1/assessments", json=with_leg(arrive=value), headers=tenant.auth("requester"))
    assert response.status_code == 422, response.text
    fields = [e["field"] for e in response.json()["errors"]]
    assert "trip.legs.0.arrive" in fields


@pytest.mark.parametrize(
    ("path", "field"),
    [("/v1/situations", "started_on"), ("/v1/situations", "ended_on"), ("/v1/employer-disputes", "started_on")],
)
@pytest.mark.parametrize("value", [0, 1893456000, "1893456000", False])
def test_a_reference_data_date_given_as_a_number_is_422(
    client: TestClient, tenant: Any, path: str, field: str, value: Any
) -> None:
    response = client.post(path, json={field: value}, headers=tenant.auth("analyst"))
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    patched = client.patch(f"{path}/no-such-record", json={field: value}, headers=tenant.auth("analyst"))
    assert patched.status_code == 422, patched.text
    assert field in [e["field"] for e in patched.json()["errors"]]
