"""Headers on every response: nosniff everywhere, no-store on the API, a policy and frame protection on
HTML pages."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from service.assessments.examples import REQUEST_EXAMPLE


def test_every_api_response_is_no_store_and_nosniff(client: TestClient, tenant: Any) -> None:
    created = client.post("/v1/assessments", json=REQUEST_EXAMPLE, headers=tenant.auth("requester"))
    assert created.status_code == 201
    document = client.get("/openapi.json").json()
    responses = [created, client.get(f"/v1/assessments/{created.json()['id']}", headers=tenant.auth("reviewer"))]
    for path, item in document["paths"].items():
        if "get" in item and path.startswith("/v1") and "{" not in path:
            responses.append(client.get(path, headers=tenant.auth("admin")))
            responses.append(client.get(path))  # 401
    responses.append(client.post("/v1/assessments", json={}, headers=tenant.auth("requester")))  # 422
    for response in responses:
        assert response.headers["cache-control"] == "no-store", response.request.url
        assert response.headers["x-content-type-options"] == "nosniff", response.request.url


def test_other_responses_are_nosniff(client: TestClient) -> None:
    for path in ("/healthz", "/openapi.json", "/no-such-page"):
        response = client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "cache-control" not in response.headers


def _directives(policy: str) -> dict[str, str]:
    return {part.strip().split(" ", 1)[0]: part.strip() for part in policy.split(";")}


def test_documentation_pages_have_a_policy_that_admits_only_their_own_script(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"].count("DENY") == 1
        policy = _directives(response.headers["content-security-policy"])
        assert policy["default-src"] == "default-src 'self'"
        assert policy["frame-ancestors"] == "frame-ancestors 'none'"
        assert policy["script-src"] == "script-src 'self'"
        # Every script the page loads is served by the package itself: nothing inline, no CDN.
        assert not re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
        for source in re.findall(r'<script src="([^"]+)"', response.text):
            assert source.startswith("/") and client.get(source).status_code == 200
