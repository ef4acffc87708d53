"""A roster survives the death of the process working on it: `kill -9` of `travelrisk serve` mid-roster,
then a restart, finishes it with every trip stored exactly once; a worker whose lease was taken over
stores nothing."""

from __future__ import annotations

import datetime as dt
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, update

from service.assessments.models import Assessment
from service.assessments.router import trip_bounds
from service.db import create_db_engine, create_session_factory, utcnow
from service.rosters import service as rosters
from service.rosters.models import Roster, RosterItem
from service.tenants.models import Tenant
from tests.service.conftest import Server, cli


@pytest.fixture(scope="module")
def sessions(settings: Any) -> Any:
    engine = create_db_engine(settings)
    yield create_session_factory(engine)
    engine.dispose()


@pytest.fixture
def server_factory(tmp_path: Path, database_url: str) -> Iterator[Any]:
    started: list[Server] = []

    def start(log_name: str) -> Server:
        server = Server(database_url, tmp_path / log_name).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def trips(count: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "traveler": {"reference": f"{prefix}-{i}", "citizenships": ["CA" if i % 2 else "AU"]},
            "trip": {"legs": [{"country": "CN", "arrive": "2019-03-01", "depart": f"2019-03-{2 + i % 20:02d}"}]},
        }
        for i in range(count)
    ]


def stored(sessions: Any, roster_id: str, tenant_name: str) -> tuple[int, int, int]:
    """(roster items, distinct positions, the tenant's assessments)."""
    with sessions() as session:
        items = session.scalar(select(func.count()).select_from(RosterItem).where(RosterItem.roster_id == roster_id))
        positions = session.scalar(
            select(func.count(func.distinct(RosterItem.position))).where(RosterItem.roster_id == roster_id)
        )
        assessments = session.scalar(
            select(func.count())
            .select_from(Assessment)
            .join(Tenant, Tenant.id == Assessment.tenant_id)
            .where(Tenant.name == tenant_name)
        )
    return items, positions, assessments


def test_a_roster_interrupted_by_kill_9_resumes_without_duplicates(
    server_factory: Any, database_url: str, sessions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small chunks, so that the kill lands between committed chunks of one roster.
    monkeypatch.setenv("TRAVELRISK_ROSTER_CHUNK_SIZE", "100")
    tenant = f"k9r-{uuid.uuid4().hex[:10]}"
    key = cli("keys", "create", "--tenant", tenant, "--role", "requester", database_url=database_url).stdout.strip()
    headers = {"Authorization": f"Bearer {key}"}
    total = 20_000
    server = server_factory("first.log")
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
        response = http.post("/v1/rosters", json=trips(total, "K9"))
        assert response.status_code == 202, response.text
        location = response.headers["location"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            progress = http.get(location).json()
            if progress["done"] >= 500:
                break
            time.sleep(0.02)
    server.kill()
    roster_id = location.rsplit("/", 1)[1]
    with sessions() as session:
        roster = session.get(Roster, roster_id)
        done_at_kill = roster.done
    assert 0 < done_at_kill < total, "the kill must interrupt the roster"
    items, positions, assessments = stored(sessions, roster_id, tenant)
    assert items == positions == assessments == done_at_kill  # exactly the committed chunks, nothing half-written

    server = server_factory("restarted.log")
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            final = http.get(location).json()
            if final["state"] == "done":
                break
            time.sleep(0.2)
        assert final["state"] == "done" and final["done"] == total, final
        assert sum(final["counts"].values()) == total
        lines = http.get(f"{location}/results").text.splitlines()
    assert len(lines) == total
    assert stored(sessions, roster_id, tenant) == (total, total, total)


def test_a_worker_whose_lease_was_taken_over_stores_nothing(
    client: TestClient, tenant: Any, sessions: Any, settings: Any
) -> None:
    upload = rosters.parse_upload(orjson.dumps(trips(30, "LL")), "application/json")
    with sessions() as session:
        roster = rosters.create(
            session, session.scalar(select(Tenant.id).where(Tenant.name == tenant.name)), upload, None
        )
        # Worker A holds a live lease, so the application's own worker leaves the roster alone.
        roster.claim_token, roster.claimed_at, roster.state = "a" * 32, utcnow(), "running"
        session.commit()
        roster_id = roster.id
    app = client.app
    worker_a = rosters.RosterWorker(sessions, app.state.scoring, app.state.write_lock, chunk_size=10)
    rows = rosters.read_rows("json", zlib.compress(upload.body))
    counts = dict.fromkeys(rosters.COUNT_KEYS, 0)
    assert worker_a._store_chunk(roster_id, "a" * 32, roster.tenant_id, "json", rows, 0, 10, 30, counts, 0) == (10, 0)
    # A's lease ran out (it stalled) and worker B claimed the roster: B's lease is live.
    with sessions() as session:
        held = session.get(Roster, roster_id)
        held.claim_token, held.claimed_at = "b" * 32, utcnow()
        session.commit()
    with pytest.raises(rosters.LeaseLost):
        worker_a._store_chunk(roster_id, "a" * 32, roster.tenant_id, "json", rows, 10, 20, 30, dict(counts), 0)
    assert stored(sessions, roster_id, tenant.name) == (10, 10, 10)
    # B dies too: once its lease runs out, the application's worker takes the roster over and finishes it
    # from where A's last commit left it.
    with sessions() as session:
        session.get(Roster, roster_id).claimed_at = utcnow() - dt.timedelta(hours=1)
        session.commit()
    rosters.wake()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with sessions() as session:
            if session.get(Roster, roster_id).state == "done":
                break
        time.sleep(0.05)
    assert stored(sessions, roster_id, tenant.name) == (30, 30, 30)


def test_a_roster_finished_during_a_claim_stays_done(client: TestClient, tenant: Any, settings: Any) -> None:
    """Another process's worker finishes the roster between this worker's SELECT and its claiming UPDATE:
    the UPDATE must not take the finished roster back into "running" (where it would stay, re-claimed and
    dropped every lease, and never be reported done)."""
    state = client.app.state
    state.roster_worker.stop()  # only the worker under test claims
    engine = create_db_engine(settings)
    worker_sessions = create_session_factory(engine)
    try:
        upload = rosters.parse_upload(orjson.dumps(trips(4, "RACE")), "application/json")
        with worker_sessions() as session:
            roster = rosters.create(
                session, session.scalar(select(Tenant.id).where(Tenant.name == tenant.name)), upload, None
            )
            session.commit()
            roster_id = roster.id
        finished_meanwhile = []

        @event.listens_for(engine, "after_cursor_execute")
        def finish_elsewhere(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if finished_meanwhile or not statement.lstrip().startswith("SELECT rosters.id"):
                return
            with other_engine.begin() as other:
                other.execute(
                    update(Roster)
                    .where(Roster.id == roster_id)
                    .values(state="done", done=4, finished_at=utcnow(), payload=None, claim_token=None, claimed_at=None)
                )
            finished_meanwhile.append(True)

        other_engine = create_db_engine(settings)
        worker = rosters.RosterWorker(worker_sessions, state.scoring, state.write_lock, chunk_size=2)
        assert worker._claim(roster_id) is None
        assert finished_meanwhile == [True]
        with worker_sessions() as session:
            roster = session.get_one(Roster, roster_id)
            assert (roster.state, roster.claim_token, roster.claimed_at) == ("done", None, None)
        other_engine.dispose()
    finally:
        engine.dispose()
        state.roster_worker = rosters.RosterWorker(
            state.session_factory,
            state.scoring,
            state.write_lock,
            chunk_size=state.settings.roster_chunk_size,
            trip_bounds=lambda: trip_bounds(state.settings),
        )
        state.roster_worker.start()
