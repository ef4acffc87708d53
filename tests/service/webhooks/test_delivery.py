"""Webhook delivery to a real receiver: signatures, retries, the outbox's transaction, leases, disabling,
redelivery, tenant isolation and the address check at delivery time."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from risk_rules.forms import AssessmentRequest
from risk_rules.reference import SituationIn
from service.assessments import service as assessments
from service.db import create_db_engine, create_session_factory, session_scope, utcnow
from service.reference.models import SITUATION
from service.reference.store import upsert
from service.rescoring.service import enqueue_rescoring
from service.webhooks.addresses import AddressRefused, forbidden_reason
from service.webhooks.delivery import Deliverer, backoff, post_event
from service.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from service.webhooks.service import signature_header
from tests.service.webhooks.conftest import deliveries, register, verify, wait_until

FUTURE = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=300)


@pytest.fixture(scope="module")
def sessions(settings: Any) -> Any:
    engine = create_db_engine(settings)
    yield create_session_factory(engine)
    engine.dispose()


def trip(reference: str | None = None, citizenship: str = "GB") -> dict[str, Any]:
    return {
        "traveler": {"reference": reference or f"W-{uuid.uuid4().hex[:8]}", "citizenships": [citizenship]},
        "trip": {
            "legs": [
                {"country": "CN", "arrive": FUTURE.isoformat(), "depart": (FUTURE + dt.timedelta(days=5)).isoformat()}
            ]
        },
    }


def create_assessment(client: TestClient, tenant: Any, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post("/v1/assessments", json=body or trip(), headers=tenant.auth("requester"))
    assert response.status_code == 201, response.text
    return response.json()


def test_a_delivery_is_signed_and_verifies(client: TestClient, tenant: Any, make_receiver: Any) -> None:
    receiver = make_receiver()
    endpoint = register(client, tenant, receiver.url)
    assessment = create_assessment(client, tenant, trip("E-1001"))

    got = wait_until(lambda: receiver.received, message="a delivery")[0]
    assert verify(endpoint["secret"], got.headers, got.body)
    assert not verify("whsec_" + "x" * 43, got.headers, got.body)
    assert not verify(endpoint["secret"], got.headers, got.body + b" ")
    signature = got.headers["travelrisk-signature"]
    assert signature.startswith("t=") and signature.count("v1=") == 1
    assert got.headers["content-type"] == "application/json"
    assert got.headers["travelrisk-event-type"] == "assessment.created"

    body = got.json
    assert set(body) == {"id", "type", "created_at", "data"}
    assert body["id"] == got.event_id and body["id"].startswith("evt_")
    assert body["type"] == "assessment.created"
    assert body["data"] == {
        "assessment_id": assessment["id"],
        "traveler_reference": "E-1001",
        "band": assessment["score"]["band"],
        "probability": assessment["score"]["probability"],
        "revision": 1,
    }
    log = wait_until(lambda: [d for d in deliveries(client, tenant, endpoint["id"]) if d["state"] == "delivered"])
    assert log[0]["event_id"] == body["id"] and log[0]["attempts"] == 1 and log[0]["last_status"] == 200
    assert log[0]["last_latency_ms"] >= 0 and log[0]["last_error"] is None
    detail = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries/{log[0]['id']}", headers=tenant.auth("admin"))
    assert detail.json()["payload"] == body


def test_a_receiver_failing_three_times_gets_the_event_once_more_and_then_never(
    client: TestClient, tenant: Any, make_receiver: Any
) -> None:
    receiver = make_receiver(statuses=[500, 503, 500])
    endpoint = register(client, tenant, receiver.url)
    create_assessment(client, tenant)

    wait_until(lambda: receiver.answered, message="a successful delivery")
    [delivery] = wait_until(
        lambda: [d for d in deliveries(client, tenant, endpoint["id"]) if d["state"] == "delivered"]
    )
    time.sleep(1.0)  # many poll and backoff periods: nothing more may arrive
    assert len(receiver.received) == 4
    assert len(set(receiver.event_ids())) == 1
    # The retries were spaced out by the backoff, not sent back to back.
    gaps = [b.at - a.at for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
    assert all(gap >= 0.03 for gap in gaps), gaps
    assert delivery["attempts"] == 4 and delivery["last_status"] == 200 and delivery["delivered_at"]
    assert deliveries(client, tenant, endpoint["id"], state="pending") == []


def test_the_log_keeps_the_last_error(client: TestClient, tenant: Any, make_receiver: Any) -> None:
    receiver = make_receiver(statuses=[500], default=500)
    receiver_ok = make_receiver()
    failing = register(client, tenant, receiver.url)
    create_assessment(client, tenant)
    [delivery] = wait_until(lambda: deliveries(client, tenant, failing["id"], state="failed"), message="given up")
    assert delivery["attempts"] == 4
    assert delivery["last_status"] == 500 and delivery["last_error"] == "HTTP 500: ok"
    assert len(receiver.received) == 4 and receiver_ok.received == []


def test_rotation_signs_with_both_secrets_during_the_grace_period(
    client: TestClient, tenant: Any, make_receiver: Any
) -> None:
    receiver = make_receiver()
    endpoint = register(client, tenant, receiver.url)
    rotated = client.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", headers=tenant.auth("admin")).json()
    create_assessment(client, tenant)
    got = wait_until(lambda: receiver.received)[0]
    assert got.headers["travelrisk-signature"].count("v1=") == 2
    assert verify(rotated["secret"], got.headers, got.body)
    assert verify(endpoint["secret"], got.headers, got.body)


def test_after_the_grace_period_only_the_new_secret_signs(
    client: TestClient, tenant: Any, make_receiver: Any, sessions: Any
) -> None:
    receiver = make_receiver()
    endpoint = register(client, tenant, receiver.url)
    rotated = client.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", headers=tenant.auth("admin")).json()
    with session_scope(sessions) as session:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint["id"])
            .values(previous_secret_expires_at=utcnow() - dt.timedelta(seconds=1))
        )
    create_assessment(client, tenant)
    got = wait_until(lambda: receiver.received)[0]
    assert got.headers["travelrisk-signature"].count("v1=") == 1
    assert verify(rotated["secret"], got.headers, got.body)
    assert not verify(endpoint["secret"], got.headers, got.body)


def test_only_subscribed_enabled_endpoints_of_the_same_tenant_get_events(
    client: TestClient, make_tenant: Any, make_receiver: Any
) -> None:
    tenant, other = make_tenant(), make_tenant()
    mine, theirs, rescored_only, paused = (make_receiver() for _ in range(4))
    register(client, tenant, mine.url)
    register(client, other, theirs.url)
    register(client, tenant, rescored_only.url, ["assessment.rescored"])
    register(client, tenant, paused.url, enabled=False)

    created = create_assessment(client, tenant)
    wait_until(lambda: mine.received)
    time.sleep(0.5)
    assert [r.json["data"]["assessment_id"] for r in mine.received] == [created["id"]]
    assert theirs.received == [] and rescored_only.received == [] and paused.received == []


def test_an_idempotent_replay_emits_no_second_event(client: TestClient, tenant: Any, make_receiver: Any) -> None:
    receiver = make_receiver()
    register(client, tenant, receiver.url)
    headers = {**tenant.auth("requester"), "Idempotency-Key": str(uuid.uuid4())}
    body = trip()
    first = client.post("/v1/assessments", json=body, headers=headers)
    again = client.post("/v1/assessments", json=body, headers=headers)
    assert again.headers.get("idempotent-replayed") == "true" and again.json()["id"] == first.json()["id"]
    wait_until(lambda: receiver.received)
    time.sleep(0.5)
    assert len(receiver.received) == 1


def _assessment_values(client: TestClient, session: Any, tenant_id: str) -> dict[str, Any]:
    scoring = client.app.state.scoring
    request = AssessmentRequest.model_validate(trip())
    document = assessments.request_document(request)
    return assessments.new_assessment(
        tenant_id=tenant_id,
        request=request,
        document=document,
        result=scoring.assessor().assess_body(request, scoring.reference(session)),
        idempotency_key=None,
        body_hash=assessments.request_hash(document),
    )


def _tenant_id(sessions: Any, webhook_id: str) -> str:
    with sessions() as session:
        return session.get_one(WebhookEndpoint, webhook_id).tenant_id


def test_a_rolled_back_change_emits_nothing(client: TestClient, tenant: Any, make_receiver: Any, sessions: Any) -> None:
    receiver = make_receiver()
    endpoint = register(client, tenant, receiver.url)
    tenant_id = _tenant_id(sessions, endpoint["id"])

    with sessions() as session:
        values = _assessment_values(client, session, tenant_id)
        assessments.insert(session, values)
        # Inside the transaction the event is there, waiting for the commit...
        assert session.scalar(select(func.count()).where(WebhookEvent.tenant_id == tenant_id)) == 1
        session.rollback()
    time.sleep(0.5)
    with sessions() as session:
        assert session.scalar(select(func.count()).where(WebhookEvent.tenant_id == tenant_id)) == 0
        assert assessments.get(session, tenant_id, values["id"]) is None
    assert receiver.received == []

    # ... and the same change committed is delivered.
    with sessions() as session:
        values = _assessment_values(client, session, tenant_id)
        assessments.insert(session, values)
        session.commit()
    got = wait_until(lambda: receiver.received)
    assert [r.json["data"]["assessment_id"] for r in got] == [values["id"]]


def test_a_rescoring_sends_the_old_and_new_band_and_the_reason(
    client: TestClient, tenant: Any, make_receiver: Any, sessions: Any
) -> None:
    receiver = make_receiver()
    register(client, tenant, receiver.url, ["assessment.rescored"])
    assessment = create_assessment(client, tenant, trip("R-EE-1", citizenship="EE"))
    situation = SituationIn(
        id=f"test-{uuid.uuid4().hex[:8]}",
        home_country="EE",
        destination="CN",
        kind="extradition_case",
        title="EE holds a person the destination wants",
        started_on=dt.date(2019, 1, 1),
        severity="high",
        sources=[{"title": "analyst note", "url": "https://example.org/note", "date": "2026-11-01"}],
    )
    with sessions() as session:
        enqueue_rescoring(session, upsert(session, SITUATION, situation, "test"))
        session.commit()

    got = wait_until(lambda: receiver.received, timeout=30, message="the re-scoring event")
    assert len(got) == 1 and got[0].json["type"] == "assessment.rescored"
    data = got[0].json["data"]
    latest = client.get(f"/v1/assessments/{assessment['id']}", headers=tenant.auth("reviewer")).json()
    assert data == {
        "assessment_id": assessment["id"],
        "traveler_reference": "R-EE-1",
        "band": latest["score"]["band"],
        "probability": latest["score"]["probability"],
        "revision": 2,
        "old_band": assessment["score"]["band"],
        "new_band": latest["score"]["band"],
        "reason": latest["revision_reason"],
    }
    assert situation.id in data["reason"]


def test_manual_redelivery_sends_the_same_event_again(client: TestClient, tenant: Any, make_receiver: Any) -> None:
    receiver = make_receiver()
    endpoint = register(client, tenant, receiver.url)
    create_assessment(client, tenant)
    [first] = wait_until(lambda: deliveries(client, tenant, endpoint["id"], state="delivered"))

    response = client.post(
        f"/v1/webhooks/{endpoint['id']}/deliveries/{first['id']}/redeliver", headers=tenant.auth("admin")
    )
    assert response.status_code == 202, response.text
    again = response.json()
    assert again["event_id"] == first["event_id"] and again["redelivery_of"] == first["id"]
    assert response.headers["location"].endswith(again["id"])
    wait_until(lambda: len(receiver.answered) == 2, message="the redelivery")
    assert receiver.event_ids() == [first["event_id"], first["event_id"]]
    assert len(deliveries(client, tenant, endpoint["id"])) == 2

    client.patch(f"/v1/webhooks/{endpoint['id']}", json={"enabled": False}, headers=tenant.auth("admin"))
    refused = client.post(
        f"/v1/webhooks/{endpoint['id']}/deliveries/{first['id']}/redeliver", headers=tenant.auth("admin")
    )
    assert refused.status_code == 409 and "disabled" in refused.json()["detail"]
    missing = client.post(f"/v1/webhooks/{endpoint['id']}/deliveries/dlv_nope/redeliver", headers=tenant.auth("admin"))
    assert missing.status_code == 404


def test_an_endpoint_failing_for_consecutive_events_is_disabled_with_a_reason(
    client: TestClient, tenant: Any, make_receiver: Any
) -> None:
    receiver = make_receiver(default=500)
    endpoint = register(client, tenant, receiver.url)
    create_assessment(client, tenant)
    create_assessment(client, tenant)

    read = wait_until(
        lambda: (
            (r := client.get(f"/v1/webhooks/{endpoint['id']}", headers=tenant.auth("admin")).json())["enabled"] is False
            and r
        ),
        message="the endpoint to be disabled",
    )
    assert read["disabled_reason"] == "2 consecutive events failed after 4 attempts each"
    assert read["disabled_at"] is not None
    assert len(deliveries(client, tenant, endpoint["id"], state="failed")) == 2

    # While disabled it is sent nothing (events of that time are not queued for it); enabled again, it
    # receives new events.
    count = len(receiver.received)
    create_assessment(client, tenant)
    time.sleep(0.5)
    assert len(receiver.received) == count
    receiver.default = 200
    enabled = client.patch(f"/v1/webhooks/{endpoint['id']}", json={"enabled": True}, headers=tenant.auth("admin"))
    assert enabled.json()["disabled_reason"] is None
    later = create_assessment(client, tenant)
    wait_until(lambda: receiver.answered, message="delivery after re-enabling")
    assert receiver.received[-1].json["data"]["assessment_id"] == later["id"]


def test_an_endpoint_failing_for_more_than_a_day_is_disabled(
    client: TestClient, tenant: Any, make_receiver: Any, sessions: Any
) -> None:
    receiver = make_receiver(default=500)
    endpoint = register(client, tenant, receiver.url)
    with session_scope(sessions) as session:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint["id"])
            .values(failing_since=utcnow() - dt.timedelta(hours=25))
        )
    create_assessment(client, tenant)
    read = wait_until(
        lambda: (
            (r := client.get(f"/v1/webhooks/{endpoint['id']}", headers=tenant.auth("admin")).json())["enabled"] is False
            and r
        )
    )
    assert read["disabled_reason"].startswith("every delivery has failed since")
    assert len(receiver.received) == 1


def test_concurrent_workers_never_send_one_delivery_twice(
    client: TestClient, tenant: Any, make_receiver: Any, settings: Any, sessions: Any
) -> None:
    receiver = make_receiver()
    endpoint = register(client, tenant, receiver.url)
    # More delivery threads on the same database, racing the application's own.
    engine = create_db_engine(settings)
    factory = create_session_factory(engine)
    workers = [Deliverer(factory, threading.Lock(), settings) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        created = [create_assessment(client, tenant)["id"] for _ in range(12)]
        wait_until(lambda: len(receiver.answered) >= 12, timeout=30, message="twelve deliveries")
        time.sleep(0.5)
    finally:
        for worker in workers:
            worker.stop()
        engine.dispose()
    assert sorted(r.json["data"]["assessment_id"] for r in receiver.received) == sorted(created)
    assert len(receiver.received) == 12
    assert all(d["attempts"] == 1 for d in deliveries(client, tenant, endpoint["id"], limit=100))


def test_a_deleted_endpoint_gets_nothing_more(client: TestClient, tenant: Any, make_receiver: Any) -> None:
    receiver = make_receiver()
    endpoint = register(client, tenant, receiver.url)
    assert client.delete(f"/v1/webhooks/{endpoint['id']}", headers=tenant.auth("admin")).status_code == 204
    create_assessment(client, tenant)
    time.sleep(0.5)
    assert receiver.received == []


def test_the_delivery_log_pages_newest_first(client: TestClient, tenant: Any, make_receiver: Any) -> None:
    receiver = make_receiver()
    endpoint = register(client, tenant, receiver.url)
    for _ in range(3):
        create_assessment(client, tenant)
    wait_until(lambda: len(receiver.answered) == 3)
    first = client.get(
        f"/v1/webhooks/{endpoint['id']}/deliveries", params={"limit": 2}, headers=tenant.auth("admin")
    ).json()
    second = client.get(
        f"/v1/webhooks/{endpoint['id']}/deliveries",
        params={"limit": 2, "cursor": first["next_cursor"]},
        headers=tenant.auth("admin"),
    ).json()
    ids = [d["id"] for d in first["items"] + second["items"]]
    assert len(ids) == 3 and ids == sorted(ids, reverse=True) and second["next_cursor"] is None


# ---------------------------------------------------------------------------------------------
# The address check at delivery time, and the backoff


def test_delivery_refuses_a_private_address_unless_allowed(make_receiver: Any) -> None:
    receiver = make_receiver()
    body = json.dumps({"id": "evt_x"}).encode()
    headers = {"Travelrisk-Signature": signature_header(["whsec_test"], int(time.time()), body)}
    with httpx.Client(trust_env=False) as http:
        with pytest.raises(AddressRefused, match="loopback"):
            post_event(http, receiver.url, body, headers, allow_private=False)
        with pytest.raises(AddressRefused, match="loopback"):
            post_event(http, receiver.url.replace("127.0.0.1", "localhost"), body, headers, allow_private=False)
        assert receiver.received == []
        status, answer = post_event(http, receiver.url, body, headers, allow_private=True)
    assert (status, answer) == (200, b"ok")
    assert receiver.received[0].body == body
    assert receiver.received[0].headers["host"] == receiver.url.split("/")[2]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("100.64.0.1", "non-public"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.251", "multicast"),
        ("::1", "loopback"),
        ("fd00::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_forbidden_addresses(address: str, reason: str | None) -> None:
    import ipaddress

    assert forbidden_reason(ipaddress.ip_address(address)) == reason


def test_backoff_doubles_with_jitter_over_about_a_day() -> None:
    import random

    rng = random.Random(7)
    waits = [backoff(n, 20.0, rng).total_seconds() for n in range(1, 13)]
    for n, wait in enumerate(waits, start=1):
        assert 0.8 * 20 * 2 ** (n - 1) <= wait <= 1.2 * 20 * 2 ** (n - 1)
    # The defaults (13 attempts, 20 s base) spread the attempts over roughly a day.
    assert 16 * 3600 < sum(waits) < 30 * 3600
    assert len({round(w / (20 * 2 ** (n - 1)), 3) for n, w in enumerate(waits, start=1)}) > 1


def test_deliveries_are_rows_of_the_outbox(client: TestClient, tenant: Any, make_receiver: Any, sessions: Any) -> None:
    receiver = make_receiver()
    endpoint = register(client, tenant, receiver.url)
    second = register(client, tenant, make_receiver().url)
    created = create_assessment(client, tenant)
    with sessions() as session:
        events = session.scalars(
            select(WebhookEvent).where(WebhookEvent.tenant_id == _tenant_id(sessions, endpoint["id"]))
        ).all()
        assert [e.payload["data"]["assessment_id"] for e in events] == [created["id"]]
        targets = session.scalars(select(WebhookDelivery.endpoint_id).where(WebhookDelivery.event_id == events[0].id))
        assert sorted(targets) == sorted([endpoint["id"], second["id"]])


def test_a_review_decision_is_sent_with_its_state(client: TestClient, tenant: Any, make_receiver: Any) -> None:
    from tests.service.review_helpers import create as create_for_review
    from tests.service.review_helpers import decide, severe_trip

    receiver = make_receiver()
    register(client, tenant, receiver.url, ["review.decided"])
    assessment = create_for_review(client, tenant, severe_trip())
    response = decide(client, tenant.auth("reviewer"), assessment)
    assert response.status_code == 201, response.text
    review = response.json()

    got = wait_until(lambda: receiver.received, message="the review event")
    assert len(got) == 1 and got[0].json["type"] == "review.decided"
    assert got[0].json["data"] == {
        "assessment_id": assessment["id"],
        "review_id": review["id"],
        "decision": "approved",
        "state": "approved",
        "revision": 1,
    }


def test_every_trip_of_a_roster_is_pushed_like_any_assessment(
    client: TestClient, tenant: Any, make_receiver: Any
) -> None:
    receiver = make_receiver()
    register(client, tenant, receiver.url)
    roster = [trip(f"R-{n}") for n in range(3)]
    response = client.post("/v1/rosters", json=roster, headers=tenant.auth("requester"))
    assert response.status_code == 202, response.text
    got = wait_until(lambda: len(receiver.received) >= 3 and receiver.received, message="three deliveries")
    references = sorted(item.json["data"]["traveler_reference"] for item in got)
    assert references == ["R-0", "R-1", "R-2"]
    assert {item.json["type"] for item in got} == {"assessment.created"}
