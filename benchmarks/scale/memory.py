"""Resident memory of one `travelrisk serve` worker with a large reference set and the model loaded.

Seeds N situations and N employer disputes (default 10,000 + 10,000) into a scratch database, starts
`travelrisk serve` (one worker) on it, sends a few assessments (so the reference snapshot, its indexes
and the employer-name index are built, and the request path has run), then reads the worker's VmRSS and
VmHWM (peak) from /proc/PID/status.

    python benchmarks/scale/memory.py [--records 10000] [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from common import ROOT, scratch_database, seed_reference, wait_ready


def status_kib(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile of a process, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[name] = int(value.split()[0])
    return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000, help="situations, and as many employer disputes")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    url = scratch_database("memory")
    seed_reference(args.records)

    from service.db import create_db_engine, create_session_factory, session_scope
    from service.keys.models import Role
    from service.keys.service import create_key
    from service.settings import get_settings

    engine = create_db_engine(get_settings())
    with session_scope(create_session_factory(engine)) as session:
        key = create_key(session, "memory-benchmark", Role.requester).secret
    engine.dispose()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TRAVELRISK_DATABASE_URL": url}
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, 120)
        idle = status_kib(server.pid)
        body = json.loads((ROOT / "benchmarks" / "http" / "body.json").read_text())
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            for n in range(args.requests):
                request = json.loads(json.dumps(body))
                request["traveler"]["reference"] = f"M-{n}"
                if n % 2:
                    request["traveler"]["employer"] = {"name": f"Boreal Delta {n} Holdings"}
                response = client.post("/v1/assessments", json=request)
                response.raise_for_status()
        loaded = status_kib(server.pid)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    print(f"reference records: {args.records} situations + {args.records} employer disputes")
    print(
        "worker after start-up (model and snapshot loaded): "
        + ", ".join(f"{k}={v / 1024:.1f} MB" for k, v in idle.items())
    )
    print(
        f"worker after {args.requests} assessments: " + ", ".join(f"{k}={v / 1024:.1f} MB" for k, v in loaded.items())
    )


if __name__ == "__main__":
    main()
