"""/v1/destinations: what the service covers, and the profile of each destination (any role)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from sqlalchemy.orm import Session

from service.auth import ANY_ROLE, require
from service.bodies import JsonRoute
from service.db import get_session
from service.destinations import service
from service.destinations.schemas import DESTINATION_EXAMPLE, LIST_EXAMPLE, Destination, DestinationList
from service.keys.service import Principal
from service.problems import NotFound
from service.reference.schemas import error_responses, example_response

router = APIRouter(prefix="/v1/destinations", tags=["destinations"], route_class=JsonRoute)

DbSession = Annotated[Session, Depends(get_session)]
Reader = Annotated[Principal, Depends(require(*ANY_ROLE))]


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
