"""/v1/situations: analysts record situations between home countries and destinations; any role reads them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from sqlalchemy.orm import Session

from risk_rules.reference import SituationKind
from risk_rules.values import IsoDate
from service.auth import ANY_ROLE, require
from service.bodies import JsonRoute
from service.db import get_session, run_db_work
from service.keys.models import Role
from service.keys.service import Principal
from service.problems import invalid_input
from service.reference import records
from service.reference.schemas import History, RevisionEntry, error_responses, example_response
from service.situations import service
from service.situations.schemas import (
    CREATE_EXAMPLE,
    HISTORY_EXAMPLE,
    PAGE_EXAMPLE,
    PATCH_EXAMPLE,
    PUBLICATION_EXAMPLE,
    SITUATION_EXAMPLE,
    Situation,
    SituationCreate,
    SituationPage,
    SituationPatch,
)

router = APIRouter(prefix="/v1/situations", tags=["situations"], route_class=JsonRoute)

DbSession = Annotated[Session, Depends(get_session)]
Analyst = Annotated[Principal, Depends(require(Role.analyst))]
Reader = Annotated[Principal, Depends(require(*ANY_ROLE))]
SituationId = Annotated[str, Path(description="The situation's id.")]
CountryFilter = Annotated[str | None, Query(pattern=r"^[A-Z]{2}$", description="Only this country code.")]


@router.post(
    "",
    status_code=201,
    summary="Record a situation",
    response_model=Situation,
    responses={
        **example_response(
            201,
            "The situation as stored; `Location` names it.",
            SITUATION_EXAMPLE,
            headers={"Location": {"description": "Path of the situation.", "schema": {"type": "string"}}},
        ),
        **error_responses(400, 401, 403, 409, 413, 415, 422),
    },
)
async def create_situation(
    body: Annotated[
        SituationCreate,
        Body(
            openapi_examples={
                "reference_source": {"summary": "Citing a bundled reference source", "value": CREATE_EXAMPLE},
                "publication": {
                    "summary": "Citing a publication, with an id of one's own",
                    "value": PUBLICATION_EXAMPLE,
                },
            }
        ),
    ],
    principal: Analyst,
    session: DbSession,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Records a situation and logs it as revision 1. It takes effect for the next assessment (the
    assessment's `versions.reference_data` changes), and stored assessments of trips that have not ended
    and that it touches are re-scored in the background.

    The destination must be one the service covers; `home_country` must differ from it; `ended_on` may not
    be before `started_on`; a `{source, quote}` citation must quote its source word for word."""
    lock = request.app.state.write_lock
    actor = records.actor_of(principal)
    row = await run_db_work(
        request, records.write, session, lock, lambda: records.create(session, service.KIND, body, actor)
    )
    response.headers["Location"] = f"{service.KIND.collection}/{row.id}"
    return records.as_item(row)


@router.get(
    "",
    summary="Situations, in id order",
    response_model=SituationPage,
    responses={**example_response(200, "A page of situations.", PAGE_EXAMPLE), **error_responses(401, 403, 422)},
)
def list_situations(
    principal: Reader,
    session: DbSession,
    home_country: CountryFilter = None,
    destination: CountryFilter = None,
    kind: Annotated[SituationKind | None, Query(description="Only this kind.")] = None,
    active_on: Annotated[IsoDate | None, Query(description="Only situations active on this date.")] = None,
    as_of: Annotated[
        IsoDate | None,
        Query(
            description="Show the data as it had been recorded by the end of this day (UTC): records added"
            " later are absent, records changed later show their values then."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")] = None,
) -> SituationPage:
    """Every situation, shared by all tenants. Filters combine with AND; pages follow `next_cursor`."""
    filters = service.Filters(home_country=home_country, destination=destination, kind=kind, active_on=active_on)
    try:
        items, next_cursor = service.list_page(session, filters, as_of, limit, cursor)
    except records.InvalidCursor as exc:
        raise invalid_input([{"loc": ("query", "cursor"), "msg": f"{exc}: pass `next_cursor` unchanged"}]) from exc
    return SituationPage.model_validate({"items": items, "next_cursor": next_cursor})


@router.get(
    "/{situation_id}",
    summary="One situation",
    response_model=Situation,
    responses={
        **example_response(200, "The situation as currently recorded.", SITUATION_EXAMPLE),
        **error_responses(401, 403, 404),
    },
)
def get_situation(situation_id: SituationId, principal: Reader, session: DbSession) -> dict[str, Any]:
    """The situation as currently recorded, with its revision number."""
    return records.as_item(records.get(session, service.KIND, situation_id))


@router.patch(
    "/{situation_id}",
    summary="Change a situation",
    response_model=Situation,
    responses={
        **example_response(200, "The situation after the change.", SITUATION_EXAMPLE),
        **error_responses(400, 401, 403, 404, 409, 413, 415, 422),
    },
)
async def patch_situation(
    situation_id: SituationId,
    body: Annotated[
        SituationPatch, Body(openapi_examples={"reopen": {"summary": "Still active", "value": PATCH_EXAMPLE}})
    ],
    principal: Analyst,
    session: DbSession,
    request: Request,
) -> dict[str, Any]:
    """Merges the fields sent into the record, checks the whole record again as on creation, and logs a
    revision with what changed. A change that changes nothing writes nothing. Like a creation, it takes
    effect for the next assessment and re-scores the stored ones it touches."""
    lock = request.app.state.write_lock
    actor = records.actor_of(principal)
    changes = body.model_dump(mode="json", exclude_unset=True)
    row = await run_db_work(
        request,
        records.write,
        session,
        lock,
        lambda: records.patch(session, service.KIND, situation_id, changes, actor),
    )
    return records.as_item(row)


@router.get(
    "/{situation_id}/history",
    summary="Every revision of a situation",
    response_model=History,
    responses={
        **example_response(200, "The revisions, oldest first.", HISTORY_EXAMPLE),
        **error_responses(401, 403, 404),
    },
)
def situation_history(situation_id: SituationId, principal: Reader, session: DbSession) -> History:
    """Who changed the situation, when, and each field's value before and after."""
    items = records.history_items(session, service.KIND, situation_id, principal)
    return History(id=situation_id, items=[RevisionEntry.model_validate(item) for item in items])
