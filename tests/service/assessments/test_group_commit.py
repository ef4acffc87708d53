"""Group commit of new assessments (service/assessments/writer.py) on a real database: a batch of waiting
requests is committed in one transaction and each is answered after it; one bad row neither loses nor
fails the others; idempotent retries inside and across batches; shutting down answers what was waiting."""

from __future__ import annotations

import asyncio
import copy
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response

from risk_rules.forms import AssessmentRequest
from service.assessments.examples import REQUEST_EXAMPLE
from service.assessments.models import Assessment
from service.assessments.writer import AssessmentWriter
from service.db import create_db_engine, create_session_factory, session_scope, write_lock
from service.keys import service as keys
from service.keys.service import Principal
from service.model.service import ScoringEngine
from service.problems import Conflict, ServiceUnavailable
from service.settings import Settings
from service.webhooks import service as webhooks
from service.webhooks.models import WebhookEvent
from tests.service.conftest import Tenant, make_settings


class Commits:
    """Counts the transactions committed on an engine (every connection of it)."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        event.listen(engine, "commit", self._on_commit)

    def _on_commit(self, _connection: Any) -> None:
        self.count += 1


@pytest.fixture(scope="module")
def db(settings: Settings) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    engine = create_db_engine(settings)
    yield engine, create_session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def scoring(settings: Settings, db: tuple[Engine, sessionmaker[Session]]) -> ScoringEngine:
    engine = ScoringEngine(settings, db[1])
    assert engine.load(), engine.failure
    return engine


def principal_of(sessions: sessionmaker[Session], tenant: Tenant) -> Principal:
    with sessions() as session:
        principal = keys.verify(session, tenant.keys[next(iter(tenant.keys))])
    assert principal is not None
    return principal


def request_for(reference: str) -> AssessmentRequest:
    body = copy.deepcopy(REQUEST_EXAMPLE)
    body["traveler"]["reference"] = reference
    return AssessmentRequest.model_validate(body)


def run_batch(
    writer: AssessmentWriter, submissions: list[tuple[AssessmentRequest, Principal, str | None]]
) -> list[Response | BaseException]:
    """Submit everything before the writer starts, so that its first batch holds all of it; the answers."""

    async def main() -> list[Any]:
        pending = [asyncio.ensure_future(writer.submit(*s)) for s in submissions]
        await asyncio.sleep(0)  # every submission is queued before the writer takes its first batch
        writer.start()
        try:
            return await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), timeout=60)
        finally:
            writer.stop()

    return asyncio.run(main())


def body_of(response: Response | BaseException) -> dict[str, Any]:
    assert isinstance(response, Response), response
    return orjson.loads(bytes(response.body))


def stored(sessions: sessionmaker[Session], ids: list[str]) -> dict[str, Assessment]:
    with sessions() as session:
        return {row.id: row for row in session.scalars(select(Assessment).where(Assessment.id.in_(ids)))}


def test_a_batch_is_committed_in_one_transaction_in_arrival_order(
    db: tuple[Engine, sessionmaker[Session]], scoring: ScoringEngine, tenant: Tenant
) -> None:
    engine, sessions = db
    principal = principal_of(sessions, tenant)
    references = [f"GC-{i:02d}-{uuid.uuid4().hex[:6]}" for i in range(12)]
    writer = AssessmentWriter(sessions, scoring, write_lock(engine), max_batch=64)
    commits = Commits(engine)

    answers = run_batch(writer, [(request_for(r), principal, None) for r in references])

    assert [a.status_code for a in answers] == [201] * 12  # type: ignore[union-attr]
    assert commits.count == 1
    assert (writer.batches, writer.largest_batch) == (1, 12)
    bodies = [body_of(a) for a in answers]
    rows = stored(sessions, [b["id"] for b in bodies])
    assert len(rows) == 12
    # Each answer is its own request's stored row, and the rows were created in the order they arrived.
    for reference, body in zip(references, bodies, strict=True):
        row = rows[body["id"]]
        assert row.traveler_reference == reference
        assert row.response == body
        assert answers[0].headers["location"].startswith("/v1/assessments/")  # type: ignore[union-attr]
    created = [rows[b["id"]].created_at for b in bodies]
    assert created == sorted(created)


def test_max_batch_bounds_a_transaction(
    db: tuple[Engine, sessionmaker[Session]], scoring: ScoringEngine, tenant: Tenant
) -> None:
    engine, sessions = db
    principal = principal_of(sessions, tenant)
    writer = AssessmentWriter(sessions, scoring, write_lock(engine), max_batch=4)
    commits = Commits(engine)

    answers = run_batch(writer, [(request_for(f"MB-{i}-{uuid.uuid4().hex[:6]}"), principal, None) for i in range(10)])

    assert [a.status_code for a in answers] == [201] * 10  # type: ignore[union-attr]
    assert (commits.count, writer.batches, writer.largest_batch) == (3, 3, 4)


@pytest.fixture
def refused_reference(db: tuple[Engine, sessionmaker[Session]]) -> Iterator[str]:
    """A traveller reference the database itself refuses to store (a trigger), to make one row of a batch fail."""
    engine, _ = db
    reference = f"REFUSE-{uuid.uuid4().hex[:8]}"
    if engine.dialect.name == "sqlite":
        create = [
            f"CREATE TRIGGER refuse_marked BEFORE INSERT ON assessments WHEN NEW.traveler_reference = '{reference}'"
            " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        ]
        drop = ["DROP TRIGGER refuse_marked"]
    else:
        create = [
            "CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.traveler_reference = '{reference}' THEN RAISE EXCEPTION 'refused by the test'; END IF;"
            " RETURN NEW; END $$",
            "CREATE TRIGGER refuse_marked BEFORE INSERT ON assessments FOR EACH ROW EXECUTE FUNCTION refuse_marked()",
        ]
        drop = ["DROP TRIGGER refuse_marked ON assessments", "DROP FUNCTION refuse_marked()"]
    with engine.begin() as connection:
        for statement in create:
            connection.execute(text(statement))
    try:
        yield reference
    finally:
        with engine.begin() as connection:
            for statement in drop:
                connection.execute(text(statement))


def test_a_refused_row_neither_loses_nor_fails_the_others_and_its_outbox_rows_go_with_it(
    db: tuple[Engine, sessionmaker[Session]], scoring: ScoringEngine, tenant: Tenant, refused_reference: str
) -> None:
    engine, sessions = db
    principal = principal_of(sessions, tenant)
    with session_scope(sessions) as session:
        # An endpoint that wants assessment events: every stored assessment has its outbox event.
        webhooks.create_endpoint(
            session,
            principal.tenant_id,
            url="http://127.0.0.1:9/never-answers",
            event_types=["assessment.created"],
            enabled=False,
            description=None,
        ).enabled = True
    references = [f"OK-{i}-{uuid.uuid4().hex[:6]}" for i in range(5)]
    references.insert(2, refused_reference)
    writer = AssessmentWriter(sessions, scoring, write_lock(engine))

    answers = run_batch(writer, [(request_for(r), principal, None) for r in references])

    refused = answers.pop(2)
    assert isinstance(refused, Exception) and not isinstance(refused, Response)
    bodies = [body_of(a) for a in answers]
    assert [a.status_code for a in answers] == [201] * 5  # type: ignore[union-attr]
    rows = stored(sessions, [b["id"] for b in bodies])
    assert sorted(row.traveler_reference for row in rows.values()) == sorted(references[:2] + references[3:])
    with sessions() as session:
        all_refs = session.scalars(
            select(Assessment.traveler_reference).where(Assessment.tenant_id == principal.tenant_id)
        )
        assert refused_reference not in set(all_refs)
        events = session.scalars(select(WebhookEvent).where(WebhookEvent.tenant_id == principal.tenant_id)).all()
    # Exactly one event per stored assessment; none for the refused one.
    assert sorted(e.payload["data"]["assessment_id"] for e in events) == sorted(rows)
    assert refused_reference not in {e.payload["data"]["traveler_reference"] for e in events}


def test_idempotency_keys_inside_one_batch_and_across_batches(
    db: tuple[Engine, sessionmaker[Session]], scoring: ScoringEngine, tenant: Tenant
) -> None:
    engine, sessions = db
    principal = principal_of(sessions, tenant)
    key, other_key = str(uuid.uuid4()), str(uuid.uuid4())
    first, different = request_for(f"ID-{uuid.uuid4().hex[:6]}"), request_for(f"ID-{uuid.uuid4().hex[:6]}")
    writer = AssessmentWriter(sessions, scoring, write_lock(engine))

    answers = run_batch(
        writer,
        [
            (first, principal, key),
            (request_for(f"ID-{uuid.uuid4().hex[:6]}"), principal, other_key),
            (first, principal, key),  # a retry arriving while the first is still waiting
            (different, principal, key),  # the same key with another body
        ],
    )

    original, other, retry, conflict = answers
    assert original.status_code == 201 and "idempotent-replayed" not in original.headers  # type: ignore[union-attr]
    assert other.status_code == 201  # type: ignore[union-attr]
    assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true"  # type: ignore[union-attr]
    assert body_of(retry) == body_of(original)
    assert isinstance(conflict, Conflict) and conflict.status_code == 409
    with sessions() as session:
        keyed = session.scalars(
            select(Assessment.id).where(Assessment.tenant_id == principal.tenant_id, Assessment.idempotency_key == key)
        ).all()
    assert keyed == [body_of(original)["id"]]

    # A later batch replays the stored row without writing anything.
    later = AssessmentWriter(sessions, scoring, write_lock(engine))
    commits = Commits(engine)
    (replayed,) = run_batch(later, [(first, principal, key)])
    assert replayed.headers["idempotent-replayed"] == "true"  # type: ignore[union-attr]
    assert body_of(replayed) == body_of(original)
    assert commits.count == 0


def test_a_submission_whose_key_another_process_stored_meanwhile_is_answered_as_its_retry(
    db: tuple[Engine, sessionmaker[Session]], scoring: ScoringEngine, tenant: Tenant
) -> None:
    """The batch's INSERT meets the key stored by another process after the look-up: the batch is rolled
    back, the other rows are stored one by one, and this one is answered from the row stored first."""
    engine, sessions = db
    principal = principal_of(sessions, tenant)
    key = str(uuid.uuid4())
    request = request_for(f"RACE-{uuid.uuid4().hex[:6]}")
    # The "other process": a second writer with its own engine, storing the same key and body first.
    other_engine = create_db_engine(make_settings(engine.url.render_as_string(hide_password=False)))
    other_sessions = create_session_factory(other_engine)
    stored_first: dict[str, Any] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def _race(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO assessments") and not stored_first:
            (answer,) = run_batch(
                AssessmentWriter(other_sessions, scoring, write_lock(other_engine)), [(request, principal, key)]
            )
            stored_first.update(body_of(answer))

    try:
        neighbour = request_for(f"RACE-N-{uuid.uuid4().hex[:6]}")
        answers = run_batch(
            AssessmentWriter(sessions, scoring, write_lock(engine)),
            [(neighbour, principal, None), (request, principal, key)],
        )
    finally:
        event.remove(engine, "before_cursor_execute", _race)
        other_engine.dispose()

    alongside, raced = answers
    assert alongside.status_code == 201  # type: ignore[union-attr]
    assert raced.status_code == 201 and raced.headers["idempotent-replayed"] == "true"  # type: ignore[union-attr]
    assert body_of(raced) == stored_first
    assert len(stored(sessions, [body_of(alongside)["id"], stored_first["id"]])) == 2


def test_stopping_answers_what_was_submitted_and_refuses_what_comes_later(
    db: tuple[Engine, sessionmaker[Session]], scoring: ScoringEngine, tenant: Tenant
) -> None:
    engine, sessions = db
    principal = principal_of(sessions, tenant)
    writer = AssessmentWriter(sessions, scoring, write_lock(engine))

    async def main() -> tuple[list[Any], Any]:
        pending = [asyncio.ensure_future(writer.submit(request_for(f"ST-{i}"), principal, None)) for i in range(3)]
        await asyncio.sleep(0)
        writer.start()
        await asyncio.get_running_loop().run_in_executor(None, writer.stop)
        answered = await asyncio.gather(*pending, return_exceptions=True)
        try:
            await writer.submit(request_for("ST-late"), principal, None)
        except ServiceUnavailable as exc:
            return answered, exc
        return answered, None

    answered, late = asyncio.run(main())
    assert [a.status_code for a in answered] == [201] * 3
    assert isinstance(late, ServiceUnavailable) and late.status_code == 503


def test_concurrent_requests_through_the_application_are_each_answered_with_their_own_stored_row(
    client: TestClient, tenant: Tenant
) -> None:
    bodies = []
    for i in range(16):
        body = copy.deepcopy(REQUEST_EXAMPLE)
        body["traveler"]["reference"] = f"HTTP-{i}-{uuid.uuid4().hex[:6]}"
        if i == 5:
            body["trip"]["legs"][0]["country"] = "QQ"  # invalid: answered 422 on its own
        bodies.append(body)
    barrier = threading.Barrier(len(bodies))
    answers: list[Any] = [None] * len(bodies)

    def post(i: int) -> None:
        barrier.wait()
        answers[i] = client.post("/v1/assessments", json=bodies[i], headers=tenant.auth("requester"))

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert answers[5].status_code == 422
    for i, answer in enumerate(answers):
        if i == 5:
            continue
        assert answer.status_code == 201, answer.text
        stored_body = client.get(answer.headers["location"], headers=tenant.auth("requester")).json()
        assert stored_body["id"] == answer.json()["id"]
        assert stored_body["factors"] == answer.json()["factors"]
    ids = [a.json()["id"] for i, a in enumerate(answers) if i != 5]
    assert len(set(ids)) == 15
