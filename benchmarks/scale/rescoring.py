"""Re-scoring at scale: 100,000 upcoming trips stored, a new situation touches 20,000 of them, re-scored by a
server that keeps answering requests meanwhile; both figures in one run.

    python benchmarks/scale/rescoring.py [--trips 100000 --touched 20000] [--rate 100 --seconds 15]
    python benchmarks/scale/rescoring.py --rate 0 --clients 4      # closed loop: the server saturated
    python benchmarks/scale/rescoring.py --alone                    # the job alone, in-process, one CPU
    BENCH_DIR=/tmp/rescoring python benchmarks/scale/rescoring.py --seed-only   # store the trips once

The trips are stored first as POST /v1/assessments stores them (scored by the real engine under the default
policy), ending 1 to 300 days from now; `--touched` of them are New Zealand citizens travelling to China
(the contract's example traveller), the rest drawn from the bundled population without NZ citizens. With
BENCH_DIR set to a directory seeded before, the stored trips are reused (each run adds one situation; the
touched trips are then re-scored again from their latest revision, which costs the same).

Then `travelrisk serve` starts pinned to one CPU, and POST /v1/assessments is driven from the other CPU:
`--seconds` quietly, then an analyst records an extradition case between New Zealand and China through
the API and the same load runs until the server's re-scorer has finished the job. Printed: the job's
examined and re-scored counts, the seconds from the situation's 201 to the job's `finished_at`, the CPU
seconds the server used meanwhile, and the requests' p50 / p99 quietly and during the re-scoring with the
ratio of the p99s. The load is open: `--rate` requests a second from `--clients` threads, each request
timed from when it was due (a request that waits for a free client counts the wait); `--rate 0` drives
`--clients` back-to-back clients instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import orjson
from common import ROOT, percentile, scratch_database, wait_ready

TENANT = "rescoring-bench"
HOME = "NZ"


def seed(trips: int, touched: int) -> None:
    """Store `trips` upcoming assessments, `touched` of them of NZ citizens (once per database)."""
    import random

    from sqlalchemy import func, select
    from trips import requests, with_dates

    from risk_rules.forms import AssessmentRequest
    from service.assessments import service as assessments
    from service.assessments.models import Assessment
    from service.db import create_db_engine, create_session_factory, session_scope
    from service.model.service import ScoringEngine
    from service.policy import service as policies
    from service.settings import get_settings
    from service.tenants import service as tenants

    settings = get_settings()
    engine = create_db_engine(settings)
    sessions = create_session_factory(engine)
    with sessions() as session:
        stored = session.scalar(select(func.count()).select_from(Assessment))
    if stored:
        print(f"{stored} assessments already stored: reused")
        engine.dispose()
        return
    scoring = ScoringEngine(settings, sessions)
    scoring.load()
    assessor = scoring.assessor()
    with session_scope(sessions) as session:
        tenant_id = tenants.get_or_create(session, TENANT).id
    with sessions() as session:
        reference = scoring.reference(session)
    rng = random.Random(42)
    today = dt.date.today()
    example = json.loads((ROOT / "benchmarks" / "http" / "body.json").read_text())
    ordinary = [r for r in requests(2000) if HOME not in r.traveler.citizenships]
    rows: list[dict] = []
    started = time.perf_counter()
    for n in range(trips):
        end = today + dt.timedelta(days=rng.randrange(1, 300))
        if n < touched:
            body = json.loads(json.dumps(example))
            body["traveler"]["citizenships"] = [HOME]
            body["traveler"].pop("former_citizenships", None)
            body["traveler"]["employer"]["name"] = f"Kiwi Exports {n % 50}"
            body["trip"]["entry_document"] = HOME
            request = AssessmentRequest.model_validate(body)
            reference_id = f"NZ-{n}"
        else:
            request, reference_id = rng.choice(ordinary), f"T-{n}"
        request = with_dates(request, reference_id, end - (request.trip.end - request.trip.start))
        result = policies.judge(assessor.assess_body(request, reference), policies.DEFAULT, assessor.model.bands)
        document = assessments.request_document(request)
        rows.append(
            assessments.new_assessment(
                tenant_id=tenant_id,
                request=request,
                document=document,
                result=result,
                idempotency_key=None,
                body_hash=assessments.request_hash(document),
            )
        )
        if len(rows) == 5000 or n == trips - 1:
            with session_scope(sessions) as session:
                assessments.insert_many(session, rows)
            rows = []
            print(f"stored {n + 1} trips ({(n + 1) / (time.perf_counter() - started):.0f}/s)", flush=True)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    engine.dispose()


def keys() -> tuple[str, str]:
    """A requester's and an analyst's key of the benchmark's tenant."""
    from service.db import create_db_engine, create_session_factory, session_scope
    from service.keys.models import Role
    from service.keys.service import create_key
    from service.settings import get_settings

    engine = create_db_engine(get_settings())
    with session_scope(create_session_factory(engine)) as session:
        requester = create_key(session, TENANT, Role.requester, "bench-requester").secret
        analyst = create_key(session, TENANT, Role.analyst, "bench-analyst").secret
    engine.dispose()
    return requester, analyst


class Load:
    """POST /v1/assessments from client threads until stopped; latencies in ms, each tagged with whether it
    was sent during the re-scoring."""

    def __init__(self, base: str, key: str, body: bytes, rate: float, clients: int) -> None:
        self.base, self.key, self.body, self.rate, self.clients = base, key, body, rate, clients
        self.phase = "quiet"
        self.latencies: dict[str, list[float]] = {"warm-up": [], "quiet": [], "re-scoring": [], "after": []}
        self.errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)]

    def start(self, phase: str) -> Load:
        self.phase = phase
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _client(self, n: int) -> None:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        interval = self.clients / self.rate if self.rate else 0.0
        due = time.perf_counter() + n * interval / self.clients
        with httpx.Client(base_url=self.base, headers=headers, timeout=60) as client:
            while not self._stop.is_set():
                if interval:
                    wait = due - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                    start = due
                    due += interval
                else:
                    start = time.perf_counter()
                phase = self.phase
                response = client.post("/v1/assessments", content=self.body)
                elapsed = (time.perf_counter() - start) * 1000
                with self._lock:
                    if response.status_code != 201:
                        self.errors += 1
                    else:
                        self.latencies[phase].append(elapsed)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its children that were waited for, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=100_000)
    parser.add_argument("--touched", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=100, help="requests a second (0: back-to-back clients)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15, help="length of the quiet phase")
    parser.add_argument("--seed-only", action="store_true", help="store the trips (in BENCH_DIR) and stop")
    parser.add_argument("--alone", action="store_true", help="the job alone, in this process, on one CPU")
    args = parser.parse_args()

    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = cpus[0], cpus[-1]
    os.environ.setdefault("TRAVELRISK_SQLITE_SYNCHRONOUS", "NORMAL")
    url = scratch_database("rescoring")
    seed(args.trips, args.touched)
    if args.seed_only:
        return
    if args.alone:
        alone(server_cpu)
        return
    os.sched_setaffinity(0, {client_cpu})
    requester, analyst = keys()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        ["taskset", "-c", str(server_cpu), sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env={**os.environ, "TRAVELRISK_DATABASE_URL": url, "TRAVELRISK_RATE_LIMIT_PER_KEY": "1000000/minute"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    body = orjson.dumps(json.loads((ROOT / "benchmarks" / "http" / "body.json").read_text()))
    try:
        wait_ready(base, 180)
        load = Load(base, requester, body, args.rate, args.clients).start("warm-up")
        time.sleep(3)
        load.phase = "quiet"
        time.sleep(args.seconds)
        situation = situation_document()
        cpu_before = cpu_seconds(server.pid)
        load.phase = "re-scoring"
        created = httpx.post(
            f"{base}/v1/situations", json=situation, headers={"Authorization": f"Bearer {analyst}"}, timeout=60
        )
        created.raise_for_status()
        recorded = dt.datetime.now(dt.UTC)
        job = wait_for_job(url)
        load.phase = "after"
        cpu = cpu_seconds(server.pid) - cpu_before
        load.stop()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)

    quiet, busy = load.latencies["quiet"], load.latencies["re-scoring"]
    took = (job["finished_at"] - recorded).total_seconds()
    mode = f"{args.rate:g} requests/s from {args.clients} clients" if args.rate else f"{args.clients} clients"
    print(f"load: {mode}; server on CPU {server_cpu}, load on CPU {client_cpu}; non-201 answers: {load.errors}")
    print(
        f"job {job['id']}: examined {job['examined']}, re-scored {job['rescored']} in {took:.1f} s"
        f" (server CPU meanwhile {cpu:.1f} s, requests included)"
    )
    print(f"quiet:       {len(quiet)} requests, p50 {percentile(quiet, 50):.1f} ms, p99 {percentile(quiet, 99):.1f} ms")
    print(f"re-scoring:  {len(busy)} requests, p50 {percentile(busy, 50):.1f} ms, p99 {percentile(busy, 99):.1f} ms")
    print(f"p99 ratio (re-scoring / quiet): {percentile(busy, 99) / percentile(quiet, 99):.2f}")


def alone(cpu: int) -> None:
    """Record the situation and run the job in this process, pinned to one CPU, with no requests: the
    job's wall-clock and CPU seconds (on a shared machine the CPU seconds are the figure for one core)."""
    os.sched_setaffinity(0, {cpu})
    from risk_rules.reference import SituationIn
    from service.db import create_db_engine, create_session_factory, write_lock
    from service.model.service import ScoringEngine
    from service.reference.models import SITUATION
    from service.reference.store import upsert
    from service.rescoring.models import RescoringJob
    from service.rescoring.service import Rescorer, enqueue_rescoring
    from service.settings import get_settings

    settings = get_settings()
    engine = create_db_engine(settings)
    sessions = create_session_factory(engine)
    scoring = ScoringEngine(settings, sessions)
    scoring.load()
    scoring.warm_reference()
    document = {**situation_document(), "id": f"bench-{uuid.uuid4().hex[:8]}"}
    with sessions() as session:
        job = enqueue_rescoring(session, upsert(session, SITUATION, SituationIn.model_validate(document), "bench"))
        session.commit()
        assert job is not None
        job_id = job.id
    rescorer = Rescorer(sessions, scoring, write_lock(engine))
    started, cpu_started = time.perf_counter(), time.process_time()
    while rescorer.run_once():
        pass
    elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu_started
    with sessions() as session:
        done = session.get_one(RescoringJob, job_id)
        print(
            f"job {job_id} alone on CPU {cpu}: examined {done.examined}, re-scored {done.rescored} in"
            f" {elapsed:.1f} s ({cpu_used:.1f} s of CPU time)"
        )
    engine.dispose()


def situation_document() -> dict:
    """An extradition case between New Zealand and China, active since a month ago (no id)."""
    return {
        "home_country": HOME,
        "destination": "CN",
        "kind": "extradition_case",
        "title": f"New Zealand holds a person China wants ({uuid.uuid4().hex[:6]})",
        "started_on": (dt.date.today() - dt.timedelta(days=30)).isoformat(),
        "severity": "high",
        "sources": [{"title": "benchmark note", "url": "https://example.org/bench", "date": "2026-11-30"}],
    }


def wait_for_job(url: str) -> dict:
    """The latest re-scoring job once it has finished."""
    from sqlalchemy import select

    from service.db import create_db_engine
    from service.rescoring.models import RescoringJob
    from service.settings import get_settings

    engine = create_db_engine(get_settings(), url)
    try:
        while True:
            with engine.connect() as connection:
                row = connection.execute(
                    select(RescoringJob.id, RescoringJob.examined, RescoringJob.rescored, RescoringJob.finished_at)
                    .order_by(RescoringJob.id.desc())
                    .limit(1)
                ).one_or_none()
            if row is not None and row.finished_at is not None:
                return dict(row._mapping)
            time.sleep(0.2)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
