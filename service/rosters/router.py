"""POST /v1/rosters, GET /v1/rosters/{id}, GET /v1/rosters/{id}/results and the CSV template."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response, StreamingResponse

from service.assessments.router import IDEMPOTENCY_KEY_HEADER, read_idempotency_key
from service.auth import bearer_key, check_role, principal_for, require
from service.db import get_session, run_db_work
from service.keys.models import Role
from service.keys.service import Principal
from service.problems import Conflict, InvalidInput, UnsupportedMediaType, openapi_responses, owned_or_404
from service.rosters import csv_format, service
from service.rosters.models import Roster
from service.rosters.schemas import RosterAccepted, RosterStatus

router = APIRouter(prefix="/v1/rosters", tags=["rosters"])

DbSession = Annotated[Session, Depends(get_session)]
Reader = Annotated[Principal, Depends(require(Role.requester, Role.reviewer, Role.admin))]
AnyRole = Annotated[Principal, Depends(require(*Role))]
_CREATORS = frozenset({Role.requester, Role.admin})
JSONL = "application/jsonl"
CSV = "text/csv"

UPLOAD_OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": IDEMPOTENCY_KEY_HEADER,
            "in": "header",
            "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
            "description": "Retrying with the same key and body returns the first roster (same id) instead of"
            " creating a second one; the same key with a different body is a 409.",
        }
    ],
    "requestBody": {
        "required": True,
        "description": f"Up to {service.MAX_TRIPS:,} trips: a JSON array of `POST /v1/assessments` bodies, or CSV"
        " (`Content-Type: text/csv`) in the columns of `GET /v1/rosters/template.csv`.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/AssessmentRequest"},
                    "minItems": 1,
                    "maxItems": service.MAX_TRIPS,
                }
            },
            CSV: {"schema": {"type": "string"}, "example": csv_format.template()},
        },
    },
    "security": [{"bearerAuth": []}],
}


@router.post(
    "",
    status_code=202,
    summary="Upload a roster of trips to be scored in the background",
    response_model=RosterAccepted,
    responses={
        202: {
            "description": "The roster is stored and queued; follow `Location` for its progress. A replayed"
            " idempotent request also has `Idempotent-Replayed: true`.",
            "headers": {"Location": {"description": "Path of the roster.", "schema": {"type": "string"}}},
        },
        **openapi_responses(401, 403, 409, 413, 415, 422, 503),
    },
    openapi_extra=UPLOAD_OPENAPI,
)
async def create_roster(http_request: Request) -> Response:
    """Stores the upload and answers at once; each valid trip becomes an ordinary assessment as it is
    scored. Invalid trips are reported by `GET /v1/rosters/{id}`, with their row (and CSV column)."""
    state = http_request.app.state
    session: Session = state.session_factory()
    try:
        principal = await principal_for(http_request, session, bearer_key(http_request))
        check_role(principal, _CREATORS)
        key = read_idempotency_key(http_request)
        media_type = http_request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type not in ("application/json", CSV) and not media_type.endswith("+json"):
            raise UnsupportedMediaType(
                "Send the roster as a JSON array (`Content-Type: application/json`) or as CSV (`text/csv`)."
            )
        body = await http_request.body()
        try:
            # Parsing tens of megabytes takes a while: off the event loop, like the database work.
            upload = await run_db_work(http_request, service.parse_upload, body, media_type)
        except service.UploadRejected as exc:
            error = {"field": exc.field, "message": str(exc), "location": "body"}
            raise InvalidInput(f"The roster cannot be read: {exc}", [error]) from None
        return await run_db_work(http_request, _create, session, principal, upload, key, state.write_lock)
    finally:
        session.close()


def _accepted(roster: Roster, *, replayed: bool = False) -> Response:
    headers = {"Location": f"/v1/rosters/{roster.id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    body = {"id": roster.id, "state": roster.state, "format": roster.format, "total": roster.total}
    return Response(orjson.dumps(body), status_code=202, headers=headers, media_type="application/json")


def _replay(roster: Roster, upload: service.Upload, key: str) -> Response:
    if roster.request_hash != upload.body_hash:
        raise Conflict(
            f"The Idempotency-Key '{key}' was already used with a different roster; use a new key for a new roster.",
            kind="idempotency-key-reused",
            title="Idempotency-Key reused",
        )
    return _accepted(roster, replayed=True)


def _create(
    session: Session, principal: Principal, upload: service.Upload, key: str | None, write_lock: Any
) -> Response:
    if key is not None:
        existing = service.find_by_idempotency_key(session, principal.tenant_id, key)
        if existing is not None:
            return _replay(existing, upload, key)
    roster = service.create(session, principal.tenant_id, upload, key)
    session.connection()
    try:
        with write_lock:
            session.commit()
    except IntegrityError:
        # A concurrent upload with the same key committed first: answer as its retry would be answered.
        session.rollback()
        if key is None:
            raise
        existing = service.find_by_idempotency_key(session, principal.tenant_id, key)
        if existing is None:
            raise
        return _replay(existing, upload, key)
    return _accepted(roster)


@router.get(
    "/template.csv",
    summary="The CSV roster template",
    response_class=Response,
    responses={
        200: {"content": {CSV: {"schema": {"type": "string"}, "example": csv_format.template()}}},
        **openapi_responses(401),
    },
)
def get_roster_template(_: AnyRole) -> Response:
    """Every column a CSV roster may have, with two example trips. Empty cells mean "not declared";
    lists are separated by `;`; a leg reads `COUNTRY[/REGION] ARRIVE DEPART [transit]`."""
    return Response(
        csv_format.template(),
        media_type=CSV,
        headers={"Content-Disposition": 'attachment; filename="roster-template.csv"'},
    )


def _owned(session: Session, principal: Principal, roster_id: str) -> Roster:
    return owned_or_404(service.get(session, principal.tenant_id, roster_id[:64]), "roster", roster_id[:64])


@router.get(
    "/{roster_id}",
    summary="A roster's progress: state, trips done, counts by band, errors",
    response_model=RosterStatus,
    responses=openapi_responses(401, 403, 404),
)
def get_roster(roster_id: str, principal: Reader, session: DbSession) -> Response:
    """Poll until `state` is `done` (or `failed`); `done` of `total` trips are processed so far."""
    roster = _owned(session, principal, roster_id)
    return Response(orjson.dumps(service.status_body(session, roster)), media_type="application/json")


def _wanted_format(request: Request, format_: str | None) -> str:
    if format_ is not None:
        return format_
    accept = request.headers.get("accept", "")
    return "csv" if CSV in accept and "json" not in accept else "jsonl"


@router.get(
    "/{roster_id}/results",
    summary="One line per trip: reference, band, probability, top factors, assessment id",
    response_class=Response,
    responses={
        200: {
            "description": "JSON lines (one `RosterResult` per line), or CSV with the same columns (top factors"
            " and errors joined with `;`). Trips processed so far, in upload order.",
            "content": {
                JSONL: {"schema": {"$ref": "#/components/schemas/RosterResult"}},
                CSV: {"schema": {"type": "string"}},
            },
        },
        **openapi_responses(401, 403, 404, 422),
    },
)
def get_roster_results(
    roster_id: str,
    principal: Reader,
    session: DbSession,
    request: Request,
    format: Annotated[
        Literal["jsonl", "csv"] | None,
        Query(description="`jsonl` or `csv`; otherwise chosen by `Accept` (`text/csv` or JSON lines)."),
    ] = None,
) -> Response:
    """The results of the trips processed so far; complete once the roster is `done`."""
    roster = _owned(session, principal, roster_id)
    session.close()
    sessions = request.app.state.session_factory
    rows = service.result_rows(sessions, roster)
    if _wanted_format(request, format) == "csv":
        return StreamingResponse(
            service.csv_results(rows),
            media_type=CSV,
            headers={"Content-Disposition": f'attachment; filename="roster-{roster.id}.csv"'},
        )
    return StreamingResponse((orjson.dumps(row) + b"\n" for row in rows), media_type=JSONL)
