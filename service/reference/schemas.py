"""API schemas shared by the reference-data resources: citations, record metadata and revision history.

The request forms check what the bundled file's schemas (`risk_rules.reference`) leave to their author:
country codes against ISO 3166-1, that a quoted passage really is in the reference source it names, and
that no field is left empty. What they accept is stored in the bundled file's schema, so an export can
be imported again unchanged.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator

from risk_rules.sources import quote_problem, source_texts
from risk_rules.values import MultiLine, SingleLine
from service.problems import openapi_responses

RecordId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit). The server"
        " generates one when it is left out.",
    ),
]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), SingleLine]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000), MultiLine]
PartialDate = Annotated[
    str,
    Field(
        pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$",
        description="When it was published: YYYY-MM-DD, or YYYY-MM or YYYY when that is all that is known.",
    ),
]
SourceCitationExample = {
    "source": "csis-kennedy-beijing-suffers-major-loss",
    "quote": "once the United States learned that Meng would be traveling through Canada in late November 2018.",
}
PublicationCitationExample = {
    "title": "Beijing Suffers Major Loss from Its Hostage Diplomacy (Scott Kennedy, CSIS)",
    "date": "2021-09",
}


class CitationBody(BaseModel):
    """A passage a record rests on: a bundled reference source with a verbatim quote, or a publication.

    `{source, quote}` cites one of the reference documents the service ships (the quote must appear in
    it word for word, whitespace aside); `{title, url, date}` cites anything else an analyst relies on.
    """

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [SourceCitationExample, PublicationCitationExample]}
    )

    source: Annotated[str, SingleLine] | None = Field(
        default=None, max_length=100, description="Id of a bundled reference source (its file name without .txt)."
    )
    quote: Annotated[str, MultiLine] | None = Field(
        default=None, max_length=4000, description="The passage, word for word as it appears in `source`."
    )
    title: Title | None = Field(default=None, description="Title (and author or publisher) of a publication.")
    url: Annotated[str, SingleLine] | None = Field(
        default=None, max_length=2000, pattern=r"^https?://\S+$", description="Where to read it."
    )
    date: PartialDate | None = None

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str | None) -> str | None:
        if value is not None and value not in source_texts():
            raise ValueError(f"unknown reference source '{value}' (known: {', '.join(sorted(source_texts()))})")
        return value

    @field_validator("quote")
    @classmethod
    def _verbatim(cls, value: str | None, info: ValidationInfo) -> str | None:
        # `source` is validated first (field order); when it failed, its own error says what to fix.
        source = info.data.get("source")
        if value is not None and source:
            problem = quote_problem(source, value)
            if problem is not None:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> CitationBody:
        publication = (self.title, self.url, self.date)
        if self.source is not None:
            if self.quote is None:
                raise ValueError("a citation of a reference source needs the `quote` it rests on")
            if any(v is not None for v in publication):
                raise ValueError(
                    "cite a reference source ({source, quote}) or a publication ({title, url, date}),"
                    " not both in one citation"
                )
        elif self.quote is not None:
            raise ValueError("a `quote` needs the `source` it is quoted from")
        elif self.title is None:
            raise ValueError("a citation needs `source` and `quote` (a reference source) or `title` (a publication)")
        return self


class Citation(BaseModel):
    """A passage a record rests on, as stored (fields of the other kind of citation are null)."""

    model_config = ConfigDict(json_schema_extra={"examples": [SourceCitationExample]})

    source: str | None = None
    quote: str | None = None
    title: str | None = None
    url: str | None = None
    date: str | None = None


class FieldChange(BaseModel):
    """One field's value before and after a change (`from` is null when the record was created)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: Any = Field(default=None, alias="from")
    to: Any = None


class RevisionEntry(BaseModel):
    """One change to a record: who made it, when, and what it changed."""

    revision: int = Field(description="1 for the creation, then one more for each change.")
    action: str = Field(description="`created` or `updated`.", examples=["updated"])
    actor: str = Field(
        description="Who made it: the API key's id, tenant and role when it is a key of your own tenant;"
        " `analyst:<hash>` for a key of another tenant (stable for one key, naming neither); or the command"
        " that loaded the data (`cli:...`).",
        examples=["key:3f9a0c1d2e4b tenant:acme role:analyst"],
    )
    changed_at: dt.datetime
    changes: dict[str, FieldChange] = Field(description="Every field that changed, with its old and new value.")


class History(BaseModel):
    """Every revision of one record, oldest first."""

    id: str
    items: list[RevisionEntry]


def history_example(record_id: str, created: dict[str, Any], field: str, old: Any, new: Any) -> dict[str, Any]:
    """An example history: a record created through the API, then one field changed."""
    actor = "key:3f9a0c1d2e4b tenant:acme role:analyst"
    return {
        "id": record_id,
        "items": [
            {
                "revision": 1,
                "action": "created",
                "actor": actor,
                "changed_at": "2026-03-02T09:14:05.120000Z",
                "changes": {key: {"from": None, "to": value} for key, value in created.items()},
            },
            {
                "revision": 2,
                "action": "updated",
                "actor": actor,
                "changed_at": "2026-03-09T16:40:51.004000Z",
                "changes": {field: {"from": old, "to": new}},
            },
        ],
    }


# ---------------------------------------------------------------------------------------------
# OpenAPI response entries


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Problem-details responses, worded for reference data (shared by all tenants, not one tenant's)."""
    responses = openapi_responses(*statuses)
    if 404 in responses:
        responses[404]["description"] = "No record with this id."
    if 409 in responses:
        responses[409]["description"] = "The id is taken, or another request changed the record at the same moment."
    return responses


def example_response(status: int, description: str, example: Any, **extra: Any) -> dict[int | str, dict[str, Any]]:
    """A JSON response entry with its example."""
    return {status: {"description": description, "content": {"application/json": {"example": example}}, **extra}}
