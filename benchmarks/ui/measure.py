"""How long the workspace's pages take to render on the embedded default.

Starts `travelrisk serve` over a fresh SQLite file in a temporary directory (migrations, bundled
reference data and model), creates a tenant with a key per role and ASSESSMENTS severe assessments, signs
in, and requests each page ROUNDS times in sequence, printing the median and the 95th percentile of the
time to the last byte as the client sees it.

    .venv/bin/python benchmarks/ui/measure.py [--assessments 200] [--rounds 50]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from service.assessments.examples import REQUEST_EXAMPLE  # noqa: E402


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assessments", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=50)
    options = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="travelrisk-ui-bench-"))
    env = {
        **os.environ,
        "TRAVELRISK_DATABASE_URL": f"sqlite:///{folder / 'travelrisk.db'}",
        "TRAVELRISK_LOG_LEVEL": "WARNING",
    }
    port = _port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env=env,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        requester = _cli(env, "keys", "create", "--tenant", "bench", "--role", "requester", "--holder", "req-1")
        reviewer = _cli(env, "keys", "create", "--tenant", "bench", "--role", "reviewer", "--holder", "rev-1")
        ids = []
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {requester}"}, timeout=30) as api:
            for i in range(options.assessments):
                body = json.loads(json.dumps(REQUEST_EXAMPLE))
                body["traveler"]["reference"] = f"B-{i:05d}"
                ids.append(api.post("/v1/assessments", json=body).json()["id"])
        with httpx.Client(base_url=base, timeout=30) as browser:
            form = browser.get("/ui/sign-in").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
            browser.post("/ui/sign-in", data={"csrf_token": token, "api_key": reviewer})
            pages = {
                "queue (50 of the open reviews)": "/ui/queue",
                "assessments (25 newest)": "/ui/assessments",
                "assessment (severe, 8 factors)": f"/ui/assessments/{ids[-1]}",
                "model": "/ui/model",
                "situations": "/ui/reference/situations",
                "situations, searched": "/ui/reference/situations?q=meng",
                "employer disputes": "/ui/reference/employer-disputes",
            }
            print(f"{options.assessments} assessments, {options.rounds} sequential requests per page")
            print(f"{'page':34} {'median ms':>10} {'p95 ms':>8}")
            for name, path in pages.items():
                assert browser.get(path).status_code == 200, path
                times = []
                for _ in range(options.rounds):
                    started = time.perf_counter()
                    response = browser.get(path)
                    times.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200
                times.sort()
                p95 = times[max(0, int(len(times) * 0.95) - 1)]
                print(f"{name:34} {statistics.median(times):10.1f} {p95:8.1f}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
