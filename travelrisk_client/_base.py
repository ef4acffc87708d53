"""What the sync and async clients share: configuration, retry policy, request bodies, typed answers."""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from risk_rules.forms import AssessmentRequest
from travelrisk_client.errors import error_from_response

IDEMPOTENCY_KEY = "Idempotency-Key"
# Methods that may be repeated without changing the outcome (RFC 9110 §9.2.2); a POST only with a key.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Answers worth retrying: the request was not (fully) processed, or the service asks to come back later.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
DEFAULT_TIMEOUT = 30.0


class RetryPolicy:
    """How many times and how long to wait: exponential backoff with full jitter, capped, and the service's
    `Retry-After` when it sends one."""

    def __init__(self, max_retries: int = 3, backoff: float = 0.5, max_backoff: float = 30.0) -> None:
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff

    def retryable(self, method: str, keyed: bool, outcome: httpx.Response | Exception) -> bool:
        """Whether a request may be sent again after this answer or transport error: a safe method, or a
        POST to an operation that honours its Idempotency-Key (`keyed`)."""
        if method not in IDEMPOTENT_METHODS and not keyed:
            return False
        if isinstance(outcome, Exception):
            return isinstance(outcome, httpx.TransportError)
        return outcome.status_code in RETRY_STATUSES

    def delay(self, attempt: int, outcome: httpx.Response | Exception) -> float:
        """Seconds to wait before retry number `attempt` (from 1)."""
        if isinstance(outcome, httpx.Response):
            after = _retry_after(outcome.headers.get("retry-after"))
            if after is not None:
                return min(after, self.max_backoff)
        return random.uniform(0, min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import datetime as dt

        return max(0.0, (parsedate_to_datetime(value) - dt.datetime.now(dt.UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def client_headers(key: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = {"User-Agent": "travelrisk-client/1", "Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    headers.update(extra or {})
    return headers


def request_headers(method: str, headers: Mapping[str, str] | None, idempotency_key: str | None) -> dict[str, str]:
    """Per-request headers; every POST gets an Idempotency-Key (the same across its retries)."""
    merged = dict(headers or {})
    if method == "POST":
        merged[IDEMPOTENCY_KEY] = idempotency_key or str(uuid.uuid4())
    return merged


def check(response: httpx.Response) -> httpx.Response:
    """The response when it is a success; the typed error built from its problem details otherwise."""
    if response.status_code >= 400:
        raise error_from_response(response)
    return response


def assessment_body(request: AssessmentRequest | Mapping[str, Any]) -> dict[str, Any]:
    """A request as JSON-ready data, validated with the server's own form before it is sent."""
    model = request if isinstance(request, AssessmentRequest) else AssessmentRequest.model_validate(request)
    return model.model_dump(mode="json", exclude_defaults=True)


def roster_json(trips: Iterable[AssessmentRequest | Mapping[str, Any]]) -> bytes:
    """A roster as a JSON array. Mappings are sent as they are: the service reports invalid rows one by one."""
    items = [t.model_dump(mode="json", exclude_defaults=True) if isinstance(t, BaseModel) else dict(t) for t in trips]
    return json.dumps(items, separators=(",", ":")).encode()


def roster_file(path: str | os.PathLike[str]) -> tuple[bytes, str]:
    """A roster file's bytes and content type: `*.csv` is CSV, anything else JSON."""
    file = Path(path)
    return file.read_bytes(), "text/csv" if file.suffix.lower() == ".csv" else "application/json"


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def drop_none(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in params.items() if v is not None}


def model_list(model: type[BaseModel], items: Iterable[Any]) -> list[Any]:
    return [model.model_validate(item) for item in items]
