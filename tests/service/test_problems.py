"""Every error is RFC 9457 problem details; no input produces a 500."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.assessments.examples import REQUEST_EXAMPLE
from service.field_errors import field_errors

PROBLEM = "application/problem+json"


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    for member in ("type", "title", "detail"):
        assert isinstance(body[member], str) and body[member], member
    return body


def with_change(path: str, value: Any) -> dict[str, Any]:
    """The contract's example with one field set (a dotted path; `value=...` deletes it)."""
    body = copy.deepcopy(REQUEST_EXAMPLE)
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key: Any = int(last) if last.isdigit() else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return body


# ---------------------------------------------------------------------------------------------
# Field paths


def test_field_errors_give_dotted_paths_without_union_member_names() -> None:
    errors = field_errors(
        [
            {"loc": ("body", "trip", "legs", 0, "depart"), "msg": "Value error, depart is before arrive"},
            {"loc": ("body", "trip", "entry_document", "literal['destination_travel_permit']"), "msg": "A"},
            {"loc": ("body", "trip", "entry_document", "function-after[_country_code(), str]"), "msg": "B"},
            {"loc": ("query", "limit"), "msg": "Input should be greater than or equal to 1"},
        ]
    )
    assert errors == [
        {"field": "trip.legs.0.depart", "message": "depart is before arrive", "location": "body"},
        {"field": "trip.entry_document", "message": "A or B", "location": "body"},
        {"field": "limit", "message": "Input should be greater than or equal to 1", "location": "query"},
    ]


# ---------------------------------------------------------------------------------------------
# Authentication and authorisation


def test_no_key_is_401_with_challenge(client: TestClient) -> None:
    response = client.get("/v1/assessments")
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert body["type"] == "about:blank"
    assert body["instance"] == "/v1/assessments"
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    "header",
    ["Bearer nonsense", "Bearer trk_000000000000_wrongsecret", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer trk__x"],
)
def test_unknown_or_malformed_key_is_401(client: TestClient, header: str) -> None:
    assert_problem(client.get("/v1/assessments", headers={"Authorization": header}), 401)


def test_right_id_wrong_secret_is_401(client: TestClient, tenant: Any) -> None:
    key = tenant.keys["requester"]
    forged = key[: key.rindex("_") + 1] + "A" * 43
    assert_problem(client.get("/v1/assessments", headers={"Authorization": f"Bearer {forged}"}), 401)


def test_wrong_role_is_403(client: TestClient, tenant: Any) -> None:
    body = assert_problem(client.post("/v1/assessments", json=REQUEST_EXAMPLE, headers=tenant.auth("reviewer")), 403)
    assert "reviewer" in body["detail"]
    assert_problem(client.get("/v1/assessments", headers=tenant.auth("analyst")), 403)


# ---------------------------------------------------------------------------------------------
# Routing errors


def test_unknown_route_is_404_problem(client: TestClient) -> None:
    assert_problem(client.get("/v1/nothing-here"), 404)


def assert_not_found(response: Any, detail: str) -> None:
    """The whole body of a lookup's 404: plain HTTP problem, its own detail, the path and request id."""
    assert_problem(response, 404)
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": detail,
        "instance": response.request.url.path,
        "request_id": response.headers["x-request-id"],
    }


def test_each_lookup_answers_a_404_naming_what_it_did_not_find(
    client: TestClient, tenant: Any, make_tenant: Any
) -> None:
    requester, reviewer, admin = tenant.auth("requester"), tenant.auth("reviewer"), tenant.auth("admin")
    created = client.post("/v1/assessments", json=REQUEST_EXAMPLE, headers=requester)
    assert created.status_code == 201, created.text
    mine = created.json()["id"]
    # Ids are echoed cut to the column's length (64; keys 32), never whole.
    long_id = "x" * 70
    assessments = f"/v1/assessments/{long_id}"
    assert_not_found(client.get(assessments, headers=requester), f"No assessment '{'x' * 64}' in your tenant.")
    # Another tenant's assessment is answered as if there were none.
    other = make_tenant().auth("requester")
    assert_not_found(client.get(f"/v1/assessments/{mine}", headers=other), f"No assessment '{mine}' in your tenant.")
    assert_not_found(
        client.get(f"/v1/assessments/{mine}/revisions/7", headers=requester),
        f"Assessment '{mine}' has no revision 7.",
    )
    assert_not_found(
        client.get("/v1/assessments/nope/reviews", headers=reviewer), "No assessment 'nope' in your tenant."
    )
    assert_not_found(
        client.post(
            "/v1/assessments/nope/reviews",
            json={"decision": "approved", "revision": 1, "rationale": "The trip is needed."},
            headers=reviewer,
        ),
        "No assessment 'nope' in your tenant.",
    )
    assert_not_found(
        client.get(f"/v1/assessments/{mine}/reviews/nope", headers=reviewer),
        f"Assessment '{mine}' has no review 'nope'.",
    )
    assert_not_found(client.get(f"/v1/rosters/{long_id}", headers=requester), f"No roster '{'x' * 64}' in your tenant.")
    assert_not_found(client.get("/v1/rosters/nope/results", headers=requester), "No roster 'nope' in your tenant.")
    assert_not_found(client.get("/v1/webhooks/wh_nope", headers=admin), "No webhook 'wh_nope' in your tenant.")
    hook = client.post(
        "/v1/webhooks",
        json={"url": "https://hooks.example.com/t", "event_types": ["assessment.created"]},
        headers=admin,
    )
    assert hook.status_code == 201, hook.text
    hook_id = hook.json()["id"]
    assert_not_found(
        client.get(f"/v1/webhooks/{hook_id}/deliveries/dl_nope", headers=admin),
        f"No delivery 'dl_nope' of webhook '{hook_id}'.",
    )
    assert_not_found(client.delete(f"/v1/keys/{'k' * 40}", headers=admin), f"No key '{'k' * 32}' in your tenant.")
    assert_not_found(
        client.get("/v1/destinations/third-countries/UY", headers=requester), "No third-country profile for 'UY'."
    )
    assert_not_found(client.get(f"/v1/situations/{long_id}", headers=requester), f"No situation '{'x' * 64}'.")
    assert_not_found(client.get("/v1/employer-disputes/emp-nope", headers=requester), "No employer dispute 'emp-nope'.")


def test_a_cursor_no_page_issued_is_422_on_the_cursor_parameter(client: TestClient, tenant: Any) -> None:
    admin = tenant.auth("admin")
    hook = client.post(
        "/v1/webhooks",
        json={"url": "https://hooks.example.com/c", "event_types": ["assessment.created"]},
        headers=admin,
    )
    assert hook.status_code == 201, hook.text
    for path in ("/v1/assessments", "/v1/reviews", f"/v1/webhooks/{hook.json()['id']}/deliveries"):
        body = assert_problem(client.get(path, params={"cursor": "bm90LWEtY3Vyc29y"}, headers=admin), 422)
        assert body["type"] == "urn:travelrisk:problem:invalid-input" and body["title"] == "Invalid input"
        assert body["detail"] == "The cursor is not valid: pass `next_cursor` from a previous page unchanged."
        [error] = body["errors"]
        assert error["field"] == "cursor" and error["location"] == "query" and error["message"], path


def test_wrong_method_is_405_problem_with_allow(client: TestClient) -> None:
    response = client.put("/v1/assessments", json={})
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET, OPTIONS, POST"


def test_options_and_wrong_methods_list_every_method_of_every_path(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    templates = {
        re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"): {m.upper() for m in item}
        for path, item in document["paths"].items()
    }
    for path in document["paths"]:
        target = path.replace("{", "x").replace("}", "")
        # A literal path that a parameter route also matches (`/v1/webhooks/event-types`) answers the
        # methods of both: the other methods are routed to the parameter route.
        methods = {m for pattern, ms in templates.items() if pattern.match(target) for m in ms} | {"OPTIONS"}
        options = client.options(target)
        assert options.status_code == 204, (path, options.text)
        assert set(options.headers["allow"].split(", ")) == methods, path
        wrong = next(m for m in ("PUT", "DELETE", "PATCH", "POST") if m not in methods)
        response = client.request(wrong, target)
        assert_problem(response, 405)
        assert set(response.headers["allow"].split(", ")) == methods, path


@pytest.mark.parametrize("header", ["Bearer  {key}", "bearer {key}", "Bearer {key} ", "BEARER   {key}"])
def test_the_authorization_header_is_read_alike_on_get_and_post(client: TestClient, tenant: Any, header: str) -> None:
    auth = {"Authorization": header.format(key=tenant.keys["requester"])}
    assert client.get("/v1/assessments", headers=auth).status_code == 200
    assert client.post("/v1/assessments", json=REQUEST_EXAMPLE, headers=auth).status_code == 201
    assert client.get("/v1/situations", headers=auth).status_code == 200
    admin = {"Authorization": header.format(key=tenant.keys["admin"])}
    assert client.post("/v1/keys", json={"role": "reviewer", "holder": "staff-1"}, headers=admin).status_code == 201


# ---------------------------------------------------------------------------------------------
# Bodies


def test_malformed_json_is_400(client: TestClient, tenant: Any) -> None:
    response = client.post(
        "/v1/assessments",
        content=b'{"traveler": {"citizenships": ["CA"],}',
        headers={**tenant.auth("requester"), "Content-Type": "application/json"},
    )
    body = assert_problem(response, 400)
    assert body["type"].endswith("malformed-json")
    assert body["errors"][0]["field"] == ""


def test_body_that_is_not_json_is_415(client: TestClient, tenant: Any) -> None:
    response = client.post(
        "/v1/assessments", content=b"traveler=x", headers={**tenant.auth("requester"), "Content-Type": "text/plain"}
    )
    assert_problem(response, 415)


def test_declared_oversized_body_is_413_before_auth(client: TestClient, settings: Any) -> None:
    payload = b"{" + b" " * (settings.max_body_bytes + 10) + b"}"
    response = client.post("/v1/assessments", content=payload, headers={"Content-Type": "application/json"})
    assert_problem(response, 413)


def test_streamed_oversized_body_is_413(client: TestClient, tenant: Any, settings: Any) -> None:
    def chunks() -> Any:
        for _ in range(settings.max_body_bytes // 1024 + 4):
            yield b" " * 1024

    response = client.post(
        "/v1/assessments", content=chunks(), headers={**tenant.auth("requester"), "Content-Type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_problem(response, 413)


# ---------------------------------------------------------------------------------------------
# Invalid input: one entry per field, with its dotted path


def post_invalid(client: TestClient, tenant: Any, body: Any) -> dict[str, Any]:
    response = client.post("/v1/assessments", json=body, headers=tenant.auth("requester"))
    problem = assert_problem(response, 422)
    assert problem["type"].endswith("invalid-input")
    assert problem["errors"], problem
    return problem


def fields(problem: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["message"] for e in problem["errors"]}


def test_depart_before_arrive_names_the_field(client: TestClient, tenant: Any) -> None:
    problem = post_invalid(client, tenant, with_change("trip.legs.1.depart", "2018-12-01"))
    assert "on or after arrive" in fields(problem)["trip.legs.1.depart"]


def test_unknown_enum_value_lists_allowed_values(client: TestClient, tenant: Any) -> None:
    problem = post_invalid(client, tenant, with_change("traveler.occupation", "astronaut"))
    message = fields(problem)["traveler.occupation"]
    for allowed in ("diplomat", "journalist", "retired", "other"):
        assert allowed in message
    problem = post_invalid(client, tenant, with_change("traveler.family_ties.0.relation", "cousin"))
    assert "sibling" in fields(problem)["traveler.family_ties.0.relation"]


def test_unknown_country_code(client: TestClient, tenant: Any) -> None:
    problem = post_invalid(client, tenant, with_change("trip.legs.0.country", "XX"))
    assert "ISO 3166-1" in fields(problem)["trip.legs.0.country"]
    problem = post_invalid(client, tenant, with_change("traveler.citizenships", ["ca"]))
    assert "traveler.citizenships.0" in fields(problem)


def test_bad_entry_document_is_one_error(client: TestClient, tenant: Any) -> None:
    problem = post_invalid(client, tenant, with_change("trip.entry_document", "home_return_permit"))
    assert list(fields(problem)) == ["trip.entry_document"]
    assert "destination_travel_permit" in fields(problem)["trip.entry_document"]


def test_unknown_field_is_rejected(client: TestClient, tenant: Any) -> None:
    problem = post_invalid(client, tenant, with_change("traveler.nickname", "x"))
    assert "traveler.nickname" in fields(problem)


def test_missing_required_fields(client: TestClient, tenant: Any) -> None:
    problem = post_invalid(client, tenant, {"traveler": {}, "trip": {"legs": []}})
    assert {"traveler.citizenships", "trip.legs"} <= set(fields(problem))


def test_every_invalid_field_is_reported(client: TestClient, tenant: Any) -> None:
    body = with_change("trip.legs.0.arrive", "not-a-date")
    body["traveler"]["relatives_in_destination"] = "maybe"
    body["trip"]["purpose"] = 7
    problem = post_invalid(client, tenant, body)
    assert {"trip.legs.0.arrive", "traveler.relatives_in_destination", "trip.purpose"} <= set(fields(problem))


def test_list_caps(client: TestClient, tenant: Any) -> None:
    leg = {"country": "CN", "arrive": "2025-01-01", "depart": "2025-01-02"}
    problem = post_invalid(client, tenant, with_change("trip.legs", [leg] * 51))
    assert "trip.legs" in fields(problem)


NASTY_BODIES: list[Any] = [
    [],
    "string",
    42,
    None,
    {"traveler": None, "trip": None},
    {"traveler": [], "trip": "x"},
    {"traveler": {"citizenships": "CA"}, "trip": {"legs": {}}},
    {"traveler": {"citizenships": [None]}, "trip": {"legs": [None]}},
    {"traveler": {"citizenships": [1e308]}, "trip": {"legs": [{"country": "CN", "arrive": 10**30, "depart": -1}]}},
    {"traveler": {"citizenships": ["CN"] * 10_000}, "trip": {"legs": []}},
    {"traveler": {"citizenships": ["C\u0000"]}, "trip": {"legs": [{"country": "\U0001f600"}]}},
    with_change("trip.legs.0.arrive", "2018-02-30"),
    with_change("trip.legs.0.depart", "99999-01-01"),
    with_change("traveler.employer", {"name": "x" * 5_000, "sector": "x"}),
    with_change("traveler.reference", {"nested": True}),
]


@pytest.mark.parametrize("body", NASTY_BODIES, ids=range(len(NASTY_BODIES)))
def test_nasty_bodies_are_4xx_problems(client: TestClient, tenant: Any, body: Any) -> None:
    response = client.post("/v1/assessments", json=body, headers=tenant.auth("requester"))
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    "raw",
    [b"", b"\xff\xfe\x00", b"[" * 5_000 + b"]" * 5_000, b'{"traveler": 1e999999}', b"nul\x00l", b'"\\ud800"'],
    ids=["empty", "not-utf8", "deep-nesting", "huge-number", "nul", "lone-surrogate"],
)
def test_raw_bodies_are_4xx_problems(client: TestClient, tenant: Any, raw: bytes) -> None:
    response = client.post(
        "/v1/assessments", content=raw, headers={**tenant.auth("requester"), "Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=abc", "band=purple", "status=x", "trip_from=yesterday", "created_from=2020-13-01", "cursor=%%%"],
)
def test_bad_query_parameters_are_422(client: TestClient, tenant: Any, query: str) -> None:
    body = assert_problem(client.get(f"/v1/assessments?{query}", headers=tenant.auth("reviewer")), 422)
    assert body["errors"][0]["location"] == "query"


def test_unknown_band_lists_allowed_values(client: TestClient, tenant: Any) -> None:
    body = assert_problem(client.get("/v1/assessments?band=purple", headers=tenant.auth("reviewer")), 422)
    assert all(band in body["errors"][0]["message"] for band in ("low", "elevated", "high", "severe"))


def test_bad_idempotency_key_is_422(client: TestClient, tenant: Any) -> None:
    response = client.post(
        "/v1/assessments", json=REQUEST_EXAMPLE, headers={**tenant.auth("requester"), "Idempotency-Key": "x" * 300}
    )
    body = assert_problem(response, 422)
    assert body["errors"][0] == {**body["errors"][0], "field": "Idempotency-Key", "location": "header"}
