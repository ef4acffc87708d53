"""Re-scoring: a change to reference data re-scores upcoming assessments it touches, never past ones,
and a job left unfinished by a dead worker is finished by the next one."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from risk_rules.reference import EmployerDisputeIn, SituationIn
from service.app import create_app
from service.db import create_db_engine, create_session_factory, utcnow
from service.reference.models import EMPLOYER_DISPUTE, SITUATION
from service.reference.store import upsert
from service.rescoring.models import AssessmentRevision, RescoringJob
from service.rescoring.service import Rescorer, enqueue_rescoring

TODAY = dt.datetime.now(dt.UTC).date()
FUTURE = TODAY + dt.timedelta(days=400)
PAST = dt.date(2019, 3, 1)


@pytest.fixture(scope="module")
def sessions(settings: Any) -> Any:
    engine = create_db_engine(settings)
    yield create_session_factory(engine)
    engine.dispose()


def trip_body(citizenship: str, start: dt.date, days: int = 10, employer: str | None = None) -> dict[str, Any]:
    traveler: dict[str, Any] = {"reference": f"R-{uuid.uuid4().hex[:8]}", "citizenships": [citizenship]}
    if employer:
        traveler["employer"] = {"name": employer}
    end = start + dt.timedelta(days=days)
    return {
        "traveler": traveler,
        "trip": {"legs": [{"country": "CN", "arrive": start.isoformat(), "depart": end.isoformat()}]},
    }


def create(client: TestClient, tenant: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/assessments", json=body, headers=tenant.auth("requester"))
    assert response.status_code == 201, response.text
    return response.json()


def record_situation(sessions: Any, home: str, started: dt.date, ended: dt.date | None = None) -> str:
    situation = SituationIn(
        id=f"test-{uuid.uuid4().hex[:8]}",
        home_country=home,
        destination="CN",
        kind="extradition_case",
        title=f"{home} holds a person the destination wants",
        started_on=started,
        ended_on=ended,
        severity="high",
        sources=[{"title": "analyst note", "url": "https://example.org/note", "date": "2026-11-01"}],
    )
    with sessions() as session:
        change = upsert(session, SITUATION, situation, "test")
        enqueue_rescoring(session, change)
        session.commit()
    return situation.id


def record_employer_dispute(sessions: Any, name: str) -> str:
    """Record a commercial dispute of the employer `name` in China, as an analyst would, and queue its
    re-scoring; its id."""
    dispute = EmployerDisputeIn(
        id=f"test-{uuid.uuid4().hex[:8]}",
        name=name,
        destination="CN",
        kind="commercial_dispute",
        started_on=dt.date(2020, 1, 1),
        sources=[{"title": "analyst note", "url": "https://example.org/n", "date": "2026-11-01"}],
    )
    with sessions() as session:
        enqueue_rescoring(session, upsert(session, EMPLOYER_DISPUTE, dispute, "test"))
        session.commit()
    return dispute.id


def wait_for_jobs(sessions: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as session:
            if session.scalar(select(RescoringJob.id).where(RescoringJob.finished_at.is_(None))) is None:
                return
        time.sleep(0.1)
    raise AssertionError("re-scoring jobs did not finish")


def test_a_new_situation_rescores_upcoming_trips_only(client: TestClient, tenant: Any, sessions: Any) -> None:
    upcoming = create(client, tenant, trip_body("IS", FUTURE))
    past = create(client, tenant, trip_body("IS", PAST))
    other_country = create(client, tenant, trip_body("FI", FUTURE))
    assert "home_country_extradition_case" not in {f["id"] for f in upcoming["factors"]}
    polled_at = dt.datetime.now(dt.UTC)

    situation_id = record_situation(sessions, "IS", dt.date(2019, 1, 1))
    wait_for_jobs(sessions)

    headers = tenant.auth("reviewer")
    latest = client.get(f"/v1/assessments/{upcoming['id']}", headers=headers).json()
    assert latest["revision"] == 2
    assert situation_id in latest["revision_reason"]
    assert [r["revision"] for r in latest["revisions"]] == [1, 2]
    factor = next(f for f in latest["factors"] if f["id"] == "home_country_extradition_case")
    assert f"situation:{situation_id}" in factor["derived_from"]
    assert latest["score"]["probability"] > upcoming["score"]["probability"]
    assert latest["versions"]["reference_data"] != upcoming["versions"]["reference_data"]
    original = client.get(f"/v1/assessments/{upcoming['id']}/revisions/1", headers=headers).json()
    assert original["score"] == upcoming["score"] and original["factors"] == upcoming["factors"]
    assert client.get(f"/v1/assessments/{upcoming['id']}/revisions/3", headers=headers).status_code == 404

    # The trip that has ended and the traveller of another country are left as they were.
    for untouched in (past, other_country):
        body = client.get(f"/v1/assessments/{untouched['id']}", headers=headers).json()
        assert body["revision"] == 1 and len(body["revisions"]) == 1

    changed = client.get("/v1/assessments", params={"changed_since": polled_at.isoformat()}, headers=headers).json()[
        "items"
    ]
    assert [item["id"] for item in changed] == [upcoming["id"]]
    assert changed[0]["current_revision"] == 2


def test_a_situation_that_ended_before_the_trip_changes_nothing(client: TestClient, tenant: Any, sessions: Any) -> None:
    upcoming = create(client, tenant, trip_body("CL", FUTURE))
    record_situation(sessions, "CL", dt.date(2019, 1, 1), dt.date(2020, 1, 1))
    wait_for_jobs(sessions)
    body = client.get(f"/v1/assessments/{upcoming['id']}", headers=tenant.auth("reviewer")).json()
    assert body["revision"] == 1


def test_an_employer_dispute_rescores_its_staff(client: TestClient, tenant: Any, sessions: Any) -> None:
    name = f"Zephyr {uuid.uuid4().hex[:6]} Holdings Ltd."
    staff = create(client, tenant, trip_body("GB", FUTURE, employer=name.upper().replace(" LTD.", "")))
    stranger = create(client, tenant, trip_body("GB", FUTURE, employer="Unrelated Widgets"))
    record_employer_dispute(sessions, name)
    wait_for_jobs(sessions)
    headers = tenant.auth("reviewer")
    body = client.get(f"/v1/assessments/{staff['id']}", headers=headers).json()
    assert body["revision"] == 2
    assert "employer_dispute" in {f["id"] for f in body["factors"]}
    assert client.get(f"/v1/assessments/{stranger['id']}", headers=headers).json()["revision"] == 1


@pytest.fixture
def no_running_rescorer(client: TestClient) -> Any:
    """Stops the shared application's re-scorer for one test, and gives it a new one afterwards."""
    app = client.app
    app.state.rescorer.stop()
    yield
    app.state.rescorer = Rescorer(app.state.session_factory, app.state.scoring, app.state.write_lock)
    app.state.rescorer.start()


def test_a_job_left_by_a_dead_worker_is_finished_after_a_restart(
    settings: Any, client: TestClient, tenant: Any, sessions: Any, no_running_rescorer: Any
) -> None:
    upcoming = create(client, tenant, trip_body("UY", FUTURE))
    situation = SituationIn(
        id=f"test-{uuid.uuid4().hex[:8]}",
        home_country="UY",
        destination="CN",
        kind="extradition_case",
        title="UY holds a person the destination wants",
        started_on=dt.date(2019, 1, 1),
        severity="high",
        sources=[{"title": "analyst note"}],
    )
    with sessions() as session:
        change = upsert(session, SITUATION, situation, "test")
        job = enqueue_rescoring(session, change)
        # As if a worker had claimed it and died before finishing.
        job.claimed_at = utcnow() - dt.timedelta(hours=1)
        session.commit()
        job_id = job.id
    time.sleep(0.5)
    with sessions() as session:
        assert session.get(RescoringJob, job_id).finished_at is None  # nobody else is working on it
    with TestClient(create_app(settings)):  # a fresh process's application: its re-scorer starts
        wait_for_jobs(sessions)
    with sessions() as session:
        finished = session.get(RescoringJob, job_id)
        assert finished.finished_at is not None and finished.rescored >= 1
        revisions = session.scalars(
            select(AssessmentRevision).where(AssessmentRevision.assessment_id == upcoming["id"])
        ).all()
        assert [r.job_id for r in revisions] == [job_id]


def test_acceptance_through_the_api(client: TestClient, tenant: Any, sessions: Any) -> None:
    """An analyst records an extradition case; the requester's upcoming trip is re-scored and names it,
    its trip after `ended_on` is not touched, and an HR tool polling `changed_since` sees only the first."""
    upcoming = create(client, tenant, trip_body("PY", FUTURE))
    after_end = create(client, tenant, trip_body("PY", FUTURE + dt.timedelta(days=400)))
    ended = create(client, tenant, trip_body("PY", PAST))
    polled_at = dt.datetime.now(dt.UTC)
    situation = {
        "home_country": "PY",
        "destination": "CN",
        "kind": "extradition_case",
        "title": "Paraguay holds a person the destination wants",
        "started_on": (FUTURE - dt.timedelta(days=30)).isoformat(),
        "ended_on": (FUTURE + dt.timedelta(days=60)).isoformat(),
        "severity": "high",
        "sources": [{"title": "Analyst note", "url": "https://example.org/py", "date": "2026-11-20"}],
    }
    response = client.post("/v1/situations", json=situation, headers=tenant.auth("analyst"))
    assert response.status_code == 201, response.text
    situation_id = response.json()["id"]
    wait_for_jobs(sessions)

    headers = tenant.auth("requester")
    rescored = client.get(f"/v1/assessments/{upcoming['id']}", headers=headers).json()
    factor = next(f for f in rescored["factors"] if f["id"] == "home_country_extradition_case")
    assert "Paraguay holds a person the destination wants" in factor["reason"]
    assert rescored["score"]["probability"] > upcoming["score"]["probability"]
    assert rescored["revision_reason"].startswith(f"situation {situation_id} added")
    for untouched in (after_end, ended):
        assert client.get(f"/v1/assessments/{untouched['id']}", headers=headers).json()["revision"] == 1
    moved = client.get("/v1/assessments", params={"changed_since": polled_at.isoformat()}, headers=headers).json()
    assert [item["id"] for item in moved["items"]] == [upcoming["id"]]


def varied_trips(home: str) -> list[dict[str, Any]]:
    """Trips of travellers of `home` unlike each other: one or several legs, an employer or none, dual
    citizens, Hong Kong and Macao, long and short."""
    trips = []
    for n in range(7):
        start = FUTURE + dt.timedelta(days=3 * n)
        body = trip_body(home, start, days=5 + 4 * n, employer="Accra Exports" if n % 2 else None)
        if n % 3 == 1:
            body["traveler"]["citizenships"].append("CA")
        if n % 3 == 2:
            leg = {"country": ("HK", "MO")[n % 2], "arrive": (start + dt.timedelta(days=5 + 4 * n)).isoformat()}
            body["trip"]["legs"].append({**leg, "depart": (start + dt.timedelta(days=9 + 4 * n)).isoformat()})
        trips.append(body)
    return trips


def test_batched_rescoring_gives_what_scoring_each_trip_alone_gives(
    client: TestClient, tenant: Any, sessions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several batches (of five, written two revisions per transaction), each revision exactly the body POST
    would give the trip now, with its reason, and its webhook event and review move written with it."""
    from risk_rules.forms import AssessmentRequest
    from service.assessments.models import Assessment
    from service.policy import service as policies
    from service.rescoring import service as rescoring
    from service.reviews.models import ReviewEvent
    from service.reviews.states import State, after_rescore
    from service.webhooks.models import WebhookEvent
    from tests.service.webhooks.conftest import Receiver, register

    monkeypatch.setattr(rescoring, "BATCH", 5)
    monkeypatch.setattr(rescoring, "WRITE_SLICE", 2)
    receiver = Receiver().start()
    try:
        register(client, tenant, receiver.url, ["assessment.rescored"])
        created = [create(client, tenant, body) for body in varied_trips("GH")]
        situation_id = record_situation(sessions, "GH", dt.date(2019, 1, 1))
        wait_for_jobs(sessions)
        # Every revision's event reaches the tenant's endpoint.
        deadline = time.monotonic() + 30
        while len(receiver.answered) < len(created) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(set(receiver.answered)) == len(created)
    finally:
        receiver.stop()

    scoring = client.app.state.scoring
    assessor = scoring.assessor()
    with sessions() as session:
        reference = scoring.reference(session)
        job = session.scalars(select(RescoringJob).order_by(RescoringJob.id.desc()).limit(1)).one()
        assert job.examined >= len(created) and job.rescored >= len(created)
        for original in created:
            row = session.get_one(Assessment, original["id"])
            policy = policies.current(session, row.tenant_id)
            alone = policies.judge(
                assessor.assess_body(AssessmentRequest.model_validate(row.request), reference),
                policy,
                assessor.model.bands,
            )
            [revision] = session.scalars(
                select(AssessmentRevision).where(AssessmentRevision.assessment_id == row.id)
            ).all()
            assert revision.revision == row.current_revision == 2
            assert revision.job_id == job.id and revision.reason == job.reason and situation_id in job.reason
            stored = dict(revision.response)
            assert stored.pop("id") == row.id and stored.pop("created_at") == original["created_at"]
            assert stored.pop("revision") == 2 and stored.pop("revision_reason") == job.reason
            stored.pop("revised_at")
            assert stored == alone
            assert row.band == (alone["score"]["band"] if alone["score"] else None)
            # The revision's event was committed with it.
            events = session.scalars(
                select(WebhookEvent).where(
                    WebhookEvent.tenant_id == row.tenant_id, WebhookEvent.type == "assessment.rescored"
                )
            ).all()
            assert [e.payload["data"]["revision"] for e in events if e.payload["data"]["assessment_id"] == row.id] == [
                2
            ]
            # The review moved as the review rules say, in the same transaction.
            expected = after_rescore(
                State(original["review"]["state"]),
                original["score"]["band"],
                row.band,
                policy.requires_review(row.band),
                job.reason,
            )
            assert row.review_state == expected.state.value
            moved = session.scalars(select(ReviewEvent).where(ReviewEvent.assessment_id == row.id)).all()
            assert [event.revision for event in moved] == ([2] if expected.note else [])

    headers = tenant.auth("reviewer")
    for original in created:
        served = client.get(f"/v1/assessments/{original['id']}", headers=headers).json()
        assert served["revision"] == 2 and served["revision_reason"].startswith(f"situation {situation_id} added")


def test_a_worker_whose_lease_was_taken_over_writes_nothing(
    client: TestClient, tenant: Any, sessions: Any, no_running_rescorer: Any
) -> None:
    from service.rescoring.service import LEASE, LeaseLost

    upcoming = create(client, tenant, trip_body("BO", FUTURE))
    record_situation(sessions, "BO", dt.date(2019, 1, 1))
    app = client.app
    rescorer = Rescorer(app.state.session_factory, app.state.scoring, app.state.write_lock)
    lease = utcnow()
    with sessions() as session:
        job = session.scalars(select(RescoringJob).where(RescoringJob.finished_at.is_(None))).one()
        job_id = job.id
        # Another worker claimed the job after this one's lease ran out.
        job.claimed_at = lease + dt.timedelta(seconds=1)
        session.commit()
    with pytest.raises(LeaseLost):
        rescorer._process(job_id, lease)
    with sessions() as session:
        assert session.get_one(RescoringJob, job_id).finished_at is None
        assert not session.scalars(select(AssessmentRevision).where(AssessmentRevision.job_id == job_id)).all()
        # The worker that holds the lease finishes it.
        session.get_one(RescoringJob, job_id).claimed_at = lease - LEASE - dt.timedelta(seconds=1)
        session.commit()
    assert rescorer.run_once()
    with sessions() as session:
        assert session.get_one(RescoringJob, job_id).finished_at is not None
        revisions = session.scalars(select(AssessmentRevision).where(AssessmentRevision.job_id == job_id)).all()
        assert [r.assessment_id for r in revisions] == [upcoming["id"]]


def test_a_policy_changed_while_a_batch_was_scored_judges_it_again(
    client: TestClient, tenant: Any, sessions: Any, no_running_rescorer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.service.review_helpers import put_policy

    put_policy(client, tenant, review_bands=["severe"])
    upcoming = create(client, tenant, trip_body("EC", FUTURE))
    record_situation(sessions, "EC", dt.date(2019, 1, 1))
    app = client.app
    rescorer = Rescorer(app.state.session_factory, app.state.scoring, app.state.write_lock)
    read_and_score = rescorer._read_and_score
    changed: list[int] = []

    def then_change_the_policy(job_id: int, after: Any) -> Any:
        batch = read_and_score(job_id, after)
        if batch is not None and batch.scored and not changed:
            # An admin changes the policy after the batch was judged and before it is written.
            changed.append(put_policy(client, tenant, review_bands=["low", "elevated", "high", "severe"])["version"])
        return batch

    monkeypatch.setattr(rescorer, "_read_and_score", then_change_the_policy)
    assert rescorer.run_once()
    latest = client.get(f"/v1/assessments/{upcoming['id']}", headers=tenant.auth("reviewer")).json()
    assert latest["revision"] == 2
    assert latest["review"]["policy_version"] == changed[0]
    assert latest["review"]["required"] is True and latest["review"]["state"] == "pending"
