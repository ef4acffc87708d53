"""`travelrisk serve` as a real process delivering webhooks: a `kill -9` in the middle of a delivery loses no
event."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service.webhooks.delivery import Deliverer
from tests.service.conftest import Server, cli
from tests.service.webhooks.conftest import wait_until

SERVER_ENV = {
    "TRAVELRISK_WEBHOOKS_ALLOW_PRIVATE": "true",
    "TRAVELRISK_WEBHOOKS_TIMEOUT_SECONDS": "2",
    "TRAVELRISK_WEBHOOKS_BACKOFF_BASE_SECONDS": "0.2",
    "TRAVELRISK_WEBHOOKS_POLL_SECONDS": "0.2",
}


@pytest.fixture
def no_local_deliverer(client: TestClient) -> Iterator[None]:
    """Stops the test process's own delivery thread, so that only the server processes deliver."""
    app = client.app
    app.state.deliverer.stop()
    yield
    app.state.deliverer = Deliverer(app.state.session_factory, app.state.write_lock, app.state.settings)
    app.state.deliverer.start()


def trip(reference: str) -> dict[str, Any]:
    start = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=200)
    return {
        "traveler": {"reference": reference, "citizenships": ["GB"]},
        "trip": {"legs": [{"country": "CN", "arrive": start.isoformat(), "depart": start.isoformat()}]},
    }


def test_kill_9_mid_delivery_loses_no_event(
    tmp_path: Path, database_url: str, make_receiver: Any, no_local_deliverer: None
) -> None:
    hold = threading.Event()
    receiver = make_receiver(hold=hold)
    tenant = f"k9w-{uuid.uuid4().hex[:10]}"
    key = cli("keys", "create", "--tenant", tenant, "--role", "admin", database_url=database_url).stdout.strip()
    headers = {"Authorization": f"Bearer {key}"}

    server = Server(database_url, tmp_path / "first.log", env=SERVER_ENV).start()
    try:
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
            webhook = http.post("/v1/webhooks", json={"url": receiver.url, "event_types": ["assessment.created"]})
            assert webhook.status_code == 201, webhook.text
            created = []
            for i in range(5):
                response = http.post("/v1/assessments", json=trip(f"K9W-{i}"))
                assert response.status_code == 201, response.text
                created.append(response.json()["id"])
        # The receiver holds the first delivery open: the service dies in the middle of it.
        wait_until(lambda: receiver.received, message="a delivery in flight")
        server.kill()
    finally:
        server.stop()
    hold.set()
    assert receiver.answered == []

    restarted = Server(database_url, tmp_path / "restarted.log", env=SERVER_ENV).start()
    try:

        def delivered() -> set[str]:
            return {r.json["data"]["assessment_id"] for r in receiver.received if r.event_id in receiver.answered}

        # The in-flight delivery is sent again once its lease has run out, the others as soon as possible.
        wait_until(lambda: delivered() == set(created), timeout=90, message="every event after the restart")
        log = httpx.get(
            f"{restarted.base_url}/v1/webhooks/{webhook.json()['id']}/deliveries", headers=headers, timeout=30
        ).json()["items"]
    finally:
        restarted.stop()
    assert len(log) == 5 and {d["state"] for d in log} == {"delivered"}
    # At least once: only the delivery cut off by the kill may have arrived twice.
    counts = [receiver.event_ids().count(d["event_id"]) for d in log]
    assert sorted(counts)[:4] == [1, 1, 1, 1] and max(counts) <= 2
