"""The OpenAPI document: every route described, examples valid against the published schemas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOC_URI = "urn:travelrisk:openapi"


@pytest.fixture(scope="module")
def document(app_client: TestClient) -> dict[str, Any]:
    response = app_client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for `schema`, resolving `#/components/...` references inside the document."""
    registry = Registry().with_resource(DOC_URI, Resource.from_contents(document, default_specification=DRAFT202012))
    if "$ref" in schema and schema["$ref"].startswith("#/"):
        schema = {"$ref": DOC_URI + schema["$ref"]}
    else:
        schema = _absolute(schema)
    return Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())


def _absolute(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (DOC_URI + v if k == "$ref" and isinstance(v, str) and v.startswith("#/") else _absolute(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_absolute(v) for v in node]
    return node


def schema_errors(document: dict[str, Any], schema: dict[str, Any], instance: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator(document, schema).iter_errors(instance)]


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def examples_of(content: dict[str, Any]) -> Iterator[Any]:
    if "example" in content:
        yield content["example"]
    for example in content.get("examples", {}).values():
        yield example["value"]


def test_every_example_is_valid_against_its_schema(document: dict[str, Any]) -> None:
    checked = 0
    for path, method, operation in operations(document):
        bodies = operation.get("requestBody", {}).get("content", {})
        responses = [c for r in operation["responses"].values() for c in r.get("content", {}).values()]
        for content in [*bodies.values(), *responses]:
            for example in examples_of(content):
                assert "schema" in content, (path, method)
                assert schema_errors(document, content["schema"], example) == [], (path, method)
                checked += 1
    assert checked >= 5


def test_examples_are_rejected_when_wrong(document: dict[str, Any]) -> None:
    # The check above must be able to fail: a broken example is reported.
    post = document["paths"]["/v1/assessments"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema_errors(document, schema, {"traveler": {"citizenships": []}, "trip": {"legs": []}})
    response_schema = post["responses"]["201"]["content"]["application/json"]["schema"]
    assert schema_errors(document, response_schema, {"id": "x"})


def test_every_route_is_described(document: dict[str, Any]) -> None:
    expected = {
        ("/v1/assessments", "post"),
        ("/v1/assessments", "get"),
        ("/v1/assessments/{assessment_id}", "get"),
        ("/v1/factors", "get"),
        ("/v1/model", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    }
    found = {(path, method) for path, method, _ in operations(document)}
    assert expected <= found
    for path, method, operation in operations(document):
        assert operation.get("summary") and operation.get("description"), (path, method)


def test_v1_routes_need_the_bearer_scheme(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    for path, method, operation in operations(document):
        if path.startswith("/v1/"):
            assert operation.get("security") == [{"bearerAuth": []}], (path, method)
            assert "401" in operation["responses"], (path, method)
        else:
            assert "security" not in operation


def test_errors_are_documented_as_problem_details(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert list(response["content"]) == ["application/problem+json"], (path, method, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_real_problem_bodies_match_the_schema(document: dict[str, Any], client: TestClient, tenant: Any) -> None:
    schema = {"$ref": "#/components/schemas/ProblemDetails"}
    bad = client.post("/v1/assessments", json={"trip": {}}, headers=tenant.auth("requester"))
    unauthorised = client.get("/v1/assessments")
    for response in (bad, unauthorised):
        assert schema_errors(document, schema, response.json()) == []


def test_docs_page(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "openapi.json" in response.text
