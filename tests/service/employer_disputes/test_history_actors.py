"""The history of an employer dispute names the key and tenant of a change only to that tenant's own readers."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi.testclient import TestClient

from tests.service.reference_helpers import PUBLICATION

PATH = "/v1/employer-disputes"


def test_other_tenants_see_an_opaque_actor(client: TestClient, make_tenant: Any) -> None:
    writer, other = make_tenant(), make_tenant()
    body = {
        "name": f"Actor Test {uuid.uuid4().hex[:8]} Holdings",
        "destination": "CN",
        "kind": "commercial_dispute",
        "started_on": "1990-01-01",
        "ended_on": "1990-02-01",
        "sources": [PUBLICATION],
    }
    created = client.post(PATH, json=body, headers=writer.auth("analyst"))
    assert created.status_code == 201, created.text
    record = created.json()["id"]
    writer_key_id = writer.keys["analyst"].split("_")[1]

    own = client.get(f"{PATH}/{record}/history", headers=writer.auth("requester")).json()["items"]
    assert own[0]["actor"] == f"key:{writer_key_id} tenant:{writer.name} role:analyst"
    seen = client.get(f"{PATH}/{record}/history", headers=other.auth("requester"))
    assert re.fullmatch(r"analyst:[0-9a-f]{12}", seen.json()["items"][0]["actor"])
    assert writer.name not in seen.text and writer_key_id not in seen.text
