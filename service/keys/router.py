"""/v1/keys: an admin manages the keys of its own tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from service.auth import require
from service.bodies import JsonRoute
from service.db import get_session
from service.keys import service
from service.keys.models import Role
from service.keys.schemas import CreatedKey, KeyCreate, KeyInfo, KeyList
from service.keys.service import Principal
from service.problems import Forbidden, InvalidInput, openapi_responses, owned_or_404
from service.tenants.models import Tenant

router = APIRouter(prefix="/v1/keys", tags=["keys"], route_class=JsonRoute)

DbSession = Annotated[Session, Depends(get_session)]
Admin = Annotated[Principal, Depends(require(Role.admin))]


@router.post(
    "",
    status_code=201,
    response_model=CreatedKey,
    summary="Create a key in your tenant",
    responses=openapi_responses(401, 403, 422),
)
def create_key(body: KeyCreate, principal: Admin, session: DbSession, response: Response) -> CreatedKey:
    """A new key with the given role, in the caller's tenant. The key is in this response only.

    Role `analyst` cannot be created here: analysts write the reference data every tenant is scored
    against, so they belong to whoever operates the deployment, who creates them on the server with
    `travelrisk keys create --tenant NAME --role analyst`."""
    if body.role == Role.analyst:
        raise Forbidden(
            "A tenant admin cannot create analyst keys: analysts change the reference data shared by every"
            " tenant, so only the operator of the deployment creates them, on the server, with"
            " `travelrisk keys create --tenant NAME --role analyst`. Ask your operator."
        )
    tenant = session.get_one(Tenant, principal.tenant_id)
    try:
        issued = service.create_key_for(session, tenant, body.role, body.holder)
    except service.InvalidHolder as exc:
        raise InvalidInput(f"holder: {exc}.", [{"field": "holder", "message": str(exc), "location": "body"}]) from exc
    session.commit()
    response.headers["Location"] = f"/v1/keys/{issued.record.id}"
    return CreatedKey(
        id=issued.record.id,
        role=body.role,
        holder=issued.record.holder,
        created_at=issued.record.created_at,
        revoked_at=None,
        key=issued.secret,
    )


@router.get("", response_model=KeyList, summary="Your tenant's keys", responses=openapi_responses(401, 403))
def list_keys(principal: Admin, session: DbSession) -> KeyList:
    """Every key of the caller's tenant, revoked ones included; never the keys themselves."""
    return KeyList(
        items=[KeyInfo.model_validate(k, from_attributes=True) for k in service.list_keys(session, principal.tenant_id)]
    )


@router.delete("/{key_id}", status_code=204, summary="Revoke a key", responses=openapi_responses(401, 403, 404))
def revoke_key(key_id: str, principal: Admin, session: DbSession, request: Request) -> Response:
    """Revokes the key at once; it stays listed with its revocation time."""
    record = owned_or_404(service.get_key(session, key_id[:32], principal.tenant_id), "key", key_id[:32])
    service.revoke(record)
    session.commit()
    request.app.state.key_cache.forget(record.id)
    return Response(status_code=204)
