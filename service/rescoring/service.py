"""Re-scoring: when a situation or employer dispute is added or changed, every stored assessment whose
trip has not ended and that the change touches is scored again and stored as a new revision.

`enqueue_rescoring` writes a job in the same transaction as the change, so an acknowledged change always
has its job. A `Rescorer` thread in each worker process claims jobs with a lease and works through them
in batches: a batch's candidates are read, and the touched ones scored together (`Assessor.assess_bodies`),
outside any transaction; its revisions, reasons, review moves and webhook events are then written in short
transactions of a few revisions each, each of which also renews the lease. A job whose worker died is
claimed again when its lease runs out; a worker whose lease was taken over writes nothing more, and a
batch that was already applied is not applied twice (one revision per assessment and job).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, event, insert, or_, select, update
from sqlalchemy.orm import Session, load_only, sessionmaker

from risk_rules.forms import AssessmentRequest
from risk_rules.reference import normalise_organisation
from service.activity import REQUESTS
from service.assessments.models import Assessment
from service.assessments.service import top_factor
from service.db import utcnow
from service.leases import LeasedWorker, claim_row, cycle_collection_paused, write_transaction
from service.policy import service as policies
from service.policy.service import Policy
from service.reference.models import EMPLOYER_DISPUTE, SITUATION, THIRD_COUNTRY
from service.reference.store import Change
from service.rescoring.models import AssessmentRevision, RescoringJob
from service.reviews import service as reviews
from service.webhooks import service as webhooks

log = logging.getLogger("travelrisk.rescoring")

LEASE = dt.timedelta(seconds=15)
# Candidates read and scored per step.
BATCH = 200
# Trips validated or scored between two pauses for requests in flight (a few milliseconds of work), and the
# longest such pause: requests keep their latency, and re-scoring still gets a share under continuous load.
SLICE = 8
GIVE_WAY_SECONDS = 0.01
# Revisions written per transaction.
WRITE_SLICE = 16
_WAKE = threading.Event()

# What must differ for a re-scoring to be a new revision; versions always move with the data.
_COMPARED = ("status", "score", "baseline", "factors", "legs", "mitigations", "possible_employer_matches")


def _period(document: dict[str, Any] | None) -> tuple[dt.date, dt.date | None] | None:
    if document is None:
        return None
    end = document.get("ended_on")
    return dt.date.fromisoformat(document["started_on"]), dt.date.fromisoformat(end) if end else None


def describe_change(change: Change) -> str:
    """The reason shown on re-scored assessments, e.g. "situation nz-cn-1 added: <title>"."""
    verb = "added" if change.before is None else "changed"
    if change.record_type == SITUATION:
        return f"situation {change.record_id} {verb}: {change.after['title']}"[:500]
    if change.record_type == THIRD_COUNTRY:
        return f"third-country profile {change.record_id} {verb}: {change.after['name']}"[:500]
    return f"employer dispute {change.record_id} {verb}: {change.after['name']}"[:500]


def enqueue_rescoring(session: Session, change: Change) -> RescoringJob | None:
    """Record, in the caller's transaction, that assessments touched by `change` must be re-scored."""
    if change.revision is None or change.record_type not in (SITUATION, EMPLOYER_DISPUTE, THIRD_COUNTRY):
        return None
    if change.record_type == THIRD_COUNTRY:
        # A profile has no period of its own: it bears on every trip through the country not yet over.
        start, end = utcnow().date(), None
    else:
        periods = [p for p in (_period(change.before), _period(change.after)) if p is not None]
        start = min(p[0] for p in periods)
        end = None if any(p[1] is None for p in periods) else max(p[1] for p in periods)  # type: ignore[type-var]
    job = RescoringJob(
        reason=describe_change(change),
        record_type=change.record_type,
        record_id=change.record_id,
        period_start=start,
        period_end=end,
        created_at=utcnow(),
        examined=0,
        rescored=0,
    )
    session.add(job)
    # Wake this process's re-scorer once the change is committed (others find it on their next poll).
    event.listen(session, "after_commit", lambda _session: _WAKE.set(), once=True)
    return job


def _touches(job: RescoringJob, documents: tuple[dict[str, Any] | None, ...], request: dict[str, Any]) -> bool:
    """Whether a change could bear on this stored request at all (cheap; the re-scoring itself decides).

    Read from the stored document, before it is validated: most candidates are not touched.
    """
    traveler = request.get("traveler") or {}
    if job.record_type == SITUATION:
        homes = {d["home_country"] for d in documents if d}
        return bool(homes & set(traveler.get("citizenships") or ()))
    if job.record_type == THIRD_COUNTRY:
        legs = (request.get("trip") or {}).get("legs") or ()
        return any(leg.get("country") == job.record_id for leg in legs)
    employer = traveler.get("employer") or {}
    return bool(employer.get("name"))


class LeaseLost(Exception):
    """Another worker took the job over (this one's lease ran out): this one stops, writing nothing more."""


def _renew(session: Session, job_id: int, lease: dt.datetime, **values: Any) -> dt.datetime:
    """Renew the caller's lease on a job (and set `values`) in the caller's transaction; the new lease.

    The lease's time is the token of ownership: the update applies only while the job still holds the
    time this worker set, so a worker whose lease was taken over learns it here, in the batch's transaction
    and before its commit: the batch is rolled back, and the worker stops.
    """
    now = utcnow()
    renewed = session.execute(
        update(RescoringJob)
        .where(RescoringJob.id == job_id, RescoringJob.claimed_at == lease, RescoringJob.finished_at.is_(None))
        .values(claimed_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    if renewed.rowcount != 1:
        raise LeaseLost(job_id)
    return now


def _claim(session: Session, now: dt.datetime) -> RescoringJob | None:
    """The oldest unfinished job that nobody holds a live lease on, now leased to the caller."""
    stale = now - LEASE
    # The claiming UPDATE repeats the unfinished test: a job finished by another process between the
    # SELECT and the UPDATE must not be claimed again.
    claimable = and_(
        RescoringJob.finished_at.is_(None), or_(RescoringJob.claimed_at.is_(None), RescoringJob.claimed_at < stale)
    )
    candidate = session.scalar(select(RescoringJob).where(claimable).order_by(RescoringJob.id).limit(1))
    if candidate is None:
        return None
    return candidate if claim_row(session, RescoringJob, candidate.id, claimable, claimed_at=now) else None


@dataclass(frozen=True, slots=True)
class Candidate:
    """An assessment a job may re-score: what deciding and scoring it need (not its response)."""

    id: str
    request: dict[str, Any]
    current_revision: int
    trip_end: dt.date
    tenant_id: str


@dataclass(slots=True)
class Scored:
    """A touched assessment scored again, with a body that differs from its current one."""

    candidate: Candidate
    body: dict[str, Any]
    created_at: str


@dataclass(slots=True)
class Batch:
    """What a batch's read step found: candidates examined, and those the change touches, scored."""

    examined: int
    last: tuple[dt.date, str] | None
    scored: list[Scored]
    policies: dict[str, Policy]


class _PolicyChanged(Exception):
    """A tenant's policy changed between scoring a batch and writing it: the batch is scored again."""


class Rescorer(LeasedWorker):
    """A worker process's re-scoring thread."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        scoring: Any,
        write_lock: AbstractContextManager[Any],
        poll_seconds: float = 2.0,
        today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
        give_way: Callable[[], None] = lambda: REQUESTS.give_way(GIVE_WAY_SECONDS),
    ) -> None:
        super().__init__("rescorer", _WAKE, poll_seconds, log)
        self._sessions = session_factory
        self._give_way = give_way
        self._scoring = scoring
        self._write_lock = write_lock
        self._today = today

    def failed(self, exc: Exception) -> None:
        log.exception("re-scoring failed; the job will be retried")

    def run_once(self) -> bool:
        """Claim and finish one job; False when there was none."""
        lease = utcnow()
        with write_transaction(self._sessions, self._write_lock) as session:
            job = _claim(session, lease)
            if job is None:
                return False
            job_id = job.id
        log.info("re-scoring job claimed", extra={"job": job_id, "pid": os.getpid()})
        try:
            self._process(job_id, lease)
        except LeaseLost:
            log.warning("re-scoring job taken over by another worker", extra={"job": job_id, "pid": os.getpid()})
        return True

    def _process(self, job_id: int, lease: dt.datetime) -> None:
        """Work through a job in batches: read and score without the write lock and outside any
        transaction, then write in short transactions under the write lock, so requests' writes wait at
        most for a few revisions' writes (never for scoring)."""
        after: tuple[dt.date, str] | None = None
        examined = rescored = 0
        while True:
            with cycle_collection_paused():
                batch = self._read_and_score(job_id, after)
            if batch is None:
                return  # finished meanwhile (by a worker that took it over)
            if batch.last is None:
                with write_transaction(self._sessions, self._write_lock) as session:
                    _renew(session, job_id, lease, finished_at=utcnow(), examined=examined, rescored=rescored)
                log.info(
                    "re-scoring finished",
                    extra={"job": job_id, "examined": examined, "rescored": rescored, "pid": os.getpid()},
                )
                return
            # Written a few revisions per transaction: requests wait for the write lock at most that long.
            # Progress is kept in memory only: after a crash the batch is read again, and what was written
            # of it is found done (one revision per assessment and job) and skipped.
            groups = [batch.scored[n : n + WRITE_SLICE] for n in range(0, len(batch.scored), WRITE_SLICE)] or [[]]
            try:
                for n, group in enumerate(groups):
                    batch_examined = batch.examined if n == len(groups) - 1 else 0
                    self._give_way()  # the write lock is taken between requests, not while they wait for it
                    with write_transaction(self._sessions, self._write_lock) as session:
                        # Renewed first: a worker that lost its lease raises here and writes nothing, and on
                        # SQLite the update takes the database's write lock before the rows are read, so
                        # another process cannot move them between this read and this write.
                        renewed = _renew(session, job_id, lease, examined=examined + batch_examined)
                        written = _apply(session, job_id, group, batch.policies)
                        if written:
                            session.execute(
                                update(RescoringJob)
                                .where(RescoringJob.id == job_id)
                                .values(rescored=rescored + written)
                                .execution_options(synchronize_session=False)
                            )
                    lease = renewed
                    rescored += written
            except _PolicyChanged:
                continue  # rolled back (the lease too): the batch again, judged under the policy in force
            examined += batch.examined
            after = batch.last

    def _read_and_score(self, job_id: int, after: tuple[dt.date, str] | None) -> Batch | None:
        """The next batch after `after`, its touched assessments scored (no write lock, no transaction held
        while scoring); None when the job is finished."""
        with self._sessions() as session:
            job = session.get(RescoringJob, job_id)
            if job is None or job.finished_at is not None:
                return None
            rows = [Candidate(*row) for row in session.execute(candidates_query(self._today(), job, after))]
            if not rows:
                return Batch(examined=0, last=None, scored=[], policies={})
            documents = self._record_documents(session, job)
            touched = self._touched(session, job, documents, rows)
            reference = self._scoring.reference(session)
            current = _current_responses(session, [row for row, _ in touched])
            # Each tenant's policy in force now (a change applies to re-scores), read once per batch.
            tenant_policies = {
                tenant_id: policies.current(session, tenant_id) for tenant_id in {row.tenant_id for row, _ in touched}
            }
        # The session is closed: no snapshot or connection is held while the CPU scores.
        assessor = self._scoring.assessor()
        bodies: list[dict[str, Any]] = []
        for start in range(0, len(touched), SLICE):
            self._give_way()
            bodies.extend(assessor.assess_bodies([request for _, request in touched[start : start + SLICE]], reference))
        scored = []
        for (row, _), body in zip(touched, bodies, strict=True):
            body = policies.judge(body, tenant_policies[row.tenant_id], assessor.model.bands)
            latest = current[row.id]
            if all(body.get(key) == latest.get(key) for key in _COMPARED):
                continue
            scored.append(Scored(row, body, latest["created_at"]))
        return Batch(examined=len(rows), last=(rows[-1].trip_end, rows[-1].id), scored=scored, policies=tenant_policies)

    def _touched(
        self,
        session: Session,
        job: RescoringJob,
        documents: tuple[dict[str, Any] | None, ...],
        rows: list[Candidate],
    ) -> list[tuple[Candidate, AssessmentRequest]]:
        """The candidates the change may bear on and that this job has not re-scored yet, with their requests."""
        done = set(
            session.scalars(
                select(AssessmentRevision.assessment_id).where(
                    AssessmentRevision.job_id == job.id,
                    AssessmentRevision.assessment_id.in_([row.id for row in rows]),
                )
            )
        )
        touched = []
        for row in rows:
            if row.id in done or not _touches(job, documents, row.request):
                continue
            if len(touched) % SLICE == 0:
                self._give_way()
            request = AssessmentRequest.model_validate(row.request)
            if job.record_type == EMPLOYER_DISPUTE and not self._employer_related(documents, request):
                continue
            touched.append((row, request))
        return touched

    @staticmethod
    def _record_documents(session: Session, job: RescoringJob) -> tuple[dict[str, Any] | None, ...]:
        """The changed record before and after the change (its latest two revisions)."""
        from service.reference.models import ReferenceRevision

        revisions = session.scalars(
            select(ReferenceRevision.document)
            .where(ReferenceRevision.record_type == job.record_type, ReferenceRevision.record_id == job.record_id)
            .order_by(ReferenceRevision.revision.desc())
            .limit(2)
        ).all()
        return tuple(revisions)

    @staticmethod
    def _employer_related(documents: tuple[dict[str, Any] | None, ...], request: AssessmentRequest) -> bool:
        """An employer matching a dispute's name or alias exactly, or closely enough to be reported."""
        from risk_rules.reference import NEAR_MATCH_CUTOFF, name_similarity

        employer = request.traveler.employer
        key = normalise_organisation(employer.name or "") if employer else ""
        for document in documents:
            if not document:
                continue
            for name in (document["name"], *document.get("aliases", [])):
                if name_similarity(key, normalise_organisation(name)) >= NEAR_MATCH_CUTOFF:
                    return True
        return False


def candidates_query(today: dt.date, job: Any, after: tuple[dt.date, str] | None) -> Any:
    """The next batch of upcoming assessments in the job's period, in (trip_end, id) order after `after`:
    one range of the trip-end index per batch, however many trips are stored.

    Only what deciding and scoring need is read (not the response): most candidates are not touched.
    """
    query = (
        select(
            Assessment.id, Assessment.request, Assessment.current_revision, Assessment.trip_end, Assessment.tenant_id
        )
        .where(
            Assessment.trip_end >= max(today, job.period_start),
            # A third country's profile can bring a trip that was out of scope into scope.
            Assessment.status.in_(("scored", "out_of_scope"))
            if job.record_type == THIRD_COUNTRY
            else Assessment.status == "scored",
        )
        .order_by(Assessment.trip_end, Assessment.id)
        .limit(BATCH)
    )
    if after is not None:
        end, last_id = after
        query = query.where(Assessment.trip_end >= end, or_(Assessment.trip_end > end, Assessment.id > last_id))
    if job.period_end is not None:
        query = query.where(Assessment.trip_start <= job.period_end)
    return query


def _current_responses(session: Session, rows: list[Candidate]) -> dict[str, dict[str, Any]]:
    """The current response of each assessment (its latest revision, or the original), in at most two
    queries; only the current revision is read and decoded, however many an assessment has."""
    current: dict[str, dict[str, Any]] = {}
    originals = [row.id for row in rows if row.current_revision <= 1]
    if originals:
        current.update(
            _pairs(session.execute(select(Assessment.id, Assessment.response).where(Assessment.id.in_(originals))))
        )
    revised = [row.id for row in rows if row.current_revision > 1]
    if revised:
        latest = (
            select(AssessmentRevision.assessment_id, AssessmentRevision.response)
            .join(
                Assessment,
                (Assessment.id == AssessmentRevision.assessment_id)
                & (Assessment.current_revision == AssessmentRevision.revision),
            )
            .where(Assessment.id.in_(revised))
        )
        current.update(_pairs(session.execute(latest)))
        missing = [i for i in revised if i not in current]
        if missing:
            current.update(
                _pairs(session.execute(select(Assessment.id, Assessment.response).where(Assessment.id.in_(missing))))
            )
    return current


def _pairs(result: Any) -> dict[str, dict[str, Any]]:
    # A Result has `keys()` (its column names), so `dict.update` would take it for a mapping.
    return {key: value for key, value in result}


_INSERT_REVISION = insert(AssessmentRevision.__table__)
# What moving an assessment to a new revision reads and writes, and the row version the update checks.
_WRITTEN_COLUMNS = (
    Assessment.row_version,
    Assessment.tenant_id,
    Assessment.traveler_reference,
    Assessment.band,
    Assessment.probability,
    Assessment.current_revision,
    Assessment.changed_at,
    Assessment.policy_version,
    Assessment.review_state,
    Assessment.review_state_at,
    Assessment.top_factor_id,
    Assessment.top_factor_title,
)


def _apply(session: Session, job_id: int, scored: list[Scored], used: dict[str, Policy]) -> int:
    """Write re-scorings in the caller's transaction: each re-scored assessment moved to its new revision, its
    review moved (a raised band re-opens one), the revisions inserted, and one `assessment.rescored` event
    per revision; the number of revisions written.

    An assessment moves only from the revision it was scored at: one revised meanwhile (by another job,
    whose scoring already saw this change) is left as it is, so two jobs never both write revision n + 1.
    The rows are locked in id order while checked on PostgreSQL (two jobs locking overlapping batches never
    wait for each other in a cycle); on SQLite the write lock and the single writer do the same.
    """
    if not scored:
        return 0
    # A policy changed since the batch was judged: judge it again rather than store a stale review.
    for tenant_id in {item.candidate.tenant_id for item in scored}:
        if policies.current(session, tenant_id).version != used[tenant_id].version:
            raise _PolicyChanged(tenant_id)
    job = session.get_one(RescoringJob, job_id)
    locked = (
        select(Assessment)
        # Not the request and response documents: the write step neither needs nor decodes them.
        .options(load_only(*_WRITTEN_COLUMNS))
        .where(Assessment.id.in_([item.candidate.id for item in scored]))
        .order_by(Assessment.id)
        .with_for_update()
    )
    rows = {row.id: row for row in session.scalars(locked)}
    revisions: list[dict[str, Any]] = []
    events: list[webhooks.PendingEvent] = []
    for item in scored:
        row = rows.get(item.candidate.id)
        if row is None or row.current_revision != item.candidate.current_revision:
            continue
        body = item.body
        policy = used[row.tenant_id]
        now = utcnow()
        revision = row.current_revision + 1
        response = {
            **body,
            "id": row.id,
            "created_at": item.created_at,
            "revision": revision,
            "revised_at": now.isoformat().replace("+00:00", "Z"),
            "revision_reason": job.reason,
        }
        revisions.append(
            {
                "assessment_id": row.id,
                "revision": revision,
                "job_id": job_id,
                "reason": job.reason,
                "response": response,
                "model_version": body["versions"]["model"],
                "rules_version": body["versions"]["rules"],
                "reference_data_version": body["versions"]["reference_data"],
                "created_at": now,
            }
        )
        old_band = row.band
        row.current_revision = revision
        row.changed_at = now
        score = body["score"]
        row.band = score["band"] if score else None
        row.probability = score["probability"] if score else None
        row.policy_version = policy.version
        for column, value in top_factor(body).items():
            setattr(row, column, value)
        # In the same transaction: a raised band re-opens the review, with this re-score's reason.
        reviews.on_rescore(session, row, old_band, policy, job.reason, now)
        data = {
            "assessment_id": row.id,
            "traveler_reference": row.traveler_reference,
            "band": row.band,
            "probability": row.probability,
            "revision": revision,
            "old_band": old_band,
            "new_band": row.band,
            "reason": job.reason,
        }
        events.append(webhooks.PendingEvent(row.tenant_id, "assessment.rescored", data))
    if revisions:
        session.connection().execute(_INSERT_REVISION, revisions)
    # Each revision's webhook event is committed with it (one endpoint look-up per tenant).
    webhooks.emit_all(session, events)
    session.flush()
    return len(revisions)


def latest_response(session: Session, row: Assessment) -> dict[str, Any]:
    """The assessment's current response: its latest revision, or the original."""
    if row.current_revision <= 1:
        return row.response
    revision = session.scalar(
        select(AssessmentRevision).where(
            AssessmentRevision.assessment_id == row.id, AssessmentRevision.revision == row.current_revision
        )
    )
    return revision.response if revision is not None else row.response


def revisions_of(session: Session, row: Assessment) -> list[AssessmentRevision]:
    """The re-scorings of an assessment, oldest first."""
    return list(
        session.scalars(
            select(AssessmentRevision)
            .where(AssessmentRevision.assessment_id == row.id)
            .order_by(AssessmentRevision.revision)
        )
    )
