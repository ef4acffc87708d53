"""Webhook endpoints, the transactional outbox, and the delivery log. Functions here add to the session;
handlers (and the delivery worker) commit.

`emit` is called in the transaction of the change an event reports: it writes the event and one delivery
row per matching enabled endpoint of the tenant, so the event is committed exactly when the change is,
and a rolled-back change leaves nothing to send. A tenant without endpoints costs one indexed query.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, event, insert, select
from sqlalchemy.orm import Session

from service.db import utcnow
from service.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "Travelrisk-Signature"
EVENT_ID_HEADER = "Travelrisk-Event-Id"
EVENT_TYPE_HEADER = "Travelrisk-Event-Type"

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

# Set after a transaction that emitted events commits, so this process's delivery worker starts at once
# (workers of other processes find the deliveries on their next poll).
WAKE = threading.Event()
_EMITTED = "webhooks.emitted"


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    # One listener for every session, reading a flag, costs less than a listener added per transaction.
    if session.info.pop(_EMITTED, False):
        WAKE.set()


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_EMITTED, None)


def _wake_on_commit(session: Session) -> None:
    session.info[_EMITTED] = True


def _new_id(prefix: str) -> str:
    # Time-ordered (microseconds, then 80 random bits), so the newest rows sort last and ids page like times.
    return f"{prefix}{time.time_ns() // 1000:014x}{secrets.token_hex(10)}"


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def new_secret() -> str:
    """A signing secret: `whsec_` and 256 random bits, URL-safe."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


# ---------------------------------------------------------------------------------------------
# Signing


def sign(secret: str, timestamp_seconds: int, body: bytes) -> str:
    """HMAC-SHA256 of `<timestamp>.<body>` with the secret, as hex."""
    return hmac.new(secret.encode(), f"{timestamp_seconds}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets_: Sequence[str], timestamp_seconds: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex>[,v1=<hex>]`: one v1 per secret in force (two during a rotation)."""
    return ",".join([f"t={timestamp_seconds}", *(f"v1={sign(s, timestamp_seconds, body)}" for s in secrets_)])


def signing_secrets(endpoint: WebhookEndpoint, now: dt.datetime) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the previous one in its grace period."""
    found = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and now < expires:
        found.append(endpoint.previous_secret)
    return found


# ---------------------------------------------------------------------------------------------
# Endpoints


def create_endpoint(
    session: Session,
    tenant_id: str,
    *,
    url: str,
    event_types: list[str],
    enabled: bool,
    description: str | None,
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (the URL is already checked)."""
    now = utcnow()
    endpoint = WebhookEndpoint(
        id=_new_id("wh_"),
        tenant_id=tenant_id,
        url=url,
        description=description,
        event_types=event_types,
        enabled=enabled,
        secret=new_secret(),
        failed_events=0,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    return endpoint


def list_endpoints(session: Session, tenant_id: str) -> list[WebhookEndpoint]:
    """The tenant's endpoints, oldest first."""
    return list(
        session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id).order_by(WebhookEndpoint.id)
        )
    )


def get_endpoint(session: Session, tenant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
    """The tenant's endpoint with this id; another tenant's is not found."""
    return session.scalar(
        select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.tenant_id == tenant_id)
    )


def update_endpoint(endpoint: WebhookEndpoint, changes: dict[str, Any]) -> None:
    """Apply checked changes; enabling an endpoint again clears its disabled reason and failure count."""
    for field in ("url", "event_types", "description"):
        if field in changes:
            setattr(endpoint, field, changes[field])
    if "enabled" in changes:
        if changes["enabled"] and not endpoint.enabled:
            endpoint.disabled_reason = None
            endpoint.disabled_at = None
            endpoint.failing_since = None
            endpoint.failed_events = 0
        elif not changes["enabled"] and endpoint.enabled:
            endpoint.disabled_reason = "disabled by an admin"
            endpoint.disabled_at = utcnow()
        endpoint.enabled = changes["enabled"]
    endpoint.updated_at = utcnow()


def delete_endpoint(session: Session, endpoint: WebhookEndpoint) -> None:
    """Remove the endpoint and its delivery log; pending deliveries to it are dropped with it."""
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    session.delete(endpoint)


def rotate_secret(endpoint: WebhookEndpoint, grace: dt.timedelta) -> str:
    """A new current secret; the old one keeps signing (as a second v1) for `grace`."""
    now = utcnow()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + grace
    endpoint.secret = new_secret()
    endpoint.secret_rotated_at = now
    endpoint.updated_at = now
    return endpoint.secret


# ---------------------------------------------------------------------------------------------
# The outbox


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event to emit: the tenant it belongs to, its registered type and its `data`."""

    tenant_id: str
    type: str
    data: dict[str, Any]


# Built once and run as Core on the session's connection: this look-up runs in every assessment's
# transaction, where the ORM's per-statement work would cost more than the query.
_TARGETS = select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
    WebhookEndpoint.tenant_id == bindparam("tenant_id"), WebhookEndpoint.enabled.is_(True)
)
_INSERT_EVENT = insert(WebhookEvent.__table__)
_INSERT_DELIVERY = insert(WebhookDelivery.__table__)


def emit(session: Session, tenant_id: str, event_type: str, data: dict[str, Any]) -> str | None:
    """Write one event and its deliveries into the caller's transaction; its id, or None when no enabled
    endpoint of the tenant wants it (nothing is written then)."""
    ids = emit_all(session, [PendingEvent(tenant_id, event_type, data)])
    return ids[0] if ids else None


def emit_all(
    session: Session, events: Iterable[PendingEvent], endpoints: dict[str, list[Any]] | None = None
) -> list[str]:
    """Write several events (e.g. a batch of re-scorings) into the caller's transaction; the ids written.

    `endpoints` caches each tenant's enabled endpoints for a caller emitting many events in one
    transaction.
    """
    cache: dict[str, list[Any]] = {} if endpoints is None else endpoints
    now = utcnow()
    event_rows: list[dict[str, Any]] = []
    delivery_rows: list[dict[str, Any]] = []
    connection = session.connection()
    for pending in events:
        targets = cache.get(pending.tenant_id)
        if targets is None:
            targets = list(connection.execute(_TARGETS, {"tenant_id": pending.tenant_id}))
            cache[pending.tenant_id] = targets
        wanted = [endpoint_id for endpoint_id, types in targets if pending.type in types]
        if not wanted:
            continue
        event_id = _new_id("evt_")
        payload = {"id": event_id, "type": pending.type, "created_at": _timestamp(now), "data": pending.data}
        event_rows.append(
            {
                "id": event_id,
                "tenant_id": pending.tenant_id,
                "type": pending.type,
                "payload": payload,
                "created_at": now,
            }
        )
        delivery_rows.extend(
            {
                "id": _new_id("dlv_"),
                "event_id": event_id,
                "endpoint_id": endpoint_id,
                "state": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for endpoint_id in wanted
        )
    if event_rows:
        connection.execute(_INSERT_EVENT, event_rows)
        connection.execute(_INSERT_DELIVERY, delivery_rows)
        _wake_on_commit(session)
    return [row["id"] for row in event_rows]


def assessment_data(values: dict[str, Any]) -> dict[str, Any]:
    """The `data` of an assessment event, from an assessment's column values."""
    return {
        "assessment_id": values["id"],
        "traveler_reference": values["traveler_reference"],
        "band": values["band"],
        "probability": values["probability"],
        "revision": values.get("current_revision", 1),
    }


# ---------------------------------------------------------------------------------------------
# The delivery log


class InvalidCursor(ValueError):
    """A cursor that this service did not issue."""


def _encode_cursor(delivery_id: str) -> str:
    return base64.urlsafe_b64encode(delivery_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error) as exc:
        raise InvalidCursor("not a cursor issued by this service") from exc
    if not value.startswith("dlv_"):
        raise InvalidCursor("not a cursor issued by this service")
    return value


def list_deliveries(
    session: Session, endpoint: WebhookEndpoint, *, state: str | None, limit: int, cursor: str | None
) -> tuple[list[tuple[WebhookDelivery, str]], str | None]:
    """One page of the endpoint's deliveries, newest first, each with its event type; and the next cursor."""
    query = (
        select(WebhookDelivery, WebhookEvent.type)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit + 1)
    )
    if state is not None:
        query = query.where(WebhookDelivery.state == state)
    if cursor is not None:
        query = query.where(WebhookDelivery.id < _decode_cursor(cursor))
    rows = [(delivery, event_type) for delivery, event_type in session.execute(query)]
    if len(rows) > limit:
        return rows[:limit], _encode_cursor(rows[limit - 1][0].id)
    return rows, None


def get_delivery(
    session: Session, endpoint: WebhookEndpoint, delivery_id: str
) -> tuple[WebhookDelivery, WebhookEvent] | None:
    """One delivery of the endpoint with its event."""
    row = session.execute(
        select(WebhookDelivery, WebhookEvent)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def pending_delivery_of(session: Session, endpoint: WebhookEndpoint, event_id: str) -> WebhookDelivery | None:
    """A delivery of this event to this endpoint that is still being attempted, if any."""
    return session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.event_id == event_id,
            WebhookDelivery.state == PENDING,
        )
    )


def redeliver(session: Session, endpoint: WebhookEndpoint, original: WebhookDelivery) -> WebhookDelivery:
    """A new delivery of the same event (same event id, so receivers de-duplicate it), due now."""
    now = utcnow()
    delivery = WebhookDelivery(
        id=_new_id("dlv_"),
        event_id=original.event_id,
        endpoint_id=endpoint.id,
        state=PENDING,
        attempts=0,
        next_attempt_at=now,
        redelivery_of=original.id,
        created_at=now,
    )
    session.add(delivery)
    _wake_on_commit(session)
    return delivery
