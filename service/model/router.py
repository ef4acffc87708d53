"""GET /v1/factors and GET /v1/model: what the active model is and what each factor weighs."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends
from starlette.responses import Response

from service.auth import ANY_ROLE, require
from service.bodies import JsonRoute
from service.keys.service import Principal
from service.model.schemas import FactorList, ModelCard
from service.model.service import ScoringEngine, get_scoring_engine
from service.problems import openapi_responses

router = APIRouter(prefix="/v1", tags=["model"], route_class=JsonRoute)

Engine = Annotated[ScoringEngine, Depends(get_scoring_engine)]
AnyRole = Annotated[Principal, Depends(require(*ANY_ROLE))]


def _json(document: object) -> Response:
    return Response(orjson.dumps(document), media_type="application/json")


@router.get(
    "/factors",
    summary="Every factor the rules can fire",
    response_model=FactorList,
    responses=openapi_responses(401, 403, 503),
)
def list_factors(_: AnyRole, engine: Engine) -> Response:
    """Each factor's id, title, description, evidence (source id and quote), coefficient (log-odds),
    odds multiplier and its posterior interval, the prior the sources give it and how many cases it fired in,
    for the active model."""
    assessor = engine.assessor()
    # The engine's documents are returned as they are; `FactorList` documents their shape.
    return _json(
        {"items": assessor.factors(), "model_version": assessor.model.version, "rules_version": assessor.rules.version}
    )


@router.get(
    "/model",
    summary="The active model's card",
    response_model=ModelCard,
    responses=openapi_responses(401, 403, 503),
)
def model_card(_: AnyRole, engine: Engine) -> Response:
    """The active model's version, training date, the data it was fitted on, its validation on held-out
    events and a temporal backtest (each against the checklist of fired factors), priors, intercepts and
    per-factor coefficients."""
    return _json(engine.assessor().model_card())
