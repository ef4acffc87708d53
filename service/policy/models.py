"""The review_policies table: one row per version of a tenant's policy (rows are never changed)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime


class ReviewPolicyVersion(Base):
    """One version of a tenant's policy. The current policy is the highest version; none is version 0."""

    __tablename__ = "review_policies"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_bands: Mapped[list[str]] = mapped_column(JSON)
    severe_approvals: Mapped[int] = mapped_column(Integer)
    thresholds: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    changed_by_key: Mapped[str] = mapped_column(String(32))
    changed_by_holder: Mapped[str | None] = mapped_column(String(64))
