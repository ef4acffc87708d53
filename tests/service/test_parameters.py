"""Query and path parameters of every route, enumerated from the OpenAPI document (so that a new route is
covered without touching this file): extreme dates and times, cursors that decode to them, numbers given
as dates, and control characters are 4xx naming the parameter, never a 5xx."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from service.keys.models import Role

# Outside the years 1-9999 once converted to UTC, or not ISO 8601 at all: always a 422.
BAD_DATETIMES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+00:01",
    "0001-01-01T00:00:00.000001+00:01",
    "10000-01-01T00:00:00Z",
    "+10000-01-01T00:00:00Z",
    "-0001-01-01T00:00:00Z",
    "99999999999-01-01T00:00:00Z",
    "1893456000",
    "0",
    "-1",
    "1e20",
]
# Representable everywhere: answered (2xx, or 404 for an unknown path id), never refused or a 5xx.
EDGE_DATETIMES = ["0001-01-01T00:00:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999", "9999-12-31T23:59:59Z"]
BAD_DATES = ["10000-01-01", "+10000-01-01", "-0001-01-01", "0000-01-01", "1893456000", "0", "2026-02-30", "20260101"]
EDGE_DATES = ["0001-01-01", "9999-12-31"]
CURSOR_DATETIMES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+00:01",
    "10000-01-01T00:00:00+00:00",
    "-0001-01-01T00:00:00+00:00",
]


@pytest.fixture(scope="module")
def document(app_client: TestClient) -> dict[str, Any]:
    return app_client.get("/openapi.json").json()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation.get("parameters", [])


def _schemas(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield schema
    for member in schema.get("anyOf", []) + schema.get("oneOf", []):
        yield from _schemas(member)


def formatted(document: dict[str, Any], fmt: str) -> list[tuple[str, str, str, str]]:
    """(method, path, location, name) of every parameter whose schema has format `fmt`."""
    found = []
    for path, method, parameters in operations(document):
        for parameter in parameters:
            if any(s.get("format") == fmt for s in _schemas(parameter.get("schema", {}))):
                found.append((method, path, parameter["in"], parameter["name"]))
    return found


def named(document: dict[str, Any], wanted: str) -> list[tuple[str, str]]:
    return [
        (method, path)
        for path, method, parameters in operations(document)
        if any(p["name"] == wanted and p["in"] == "query" for p in parameters)
    ]


def concrete(path: str) -> str:
    """The path with every `{parameter}` filled with an id that names nothing."""
    while "{" in path:
        start = path.index("{")
        path = path[:start] + "no-such-id" + path[path.index("}") + 1 :]
    return path


def call(client: TestClient, tenant: Any, method: str, path: str, params: dict[str, str]) -> Any:
    """The answer of the first role allowed on the route (every role has a key in `tenant`)."""
    response = None
    for role in (Role.admin, Role.analyst, Role.requester, Role.reviewer):
        response = client.request(method, concrete(path), params=params, headers=tenant.auth(role))
        if response.status_code != 403:
            return response
    return response


def assert_refused(response: Any, name: str, location: str = "query") -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert any(e["field"] == name and e["location"] == location for e in errors), errors


def test_the_document_has_the_parameters_this_file_sweeps(document: dict[str, Any]) -> None:
    # If enumeration broke, the sweeps below would pass on nothing.
    datetimes = {(p, n) for _, p, _, n in formatted(document, "date-time")}
    dates = {(p, n) for _, p, _, n in formatted(document, "date")}
    assert {("/v1/assessments", "created_from"), ("/v1/assessments", "changed_since")} <= datetimes
    assert {
        ("/v1/assessments", "trip_from"),
        ("/v1/situations", "as_of"),
        ("/v1/employer-disputes", "active_on"),
    } <= dates
    assert ("GET", "/v1/assessments") in named(document, "cursor")


def test_extreme_datetimes_are_422_at_every_datetime_parameter(
    client: TestClient, tenant: Any, document: dict[str, Any]
) -> None:
    for method, path, location, name in formatted(document, "date-time"):
        for value in BAD_DATETIMES:
            assert_refused(call(client, tenant, method, path, {name: value}), name, location)
        for value in EDGE_DATETIMES:
            response = call(client, tenant, method, path, {name: value})
            assert response.status_code in (200, 404), (name, value, response.text)


def test_extreme_dates_are_422_or_answered_at_every_date_parameter(
    client: TestClient, tenant: Any, document: dict[str, Any]
) -> None:
    for method, path, location, name in formatted(document, "date"):
        for value in BAD_DATES:
            assert_refused(call(client, tenant, method, path, {name: value}), name, location)
        for value in EDGE_DATES:
            response = call(client, tenant, method, path, {name: value})
            assert response.status_code in (200, 404), (name, value, response.text)


def _cursor(document: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(document)).decode().rstrip("=")


def test_cursors_decoding_to_extreme_times_are_never_a_5xx(
    client: TestClient, tenant: Any, document: dict[str, Any]
) -> None:
    # Reference-data cursors hold an id (any string is one); the assessments' cursor holds a time.
    for method, path in named(document, "cursor"):
        for value in CURSOR_DATETIMES:
            for cursor in (_cursor([value, "x"]), _cursor([value]), _cursor(value), _cursor([value, 1])):
                response = call(client, tenant, method, path, {"cursor": cursor})
                # A path naming an object (a webhook's deliveries) may answer 404 for the made-up id first.
                allowed = (200, 404, 422) if "{" in path else (200, 422)
                assert response.status_code in allowed, (path, value, response.text)
                if response.status_code == 422:
                    assert_refused(response, "cursor")


def test_an_assessment_cursor_decoding_to_an_extreme_time_is_422(client: TestClient, tenant: Any) -> None:
    for value in CURSOR_DATETIMES:
        response = client.get(
            "/v1/assessments", params={"cursor": _cursor([value, "x"])}, headers=tenant.auth(Role.reviewer)
        )
        assert_refused(response, "cursor")


def test_control_characters_in_any_query_or_path_parameter_are_422(
    client: TestClient, tenant: Any, document: dict[str, Any]
) -> None:
    swept = 0
    for path, method, parameters in operations(document):
        for parameter in parameters:
            if parameter["in"] == "query":
                for value in ("a\x00b", "\x1f", "x\x7f"):
                    assert_refused(call(client, tenant, method, path, {parameter["name"]: value}), parameter["name"])
                swept += 1
        if "{" in path:
            for value in ("a%00b", "%00", "%01", "x%7F"):
                target = path[: path.index("{")] + value + path[path.index("}") + 1 :]
                response = client.request(method, target, headers=tenant.auth(Role.admin))
                assert response.status_code == 422, (method, target, response.text)
                assert response.json()["errors"][0]["location"] == "path"
            swept += 1
    assert swept > 10
