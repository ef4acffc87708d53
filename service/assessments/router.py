"""POST /v1/assessments, GET /v1/assessments/{id} and GET /v1/assessments."""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from risk_rules.forms import AssessmentRequest, AssessmentResponse, Band, Status
from risk_rules.values import IsoDate, UtcDateTime
from service.assessments import service
from service.assessments.examples import (
    MINIMAL_REQUEST_EXAMPLE,
    PAGE_EXAMPLE,
    REQUEST_EXAMPLE,
    RESPONSE_EXAMPLE,
)
from service.assessments.schemas import AssessmentPage, AssessmentSummary
from service.assessments.writer import AssessmentWriter
from service.auth import bearer_key, check_role, principal_for, require
from service.bodies import JsonRoute, parse_json
from service.db import get_session
from service.keys.models import Role
from service.keys.service import Principal
from service.model.service import ScoringEngine, get_scoring_engine
from service.problems import found_or_404, invalid_cursor, invalid_input, openapi_responses
from service.settings import Settings

ROUTE_PATH = "/v1/assessments"
router = APIRouter(prefix=ROUTE_PATH, tags=["assessments"], route_class=JsonRoute)
log = logging.getLogger("travelrisk.assessments")

DbSession = Annotated[Session, Depends(get_session)]
Engine = Annotated[ScoringEngine, Depends(get_scoring_engine)]
Reader = Annotated[Principal, Depends(require(Role.requester, Role.reviewer, Role.admin))]


IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_CREATORS = frozenset({Role.requester, Role.admin})

# POST /v1/assessments is the hot path: it reads its key, header and body itself instead of through
# FastAPI's dependency injection, which cost a third of the request. The document below describes
# exactly what it reads; tests hold the two together.
CREATE_OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": IDEMPOTENCY_KEY_HEADER,
            "in": "header",
            "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
            "description": "Any unique string (e.g. a UUID) of printable ASCII. Retrying with the same key and"
            " body returns the first result (same id, 201) instead of creating a second assessment; the same"
            " key with a different body is a 409. Keys are scoped to the caller's tenant.",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/AssessmentRequest"},
                "examples": {
                    "dual_national_executive": {
                        "summary": "A Canadian executive born in China, during the 2018 extradition dispute",
                        "value": REQUEST_EXAMPLE,
                    },
                    "minimal": {"summary": "Only what is required", "value": MINIMAL_REQUEST_EXAMPLE},
                },
            }
        },
    },
    "security": [{"bearerAuth": []}],
}


@router.post(
    "",
    status_code=201,
    summary="Score a planned trip and store the result",
    response_model=AssessmentResponse,
    responses={
        201: {
            "description": "The stored assessment. `Location` names it; a replayed idempotent request also"
            " has `Idempotent-Replayed: true`.",
            "content": {"application/json": {"example": RESPONSE_EXAMPLE}},
            "headers": {"Location": {"description": "Path of the assessment.", "schema": {"type": "string"}}},
        },
        **openapi_responses(400, 401, 403, 409, 413, 415, 422, 503),
    },
    openapi_extra=CREATE_OPENAPI,
)
async def create_assessment(http_request: Request) -> Response:
    """Scores one trip and stores the request, the response and the versions that produced it; the
    assessment is committed before the 201 is sent."""
    state = http_request.app.state
    # No session of its own: the key is looked up (in a session of the look-up's own) only when it is not
    # in the worker's cache of verified keys; the writer stores the assessment.
    principal = await principal_for(http_request, None, bearer_key(http_request))
    check_role(principal, _CREATORS)
    key = read_idempotency_key(http_request)
    request = parse_request_body(http_request, await http_request.body())
    errors = service.trip_bound_errors(request, trip_bounds(state.settings))
    if errors:
        raise invalid_input(errors)
    # Scored, stored and committed by the worker's writer together with the requests waiting beside it.
    writer: AssessmentWriter = state.assessment_writer
    return await writer.submit(request, principal, key)


class _DirectRoute(Route):
    """A plain Starlette route that, like FastAPI's, names itself in the scope (the access log reads it)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is Match.FULL:
            child_scope["route"] = self
        return match, child_scope


def direct_create_route() -> Route:
    """POST /v1/assessments as a plain Starlette route, for the application to put before every other route.

    `create_assessment` reads its key, header and body itself, so FastAPI's request handling around it
    (dependency solving, its router's layers) did nothing but cost about a tenth of the request. The
    FastAPI route above stays, for the OpenAPI document: it is never reached for POST. Exceptions still
    reach the application's problem handlers.
    """
    return _DirectRoute(ROUTE_PATH, create_assessment, methods=["POST"], include_in_schema=False)


def trip_bounds(settings: Settings) -> service.TripBounds:
    """The bounds on trips this deployment scores, as of today."""
    return service.TripBounds.from_settings(
        settings.trip_earliest_date, settings.trip_years_ahead, settings.trip_max_days, dt.datetime.now(dt.UTC).date()
    )


def read_idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key header (None when absent); a 422 when it is not printable ASCII."""
    value = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if value is None or _IDEMPOTENCY_KEY.fullmatch(value):
        return value
    raise RequestValidationError(
        [
            {
                "type": "string_pattern_mismatch",
                "loc": ("header", IDEMPOTENCY_KEY_HEADER),
                "msg": "String should be 1 to 255 printable ASCII characters without spaces",
                "input": value,
            }
        ]
    )


def parse_request_body(request: Request, body: bytes) -> AssessmentRequest:
    """The body as a validated request, with FastAPI's error shapes (so problems read the same)."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type and not (content_type == "application/json" or content_type.endswith("+json")):
        # The same shape FastAPI gives for a non-JSON body, answered as 415 by the problem handler.
        raise RequestValidationError(
            [{"type": "model_attributes_type", "loc": ("body",), "msg": "not JSON", "input": body}]
        )
    if not body.strip():
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    # The one JSON reader of every route (duplicate keys, NaN, depth are refused), then the form.
    document = parse_json(body)
    try:
        return AssessmentRequest.model_validate(document)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from None


@router.get(
    "/{assessment_id}",
    summary="One stored assessment",
    response_model=AssessmentResponse,
    responses={
        200: {"content": {"application/json": {"example": RESPONSE_EXAMPLE}}},
        **openapi_responses(401, 403, 404),
    },
)
def get_assessment(assessment_id: str, principal: Reader, session: DbSession) -> Response:
    """The assessment's latest scoring, with the list of its scorings (`revisions`). The original is
    never changed; when reference data it rests on changes before the trip ends, it is scored again
    and the new scoring becomes the latest revision."""
    row = service.owned(session, principal.tenant_id, assessment_id)
    return Response(orjson.dumps(service.revision_body(session, row)), media_type="application/json")


@router.get(
    "/{assessment_id}/revisions/{revision}",
    summary="One scoring of a stored assessment",
    response_model=AssessmentResponse,
    responses={
        200: {"content": {"application/json": {"example": RESPONSE_EXAMPLE}}},
        **openapi_responses(401, 403, 404),
    },
)
def get_assessment_revision(
    assessment_id: str,
    revision: Annotated[int, Path(ge=1, le=1_000_000, description="1 is the original scoring.")],
    principal: Reader,
    session: DbSession,
) -> Response:
    """The assessment as scored at one revision (1: as originally scored)."""
    row = service.owned(session, principal.tenant_id, assessment_id)
    body = found_or_404(
        service.revision_body(session, row, revision), f"Assessment '{row.id}' has no revision {revision}."
    )
    return Response(orjson.dumps(body), media_type="application/json")


@router.get(
    "",
    summary="The tenant's assessments, newest first",
    response_model=AssessmentPage,
    responses={200: {"content": {"application/json": {"example": PAGE_EXAMPLE}}}, **openapi_responses(401, 403, 422)},
)
def list_assessments(
    principal: Reader,
    session: DbSession,
    traveler_reference: Annotated[
        str | None, Query(max_length=100, description="Only this traveller reference.")
    ] = None,
    band: Annotated[Band | None, Query(description="Only this band.")] = None,
    status: Annotated[Status | None, Query(description="Only this status.")] = None,
    trip_from: Annotated[IsoDate | None, Query(description="Only trips that end on or after this date.")] = None,
    trip_to: Annotated[IsoDate | None, Query(description="Only trips that start on or before this date.")] = None,
    created_from: Annotated[
        UtcDateTime | None,
        Query(description="Only assessments created at or after this time (ISO 8601; UTC if no offset)."),
    ] = None,
    created_to: Annotated[
        UtcDateTime | None,
        Query(description="Only assessments created at or before this time (ISO 8601; UTC if no offset)."),
    ] = None,
    changed_since: Annotated[
        UtcDateTime | None,
        Query(
            description="Only assessments created or re-scored after this time (ISO 8601; UTC if no offset):"
            " poll with the time of your previous poll to see what moved."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")] = None,
) -> AssessmentPage:
    """Only the caller's tenant. Filters combine with AND; pages follow `next_cursor`."""
    filters = service.ListFilters(
        traveler_reference=traveler_reference,
        band=band.value if band else None,
        status=status.value if status else None,
        trip_from=trip_from,
        trip_to=trip_to,
        created_from=created_from,
        created_to=created_to,
        changed_since=changed_since,
    )
    try:
        rows, next_cursor = service.list_page(session, principal.tenant_id, filters, limit, cursor)
    except service.InvalidCursor as exc:
        raise invalid_cursor(exc) from exc
    return AssessmentPage(
        items=[AssessmentSummary.model_validate(row, from_attributes=True) for row in rows],
        next_cursor=next_cursor,
    )
