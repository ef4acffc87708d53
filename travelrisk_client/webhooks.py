"""Verifying the signature of a webhook delivery.

The service signs each delivery with a header

    Travelrisk-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]

where each `v1` is HMAC-SHA256(secret, f"{t}.".encode() + raw_body) in hex (two while a rotated secret's
grace period runs). A delivery is genuine when any `v1` matches one of the receiver's secrets and `t` is
within the tolerance of the receiver's clock, which also bounds how long a captured delivery can be
replayed. Receivers de-duplicate on the `Travelrisk-Event-Id` header: delivery is at least once.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

from travelrisk_client.errors import WebhookSignatureError

SIGNATURE_HEADER = "Travelrisk-Signature"
EVENT_ID_HEADER = "Travelrisk-Event-Id"
DEFAULT_TOLERANCE = 300


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The `v1` signature of `body` at `timestamp` (what the service computes)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify_webhook_signature(
    body: bytes,
    header: str | None,
    secret: str | Sequence[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a delivery's `Travelrisk-Signature` against the raw request body; return its timestamp.

    `body` must be the bytes as received (not re-serialised JSON). `secret` may be several secrets (the
    current and the previous one while rotating). Raises `WebhookSignatureError` saying why when the
    header is missing or malformed, no signature matches, or the timestamp is more than `tolerance`
    seconds from `now` (default: the current time).
    """
    if not header:
        raise WebhookSignatureError(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookSignatureError(f"malformed timestamp in {SIGNATURE_HEADER}") from None
        elif name == "v1" and value:
            signatures.append(value.strip().lower())
    if timestamp is None or not signatures:
        raise WebhookSignatureError(f"{SIGNATURE_HEADER} must have t=<unix seconds> and at least one v1=<hex>")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookSignatureError(
            f"the timestamp is {abs(current - timestamp):.0f} s from now; more than the tolerance of {tolerance} s"
        )
    secrets = [secret] if isinstance(secret, str) else list(secret)
    expected = [sign(body, s, timestamp) for s in secrets]
    # Compare every pair, in constant time each, so timing says nothing about which part matched.
    matched = False
    for candidate in signatures:
        for wanted in expected:
            matched |= hmac.compare_digest(candidate, wanted)
    if not matched:
        raise WebhookSignatureError("no signature matches the body and secret")
    return timestamp
