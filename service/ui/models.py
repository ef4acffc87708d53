"""The ui_sessions table: signed-in browser sessions of the workspace."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime


class UiSession(Base):
    """One browser session, opened by signing in with an API key.

    The cookie holds a random token; only its SHA-256 is stored, so a copy of the table opens no session.
    The session acts as the key it was opened with, and ends when that key is revoked.
    """

    __tablename__ = "ui_sessions"
    __table_args__ = (Index("ix_ui_sessions_expires_at", "expires_at"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    # The token every form of this session carries; compared in constant time on each POST.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
