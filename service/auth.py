"""Bearer authentication and role checks, as FastAPI dependencies.

No key or an unknown one is 401; a known key whose role may not do something is 403. Objects of another
tenant are never looked up outside the caller's tenant, so they answer 404 (see the resource services).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from service.db import get_session, run_db_work
from service.keys import service as keys
from service.keys.models import Role
from service.keys.service import Principal
from service.problems import Forbidden, Unauthorized
from service.ratelimit import RateLimiter

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="An API key from `travelrisk keys create --tenant NAME --role ROLE`, sent as"
    " `Authorization: Bearer <key>`.",
)


async def authenticate(
    request: Request,
    session: Annotated[Session, Depends(get_session)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The caller's principal, from the bearer key; 401 when there is none or it is not valid.

    `credentials` documents the scheme in the OpenAPI document; the key is read by `bearer_key`, the
    one reader of the header that every route uses.
    """
    del credentials
    return await principal_for(request, session, bearer_key(request))


async def principal_for(request: Request, session: Session | None, presented: str | None) -> Principal:
    """The principal of a presented key (cached per worker); 401 when there is none or it is not valid.

    With no `session`, one is opened only when the key is not in the cache (and closed after the look-up).
    """
    if presented is None:
        raise Unauthorized("Send an API key as `Authorization: Bearer <key>`.")
    limiter: RateLimiter = request.app.state.rate_limiter
    address = request.client.host if request.client else None
    limiter.check_address(address)
    cache: keys.VerifiedKeyCache = request.app.state.key_cache
    principal = cache.get(presented)
    if principal is None:
        if session is None:
            principal = await run_db_work(request, _verify_in_own_session, request.app.state.session_factory, presented)
        else:
            principal = await run_db_work(request, keys.verify, session, presented)
        if principal is None:
            limiter.record_failure(address)
            raise Unauthorized("The API key is not valid (unknown, malformed or revoked).")
        cache.put(presented, principal)
    # For the access log: the tenant, never the key.
    request.state.tenant = principal.tenant_name
    # Added to the response by the request-context middleware.
    request.state.rate_limit_headers = limiter.hit_key(principal.key_id)
    return principal


def _verify_in_own_session(sessions: sessionmaker[Session], presented: str) -> Principal | None:
    with sessions() as session:
        return keys.verify(session, presented)


def bearer_key(request: Request) -> str | None:
    """The key of an `Authorization: Bearer <key>` header, read exactly as `HTTPBearer` reads it for every
    other route: the scheme in any case, then the key with the spaces around it removed (RFC 9110 allows
    one or more spaces after the scheme)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def check_role(principal: Principal, allowed: frozenset[Role]) -> Principal:
    """403 unless the principal's role is one of `allowed`."""
    if principal.role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise Forbidden(f"The role '{principal.role.value}' may not do this; it needs one of: {names}.")
    return principal


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that admits only the given roles (403 for any other)."""
    allowed = frozenset(roles)

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        return check_role(principal, allowed)

    return check


ANY_ROLE = tuple(Role)
