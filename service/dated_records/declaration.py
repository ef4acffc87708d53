"""What declares a kind of dated reference record: its table and forms, its URL, its list filters, and
the words and examples of its API documentation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel

from risk_rules.values import IsoDate
from service.reference.records import RecordKind


@dataclass(frozen=True)
class ListFilter:
    """A query parameter of the kind's list: equal to a column (and document field), active on a date, or
    matched by a predicate on the stored document (for what SQL cannot compare, such as normalised names)."""

    name: str
    annotation: Any  # the parameter's type, with its `Query(...)` (default None)
    column: str | None = None  # equality on this column / document field
    matches: Callable[[Any, dict[str, Any]], bool] | None = None  # (value, document) -> bool
    active_on: bool = False  # the record was active on the given date

    @classmethod
    def active(cls, description: str) -> ListFilter:
        """The `active_on` filter: records whose period includes the date."""
        return cls("active_on", Annotated[IsoDate | None, Query(description=description)], active_on=True)


@dataclass(frozen=True)
class DatedRecordKind(RecordKind):
    """A kind of dated reference record, served by `service.dated_records.router.router_for`."""

    singular: str = ""  # in function and operation names: "situation", "employer_dispute"
    plural: str = ""  # in function and operation names: "situations", "employer_disputes"
    tag: str = ""  # the OpenAPI tag
    title_plural: str = ""  # in summaries: "Situations", "Employer disputes"
    a_label: str = ""  # the label with its article: "a situation", "an employer dispute"
    id_param: str = ""  # the path parameter's name: "situation_id"
    item: type[BaseModel] = BaseModel  # the record as shown
    page: type[BaseModel] = BaseModel  # a page of them
    patch: type[BaseModel] = BaseModel  # the PATCH form
    filters: tuple[ListFilter, ...] = ()
    create_description: str = ""
    patch_description: str = ""
    create_examples: dict[str, Any] = field(default_factory=dict)
    patch_examples: dict[str, Any] = field(default_factory=dict)
    item_example: dict[str, Any] = field(default_factory=dict)
    page_example: dict[str, Any] = field(default_factory=dict)
    history_example: dict[str, Any] = field(default_factory=dict)
