"""The model_versions table: every model version the service has loaded, with its card."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime, utcnow


class ModelVersion(Base):
    """A model version that has served (assessments refer to it), kept so each can be re-explained."""

    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(String(100), primary_key=True)
    rules_version: Mapped[str] = mapped_column(String(100))
    card: Mapped[dict[str, Any]] = mapped_column(JSON)
    first_loaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
