"""/v1/destinations: what the service covers, with each profile; any role reads it."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.service.reference_helpers import assert_problem


def test_lists_the_covered_destinations_and_third_countries(client: TestClient, tenant: Any) -> None:
    for role in ("requester", "reviewer", "analyst", "admin"):
        response = client.get("/v1/destinations", headers=tenant.auth(role))
        assert response.status_code == 200, response.text
    body = response.json()
    codes = [d["code"] for d in body["items"]]
    assert codes == sorted(codes) and {"CN", "HK", "MO"} <= set(codes)
    china = next(d for d in body["items"] if d["code"] == "CN")
    assert china["recognises_dual_nationality"] is False
    assert china["nationality_group"] == ["CN", "HK", "MO", "TW"]
    assert china["laws"] and all(law["sources"] for law in china["laws"])
    assert china["revision"] >= 1 and china["updated_at"]
    third = {t["code"]: t for t in body["third_countries"]}
    assert "CN" not in third and "TH" in third
    assert any(r["destination"] == "CN" for r in third["TH"]["forced_returns"])


def test_one_destination(client: TestClient, tenant: Any) -> None:
    hong_kong = client.get("/v1/destinations/HK", headers=tenant.auth("requester"))
    assert hong_kong.status_code == 200
    assert hong_kong.json()["code"] == "HK" and "CN" in hong_kong.json()["situations_from"]
    missing = assert_problem(client.get("/v1/destinations/FR", headers=tenant.auth("requester")), 404)
    assert "CN, HK, MO" in missing["detail"]
    assert_problem(client.get("/v1/destinations"), 401)
