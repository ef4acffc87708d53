"""Review decisions through the API: every transition, four eyes, stale revisions, idempotency,
append-only history, roles and tenant isolation."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError

from service.db import create_db_engine, create_session_factory
from service.reviews.models import AssessmentReview, ReviewEvent
from tests.service.review_helpers import (
    CONDITION,
    RATIONALE,
    create,
    decide,
    key_for,
    plain_trip,
    put_policy,
    severe_trip,
    state_of,
)


@pytest.fixture(scope="module")
def sessions(settings: Any) -> Any:
    engine = create_db_engine(settings)
    yield create_session_factory(engine)
    engine.dispose()


def test_a_reviewer_approves_a_severe_assessment(client: TestClient, tenant: Any) -> None:
    assessment = create(client, tenant, severe_trip())
    assert assessment["score"]["band"] == "severe"
    assert assessment["review"]["required"] is True and assessment["review"]["state"] == "pending"
    assert assessment["review"]["policy_version"] == 0

    response = decide(client, tenant.auth("reviewer"), assessment)
    assert response.status_code == 201, response.text
    review = response.json()
    assert response.headers["location"] == f"/v1/assessments/{assessment['id']}/reviews/{review['id']}"
    assert review["decision"] == "approved" and review["state_after"] == "approved"
    assert review["state_before"] == "pending"
    assert review["holder"] == tenant.holder("reviewer")
    assert review["revision"] == 1 and review["policy_version"] == 0 and review["band"] == "severe"
    assert review["rationale"] == RATIONALE and review["conditions"] == []

    read = client.get(f"/v1/assessments/{assessment['id']}", headers=tenant.auth("requester")).json()
    assert read["review"]["state"] == "approved" and read["review"]["required"] is True

    listed = client.get(f"/v1/assessments/{assessment['id']}/reviews", headers=tenant.auth("requester")).json()
    assert listed["state"] == "approved"
    assert [r["id"] for r in listed["items"]] == [review["id"]]
    assert listed["requested_by"]["holder"] == tenant.holder("requester")
    assert [(e["cause"], e["state_before"], e["state_after"]) for e in listed["history"]] == [
        ("scored", None, "pending"),
        ("decision", "pending", "approved"),
    ]
    one = client.get(response.headers["location"], headers=tenant.auth("requester"))
    assert one.status_code == 200 and one.json() == review
    assert (
        client.get(f"/v1/assessments/{assessment['id']}/reviews/nope", headers=tenant.auth("admin")).status_code == 404
    )


@pytest.mark.parametrize("decision", ["approved", "approved_with_conditions", "rejected", "escalated"])
def test_every_decision_from_pending(client: TestClient, tenant: Any, decision: str) -> None:
    assessment = create(client, tenant, severe_trip())
    response = decide(client, tenant.auth("reviewer"), assessment, decision)
    assert response.status_code == 201, response.text
    assert response.json()["state_after"] == decision
    assert state_of(client, tenant, assessment) == decision
    if decision == "approved_with_conditions":
        assert response.json()["conditions"] == [CONDITION]


@pytest.mark.parametrize("final", ["approved", "approved_with_conditions", "rejected"])
def test_a_decided_review_takes_no_further_decision(client: TestClient, tenant: Any, final: str) -> None:
    assessment = create(client, tenant, severe_trip())
    assert decide(client, tenant.auth("reviewer"), assessment, final).status_code == 201
    again = decide(client, tenant.auth("admin"), assessment, "rejected")
    assert again.status_code == 409
    problem = again.json()
    assert problem["type"].endswith(":review-not-open") and problem["review_state"] == final
    assert "already decided" in problem["detail"]
    assert state_of(client, tenant, assessment) == final


def test_an_escalated_review_is_decided_by_another_holder(client: TestClient, tenant: Any) -> None:
    assessment = create(client, tenant, severe_trip())
    assert decide(client, tenant.auth("reviewer"), assessment, "escalated").status_code == 201
    same = decide(client, tenant.auth("reviewer"), assessment, "approved")
    assert same.status_code == 403 and "escalated" in same.json()["detail"]
    assert same.json()["type"].endswith(":review-forbidden")
    other = decide(client, tenant.auth("admin"), assessment, "rejected")
    assert other.status_code == 201 and other.json()["state_after"] == "rejected"
    history = client.get(f"/v1/assessments/{assessment['id']}/reviews", headers=tenant.auth("reviewer")).json()
    assert [r["decision"] for r in history["items"]] == ["escalated", "rejected"]
    assert [r["holder"] for r in history["items"]] == [tenant.holder("reviewer"), tenant.holder("admin")]


def test_an_escalation_can_be_escalated_again_by_someone_else(client: TestClient, tenant: Any) -> None:
    assessment = create(client, tenant, severe_trip())
    assert decide(client, tenant.auth("reviewer"), assessment, "escalated").status_code == 201
    senior = key_for(client, tenant, "reviewer", "senior-1")
    assert decide(client, senior, assessment, "escalated").status_code == 201
    assert decide(client, tenant.auth("reviewer"), assessment, "approved").status_code == 201
    assert state_of(client, tenant, assessment) == "approved"


def test_an_assessment_that_needs_no_review_refuses_decisions(client: TestClient, tenant: Any) -> None:
    assessment = create(client, tenant, plain_trip())
    assert assessment["score"]["band"] == "low"
    assert assessment["review"] == {**assessment["review"], "required": False, "state": "not_required"}
    response = decide(client, tenant.auth("reviewer"), assessment)
    assert response.status_code == 409
    assert response.json()["type"].endswith(":review-not-open") and "needs no review" in response.json()["detail"]
    listed = client.get(f"/v1/assessments/{assessment['id']}/reviews", headers=tenant.auth("reviewer")).json()
    assert listed["items"] == [] and listed["state"] == "not_required"


def test_four_eyes_the_requester_may_not_review(client: TestClient, tenant: Any) -> None:
    # The admin requested it: the admin's key may not decide on it.
    own = create(client, tenant, severe_trip(), role="admin")
    response = decide(client, tenant.auth("admin"), own)
    assert response.status_code == 403
    assert "You requested this assessment" in response.json()["detail"]
    # Neither may another key of the same person.
    same_person = key_for(client, tenant, "reviewer", tenant.holder("requester"))
    theirs = create(client, tenant, severe_trip())
    refused = decide(client, same_person, theirs)
    assert refused.status_code == 403 and "four eyes" in refused.json()["detail"]
    assert decide(client, tenant.auth("reviewer"), theirs).status_code == 201


def test_a_key_without_holder_may_not_review(client: TestClient, tenant: Any) -> None:
    anonymous_admin = key_for(client, tenant, "admin", None)
    assessment = create(client, tenant, severe_trip())
    response = decide(client, anonymous_admin, assessment)
    assert response.status_code == 403 and "no holder" in response.json()["detail"]
    assert state_of(client, tenant, assessment) == "pending"


def test_two_approvals_for_severe_come_from_two_holders(client: TestClient, tenant: Any) -> None:
    put_policy(client, tenant, severe_approvals=2)
    assessment = create(client, tenant, severe_trip())
    assert assessment["review"]["policy_version"] == 1

    first = decide(client, tenant.auth("reviewer"), assessment, "approved_with_conditions")
    assert first.status_code == 201 and first.json()["state_after"] == "awaiting_second_review"
    assert state_of(client, tenant, assessment) == "awaiting_second_review"

    again = decide(client, tenant.auth("reviewer"), assessment, "approved")
    assert again.status_code == 403
    assert "second approval from another holder" in again.json()["detail"]
    # A second key of the same holder is the same person.
    same_holder = key_for(client, tenant, "reviewer", tenant.holder("reviewer"))
    assert decide(client, same_holder, assessment, "approved").status_code == 403

    second = decide(client, tenant.auth("admin"), assessment, "approved")
    assert second.status_code == 201
    # An approval of the round carried conditions, so the outcome does.
    assert second.json()["state_after"] == "approved_with_conditions"
    history = client.get(f"/v1/assessments/{assessment['id']}/reviews", headers=tenant.auth("reviewer")).json()
    assert [e["state_after"] for e in history["history"]] == [
        "pending",
        "awaiting_second_review",
        "approved_with_conditions",
    ]
    assert all(r["policy_version"] == 1 for r in history["items"])


def test_a_second_reviewer_may_reject_after_one_approval(client: TestClient, tenant: Any) -> None:
    put_policy(client, tenant, severe_approvals=2)
    assessment = create(client, tenant, severe_trip())
    assert decide(client, tenant.auth("reviewer"), assessment).json()["state_after"] == "awaiting_second_review"
    rejected = decide(client, tenant.auth("admin"), assessment, "rejected")
    assert rejected.status_code == 201 and rejected.json()["state_after"] == "rejected"


def test_two_approvals_are_for_severe_only(client: TestClient, tenant: Any) -> None:
    # Thresholds low enough that an undeclared traveller (p ≈ 6e-7) is `high`, not severe.
    put_policy(
        client,
        tenant,
        severe_approvals=2,
        thresholds={"elevated": 1e-7, "high": 2e-7},
    )
    assessment = create(client, tenant, plain_trip())
    assert assessment["score"]["band"] == "high"
    response = decide(client, tenant.auth("reviewer"), assessment)
    assert response.status_code == 201 and response.json()["state_after"] == "approved"


def test_invalid_decisions_are_422_and_store_nothing(client: TestClient, tenant: Any, sessions: Any) -> None:
    assessment = create(client, tenant, severe_trip())
    url = f"/v1/assessments/{assessment['id']}/reviews"
    headers = tenant.auth("reviewer")
    cases = [
        ({"decision": "approved", "revision": 1}, "rationale"),
        ({"decision": "approved", "revision": 1, "rationale": "   "}, "rationale"),
        ({"decision": "approved_with_conditions", "revision": 1, "rationale": "ok"}, "conditions"),
        ({"decision": "approved_with_conditions", "revision": 1, "rationale": "ok", "conditions": []}, "conditions"),
        ({"decision": "approved", "revision": 1, "rationale": "ok", "conditions": ["only by day"]}, "conditions"),
        ({"decision": "maybe", "revision": 1, "rationale": "ok"}, "decision"),
        ({"decision": "approved", "rationale": "ok"}, "revision"),
        ({"decision": "approved", "revision": 0, "rationale": "ok"}, "revision"),
        ({"decision": "approved", "revision": 7, "rationale": "ok"}, "revision"),
        ({"decision": "approved", "revision": 1, "rationale": "ok", "reviewer": "me"}, "reviewer"),
    ]
    for body, field in cases:
        response = client.post(url, json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        problem = response.json()
        assert field in {e["field"] for e in problem["errors"]}, (body, problem)
    no_conditions = client.post(url, json=cases[2][0], headers=headers).json()
    assert "at least one condition" in no_conditions["errors"][0]["message"]
    future = client.post(url, json=cases[8][0], headers=headers).json()
    assert "current revision is 1" in future["errors"][0]["message"]
    with sessions() as session:
        assert (
            session.scalars(select(AssessmentReview).where(AssessmentReview.assessment_id == assessment["id"])).all()
            == []
        )
    assert state_of(client, tenant, assessment) == "pending"


def test_idempotency_key_replays_the_decision(client: TestClient, tenant: Any, sessions: Any) -> None:
    assessment = create(client, tenant, severe_trip())
    headers = tenant.auth("reviewer")
    first = decide(client, headers, assessment, "escalated", key="decision-1")
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    replay = decide(client, headers, assessment, "escalated", key="decision-1")
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    other = decide(client, headers, assessment, "rejected", key="decision-1")
    assert other.status_code == 409 and other.json()["type"].endswith(":idempotency-key-reused")
    bad = decide(client, headers, assessment, "rejected", key="not valid")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "Idempotency-Key"
    with sessions() as session:
        rows = session.scalars(select(AssessmentReview).where(AssessmentReview.assessment_id == assessment["id"])).all()
        assert len(rows) == 1


def _snapshot(sessions: Any, assessment_id: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with sessions() as session:
        reviews = session.execute(
            select(AssessmentReview.__table__).where(AssessmentReview.assessment_id == assessment_id)
        ).all()
        events = session.execute(select(ReviewEvent.__table__).where(ReviewEvent.assessment_id == assessment_id)).all()
        return [tuple(r) for r in reviews], [tuple(e) for e in events]


def test_reviews_are_append_only(client: TestClient, tenant: Any, sessions: Any) -> None:
    assessment = create(client, tenant, severe_trip())
    review = decide(client, tenant.auth("reviewer"), assessment, "escalated").json()
    before = _snapshot(sessions, assessment["id"])
    assert len(before[0]) == 1 and len(before[1]) == 1
    body = {"decision": "approved", "revision": 1, "rationale": "changed my mind"}
    collection = f"/v1/assessments/{assessment['id']}/reviews"
    one = f"{collection}/{review['id']}"
    for path in (collection, one):
        for method in ("PATCH", "PUT", "DELETE"):
            response = client.request(method, path, json=body, headers=tenant.auth("admin"))
            assert response.status_code == 405, (method, path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
    assert client.post(one, json=body, headers=tenant.auth("admin")).status_code == 405
    assert _snapshot(sessions, assessment["id"]) == before
    assert client.get(one, headers=tenant.auth("reviewer")).json() == review

    # The database refuses too: neither a bug nor a hand-written statement rewrites a decision.
    for statement in (
        update(AssessmentReview).where(AssessmentReview.id == review["id"]).values(decision="approved"),
        delete(AssessmentReview).where(AssessmentReview.id == review["id"]),
        update(ReviewEvent).where(ReviewEvent.review_id == review["id"]).values(state_after="approved"),
        delete(ReviewEvent).where(ReviewEvent.review_id == review["id"]),
    ):
        with sessions() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                session.execute(statement)
            session.rollback()
    assert _snapshot(sessions, assessment["id"]) == before


def test_roles(client: TestClient, tenant: Any) -> None:
    assessment = create(client, tenant, severe_trip())
    for role in ("requester", "analyst"):
        response = decide(client, tenant.auth(role), assessment)
        assert response.status_code == 403 and "reviewer" in response.json()["detail"]
    url = f"/v1/assessments/{assessment['id']}/reviews"
    for role in ("requester", "reviewer", "admin"):
        assert client.get(url, headers=tenant.auth(role)).status_code == 200
    assert client.get(url, headers=tenant.auth("analyst")).status_code == 403
    assert client.get(url).status_code == 401
    assert state_of(client, tenant, assessment) == "pending"


def test_another_tenants_assessment_and_reviews_are_404(client: TestClient, tenant: Any, make_tenant: Any) -> None:
    other = make_tenant()
    assessment = create(client, tenant, severe_trip())
    review = decide(client, tenant.auth("reviewer"), assessment, "escalated").json()
    url = f"/v1/assessments/{assessment['id']}/reviews"
    assert decide(client, other.auth("reviewer"), assessment).status_code == 404
    assert decide(client, other.auth("admin"), assessment).status_code == 404
    assert client.get(url, headers=other.auth("reviewer")).status_code == 404
    assert client.get(f"{url}/{review['id']}", headers=other.auth("admin")).status_code == 404
    queue = client.get("/v1/reviews", params={"state": "escalated"}, headers=other.auth("reviewer")).json()
    assert queue["items"] == []
    assert state_of(client, tenant, assessment) == "escalated"
