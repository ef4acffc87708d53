"""Employer disputes: the record kind, and the list filters (in SQL for the current data, on the documents
for the data as recorded on a date)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from risk_rules.reference import EmployerDisputeIn, normalise_organisation
from service.employer_disputes.schemas import EmployerDisputeCreate
from service.reference import records
from service.reference.models import EMPLOYER_DISPUTE, EmployerDisputeRecord

KIND = records.RecordKind(
    record_type=EMPLOYER_DISPUTE,
    label="employer dispute",
    model=EmployerDisputeRecord,
    form=EmployerDisputeCreate,
    stored=EmployerDisputeIn,
    id_prefix="emp",
    collection="/v1/employer-disputes",
)


@dataclass(frozen=True, slots=True)
class Filters:
    """Filters of GET /v1/employer-disputes; None means "any"."""

    destination: str | None = None
    kind: str | None = None
    active_on: dt.date | None = None
    name: str | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        model = EmployerDisputeRecord
        clauses: list[ColumnElement[bool]] = []
        if self.destination is not None:
            clauses.append(model.destination == self.destination)
        if self.kind is not None:
            clauses.append(model.kind == self.kind)
        if self.active_on is not None:
            clauses.extend(records.active_on_clauses(model, self.active_on))
        return clauses

    def matches_name(self, document: dict[str, Any]) -> bool:
        """The name filter, matched as assessments match employers: equal once normalised."""
        if self.name is None:
            return True
        wanted = normalise_organisation(self.name)
        return any(normalise_organisation(n) == wanted for n in (document["name"], *document.get("aliases", ())))

    def matches(self, document: dict[str, Any]) -> bool:
        return (
            (self.destination is None or document["destination"] == self.destination)
            and (self.kind is None or document["kind"] == self.kind)
            and (self.active_on is None or records.active_on(document, self.active_on))
            and self.matches_name(document)
        )


def list_page(
    session: Session, filters: Filters, as_of: dt.date | None, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of disputes in id order: as currently recorded, or as recorded by the end of `as_of`."""
    if as_of is not None:
        return records.page_as_of(session, KIND, as_of, filters.matches, limit, cursor)
    by_name = filters.matches_name if filters.name is not None else None
    return records.current_page(session, KIND, filters.clauses(), by_name, limit, cursor)
