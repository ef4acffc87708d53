"""/v1/webhooks: a tenant admin registers endpoints that receive signed events, and reads their deliveries."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.orm import Session

from service.auth import require
from service.bodies import JsonRoute
from service.db import get_session
from service.keys.models import Role
from service.keys.service import Principal
from service.problems import (
    Conflict,
    found_or_404,
    invalid_cursor,
    invalid_input,
    openapi_responses,
    owned_or_404,
)
from service.settings import Settings
from service.webhooks import service
from service.webhooks.addresses import AddressRefused, check_url
from service.webhooks.events import EVENT_TYPES
from service.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from service.webhooks.schemas import (
    Delivery,
    DeliveryDetail,
    DeliveryPage,
    DeliveryState,
    EventTypeInfo,
    EventTypeList,
    RotatedSecret,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookUpdate,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=JsonRoute)

DbSession = Annotated[Session, Depends(get_session)]
Admin = Annotated[Principal, Depends(require(Role.admin))]
WebhookId = Annotated[str, Path(max_length=64, description="The endpoint's id (`wh_…`).")]
DeliveryId = Annotated[str, Path(max_length=64, description="The delivery's id (`dlv_…`).")]


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _checked_url(url: str, settings: Settings) -> str:
    try:
        return check_url(url, allow_private=settings.webhooks_allow_private)
    except AddressRefused as exc:
        raise invalid_input([{"loc": ("body", "url"), "msg": f"The URL {exc}."}]) from None


def _owned(session: Session, principal: Principal, webhook_id: str) -> WebhookEndpoint:
    return owned_or_404(service.get_endpoint(session, principal.tenant_id, webhook_id), "webhook", webhook_id)


def _delivery(delivery: WebhookDelivery, event_type: str) -> Delivery:
    return Delivery.model_validate({**_columns(delivery), "event_type": event_type})


def _columns(delivery: WebhookDelivery) -> dict[str, object]:
    return {name: getattr(delivery, name) for name in Delivery.model_fields if name != "event_type"}


@router.get(
    "/event-types",
    response_model=EventTypeList,
    summary="The event types an endpoint can subscribe to",
    responses=openapi_responses(401, 403),
)
def list_event_types(principal: Admin) -> EventTypeList:
    """Every event type the service sends, with the keys of its `data`. The list grows; a receiver ignores
    types and keys it does not know."""
    return EventTypeList(
        items=[EventTypeInfo(name=e.name, description=e.description, data=list(e.data)) for e in EVENT_TYPES.values()]
    )


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    summary="Register a webhook endpoint",
    responses=openapi_responses(400, 401, 403, 413, 415, 422),
)
def create_webhook(
    body: WebhookCreate, principal: Admin, session: DbSession, request: Request, response: Response
) -> WebhookCreated:
    """Registers an endpoint of the caller's tenant. The signing secret is in this response only; events
    that happen from now on are sent to it, signed with `Travelrisk-Signature`."""
    url = _checked_url(body.url, _settings(request))
    endpoint = service.create_endpoint(
        session,
        principal.tenant_id,
        url=url,
        event_types=body.event_types,
        enabled=body.enabled,
        description=body.description,
    )
    session.commit()
    response.headers["Location"] = f"/v1/webhooks/{endpoint.id}"
    return WebhookCreated(**Webhook.model_validate(endpoint, from_attributes=True).model_dump(), secret=endpoint.secret)


@router.get(
    "", response_model=WebhookList, summary="Your tenant's webhook endpoints", responses=openapi_responses(401, 403)
)
def list_webhooks(principal: Admin, session: DbSession) -> WebhookList:
    """Every endpoint of the caller's tenant, oldest first; never their secrets."""
    return WebhookList(
        items=[
            Webhook.model_validate(e, from_attributes=True)
            for e in service.list_endpoints(session, principal.tenant_id)
        ]
    )


@router.get(
    "/{webhook_id}", response_model=Webhook, summary="One webhook endpoint", responses=openapi_responses(401, 403, 404)
)
def get_webhook(webhook_id: WebhookId, principal: Admin, session: DbSession) -> Webhook:
    """The endpoint, with why it is disabled if it is."""
    return Webhook.model_validate(_owned(session, principal, webhook_id), from_attributes=True)


@router.patch(
    "/{webhook_id}",
    response_model=Webhook,
    summary="Change a webhook endpoint",
    responses=openapi_responses(400, 401, 403, 404, 413, 415, 422),
)
def update_webhook(
    webhook_id: WebhookId, body: WebhookUpdate, principal: Admin, session: DbSession, request: Request
) -> Webhook:
    """Changes the fields sent. `enabled: true` re-enables an endpoint disabled after failures (its
    pending deliveries resume); `enabled: false` pauses it (they wait)."""
    endpoint = _owned(session, principal, webhook_id)
    changes = body.model_dump(exclude_unset=True)
    if "url" in changes:
        changes["url"] = _checked_url(changes["url"], _settings(request))
    service.update_endpoint(endpoint, changes)
    session.commit()
    return Webhook.model_validate(endpoint, from_attributes=True)


@router.delete(
    "/{webhook_id}", status_code=204, summary="Remove a webhook endpoint", responses=openapi_responses(401, 403, 404)
)
def delete_webhook(webhook_id: WebhookId, principal: Admin, session: DbSession) -> Response:
    """Removes the endpoint with its delivery log; nothing more is sent to it."""
    service.delete_endpoint(session, _owned(session, principal, webhook_id))
    session.commit()
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=RotatedSecret,
    summary="Rotate a webhook endpoint's signing secret",
    responses=openapi_responses(401, 403, 404),
)
def rotate_webhook_secret(
    webhook_id: WebhookId, principal: Admin, session: DbSession, request: Request
) -> RotatedSecret:
    """A new secret, in this response only. Until `previous_secret_expires_at` every delivery carries two
    `v1` signatures, one with each secret, so the receiver can switch at its own pace."""
    endpoint = _owned(session, principal, webhook_id)
    grace = dt.timedelta(hours=_settings(request).webhooks_secret_grace_hours)
    secret = service.rotate_secret(endpoint, grace)
    session.commit()
    assert endpoint.previous_secret_expires_at is not None
    return RotatedSecret(id=endpoint.id, secret=secret, previous_secret_expires_at=endpoint.previous_secret_expires_at)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryPage,
    summary="A webhook endpoint's delivery log",
    responses=openapi_responses(401, 403, 404, 422),
)
def list_webhook_deliveries(
    webhook_id: WebhookId,
    principal: Admin,
    session: DbSession,
    state: Annotated[DeliveryState | None, Query(description="Only deliveries in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")] = None,
) -> DeliveryPage:
    """Deliveries to the endpoint, newest first: attempts, last status, latency and error."""
    endpoint = _owned(session, principal, webhook_id)
    try:
        rows, next_cursor = service.list_deliveries(session, endpoint, state=state, limit=limit, cursor=cursor)
    except service.InvalidCursor as exc:
        raise invalid_cursor(exc) from exc
    return DeliveryPage(items=[_delivery(d, t) for d, t in rows], next_cursor=next_cursor)


@router.get(
    "/{webhook_id}/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    summary="One delivery, with the body it sends",
    responses=openapi_responses(401, 403, 404),
)
def get_webhook_delivery(
    webhook_id: WebhookId, delivery_id: DeliveryId, principal: Admin, session: DbSession
) -> DeliveryDetail:
    """The delivery's attempts and the event body it sends."""
    delivery, event = _found_delivery(session, principal, webhook_id, delivery_id)
    return DeliveryDetail.model_validate({**_columns(delivery), "event_type": event.type, "payload": event.payload})


def _found_delivery(
    session: Session, principal: Principal, webhook_id: str, delivery_id: str
) -> tuple[WebhookDelivery, WebhookEvent]:
    endpoint = _owned(session, principal, webhook_id)
    return found_or_404(
        service.get_delivery(session, endpoint, delivery_id), f"No delivery '{delivery_id}' of webhook '{webhook_id}'."
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=Delivery,
    summary="Send one event again",
    responses=openapi_responses(401, 403, 404, 409),
)
def redeliver_webhook_delivery(
    webhook_id: WebhookId, delivery_id: DeliveryId, principal: Admin, session: DbSession, response: Response
) -> Delivery:
    """Queues a new delivery of the same event (same event id) to the endpoint, due now, with a fresh set
    of attempts. 409 while the endpoint is disabled or the event is still being attempted."""
    original, event = _found_delivery(session, principal, webhook_id, delivery_id)
    endpoint = _owned(session, principal, webhook_id)
    if not endpoint.enabled:
        raise Conflict(
            f"Webhook '{webhook_id}' is disabled ({endpoint.disabled_reason}); enable it with PATCH first.",
            kind="webhook-disabled",
            title="Webhook disabled",
        )
    pending = service.pending_delivery_of(session, endpoint, event.id)
    if pending is not None:
        raise Conflict(
            f"Event '{event.id}' is still being delivered to this webhook (delivery '{pending.id}').",
            kind="delivery-pending",
            title="Delivery pending",
        )
    delivery = service.redeliver(session, endpoint, original)
    session.commit()
    response.headers["Location"] = f"/v1/webhooks/{endpoint.id}/deliveries/{delivery.id}"
    return _delivery(delivery, event.type)
