"""Helpers of the review and policy tests: assessments in a chosen band, decisions, extra keys."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from typing import Any

from fastapi.testclient import TestClient

from service.assessments.examples import MINIMAL_REQUEST_EXAMPLE, REQUEST_EXAMPLE

RATIONALE = "Read the factors and the mitigations; the trip's purpose justifies it."
CONDITION = "Register the trip with the consulate and agree a check-in schedule."


def severe_trip(reference: str | None = None) -> dict[str, Any]:
    """The contract's example traveller during the 2018 extradition case: scored `severe`."""
    body = copy.deepcopy(REQUEST_EXAMPLE)
    body["traveler"]["reference"] = reference or f"R-{uuid.uuid4().hex[:8]}"
    return body


def plain_trip(
    start: dt.date = dt.date(2030, 5, 1),
    countries: tuple[str, ...] = ("CN",),
    citizenship: str = "FR",
    reference: str | None = None,
) -> dict[str, Any]:
    """A traveller with nothing declared: scored `low` by the model (a policy may band it higher)."""
    body = copy.deepcopy(MINIMAL_REQUEST_EXAMPLE)
    body["traveler"] = {"reference": reference or f"R-{uuid.uuid4().hex[:8]}", "citizenships": [citizenship]}
    legs = []
    day = start
    for country in countries:
        legs.append({"country": country, "arrive": day.isoformat(), "depart": (day + dt.timedelta(days=3)).isoformat()})
        day += dt.timedelta(days=3)
    body["trip"] = {"legs": legs}
    return body


def create(client: TestClient, tenant: Any, body: dict[str, Any], role: str = "requester") -> dict[str, Any]:
    response = client.post("/v1/assessments", json=body, headers=tenant.auth(role))
    assert response.status_code == 201, response.text
    return response.json()


def decide(
    client: TestClient,
    headers: dict[str, str],
    assessment: dict[str, Any],
    decision: str = "approved",
    *,
    revision: int | None = None,
    key: str | None = None,
    **extra: Any,
) -> Any:
    body: dict[str, Any] = {
        "decision": decision,
        "revision": revision or assessment.get("revision", 1),
        "rationale": RATIONALE,
        **extra,
    }
    if decision == "approved_with_conditions" and "conditions" not in extra:
        body["conditions"] = [CONDITION]
    headers = dict(headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(f"/v1/assessments/{assessment['id']}/reviews", json=body, headers=headers)


def key_for(client: TestClient, tenant: Any, role: str, holder: str | None) -> dict[str, str]:
    """Headers of a new key of the tenant, issued through the admin API."""
    body: dict[str, Any] = {"role": role}
    if holder is not None:
        body["holder"] = holder
    response = client.post("/v1/keys", json=body, headers=tenant.auth("admin"))
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}


def put_policy(client: TestClient, tenant: Any, **policy: Any) -> dict[str, Any]:
    body = {"review_bands": ["high", "severe"], "severe_approvals": 1, "thresholds": None, **policy}
    response = client.put("/v1/policy", json=body, headers=tenant.auth("admin"))
    assert response.status_code == 200, response.text
    return response.json()


def state_of(client: TestClient, tenant: Any, assessment: dict[str, Any]) -> str:
    response = client.get(f"/v1/assessments/{assessment['id']}", headers=tenant.auth("reviewer"))
    assert response.status_code == 200, response.text
    return response.json()["review"]["state"]
