"""/v1/destinations: what the service covers, and the profile of each destination (any role)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request, Response
from sqlalchemy.orm import Session

from service.auth import ANY_ROLE, require
from service.bodies import JsonRoute
from service.db import get_session, run_db_work
from service.destinations import service
from service.destinations.schemas import (
    DESTINATION_EXAMPLE,
    LIST_EXAMPLE,
    THIRD_COUNTRY_EXAMPLE,
    THIRD_COUNTRY_PUT_EXAMPLE,
    Destination,
    DestinationList,
    ThirdCountry,
    ThirdCountryPut,
)
from service.keys.models import Role
from service.keys.service import Principal
from service.problems import NotFound, found_or_404
from service.reference import records, store
from service.reference.schemas import History, RevisionEntry, error_responses, example_response

router = APIRouter(prefix="/v1/destinations", tags=["destinations"], route_class=JsonRoute)

DbSession = Annotated[Session, Depends(get_session)]
Reader = Annotated[Principal, Depends(require(*ANY_ROLE))]
Analyst = Annotated[Principal, Depends(require(Role.analyst))]
CountryCode = Annotated[str, Path(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code, e.g. KG.")]


@router.get(
    "",
    summary="The destinations covered, and third-country profiles",
    response_model=DestinationList,
    responses={**example_response(200, "Every profile, by code.", LIST_EXAMPLE), **error_responses(401, 403)},
)
def list_destinations(principal: Reader, session: DbSession) -> dict[str, Any]:
    """Every destination the service scores, with its profile; a trip with no leg in one of them is
    `out_of_scope`. `third_countries` are the transit and stay countries the rules know treaties and
    forced returns of."""
    return {"items": service.destinations(session), "third_countries": service.third_countries(session)}


@router.put(
    "/third-countries/{code}",
    summary="Record or replace a third country's profile",
    response_model=ThirdCountry,
    responses={
        **example_response(200, "The profile after the change (201 when it is new).", THIRD_COUNTRY_EXAMPLE),
        **error_responses(400, 401, 403, 413, 415, 422),
    },
)
async def put_third_country(
    code: CountryCode,
    body: Annotated[
        ThirdCountryPut,
        Body(
            openapi_examples={
                "publication": {"summary": "A return an analyst documents", "value": THIRD_COUNTRY_PUT_EXAMPLE}
            }
        ),
    ],
    principal: Analyst,
    session: DbSession,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Records a country a trip may pass through or stay in: its extradition treaties with the covered
    destinations and the forced returns to them, each citing at least one source (a bundled reference
    source with its verbatim quote, or a publication: title, url, date). The whole profile is replaced
    and logged as a revision; a profile that changes nothing writes nothing.

    It takes effect for the next assessment: legs there are assessed for travellers a destination claims,
    seeks or targets. Stored assessments of trips through the country that have not ended are re-scored
    in the background (an out-of-scope trip may become scored)."""
    lock = request.app.state.write_lock
    actor = records.actor_of(principal)
    document = body.model_dump(mode="json")
    profile, created = await run_db_work(
        request,
        records.write,
        session,
        lock,
        lambda: service.put_third_country(session, code, document, actor),
    )
    if created:
        response.status_code = 201
        response.headers["Location"] = f"/v1/destinations/third-countries/{code}"
    return profile


@router.get(
    "/third-countries/{code}",
    summary="One third country's profile",
    response_model=ThirdCountry,
    responses={**example_response(200, "The profile.", THIRD_COUNTRY_EXAMPLE), **error_responses(401, 403, 404)},
)
def get_third_country(code: CountryCode, principal: Reader, session: DbSession) -> dict[str, Any]:
    """The treaties and forced returns recorded for one third country."""
    return found_or_404(service.third_country(session, code), f"No third-country profile for '{code}'.")


@router.get(
    "/third-countries/{code}/history",
    summary="Every revision of a third country's profile",
    response_model=History,
    responses=error_responses(401, 403, 404),
)
def third_country_history(code: CountryCode, principal: Reader, session: DbSession) -> History:
    """Who changed the profile, when, and each field's value before and after."""
    revisions = store.history(session, store.THIRD_COUNTRY, code)
    if not revisions:
        raise NotFound(f"No third-country profile for '{code}'.")
    return History(
        id=code, items=[RevisionEntry.model_validate(i) for i in records.revision_items(revisions, principal)]
    )


@router.get(
    "/{code}",
    summary="One destination's profile",
    response_model=Destination,
    responses={**example_response(200, "The profile.", DESTINATION_EXAMPLE), **error_responses(401, 403, 404)},
)
def get_destination(
    code: Annotated[str, Path(min_length=2, max_length=2, description="ISO 3166-1 alpha-2 code, e.g. CN.")],
    principal: Reader,
    session: DbSession,
) -> dict[str, Any]:
    """The profile of one destination the service scores; 404 names the covered ones otherwise."""
    found = service.destination(session, code)
    if found is None:
        covered = ", ".join(d["code"] for d in service.destinations(session))
        raise NotFound(f"'{code}' is not a destination the service scores (covered: {covered}).")
    return found
