"""`verify_webhook_signature`: the documented recipe, secret rotation, tampering and the replay window."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from travelrisk_client import WebhookSignatureError, verify_webhook_signature

BODY = b'{"id":"evt_1","type":"assessment.created"}'
NOW = 1_790_000_000


def signature(secret: str, timestamp: int, body: bytes = BODY) -> str:
    # The recipe as documented, written out independently of the helper.
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def test_a_genuine_delivery_verifies() -> None:
    header = f"t={NOW},v1={signature('whsec_a', NOW)}"
    assert verify_webhook_signature(BODY, header, "whsec_a", now=NOW + 10) == NOW


def test_any_signature_may_match_during_a_rotation() -> None:
    header = f"t={NOW},v1={signature('new', NOW)},v1={signature('old', NOW)}"
    assert verify_webhook_signature(BODY, header, "old", now=NOW) == NOW
    assert verify_webhook_signature(BODY, header, ["other", "new"], now=NOW) == NOW


@pytest.mark.parametrize(
    ("body", "header", "now", "reason"),
    [
        (BODY + b" ", f"t={NOW},v1={signature('s', NOW)}", NOW, "no signature matches"),
        (BODY, f"t={NOW},v1={signature('wrong', NOW)}", NOW, "no signature matches"),
        (BODY, f"t={NOW + 1},v1={signature('s', NOW)}", NOW, "no signature matches"),
        (BODY, f"t={NOW},v1={signature('s', NOW)}", NOW + 301, "tolerance"),
        (BODY, f"t={NOW},v1={signature('s', NOW)}", NOW - 301, "tolerance"),
        (BODY, f"v1={signature('s', NOW)}", NOW, "must have t="),
        (BODY, f"t=soon,v1={signature('s', NOW)}", NOW, "malformed timestamp"),
        (BODY, f"t={NOW}", NOW, "must have t="),
        (BODY, None, NOW, "no Travelrisk-Signature"),
    ],
)
def test_a_forged_replayed_or_malformed_delivery_is_refused(
    body: bytes, header: str | None, now: int, reason: str
) -> None:
    with pytest.raises(WebhookSignatureError, match=reason):
        verify_webhook_signature(body, header, "s", now=now)


def test_the_tolerance_can_be_set() -> None:
    header = f"t={NOW},v1={signature('s', NOW)}"
    assert verify_webhook_signature(BODY, header, "s", now=NOW + 500, tolerance=600) == NOW
    with pytest.raises(WebhookSignatureError):
        verify_webhook_signature(BODY, header, "s", now=NOW + 61, tolerance=60)
