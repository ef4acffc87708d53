"""Helpers of the workspace tests: signing a test client in, reading a page's CSRF token."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = TOKEN.search(html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: TestClient, key: str) -> str:
    """Sign `client` in with `key`; the session's CSRF token."""
    form = client.get("/ui/sign-in")
    assert form.status_code == 200
    response = client.post(
        "/ui/sign-in",
        data={"csrf_token": csrf_token(form.text), "api_key": key, "next": "/ui/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get("/ui/model")
    assert page.status_code == 200
    return csrf_token(page.text)
