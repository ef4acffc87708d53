"""/v1/employer-disputes: analysts record organisations in a dispute with a destination; any role reads them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from sqlalchemy.orm import Session

from risk_rules.reference import DisputeKind
from risk_rules.values import IsoDate
from service.auth import ANY_ROLE, require
from service.bodies import JsonRoute
from service.db import get_session, run_db_work
from service.employer_disputes import service
from service.employer_disputes.schemas import (
    CREATE_EXAMPLE,
    DISPUTE_EXAMPLE,
    HISTORY_EXAMPLE,
    PAGE_EXAMPLE,
    PATCH_EXAMPLE,
    EmployerDispute,
    EmployerDisputeCreate,
    EmployerDisputePage,
    EmployerDisputePatch,
)
from service.keys.models import Role
from service.keys.service import Principal
from service.problems import invalid_input
from service.reference import records
from service.reference.schemas import History, RevisionEntry, error_responses, example_response

router = APIRouter(prefix="/v1/employer-disputes", tags=["employer disputes"], route_class=JsonRoute)

DbSession = Annotated[Session, Depends(get_session)]
Analyst = Annotated[Principal, Depends(require(Role.analyst))]
Reader = Annotated[Principal, Depends(require(*ANY_ROLE))]
DisputeId = Annotated[str, Path(description="The employer dispute's id.")]


@router.post(
    "",
    status_code=201,
    summary="Record an employer dispute",
    response_model=EmployerDispute,
    responses={
        **example_response(
            201,
            "The employer dispute as stored; `Location` names it.",
            DISPUTE_EXAMPLE,
            headers={"Location": {"description": "Path of the employer dispute.", "schema": {"type": "string"}}},
        ),
        **error_responses(400, 401, 403, 409, 413, 415, 422),
    },
)
async def create_employer_dispute(
    body: Annotated[
        EmployerDisputeCreate,
        Body(openapi_examples={"reference_source": {"summary": "Citing a reference source", "value": CREATE_EXAMPLE}}),
    ],
    principal: Analyst,
    session: DbSession,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Records an organisation in a dispute with a destination and logs it as revision 1. It takes effect
    for the next assessment, and stored assessments of trips that have not ended whose employer it may
    concern are re-scored in the background.

    The destination must be one the service covers; every name and alias must keep some letters or digits
    once legal suffixes are set aside; `ended_on` may not be before `started_on`; a `{source, quote}`
    citation must quote its source word for word."""
    lock = request.app.state.write_lock
    actor = records.actor_of(principal)
    row = await run_db_work(
        request, records.write, session, lock, lambda: records.create(session, service.KIND, body, actor)
    )
    response.headers["Location"] = f"{service.KIND.collection}/{row.id}"
    return records.as_item(row)


@router.get(
    "",
    summary="Employer disputes, in id order",
    response_model=EmployerDisputePage,
    responses={**example_response(200, "A page of employer disputes.", PAGE_EXAMPLE), **error_responses(401, 403, 422)},
)
def list_employer_disputes(
    principal: Reader,
    session: DbSession,
    destination: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$", description="Only this destination.")] = None,
    kind: Annotated[DisputeKind | None, Query(description="Only this kind.")] = None,
    active_on: Annotated[IsoDate | None, Query(description="Only disputes active on this date.")] = None,
    name: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=300,
            description="Only disputes whose name or an alias equals this one, as employers are matched: case,"
            " accents, punctuation and legal suffixes aside.",
        ),
    ] = None,
    as_of: Annotated[
        IsoDate | None,
        Query(
            description="Show the data as it had been recorded by the end of this day (UTC): records added"
            " later are absent, records changed later show their values then."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")] = None,
) -> EmployerDisputePage:
    """Every employer dispute, shared by all tenants. Filters combine with AND; pages follow `next_cursor`."""
    filters = service.Filters(destination=destination, kind=kind, active_on=active_on, name=name)
    try:
        items, next_cursor = service.list_page(session, filters, as_of, limit, cursor)
    except records.InvalidCursor as exc:
        raise invalid_input([{"loc": ("query", "cursor"), "msg": f"{exc}: pass `next_cursor` unchanged"}]) from exc
    return EmployerDisputePage.model_validate({"items": items, "next_cursor": next_cursor})


@router.get(
    "/{dispute_id}",
    summary="One employer dispute",
    response_model=EmployerDispute,
    responses={
        **example_response(200, "The employer dispute as currently recorded.", DISPUTE_EXAMPLE),
        **error_responses(401, 403, 404),
    },
)
def get_employer_dispute(dispute_id: DisputeId, principal: Reader, session: DbSession) -> dict[str, Any]:
    """The employer dispute as currently recorded, with its revision number."""
    return records.as_item(records.get(session, service.KIND, dispute_id))


@router.patch(
    "/{dispute_id}",
    summary="Change an employer dispute",
    response_model=EmployerDispute,
    responses={
        **example_response(200, "The employer dispute after the change.", DISPUTE_EXAMPLE),
        **error_responses(400, 401, 403, 404, 409, 413, 415, 422),
    },
)
async def patch_employer_dispute(
    dispute_id: DisputeId,
    body: Annotated[
        EmployerDisputePatch,
        Body(openapi_examples={"alias": {"summary": "Another name", "value": PATCH_EXAMPLE}}),
    ],
    principal: Analyst,
    session: DbSession,
    request: Request,
) -> dict[str, Any]:
    """Merges the fields sent into the record (lists are replaced whole), checks the whole record again as
    on creation, and logs a revision with what changed. A change that changes nothing writes nothing."""
    lock = request.app.state.write_lock
    actor = records.actor_of(principal)
    changes = body.model_dump(mode="json", exclude_unset=True)
    row = await run_db_work(
        request,
        records.write,
        session,
        lock,
        lambda: records.patch(session, service.KIND, dispute_id, changes, actor),
    )
    return records.as_item(row)


@router.get(
    "/{dispute_id}/history",
    summary="Every revision of an employer dispute",
    response_model=History,
    responses={
        **example_response(200, "The revisions, oldest first.", HISTORY_EXAMPLE),
        **error_responses(401, 403, 404),
    },
)
def employer_dispute_history(dispute_id: DisputeId, principal: Reader, session: DbSession) -> History:
    """Who changed the employer dispute, when, and each field's value before and after."""
    items = records.history_items(session, service.KIND, dispute_id, principal)
    return History(id=dispute_id, items=[RevisionEntry.model_validate(item) for item in items])
