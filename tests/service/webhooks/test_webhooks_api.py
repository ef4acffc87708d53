"""/v1/webhooks: registering, reading, changing and removing endpoints; secrets; validation; SSRF refusals;
roles and tenant isolation."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.conftest import make_settings
from tests.service.webhooks.conftest import register

HTTPS = "https://hooks.example.com/travelrisk"


def test_create_shows_the_secret_once(client: TestClient, tenant: Any) -> None:
    created = register(client, tenant, "http://127.0.0.1:9/hooks", ["assessment.created", "assessment.rescored"])
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["id"].startswith("wh_")
    assert created["enabled"] is True and created["disabled_reason"] is None
    assert created["event_types"] == ["assessment.created", "assessment.rescored"]

    read = client.get(f"/v1/webhooks/{created['id']}", headers=tenant.auth("admin"))
    assert read.status_code == 200
    assert "secret" not in read.json()
    assert read.json() == {k: v for k, v in created.items() if k != "secret"}
    listed = client.get("/v1/webhooks", headers=tenant.auth("admin")).json()["items"]
    assert [item["id"] for item in listed] == [created["id"]]
    assert created["secret"] not in str(listed)


def test_location_header(client: TestClient, tenant: Any) -> None:
    response = client.post(
        "/v1/webhooks", json={"url": HTTPS, "event_types": ["assessment.created"]}, headers=tenant.auth("admin")
    )
    assert response.status_code == 201
    assert response.headers["location"] == f"/v1/webhooks/{response.json()['id']}"


def test_rotate_secret_returns_a_new_one_with_a_grace_period(client: TestClient, tenant: Any) -> None:
    created = register(client, tenant, HTTPS)
    rotated = client.post(f"/v1/webhooks/{created['id']}/rotate-secret", headers=tenant.auth("admin"))
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != created["secret"]
    read = client.get(f"/v1/webhooks/{created['id']}", headers=tenant.auth("admin")).json()
    assert read["previous_secret_expires_at"] == body["previous_secret_expires_at"]
    assert read["secret_rotated_at"] is not None


def test_patch_changes_only_what_is_sent(client: TestClient, tenant: Any) -> None:
    created = register(client, tenant, HTTPS, description="HR system")
    url = f"/v1/webhooks/{created['id']}"
    changed = client.patch(url, json={"event_types": ["assessment.rescored"]}, headers=tenant.auth("admin"))
    assert changed.status_code == 200, changed.text
    assert changed.json()["event_types"] == ["assessment.rescored"]
    assert changed.json()["url"] == HTTPS and changed.json()["description"] == "HR system"

    paused = client.patch(url, json={"enabled": False}, headers=tenant.auth("admin")).json()
    assert paused["enabled"] is False and paused["disabled_reason"] == "disabled by an admin"
    resumed = client.patch(url, json={"enabled": True, "description": None}, headers=tenant.auth("admin")).json()
    assert resumed["enabled"] is True and resumed["disabled_reason"] is None and resumed["description"] is None


def test_delete_removes_it(client: TestClient, tenant: Any) -> None:
    created = register(client, tenant, HTTPS)
    url = f"/v1/webhooks/{created['id']}"
    assert client.delete(url, headers=tenant.auth("admin")).status_code == 204
    assert client.get(url, headers=tenant.auth("admin")).status_code == 404
    assert client.delete(url, headers=tenant.auth("admin")).status_code == 404


def test_event_types_are_listed(client: TestClient, tenant: Any) -> None:
    response = client.get("/v1/webhooks/event-types", headers=tenant.auth("admin"))
    assert response.status_code == 200
    types = {item["name"]: item for item in response.json()["items"]}
    assert {"assessment.created", "assessment.rescored"} <= set(types)
    assert {"old_band", "new_band", "reason"} <= set(types["assessment.rescored"]["data"])


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"url": HTTPS, "event_types": ["assessment.deleted"]}, "event_types", "choose from: assessment.created"),
        ({"url": HTTPS, "event_types": []}, "event_types", "at least 1"),
        ({"url": HTTPS}, "event_types", "Field required"),
        ({"event_types": ["assessment.created"]}, "url", "Field required"),
        ({"url": "ftp://files.example.com/x", "event_types": ["assessment.created"]}, "url", "https://"),
        ({"url": "not a url", "event_types": ["assessment.created"]}, "url", "https://"),
        ({"url": HTTPS, "event_types": ["assessment.created"], "secret": "mine"}, "secret", "Extra inputs"),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(
    client: TestClient, tenant: Any, body: dict[str, Any], field: str, fragment: str
) -> None:
    response = client.post("/v1/webhooks", json=body, headers=tenant.auth("admin"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert fragment in errors[0]["message"]
    assert client.get("/v1/webhooks", headers=tenant.auth("admin")).json()["items"] == []


def test_patch_rejects_null_and_unknown_types(client: TestClient, tenant: Any) -> None:
    created = register(client, tenant, HTTPS)
    url = f"/v1/webhooks/{created['id']}"
    for body, field in (
        ({"url": None}, "url"),
        ({"enabled": None}, "enabled"),
        ({"event_types": ["x.y"]}, "event_types"),
    ):
        response = client.patch(url, json=body, headers=tenant.auth("admin"))
        assert response.status_code == 422, (body, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [field]
    assert client.get(url, headers=tenant.auth("admin")).json()["event_types"] == ["assessment.created"]


@pytest.fixture(scope="module")
def strict_client(database_url: str) -> TestClient:
    """The service as deployed (private addresses refused). Not started as a context manager, so it runs
    no background threads: only its request handling is used."""
    return TestClient(create_app(make_settings(database_url)), raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://hooks.example.com/x", "must start with https://"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://localhost:8443/x", "loopback"),
        ("https://10.1.2.3/x", "private"),
        ("https://192.168.0.10/x", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[::1]/x", "loopback"),
        ("https://[::ffff:127.0.0.1]/x", "loopback"),
        ("https://[fe80::1]/x", "link-local"),
        ("https://224.0.0.1/x", "multicast"),
        ("https://0.0.0.0/x", "unspecified"),
        ("https://240.0.0.1/x", "reserved"),
        ("https://user:pw@hooks.example.com/x", "user name or password"),
    ],
)
def test_private_and_plain_http_urls_are_refused(
    strict_client: TestClient, tenant: Any, url: str, fragment: str
) -> None:
    response = strict_client.post(
        "/v1/webhooks", json={"url": url, "event_types": ["assessment.created"]}, headers=tenant.auth("admin")
    )
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert error["field"] == "url" and fragment in error["message"], error


def test_a_public_https_url_is_accepted_when_private_ones_are_refused(strict_client: TestClient, tenant: Any) -> None:
    response = strict_client.post(
        "/v1/webhooks",
        json={"url": "https://93.184.215.14/hooks", "event_types": ["assessment.created"]},
        headers=tenant.auth("admin"),
    )
    assert response.status_code == 201, response.text
    created = response.json()
    patched = strict_client.patch(
        f"/v1/webhooks/{created['id']}", json={"url": "https://10.0.0.8/x"}, headers=tenant.auth("admin")
    )
    assert patched.status_code == 422
    assert patched.json()["errors"][0]["field"] == "url"


def test_only_admins_manage_webhooks(client: TestClient, tenant: Any) -> None:
    created = register(client, tenant, HTTPS)
    for role in ("requester", "reviewer", "analyst"):
        assert client.get("/v1/webhooks", headers=tenant.auth(role)).status_code == 403
        assert client.get(f"/v1/webhooks/{created['id']}/deliveries", headers=tenant.auth(role)).status_code == 403
        response = client.post(
            "/v1/webhooks", json={"url": HTTPS, "event_types": ["assessment.created"]}, headers=tenant.auth(role)
        )
        assert response.status_code == 403
    assert client.get("/v1/webhooks").status_code == 401


def test_another_tenants_webhook_is_not_found(client: TestClient, make_tenant: Any) -> None:
    owner, other = make_tenant(), make_tenant()
    created = register(client, owner, HTTPS)
    url = f"/v1/webhooks/{created['id']}"
    admin = other.auth("admin")
    assert client.get(url, headers=admin).status_code == 404
    assert client.patch(url, json={"enabled": False}, headers=admin).status_code == 404
    assert client.post(f"{url}/rotate-secret", headers=admin).status_code == 404
    assert client.get(f"{url}/deliveries", headers=admin).status_code == 404
    assert client.delete(url, headers=admin).status_code == 404
    assert client.get("/v1/webhooks", headers=admin).json()["items"] == []
    assert client.get(url, headers=owner.auth("admin")).json()["enabled"] is True


def test_bad_cursor_is_422(client: TestClient, tenant: Any) -> None:
    created = register(client, tenant, HTTPS)
    response = client.get(
        f"/v1/webhooks/{created['id']}/deliveries", params={"cursor": "garbage"}, headers=tenant.auth("admin")
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "cursor"
