"""Stored documents are compressed with the shipped dictionary; every earlier form stays readable."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text, update

from service import compact
from service.db import create_db_engine, create_session_factory

DOCUMENT = {"status": "scored", "factors": [{"id": "journalism", "title": "Journalism", "quote": "x" * 500}], "n": 1.5}


@pytest.mark.parametrize(
    "stored",
    [
        compact.pack(DOCUMENT),
        orjson.dumps(DOCUMENT),  # JSON text stored as bytes (a row from before compression, on SQLite)
        orjson.dumps(DOCUMENT).decode(),  # JSON text
        DOCUMENT,  # a JSON value (PostgreSQL before the column was converted)
    ],
)
def test_every_stored_form_reads_back(stored: Any) -> None:
    assert compact.unpack(stored) == DOCUMENT


def test_packed_documents_are_small_and_name_their_dictionary() -> None:
    packed = compact.pack(DOCUMENT)
    assert len(packed) < len(orjson.dumps(DOCUMENT)) / 3
    assert packed[:4] == b"\x28\xb5\x2f\xfd"


def test_an_unknown_dictionary_is_an_error_not_garbage() -> None:
    import zstandard

    foreign = zstandard.ZstdCompressionDict(
        zstandard.train_dictionary(4096, [orjson.dumps({"k": i}) for i in range(500)]).as_bytes()
    )
    data = zstandard.ZstdCompressor(dict_data=foreign).compress(orjson.dumps(DOCUMENT))
    with pytest.raises(ValueError, match="unknown dictionary"):
        compact.unpack(data)


def test_assessments_are_stored_compressed_and_old_rows_stay_readable(
    client: TestClient, tenant: Any, settings: Any
) -> None:
    body = {
        "traveler": {"citizenships": ["CA"], "occupation": "journalist"},
        "trip": {"legs": [{"country": "CN", "arrive": "2031-05-01", "depart": "2031-05-09"}]},
    }
    created = client.post("/v1/assessments", json=body, headers=tenant.auth("requester"))
    assert created.status_code == 201, created.text
    assessment = created.json()
    engine = create_db_engine(settings)
    try:
        with engine.begin() as connection:
            request, response = connection.execute(
                text("SELECT request, response FROM assessments WHERE id = :id"), {"id": assessment["id"]}
            ).one()
            assert bytes(response)[:4] == b"\x28\xb5\x2f\xfd" and bytes(request)[:4] == b"\x28\xb5\x2f\xfd"
            assert len(bytes(response)) < len(orjson.dumps(assessment)) / 4
            # A row written before documents were compressed: JSON text.
            connection.execute(
                text("UPDATE assessments SET response = :response WHERE id = :id"),
                {"id": assessment["id"], "response": orjson.dumps({**assessment, "status": "scored"})},
            )
    finally:
        engine.dispose()
    read = client.get(f"/v1/assessments/{assessment['id']}", headers=tenant.auth("reviewer"))
    assert read.status_code == 200
    revision_members = ("revision", "revisions", "revised_at", "revision_reason")
    assert {k: v for k, v in read.json().items() if k not in revision_members} == assessment


def test_rows_written_with_an_earlier_dictionary_stay_readable() -> None:
    from importlib import resources

    import zstandard

    shipped = sorted(p.name for p in resources.files("service.dictionaries").iterdir() if p.name.endswith(".zdict"))
    assert compact.CURRENT_DICTIONARY in shipped and len(shipped) >= 2
    for name in shipped:
        dictionary = zstandard.ZstdCompressionDict((resources.files("service.dictionaries") / name).read_bytes())
        frame = zstandard.ZstdCompressor(dict_data=dictionary).compress(orjson.dumps(DOCUMENT))
        assert zstandard.get_frame_parameters(frame).dict_id == dictionary.dict_id()
        assert compact.unpack(frame) == DOCUMENT


def test_rows_stored_before_the_upgrade_get_their_trip_class_and_stay_readable(tmp_path: Any) -> None:
    """Upgrading a database with assessments stored as JSON: each row gets its trip's length class from
    its dates, and its documents read back unchanged; downgrading writes compressed documents as JSON."""
    from sqlalchemy import MetaData, insert, select

    from service.assessments.models import Assessment
    from service.assessments.service import created_period, new_id, trip_span
    from service.db import downgrade_database, upgrade_database
    from tests.service.conftest import make_settings

    url = f"sqlite:///{tmp_path / 'upgrade.db'}"
    upgrade_database(url, "0006_rosters")
    engine = create_db_engine(make_settings(url))
    lengths = [1, 2, 3, 8, 9, 365, 730]
    start = dt.date(2030, 1, 1)
    request = {"traveler": {"citizenships": ["CA"]}, "trip": {"legs": [{"country": "CN"}]}}
    try:
        tables = MetaData()
        tables.reflect(engine)
        now = dt.datetime(2026, 11, 30, 12, 0)
        with engine.begin() as connection:
            connection.execute(insert(tables.tables["tenants"]).values(id="t-1", name="upgrade", created_at=now))
            connection.execute(
                insert(tables.tables["model_versions"]).values(
                    version="m-1", rules_version="r-1", card="{}", first_loaded_at=now
                )
            )
            rows = [
                {
                    "id": new_id(),
                    "tenant_id": "t-1",
                    "status": "scored",
                    "trip_start": start,
                    "trip_end": start + dt.timedelta(days=days - 1),
                    "request": request,
                    "response": {**DOCUMENT, "n": days},
                    "model_version": "m-1",
                    "rules_version": "r-1",
                    "reference_data_version": "d-1",
                    "request_hash": "h",
                    "created_at": now,
                    "changed_at": now,
                }
                for days in lengths
            ]
            connection.execute(insert(tables.tables["assessments"]), rows)
        engine.dispose()
        upgrade_database(url)
        with create_session_factory(engine)() as session:
            stored = session.scalars(select(Assessment).order_by(Assessment.trip_end)).all()
            assert [(a.trip_span, a.response["n"], a.request) for a in stored] == [
                (trip_span(start, start + dt.timedelta(days=days - 1)), days, request) for days in lengths
            ]
            assert [a.trip_span for a in stored] == [0, 1, 2, 3, 4, 9, 10]
            assert {a.created_period for a in stored} == {created_period(now.replace(tzinfo=dt.UTC))}
            # A row written now is compressed; it too survives the downgrade, as JSON.
            session.execute(
                update(Assessment).where(Assessment.id == stored[0].id).values(response={**DOCUMENT, "n": 0})
            )
            session.commit()
        with engine.connect() as connection:
            raw = connection.execute(text("SELECT response FROM assessments ORDER BY trip_end")).scalars().all()
            assert bytes(raw[0])[:4] == b"\x28\xb5\x2f\xfd" and bytes(raw[1])[:1] == b"{"
        engine.dispose()
        downgrade_database(url, "0006_rosters")
        with engine.connect() as connection:
            raw = connection.execute(text("SELECT response FROM assessments ORDER BY trip_end")).scalars().all()
            assert [orjson.loads(value)["n"] for value in raw] == [0, *lengths[1:]]
    finally:
        engine.dispose()


def test_rostered_assessments_are_stored_compressed(client: TestClient, tenant: Any, settings: Any) -> None:
    """Rosters store their assessments through the same packing as a single assessment."""
    from tests.service.rosters.test_rosters import trip, wait_done

    headers = tenant.auth("requester")
    response = client.post("/v1/rosters", json=[trip("Z-1"), trip("Z-2", country="FR")], headers=headers)
    assert response.status_code == 202, response.text
    assert wait_done(client, headers, response.headers["location"])["state"] == "done"
    engine = create_db_engine(settings)
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                text(
                    "SELECT a.request, a.response FROM assessments a JOIN roster_items i ON i.assessment_id = a.id"
                    " WHERE i.roster_id = :roster ORDER BY i.position"
                ),
                {"roster": response.json()["id"]},
            ).all()
    finally:
        engine.dispose()
    assert len(stored) == 2
    for request, response_document in stored:
        assert bytes(request)[:4] == bytes(response_document)[:4] == b"\x28\xb5\x2f\xfd"
    assert [compact.unpack(r)["traveler"]["reference"] for r, _ in stored] == ["Z-1", "Z-2"]
    assert [compact.unpack(r)["status"] for _, r in stored] == ["scored", "out_of_scope"]
