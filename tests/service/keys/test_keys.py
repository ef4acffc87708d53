"""API keys: the CLI, the admin API, hashing, revocation and tenant scoping."""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.db import create_db_engine, create_session_factory, session_scope
from service.keys import service as keys
from service.keys.models import ApiKey, Role
from tests.service.conftest import cli

KEY_SHAPE = re.compile(r"^trk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")


def test_keys_create_prints_only_the_key(database_url: str, client: TestClient) -> None:
    done = cli("keys", "create", "--tenant", "cli-tenant", "--role", "requester", database_url=database_url)
    assert KEY_SHAPE.fullmatch(done.stdout.rstrip("\n")), done.stdout
    assert done.stdout.count("\n") == 1
    key = done.stdout.strip()
    assert client.get("/v1/assessments", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_keys_list_and_revoke(database_url: str, client: TestClient) -> None:
    key = cli("keys", "create", "--tenant", "cli-revoke", "--role", "admin", database_url=database_url).stdout.strip()
    key_id = keys.parse_key_id(key)
    listing = cli("keys", "list", "--tenant", "cli-revoke", database_url=database_url).stdout
    assert key_id in listing and "admin" in listing
    assert key not in listing
    cli("keys", "revoke", key_id, database_url=database_url)
    assert client.get("/v1/keys", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    listing = cli("keys", "list", "--tenant", "cli-revoke", database_url=database_url).stdout
    line = next(line for line in listing.splitlines() if line.startswith(key_id))
    assert not line.endswith("\t-")


def test_cli_rejects_unknown_role_and_bad_tenant(database_url: str) -> None:
    bad_role = cli("keys", "create", "--tenant", "x", "--role", "boss", database_url=database_url, check=False)
    assert bad_role.returncode != 0 and bad_role.stdout == ""
    bad_tenant = cli("keys", "create", "--tenant", "a b", "--role", "admin", database_url=database_url, check=False)
    assert bad_tenant.returncode != 0 and bad_tenant.stdout == ""
    unknown = cli("keys", "revoke", "nosuchkey", database_url=database_url, check=False)
    assert unknown.returncode == 1


def test_every_command_has_help(database_url: str) -> None:
    for command in (
        ["serve"],
        ["db"],
        ["db", "upgrade"],
        ["db", "current"],
        ["keys"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "revoke"],
    ):
        done = cli(*command, "--help", database_url=database_url)
        assert "Usage" in done.stdout, command


def test_only_a_hash_is_stored(settings: Any) -> None:
    engine = create_db_engine(settings)
    factory = create_session_factory(engine)
    with session_scope(factory) as session:
        issued = keys.create_key(session, "hash-check", Role.reviewer, "staff-hash-check")
    with session_scope(factory) as session:
        row = session.scalar(select(ApiKey).where(ApiKey.id == issued.record.id))
        assert row is not None
        assert issued.secret not in (row.secret_hash, row.id)
        assert len(row.secret_hash) == 64
        assert keys.verify(session, issued.secret) is not None
        assert keys.verify(session, issued.secret + "x") is None
    engine.dispose()


def test_admin_manages_own_tenant_keys(client: TestClient, tenant: Any, make_tenant: Any) -> None:
    created = client.post("/v1/keys", json={"role": "reviewer", "holder": "staff-0042"}, headers=tenant.auth("admin"))
    assert created.status_code == 201, created.text
    new = created.json()
    assert new["holder"] == "staff-0042"
    assert created.headers["location"] == f"/v1/keys/{new['id']}"
    assert KEY_SHAPE.fullmatch(new["key"])
    assert client.get("/v1/assessments", headers={"Authorization": f"Bearer {new['key']}"}).status_code == 200

    listed = client.get("/v1/keys", headers=tenant.auth("admin")).json()["items"]
    assert new["id"] in {k["id"] for k in listed}
    assert all("key" not in k and "secret_hash" not in k for k in listed)
    assert next(k for k in listed if k["id"] == new["id"])["holder"] == "staff-0042"
    assert len(listed) == len(Role) + 1

    other = make_tenant()
    assert client.delete(f"/v1/keys/{new['id']}", headers=other.auth("admin")).status_code == 404
    assert client.delete(f"/v1/keys/{new['id']}", headers=tenant.auth("admin")).status_code == 204
    assert client.get("/v1/assessments", headers={"Authorization": f"Bearer {new['key']}"}).status_code == 401


def test_only_admins_manage_keys(client: TestClient, tenant: Any) -> None:
    for role in ("requester", "reviewer", "analyst"):
        assert client.get("/v1/keys", headers=tenant.auth(role)).status_code == 403
        assert client.post("/v1/keys", json={"role": "admin"}, headers=tenant.auth(role)).status_code == 403


def test_a_key_revoked_elsewhere_is_refused_once_the_cache_expires(database_url: str, tmp_path: Any) -> None:
    from service.app import create_app
    from tests.service.conftest import make_settings

    key = cli(
        "keys", "create", "--tenant", "cache-check", "--role", "reviewer", "--holder", "s-1", database_url=database_url
    ).stdout
    headers = {"Authorization": f"Bearer {key.strip()}"}
    with TestClient(create_app(make_settings(database_url, key_cache_seconds=0.5))) as client:
        assert client.get("/v1/assessments", headers=headers).status_code == 200
        cli("keys", "revoke", key.strip(), database_url=database_url)
        time.sleep(0.6)
        assert client.get("/v1/assessments", headers=headers).status_code == 401
    with TestClient(create_app(make_settings(database_url, key_cache_seconds=0))) as client:
        assert client.get("/v1/assessments", headers=headers).status_code == 401


def test_cache_keeps_digests_not_keys() -> None:
    cache = keys.VerifiedKeyCache(ttl=60, max_entries=2)
    principal = keys.Principal(key_id="abc", tenant_id="t", tenant_name="t", role=Role.admin)
    cache.put("trk_abc_secret", principal)
    assert cache.get("trk_abc_secret") == principal
    assert "trk_abc_secret" not in repr(cache.__dict__)
    cache.forget("abc")
    assert cache.get("trk_abc_secret") is None
    for i in range(5):
        cache.put(f"trk_{i}_s", principal)
    assert len(cache._entries) <= 2


def test_reviewer_keys_need_a_holder_and_holders_are_validated(client: TestClient, tenant: Any) -> None:
    admin = tenant.auth("admin")
    before = client.get("/v1/keys", headers=admin).json()["items"]
    for body, message in (
        ({"role": "reviewer"}, "must have a holder"),
        ({"role": "reviewer", "holder": ""}, "1-64"),
        ({"role": "admin", "holder": "x" * 65}, "1-64"),
        ({"role": "requester", "holder": "staff\n42"}, "printable"),
        ({"role": "requester", "holder": "staff\x1b[31m"}, "printable"),
        ({"role": "requester", "holder": " staff-1"}, "spaces"),
    ):
        response = client.post("/v1/keys", json=body, headers=admin)
        assert response.status_code == 422, body
        problem = response.json()
        assert problem["errors"][0]["field"] == "holder" and message in problem["errors"][0]["message"]
    # Nothing was written.
    assert client.get("/v1/keys", headers=admin).json()["items"] == before
    # Other roles may go without one.
    created = client.post("/v1/keys", json={"role": "requester"}, headers=admin)
    assert created.status_code == 201 and created.json()["holder"] is None


def test_cli_sets_and_requires_holders(database_url: str) -> None:
    missing = cli(
        "keys", "create", "--tenant", "cli-holder", "--role", "reviewer", database_url=database_url, check=False
    )
    assert missing.returncode != 0 and missing.stdout == "" and "holder" in missing.stderr
    bad = cli(
        "keys",
        "create",
        "--tenant",
        "cli-holder",
        "--role",
        "admin",
        "--holder",
        "a\tb",
        database_url=database_url,
        check=False,
    )
    assert bad.returncode != 0 and bad.stdout == ""
    key = cli(
        "keys",
        "create",
        "--tenant",
        "cli-holder",
        "--role",
        "reviewer",
        "--holder",
        "staff-7",
        database_url=database_url,
    ).stdout.strip()
    assert KEY_SHAPE.fullmatch(key)
    listing = cli("keys", "list", "--tenant", "cli-holder", database_url=database_url).stdout
    line = next(line for line in listing.splitlines() if line.startswith(keys.parse_key_id(key) or "?"))
    assert "\treviewer\tstaff-7\t" in line


def test_a_tenant_admin_cannot_create_an_analyst_key(client: TestClient, tenant: Any) -> None:
    response = client.post("/v1/keys", json={"role": "analyst"}, headers=tenant.auth("admin"))
    assert response.status_code == 403, response.text
    detail = response.json()["detail"]
    assert "operator" in detail and "travelrisk keys create --tenant NAME --role analyst" in detail
    listed = client.get("/v1/keys", headers=tenant.auth("admin")).json()["items"]
    # Only the keys the fixture made (one per role): nothing was created.
    assert len(listed) == len(Role)
    for role in ("requester", "reviewer", "admin"):
        body = {"role": role, "holder": f"staff-{role}"}
        created = client.post("/v1/keys", json=body, headers=tenant.auth("admin"))
        assert created.status_code == 201, created.text


def test_the_operator_creates_analyst_keys_with_the_cli(database_url: str, client: TestClient) -> None:
    done = cli("keys", "create", "--tenant", "operator-cli", "--role", "analyst", database_url=database_url)
    key = done.stdout.strip()
    assert KEY_SHAPE.fullmatch(key)
    auth = {"Authorization": f"Bearer {key}"}
    # An analyst writes reference data (a body that fails validation proves the role got past the check).
    response = client.post("/v1/situations", json={}, headers=auth)
    assert response.status_code == 422, response.text
    assert client.get("/v1/assessments", headers=auth).status_code == 403
