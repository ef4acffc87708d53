"""The review state machine's rules, and the migration that gives stored assessments a review state."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from service.db import create_db_engine, upgrade_database
from service.reviews.states import Decision, PriorDecision, State, after_rescore, next_state, refusal
from tests.service.conftest import make_settings


@pytest.mark.parametrize(
    ("state", "old", "new", "required", "expected", "noted"),
    [
        (State.approved, "high", "severe", True, State.pending, True),
        (State.rejected, "high", "severe", True, State.pending, True),
        (State.escalated, "elevated", "high", True, State.pending, True),
        (State.awaiting_second_review, "high", "severe", True, State.pending, True),
        (State.approved, "severe", "high", True, State.approved, True),
        (State.approved_with_conditions, "high", "high", True, State.approved_with_conditions, True),
        (State.approved, "high", "severe", False, State.approved, True),
        (State.not_required, "low", "high", True, State.pending, True),
        (State.not_required, "low", "elevated", False, State.not_required, False),
        (State.pending, "high", "low", False, State.not_required, True),
        (State.pending, "high", "high", True, State.pending, False),
    ],
)
def test_after_rescore(state: State, old: str, new: str, required: bool, expected: State, noted: bool) -> None:
    outcome = after_rescore(state, old, new, required, "situation x changed")
    assert outcome.state is expected
    assert (outcome.note is not None) is noted
    if outcome.note:
        assert "situation x changed" in outcome.note and f"{old} → {new}" in outcome.note
    assert outcome.reopened is (expected is State.pending and state is not State.pending)


def test_next_state_counts_distinct_approvers() -> None:
    approved = PriorDecision("a", Decision.approved)
    assert next_state(Decision.approved, "a", 2, []) is State.awaiting_second_review
    assert next_state(Decision.approved, "b", 2, [approved]) is State.approved
    assert next_state(Decision.approved, "b", 2, [PriorDecision("a", Decision.approved_with_conditions)]) is (
        State.approved_with_conditions
    )
    assert next_state(Decision.rejected, "b", 2, [approved]) is State.rejected
    assert next_state(Decision.escalated, "a", 1, []) is State.escalated


def test_refusals() -> None:
    assert refusal(State.pending, None, "k1", "r", "k0", []) is not None
    assert refusal(State.pending, "r", "k1", "r", "k0", []) is not None  # the requester, another key
    assert refusal(State.pending, "x", "k0", None, "k0", []) is not None  # the requesting key itself
    assert refusal(State.pending, "x", "k1", "r", "k0", []) is None
    assert refusal(State.awaiting_second_review, "a", "k1", "r", "k0", [PriorDecision("a", Decision.approved)])
    assert refusal(State.escalated, "a", "k1", "r", "k0", [PriorDecision("a", Decision.escalated)])
    assert refusal(State.escalated, "b", "k1", "r", "k0", [PriorDecision("a", Decision.escalated)]) is None


def test_the_migration_gives_stored_assessments_their_review_state(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade_database(url, "0002")
    engine = create_db_engine(make_settings(url))
    now = dt.datetime(2026, 1, 1, 12, 0)
    request = {"trip": {"legs": [{"country": "TH"}, {"country": "CN"}, {"country": "TH"}]}}
    factor = {"id": "home_country_extradition_case", "title": "An extradition case"}
    stored = {
        "a-high": {"review": {"required": True, "state": "pending"}, "factors": [factor]},
        "a-low": {"review": {"required": False, "state": "not_required"}, "factors": []},
    }
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO tenants (id, name, created_at) VALUES ('t', 'old', :now)"), {"now": now})
        connection.execute(text("INSERT INTO model_versions VALUES ('m', 'r', '{}', :now)"), {"now": now})
        for assessment_id, response in stored.items():
            connection.execute(
                text(
                    "INSERT INTO assessments (id, tenant_id, status, trip_start, trip_end, request, response,"
                    " model_version, rules_version, reference_data_version, request_hash, created_at,"
                    " current_revision, changed_at) VALUES (:id, 't', 'scored', '2030-01-01', '2030-01-05',"
                    " :request, :response, 'm', 'r', 'd', 'h', :now, 1, :now)"
                ),
                {"id": assessment_id, "request": json.dumps(request), "response": json.dumps(response), "now": now},
            )
    upgrade_database(url)
    with engine.connect() as connection:
        rows = {
            row.id: row
            for row in connection.execute(
                text(
                    "SELECT id, review_state, review_state_at, destinations, top_factor_id, policy_version,"
                    " requested_by_key FROM assessments"
                )
            )
        }
    engine.dispose()
    assert rows["a-high"].review_state == "pending" and rows["a-low"].review_state == "not_required"
    assert rows["a-high"].destinations == "TH CN"
    assert rows["a-high"].top_factor_id == "home_country_extradition_case" and rows["a-low"].top_factor_id is None
    assert rows["a-high"].policy_version == 0 and rows["a-high"].requested_by_key is None
    assert rows["a-high"].review_state_at is not None
