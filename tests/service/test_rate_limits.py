"""Rate limits: per key, and per client address for failed authentication, with 429, Retry-After and the
RateLimit headers. Each test runs its own application with small limits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.app import create_app
from service.assessments.examples import REQUEST_EXAMPLE
from service.db import create_db_engine, create_session_factory, session_scope
from service.keys import service as keys
from service.keys.models import Role
from service.settings import Settings
from tests.service.conftest import make_settings

POLICY = re.compile(r'^"key-60s";q=3;w=60$')
REMAINING = re.compile(r'^"key-60s";r=(\d+);t=(\d+)$')


@pytest.fixture
def limited(database_url: str) -> Iterator[TestClient]:
    settings = make_settings(database_url, rate_limit_per_key="3/minute", rate_limit_failed_auth_per_address="2/minute")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def new_key(settings: Settings, tenant: str, role: Role) -> str:
    engine = create_db_engine(settings)
    try:
        with session_scope(create_session_factory(engine)) as session:
            holder = "staff-1" if role == Role.reviewer else None
            return keys.create_key(session, tenant, role, holder=holder).secret
    finally:
        engine.dispose()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_key_over_its_limit_gets_429_with_retry_after(limited: TestClient, settings: Settings) -> None:
    key, other = new_key(settings, "rl-a", Role.requester), new_key(settings, "rl-a", Role.requester)
    remaining = []
    for call in range(3):
        response = (
            limited.post("/v1/assessments", json=REQUEST_EXAMPLE, headers=bearer(key))
            if call == 0
            else limited.get("/v1/assessments", headers=bearer(key))
        )
        assert response.status_code in (200, 201), response.text
        assert POLICY.match(response.headers["ratelimit-policy"])
        found = REMAINING.match(response.headers["ratelimit"])
        assert found and 0 < int(found.group(2)) <= 60
        remaining.append(int(found.group(1)))
    assert remaining == [2, 1, 0]

    refused = limited.get("/v1/assessments", headers=bearer(key))
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:travelrisk:problem:rate-limited"
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert REMAINING.match(refused.headers["ratelimit"]).group(1) == "0"  # type: ignore[union-attr]
    assert limited.post("/v1/assessments", json=REQUEST_EXAMPLE, headers=bearer(key)).status_code == 429
    # Another key of the same tenant has its own count.
    assert limited.get("/v1/assessments", headers=bearer(other)).status_code == 200


def test_failed_authentications_from_one_address_are_limited(limited: TestClient, settings: Settings) -> None:
    valid = new_key(settings, "rl-b", Role.requester)
    wrong = "trk_0123456789ab_" + "B" * 43
    for _ in range(2):
        assert limited.get("/v1/assessments", headers=bearer(wrong)).status_code == 401
    refused = limited.get("/v1/assessments", headers=bearer(wrong))
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert refused.headers["ratelimit-policy"] == '"failed-auth-60s";q=2;w=60'
    # While the address is over its limit, even a right key is not checked: guessing stays slow.
    assert limited.get("/v1/assessments", headers=bearer(valid)).status_code == 429
    assert limited.post("/v1/assessments", json=REQUEST_EXAMPLE, headers=bearer(valid)).status_code == 429
    # A request without a key guesses nothing, and is told to send one.
    assert limited.get("/v1/assessments").status_code == 401


def test_limits_are_per_client_address(limited: TestClient, settings: Settings) -> None:
    wrong = bearer("trk_0123456789ab_" + "C" * 43)
    for _ in range(3):
        limited.get("/v1/assessments", headers=wrong)
    assert limited.get("/v1/assessments", headers=wrong).status_code == 429
    elsewhere = TestClient(limited.app, client=("203.0.113.9", 50000), raise_server_exceptions=False)
    assert elsewhere.get("/v1/assessments", headers=wrong).status_code == 401


def test_an_empty_setting_turns_a_limit_off(database_url: str, settings: Settings) -> None:
    key = new_key(settings, "rl-c", Role.reviewer)
    unlimited = make_settings(database_url, rate_limit_per_key="", rate_limit_failed_auth_per_address="")
    with TestClient(create_app(unlimited), raise_server_exceptions=False) as client:
        for _ in range(5):
            response = client.get("/v1/assessments", headers=bearer(key))
            assert response.status_code == 200
            assert "ratelimit" not in response.headers


@pytest.mark.parametrize("value", ["lots", "3/fortnight", "-1/minute"])
def test_a_malformed_limit_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValidationError, match="not a rate limit"):
        Settings(_env_file=None, rate_limit_per_key=value)  # type: ignore[call-arg]


def test_the_defaults_are_documented_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAVELRISK_RATE_LIMIT_PER_KEY", raising=False)
    monkeypatch.delenv("TRAVELRISK_RATE_LIMIT_FAILED_AUTH_PER_ADDRESS", raising=False)
    defaults: Any = Settings(_env_file=None)  # type: ignore[call-arg]
    assert defaults.rate_limit_per_key == "1200/minute"
    assert defaults.rate_limit_failed_auth_per_address == "30/minute"
