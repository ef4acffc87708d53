"""The delivery worker: a thread in each worker process that posts due outbox deliveries.

A delivery is claimed with a lease (a conditional update of `claimed_at` and a claim token, as re-scoring
claims its jobs), so several threads, workers or replicas never send one delivery at the same time; a
delivery whose worker died mid-send is claimed again when its lease runs out and sent again: delivery is
at least once, and receivers de-duplicate on the event id. The HTTP call runs outside any transaction;
its outcome is recorded only by the holder of the claim.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import secrets
import time
from contextlib import AbstractContextManager
from typing import Any

import httpx
import orjson
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from service.db import utcnow
from service.leases import LeasedWorker, claim_row, write_transaction
from service.settings import Settings
from service.webhooks import service
from service.webhooks.addresses import AddressRefused, resolve
from service.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

log = logging.getLogger("travelrisk.webhooks")

USER_AGENT = "travelrisk-webhooks/1"
_SNIPPET_BYTES = 300


@dataclasses.dataclass(frozen=True, slots=True)
class Claim:
    """A delivery this worker holds, with everything needed to send it."""

    delivery_id: str
    token: str
    endpoint_id: str
    url: str
    secrets: list[str]
    event_id: str
    event_type: str
    payload: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt gave: success, the HTTP status (if any answer came), latency and error."""

    ok: bool
    status: int | None
    latency_ms: float
    error: str | None


def backoff(attempts: int, base_seconds: float, rng: random.Random | None = None) -> dt.timedelta:
    """The wait after the `attempts`-th failed attempt: base · 2^(attempts-1), ±20% jitter so that many
    deliveries failing together do not retry together."""
    jitter = (rng or random).uniform(0.8, 1.2)
    return dt.timedelta(seconds=base_seconds * 2 ** (attempts - 1) * jitter)


def post_event(
    client: httpx.Client, url: str, body: bytes, headers: dict[str, str], *, allow_private: bool
) -> tuple[int, bytes]:
    """POST `body` to `url`, connecting only to addresses of its host that pass the address check.

    The host is resolved here and the connection made to a checked address (the name is kept for the
    Host header and TLS server name and certificate check), so a name re-pointed at an internal address
    after registration is refused. Returns the status and the start of the answer's body (only a few
    hundred bytes are read).
    """
    target = httpx.URL(url)
    port = target.port or (443 if target.scheme == "https" else 80)
    addresses = resolve(target.host, port, allow_private=allow_private)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    host_header = target.netloc.decode("ascii")
    last_error: httpx.ConnectError | None = None
    for address in addresses:
        request = client.build_request(
            "POST",
            target.copy_with(host=str(address)),
            content=body,
            headers={**headers, "Host": host_header},
            extensions=extensions,
        )
        try:
            response = client.send(request, stream=True)
        except httpx.ConnectError as exc:
            last_error = exc
            continue
        try:
            snippet = b""
            for chunk in response.iter_bytes():
                snippet += chunk
                if len(snippet) >= _SNIPPET_BYTES:
                    break
        finally:
            response.close()
        return response.status_code, snippet[:_SNIPPET_BYTES]
    assert last_error is not None
    raise last_error


class Deliverer(LeasedWorker):
    """A worker process's webhook delivery thread."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        write_lock: AbstractContextManager[Any],
        settings: Settings,
    ) -> None:
        super().__init__(
            "webhook-deliverer",
            service.WAKE,
            settings.webhooks_poll_seconds,
            log,
            join_seconds=settings.webhooks_timeout_seconds + 10,
        )
        self._sessions = session_factory
        self._write_lock = write_lock
        self._settings = settings
        # A lease outlives any attempt (connect, write and read each bounded by the timeout), so a live
        # worker never loses its claim while sending.
        self.lease = dt.timedelta(seconds=2 * settings.webhooks_timeout_seconds + 5)
        # trust_env=False: an HTTP(S)_PROXY from the environment would connect on our behalf, around the
        # address check.
        self._client = httpx.Client(
            timeout=settings.webhooks_timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        )

    def stop(self) -> None:
        super().stop()
        self._client.close()

    def failed(self, exc: Exception) -> None:
        # The claim lapses and the delivery is attempted again. Logged without the message, which may quote
        # SQL parameters (and so traveller data).
        log.error("webhook delivery failed; it will be attempted again", extra={"error_type": type(exc).__name__})

    def run_once(self) -> bool:
        """Claim, send and record one due delivery; False when none was due."""
        claim = self._claim()
        if claim is None:
            return False
        outcome = self._send(claim)
        self._record(claim, outcome)
        return True

    def _claimable(self, now: dt.datetime) -> Any:
        stale = now - self.lease
        return (
            (WebhookDelivery.state == service.PENDING)
            & (WebhookDelivery.next_attempt_at <= now)
            & or_(WebhookDelivery.claimed_at.is_(None), WebhookDelivery.claimed_at < stale)
        )

    def _claim(self) -> Claim | None:
        now = utcnow()
        # Look without the write lock first: an idle poll must not queue behind request writers.
        with self._sessions() as session:
            candidate = session.scalar(
                select(WebhookDelivery.id)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(self._claimable(now), WebhookEndpoint.enabled.is_(True))
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(1)
            )
        if candidate is None:
            return None
        token = secrets.token_hex(16)
        with write_transaction(self._sessions, self._write_lock) as session:
            if not claim_row(
                session, WebhookDelivery, candidate, self._claimable(now), claimed_at=now, claim_token=token
            ):
                return None
            delivery = session.get_one(WebhookDelivery, candidate)
            endpoint = session.get_one(WebhookEndpoint, delivery.endpoint_id)
            event = session.get_one(WebhookEvent, delivery.event_id)
            return Claim(
                delivery_id=delivery.id,
                token=token,
                endpoint_id=endpoint.id,
                url=endpoint.url,
                secrets=service.signing_secrets(endpoint, now),
                event_id=event.id,
                event_type=event.type,
                payload=event.payload,
            )

    def _send(self, claim: Claim) -> Outcome:
        body = orjson.dumps(claim.payload)
        headers = {
            "Content-Type": "application/json",
            service.EVENT_ID_HEADER: claim.event_id,
            service.EVENT_TYPE_HEADER: claim.event_type,
            service.SIGNATURE_HEADER: service.signature_header(claim.secrets, int(time.time()), body),
        }
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            status, answer_bytes = post_event(
                self._client, claim.url, body, headers, allow_private=self._settings.webhooks_allow_private
            )
            if not 200 <= status < 300:
                answer = answer_bytes.decode("utf-8", "replace").strip()
                error = f"HTTP {status}" + (f": {answer}" if answer else "")
        except AddressRefused as exc:
            error = f"address refused: {exc}"
        except httpx.TimeoutException:
            error = f"timed out after {self._settings.webhooks_timeout_seconds:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        latency = (time.perf_counter() - started) * 1000
        return Outcome(ok=error is None, status=status, latency_ms=round(latency, 1), error=error and error[:500])

    def _record(self, claim: Claim, outcome: Outcome) -> None:
        settings = self._settings
        with write_transaction(self._sessions, self._write_lock) as session:
            delivery = session.get(WebhookDelivery, claim.delivery_id)
            if delivery is None or delivery.claim_token != claim.token:
                # Deleted with its endpoint, or the lease lapsed and another worker holds it now.
                return
            endpoint = session.get_one(WebhookEndpoint, delivery.endpoint_id, with_for_update=True)
            now = utcnow()
            delivery.attempts += 1
            delivery.last_attempt_at = now
            delivery.last_status = outcome.status
            delivery.last_latency_ms = outcome.latency_ms
            delivery.last_error = outcome.error
            delivery.claimed_at = None
            delivery.claim_token = None
            if outcome.ok:
                delivery.state = service.DELIVERED
                delivery.delivered_at = now
                delivery.next_attempt_at = None
                endpoint.failing_since = None
                endpoint.failed_events = 0
            else:
                endpoint.failing_since = endpoint.failing_since or now
                if delivery.attempts >= settings.webhooks_max_attempts:
                    delivery.state = service.FAILED
                    delivery.next_attempt_at = None
                    endpoint.failed_events += 1
                else:
                    delivery.next_attempt_at = now + backoff(delivery.attempts, settings.webhooks_backoff_base_seconds)
                reason = self._disable_reason(endpoint, now)
                if reason is not None and endpoint.enabled:
                    endpoint.enabled = False
                    endpoint.disabled_reason = reason
                    endpoint.disabled_at = now
                    endpoint.updated_at = now
                    log.warning("webhook endpoint disabled", extra={"endpoint": endpoint.id})
            log.info(
                "webhook attempt",
                extra={
                    "endpoint": endpoint.id,
                    "delivery": delivery.id,
                    "event_type": claim.event_type,
                    "attempt": delivery.attempts,
                    "status": outcome.status,
                    "ok": outcome.ok,
                    "duration_ms": outcome.latency_ms,
                },
            )

    def _disable_reason(self, endpoint: WebhookEndpoint, now: dt.datetime) -> str | None:
        settings = self._settings
        if endpoint.failed_events >= settings.webhooks_disable_after_failed_events:
            return (
                f"{endpoint.failed_events} consecutive events failed after {settings.webhooks_max_attempts}"
                " attempts each"
            )
        failing = now - endpoint.failing_since if endpoint.failing_since else dt.timedelta(0)
        if failing > dt.timedelta(hours=settings.webhooks_disable_after_hours):
            return f"every delivery has failed since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC"
        return None
