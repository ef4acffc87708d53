"""Reading and writing reference data: upserts with revisions, import/export, as-of views, and the
snapshot the scoring engine reads.

Functions here add to the caller's session and never commit: one transaction per request or command.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from risk_rules.reference import (
    DestinationIn,
    EmployerDisputeIn,
    InMemoryReference,
    ReferenceSetIn,
    SituationIn,
    ThirdCountryIn,
    reference_from_document,
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


def reference_version(session: Session) -> str:
    """The reference data's version: the id of its latest revision.

    Every assessment asks this, so it is one primary-key look-up sent as plain SQL, skipping the
    statement compilation an ORM query would cost on each call.
    """
    latest = session.connection().exec_driver_sql("SELECT max(id) FROM reference_revisions").scalar()
    return f"ref-db-{latest or 0}"


def _snapshot(session: Session, version: str) -> InMemoryReference:
    document = export_reference_set(session)
    return reference_from_document(document, origin="reference data in the database", version=version)


class ReferenceCache:
    """The scoring engine's view of the reference data: a snapshot rebuilt when the version moves.

    Each assessment asks for the current version (one indexed query); the snapshot itself, with its
    look-up indexes, is rebuilt only after a change, so a change takes effect for the next assessment in
    every worker without a restart.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: InMemoryReference | None = None

    def snapshot(self, session: Session) -> InMemoryReference:
        version = reference_version(session)
        current = self._current
        if current is not None and current.version == version:
            return current
        with self._lock:
            if self._current is None or self._current.version != version:
                self._current = _snapshot(session, version)
            return self._current


def documents(records: Iterable[BaseModel]) -> list[dict[str, Any]]:
    return [record_document(r) for r in records]
