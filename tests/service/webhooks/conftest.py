"""A real webhook receiver (an HTTP server on 127.0.0.1 in a thread) and helpers of the webhook tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient


@dataclass
class Received:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers["travelrisk-event-id"]


@dataclass
class Receiver:
    """Records every POST; answers with the scripted statuses in turn, then `default`.

    `hold`, when set, makes every request wait for it to be set before answering (a receiver that is
    mid-request when the service dies).
    """

    statuses: list[int] = field(default_factory=list)
    default: int = 200
    hold: threading.Event | None = None
    received: list[Received] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def start(self) -> Receiver:
        receiver = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server interface
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                entry = Received({k.lower(): v for k, v in self.headers.items()}, body, time.time())
                with lock:
                    receiver.received.append(entry)
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                if receiver.hold is not None:
                    receiver.hold.wait(60)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                if 200 <= status < 300:
                    with lock:
                        receiver.answered.append(entry.headers.get("travelrisk-event-id", ""))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def event_ids(self) -> list[str]:
        return [r.event_id for r in self.received]


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def make(**kwargs: Any) -> Receiver:
        receiver = Receiver(**kwargs).start()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.stop()


def wait_until(check: Callable[[], Any], timeout: float = 20, message: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: float = 300) -> bool:
    """The documented verification recipe, written out independently of the service's signing code."""
    parts = [part.split("=", 1) for part in headers["travelrisk-signature"].split(",")]
    timestamp = next(value for key, value in parts if key == "t")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) <= tolerance
    return fresh and any(key == "v1" and hmac.compare_digest(value, expected) for key, value in parts)


def register(
    client: TestClient, tenant: Any, url: str, event_types: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    """Register an endpoint as the tenant's admin; the created endpoint, with its secret."""
    body = {"url": url, "event_types": event_types or ["assessment.created"], **extra}
    response = client.post("/v1/webhooks", json=body, headers=tenant.auth("admin"))
    assert response.status_code == 201, response.text
    return response.json()


def deliveries(client: TestClient, tenant: Any, webhook_id: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"/v1/webhooks/{webhook_id}/deliveries", params=params, headers=tenant.auth("admin"))
    assert response.status_code == 200, response.text
    return response.json()["items"]
