"""Tenant look-up and creation."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.tenants.models import Tenant

TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def valid_tenant_name(name: str) -> bool:
    """Tenant names are short identifiers: letters, digits, '.', '_' and '-'."""
    return bool(TENANT_NAME.fullmatch(name))


def get_by_name(session: Session, name: str) -> Tenant | None:
    """The tenant called `name`, if any."""
    return session.scalar(select(Tenant).where(Tenant.name == name))


def get_or_create(session: Session, name: str) -> Tenant:
    """The tenant called `name`, added to the session when it does not exist yet."""
    if not valid_tenant_name(name):
        raise ValueError(
            f"invalid tenant name {name!r}: use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    tenant = get_by_name(session, name)
    if tenant is None:
        tenant = Tenant(name=name)
        session.add(tenant)
        session.flush()
    return tenant
