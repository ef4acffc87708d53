"""The api_keys table."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import Base, UTCDateTime, utcnow
from service.keys.roles import Role  # noqa: F401 - where the rest of the service imports it from
from service.tenants.models import Tenant


class ApiKey(Base):
    """One key. Only the SHA-256 of the whole key is stored; `id` is its public, non-secret prefix."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    # The staff member the key was issued to (opaque to us): reviews are attributed to it, and four-eyes
    # rules compare it.
    holder: Mapped[str | None] = mapped_column(String(64), default=None)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)

    tenant: Mapped[Tenant] = relationship(lazy="joined")
