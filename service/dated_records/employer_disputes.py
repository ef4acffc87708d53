"""Employer disputes, declared as a kind of dated record: the create form, the record as shown, the
filters of the list (the name filter matches as employers are matched), the API's words and examples."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from risk_rules.forms import CountryCode
from risk_rules.reference import DisputeKind, EmployerDisputeIn, Precision, normalise_organisation
from risk_rules.values import IsoDate, SingleLine
from service.dated_records.declaration import DatedRecordKind, ListFilter
from service.dated_records.schemas import ended_not_before_started, page_of, patch_form
from service.reference.models import EMPLOYER_DISPUTE, EmployerDisputeRecord
from service.reference.schemas import (
    Citation,
    CitationBody,
    Note,
    RecordId,
    history_example,
)


def _matchable(value: str) -> str:
    if not normalise_organisation(value):
        raise ValueError("has no letters or digits to match an employer's name against")
    return value


# Each name must leave something to compare once case, punctuation and legal suffixes are set aside.
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300),
    SingleLine,
    AfterValidator(_matchable),
]
Aliases = Annotated[list[Name], Field(max_length=50)]
Sources = Annotated[list[CitationBody], Field(min_length=1, max_length=50)]

_DESCRIPTIONS = {
    "name": "The organisation's name. An assessment whose `traveler.employer.name` equals it or an alias"
    " (case, accents, punctuation and legal suffixes such as Ltd, Inc, GmbH, Group, Holdings aside) fires the"
    " employer-dispute factor; a close but unequal name is reported as a possible match.",
    "aliases": "Other names of the organisation (former names, local names, legal entities).",
    "destination": "A covered destination (see GET /v1/destinations).",
    "kind": "`commercial_dispute`, `regulatory_investigation`, `political_pressure` or `sanctions`.",
    "started_on": "First day the dispute was active.",
    "start_precision": "How much of `started_on` the sources give: `day`, `month` (the first of the month"
    " stands for it), `year` (1 January stands for it) or `unknown`.",
    "ended_on": "Last day it was active; null while it still is.",
    "end_precision": "How much of `ended_on` the sources give.",
    "date_note": "Where the dates come from, when they are not stated to the day.",
    "sources": "What the record rests on: `{source, quote}` of a bundled reference source, or a publication's"
    " `{title, url, date}`.",
}


class EmployerDisputeCreate(BaseModel):
    """An employer dispute to record. Every field is checked; the whole record again on each PATCH."""

    model_config = ConfigDict(extra="forbid")

    id: RecordId | None = None
    name: Name = Field(description=_DESCRIPTIONS["name"])
    aliases: Aliases = Field(default=[], description=_DESCRIPTIONS["aliases"])
    destination: CountryCode = Field(description=_DESCRIPTIONS["destination"])
    kind: DisputeKind = Field(description=_DESCRIPTIONS["kind"])
    started_on: IsoDate = Field(description=_DESCRIPTIONS["started_on"])
    start_precision: Precision = Field(default="day", description=_DESCRIPTIONS["start_precision"])
    ended_on: IsoDate | None = Field(default=None, description=_DESCRIPTIONS["ended_on"])
    end_precision: Precision | None = Field(default=None, description=_DESCRIPTIONS["end_precision"])
    date_note: Note | None = Field(default=None, description=_DESCRIPTIONS["date_note"])
    sources: Sources = Field(description=_DESCRIPTIONS["sources"])

    # A field validator rather than a model validator, so that the error names `ended_on`.
    _period = field_validator("ended_on")(ended_not_before_started)


class EmployerDispute(BaseModel):
    """An employer dispute as recorded, with its revision number and timestamps.

    Every field is always sent (null when empty); optional ones have defaults only because the OpenAPI
    document's examples leave nulls out.
    """

    id: str
    name: str
    aliases: list[str]
    destination: str
    kind: DisputeKind
    started_on: dt.date
    start_precision: Precision
    ended_on: dt.date | None = None
    end_precision: Precision | None = None
    date_note: str | None = None
    sources: list[Citation]
    revision: int = Field(description="1 when created, then one more for each change.")
    created_at: dt.datetime
    updated_at: dt.datetime = Field(description="When the revision shown was recorded.")


_KROLL_QUOTE = {
    "source": "ccp-master-of-hostage-diplomacy",
    "quote": "Some examples from recent months include the detention of Michael Chan from U.S. financial firm"
    " Kroll as well as the detention of Charles Wang Zhonghe from Japanese securities firm Nomura Holdings Inc.",
}
CREATE_EXAMPLE: dict[str, Any] = {
    "name": "Kroll",
    "aliases": ["Kroll LLC", "Kroll Inc."],
    "destination": "CN",
    "kind": "political_pressure",
    "started_on": "2023-01-01",
    "start_precision": "year",
    "date_note": "Only the year 2023 is attested; 1 January stands for it.",
    "sources": [_KROLL_QUOTE],
}
PATCH_EXAMPLE: dict[str, Any] = {"aliases": ["Kroll LLC", "Kroll Inc.", "Kroll Associates"]}
DISPUTE_EXAMPLE: dict[str, Any] = {
    "id": "emp-90d2f3b1",
    **{k: v for k, v in CREATE_EXAMPLE.items() if k != "sources"},
    "ended_on": None,
    "end_precision": None,
    "sources": [{**_KROLL_QUOTE, "title": None, "url": None, "date": None}],
    "revision": 1,
    "created_at": "2026-03-02T09:14:05.120000Z",
    "updated_at": "2026-03-02T09:14:05.120000Z",
}
PAGE_EXAMPLE: dict[str, Any] = {"items": [DISPUTE_EXAMPLE], "next_cursor": None}
HISTORY_EXAMPLE = history_example(
    "emp-90d2f3b1",
    {k: v for k, v in DISPUTE_EXAMPLE.items() if k not in ("revision", "created_at", "updated_at")},
    "aliases",
    CREATE_EXAMPLE["aliases"],
    PATCH_EXAMPLE["aliases"],
)

EmployerDisputePatch = patch_form(
    EmployerDisputeCreate,
    "EmployerDisputePatch",
    """Fields to change; the others keep their values, and the merged record is checked as a whole.

    `aliases` and `sources` are replaced as a whole; send `null` to clear an optional field.
    """,
)
EmployerDisputePage = page_of(EmployerDispute, "EmployerDisputePage", "A page of employer disputes, in id order.")


def same_organisation(name: str, document: dict[str, Any]) -> bool:
    """Whether `name` equals the dispute's name or an alias as assessments match employers: normalised."""
    wanted = normalise_organisation(name)
    return any(normalise_organisation(n) == wanted for n in (document["name"], *document.get("aliases", ())))


KIND = DatedRecordKind(
    record_type=EMPLOYER_DISPUTE,
    label="employer dispute",
    model=EmployerDisputeRecord,
    form=EmployerDisputeCreate,
    stored=EmployerDisputeIn,
    id_prefix="emp",
    collection="/v1/employer-disputes",
    singular="employer_dispute",
    plural="employer_disputes",
    tag="employer disputes",
    title_plural="Employer disputes",
    a_label="an employer dispute",
    id_param="dispute_id",
    item=EmployerDispute,
    page=EmployerDisputePage,
    patch=EmployerDisputePatch,
    filters=(
        ListFilter(
            "destination",
            Annotated[str | None, Query(pattern=r"^[A-Z]{2}$", description="Only this destination.")],
            column="destination",
        ),
        ListFilter("kind", Annotated[DisputeKind | None, Query(description="Only this kind.")], column="kind"),
        ListFilter.active("Only disputes active on this date."),
        ListFilter(
            "name",
            Annotated[
                str | None,
                Query(
                    min_length=1,
                    max_length=300,
                    description="Only disputes whose name or an alias equals this one, as employers are matched:"
                    " case, accents, punctuation and legal suffixes aside.",
                ),
            ],
            matches=same_organisation,
        ),
    ),
    create_description=(
        "Records an organisation in a dispute with a destination and logs it as revision 1. It takes "
        "effect for the next assessment, and stored assessments of trips that have not ended whose "
        "employer it may concern are re-scored in the background.\n\n"
        "The destination must be one the service covers; every name and alias must keep some letters or "
        "digits once legal suffixes are set aside; `ended_on` may not be before `started_on`; a "
        "`{source, quote}` citation must quote its source word for word."
    ),
    patch_description=(
        "Merges the fields sent into the record (lists are replaced whole), checks the whole record "
        "again as on creation, and logs a revision with what changed. A change that changes nothing "
        "writes nothing."
    ),
    create_examples={"reference_source": {"summary": "Citing a reference source", "value": CREATE_EXAMPLE}},
    patch_examples={"alias": {"summary": "Another name", "value": PATCH_EXAMPLE}},
    item_example=DISPUTE_EXAMPLE,
    page_example=PAGE_EXAMPLE,
    history_example=HISTORY_EXAMPLE,
)
