"""Group commit of new assessments: one writer thread per worker process scores the requests waiting for it
and commits all their rows in one transaction, and answers each only after that commit.

A commit costs about as much for one row as for forty, and a thread hop per step of a request costs more
than the step; so a request makes one hop (its submission) and waits on a future. The writer takes every
submission waiting when it is free (up to `max_batch`), in arrival order, and for the batch:

- reads what scoring depends on once: the reference snapshot's version, each tenant's review policy, and
  the assessments already stored under the submissions' `Idempotency-Key`s;
- scores each trip and builds its row with the row-building code (`service.new_assessment`), then writes
  the rows with `service.insert_many` (the assessment and its webhook outbox rows, all in the same
  transaction) and commits once;
- answers every submission after the commit: each 201 is sent only for a committed row.

A submission that fails on its own (a scoring error, its `Idempotency-Key` reused with another body) is
answered with its own error; the others go on. When the batch's write fails (a row refused by the
database, a concurrent process that stored the same `Idempotency-Key` first), the batch is rolled back and
each row is written again in a transaction of its own, so that one bad row neither loses nor fails the
others. A second submission with the `Idempotency-Key` of one earlier in the same batch waits for the next
batch, where it is answered as the retry it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response

from risk_rules.forms import AssessmentRequest
from service.assessments import service
from service.assessments.models import Assessment
from service.keys.service import Principal
from service.model.service import ScoringEngine
from service.policy import service as policies
from service.problems import Conflict, ServiceUnavailable

log = logging.getLogger("travelrisk.assessments")


def created_response(assessment_id: str, body: dict[str, Any] | bytes, *, replayed: bool = False) -> Response:
    """The 201 of a stored assessment: its body (or the body already serialised) and its `Location`."""
    headers = {"Location": f"/v1/assessments/{assessment_id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content, status_code=201, headers=headers, media_type="application/json")


def replay_response(row: Assessment, body_hash: str, key: str) -> Response:
    """The answer to a retry with an `Idempotency-Key` already used: the stored assessment, or a 409 when the
    key came with a different body."""
    if row.request_hash != body_hash:
        raise Conflict(
            f"The Idempotency-Key '{key}' was already used with a different request body; use a new key for"
            " a new request.",
            kind="idempotency-key-reused",
            title="Idempotency-Key reused",
        )
    return created_response(row.id, row.response, replayed=True)


@dataclass(slots=True, eq=False)
class Submission:
    """One POST /v1/assessments waiting for the writer, and what the writer made of it."""

    request: AssessmentRequest
    principal: Principal
    idempotency_key: str | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Response]
    body_hash: str = ""
    values: dict[str, Any] | None = None  # the row to insert (packed), once scored
    body: bytes = b""  # the 201's body: the response, serialised once for both the row and the answer
    outcome: Response | BaseException | None = None  # the answer, once known


_STOP = object()


class AssessmentWriter:
    """The group-commit writer of one worker process (see the module's docstring).

    `sessions` opens the writer's sessions, `write_lock` is the process's SQLite writer lock (held only
    around the batch's INSERTs and COMMIT), `max_batch` bounds the submissions one transaction takes.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        engine: ScoringEngine,
        write_lock: AbstractContextManager[Any],
        max_batch: int = 64,
    ) -> None:
        self._sessions = sessions
        self._engine = engine
        self._write_lock = write_lock
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._carried: list[Submission] = []
        self._state_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        # Observability for tests and benchmarks: how many batches were committed, and their sizes.
        self.batches = 0
        self.largest_batch = 0

    # -- lifecycle

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        with self._state_lock:
            if self._thread is not None or self._stopping:
                return
            self._thread = threading.Thread(target=self._run, name="assessment-writer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        """Answer every submission already made, then stop the thread. Later submissions get a 503."""
        with self._state_lock:
            self._stopping = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=timeout)

    # -- the request side

    async def submit(self, request: AssessmentRequest, principal: Principal, idempotency_key: str | None) -> Response:
        """Score and store one request; the 201 (or a replay) once its row is committed."""
        if self._stopping:
            raise ServiceUnavailable("The service is shutting down; retry the request.", kind="shutting-down")
        if self._thread is None:
            # Applications started without their lifespan (some tests) start the writer on first use.
            self.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Response] = loop.create_future()
        self._queue.put(Submission(request, principal, idempotency_key, loop, future))
        # The writer answers after the commit whatever happens to this coroutine, so the row is never
        # left half-acknowledged; shielding keeps a cancelled request from cancelling the shared future.
        return await asyncio.shield(future)

    # -- the writer thread

    def _run(self) -> None:
        stopping = False
        while not stopping or self._carried:
            batch = self._carried
            self._carried = []
            if not batch:
                item = self._queue.get()
                if item is _STOP:
                    stopping = True
                    continue
                batch.append(item)
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            try:
                self.process(batch)
            except BaseException as exc:  # noqa: BLE001 - the thread must outlive any batch
                log.exception("assessment batch failed", extra={"error_type": type(exc).__name__})
                for submission in batch:
                    if submission.outcome is None:
                        submission.outcome = exc
            _answer(batch)

    def process(self, batch: list[Submission]) -> None:
        """Score, store and commit one batch; sets each submission's outcome, except those carried over to
        the next batch (a repeated `Idempotency-Key`)."""
        with self._sessions() as session:
            try:
                waiting = self._prepare(session, batch)
            except Exception as exc:  # noqa: BLE001 - a read every submission depends on failed: all fail
                session.rollback()
                self._carried = [s for s in self._carried if s not in batch]
                for submission in batch:
                    if submission.outcome is None:
                        submission.outcome = exc
                return
            if not waiting:
                return
            # Take a connection before the write lock, never while holding it (see service.db.write_lock).
            session.connection()
            try:
                with self._write_lock:
                    service.insert_many(session, [s.values for s in waiting if s.values is not None])
                    session.commit()
            except Exception as exc:  # noqa: BLE001 - retried row by row below
                session.rollback()
                log.warning(
                    "assessment batch refused; writing its rows one by one",
                    extra={"rows": len(waiting), "error_type": type(exc).__name__},
                )
                for submission in waiting:
                    self._store_alone(session, submission)
                return
            self.batches += 1
            self.largest_batch = max(self.largest_batch, len(waiting))
            for submission in waiting:
                assert submission.values is not None
                submission.outcome = created_response(submission.values["id"], submission.body)

    def _prepare(self, session: Session, batch: list[Submission]) -> list[Submission]:
        """Score every submission of the batch; the ones with a row to write, in arrival order."""
        assessor = self._engine.assessor()
        reference = self._engine.reference(session)
        tenant_policies: dict[str, policies.Policy] = {}
        keys_seen: set[tuple[str, str]] = set()
        waiting: list[Submission] = []
        for submission in batch:
            principal = submission.principal
            key = submission.idempotency_key
            try:
                document = service.request_document(submission.request)
                submission.body_hash = service.request_hash(document)
                if key is not None:
                    scoped = (principal.tenant_id, key)
                    if scoped in keys_seen:
                        # Answered in the next batch, from the row the first one of them stores now.
                        self._carried.append(submission)
                        continue
                    keys_seen.add(scoped)
                    existing = service.find_by_idempotency_key(session, principal.tenant_id, key)
                    if existing is not None:
                        submission.outcome = replay_response(existing, submission.body_hash, key)
                        continue
                policy = tenant_policies.get(principal.tenant_id)
                if policy is None:
                    policy = tenant_policies[principal.tenant_id] = policies.current(session, principal.tenant_id)
                # The engine's plain-dict body: the same content as `assess`, without building models.
                result = assessor.assess_body(submission.request, reference)
                # Banded and marked for review under the tenant's policy in force now; the version is recorded.
                policies.judge(result, policy, assessor.model.bands)
                values = service.new_assessment(
                    tenant_id=principal.tenant_id,
                    request=submission.request,
                    document=document,
                    result=result,
                    idempotency_key=key,
                    body_hash=submission.body_hash,
                    requested_by_key=principal.key_id,
                    requested_by_holder=principal.holder,
                )
                # Packed here, outside the write lock, from the bytes the 201 will send.
                submission.body = orjson.dumps(values["response"])
                submission.values = service.stored_row(values, submission.body)
            except Exception as exc:  # noqa: BLE001 - this submission's own error, answered to it alone
                submission.outcome = exc
                continue
            waiting.append(submission)
        return waiting

    def _store_alone(self, session: Session, submission: Submission) -> None:
        """Write one submission's row in a transaction of its own (after its batch was refused)."""
        values = submission.values
        assert values is not None
        key = submission.idempotency_key
        try:
            session.connection()
            with self._write_lock:
                service.insert(session, values)
                session.commit()
        except IntegrityError as exc:
            # A concurrent process stored the same key first: answer as its retry would be answered.
            session.rollback()
            existing = (
                service.find_by_idempotency_key(session, submission.principal.tenant_id, key)
                if key is not None
                else None
            )
            if existing is None:
                submission.outcome = exc
                return
            log.info("concurrent request with the same Idempotency-Key answered from the stored assessment")
            try:
                submission.outcome = replay_response(existing, submission.body_hash, key)  # type: ignore[arg-type]
            except Conflict as conflict:
                submission.outcome = conflict
            return
        except Exception as exc:  # noqa: BLE001 - this row's own failure
            session.rollback()
            submission.outcome = exc
            return
        submission.outcome = created_response(values["id"], submission.body)


def _answer(batch: list[Submission]) -> None:
    """Hand every decided outcome to its request's event loop: one wake-up per loop, not per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Submission]] = {}
    for submission in batch:
        if submission.outcome is not None:
            by_loop.setdefault(submission.loop, []).append(submission)
    for loop, answered in by_loop.items():
        # A closed loop raises: its requests are gone, and their rows (if any) are committed.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, answered)


def _settle(answered: list[Submission]) -> None:
    for submission in answered:
        future = submission.future
        if future.done():
            continue
        outcome = submission.outcome
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)  # type: ignore[arg-type]
