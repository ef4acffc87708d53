"""Re-scoring: when a situation or employer dispute is added or changed, every stored assessment whose
trip has not ended and that the change touches is scored again and stored as a new revision.

`enqueue_rescoring` writes a job in the same transaction as the change, so an acknowledged change always
has its job. A `Rescorer` thread in each worker process claims jobs with a lease and works through them
in batches, each batch its own transaction; a job whose worker died is claimed again when its lease runs
out, and a batch that was already applied is not applied twice (one revision per assessment and job).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import event, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from risk_rules.forms import AssessmentRequest
from risk_rules.reference import normalise_organisation
from service.assessments.models import Assessment
from service.assessments.service import top_factor
from service.db import utcnow
from service.policy import service as policies
from service.policy.service import Policy
from service.reference.models import EMPLOYER_DISPUTE, SITUATION, THIRD_COUNTRY
from service.reference.store import Change
from service.rescoring.models import AssessmentRevision, RescoringJob
from service.reviews import service as reviews
from service.webhooks import service as webhooks

log = logging.getLogger("travelrisk.rescoring")

LEASE = dt.timedelta(seconds=15)
BATCH = 100
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


def _touches(job: RescoringJob, documents: tuple[dict[str, Any] | None, ...], request: AssessmentRequest) -> bool:
    """Whether a change could bear on this request at all (cheap; the re-scoring itself decides)."""
    if job.record_type == SITUATION:
        homes = {d["home_country"] for d in documents if d}
        return bool(homes & set(request.traveler.citizenships))
    if job.record_type == THIRD_COUNTRY:
        return any(leg.country == job.record_id for leg in request.trip.legs)
    employer = request.traveler.employer
    return bool(employer and employer.name)


def _claim(session: Session, now: dt.datetime) -> RescoringJob | None:
    """The oldest unfinished job that nobody holds a live lease on, now leased to the caller."""
    stale = now - LEASE
    claimable = or_(RescoringJob.claimed_at.is_(None), RescoringJob.claimed_at < stale)
    candidate = session.scalar(
        select(RescoringJob).where(RescoringJob.finished_at.is_(None), claimable).order_by(RescoringJob.id).limit(1)
    )
    if candidate is None:
        return None
    # A conditional update: of two workers racing for one job, only one changes the row.
    claimed = session.execute(
        update(RescoringJob).where(RescoringJob.id == candidate.id, claimable).values(claimed_at=now)
    )
    return candidate if claimed.rowcount == 1 else None


@contextmanager
def write_transaction(sessions: sessionmaker[Session], write_lock: AbstractContextManager[Any]) -> Iterator[Session]:
    """A session whose work and commit run under the process's write lock.

    The connection is taken before the lock, never while holding it (as request handlers do): a lock
    holder waiting for the pool while the pool's connections wait for the lock would deadlock.
    """
    with sessions() as session:
        session.connection()
        with write_lock:
            yield session
            session.commit()


class Rescorer:
    """A worker process's re-scoring thread."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        scoring: Any,
        write_lock: AbstractContextManager[Any],
        poll_seconds: float = 2.0,
        today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
    ) -> None:
        self._sessions = session_factory
        self._scoring = scoring
        self._write_lock = write_lock
        self._poll = poll_seconds
        self._today = today
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rescorer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        _WAKE.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:  # noqa: BLE001 - the job stays claimable and is retried after its lease
                log.exception("re-scoring failed; the job will be retried")
                worked = False
            if not worked:
                _WAKE.wait(self._poll)
                _WAKE.clear()

    def run_once(self) -> bool:
        """Claim and finish one job; False when there was none."""
        with write_transaction(self._sessions, self._write_lock) as session:
            job = _claim(session, utcnow())
            if job is None:
                return False
            job_id = job.id
        self._process(job_id)
        return True

    def _candidates(self, session: Session, job: RescoringJob, after: str) -> list[Assessment]:
        today = self._today()
        query = (
            select(Assessment)
            .where(
                Assessment.trip_end >= today,
                Assessment.trip_end >= job.period_start,
                # A third country's profile can bring a trip that was out of scope into scope.
                Assessment.status.in_(("scored", "out_of_scope"))
                if job.record_type == THIRD_COUNTRY
                else Assessment.status == "scored",
                Assessment.id > after,
            )
            .order_by(Assessment.id)
            .limit(BATCH)
        )
        if job.period_end is not None:
            query = query.where(Assessment.trip_start <= job.period_end)
        return list(session.scalars(query))

    def _process(self, job_id: int) -> None:
        after = ""
        examined = rescored = 0
        while True:
            with write_transaction(self._sessions, self._write_lock) as session:
                job = session.get(RescoringJob, job_id)
                if job is None or job.finished_at is not None:
                    return
                rows = self._candidates(session, job, after)
                if not rows:
                    job.finished_at = utcnow()
                    job.examined, job.rescored = examined, rescored
                    log.info("re-scoring finished", extra={"job": job_id, "examined": examined, "rescored": rescored})
                    return
                documents = self._record_documents(session, job)
                assessor = self._scoring.assessor()
                reference = self._scoring.reference(session)
                # Each tenant's policy in force now (a change applies to re-scores), read once per batch.
                tenant_policies: dict[str, Policy] = {}
                events: list[webhooks.PendingEvent] = []
                for row in rows:
                    examined += 1
                    if row.tenant_id not in tenant_policies:
                        tenant_policies[row.tenant_id] = policies.current(session, row.tenant_id)
                    policy = tenant_policies[row.tenant_id]
                    if self._rescore(session, job, documents, assessor, reference, row, policy, events):
                        rescored += 1
                # Each revision's webhook event is committed with it (one endpoint look-up per tenant).
                webhooks.emit_all(session, events)
                after = rows[-1].id
                job.claimed_at = utcnow()  # renew the lease while working
                job.examined, job.rescored = examined, rescored

    @staticmethod
    def _record_documents(session: Session, job: RescoringJob) -> tuple[dict[str, Any] | None, ...]:
        from service.reference.models import ReferenceRevision

        revisions = session.scalars(
            select(ReferenceRevision.document)
            .where(ReferenceRevision.record_type == job.record_type, ReferenceRevision.record_id == job.record_id)
            .order_by(ReferenceRevision.revision.desc())
            .limit(2)
        ).all()
        return tuple(revisions)

    def _rescore(
        self,
        session: Session,
        job: RescoringJob,
        documents: tuple[dict[str, Any] | None, ...],
        assessor: Any,
        reference: Any,
        row: Assessment,
        policy: Policy,
        events: list[webhooks.PendingEvent],
    ) -> bool:
        already = session.scalar(
            select(AssessmentRevision.id).where(
                AssessmentRevision.assessment_id == row.id, AssessmentRevision.job_id == job.id
            )
        )
        if already is not None:
            return False
        request = AssessmentRequest.model_validate(row.request)
        if not _touches(job, documents, request):
            return False
        if job.record_type == EMPLOYER_DISPUTE and not self._employer_related(documents, request):
            return False
        body = policies.judge(assessor.assess_body(request, reference), policy, assessor.model.bands)
        current = latest_response(session, row)
        if all(body.get(key) == current.get(key) for key in _COMPARED):
            return False
        now = utcnow()
        revision = row.current_revision + 1
        response = {
            **body,
            "id": row.id,
            "created_at": row.response["created_at"],
            "revision": revision,
            "revised_at": now.isoformat().replace("+00:00", "Z"),
            "revision_reason": job.reason,
        }
        session.add(
            AssessmentRevision(
                assessment_id=row.id,
                revision=revision,
                job_id=job.id,
                reason=job.reason,
                response=response,
                model_version=body["versions"]["model"],
                rules_version=body["versions"]["rules"],
                reference_data_version=body["versions"]["reference_data"],
                created_at=now,
            )
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
        return True

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
