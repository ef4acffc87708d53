"""GET /v1/reviews: the tenant's review queue, earliest departure first, filtered and paged."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient

from tests.service.review_helpers import create, decide, plain_trip, put_policy, severe_trip


def queue(client: TestClient, tenant: Any, role: str = "reviewer", **params: Any) -> Any:
    return client.get("/v1/reviews", params=params, headers=tenant.auth(role))


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["assessment_id"] for item in response.json()["items"]]


def test_the_queue_is_the_tenants_open_reviews_earliest_departure_first(
    client: TestClient, tenant: Any, make_tenant: Any
) -> None:
    # Every band needs review, so that undeclared travellers queue up too.
    put_policy(client, tenant, review_bands=["low", "elevated", "high", "severe"])
    late = create(client, tenant, plain_trip(dt.date(2031, 3, 1), ("HK",)))
    early = create(client, tenant, plain_trip(dt.date(2030, 1, 10), ("TH", "CN"), reference="E-77"))
    middle = create(client, tenant, plain_trip(dt.date(2030, 6, 1), ("MO",)))
    severe = create(client, tenant, severe_trip())  # departs 2018-12-04
    decided = create(client, tenant, plain_trip(dt.date(2030, 2, 1)))
    assert decide(client, tenant.auth("reviewer"), decided).status_code == 201
    escalated = create(client, tenant, plain_trip(dt.date(2030, 3, 1)))
    assert decide(client, tenant.auth("reviewer"), escalated, "escalated").status_code == 201
    other = make_tenant()
    put_policy(client, other, review_bands=["low", "elevated", "high", "severe"])
    create(client, other, plain_trip(dt.date(2029, 1, 1)))  # another tenant's: never in this queue

    assert ids(queue(client, tenant, state="pending")) == [severe["id"], early["id"], middle["id"], late["id"]]
    # Without `state`: every open review (pending, awaiting a second approval, escalated).
    assert ids(queue(client, tenant)) == [severe["id"], early["id"], escalated["id"], middle["id"], late["id"]]
    assert ids(queue(client, tenant, state=["approved", "escalated"])) == [decided["id"], escalated["id"]]

    item = queue(client, tenant, state="pending").json()["items"][1]
    assert item["destinations"] == ["TH", "CN"]
    assert item["trip_start"] == "2030-01-10" and item["trip_end"] == "2030-01-16"
    assert item["state"] == "pending" and item["revision"] == 1 and item["band"] == early["score"]["band"]
    assert item["probability"] == early["score"]["probability"]
    assert item["traveler_reference"] == "E-77"
    assert item["waiting_since"] is not None
    top = queue(client, tenant, state="pending").json()["items"][0]
    assert (
        top["top_factor_id"] == severe["factors"][0]["id"] and top["top_factor_title"] == severe["factors"][0]["title"]
    )

    # Filters.
    assert ids(queue(client, tenant, state="pending", destination="CN")) == [severe["id"], early["id"]]
    assert ids(queue(client, tenant, state="pending", destination="MO")) == [middle["id"]]
    assert ids(queue(client, tenant, state="pending", band="severe")) == [severe["id"]]
    assert ids(queue(client, tenant, state="pending", depart_from="2030-01-10", depart_to="2030-06-01")) == [
        early["id"],
        middle["id"],
    ]

    # Pages follow the cursor without gaps or repeats.
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"state": "pending", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = queue(client, tenant, **params).json()
        seen += [item["assessment_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [severe["id"], early["id"], middle["id"], late["id"]]


def test_queue_roles_and_bad_input(client: TestClient, tenant: Any) -> None:
    assert queue(client, tenant, "admin").status_code == 200
    for role in ("requester", "analyst"):
        assert queue(client, tenant, role).status_code == 403
    assert client.get("/v1/reviews").status_code == 401
    for params, field in (
        ({"state": "sleeping"}, "state"),
        ({"band": "huge"}, "band"),
        ({"destination": "cn"}, "destination"),
        ({"depart_from": "soon"}, "depart_from"),
        ({"cursor": "nope"}, "cursor"),
        ({"limit": 0}, "limit"),
    ):
        response = queue(client, tenant, **params)
        assert response.status_code == 422, params
        assert any(e["field"].split(".")[0] == field for e in response.json()["errors"]), response.json()
