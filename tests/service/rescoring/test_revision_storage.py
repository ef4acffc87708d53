"""Re-scorings' responses are stored compactly (Zstandard frames with the shipped dictionary), read back
unchanged through the API, and re-scored again from; rows stored as JSON before stay readable, and the
migration converts the column both ways."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, insert, select, text

from service import compact
from service.db import create_db_engine, create_session_factory, downgrade_database, upgrade_database
from service.rescoring.models import AssessmentRevision
from tests.service.conftest import make_settings
from tests.service.rescoring.test_rescoring import (
    FUTURE,
    create,
    record_employer_dispute,
    record_situation,
    trip_body,
    wait_for_jobs,
)

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@pytest.fixture(scope="module")
def sessions(settings: Any) -> Any:
    engine = create_db_engine(settings)
    yield create_session_factory(engine)
    engine.dispose()


def stored_responses(sessions: Any, assessment_id: str) -> list[Any]:
    """The raw `response` column of an assessment's revisions, oldest first, as the database holds it."""
    with sessions() as session:
        return list(
            session.execute(
                text("SELECT response FROM assessment_revisions WHERE assessment_id = :id ORDER BY revision"),
                {"id": assessment_id},
            ).scalars()
        )


def through_api(client: TestClient, tenant: Any, assessment_id: str, revision: int) -> dict[str, Any]:
    response = client.get(f"/v1/assessments/{assessment_id}/revisions/{revision}", headers=tenant.auth("reviewer"))
    assert response.status_code == 200, response.text
    return {k: v for k, v in response.json().items() if k != "revisions"}


def without_review(document: dict[str, Any]) -> dict[str, Any]:
    # The current revision shows the review as it is now, which moves on after the re-scoring was stored.
    return {k: v for k, v in document.items() if k != "review"}


def test_a_rescoring_is_stored_as_a_frame_and_reads_back_unchanged(
    client: TestClient, tenant: Any, sessions: Any
) -> None:
    employer = f"Ljubljana {uuid.uuid4().hex[:6]} Freight d.o.o."
    original = create(client, tenant, trip_body("SI", FUTURE, employer=employer))
    situation_id = record_situation(sessions, "SI", dt.date(2019, 1, 1))
    wait_for_jobs(sessions)

    [raw] = stored_responses(sessions, original["id"])
    raw = bytes(raw)
    assert raw[:4] == ZSTD_MAGIC
    second = through_api(client, tenant, original["id"], 2)
    assert second["revision"] == 2 and situation_id in second["revision_reason"]
    assert without_review(compact.unpack(raw)) == without_review(second)
    assert len(raw) < len(orjson.dumps(second)) / 2

    # A later change is re-scored from the stored frame (the current revision it compares against).
    record_employer_dispute(sessions, employer)
    wait_for_jobs(sessions)
    stored = [bytes(value) for value in stored_responses(sessions, original["id"])]
    assert [value[:4] for value in stored] == [ZSTD_MAGIC, ZSTD_MAGIC]
    third = through_api(client, tenant, original["id"], 3)
    assert without_review(compact.unpack(stored[1])) == without_review(third)
    # No longer current, the second revision is exactly what was stored, its review included.
    second = through_api(client, tenant, original["id"], 2)
    assert compact.unpack(stored[0]) == second
    assert "employer_dispute" in {f["id"] for f in third["factors"]}
    assert "home_country_extradition_case" in {f["id"] for f in third["factors"]}
    latest = client.get(f"/v1/assessments/{original['id']}", headers=tenant.auth("reviewer")).json()
    assert latest["revision"] == 3 and [r["revision"] for r in latest["revisions"]] == [1, 2, 3]
    assert [r["versions"] for r in latest["revisions"][1:]] == [second["versions"], third["versions"]]
    assert [r["created_at"] for r in latest["revisions"][1:]] == [second["revised_at"], third["revised_at"]]

    # A revision stored as JSON text (before responses were compressed) reads back the same.
    with sessions() as session:
        session.execute(
            text("UPDATE assessment_revisions SET response = :value WHERE assessment_id = :id AND revision = 2"),
            {"id": original["id"], "value": orjson.dumps(second)},
        )
        session.commit()
    assert bytes(stored_responses(sessions, original["id"])[0])[:1] == b"{"
    assert through_api(client, tenant, original["id"], 2) == second


def test_revisions_stored_as_json_are_converted_both_ways(tmp_path: Path) -> None:
    """Upgrading a database whose revisions are JSON keeps them readable as they are; a revision written
    after the upgrade is a frame; downgrading turns every revision back into JSON text."""
    url = f"sqlite:///{tmp_path / 'revisions.db'}"
    upgrade_database(url, "0007b_compact_documents")
    engine = create_db_engine(make_settings(url))
    now = dt.datetime(2026, 11, 30, 12, 0)
    documents = [{"status": "scored", "factors": [{"id": "journalism", "quote": "x" * 300}], "n": n} for n in range(3)]
    try:
        tables = MetaData()
        tables.reflect(engine)
        with engine.begin() as connection:
            connection.execute(insert(tables.tables["tenants"]).values(id="t-1", name="upgrade", created_at=now))
            connection.execute(
                insert(tables.tables["model_versions"]).values(
                    version="m-1", rules_version="r-1", card="{}", first_loaded_at=now
                )
            )
            connection.execute(
                insert(tables.tables["assessments"]).values(
                    id="a-1",
                    tenant_id="t-1",
                    status="scored",
                    trip_start=dt.date(2030, 1, 1),
                    trip_end=dt.date(2030, 1, 9),
                    trip_span=3,
                    created_period=0,
                    request=compact.pack({"traveler": {"citizenships": ["SI"]}}),
                    response=compact.pack(documents[0]),
                    model_version="m-1",
                    rules_version="r-1",
                    reference_data_version="d-1",
                    request_hash="h",
                    created_at=now,
                    changed_at=now,
                    current_revision=3,
                )
            )
            connection.execute(
                insert(tables.tables["assessment_revisions"]),
                [
                    {
                        "assessment_id": "a-1",
                        "revision": n,
                        "reason": f"change {n}",
                        "response": documents[n],
                        "model_version": "m-1",
                        "rules_version": "r-1",
                        "reference_data_version": "d-1",
                        "created_at": now,
                    }
                    for n in (1, 2)
                ],
            )
        engine.dispose()

        upgrade_database(url, "0008_compact_revisions")
        with engine.connect() as connection:
            raw = connection.execute(text("SELECT response FROM assessment_revisions ORDER BY revision")).scalars()
            assert [orjson.loads(bytes(value)) for value in raw] == documents[1:]
        with create_session_factory(engine)() as session:
            revisions = session.scalars(select(AssessmentRevision).order_by(AssessmentRevision.revision)).all()
            assert [r.response for r in revisions] == documents[1:]
            # A revision written now is a frame.
            session.add(
                AssessmentRevision(
                    assessment_id="a-1",
                    revision=3,
                    reason="change 3",
                    response={**documents[0], "n": 3},
                    model_version="m-1",
                    rules_version="r-1",
                    reference_data_version="d-1",
                    created_at=now.replace(tzinfo=dt.UTC),
                )
            )
            session.commit()
        with engine.connect() as connection:
            raw = (
                connection.execute(text("SELECT response FROM assessment_revisions ORDER BY revision")).scalars().all()
            )
            assert [bytes(value)[:1] for value in raw] == [b"{", b"{", ZSTD_MAGIC[:1]]
        engine.dispose()

        downgrade_database(url, "0007b_compact_documents")
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT response, typeof(response) FROM assessment_revisions ORDER BY revision")
            ).all()
        assert [kind for _, kind in rows] == ["text"] * 3
        assert [orjson.loads(value)["n"] for value, _ in rows] == [1, 2, 3]
        # The documents' own columns are untouched by this migration.
        with engine.connect() as connection:
            response = connection.execute(text("SELECT response FROM assessments")).scalar_one()
        assert compact.unpack(response) == documents[0]
    finally:
        engine.dispose()
