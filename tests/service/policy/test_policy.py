"""GET/PUT /v1/policy and its history: versions, stricter-only thresholds, non-retroactivity, roles and
tenant isolation."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.service.review_helpers import create, plain_trip, put_policy, severe_trip


def test_the_default_policy_is_version_0(client: TestClient, tenant: Any) -> None:
    for role in ("requester", "reviewer", "analyst", "admin"):
        response = client.get("/v1/policy", headers=tenant.auth(role))
        assert response.status_code == 200
        policy = response.json()
        assert policy["version"] == 0 and policy["created_at"] is None
        assert policy["review_bands"] == ["high", "severe"] and policy["severe_approvals"] == 1
        assert policy["thresholds"] is None and policy["effective_thresholds"] == policy["model_thresholds"]
    assert client.get("/v1/policy").status_code == 401
    history = client.get("/v1/policy/history", headers=tenant.auth("requester")).json()["items"]
    assert [p["version"] for p in history] == [0]


def test_every_change_is_a_new_version_with_history(client: TestClient, tenant: Any) -> None:
    first = put_policy(client, tenant, review_bands=["severe", "elevated", "high"])
    assert first["version"] == 1 and first["review_bands"] == ["elevated", "high", "severe"]
    assert first["changed_by_holder"] == tenant.holder("admin") and first["created_at"]
    # The same policy again changes nothing.
    same = put_policy(client, tenant, review_bands=["elevated", "high", "severe"])
    assert same["version"] == 1
    second = put_policy(client, tenant, severe_approvals=2)
    assert second["version"] == 2
    assert client.get("/v1/policy", headers=tenant.auth("reviewer")).json() == second
    history = client.get("/v1/policy/history", headers=tenant.auth("reviewer")).json()["items"]
    assert [(p["version"], p["review_bands"], p["severe_approvals"]) for p in history] == [
        (0, ["high", "severe"], 1),
        (1, ["elevated", "high", "severe"], 1),
        (2, ["high", "severe"], 2),
    ]


def test_only_admins_change_the_policy(client: TestClient, tenant: Any) -> None:
    body = {"review_bands": ["severe"], "severe_approvals": 1, "thresholds": None}
    for role in ("requester", "reviewer", "analyst"):
        assert client.put("/v1/policy", json=body, headers=tenant.auth(role)).status_code == 403
    assert client.get("/v1/policy", headers=tenant.auth("admin")).json()["version"] == 0


def test_thresholds_may_only_be_stricter(client: TestClient, tenant: Any) -> None:
    model = client.get("/v1/policy", headers=tenant.auth("admin")).json()["model_thresholds"]
    looser = client.put(
        "/v1/policy",
        json={"review_bands": ["high", "severe"], "severe_approvals": 1, "thresholds": {"high": model["high"] * 2}},
        headers=tenant.auth("admin"),
    )
    assert looser.status_code == 422
    error = looser.json()["errors"][0]
    assert error["field"] == "thresholds.high"
    assert "looser than the model's high threshold" in error["message"] and "may only lower" in error["message"]

    disordered = client.put(
        "/v1/policy",
        json={
            "review_bands": ["high"],
            "severe_approvals": 1,
            "thresholds": {"elevated": model["elevated"], "high": model["elevated"] / 2},
        },
        headers=tenant.auth("admin"),
    )
    assert disordered.status_code == 422 and disordered.json()["errors"][0]["field"] == "thresholds.high"
    for body, field in (
        ({"review_bands": ["high", "high"], "severe_approvals": 1}, "review_bands"),
        ({"review_bands": ["huge"], "severe_approvals": 1}, "review_bands.0"),
        ({"review_bands": ["high"], "severe_approvals": 3}, "severe_approvals"),
        ({"review_bands": ["high"], "severe_approvals": 1, "thresholds": {"high": 0}}, "thresholds.high"),
        ({"review_bands": ["high"], "severe_approvals": 1, "thresholds": {"extreme": 0.1}}, "thresholds.extreme"),
        ({"severe_approvals": 1}, "review_bands"),
    ):
        response = client.put("/v1/policy", json=body, headers=tenant.auth("admin"))
        assert response.status_code == 422, body
        assert field in {e["field"] for e in response.json()["errors"]}, response.json()
    # Nothing was stored.
    assert client.get("/v1/policy", headers=tenant.auth("admin")).json()["version"] == 0

    stricter = put_policy(client, tenant, thresholds={"high": model["high"] / 2, "severe": model["severe"] / 2})
    assert stricter["thresholds"] == {"elevated": None, "high": model["high"] / 2, "severe": model["severe"] / 2}
    assert stricter["effective_thresholds"] == {
        "elevated": model["elevated"],
        "high": model["high"] / 2,
        "severe": model["severe"] / 2,
    }


def test_a_change_applies_to_new_assessments_never_to_stored_ones(client: TestClient, tenant: Any) -> None:
    before = create(client, tenant, plain_trip())
    severe_before = create(client, tenant, severe_trip())
    assert before["score"]["band"] == "low" and before["review"]["state"] == "not_required"
    # Thresholds under an undeclared traveller's probability make it `high`; severe trips need no review.
    put_policy(client, tenant, review_bands=["high"], thresholds={"elevated": 1e-7, "high": 2e-7})

    after = create(client, tenant, plain_trip())
    assert after["score"]["band"] == "high"
    assert after["review"] == {**after["review"], "required": True, "state": "pending", "policy_version": 1}
    severe_after = create(client, tenant, severe_trip())
    assert severe_after["review"]["state"] == "not_required"

    for stored, band, state in ((before, "low", "not_required"), (severe_before, "severe", "pending")):
        read = client.get(f"/v1/assessments/{stored['id']}", headers=tenant.auth("reviewer")).json()
        assert read["score"]["band"] == band and read["review"]["state"] == state
        assert read["review"]["policy_version"] == 0
    listed = client.get("/v1/assessments", headers=tenant.auth("reviewer")).json()["items"]
    assert {item["id"]: item["review_state"] for item in listed} == {
        before["id"]: "not_required",
        severe_before["id"]: "pending",
        after["id"]: "pending",
        severe_after["id"]: "not_required",
    }


def test_policies_are_per_tenant(client: TestClient, tenant: Any, make_tenant: Any) -> None:
    other = make_tenant()
    put_policy(client, tenant, review_bands=[], severe_approvals=2)
    assert client.get("/v1/policy", headers=other.auth("admin")).json()["version"] == 0
    assert [p["version"] for p in client.get("/v1/policy/history", headers=other.auth("admin")).json()["items"]] == [0]
    # The other tenant's severe trip still needs review under its own (default) policy.
    assert create(client, other, severe_trip())["review"]["state"] == "pending"
    assert create(client, tenant, severe_trip())["review"]["state"] == "not_required"
