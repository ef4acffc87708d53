"""Several processes on one database, as behind a load balancer: a server with `--workers 2` and a separate
`travelrisk serve` replica. Every background job runs exactly once: each re-scoring job is claimed and
finished by one worker, each roster's trips are stored once, and each webhook delivery reaches the
receiver (a real HTTP server) once.

On PostgreSQL when TRAVELRISK_TEST_DATABASE_URL is set; otherwise two processes share one SQLite file.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.assessments.models import Assessment
from service.db import create_db_engine, create_session_factory
from service.rescoring.models import AssessmentRevision, RescoringJob
from service.rescoring.service import Rescorer
from service.rosters.models import Roster, RosterItem
from service.rosters.service import RosterWorker
from service.webhooks.delivery import Deliverer
from service.webhooks.models import WebhookDelivery, WebhookEvent
from tests.service.conftest import Server
from tests.service.webhooks.conftest import Receiver

HOME = "MN"
FUTURE = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=200)
# The servers deliver to a receiver on 127.0.0.1, poll often and work rosters in small chunks, so that
# the workers race for every kind of job many times over.
SERVER_ENV = {
    "TRAVELRISK_WEBHOOKS_ALLOW_PRIVATE": "true",
    "TRAVELRISK_WEBHOOKS_POLL_SECONDS": "0.1",
    "TRAVELRISK_ROSTER_CHUNK_SIZE": "4",
    "TRAVELRISK_RATE_LIMIT_PER_KEY": "1000000/minute",
    "TRAVELRISK_LOG_LEVEL": "INFO",
}


@pytest.fixture
def only_the_servers_work(client: TestClient) -> Iterator[None]:
    """The test process's own application stops its background threads meanwhile: only the servers'
    workers compete for the jobs."""
    state = client.app.state
    state.rescorer.stop()
    state.deliverer.stop()
    state.roster_worker.stop()
    yield
    state.rescorer = Rescorer(state.session_factory, state.scoring, state.write_lock)
    state.deliverer = Deliverer(state.session_factory, state.write_lock, state.settings)
    state.roster_worker = RosterWorker(
        state.session_factory, state.scoring, state.write_lock, chunk_size=state.settings.roster_chunk_size
    )
    for worker in (state.rescorer, state.deliverer, state.roster_worker):
        worker.start()


def log_events(paths: list[Path], message: str) -> list[dict[str, Any]]:
    events = []
    for path in paths:
        for line in path.read_text().splitlines():
            if line.startswith("{") and f'"message":"{message}"' in line:
                events.append(json.loads(line))
    return events


def trip(reference: str, n: int) -> dict[str, Any]:
    start = FUTURE + dt.timedelta(days=n)
    return {
        "traveler": {"reference": reference, "citizenships": [HOME]},
        "trip": {
            "legs": [
                {"country": "CN", "arrive": start.isoformat(), "depart": (start + dt.timedelta(days=9)).isoformat()}
            ]
        },
    }


def situation(n: int) -> dict[str, Any]:
    return {
        "home_country": HOME,
        "destination": "CN",
        "kind": ("extradition_case", "detention_of_nationals", "diplomatic_dispute", "sanctions")[n % 4],
        "title": f"Mongolia and China, case {n} ({uuid.uuid4().hex[:6]})",
        "started_on": "2025-01-01",
        "severity": "high",
        "sources": [{"title": "analyst note", "url": "https://example.org/mp", "date": "2026-11-30"}],
    }


def wait_until(check: Any, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_every_background_job_runs_exactly_once_across_processes(
    tmp_path: Path, database_url: str, settings: Any, tenant: Any, only_the_servers_work: None
) -> None:
    engine = create_db_engine(settings)
    sessions = create_session_factory(engine)
    receiver = Receiver().start()
    servers: list[Server] = []
    clients: list[httpx.Client] = []
    try:
        servers = [
            Server(database_url, tmp_path / "two-workers.log", workers=2, env=SERVER_ENV).start(),
            Server(database_url, tmp_path / "replica.log", workers=1, env=SERVER_ENV).start(),
        ]
        clients = [httpx.Client(base_url=s.base_url, timeout=60) for s in servers]
        endpoint = clients[0].post(
            "/v1/webhooks",
            json={"url": receiver.url, "event_types": ["assessment.created", "assessment.rescored"]},
            headers=tenant.auth("admin"),
        )
        assert endpoint.status_code == 201, endpoint.text
        with sessions() as session:
            first_job = (session.scalar(select(func.max(RescoringJob.id))) or 0) + 1

        # Trips through both servers, then rosters and reference changes through both, in quick succession.
        ids = []
        for n in range(12):
            response = clients[n % 2].post("/v1/assessments", json=trip(f"MP-{n}", n), headers=tenant.auth("requester"))
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        rosters = []
        for r in range(4):
            body = [trip(f"ROSTER-{r}-{k}", k) for k in range(10)]
            response = clients[r % 2].post("/v1/rosters", json=body, headers=tenant.auth("requester"))
            assert response.status_code == 202, response.text
            rosters.append(response.json()["id"])
        situations = 4
        for n in range(situations):
            response = clients[n % 2].post("/v1/situations", json=situation(n), headers=tenant.auth("analyst"))
            assert response.status_code == 201, response.text

        def jobs_finished() -> bool:
            with sessions() as session:
                jobs = session.scalars(select(RescoringJob).where(RescoringJob.id >= first_job)).all()
            return len(jobs) == situations and all(job.finished_at is not None for job in jobs)

        def rosters_done() -> bool:
            with sessions() as session:
                states = session.scalars(select(Roster.state).where(Roster.id.in_(rosters))).all()
            return sorted(states) == ["done"] * len(rosters)

        wait_until(rosters_done, "the rosters")
        wait_until(jobs_finished, "the re-scoring jobs")

        def delivered() -> bool:
            with sessions() as session:
                states = session.scalars(
                    select(WebhookDelivery.state).where(WebhookDelivery.endpoint_id == endpoint.json()["id"])
                ).all()
            return bool(states) and set(states) == {"delivered"}

        wait_until(delivered, "the webhook deliveries")
        time.sleep(1)  # a duplicate send, were there one, would arrive meanwhile
    finally:
        for server in servers:
            server.stop()
        for http in clients:
            http.close()
        receiver.stop()

    logs = [s.log_path for s in servers]
    with sessions() as session:
        job_ids = sorted(session.scalars(select(RescoringJob.id).where(RescoringJob.id >= first_job)))
        stored_refs = session.scalars(
            select(Assessment.traveler_reference)
            .join(RosterItem, RosterItem.assessment_id == Assessment.id)
            .where(RosterItem.roster_id.in_(rosters))
        ).all()
        tenant_id = session.scalar(select(Assessment.tenant_id).where(Assessment.id == ids[0]))
        events = session.scalars(select(WebhookEvent.id).where(WebhookEvent.tenant_id == tenant_id)).all()
        attempts = session.scalars(
            select(WebhookDelivery.attempts).where(WebhookDelivery.endpoint_id == endpoint.json()["id"])
        ).all()
        revisions = session.execute(
            select(AssessmentRevision.assessment_id, AssessmentRevision.revision, AssessmentRevision.job_id).where(
                AssessmentRevision.job_id.in_(job_ids)
            )
        ).all()
    engine.dispose()

    # Re-scoring: each job claimed and finished once, by one worker, never taken over; a trip re-scored at
    # most once per job, its revisions 2, 3, ... without gaps or repeats.
    claimed = Counter(e["job"] for e in log_events(logs, "re-scoring job claimed") if e["job"] in job_ids)
    finished = Counter(e["job"] for e in log_events(logs, "re-scoring finished") if e["job"] in job_ids)
    assert claimed == dict.fromkeys(job_ids, 1), claimed
    assert finished == dict.fromkeys(job_ids, 1), finished
    assert not log_events(logs, "re-scoring job taken over by another worker")
    assert set(Counter((assessment, job) for assessment, _, job in revisions).values()) == {1}
    by_trip: dict[str, list[int]] = {}
    for assessment_id, revision, _ in revisions:
        by_trip.setdefault(assessment_id, []).append(revision)
    assert set(ids) <= set(by_trip)
    for numbers in by_trip.values():
        assert sorted(numbers) == list(range(2, 2 + len(numbers)))

    # Rosters: each finished once, each trip stored as one assessment.
    finished_rosters = Counter(e["roster"] for e in log_events(logs, "roster finished") if e["roster"] in rosters)
    assert finished_rosters == dict.fromkeys(rosters, 1), finished_rosters
    assert sorted(stored_refs) == sorted(f"ROSTER-{r}-{k}" for r in range(4) for k in range(10))

    # Webhooks: every event of the tenant sent once, at the first attempt, and received once.
    received = Counter(receiver.event_ids())
    assert set(received) == set(events)
    assert set(received.values()) == {1}, [e for e, n in received.items() if n > 1]
    assert set(attempts) == {1}
    # Created (12 + 40 roster trips) and re-scored events all went out.
    assert len(events) >= 52 + len(ids)
