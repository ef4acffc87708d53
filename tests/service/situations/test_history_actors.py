"""The history of a situation names the key and tenant of a change only to that tenant's own readers."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi.testclient import TestClient

from tests.service.reference_helpers import QUOTE

PATH = "/v1/situations"


def test_other_tenants_see_an_opaque_stable_actor(client: TestClient, make_tenant: Any) -> None:
    writer, other = make_tenant(), make_tenant()
    body = {
        "home_country": "IS",
        "destination": "CN",
        "kind": "diplomatic_dispute",
        "title": f"History actor test {uuid.uuid4().hex[:8]}",
        "started_on": "1990-01-01",
        "ended_on": "1990-02-01",
        "severity": "low",
        "sources": [QUOTE],
    }
    created = client.post(PATH, json=body, headers=writer.auth("analyst"))
    assert created.status_code == 201, created.text
    record = created.json()["id"]
    patched = client.patch(f"{PATH}/{record}", json={"severity": "medium"}, headers=writer.auth("analyst"))
    assert patched.status_code == 200, patched.text

    own = client.get(f"{PATH}/{record}/history", headers=writer.auth("reviewer")).json()["items"]
    writer_key_id = writer.keys["analyst"].split("_")[1]
    assert [item["actor"] for item in own] == [f"key:{writer_key_id} tenant:{writer.name} role:analyst"] * 2

    seen = client.get(f"{PATH}/{record}/history", headers=other.auth("reviewer")).json()["items"]
    actors = [item["actor"] for item in seen]
    assert len(set(actors)) == 1 and re.fullmatch(r"analyst:[0-9a-f]{12}", actors[0]), actors
    text = client.get(f"{PATH}/{record}/history", headers=other.auth("analyst")).text
    assert writer.name not in text and writer_key_id not in text
    # Everything but the actor is the same for both readers.
    assert [{**item, "actor": None} for item in seen] == [{**item, "actor": None} for item in own]


def test_changes_loaded_by_the_operator_show_as_recorded(client: TestClient, tenant: Any) -> None:
    history = client.get(f"{PATH}/ca-cn-meng-extradition/history", headers=tenant.auth("reviewer")).json()
    assert not history["items"][0]["actor"].startswith(("key:", "analyst:"))
