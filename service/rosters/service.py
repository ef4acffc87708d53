"""Rosters: many trips in one upload, each scored and stored as an ordinary assessment in the background.

`create` checks the upload's shape (a JSON array of assessment requests, or CSV with known columns; at
most `MAX_TRIPS` trips), stores it compressed and answers at once. A `RosterWorker` thread in each worker
process claims a roster with a lease and works through it in chunks: each chunk's trips are validated,
scored together (`Assessor.assess_bodies`), and stored as assessments, in one transaction with the
roster's progress. A roster whose worker died is claimed again once the lease runs out and resumes at the
last committed chunk; the progress update is conditional on the claim and the position it started from,
so no trip is ever stored twice.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
import threading
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import and_, event, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from risk_rules.forms import AssessmentRequest
from service.assessments import service as assessments
from service.bodies import parse_json
from service.db import utcnow
from service.leases import LeasedWorker, claim_row, cycle_collection_paused, write_transaction
from service.policy import service as policies
from service.problems import Problem, field_errors
from service.rosters import csv_format
from service.rosters.models import Roster, RosterItem

log = logging.getLogger("travelrisk.rosters")

MAX_TRIPS = 50_000
LEASE = dt.timedelta(seconds=10)
MAX_ATTEMPTS = 3
RETRY_DELAY = dt.timedelta(seconds=2)
ERRORS_SHOWN = 100
BANDS = ("low", "elevated", "high", "severe")
COUNT_KEYS = (*BANDS, "out_of_scope")
RESULT_COLUMNS = ("row", "reference", "status", "band", "probability", "top_factors", "assessment_id", "errors")
_WAKE = threading.Event()


class UploadRejected(ValueError):
    """An upload that cannot be a roster at all (as opposed to a roster with some invalid rows)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Upload:
    """A checked upload, ready to be stored."""

    format: str
    body: bytes
    total: int
    body_hash: str


def parse_upload(body: bytes, media_type: str) -> Upload:
    """Check an upload's shape and count its trips; rows are validated later, one by one."""
    body_hash = hashlib.sha256(body).hexdigest()
    if media_type == "text/csv":
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UploadRejected(f"the CSV file is not UTF-8 (byte {exc.start} cannot be read)") from None
        try:
            _, rows = csv_format.read_rows(text)
        except csv_format.CsvHeaderError as exc:
            raise UploadRejected(str(exc), field="header") from None
        total, kind = len(rows), "csv"
    else:
        # The shared reader: duplicate keys, NaN and malformed JSON are a 400 as on every other route.
        document = parse_json(body)
        if not isinstance(document, list):
            raise UploadRejected("send a JSON array of trips, each a POST /v1/assessments body")
        total, kind = len(document), "json"
    if total == 0:
        raise UploadRejected("the roster has no trips")
    if total > MAX_TRIPS:
        raise UploadRejected(f"the roster has {total:,} trips; at most {MAX_TRIPS:,} per roster: split it")
    return Upload(format=kind, body=body, total=total, body_hash=body_hash)


def create(session: Session, tenant_id: str, upload: Upload, idempotency_key: str | None) -> Roster:
    """Add a queued roster to the caller's transaction; the worker starts on it once it is committed."""
    roster = Roster(
        id=assessments.new_id(),
        tenant_id=tenant_id,
        state="queued",
        format=upload.format,
        # Level 1: most of the saving at a small fraction of the time of the default level.
        payload=zlib.compress(upload.body, 1),
        total=upload.total,
        done=0,
        invalid=0,
        counts=dict.fromkeys(COUNT_KEYS, 0),
        idempotency_key=idempotency_key,
        request_hash=upload.body_hash,
        created_at=utcnow(),
        attempts=0,
    )
    session.add(roster)
    event.listen(session, "after_commit", lambda _session: _WAKE.set(), once=True)
    return roster


def get(session: Session, tenant_id: str, roster_id: str) -> Roster | None:
    """The tenant's roster with this id; another tenant's is not found."""
    return session.scalar(select(Roster).where(Roster.id == roster_id, Roster.tenant_id == tenant_id))


def find_by_idempotency_key(session: Session, tenant_id: str, key: str) -> Roster | None:
    """The tenant's roster created with this Idempotency-Key, if any."""
    return session.scalar(select(Roster).where(Roster.tenant_id == tenant_id, Roster.idempotency_key == key))


def display_row(roster_format: str, position: int) -> int:
    """How a trip's position is shown: its line in the CSV file (the header is line 1), or its index in
    the JSON array (from 0)."""
    return position + 2 if roster_format == "csv" else position


def status_body(session: Session, roster: Roster) -> dict[str, Any]:
    """GET /v1/rosters/{id}: state, progress, counts by band and the first errors."""
    invalid_items = session.scalars(
        select(RosterItem)
        .where(RosterItem.roster_id == roster.id, RosterItem.status == "invalid")
        .order_by(RosterItem.position)
        .limit(ERRORS_SHOWN)
    ).all()
    errors = [
        {"row": display_row(roster.format, item.position), **error}
        for item in invalid_items
        for error in item.errors or []
    ]
    return {
        "id": roster.id,
        "state": roster.state,
        "format": roster.format,
        "total": roster.total,
        "done": roster.done,
        "invalid": roster.invalid,
        "counts": roster.counts,
        "errors": errors,
        "errors_truncated": roster.invalid > len(invalid_items),
        "created_at": assessments.timestamp(roster.created_at),
        "finished_at": assessments.timestamp(roster.finished_at) if roster.finished_at else None,
        "failure": roster.failure,
        "results": f"/v1/rosters/{roster.id}/results",
    }


def result_rows(sessions: sessionmaker[Session], roster: Roster, page: int = 1000) -> Iterator[dict[str, Any]]:
    """One result per trip processed so far, in upload order, read a page at a time."""
    after = -1
    while True:
        with sessions() as session:
            items = session.scalars(
                select(RosterItem)
                .where(RosterItem.roster_id == roster.id, RosterItem.position > after)
                .order_by(RosterItem.position)
                .limit(page)
            ).all()
        if not items:
            return
        for item in items:
            row = display_row(roster.format, item.position)
            yield {
                "row": row,
                "reference": item.reference,
                "status": item.status,
                "band": item.band,
                "probability": item.probability,
                "top_factors": item.top_factors,
                "assessment_id": item.assessment_id,
                "errors": [{"row": row, **error} for error in item.errors] if item.errors else None,
            }
        after = items[-1].position


def csv_results(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Results as CSV text, in pieces: the columns of the JSON lines, top factors and errors joined with `;`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(RESULT_COLUMNS)
    for row in rows:
        errors = row["errors"] or []
        writer.writerow(
            [
                row["row"],
                row["reference"] or "",
                row["status"],
                row["band"] or "",
                "" if row["probability"] is None else row["probability"],
                ";".join(row["top_factors"]),
                row["assessment_id"] or "",
                "; ".join(f"{e.get('column') or e.get('field') or ''}: {e['message']}" for e in errors),
            ]
        )
        if out.tell() > 64_000:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


# ---------------------------------------------------------------------------------------------
# Reading an upload's rows


@dataclass(frozen=True, slots=True)
class Row:
    """One trip of an upload: its request document, or why it cannot be read."""

    document: dict[str, Any] | None
    errors: list[dict[str, str]]


def read_rows(roster_format: str, payload: bytes) -> list[Row]:
    """Every trip of a stored upload, in order."""
    body = zlib.decompress(payload)
    if roster_format == "csv":
        return [Row(document, errors) for document, errors in csv_format.iterate_rows(body.decode("utf-8-sig"))]
    rows = []
    for item in orjson.loads(body):
        if isinstance(item, dict):
            rows.append(Row(item, []))
        else:
            rows.append(
                Row(None, [{"field": "", "message": "each trip must be a JSON object, a POST /v1/assessments body"}])
            )
    return rows


def _validation_errors(roster_format: str, exc: ValidationError) -> list[dict[str, str]]:
    errors = []
    for error in field_errors(exc.errors(include_url=False)):
        entry = {"field": error["field"], "message": error["message"]}
        if roster_format == "csv":
            entry = {"column": csv_format.column_of(error["field"].split(".")), **entry}
        errors.append(entry)
    return errors


# ---------------------------------------------------------------------------------------------
# The worker


class LeaseLost(RuntimeError):
    """Another worker took the roster over (this one's lease ran out), or it is already finished."""


class RosterWorker(LeasedWorker):
    """A worker process's roster thread: claims rosters with a lease and works through them in chunks."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        scoring: Any,
        write_lock: AbstractContextManager[Any],
        chunk_size: int = 500,
        poll_seconds: float = 1.0,
        on_progress: Callable[[str, int, int], None] | None = None,
        trip_bounds: Callable[[], assessments.TripBounds] | None = None,
    ) -> None:
        super().__init__("rosters", _WAKE, poll_seconds, log)
        self._on_progress = on_progress
        # The deployment's bounds on trip dates and length, as POST /v1/assessments applies them.
        self._trip_bounds = trip_bounds
        self._sessions = session_factory
        self._scoring = scoring
        self._write_lock = write_lock
        self._chunk = chunk_size

    def _bound_errors(self, roster_format: str, request: AssessmentRequest) -> list[dict[str, str]]:
        if self._trip_bounds is None:
            return []
        errors = []
        for error in assessments.trip_bound_errors(request, self._trip_bounds()):
            field = ".".join(str(p) for p in error["loc"][1:])
            entry = {"field": field, "message": error["msg"]}
            if roster_format == "csv":
                entry = {"column": csv_format.column_of(field.split(".")), **entry}
            errors.append(entry)
        return errors

    def failed(self, exc: Exception) -> None:
        # The roster's lease runs out and it is claimed again.
        log.exception("roster claim failed")

    def run_once(self, roster_id: str | None = None) -> bool:
        """Claim one roster (this one, if given) and work on it until it is done (or the worker stops); False
        when there was none to claim."""
        claim = self._claim(roster_id)
        if claim is None:
            return False
        roster_id, token = claim
        try:
            self._process(roster_id, token)
        except LeaseLost:
            log.info("roster taken over by another worker", extra={"roster": roster_id})
        except Problem as exc:
            # The model or database is unavailable: not the roster's fault; try again later.
            log.warning("roster paused", extra={"roster": roster_id, "status": exc.status_code})
            self._release(roster_id, token, retry_after=RETRY_DELAY)
        except Exception as exc:  # noqa: BLE001 - recorded on the roster; retried up to MAX_ATTEMPTS
            log.exception("roster chunk failed", extra={"roster": roster_id})
            self._release(roster_id, token, failed=type(exc).__name__, retry_after=RETRY_DELAY)
        return True

    def _claim(self, roster_id: str | None = None) -> tuple[str, str] | None:
        now = utcnow()
        # The claiming UPDATE repeats the state test: a roster finished between the SELECT and the UPDATE
        # (by a worker of another process) has no lease left and must not be claimed back into "running".
        claimable = and_(
            Roster.state.in_(("queued", "running")),
            or_(Roster.claimed_at.is_(None), Roster.claimed_at < now - LEASE),
        )
        with write_transaction(self._sessions, self._write_lock) as session:
            query = select(Roster.id).where(claimable)
            if roster_id is not None:
                query = query.where(Roster.id == roster_id)
            candidate = session.scalar(query.order_by(Roster.created_at).limit(1))
            if candidate is None:
                return None
            token = uuid.uuid4().hex
            claimed = claim_row(
                session, Roster, candidate, claimable, claim_token=token, claimed_at=now, state="running"
            )
            return (candidate, token) if claimed else None

    def _release(
        self, roster_id: str, token: str, *, failed: str | None = None, retry_after: dt.timedelta | None = None
    ) -> None:
        """Give the roster up: for another worker at once, or (after a failure) after `retry_after`."""
        with write_transaction(self._sessions, self._write_lock) as session:
            roster = session.get(Roster, roster_id)
            if roster is None or roster.claim_token != token:
                return
            roster.claim_token = None
            # A held-back lease keeps a passing fault (the database restarting) from being retried at once.
            roster.claimed_at = None if retry_after is None else utcnow() - LEASE + retry_after
            if failed is not None:
                roster.attempts += 1
                if roster.attempts >= MAX_ATTEMPTS:
                    roster.state = "failed"
                    roster.finished_at = utcnow()
                    roster.payload = None
                    roster.failure = f"processing failed {roster.attempts} times ({failed}); {roster.done} trips stored"

    def _process(self, roster_id: str, token: str) -> None:
        with self._sessions() as session:
            roster = session.get(Roster, roster_id)
            if roster is None or roster.payload is None:
                raise LeaseLost(roster_id)
            tenant_id, roster_format, total, done = roster.tenant_id, roster.format, roster.total, roster.done
            counts, invalid = dict(roster.counts), roster.invalid
            rows = read_rows(roster_format, roster.payload)
        while done < total:
            if self.stopping:
                # Shutting down: the next process (or another worker) resumes after the last chunk.
                self._release(roster_id, token)
                return
            end = min(done + self._chunk, total)
            done, invalid = self._store_chunk(
                roster_id, token, tenant_id, roster_format, rows, done, end, total, counts, invalid
            )
            if self._on_progress is not None:
                self._on_progress(roster_id, done, total)
        log.info("roster finished", extra={"roster": roster_id, "total": total, "invalid": invalid})

    def _store_chunk(
        self,
        roster_id: str,
        token: str,
        tenant_id: str,
        roster_format: str,
        rows: list[Row],
        start: int,
        end: int,
        total: int,
        counts: dict[str, int],
        invalid: int,
    ) -> tuple[int, int]:
        """Validate, score and store rows [start, end) with the roster's progress, in one transaction."""
        with cycle_collection_paused():
            new_rows, items, invalid = self._score_chunk(
                roster_id, tenant_id, roster_format, rows, start, end, counts, invalid
            )
            now = utcnow()
            finished = end >= total
            progress: dict[str, Any] = {"done": end, "invalid": invalid, "counts": dict(counts), "claimed_at": now}
            if finished:
                progress.update(state="done", finished_at=now, payload=None, claim_token=None, claimed_at=None)
            with write_transaction(self._sessions, self._write_lock) as session:
                moved = session.execute(
                    update(Roster)
                    .where(Roster.id == roster_id, Roster.claim_token == token, Roster.done == start)
                    .values(**progress)
                    .execution_options(synchronize_session=False)
                )
                if moved.rowcount != 1:
                    raise LeaseLost(roster_id)  # leaves the transaction uncommitted: nothing of the chunk is stored
                assessments.insert_many(session, new_rows)
                session.connection().execute(insert(RosterItem.__table__), sorted(items, key=lambda i: i["position"]))
            return end, invalid

    def _score_chunk(
        self,
        roster_id: str,
        tenant_id: str,
        roster_format: str,
        rows: list[Row],
        start: int,
        end: int,
        counts: dict[str, int],
        invalid: int,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
        """The assessment rows and roster items of rows [start, end); `counts` is updated in place."""
        items: list[dict[str, Any]] = []
        requests: list[tuple[int, AssessmentRequest]] = []
        for position in range(start, end):
            row = rows[position]
            errors = row.errors
            if not errors and row.document is not None:
                try:
                    request = AssessmentRequest.model_validate(row.document)
                except ValidationError as exc:
                    errors = _validation_errors(roster_format, exc)
                else:
                    errors = self._bound_errors(roster_format, request)
                    if not errors:
                        requests.append((position, request))
                        continue
            reference = row.document.get("traveler", {}) if isinstance(row.document, dict) else {}
            ref_value = reference.get("reference") if isinstance(reference, dict) else None
            items.append(
                {
                    "roster_id": roster_id,
                    "position": position,
                    "reference": ref_value[:100] if isinstance(ref_value, str) else None,
                    "assessment_id": None,
                    "status": "invalid",
                    "band": None,
                    "probability": None,
                    "top_factors": [],
                    "errors": errors,
                }
            )
        invalid += len(items)
        assessor = self._scoring.assessor()
        with self._sessions() as session:
            reference_data = self._scoring.reference(session)
            # Judged under the tenant's policy, as a single POST is: its thresholds and review bands.
            policy = policies.current(session, tenant_id)
        bodies = assessor.assess_bodies([request for _, request in requests], reference_data)
        new_rows = []
        for (position, request), body in zip(requests, bodies, strict=True):
            policies.judge(body, policy, assessor.model.bands)
            document = assessments.request_document(request)
            values = assessments.new_assessment(
                tenant_id=tenant_id,
                request=request,
                document=document,
                result=body,
                idempotency_key=None,
                body_hash=assessments.request_hash(document),
            )
            # Packed here, outside the write transaction and its lock.
            new_rows.append(assessments.stored_row(values))
            score = body["score"]
            counts[score["band"] if score else "out_of_scope"] += 1
            items.append(
                {
                    "roster_id": roster_id,
                    "position": position,
                    "reference": request.traveler.reference,
                    "assessment_id": values["id"],
                    "status": body["status"],
                    "band": score["band"] if score else None,
                    "probability": score["probability"] if score else None,
                    "top_factors": [f["id"] for f in body["factors"][:3] if f["contribution"] > 0],
                    "errors": None,
                }
            )
        return new_rows, items, invalid


def wake() -> None:
    """Have this process's worker look for rosters now."""
    _WAKE.set()
