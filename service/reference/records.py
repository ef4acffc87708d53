"""What the analyst API does alike for situations and employer disputes: create, patch, list (now or as
recorded on a date), history, and the checks that need the database.

Functions add to the caller's session and never commit (one transaction per request or command). Every
write goes through `save`, which logs the revision and, in the same transaction, queues the re-scoring
of the assessments the change may touch.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.keys.service import Principal
from service.problems import Conflict, found_or_404, invalid_input
from service.reference import store
from service.reference.models import DestinationProfileRecord, ReferenceRevision
from service.reference.store import Change
from service.rescoring.service import enqueue_rescoring

Predicate = Callable[[dict[str, Any]], bool]
T = TypeVar("T")


@dataclass(frozen=True)
class RecordKind:
    """One kind of analyst-maintained record and the schemas it is read and written with."""

    record_type: str
    label: str  # as named in messages: "situation"
    model: type[Any]  # the table's mapped class
    form: type[BaseModel]  # the API's create form: every check a record must pass
    stored: type[BaseModel]  # the bundled file's schema, in which records are stored
    id_prefix: str  # of the ids the server generates: "sit" gives `sit-1a2b3c4d`
    collection: str  # the resource's path: "/v1/situations"


def actor_of(principal: Principal) -> str:
    """Who made a change through the API: the key's id, tenant and role (never the key itself)."""
    return f"key:{principal.key_id} tenant:{principal.tenant_name} role:{principal.role.value}"


def actor_shown_to(actor: str, principal: Principal) -> str:
    """The actor of a revision as `principal` may see it.

    A key of the reader's own tenant is shown as recorded; a key of another tenant as `analyst:<hash>`,
    stable for one key (so a reader can tell that two changes came from the same analyst) but naming
    neither the tenant nor the key. Changes made by the operator's commands (`cli:...`, migrations) name
    no customer and are shown as recorded.
    """
    if not actor.startswith("key:"):
        return actor
    fields = dict(part.split(":", 1) for part in actor.split() if ":" in part)
    if fields.get("tenant") == principal.tenant_name:
        return actor
    return "analyst:" + hashlib.sha256(actor.encode()).hexdigest()[:12]


def history_items(session: Session, kind: RecordKind, record_id: str, principal: Principal) -> list[dict[str, Any]]:
    """Every revision of one record, oldest first, with actors as `principal` may see them; 404 when the
    record does not exist."""
    return revision_items(history(session, kind, record_id), principal)


def revision_items(revisions: Iterable[ReferenceRevision], principal: Principal) -> list[dict[str, Any]]:
    """Revisions as a history shows them to `principal`: another tenant's actor is opaque."""
    return [
        {
            "revision": r.revision,
            "action": r.action,
            "actor": actor_shown_to(r.actor, principal),
            "changed_at": r.changed_at,
            "changes": r.changes,
        }
        for r in revisions
    ]


def end_of_day(day: dt.date) -> dt.datetime:
    """The last instant of `day` in UTC: `as_of=DAY` shows what had been recorded by the end of it."""
    return dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)


# ---------------------------------------------------------------------------------------------
# Checks that need the database


def covered_destinations(session: Session) -> list[str]:
    """Codes of the destinations the service has a risk profile for."""
    return list(session.scalars(select(DestinationProfileRecord.code).order_by(DestinationProfileRecord.code)))


def destination_error(destination: str, covered: Iterable[str], field: str = "destination") -> dict[str, Any] | None:
    """A field error when `destination` is not one the service scores, else None."""
    codes = sorted(covered)
    if destination in codes:
        return None
    return {
        "loc": ("body", field),
        "msg": f"'{destination}' is not a covered destination (covered: {', '.join(codes)})",
    }


def validate_form(kind: RecordKind, document: dict[str, Any]) -> BaseModel:
    """`document` checked as a whole with the create form; a 422 naming every invalid field otherwise."""
    try:
        return kind.form.model_validate(document)
    except ValidationError as exc:
        raise invalid_input([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


# ---------------------------------------------------------------------------------------------
# Writing


def save(session: Session, kind: RecordKind, document: dict[str, Any], actor: str) -> Change:
    """Store a checked record (in the create form's JSON) with its revision, and queue the re-scoring
    it calls for."""
    record = kind.stored.model_validate(document)
    change = store.upsert(session, kind.record_type, record, actor)
    if change.revision is not None:
        enqueue_rescoring(session, change)
    return change


def create(session: Session, kind: RecordKind, form: BaseModel, actor: str) -> Any:
    """A new record from a checked create form; 409 when its id is taken, 422 for an uncovered destination."""
    document = form.model_dump(mode="json")
    if document.get("id"):
        if session.get(kind.model, document["id"]) is not None:
            raise Conflict(
                f"A {kind.label} with id '{document['id']}' already exists; change it with PATCH, or choose"
                " another id.",
                kind="duplicate-id",
                title="Duplicate id",
            )
    else:
        document["id"] = new_id(session, kind)
    error = destination_error(document["destination"], covered_destinations(session))
    if error is not None:
        raise invalid_input([error])
    save(session, kind, document, actor)
    return session.get_one(kind.model, document["id"])


def new_id(session: Session, kind: RecordKind) -> str:
    """A fresh id such as `sit-1a2b3c4d` (drawn again in the unlikely case it is taken)."""
    while True:
        candidate = f"{kind.id_prefix}-{secrets.token_hex(4)}"
        if session.get(kind.model, candidate) is None:
            return candidate


def patch(session: Session, kind: RecordKind, record_id: str, changes: dict[str, Any], actor: str) -> Any:
    """Merge `changes` into the stored record, check the whole record again and store it.

    Nothing is written (and no revision logged) when the merge changes nothing.
    """
    row = get(session, kind, record_id)
    if "id" in changes and changes["id"] != record_id:
        raise invalid_input(
            [{"loc": ("body", "id"), "msg": "a record's id cannot be changed; create a new record instead"}]
        )
    form = validate_form(kind, {**row.document, **changes})
    error = destination_error(form.destination, covered_destinations(session))  # type: ignore[attr-defined]
    if error is not None:
        raise invalid_input([error])
    save(session, kind, form.model_dump(mode="json"), actor)
    return row


# ---------------------------------------------------------------------------------------------
# Reading


def get(session: Session, kind: RecordKind, record_id: str) -> Any:
    """The current row of one record; 404 when there is none."""
    # Ids are at most 64 characters: a longer one names no record (and is not echoed back whole).
    row = session.get(kind.model, record_id) if len(record_id) <= 64 else None
    return found_or_404(row, f"No {kind.label} '{record_id[:64]}'.")


def as_item(row: Any) -> dict[str, Any]:
    """A row as the API shows it: the record, then its revision and timestamps."""
    return {**row.document, "revision": row.revision, "created_at": row.created_at, "updated_at": row.updated_at}


def history(session: Session, kind: RecordKind, record_id: str) -> list[ReferenceRevision]:
    """Every revision of one record, oldest first; 404 when the record does not exist."""
    get(session, kind, record_id)
    return store.history(session, kind.record_type, record_id)


class InvalidCursor(ValueError):
    """A cursor that this service did not issue."""


def encode_cursor(record_id: str) -> str:
    """An opaque cursor pointing after `record_id` in id order."""
    return base64.urlsafe_b64encode(orjson.dumps([record_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The id a cursor points after."""
    try:
        (record_id,) = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(record_id, str):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise InvalidCursor("not a cursor issued by this service") from exc
    return record_id


def current_page(
    session: Session,
    kind: RecordKind,
    clauses: Sequence[ColumnElement[bool]],
    matches: Predicate | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the current records, in id order: `clauses` filter in SQL, `matches` what SQL cannot."""
    model = kind.model
    query: Select[Any] = select(model).where(*clauses).order_by(model.id)
    if cursor is not None:
        query = query.where(model.id > decode_cursor(cursor))
    if matches is None:
        rows = list(session.scalars(query.limit(limit + 1)))
    else:
        # Normalised names are not in a column: stream the rows and stop once the page is full.
        rows = []
        result = session.scalars(query.execution_options(yield_per=200))
        try:
            for row in result:
                if matches(row.document):
                    rows.append(row)
                    if len(rows) > limit:
                        break
        finally:
            result.close()
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return [as_item(row) for row in rows[:limit]], next_cursor


def page_as_of(
    session: Session, kind: RecordKind, day: dt.date, matches: Predicate, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the records as they were recorded by the end of `day`, in id order."""
    at = end_of_day(day)
    after = decode_cursor(cursor) if cursor is not None else None
    documents = sorted(
        (d for d in store.documents_as_of(session, kind.record_type, at) if after is None or d["id"] > after),
        key=lambda d: d["id"],
    )
    page: list[dict[str, Any]] = []
    for document in documents:
        if matches(document):
            page.append(document)
            if len(page) > limit:
                break
    next_cursor = encode_cursor(page[limit - 1]["id"]) if len(page) > limit else None
    page = page[:limit]
    meta = _metadata_as_of(session, kind, [d["id"] for d in page], at)
    return [{**d, **meta[d["id"]]} for d in page], next_cursor


def _metadata_as_of(session: Session, kind: RecordKind, ids: list[str], at: dt.datetime) -> dict[str, dict[str, Any]]:
    """Revision, creation and last-change time of each record as of `at`."""
    if not ids:
        return {}
    rows = session.execute(
        select(
            ReferenceRevision.record_id,
            func.max(ReferenceRevision.revision),
            func.min(ReferenceRevision.changed_at),
            func.max(ReferenceRevision.changed_at),
        )
        .where(
            ReferenceRevision.record_type == kind.record_type,
            ReferenceRevision.record_id.in_(ids),
            ReferenceRevision.changed_at <= at,
        )
        .group_by(ReferenceRevision.record_id)
    )
    return {
        record_id: {"revision": revision, "created_at": _utc(created), "updated_at": _utc(updated)}
        for record_id, revision, created, updated in rows
    }


def _utc(value: dt.datetime) -> dt.datetime:
    # Aggregates bypass the column type that makes stored timestamps aware again.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def active_on(document: dict[str, Any], day: dt.date) -> bool:
    """Whether a stored record's period includes `day` (an open end is still active)."""
    ended = document.get("ended_on")
    return document["started_on"] <= day.isoformat() and (ended is None or ended >= day.isoformat())


def active_on_clauses(model: Any, day: dt.date) -> list[ColumnElement[bool]]:
    """SQL for `active_on`, on the record table's date columns."""
    return [model.started_on <= day, (model.ended_on.is_(None)) | (model.ended_on >= day)]


# ---------------------------------------------------------------------------------------------
# Transactions


def write(session: Session, write_lock: AbstractContextManager[Any], work: Callable[[], T]) -> T:
    """Run `work` and commit, as one transaction under the process's write lock.

    The reads that decide a write (does the id exist? what does the record hold now?) happen under the
    lock too, so two writers in one process never both act on the same state. Writers in other processes
    are caught by the database's constraints: their revision numbers collide, and the loser is told to retry.
    """
    # Take a connection before the write lock, never while holding it: a lock holder waiting for the pool
    # while the pool's connections wait for the lock would be a deadlock.
    session.connection()
    try:
        with write_lock:
            result = work()
            session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            "The record was changed by another request at the same moment; read it again and retry.",
            kind="concurrent-change",
            title="Concurrent change",
        ) from None
    return result
