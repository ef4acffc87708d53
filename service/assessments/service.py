"""Storing, finding and listing assessments. Functions here add to the session; handlers commit."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Select, and_, func, or_, select, union_all
from sqlalchemy import insert as sql_insert
from sqlalchemy.orm import Session, load_only

from risk_rules.forms import AssessmentRequest
from risk_rules.values import to_utc
from service import compact
from service.assessments.models import Assessment
from service.db import utcnow
from service.problems import owned_or_404
from service.webhooks import service as webhooks


def new_id() -> str:
    """A UUIDv7-style id: time-ordered, so new rows land at the end of the primary-key index."""
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def request_document(request: AssessmentRequest) -> dict[str, Any]:
    """The validated request as JSON-ready data, defaults filled in: what is stored and hashed."""
    return request.model_dump(mode="json")


def request_hash(document: dict[str, Any]) -> str:
    """SHA-256 of a request document's canonical JSON: equal for bodies that differ only in layout or key
    order."""
    canonical = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def timestamp(value: dt.datetime) -> str:
    """ISO 8601 in UTC with a `Z`, as stored in the response body."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def destinations_of(request: AssessmentRequest) -> list[str]:
    """The countries of the trip's legs, in itinerary order, each once."""
    return list(dict.fromkeys(leg.country for leg in request.trip.legs))


def trip_span(start: dt.date, end: dt.date) -> int:
    """The trip's length class: the smallest k such that the trip lasts at most 2**k days (1 day: 0)."""
    return max((end - start).days, 0).bit_length()


# The largest class a stored trip can have: trips last at most 36,600 days (TRAVELRISK_TRIP_MAX_DAYS).
LARGEST_TRIP_SPAN = 16
PERIOD_DAYS = 8
_EPOCH = dt.date(1970, 1, 1)


def created_period(created_at: dt.datetime) -> int:
    """The 8-day period an instant falls in: days from 1970-01-01 to its UTC day, divided by 8 (short
    enough that a period of a busy tenant holds some 20,000 assessments)."""
    return (created_at.astimezone(dt.UTC).date() - _EPOCH).days // PERIOD_DAYS


def new_assessment(
    *,
    tenant_id: str,
    request: AssessmentRequest,
    document: dict[str, Any],
    result: dict[str, Any],
    idempotency_key: str | None,
    body_hash: str,
    requested_by_key: str | None = None,
    requested_by_holder: str | None = None,
) -> dict[str, Any]:
    """The column values (with the full response body) of a freshly scored request.

    `result` is the engine's response body without id and time (`Assessor.assess_body`), judged under the
    tenant's policy (`service.policy.service.judge`), whose `review` it takes the state from.
    """
    assessment_id = new_id()
    created_at = utcnow()
    response: dict[str, Any] = {"id": assessment_id, "created_at": timestamp(created_at), **result}
    review = result["review"]
    response["review"] = {**review, "policy_version": review.get("policy_version", 0), "since": timestamp(created_at)}
    score = result["score"]
    versions = result["versions"]
    return {
        "id": assessment_id,
        "tenant_id": tenant_id,
        "traveler_reference": request.traveler.reference,
        "status": result["status"],
        "band": score["band"] if score else None,
        "probability": score["probability"] if score else None,
        "trip_start": request.trip.start,
        "trip_end": request.trip.end,
        "trip_span": trip_span(request.trip.start, request.trip.end),
        "request": document,
        "response": response,
        "model_version": versions["model"],
        "rules_version": versions["rules"],
        "reference_data_version": versions["reference_data"],
        "idempotency_key": idempotency_key,
        "request_hash": body_hash,
        "created_at": created_at,
        "created_period": created_period(created_at),
        "current_revision": 1,
        "changed_at": created_at,
        "requested_by_key": requested_by_key,
        "requested_by_holder": requested_by_holder,
        "policy_version": result["review"].get("policy_version", 0),
        "review_state": result["review"]["state"],
        "review_state_at": created_at,
        "destinations": " ".join(destinations_of(request)),
        **top_factor(result),
        "row_version": 1,
    }


def top_factor(body: dict[str, Any]) -> dict[str, str | None]:
    """The column values naming a response's largest factor (none when no factor fired)."""
    factors = body.get("factors") or []
    if not factors:
        return {"top_factor_id": None, "top_factor_title": None}
    return {"top_factor_id": factors[0]["id"], "top_factor_title": factors[0]["title"][:300]}


@dataclass(frozen=True, slots=True)
class TripBounds:
    """The dates a trip may have in this deployment (from settings), and its longest length in days."""

    earliest: dt.date
    latest: dt.date
    max_days: int

    @classmethod
    def from_settings(cls, earliest: dt.date, years_ahead: int, max_days: int, today: dt.date) -> TripBounds:
        """Bounds whose latest day is `years_ahead` years after `today` (29 February falls back a day)."""
        year = min(today.year + years_ahead, dt.MAXYEAR)
        try:
            latest = today.replace(year=year)
        except ValueError:
            latest = today.replace(year=year, day=28)
        return cls(earliest=earliest, latest=latest, max_days=max_days)


def trip_bound_errors(request: AssessmentRequest, bounds: TripBounds) -> list[dict[str, Any]]:
    """Errors (in Pydantic's shape, located in the body) for legs outside the bounds and a trip too long.

    These depend on the deployment's settings and on today, so they are checked here rather than in the
    request form, which the CLI and training share (training reads incidents back to 1929).
    """
    errors: list[dict[str, Any]] = []
    for index, leg in enumerate(request.trip.legs):
        if leg.arrive < bounds.earliest:
            errors.append(
                {
                    "loc": ("body", "trip", "legs", index, "arrive"),
                    "msg": f"arrive ({leg.arrive}) is before {bounds.earliest}, the earliest date this service"
                    " scores: the incident history its model rests on starts then",
                }
            )
        if leg.depart > bounds.latest:
            errors.append(
                {
                    "loc": ("body", "trip", "legs", index, "depart"),
                    "msg": f"depart ({leg.depart}) is after {bounds.latest}, the latest date this service"
                    " scores: plan trips at most that far ahead",
                }
            )
    days = (request.trip.end - request.trip.start).days + 1
    if days > bounds.max_days:
        errors.append(
            {
                "loc": ("body", "trip", "legs"),
                "msg": f"the trip lasts {days} days ({request.trip.start} to {request.trip.end}), longer than"
                f" the {bounds.max_days} days this service scores: split it into separate trips",
            }
        )
    return errors


_INSERT = sql_insert(Assessment.__table__)


def stored_row(values: dict[str, Any], response_json: bytes | None = None) -> dict[str, Any]:
    """The row stored for `values` (of `new_assessment`): the same, with the request and response packed
    (compressed with the shipped dictionary, see service/compact.py). `response_json`, the response
    already serialised to answer with, is packed as it is rather than serialised a second time.

    Every insert goes through here. A row already packed is returned as it is, so a caller may pack ahead
    (outside a write lock, say) and hand the result to `insert` or `insert_many`.
    """
    if isinstance(values["response"], bytes):
        return values
    response = compact.pack(values["response"]) if response_json is None else compact.pack_json(response_json)
    return {**values, "request": compact.pack(values["request"]), "response": response}


def insert(session: Session, values: dict[str, Any]) -> None:
    """Add one assessment (values of `new_assessment`, or its `stored_row`) to the session's transaction
    (a single INSERT; the caller commits), with its `assessment.created` webhook event in the same
    transaction."""
    # A Core insert on the session's connection (same transaction): the row is written once and never
    # loaded back, so the ORM's unit of work would only add cost.
    session.connection().execute(_INSERT, stored_row(values))
    webhooks.emit(session, values["tenant_id"], "assessment.created", webhooks.assessment_data(values))


def insert_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Add many assessments (values of `new_assessment`, or their `stored_row`) to the session's
    transaction in one statement; the rows are those `insert` writes, one per trip, each with its
    `assessment.created` event."""
    if rows:
        session.connection().execute(_INSERT, [stored_row(r) for r in rows])
        webhooks.emit_all(
            session,
            [webhooks.PendingEvent(r["tenant_id"], "assessment.created", webhooks.assessment_data(r)) for r in rows],
        )


def get(session: Session, tenant_id: str, assessment_id: str) -> Assessment | None:
    """The tenant's assessment with this id; another tenant's is not found."""
    return session.scalar(select(Assessment).where(Assessment.id == assessment_id, Assessment.tenant_id == tenant_id))


def owned(session: Session, tenant_id: str, assessment_id: str) -> Assessment:
    """The tenant's assessment; another tenant's (or none) is a 404."""
    return owned_or_404(get(session, tenant_id, assessment_id[:64]), "assessment", assessment_id[:64])


def find_by_idempotency_key(session: Session, tenant_id: str, key: str) -> Assessment | None:
    """The tenant's assessment created with this Idempotency-Key, if any."""
    return session.scalar(
        select(Assessment).where(Assessment.tenant_id == tenant_id, Assessment.idempotency_key == key)
    )


# ---------------------------------------------------------------------------------------------
# Listing


class InvalidCursor(ValueError):
    """A cursor that this service did not issue."""


@dataclass(frozen=True, slots=True)
class ListFilters:
    """Filters of GET /v1/assessments; None means "any"."""

    traveler_reference: str | None = None
    band: str | None = None
    status: str | None = None
    trip_from: dt.date | None = None
    trip_to: dt.date | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    changed_since: dt.datetime | None = None


def encode_cursor(row: Assessment) -> str:
    """An opaque cursor pointing after `row` in newest-first order."""
    raw = orjson.dumps([timestamp(row.created_at), row.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """The (created_at, id) position a cursor points after."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, assessment_id = orjson.loads(raw)
        position = dt.datetime.fromisoformat(created)
        if position.tzinfo is None or not isinstance(assessment_id, str):
            raise ValueError
        # Compared with UTC columns: an instant outside the years 1-9999 in UTC is no position at all.
        position = to_utc(position)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise InvalidCursor("not a cursor issued by this service") from exc
    return position, assessment_id


_SUMMARY_COLUMNS = (
    Assessment.id,
    Assessment.created_at,
    Assessment.status,
    Assessment.band,
    Assessment.probability,
    Assessment.traveler_reference,
    Assessment.trip_start,
    Assessment.trip_end,
    Assessment.model_version,
    Assessment.current_revision,
    Assessment.changed_at,
    Assessment.review_state,
    Assessment.row_version,
)


def list_page(
    session: Session, tenant_id: str, filters: ListFilters, limit: int, cursor: str | None
) -> tuple[list[Assessment], str | None]:
    """One page of the tenant's assessments, newest first, and the cursor of the next page (or None)."""
    rows: list[Assessment] = []
    for query in list_queries(session, tenant_id, filters, limit, cursor, found=rows):
        rows += session.scalars(query.limit(limit + 1 - len(rows)))
        if len(rows) > limit:
            return rows[:limit], encode_cursor(rows[limit - 1])
    return rows, None


def list_queries(
    session: Session,
    tenant_id: str,
    filters: ListFilters,
    limit: int,
    cursor: str | None,
    found: Sequence[object] = (),
) -> Iterator[Select[tuple[Assessment]]]:
    """The queries of one page, to run in turn until `limit` + 1 rows (one more, to know whether another
    page follows) are found: each query's rows all come after the previous query's in the list's order.
    `found` holds the rows the caller has found so far (it guides how much the next query reads).

    The list is read in its order (created_at, id) from an index that starts with the tenant and any
    equality filter, and stops after a page. Two filters are read differently:

    - `changed_since`: an assessment created after that time has changed since, so those come first, read
      in order; only when they do not fill the page (a poll: few changes) are the older assessments
      re-scored since then read, from the `changed_at` index (not by passing the whole history in order).
    - A window of trip dates (`trip_to`, with or without `trip_from`): the trips overlapping a window months
      ago were created long before today, so reading newest first would pass every assessment created
      since; they are found from their dates instead, newest creation periods first (`trip_window_ids`).
    """
    conditions = [Assessment.tenant_id == tenant_id]
    if filters.traveler_reference is not None:
        conditions.append(Assessment.traveler_reference == filters.traveler_reference)
    if filters.band is not None:
        conditions.append(Assessment.band == filters.band)
    if filters.status is not None:
        conditions.append(Assessment.status == filters.status)
    if filters.created_from is not None:
        conditions.append(Assessment.created_at >= filters.created_from)
    if filters.created_to is not None:
        conditions.append(Assessment.created_at <= filters.created_to)
    if filters.changed_since is not None:
        conditions.append(Assessment.changed_at > filters.changed_since)
    newest: dt.datetime | None = filters.created_to
    if cursor is not None:
        created, last_id = decode_cursor(cursor)
        newest = created if newest is None else min(newest, created)
        conditions.append(
            or_(
                Assessment.created_at < created,
                and_(Assessment.created_at == created, Assessment.id < last_id),
            )
        )
    # Trip dates select trips that overlap [trip_from, trip_to]. With `trip_to`, they are read by their dates
    # (trips that had started by a day months ago were created long before), except for a traveller, whose
    # few assessments their index finds faster. `trip_from` alone is read in the list's order: the trips
    # still running on a day are mostly among the latest created.
    by_window = filters.trip_to is not None and filters.traveler_reference is None
    if not by_window:
        if filters.trip_from is not None:
            conditions.append(Assessment.trip_end >= filters.trip_from)
        if filters.trip_to is not None:
            conditions.append(Assessment.trip_start <= filters.trip_to)
    parts = [conditions]
    if filters.changed_since is not None:
        parts = [
            [*conditions, Assessment.created_at > filters.changed_since],
            [*conditions, Assessment.created_at <= filters.changed_since],
        ]
    page = (
        select(Assessment)
        .options(load_only(*_SUMMARY_COLUMNS))
        .order_by(Assessment.created_at.desc(), Assessment.id.desc())
        .limit(limit + 1)
    )
    if not by_window:
        yield page.where(*parts[0])
        if len(parts) > 1:
            # SQLite's planner, without the distribution of `changed_at`, would rather read the list's order
            # than sort a range: reading the whole history when few assessments changed.
            yield page.where(*parts[1]).with_hint(
                Assessment, "INDEXED BY ix_assessments_tenant_changed_created", "sqlite"
            )
        return
    assert filters.trip_to is not None  # for the type checker
    periods = _period_range(session, tenant_id, filters.created_from, newest)
    if periods is None:
        return
    trip_from = filters.trip_from or dt.date.min
    for part in parts:
        yield from _trip_window_pages(session, page, part, trip_from, filters.trip_to, periods, limit, found)


def _trip_window_pages(
    session: Session,
    page: Select[tuple[Assessment]],
    conditions: list[Any],
    trip_from: dt.date,
    trip_to: dt.date,
    periods: tuple[int, int],
    limit: int,
    found: Sequence[object],
) -> Iterator[Select[tuple[Assessment]]]:
    """The page queries of a window of trip dates, each reading a run of creation periods, newest first,
    skipping the periods without a match.

    Each statement costs about the same whatever it reads (11 index ranges per period: a millisecond or
    two to plan on PostgreSQL), so the periods without a match are passed in as few statements as can be,
    and sparse matches are read several periods at a time:

    - Trips are assessed before they start, as a rule, so a window's trips were created by its last day.
      The first look is one probe of every period after that day's; when it finds nothing (the usual
      case) those periods are skipped in one statement. When it finds a match (trips assessed after they
      started), the range is halved until its newest period with a match is left.
    - Periods are then read newest first: one (two after that first look), then, while the page is not
      full, as many as the last read's yield says the rest of the page needs (up to `_MOST_PERIODS_READ`):
      a window's trips were created in a run of periods, and a filter (a band, say) leaves few in each.
    - After a read without rows, ever wider ranges of older periods are probed while nothing is found,
      and a range with a match is halved down to its newest period with a match, which is read next.
    """
    oldest, top = periods
    guess = created_period(dt.datetime.combine(trip_to, dt.time(), dt.UTC))

    def matches(first: int, last: int) -> bool:
        if first > guess:
            probe = assessed_late(conditions, trip_from, trip_to, (first, last))
        else:
            probe = _trip_window(conditions, trip_from, trip_to, (first, last)).select()
        return session.execute(probe.limit(1)).first() is not None

    def newest_match(first: int, last: int) -> int:
        """The newest period with a match in [first, last], which has one."""
        while first < last:
            middle = (first + last + 1) // 2
            if matches(middle, last):
                first = middle
            else:
                last = middle - 1
        return last

    reading = 1  # periods the next read takes; 0 while looking for a period with a match
    if guess < top:
        if matches(guess + 1, top):
            top = newest_match(guess + 1, top)
        else:
            # The window's last day may fall early in its period, which then holds few of its trips (those
            # assessed within days of starting): the period before is read with it.
            top, reading = guess, 2
    probing = 2  # periods the next probe takes
    while top >= oldest:
        if reading:
            first = max(oldest, top - reading + 1)
            before = len(found)
            ids = trip_window_ids(conditions, trip_from, trip_to, (first, top), limit)
            yield page.where(Assessment.id.in_(ids))
            top = first - 1
            gained, wanted = len(found) - before, limit + 1 - len(found)
            # As many periods as the last read's yield says the rest of the page needs (a band filter
            # leaves few matches in each period, and each read sorts all of its periods' matches).
            reading = min(-(-wanted * reading // gained), _MOST_PERIODS_READ) if gained else 0
            probing = 2
            continue
        first = max(oldest, top - probing + 1)
        if matches(first, top):
            top = newest_match(first, top)
            reading = 1
        else:
            top = first - 1
            probing *= 2


# Reading more periods at once sorts more of a dense window's matches than the page needs.
_MOST_PERIODS_READ = 4


def assessed_late(conditions: list[Any], trip_from: dt.date, trip_to: dt.date, periods: tuple[int, int]) -> Any:
    """The ids of assessments meeting `conditions`, created in `periods` (first, last), all after
    `trip_to`'s, whose trips overlap [trip_from, trip_to]: trips assessed after they had started.

    Such rows are few, so one index scan (every period and class, start dates up to `trip_to`) finds them
    without the per-class ranges of `trip_window_ids`, in a statement that plans in a fraction of the time.
    """
    return select(Assessment.id).where(
        *conditions,
        Assessment.created_period.in_(range(periods[0], periods[1] + 1)),
        Assessment.trip_span.in_(range(LARGEST_TRIP_SPAN + 1)),
        Assessment.trip_start <= trip_to,
        Assessment.trip_end >= trip_from,
    )


def _period_range(
    session: Session, tenant_id: str, oldest: dt.datetime | None, newest: dt.datetime | None
) -> tuple[int, int] | None:
    """The first and last creation periods of the tenant's assessments (within the bounds), or None."""
    period = Assessment.created_period
    first, last = session.execute(
        select(
            select(func.min(period)).where(Assessment.tenant_id == tenant_id).scalar_subquery(),
            select(func.max(period)).where(Assessment.tenant_id == tenant_id).scalar_subquery(),
        )
    ).one()
    if first is None or last is None:
        return None
    if oldest is not None:
        first = max(first, created_period(oldest))
    if newest is not None:
        last = min(last, created_period(newest))
    return (first, last) if first <= last else None


def trip_window_ids(
    conditions: list[Any], trip_from: dt.date, trip_to: dt.date, periods: tuple[int, int], limit: int
) -> Select[Any]:
    """The ids of the first `limit` + 1 assessments, newest first, created in the creation periods
    `periods` (first, last) and meeting `conditions`, whose trips overlap [trip_from, trip_to].

    A trip overlaps the window when it ends on or after `trip_from` and starts on or before `trip_to`:
    neither bound alone narrows a window in the middle of the stored history much. A trip of length class
    k (`trip_span`) lasts at most 2**k days, so it also starts on or after `trip_from` - (2**k - 1): per
    creation period and class, the overlapping trips are one range of start dates in
    `ix_assessments_tenant_trip_window`, read from the index alone (it holds the dates, the list's order,
    band and status), then sorted.
    """
    window = _trip_window(conditions, trip_from, trip_to, periods)
    return select(window.c.id).order_by(window.c.created_at.desc(), window.c.id.desc()).limit(limit + 1)


def _trip_window(conditions: list[Any], trip_from: dt.date, trip_to: dt.date, periods: tuple[int, int]) -> Any:
    """(id, created_at) of the assessments of `trip_window_ids`, unordered: one index range per period and
    length class, the longest classes sharing one."""
    shared = (  # built once, not once per class
        *conditions,
        # Each period by itself (IN, not BETWEEN): equal to one, the index continues with the class.
        Assessment.created_period.in_(range(periods[0], periods[1] + 1)),
        Assessment.trip_start <= trip_to,
        Assessment.trip_end >= trip_from,
    )
    arms = []
    for span, of_span in enumerate(_OF_SPAN):
        arms.append(_WINDOW_COLUMNS.where(*shared, of_span, Assessment.trip_start >= _earliest_start(trip_from, span)))
    # Trips longer than 2**(_LONG_TRIP_SPAN - 1) days (postings of years) are few: one range reads them all
    # in a period, and each class less is a range less for the database to plan in every statement.
    arms.append(
        _WINDOW_COLUMNS.where(
            *shared,
            Assessment.trip_span >= _LONG_TRIP_SPAN,
            Assessment.trip_start >= _earliest_start(trip_from, LARGEST_TRIP_SPAN),
        )
    )
    return union_all(*arms).subquery("trip_window")


def _earliest_start(trip_from: dt.date, span: int) -> dt.date:
    """The earliest start of a trip of length class `span` that is still running on `trip_from`."""
    ordinal = trip_from.toordinal() - (2**span - 1)
    return dt.date.fromordinal(ordinal) if ordinal >= 1 else dt.date.min


# Classes from this one up share one index range (2**9 = 512 days: the default longest trip, 730 days, is in
# class 10).
_LONG_TRIP_SPAN = 10
_WINDOW_COLUMNS = select(Assessment.id, Assessment.created_at)
_OF_SPAN = tuple(Assessment.trip_span == span for span in range(_LONG_TRIP_SPAN))


def revision_body(session: Session, row: Assessment, revision: int | None = None) -> dict[str, Any] | None:
    """The assessment's response at `revision` (default: the latest) with its list of revisions."""
    from service.rescoring.service import revisions_of

    later = revisions_of(session, row)
    history = [
        {
            "revision": 1,
            "created_at": row.response["created_at"],
            "reason": "scored",
            "versions": row.response["versions"],
        }
    ] + [
        {
            "revision": r.revision,
            "created_at": r.response.get("revised_at") or timestamp(r.created_at),
            "reason": r.reason,
            "versions": r.response["versions"],
        }
        for r in later
    ]
    wanted = row.current_revision if revision is None else revision
    if wanted == 1:
        # The original scoring has no re-scoring time or reason; they are there as null, as documented.
        body = {**row.response, "revision": 1, "revised_at": None, "revision_reason": None}
    else:
        found = next((r for r in later if r.revision == wanted), None)
        if found is None:
            return None
        body = dict(found.response)
    body["revisions"] = history
    if wanted == row.current_revision:
        # The review moves on after scoring (decisions, re-opens): the current revision shows where it is.
        body["review"] = current_review(row)
    return body


def current_review(row: Assessment) -> dict[str, Any]:
    """The `review` member of the assessment's current revision: its state now."""
    return {
        "required": row.review_state != "not_required",
        "state": row.review_state,
        "policy_version": row.policy_version,
        "since": timestamp(row.review_state_at) if row.review_state_at else None,
    }
