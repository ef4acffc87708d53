"""Situations: the record kind, and the list filters (in SQL for the current data, on the documents for
the data as recorded on a date)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from risk_rules.reference import SituationIn
from service.reference import records
from service.reference.models import SITUATION, SituationRecord
from service.situations.schemas import SituationCreate

KIND = records.RecordKind(
    record_type=SITUATION,
    label="situation",
    model=SituationRecord,
    form=SituationCreate,
    stored=SituationIn,
    id_prefix="sit",
    collection="/v1/situations",
)


@dataclass(frozen=True, slots=True)
class Filters:
    """Filters of GET /v1/situations; None means "any"."""

    home_country: str | None = None
    destination: str | None = None
    kind: str | None = None
    active_on: dt.date | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        model = SituationRecord
        clauses: list[ColumnElement[bool]] = []
        for column, value in (
            (model.home_country, self.home_country),
            (model.destination, self.destination),
            (model.kind, self.kind),
        ):
            if value is not None:
                clauses.append(column == value)
        if self.active_on is not None:
            clauses.extend(records.active_on_clauses(model, self.active_on))
        return clauses

    def matches(self, document: dict[str, Any]) -> bool:
        return all(
            value is None or document[key] == value
            for key, value in (
                ("home_country", self.home_country),
                ("destination", self.destination),
                ("kind", self.kind),
            )
        ) and (self.active_on is None or records.active_on(document, self.active_on))


def list_page(
    session: Session, filters: Filters, as_of: dt.date | None, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of situations in id order: as currently recorded, or as recorded by the end of `as_of`."""
    if as_of is not None:
        return records.page_as_of(session, KIND, as_of, filters.matches, limit, cursor)
    return records.current_page(session, KIND, filters.clauses(), None, limit, cursor)
