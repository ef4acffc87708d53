"""Listing dated records of any kind: the kind's filters applied in SQL to the current data, or to the
documents for the data as recorded on a date. Creating, changing and the history are `reference.records`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from service.dated_records.declaration import DatedRecordKind
from service.reference import records


@dataclass(frozen=True, slots=True)
class Filters:
    """The values of the kind's filters in one list request (None means "any")."""

    kind: DatedRecordKind
    values: Mapping[str, Any]

    def _given(self) -> list[tuple[Any, Any]]:
        return [(f, self.values[f.name]) for f in self.kind.filters if self.values.get(f.name) is not None]

    def clauses(self) -> list[ColumnElement[bool]]:
        """What SQL filters on the current data."""
        model = self.kind.model
        clauses: list[ColumnElement[bool]] = []
        for f, value in self._given():
            if f.column is not None:
                clauses.append(getattr(model, f.column) == value)
            elif f.active_on:
                clauses.extend(records.active_on_clauses(model, value))
        return clauses

    def matches_beyond_sql(self, document: dict[str, Any]) -> bool:
        """The filters SQL cannot apply (predicates on the document)."""
        return all(f.matches(value, document) for f, value in self._given() if f.matches is not None)

    @property
    def needs_documents(self) -> bool:
        return any(f.matches is not None for f, _ in self._given())

    def matches(self, document: dict[str, Any]) -> bool:
        """Every filter, on a stored document (for the data as recorded on a date)."""
        return (
            all(document[f.column] == value for f, value in self._given() if f.column is not None)
            and all(records.active_on(document, value) for f, value in self._given() if f.active_on)
            and self.matches_beyond_sql(document)
        )


def list_page(
    session: Session, filters: Filters, as_of: dt.date | None, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of records in id order: as currently recorded, or as recorded by the end of `as_of`.

    Raises `records.InvalidCursor` for a cursor this service did not issue."""
    kind = filters.kind
    if as_of is not None:
        return records.page_as_of(session, kind, as_of, filters.matches, limit, cursor)
    beyond = filters.matches_beyond_sql if filters.needs_documents else None
    return records.current_page(session, kind, filters.clauses(), beyond, limit, cursor)
