"""Typed errors built from the service's RFC 9457 problem details.

Every error answer of the service is `application/problem+json` with `type`, `title`, `status`, `detail`
and, for invalid input, `errors` (one entry per invalid field). `error_from_response` picks the most
specific class: by problem type first (`urn:travelrisk:problem:<kind>`), then by status, then by status
family (4xx `ClientError`, 5xx `ServerError`).
"""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM_TYPE_PREFIX = "urn:travelrisk:problem:"


class TravelriskError(Exception):
    """Anything the client raises for a failed call."""


class TransportError(TravelriskError):
    """The service could not be reached (or did not answer in time), after the retries allowed."""


class APIError(TravelriskError):
    """An error answer from the service, with its problem details."""

    status: int

    def __init__(self, response: httpx.Response, problem: dict[str, Any]) -> None:
        self.response = response
        self.problem = problem
        self.status = response.status_code
        self.type: str = problem.get("type", "about:blank")
        self.title: str = problem.get("title", response.reason_phrase)
        self.detail: str = problem.get("detail", "")
        self.request_id: str | None = problem.get("request_id") or response.headers.get("x-request-id")
        self.errors: list[dict[str, Any]] = list(problem.get("errors") or [])
        super().__init__(f"{self.status} {self.title}: {self.detail}")

    @property
    def kind(self) -> str | None:
        """The problem type without its prefix (`invalid-input`), or None for plain HTTP errors."""
        return self.type.removeprefix(PROBLEM_TYPE_PREFIX) if self.type.startswith(PROBLEM_TYPE_PREFIX) else None


class ClientError(APIError):
    """A 4xx: the request must be changed before it can succeed."""


class BadRequest(ClientError):
    """400: the body is not valid JSON."""


class Unauthorized(ClientError):
    """401: no key, or an unknown or revoked one."""


class Forbidden(ClientError):
    """403: the key's role may not do this."""


class NotFound(ClientError):
    """404: no such object in the key's tenant."""


class Conflict(ClientError):
    """409: the request conflicts with the stored state."""


class IdempotencyKeyReused(Conflict):
    """409: the Idempotency-Key was used before with a different body."""


class PayloadTooLarge(ClientError):
    """413: the body is larger than the service accepts."""


class UnsupportedMediaType(ClientError):
    """415: the body is not in a format this operation accepts."""


class InvalidInput(ClientError):
    """422: `errors` lists every invalid field (`field`, `message`, `location`)."""


class RateLimited(ClientError):
    """429: too many requests."""


class ServerError(APIError):
    """A 5xx: the service failed; retrying later may succeed."""


class ServiceUnavailable(ServerError):
    """503: the database or the model is not available."""


class WebhookSignatureError(TravelriskError):
    """A webhook delivery whose signature does not verify (or is outside the replay window)."""


_BY_KIND: dict[str, type[APIError]] = {
    "idempotency-key-reused": IdempotencyKeyReused,
    "invalid-input": InvalidInput,
    "malformed-json": BadRequest,
}
_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: InvalidInput,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_from_response(response: httpx.Response) -> APIError:
    """The typed error for an error answer (its problem details, or a minimal one when the body is not)."""
    try:
        problem = response.json()
        if not isinstance(problem, dict):
            raise ValueError
    except ValueError:
        problem = {"title": response.reason_phrase, "status": response.status_code, "detail": response.text[:500]}
    kind = str(problem.get("type", "")).removeprefix(PROBLEM_TYPE_PREFIX)
    cls = _BY_KIND.get(kind) or _BY_STATUS.get(response.status_code)
    if cls is None:
        cls = ServerError if response.status_code >= 500 else ClientError if response.status_code >= 400 else APIError
    return cls(response, problem)
