"""Signing in to the workspace: sessions stored hashed, cookie attributes, CSRF on every form, expiry,
revocation and sign-out."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from service.app import create_app
from service.db import create_db_engine, create_session_factory, session_scope
from service.keys.models import Role
from service.settings import Settings
from service.ui import sessions
from service.ui.models import UiSession
from tests.service.conftest import Tenant
from tests.service.ui.helpers import csrf_token, sign_in


@pytest.fixture(scope="module")
def db(settings: Settings) -> Iterator[object]:
    engine = create_db_engine(settings)
    yield create_session_factory(engine)
    engine.dispose()


def _session_cookie(response: object) -> str:
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]  # type: ignore[attr-defined]
    found = next(c for c in cookies if c.startswith(f"{sessions.COOKIE}="))
    return found


def test_pages_need_a_session_and_send_the_browser_to_sign_in(client: TestClient) -> None:
    response = client.get("/ui/queue?band=severe", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/sign-in?next=%2Fui%2Fqueue%3Fband%3Dsevere"


def test_sign_in_sets_a_strict_httponly_cookie_and_stores_only_its_hash(
    client: TestClient, tenant: Tenant, db: object
) -> None:
    form = client.get("/ui/sign-in")
    response = client.post(
        "/ui/sign-in",
        data={"csrf_token": csrf_token(form.text), "api_key": tenant.keys[Role.reviewer], "next": "/ui/queue"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/queue"
    cookie = _session_cookie(response)
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "max-age", "path"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert "secure" not in attributes  # plain HTTP here: a Secure cookie would never come back
    token = cookie.split(";")[0].split("=", 1)[1]
    with session_scope(db) as session:  # type: ignore[arg-type]
        stored = session.scalars(select(UiSession.id_hash)).all()
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert token not in stored


def test_the_cookie_is_secure_behind_a_proxy_that_says_https(client: TestClient, tenant: Tenant) -> None:
    form = client.get("/ui/sign-in", headers={"X-Forwarded-Proto": "https"})
    assert "; secure" in form.headers["set-cookie"].lower()
    # The test client speaks plain HTTP, so it keeps no Secure cookie: send it back as a browser would.
    client.cookies.set(sessions.SIGN_IN_COOKIE, csrf_token(form.text), path="/ui/sign-in")
    response = client.post(
        "/ui/sign-in",
        data={"csrf_token": csrf_token(form.text), "api_key": tenant.keys[Role.reviewer]},
        headers={"X-Forwarded-Proto": "https"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert "; secure" in _session_cookie(response).lower()


def test_a_wrong_key_shows_the_form_again_without_echoing_it(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    form = client.get("/ui/sign-in")
    wrong = "trk_abc123_definitely-not-a-key"
    with caplog.at_level(logging.DEBUG):
        response = client.post("/ui/sign-in", data={"csrf_token": csrf_token(form.text), "api_key": wrong})
    assert response.status_code == 401
    assert "That API key is not valid" in response.text
    assert wrong not in response.text
    assert wrong not in caplog.text
    assert sessions.COOKIE not in response.headers.get("set-cookie", "")


def test_an_unknown_key_and_a_wrong_secret_read_the_same(client: TestClient, tenant: Tenant) -> None:
    real = tenant.keys[Role.reviewer]
    texts = []
    for key in ("trk_000000000000_nope", real[:-3] + "xyz"):
        form = client.get("/ui/sign-in")
        response = client.post("/ui/sign-in", data={"csrf_token": csrf_token(form.text), "api_key": key})
        assert response.status_code == 401
        texts.append(response.text.replace(csrf_token(response.text), ""))
    assert texts[0] == texts[1]


def test_sign_in_without_its_form_token_is_refused(client: TestClient, tenant: Tenant) -> None:
    client.get("/ui/sign-in")
    response = client.post("/ui/sign-in", data={"api_key": tenant.keys[Role.reviewer]}, follow_redirects=False)
    assert response.status_code == 403
    assert "security token" in response.text
    assert sessions.COOKIE not in response.headers.get("set-cookie", "")


def test_every_form_post_needs_the_session_token(client: TestClient, tenant: Tenant) -> None:
    token = sign_in(client, tenant.keys[Role.analyst])
    for path in ("/ui/sign-out", "/ui/reference/situations"):
        for data in ({}, {"csrf_token": "forged"}, {"csrf_token": token[:-1]}):
            response = client.post(path, data=data, follow_redirects=False)
            assert response.status_code == 403, (path, data)
    # Still signed in: the forged sign-out did nothing.
    assert client.get("/ui/model", follow_redirects=False).status_code == 200


def test_sign_out_ends_the_session(client: TestClient, tenant: Tenant, db: object) -> None:
    token = sign_in(client, tenant.keys[Role.reviewer])
    cookie = client.cookies.get(sessions.COOKIE)
    response = client.post("/ui/sign-out", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/sign-in"
    with session_scope(db) as session:  # type: ignore[arg-type]
        assert session.get(UiSession, hashlib.sha256(cookie.encode()).hexdigest()) is None
    # The old cookie opens nothing any more.
    client.cookies.set(sessions.COOKIE, cookie)
    assert client.get("/ui/queue", follow_redirects=False).status_code == 303


def test_an_expired_session_signs_out(client: TestClient, tenant: Tenant, db: object) -> None:
    sign_in(client, tenant.keys[Role.reviewer])
    digest = hashlib.sha256(client.cookies.get(sessions.COOKIE).encode()).hexdigest()
    with session_scope(db) as session:  # type: ignore[arg-type]
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        session.execute(update(UiSession).where(UiSession.id_hash == digest).values(expires_at=past))
    assert client.get("/ui/queue", follow_redirects=False).status_code == 303


def test_revoking_the_key_ends_its_sessions(client: TestClient, tenant: Tenant) -> None:
    sign_in(client, tenant.keys[Role.reviewer])
    assert client.get("/ui/queue", follow_redirects=False).status_code == 200
    key_id = tenant.keys[Role.reviewer].split("_")[1]
    revoked = client.delete(f"/v1/keys/{key_id}", headers=tenant.auth(Role.admin))
    assert revoked.status_code in (200, 204), revoked.text
    assert client.get("/ui/queue", follow_redirects=False).status_code == 303


def test_the_session_lifetime_is_a_setting(settings: Settings, tenant: Tenant) -> None:
    short = settings.model_copy(update={"ui_session_seconds": 120})
    with TestClient(create_app(short)) as own:
        sign_in(own, tenant.keys[Role.reviewer])
        response_cookie = own.cookies.get(sessions.COOKIE)
        assert response_cookie
        form = own.get("/ui/sign-in")
        response = own.post(
            "/ui/sign-in",
            data={"csrf_token": csrf_token(form.text), "api_key": tenant.keys[Role.reviewer]},
            follow_redirects=False,
        )
        assert "max-age=120" in _session_cookie(response).lower()


def test_sign_in_only_goes_on_to_workspace_pages(client: TestClient, tenant: Tenant) -> None:
    for target, expected in (("https://evil.example/", "/ui/"), ("//evil.example", "/ui/"), ("/ui/model", "/ui/model")):
        form = client.get("/ui/sign-in")
        response = client.post(
            "/ui/sign-in",
            data={"csrf_token": csrf_token(form.text), "api_key": tenant.keys[Role.reviewer], "next": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == expected
