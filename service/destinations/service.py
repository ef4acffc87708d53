"""Reading destination and third-country profiles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.reference.models import DestinationProfileRecord, ThirdCountryRecord


def _item(row: DestinationProfileRecord | ThirdCountryRecord) -> dict[str, Any]:
    return {**row.document, "revision": row.revision, "updated_at": row.updated_at}


def destinations(session: Session) -> list[dict[str, Any]]:
    """Every destination profile, by code."""
    rows = session.scalars(select(DestinationProfileRecord).order_by(DestinationProfileRecord.code))
    return [_item(row) for row in rows]


def third_countries(session: Session) -> list[dict[str, Any]]:
    """Every third-country profile, by code."""
    return [_item(row) for row in session.scalars(select(ThirdCountryRecord).order_by(ThirdCountryRecord.code))]


def destination(session: Session, code: str) -> dict[str, Any] | None:
    """One destination profile, or None when the service does not score that country."""
    row = session.get(DestinationProfileRecord, code)
    return _item(row) if row is not None else None
