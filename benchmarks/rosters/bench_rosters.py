"""Roster benchmark: trips per second from an upload to every trip stored as an assessment, on one core.

Each run uploads a roster of synthetic trips (drawn from the reference population with a fixed seed) as a
JSON array, to a fresh SQLite database, and times the whole path: the upload's checks and storage, then a
`RosterWorker` validating, scoring (`Assessor.assess_bodies`) and storing every trip as an ordinary
assessment in committed chunks. With `--http`, the same roster goes through `travelrisk serve` (pinned
to the same core) and the Python client instead, from the POST to the roster's `done`.

    python benchmarks/rosters/bench_rosters.py [--trips 20000] [--runs 5] [--cpu N] [--http]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# One BLAS thread: the target is per core.
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import orjson  # noqa: E402

from models.corpus import Population, generate_controls  # noqa: E402
from risk_rules.reference import load_bundled_reference  # noqa: E402


def roster_body(trips: int) -> bytes:
    requests = generate_controls(Population.load(), load_bundled_reference(), trips=trips, seed=515151)
    return orjson.dumps([r.model_dump(mode="json", exclude_defaults=True) for r in requests])


def in_process(body: bytes, directory: Path, chunk: int) -> tuple[float, float, int]:
    """Seconds from the upload to the last trip stored (wall clock and this process's CPU time), and the
    number of assessments stored."""
    from sqlalchemy import func, select

    from service.assessments.models import Assessment
    from service.db import create_db_engine, create_session_factory, upgrade_database, write_lock
    from service.model.service import ScoringEngine
    from service.rosters import service
    from service.settings import Settings
    from service.tenants import service as tenants

    url = f"sqlite:///{directory / 'bench.db'}"
    upgrade_database(url)
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    engine = create_db_engine(settings)
    sessions = create_session_factory(engine)
    scoring = ScoringEngine(settings, sessions)
    assert scoring.load(), scoring.failure
    with sessions() as session:
        tenant_id = tenants.get_or_create(session, "bench").id
        session.commit()
        scoring.reference(session)  # the reference snapshot is built once per process, as in a server
    worker = service.RosterWorker(sessions, scoring, write_lock(engine), chunk_size=chunk)
    started, cpu_started = time.perf_counter(), time.process_time()
    upload = service.parse_upload(body, "application/json")
    with sessions() as session:
        roster = service.create(session, tenant_id, upload, None)
        session.commit()
    worker.run_once(roster.id)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    with sessions() as session:
        stored = session.scalar(select(func.count()).select_from(Assessment))
        assert session.get_one(service.Roster, roster.id).state == "done"
    engine.dispose()
    return elapsed, cpu, stored


def over_http(body: bytes, directory: Path, cpu: int) -> tuple[float, float | None, int]:
    """The same through `travelrisk serve` on `cpu` and the Python client."""
    import socket

    import httpx

    from travelrisk_client import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "TRAVELRISK_DATABASE_URL": f"sqlite:///{directory / 'bench.db'}",
        "TRAVELRISK_LOG_LEVEL": "WARNING",
    }
    key = subprocess.run(
        [sys.executable, "-m", "service.cli", "keys", "create", "--tenant", "bench", "--role", "requester"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    server = subprocess.Popen(
        ["taskset", "-c", str(cpu), sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        roster_file = directory / "roster.json"
        roster_file.write_bytes(body)
        with Client(base, key, timeout=120) as client:
            started = time.perf_counter()
            accepted = client.upload_roster_file(roster_file)
            status = client.wait_for_roster(accepted.id, poll_interval=0.05)
            elapsed = time.perf_counter() - started
        return elapsed, None, status.done - status.invalid
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=500, help="trips per committed chunk (in-process)")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: the last one)")
    parser.add_argument("--http", action="store_true", help="through travelrisk serve and the client")
    args = parser.parse_args()
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    if not args.http:
        os.sched_setaffinity(0, {cpu})
    body = roster_body(args.trips)
    print(f"roster: {args.trips:,} trips, {len(body) / 1e6:.1f} MB of JSON; CPU {cpu}")
    rates, cpu_rates = [], []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as directory:
            if args.http:
                seconds, cpu_seconds, stored = over_http(body, Path(directory), cpu)
            else:
                seconds, cpu_seconds, stored = in_process(body, Path(directory), args.chunk)
        assert stored == args.trips, (stored, args.trips)
        rates.append(stored / seconds)
        line = f"run {run}: {stored:,} trips stored in {seconds:.2f} s = {rates[-1]:,.0f} trips/s"
        if cpu_seconds:
            cpu_rates.append(stored / cpu_seconds)
            line += f" (CPU time {cpu_seconds:.2f} s = {cpu_rates[-1]:,.0f} trips/s per busy core)"
        print(line)
    mode = "over HTTP" if args.http else "in-process"
    summary = f"MEDIAN over {args.runs} runs ({mode}, one core): {statistics.median(rates):,.0f} trips/s wall clock"
    if cpu_rates:
        # On a shared machine the wall clock counts other processes' turns on the core; CPU time does not.
        summary += f", {statistics.median(cpu_rates):,.0f} trips/s of CPU time"
    print(summary + " (target >= 5,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
