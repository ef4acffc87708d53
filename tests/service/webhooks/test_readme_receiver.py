"""The README's webhook receiver, run exactly as printed, verifies real deliveries and refuses forged or
replayed ones."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service.webhooks.service import sign, signature_header
from tests.service.conftest import PROJECT_ROOT, free_port
from tests.service.webhooks.conftest import register, wait_until

MARKER = "<!-- webhook-receiver: the test suite runs this exact code -->"


def readme_receiver() -> str:
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(re.escape(MARKER) + r"\n```python\n(.*?)\n```", text, re.DOTALL)
    assert found, "the receiver example is missing from README.md"
    return found.group(1)


def test_the_example_is_about_ten_lines() -> None:
    code = [line for line in readme_receiver().splitlines() if line.strip()]
    assert len(code) <= 20


@pytest.fixture
def run_receiver(tmp_path: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []

    def run(secret: str) -> tuple[str, subprocess.Popen[str]]:
        script = tmp_path / "receiver.py"
        script.write_text(readme_receiver(), encoding="utf-8")
        port = free_port()
        env = {**os.environ, "TRAVELRISK_WEBHOOK_SECRET": secret, "PORT": str(port)}
        process = subprocess.Popen(
            [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}/"

        def up() -> bool:
            try:
                httpx.get(url, timeout=1)
            except httpx.TransportError:
                return False
            return True

        wait_until(up, timeout=20, message="the README receiver to listen")
        return url, process

    yield run
    for process in started:
        process.kill()
        process.wait(timeout=10)


def test_the_readme_receiver_verifies_deliveries(client: TestClient, tenant: Any, run_receiver: Any) -> None:
    # Register first (the secret is only known then), then point the endpoint at the running receiver.
    endpoint = register(client, tenant, "http://127.0.0.1:9/")
    url, process = run_receiver(endpoint["secret"])
    client.patch(f"/v1/webhooks/{endpoint['id']}", json={"url": url}, headers=tenant.auth("admin"))

    future = dt.date.today() + dt.timedelta(days=90)
    body = {
        "traveler": {"reference": "README-1", "citizenships": ["GB"]},
        "trip": {"legs": [{"country": "CN", "arrive": future.isoformat(), "depart": future.isoformat()}]},
    }
    created = client.post("/v1/assessments", json=body, headers=tenant.auth("requester")).json()
    [delivery] = wait_until(
        lambda: client.get(
            f"/v1/webhooks/{endpoint['id']}/deliveries", params={"state": "delivered"}, headers=tenant.auth("admin")
        ).json()["items"],
        message="the delivery to be accepted",
    )
    assert delivery["last_status"] == 204

    # Forged, tampered and replayed requests are refused.
    payload = b'{"id": "evt_forged", "type": "assessment.created", "data": {"assessment_id": "x"}}'
    now = int(time.time())
    secret = endpoint["secret"]
    cases = {
        "wrong secret": (signature_header(["whsec_wrong"], now, payload), payload),
        "tampered body": (signature_header([secret], now, payload), payload.replace(b"x", b"y")),
        "replayed": (signature_header([secret], now - 600, payload), payload),
        "no signature": ("", payload),
        "no timestamp": (f"v1={sign(secret, now, payload)}", payload),
    }
    for name, (header, content) in cases.items():
        response = httpx.post(url, content=content, headers={"Travelrisk-Signature": header}, timeout=5)
        assert response.status_code == 400, name
    # A second valid signature (a rotation's) is accepted beside an unknown one.
    rotated = f"t={now},v1={sign('whsec_new', now, payload)},v1={sign(secret, now, payload)}"
    assert httpx.post(url, content=payload, headers={"Travelrisk-Signature": rotated}, timeout=5).status_code == 204

    # It printed the accepted events only (the receiver answers before it prints, so read, then stop it).
    assert process.stdout is not None
    lines = [process.stdout.readline().strip() for _ in range(2)]
    process.kill()
    rest, _ = process.communicate(timeout=10)
    assert lines == [f"{delivery['event_id']} assessment.created {created['id']}", "evt_forged assessment.created x"]
    assert rest == ""
