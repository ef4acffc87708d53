"""GET/PUT /v1/policy and GET /v1/policy/history: the tenant's review policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.artifact import BandThresholds as ModelBands
from service.auth import ANY_ROLE, require
from service.bodies import JsonRoute
from service.db import get_session
from service.keys.models import Role
from service.keys.service import Principal
from service.model.service import ScoringEngine, get_scoring_engine
from service.policy import service
from service.policy.schemas import BandThresholds, PolicyHistory, PolicyIn, PolicyOut, Thresholds
from service.problems import Conflict, openapi_responses

router = APIRouter(prefix="/v1/policy", tags=["policy"], route_class=JsonRoute)

DbSession = Annotated[Session, Depends(get_session)]
Engine = Annotated[ScoringEngine, Depends(get_scoring_engine)]
Reader = Annotated[Principal, Depends(require(*ANY_ROLE))]
Admin = Annotated[Principal, Depends(require(Role.admin))]


def policy_out(policy: service.Policy, model: ModelBands) -> PolicyOut:
    """The API form of one policy version."""
    effective = service.effective_thresholds(policy, model)
    return PolicyOut(
        version=policy.version,
        review_bands=list(policy.review_bands),  # type: ignore[arg-type]
        severe_approvals=policy.severe_approvals,
        thresholds=Thresholds(**policy.thresholds) if policy.thresholds else None,
        effective_thresholds=BandThresholds(elevated=effective.elevated, high=effective.high, severe=effective.severe),
        model_thresholds=BandThresholds(elevated=model.elevated, high=model.high, severe=model.severe),
        created_at=policy.created_at,
        changed_by_key=policy.changed_by_key,
        changed_by_holder=policy.changed_by_holder,
    )


@router.get("", response_model=PolicyOut, summary="Your tenant's review policy", responses=openapi_responses(401, 503))
def get_policy(principal: Reader, session: DbSession, engine: Engine) -> PolicyOut:
    """The policy in force: version 0 is the default (`high` and `severe` need one approval; the model's
    thresholds)."""
    return policy_out(service.current(session, principal.tenant_id), engine.assessor().model.bands)


@router.put(
    "",
    response_model=PolicyOut,
    summary="Change your tenant's review policy",
    responses=openapi_responses(401, 403, 409, 422, 503),
)
def put_policy(body: PolicyIn, principal: Admin, session: DbSession, engine: Engine) -> PolicyOut:
    """Replaces the policy with a new version (a body equal to the policy in force changes nothing).

    It applies to assessments scored or re-scored from now on; stored assessments keep the version they
    were judged under. `thresholds` may only be lower than the model's (stricter): a looser one is a 422
    saying which and why."""
    model = engine.assessor().model.bands
    try:
        policy, changed = service.set_policy(session, principal, body, model)
        if changed:
            session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(
            "The policy was changed by someone else at the same moment; read it again and repeat your change.",
            kind="policy-changed",
            title="Policy changed concurrently",
        ) from exc
    return policy_out(policy, model)


@router.get(
    "/history",
    response_model=PolicyHistory,
    summary="Every version of your tenant's review policy",
    responses=openapi_responses(401, 503),
)
def policy_history(principal: Reader, session: DbSession, engine: Engine) -> PolicyHistory:
    """Oldest first, from version 0 (the default) to the policy in force, with who set each and when."""
    model = engine.assessor().model.bands
    return PolicyHistory(items=[policy_out(p, model) for p in service.history(session, principal.tenant_id)])
