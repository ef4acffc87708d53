"""Creating, listing, revoking and verifying API keys.

A key reads `trk_<id>_<secret>`. The id is a public prefix used to find the row; the row holds only the
SHA-256 of the whole key, compared in constant time. The secret has 256 bits of entropy, so a fast hash is
enough: there is nothing to guess by brute force.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from service.db import utcnow
from service.keys.models import ApiKey, Role
from service.tenants import service as tenants
from service.tenants.models import Tenant

KEY_PREFIX = "trk"
HOLDER_MAX_LENGTH = 64


class InvalidHolder(ValueError):
    """A holder that is not a short printable identifier, or a reviewer key without one."""


def check_holder(role: Role, holder: str | None) -> str | None:
    """The holder to store for a new key of `role`; raises `InvalidHolder` saying what to fix.

    A holder is an opaque staff identifier: 1-64 printable characters (no control characters, no
    surrounding spaces). Reviewer keys must have one, because reviews are attributed to a person.
    """
    if holder is None:
        if role is Role.reviewer:
            raise InvalidHolder("a reviewer key must have a holder (the staff member its reviews are attributed to)")
        return None
    if not holder or len(holder) > HOLDER_MAX_LENGTH:
        raise InvalidHolder(f"use 1-{HOLDER_MAX_LENGTH} characters")
    if not holder.isprintable():
        raise InvalidHolder("use printable characters only (no control characters or line breaks)")
    if holder != holder.strip():
        raise InvalidHolder("remove the leading or trailing spaces")
    return holder


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant and role of a verified key."""

    key_id: str
    tenant_id: str
    tenant_name: str
    role: Role
    holder: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A newly created key. `secret` is shown once and never stored."""

    record: ApiKey
    secret: str


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_key_id(key: str) -> str | None:
    """The id part of a key string, or None when it is not shaped like one of ours."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


def create_key(session: Session, tenant_name: str, role: Role, holder: str | None = None) -> IssuedKey:
    """A new key for `role` in the named tenant (created when new). The caller commits.

    Raises `InvalidHolder` (before anything is written) when `holder` is not valid for `role`."""
    holder = check_holder(role, holder)
    tenant = tenants.get_or_create(session, tenant_name)
    return create_key_for(session, tenant, role, holder)


def create_key_for(session: Session, tenant: Tenant, role: Role, holder: str | None = None) -> IssuedKey:
    """A new key for `role` in `tenant`, issued to `holder`. The caller commits.

    Raises `InvalidHolder` when `holder` is not valid for `role`."""
    holder = check_holder(role, holder)
    key_id = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKey(
        id=key_id, tenant=tenant, tenant_id=tenant.id, role=role.value, holder=holder, secret_hash=_hash(secret)
    )
    session.add(record)
    session.flush()
    return IssuedKey(record=record, secret=secret)


def list_keys(session: Session, tenant_id: str | None = None) -> list[ApiKey]:
    """Every key (or one tenant's), oldest first, revoked ones included."""
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if tenant_id is not None:
        query = query.where(ApiKey.tenant_id == tenant_id)
    return list(session.scalars(query))


def get_key(session: Session, key_id: str, tenant_id: str | None = None) -> ApiKey | None:
    """The key with this id (within `tenant_id` when given)."""
    record = session.get(ApiKey, key_id)
    if record is None or (tenant_id is not None and record.tenant_id != tenant_id):
        return None
    return record


def revoke(record: ApiKey) -> None:
    """Mark the key revoked (it stays listed, and fails authentication from now on)."""
    if record.revoked_at is None:
        record.revoked_at = utcnow()


_CREDENTIALS = (
    select(ApiKey.secret_hash, ApiKey.revoked_at, ApiKey.role, ApiKey.tenant_id, Tenant.name, ApiKey.holder)
    .join(Tenant, Tenant.id == ApiKey.tenant_id)
    .where(ApiKey.id == bindparam("key_id"))
)


def verify(session: Session, presented: str) -> Principal | None:
    """The principal of a presented key, or None when it is unknown, malformed or revoked."""
    key_id = parse_key_id(presented)
    if key_id is None or len(key_id) > 32:
        return None
    digest = _hash(presented)
    row = session.execute(_CREDENTIALS, {"key_id": key_id}).one_or_none()
    if row is None:
        # Compare anyway so that an unknown id and a wrong secret take about the same time.
        hmac.compare_digest(digest, "0" * 64)
        return None
    secret_hash, revoked_at, role, tenant_id, tenant_name, holder = row
    if not hmac.compare_digest(digest, secret_hash) or revoked_at is not None:
        return None
    return Principal(key_id=key_id, tenant_id=tenant_id, tenant_name=tenant_name, role=Role(role), holder=holder)


class VerifiedKeyCache:
    """Keys verified recently in this process, so that most requests need no database look-up.

    Entries are keyed by the SHA-256 of the presented key (the key itself is not kept) and expire after
    `ttl` seconds: a key revoked from another process is refused within that time; one revoked through
    this process's API at once. Only successful verifications are cached, and the cache is bounded.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, presented: str) -> Principal | None:
        """The cached principal of this key, if verified less than `ttl` seconds ago."""
        if self.ttl <= 0:
            return None
        entry = self._entries.get(_hash(presented))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, presented: str, principal: Principal) -> None:
        """Remember a successful verification."""
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[_hash(presented)] = (time.monotonic() + self.ttl, principal)

    def forget(self, key_id: str) -> None:
        """Drop every entry of one key (after it is revoked here)."""
        for digest, (_, principal) in list(self._entries.items()):
            if principal.key_id == key_id:
                self._entries.pop(digest, None)
