"""Re-scores and reviews, through real re-scoring jobs: a raised band re-opens a decision with the
re-score's reason, a lower band keeps it, and a policy change applies to re-scores, not to what is stored."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from risk_rules.reference import SituationIn
from service.db import create_db_engine, create_session_factory
from service.reference.models import SITUATION
from service.reference.store import upsert
from service.rescoring.service import enqueue_rescoring
from tests.service.rescoring.test_rescoring import FUTURE, trip_body, wait_for_jobs
from tests.service.review_helpers import create, decide, put_policy, state_of


def thresholds(client: TestClient, make_tenant: Any, citizenship: str) -> dict[str, float]:
    """Thresholds (stricter than the model's) that put an undeclared traveller of `citizenship` in
    `elevated`, and the same traveller once an extradition case of their country is recorded (which
    multiplies the probability several times) in `high`."""
    probe = make_tenant()
    probability = create(client, probe, trip_body(citizenship, FUTURE))["score"]["probability"]
    model = client.get("/v1/policy", headers=probe.auth("admin")).json()["model_thresholds"]
    return {"elevated": min(model["elevated"], probability / 2), "high": min(model["high"], probability * 2)}


@pytest.fixture(scope="module")
def sessions(settings: Any) -> Any:
    engine = create_db_engine(settings)
    yield create_session_factory(engine)
    engine.dispose()


def situation(home: str, ended: dt.date | None = None, situation_id: str | None = None) -> SituationIn:
    return SituationIn(
        id=situation_id or f"test-{uuid.uuid4().hex[:8]}",
        home_country=home,
        destination="CN",
        kind="extradition_case",
        title=f"{home} holds a person the destination wants",
        started_on=dt.date(2019, 1, 1),
        ended_on=ended,
        severity="high",
        sources=[{"title": "analyst note", "url": "https://example.org/note", "date": "2026-11-01"}],
    )


def record(sessions: Any, record: SituationIn) -> None:
    with sessions() as session:
        enqueue_rescoring(session, upsert(session, SITUATION, record, "test"))
        session.commit()
    wait_for_jobs(sessions)


def reviews(client: TestClient, tenant: Any, assessment: dict[str, Any]) -> dict[str, Any]:
    response = client.get(f"/v1/assessments/{assessment['id']}/reviews", headers=tenant.auth("reviewer"))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_raised_band_reopens_a_decision_and_a_lower_one_keeps_it(
    client: TestClient, tenant: Any, make_tenant: Any, sessions: Any
) -> None:
    limits = thresholds(client, make_tenant, "LU")
    put_policy(client, tenant, review_bands=["elevated", "high", "severe"], thresholds=limits)
    assessment = create(client, tenant, trip_body("LU", FUTURE))
    assert assessment["score"]["band"] == "elevated" and assessment["review"]["state"] == "pending"
    assert decide(client, tenant.auth("reviewer"), assessment).json()["state_after"] == "approved"
    # A policy change after the decision: stored assessments keep the version they were judged under.
    put_policy(client, tenant, review_bands=["elevated", "high", "severe"], thresholds=limits, severe_approvals=2)

    case = situation("LU")
    record(sessions, case)
    rescored = client.get(f"/v1/assessments/{assessment['id']}", headers=tenant.auth("reviewer")).json()
    assert rescored["revision"] == 2 and rescored["score"]["band"] == "high"
    assert rescored["review"]["state"] == "pending" and rescored["review"]["policy_version"] == 2
    original = client.get(f"/v1/assessments/{assessment['id']}/revisions/1", headers=tenant.auth("reviewer")).json()
    assert original["review"]["policy_version"] == 1
    history = reviews(client, tenant, assessment)
    reopened = history["history"][-1]
    assert reopened["cause"] == "reopened" and reopened["state_before"] == "approved"
    assert reopened["state_after"] == "pending" and reopened["revision"] == 2
    assert case.id in reopened["note"] and "elevated → high" in reopened["note"]

    # The reviewer read revision 1: that is stale now.
    stale = decide(client, tenant.auth("reviewer"), assessment, "approved", revision=1)
    assert stale.status_code == 409
    assert stale.json()["type"].endswith(":stale-revision") and stale.json()["current_revision"] == 2
    assert "current revision is 2" in stale.json()["detail"]
    # A new round: the reviewer who approved revision 1 may decide again.
    again = decide(client, tenant.auth("reviewer"), assessment, "approved_with_conditions", revision=2)
    assert again.status_code == 201 and again.json()["round"] == 2
    assert again.json()["policy_version"] == 2

    # The case ends before the trip: the band falls back, and the decision stands.
    record(sessions, situation("LU", ended=dt.date(2020, 1, 1), situation_id=case.id))
    lowered = client.get(f"/v1/assessments/{assessment['id']}", headers=tenant.auth("reviewer")).json()
    assert lowered["revision"] == 3 and lowered["score"]["band"] == "elevated"
    assert lowered["review"]["state"] == "approved_with_conditions"
    kept = reviews(client, tenant, assessment)["history"][-1]
    assert kept["cause"] == "rescored" and kept["state_before"] == kept["state_after"] == "approved_with_conditions"
    assert "stands" in kept["note"] and "high → elevated" in kept["note"]
    assert [e["cause"] for e in reviews(client, tenant, assessment)["history"]] == [
        "scored",
        "decision",
        "reopened",
        "decision",
        "rescored",
    ]


def test_a_raised_band_makes_a_review_required(
    client: TestClient, tenant: Any, make_tenant: Any, sessions: Any
) -> None:
    put_policy(client, tenant, thresholds=thresholds(client, make_tenant, "MT"))  # high and severe need review
    assessment = create(client, tenant, trip_body("MT", FUTURE))
    assert assessment["score"]["band"] == "elevated" and assessment["review"]["state"] == "not_required"
    record(sessions, situation("MT"))
    assert state_of(client, tenant, assessment) == "pending"
    queue = client.get("/v1/reviews", headers=tenant.auth("reviewer")).json()["items"]
    assert [item["assessment_id"] for item in queue] == [assessment["id"]]
    assert queue[0]["revision"] == 2 and queue[0]["band"] == "high"
    assert queue[0]["top_factor_id"] == "home_country_extradition_case"
    assert decide(client, tenant.auth("reviewer"), assessment, revision=2).status_code == 201
