"""Workspace sessions: opened by signing in with an API key, found by the cookie's token, closed on sign-out.

The cookie carries 256 random bits; the table keeps only their SHA-256, so neither a copy of the table nor
a log line can open a session. A session acts as the key it was opened with: revoking the key ends it, and
the principal is re-read on every request. Each session has its own CSRF token, which every form carries
and every POST must present.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.db import utcnow
from service.keys.models import ApiKey, Role
from service.keys.service import Principal
from service.tenants.models import Tenant
from service.ui.models import UiSession

COOKIE = "trk_session"
SIGN_IN_COOKIE = "trk_sign_in"
"""Holds the sign-in form's own CSRF token (double-submit): there is no session to tie it to yet."""


@dataclass(frozen=True, slots=True)
class OpenSession:
    """A valid session: who it acts for, and the token its forms carry."""

    principal: Principal
    csrf_token: str
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just opened: `token` goes in the cookie and is not stored."""

    token: str
    session: OpenSession


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A random token for a cookie or a form (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def open_session(session: Session, principal: Principal, lifetime: dt.timedelta) -> NewSession:
    """A new session for a verified key, expiring after `lifetime`; expired sessions are swept. The caller
    commits."""
    now = utcnow()
    session.execute(delete(UiSession).where(UiSession.expires_at < now))
    token = new_token()
    row = UiSession(
        id_hash=_hash(token),
        key_id=principal.key_id,
        csrf_token=new_token(),
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    session.flush()
    return NewSession(token=token, session=OpenSession(principal, row.csrf_token, row.expires_at))


_LOOKUP = (
    select(
        UiSession.csrf_token,
        UiSession.expires_at,
        ApiKey.id,
        ApiKey.role,
        ApiKey.revoked_at,
        ApiKey.holder,
        Tenant.id,
        Tenant.name,
    )
    .join(ApiKey, ApiKey.id == UiSession.key_id)
    .join(Tenant, Tenant.id == ApiKey.tenant_id)
)


def find_session(session: Session, token: str | None) -> OpenSession | None:
    """The open session of a cookie token, or None when it is unknown, expired or its key revoked."""
    if not token or len(token) > 128:
        return None
    row = session.execute(_LOOKUP.where(UiSession.id_hash == _hash(token))).one_or_none()
    if row is None:
        return None
    csrf_token, expires_at, key_id, role, revoked_at, holder, tenant_id, tenant_name = row
    if revoked_at is not None or expires_at <= utcnow():
        return None
    principal = Principal(key_id=key_id, tenant_id=tenant_id, tenant_name=tenant_name, role=Role(role), holder=holder)
    return OpenSession(principal=principal, csrf_token=csrf_token, expires_at=expires_at)


def close_session(session: Session, token: str | None) -> None:
    """Delete the session of a cookie token (nothing when there is none). The caller commits."""
    if token:
        session.execute(delete(UiSession).where(UiSession.id_hash == _hash(token)))


def tokens_match(expected: str | None, presented: str | None) -> bool:
    """Whether a presented CSRF token equals the expected one (constant time; missing never matches)."""
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8"))
