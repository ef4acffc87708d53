"""Reading and writing reference data: upserts with revisions, import/export, as-of views, and the
snapshot the scoring engine reads.

Functions here add to the caller's session and never commit: one transaction per request or command.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from risk_rules.errors import ReferenceDataError
from risk_rules.reference import (
    DestinationIn,
    EmployerDisputeIn,
    InMemoryReference,
    ReferenceSetIn,
    SituationIn,
    ThirdCountryIn,
    destination_record,
    employer_dispute_record,
    situation_record,
    third_country_record,
)
from service.db import utcnow
from service.reference.models import (
    DESTINATION,
    EMPLOYER_DISPUTE,
    SITUATION,
    THIRD_COUNTRY,
    DestinationProfileRecord,
    EmployerDisputeRecord,
    ReferenceRevision,
    SituationRecord,
    ThirdCountryRecord,
)

_MODELS: dict[str, type[Any]] = {
    SITUATION: SituationRecord,
    EMPLOYER_DISPUTE: EmployerDisputeRecord,
    DESTINATION: DestinationProfileRecord,
    THIRD_COUNTRY: ThirdCountryRecord,
}
_SCHEMAS: dict[str, type[BaseModel]] = {
    SITUATION: SituationIn,
    EMPLOYER_DISPUTE: EmployerDisputeIn,
    DESTINATION: DestinationIn,
    THIRD_COUNTRY: ThirdCountryIn,
}


def record_document(record: BaseModel) -> dict[str, Any]:
    """A record as stored: JSON-ready, every field present."""
    return record.model_dump(mode="json")


def changes_between(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """Field by field, what a change did: `{field: {"from": old, "to": new}}`."""
    before = before or {}
    return {
        key: {"from": before.get(key), "to": after.get(key)}
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


@dataclass(frozen=True)
class Change:
    """The outcome of an upsert: the revision written, or None when the record was already so."""

    record_type: str
    record_id: str
    revision: ReferenceRevision | None
    before: dict[str, Any] | None
    after: dict[str, Any]

    @property
    def action(self) -> str | None:
        return self.revision.action if self.revision else None


# The columns look-ups filter on, copied from the document; the dates of both dated record types.
_FILTER_COLUMNS = {
    SITUATION: ("home_country", "destination", "kind"),
    EMPLOYER_DISPUTE: ("name", "destination", "kind"),
}


def _columns(record_type: str, document: dict[str, Any]) -> dict[str, Any]:
    names = _FILTER_COLUMNS.get(record_type)
    if names is None:
        return {}
    ended = document.get("ended_on")
    return {
        **{name: document[name] for name in names},
        "started_on": dt.date.fromisoformat(document["started_on"]),
        "ended_on": dt.date.fromisoformat(ended) if ended else None,
    }


def _record_id(record_type: str, record: BaseModel) -> str:
    return record.code if record_type in (DESTINATION, THIRD_COUNTRY) else record.id  # type: ignore[attr-defined]


def upsert(
    session: Session,
    record_type: str,
    record: BaseModel,
    actor: str,
    *,
    action: str | None = None,
    now: dt.datetime | None = None,
) -> Change:
    """Create or update one record, logging a revision; nothing is written when nothing changed."""
    model = _MODELS[record_type]
    record_id = _record_id(record_type, record)
    document = record_document(record)
    now = now or utcnow()
    row = session.get(model, record_id)
    before = dict(row.document) if row is not None else None
    if before == document:
        return Change(record_type, record_id, None, before, document)
    if row is None:
        row = model(**({"id": record_id} if hasattr(model, "id") else {"code": record_id}))
        row.revision = 0
        if hasattr(row, "created_at"):
            row.created_at = now
        session.add(row)
    for key, value in _columns(record_type, document).items():
        setattr(row, key, value)
    row.document = document
    row.revision += 1
    row.updated_at = now
    revision = ReferenceRevision(
        record_type=record_type,
        record_id=record_id,
        revision=row.revision,
        action=action or ("created" if before is None else "updated"),
        actor=actor[:200],
        changed_at=now,
        changes=changes_between(before, document),
        document=document,
    )
    session.add(revision)
    session.flush()
    return Change(record_type, record_id, revision, before, document)


def load_reference_set(session: Session, reference_set: ReferenceSetIn, actor: str) -> list[Change]:
    """Upsert every record of a whole reference set (the bundled file, or an import)."""
    now = utcnow()
    changes = []
    for record_type, records in (
        (DESTINATION, reference_set.destinations),
        (THIRD_COUNTRY, reference_set.third_countries),
        (SITUATION, reference_set.situations),
        (EMPLOYER_DISPUTE, reference_set.employer_disputes),
    ):
        for record in records:
            changes.append(upsert(session, record_type, record, actor, now=now))
    return changes


def current_documents(session: Session, record_type: str) -> list[dict[str, Any]]:
    model = _MODELS[record_type]
    key = model.id if hasattr(model, "id") else model.code
    return [row.document for row in session.scalars(select(model).order_by(key))]


def export_reference_set(session: Session) -> dict[str, Any]:
    """The whole reference set as one document, in the bundled file's schema."""
    return {
        "destinations": current_documents(session, DESTINATION),
        "third_countries": current_documents(session, THIRD_COUNTRY),
        "situations": current_documents(session, SITUATION),
        "employer_disputes": current_documents(session, EMPLOYER_DISPUTE),
    }


def documents_as_of(session: Session, record_type: str, at: dt.datetime) -> list[dict[str, Any]]:
    """Each record of a type as it was recorded at `at` (records created later are absent)."""
    latest = (
        select(ReferenceRevision.record_id, func.max(ReferenceRevision.revision).label("revision"))
        .where(ReferenceRevision.record_type == record_type, ReferenceRevision.changed_at <= at)
        .group_by(ReferenceRevision.record_id)
        .subquery()
    )
    rows = session.scalars(
        select(ReferenceRevision)
        .join(
            latest,
            (ReferenceRevision.record_id == latest.c.record_id) & (ReferenceRevision.revision == latest.c.revision),
        )
        .where(ReferenceRevision.record_type == record_type)
        .order_by(ReferenceRevision.record_id)
    )
    return [row.document for row in rows]


def history(session: Session, record_type: str, record_id: str) -> list[ReferenceRevision]:
    """Every revision of one record, oldest first."""
    return list(
        session.scalars(
            select(ReferenceRevision)
            .where(ReferenceRevision.record_type == record_type, ReferenceRevision.record_id == record_id)
            .order_by(ReferenceRevision.revision)
        )
    )


def latest_revision_id(session: Session) -> int:
    """The id of the latest revision of the reference data (0 when there is none).

    Every assessment asks this, so it is one primary-key look-up sent as plain SQL, skipping the
    statement compilation an ORM query would cost on each call.
    """
    latest = session.connection().exec_driver_sql("SELECT max(id) FROM reference_revisions").scalar()
    return int(latest or 0)


def version_label(revision_id: int) -> str:
    """The reference data's version as assessments record it."""
    return f"ref-db-{revision_id}"


def reference_version(session: Session) -> str:
    """The reference data's version: the id of its latest revision."""
    return version_label(latest_revision_id(session))


def _stream_documents(session: Session, record_type: str) -> Iterator[dict[str, Any]]:
    """The current documents of one record type, read in batches (only the JSON column)."""
    result = session.execute(select(_MODELS[record_type].document).execution_options(yield_per=500))
    try:
        for (document,) in result:
            yield document
    finally:
        result.close()


def _snapshot(session: Session, version: str) -> InMemoryReference:
    """The reference data built from scratch: every record read, validated and indexed.

    Records are streamed and validated one at a time, so that the whole set never sits in memory twice
    (as documents and as validated models) next to the snapshot being built; they are put in Python's
    id order whatever the database's collation, as incremental updates keep them.
    """
    origin = "reference data in the database"
    try:
        destinations = [
            destination_record(DestinationIn.model_validate(d)) for d in _stream_documents(session, DESTINATION)
        ]
        third = [
            third_country_record(ThirdCountryIn.model_validate(d)) for d in _stream_documents(session, THIRD_COUNTRY)
        ]
        situations = [situation_record(SituationIn.model_validate(d)) for d in _stream_documents(session, SITUATION)]
        disputes = [
            employer_dispute_record(EmployerDisputeIn.model_validate(d))
            for d in _stream_documents(session, EMPLOYER_DISPUTE)
        ]
    except ValidationError as exc:
        raise ReferenceDataError(f"{origin}: {exc}") from exc
    situations.sort(key=lambda r: r.id)
    disputes.sort(key=lambda r: r.id)
    return InMemoryReference(
        destinations={d.code: d for d in sorted(destinations, key=lambda r: r.code)},
        third_countries={t.code: t for t in sorted(third, key=lambda r: r.code)},
        situations=situations,
        employer_disputes=disputes,
        version=version,
    )


# Beyond this many changed records since the cached snapshot (an import, say), one full rebuild is cheaper.
INCREMENTAL_LIMIT = 2_000
# Revision ids below the latest that were not visible when last read: on PostgreSQL a transaction that
# took an id earlier may commit later. They are looked for again at the next refresh (a rolled-back
# transaction leaves a gap for good, so only the most recent are kept).
_GAP_WINDOW = 1_000


def _records_from_documents(changed: dict[tuple[str, str], dict[str, Any]]) -> dict[str, list[Any]]:
    """Engine records of changed documents, by record type (in the snapshot's `with_records` names)."""
    builders = {
        SITUATION: ("situations", situation_record),
        EMPLOYER_DISPUTE: ("employer_disputes", employer_dispute_record),
        DESTINATION: ("destinations", destination_record),
        THIRD_COUNTRY: ("third_countries", third_country_record),
    }
    records: dict[str, list[Any]] = {name: [] for name, _ in builders.values()}
    for (record_type, _), document in changed.items():
        name, build = builders[record_type]
        records[name].append(build(_SCHEMAS[record_type].model_validate(document)))  # type: ignore[operator]
    return records


class ReferenceCache:
    """The scoring engine's view of the reference data: a snapshot that follows the revision log.

    Each assessment asks for the latest revision id (one indexed query). When it has moved, the records
    changed since the cached snapshot are read from the revision log and applied to a copy of the
    snapshot, updating only their index entries (`InMemoryReference.with_records`); the snapshot is
    built from scratch only the first time and after very large changes. A change takes effect for the
    next assessment in every worker without a restart.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: InMemoryReference | None = None
        self._revision_id = 0
        self._gaps: tuple[int, ...] = ()
        self.full_rebuilds = 0  # how often the snapshot was built from scratch (observability, tests)

    def snapshot(self, session: Session) -> InMemoryReference:
        """The snapshot at the database's latest revision."""
        latest = latest_revision_id(session)
        current = self._current
        if current is not None and self._revision_id == latest:
            return current
        with self._lock:
            if self._current is None or self._revision_id != latest:
                self._refresh(session, latest)
            assert self._current is not None
            return self._current

    def _refresh(self, session: Session, latest: int) -> None:
        if self._current is not None and latest > self._revision_id and self._apply_changes(session, self._current):
            return
        self._current = _snapshot(session, version_label(latest))
        self._revision_id = latest
        self._gaps = ()
        self.full_rebuilds += 1

    def _apply_changes(self, session: Session, current: InMemoryReference) -> bool:
        """Apply the revisions since the cached snapshot to it; False when a full rebuild is due."""
        since = self._revision_id
        query = select(
            ReferenceRevision.id, ReferenceRevision.record_type, ReferenceRevision.record_id, ReferenceRevision.document
        ).where(ReferenceRevision.id > since)
        if self._gaps:
            query = query.union_all(
                select(
                    ReferenceRevision.id,
                    ReferenceRevision.record_type,
                    ReferenceRevision.record_id,
                    ReferenceRevision.document,
                ).where(ReferenceRevision.id.in_(self._gaps))
            )
        rows = sorted(session.execute(query.limit(INCREMENTAL_LIMIT + 1)).all())
        if len(rows) > INCREMENTAL_LIMIT or not rows:
            return False
        # The latest document of each record changed (a record's revisions are logged in id order).
        changed: dict[tuple[str, str], dict[str, Any]] = {}
        for _, record_type, record_id, document in rows:
            changed[(record_type, record_id)] = document
        seen = {row[0] for row in rows}
        latest = max(since, rows[-1][0])
        recent = range(max(since + 1, latest - _GAP_WINDOW), latest)
        gaps = [i for i in (*self._gaps, *recent) if i not in seen and i > latest - _GAP_WINDOW]
        self._current = current.with_records(version_label(latest), **_records_from_documents(changed))
        self._revision_id = latest
        self._gaps = tuple(sorted(set(gaps)))
        return True


def documents(records: Iterable[BaseModel]) -> list[dict[str, Any]]:
    return [record_document(r) for r in records]
