"""Situations, declared as a kind of dated record: the create form, the record as shown, the filters of
the list, the API's words and examples."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from risk_rules.forms import CountryCode
from risk_rules.reference import Precision, Severity, SituationIn, SituationKind
from risk_rules.values import IsoDate
from service.dated_records.declaration import DatedRecordKind, ListFilter
from service.dated_records.schemas import ended_not_before_started, page_of, patch_form
from service.reference.models import SITUATION, SituationRecord
from service.reference.schemas import (
    Citation,
    CitationBody,
    Note,
    PublicationCitationExample,
    RecordId,
    SourceCitationExample,
    Title,
    history_example,
)

Sources = Annotated[list[CitationBody], Field(min_length=1, max_length=50)]

_DESCRIPTIONS = {
    "home_country": "The traveller's country of citizenship the situation is about.",
    "destination": "A covered destination (see GET /v1/destinations).",
    "kind": "`extradition_case` (the home country holds, for extradition or trial, a person the destination"
    " wants back), `trade_dispute`, `diplomatic_dispute`, `sanctions` or `detention_of_nationals`.",
    "started_on": "First day the situation was active.",
    "start_precision": "How much of `started_on` the sources give: `day`, `month` (the first of the month"
    " stands for it), `year` (1 January stands for it) or `unknown`.",
    "ended_on": "Last day it was active; null while it still is.",
    "end_precision": "How much of `ended_on` the sources give.",
    "date_note": "Where the dates come from, when they are not stated to the day.",
    "severity_note": "Why this severity.",
    "sources": "What the record rests on: `{source, quote}` of a bundled reference source, or a publication's"
    " `{title, url, date}`.",
}


class SituationCreate(BaseModel):
    """A situation to record. Every field is checked; the whole record is checked again on each PATCH."""

    model_config = ConfigDict(extra="forbid")

    id: RecordId | None = None
    home_country: CountryCode = Field(description=_DESCRIPTIONS["home_country"])
    destination: CountryCode = Field(description=_DESCRIPTIONS["destination"])
    kind: SituationKind = Field(description=_DESCRIPTIONS["kind"])
    title: Title = Field(description="What happened, in a line; reasons on assessments quote it.")
    started_on: IsoDate = Field(description=_DESCRIPTIONS["started_on"])
    start_precision: Precision = Field(default="day", description=_DESCRIPTIONS["start_precision"])
    ended_on: IsoDate | None = Field(default=None, description=_DESCRIPTIONS["ended_on"])
    end_precision: Precision | None = Field(default=None, description=_DESCRIPTIONS["end_precision"])
    date_note: Note | None = Field(default=None, description=_DESCRIPTIONS["date_note"])
    severity: Severity
    severity_note: Note | None = Field(default=None, description=_DESCRIPTIONS["severity_note"])
    sources: Sources = Field(description=_DESCRIPTIONS["sources"])

    # Field validators rather than one model validator, so that each error names its field.
    @field_validator("destination")
    @classmethod
    def _not_home(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("home_country"):
            raise ValueError("destination equals home_country: a situation is between two different countries")
        return value

    _period = field_validator("ended_on")(ended_not_before_started)


class Situation(BaseModel):
    """A situation as recorded, with its revision number and timestamps.

    Every field is always sent (null when empty); optional ones have defaults only because the OpenAPI
    document's examples leave nulls out.
    """

    id: str
    home_country: str
    destination: str
    kind: SituationKind
    title: str
    started_on: dt.date
    start_precision: Precision
    ended_on: dt.date | None = None
    end_precision: Precision | None = None
    date_note: str | None = None
    severity: Severity
    severity_note: str | None = None
    sources: list[Citation]
    revision: int = Field(description="1 when created, then one more for each change.")
    created_at: dt.datetime
    updated_at: dt.datetime = Field(description="When the revision shown was recorded.")


CREATE_EXAMPLE: dict[str, Any] = {
    "home_country": "CA",
    "destination": "CN",
    "kind": "extradition_case",
    "title": "Meng Wanzhou held in Canada on a US extradition request",
    "started_on": "2018-12-01",
    "ended_on": "2021-09-24",
    "severity": "high",
    "sources": [SourceCitationExample],
}
PUBLICATION_EXAMPLE: dict[str, Any] = {
    **CREATE_EXAMPLE,
    "id": "ca-cn-meng-extradition-2",
    "start_precision": "month",
    "date_note": "The sources place the arrest in late 2018 without a day; the first of the month stands for it.",
    "sources": [PublicationCitationExample],
}
PATCH_EXAMPLE: dict[str, Any] = {"ended_on": None, "severity": "medium", "severity_note": "Still unresolved."}
SITUATION_EXAMPLE: dict[str, Any] = {
    "id": "sit-4be1c09a",
    **{k: v for k, v in CREATE_EXAMPLE.items() if k != "sources"},
    "start_precision": "day",
    "end_precision": None,
    "date_note": None,
    "severity_note": None,
    "sources": [{**SourceCitationExample, "title": None, "url": None, "date": None}],
    "revision": 1,
    "created_at": "2026-03-02T09:14:05.120000Z",
    "updated_at": "2026-03-02T09:14:05.120000Z",
}
PAGE_EXAMPLE: dict[str, Any] = {"items": [SITUATION_EXAMPLE], "next_cursor": None}
HISTORY_EXAMPLE = history_example(
    "sit-4be1c09a",
    {k: v for k, v in SITUATION_EXAMPLE.items() if k not in ("revision", "created_at", "updated_at")},
    "ended_on",
    None,
    "2021-09-24",
)

SituationPatch = patch_form(
    SituationCreate,
    "SituationPatch",
    """Fields to change; the others keep their values, and the merged record is checked as a whole.

    Send `null` to clear an optional field (e.g. `ended_on: null` when a situation turns out to continue).
    """,
)
SituationPage = page_of(Situation, "SituationPage", "A page of situations, in id order.")

_COUNTRY = r"^[A-Z]{2}$"

KIND = DatedRecordKind(
    record_type=SITUATION,
    label="situation",
    model=SituationRecord,
    form=SituationCreate,
    stored=SituationIn,
    id_prefix="sit",
    collection="/v1/situations",
    singular="situation",
    plural="situations",
    tag="situations",
    title_plural="Situations",
    a_label="a situation",
    id_param="situation_id",
    item=Situation,
    page=SituationPage,
    patch=SituationPatch,
    filters=(
        ListFilter(
            "home_country",
            Annotated[str | None, Query(pattern=_COUNTRY, description="Only this country code.")],
            column="home_country",
        ),
        ListFilter(
            "destination",
            Annotated[str | None, Query(pattern=_COUNTRY, description="Only this country code.")],
            column="destination",
        ),
        ListFilter("kind", Annotated[SituationKind | None, Query(description="Only this kind.")], column="kind"),
        ListFilter.active("Only situations active on this date."),
    ),
    create_description=(
        "Records a situation and logs it as revision 1. It takes effect for the next assessment (the "
        "assessment's `versions.reference_data` changes), and stored assessments of trips that have not "
        "ended and that it touches are re-scored in the background.\n\n"
        "The destination must be one the service covers; `home_country` must differ from it; `ended_on` "
        "may not be before `started_on`; a `{source, quote}` citation must quote its source word for "
        "word."
    ),
    patch_description=(
        "Merges the fields sent into the record, checks the whole record again as on creation, and logs "
        "a revision with what changed. A change that changes nothing writes nothing. Like a creation, it "
        "takes effect for the next assessment and re-scores the stored ones it touches."
    ),
    create_examples={
        "reference_source": {"summary": "Citing a bundled reference source", "value": CREATE_EXAMPLE},
        "publication": {"summary": "Citing a publication, with an id of one's own", "value": PUBLICATION_EXAMPLE},
    },
    patch_examples={"reopen": {"summary": "Still active", "value": PATCH_EXAMPLE}},
    item_example=SITUATION_EXAMPLE,
    page_example=PAGE_EXAMPLE,
    history_example=HISTORY_EXAMPLE,
)
