"""Reference-data tables and their revision log.

Each record table holds the current state: the columns the look-ups filter on, and the whole record as
a JSON `document` in the form of `risk_rules.reference` (the same schema as the bundled file and the
export). Every change appends a row to `reference_revisions` with who, when, what changed, and the
record as it stood afterwards, so the data can be read as it was recorded on any date.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime

SITUATION = "situation"
EMPLOYER_DISPUTE = "employer_dispute"
DESTINATION = "destination"
THIRD_COUNTRY = "third_country"
RECORD_TYPES = (SITUATION, EMPLOYER_DISPUTE, DESTINATION, THIRD_COUNTRY)


class SituationRecord(Base):
    """A situation between a home country and a destination, with the dates it was active."""

    __tablename__ = "situations"
    __table_args__ = (Index("ix_situations_pair_start", "home_country", "destination", "started_on"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    home_country: Mapped[str] = mapped_column(String(2))
    destination: Mapped[str] = mapped_column(String(2))
    kind: Mapped[str] = mapped_column(String(40))
    started_on: Mapped[dt.date] = mapped_column(Date)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class EmployerDisputeRecord(Base):
    """An organisation in a dispute with a destination, with its aliases and dates."""

    __tablename__ = "employer_disputes"
    __table_args__ = (Index("ix_employer_disputes_destination_start", "destination", "started_on"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    destination: Mapped[str] = mapped_column(String(2))
    kind: Mapped[str] = mapped_column(String(40))
    started_on: Mapped[dt.date] = mapped_column(Date)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class DestinationProfileRecord(Base):
    """A destination the service scores, with what the rules need to know of it."""

    __tablename__ = "destination_profiles"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ThirdCountryRecord(Base):
    """A transit or stay country: extradition treaties with destinations and documented forced returns."""

    __tablename__ = "third_country_profiles"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ReferenceRevision(Base):
    """One change to one record: who, when, what changed, and the record as it stood afterwards.

    The largest id is the reference data's version: it changes with every change, in every worker.
    """

    __tablename__ = "reference_revisions"
    __table_args__ = (
        UniqueConstraint("record_type", "record_id", "revision"),
        Index("ix_reference_revisions_changed_at", "changed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_type: Mapped[str] = mapped_column(String(30))
    record_id: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
