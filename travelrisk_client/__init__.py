"""A Python client of the travelrisk API: sync and async, typed with the service's own forms.

from travelrisk_client import Client

with Client("http://127.0.0.1:8000", key) as travelrisk:
    assessment = travelrisk.create_assessment(request)
"""

from risk_rules.forms import AssessmentRequest, AssessmentResponse
from service.assessments.schemas import AssessmentPage, AssessmentSummary
from service.rosters.schemas import RosterAccepted, RosterResult, RosterStatus
from travelrisk_client.client import AsyncClient, Client
from travelrisk_client.errors import (
    APIError,
    BadRequest,
    ClientError,
    Conflict,
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    TransportError,
    TravelriskError,
    Unauthorized,
    UnsupportedMediaType,
    WebhookSignatureError,
)
from travelrisk_client.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, verify_webhook_signature

__all__ = [
    "APIError",
    "AssessmentPage",
    "AssessmentRequest",
    "AssessmentResponse",
    "AssessmentSummary",
    "AsyncClient",
    "BadRequest",
    "Client",
    "ClientError",
    "Conflict",
    "EVENT_ID_HEADER",
    "Forbidden",
    "IdempotencyKeyReused",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RosterAccepted",
    "RosterResult",
    "RosterStatus",
    "SIGNATURE_HEADER",
    "ServerError",
    "ServiceUnavailable",
    "TransportError",
    "TravelriskError",
    "Unauthorized",
    "UnsupportedMediaType",
    "WebhookSignatureError",
    "verify_webhook_signature",
]
