"""Schemas of the webhooks resource."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.webhooks.events import EVENT_TYPES

DeliveryState = Literal["pending", "delivered", "failed"]


def _known_event_types(values: list[str]) -> list[str]:
    unknown = [v for v in values if v not in EVENT_TYPES]
    if unknown:
        allowed = ", ".join(sorted(EVENT_TYPES))
        raise ValueError(f"unknown event type(s) {', '.join(map(repr, unknown))}; choose from: {allowed}")
    return list(dict.fromkeys(values))


_URL = Field(
    min_length=1,
    max_length=2000,
    description="Where events are POSTed: `https://` and a public address (`http://` and private addresses"
    " only when the service runs with TRAVELRISK_WEBHOOKS_ALLOW_PRIVATE=true).",
    examples=["https://hr.example.com/hooks/travelrisk"],
)
_EVENT_TYPES = Field(
    min_length=1,
    max_length=50,
    description="The event types sent to this endpoint (see GET /v1/webhooks/event-types).",
    examples=[["assessment.created", "assessment.rescored"]],
)
_DESCRIPTION = Field(default=None, max_length=200, description="A note for your own use.")


class WebhookCreate(BaseModel):
    """An endpoint to register."""

    model_config = ConfigDict(extra="forbid")

    url: str = _URL
    event_types: list[str] = _EVENT_TYPES
    enabled: bool = True
    description: str | None = _DESCRIPTION

    @field_validator("event_types")
    @classmethod
    def _check_types(cls, value: list[str]) -> list[str]:
        return _known_event_types(value)


class WebhookUpdate(BaseModel):
    """Fields to change; those left out are kept."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2000)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=50)
    enabled: bool | None = Field(
        default=None, description="`true` also re-enables an endpoint disabled after failures."
    )
    description: str | None = _DESCRIPTION

    @field_validator("event_types")
    @classmethod
    def _check_types(cls, value: list[str] | None) -> list[str]:
        if value is None:
            raise ValueError("may not be null; leave the field out to keep it")
        return _known_event_types(value)

    @field_validator("url", "enabled", mode="after")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Only a null sent explicitly gets here (defaults are not validated).
        if value is None:
            raise ValueError("may not be null; leave the field out to keep it")
        return value


class Webhook(BaseModel):
    """A registered endpoint; never its secret."""

    id: str = Field(examples=["wh_0633d1f4a8b2c7e1f0a9b8c7d6e5f4a3b2"])
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why the endpoint is disabled: by an admin, or after failing (e.g. `5 consecutive events"
        " failed after 13 attempts each`)."
    )
    disabled_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    secret_rotated_at: dt.datetime | None
    previous_secret_expires_at: dt.datetime | None = Field(
        description="Until when deliveries are also signed with the secret in force before the last rotation."
    )


class WebhookCreated(Webhook):
    """A new endpoint; `secret` is shown only in this response."""

    secret: str = Field(description="The signing secret (`whsec_…`). Store it now: it is not shown again.")


class WebhookList(BaseModel):
    items: list[Webhook]


class RotatedSecret(BaseModel):
    """The new signing secret; the old one also signs until `previous_secret_expires_at`."""

    id: str
    secret: str
    previous_secret_expires_at: dt.datetime


class EventTypeInfo(BaseModel):
    name: str = Field(examples=["assessment.rescored"])
    description: str
    data: list[str] = Field(description="The keys of the event's `data`.")


class EventTypeList(BaseModel):
    items: list[EventTypeInfo]


class Delivery(BaseModel):
    """One event sent (or being sent) to one endpoint, with its attempts."""

    id: str
    event_id: str = Field(description="The event's id, sent as `Travelrisk-Event-Id`: de-duplicate on it.")
    event_type: str
    state: DeliveryState = Field(
        description="`pending` (being attempted), `delivered` (a 2xx answer) or `failed` (all attempts used)."
    )
    attempts: int
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_status: int | None = Field(description="HTTP status of the last answer, if one came.")
    last_latency_ms: float | None
    last_error: str | None
    delivered_at: dt.datetime | None
    redelivery_of: str | None = Field(description="For a manual redelivery, the delivery it repeats.")
    created_at: dt.datetime


class DeliveryDetail(Delivery):
    payload: dict[str, Any] = Field(description="The body that is sent.")


class DeliveryPage(BaseModel):
    items: list[Delivery]
    next_cursor: str | None
