"""Schemas of the rosters resource (plain Pydantic: the Python client imports them too)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from risk_rules.forms import Band

RosterState = Literal["queued", "running", "done", "failed"]
ItemStatus = Literal["scored", "out_of_scope", "invalid"]


class RosterAccepted(BaseModel):
    """The answer to an upload: the roster is stored and queued."""

    id: str
    state: RosterState
    format: Literal["json", "csv"]
    total: int = Field(description="Trips in the upload.")


class RosterError(BaseModel):
    """Why one trip of a roster was not scored."""

    row: int = Field(
        description="The trip's line in the CSV file (the header is line 1), or its index in the JSON array."
    )
    column: str | None = Field(default=None, description="CSV only: the column to fix.")
    field: str | None = Field(default=None, description="The request field, e.g. `trip.legs.0.depart`.")
    message: str


class BandCounts(BaseModel):
    """Trips scored so far, by band, and trips with no leg in a covered destination."""

    low: int = 0
    elevated: int = 0
    high: int = 0
    severe: int = 0
    out_of_scope: int = 0


class RosterStatus(BaseModel):
    """A roster's progress and outcome so far."""

    id: str
    state: RosterState = Field(description="`queued`, `running`, `done` or `failed`.")
    format: Literal["json", "csv"]
    total: int = Field(description="Trips in the upload.")
    done: int = Field(description="Trips processed (scored or found invalid) so far.")
    invalid: int = Field(description="Trips not scored because they are not valid requests.")
    counts: BandCounts
    errors: list[RosterError] = Field(description="The errors of the first 100 invalid trips, in upload order.")
    errors_truncated: bool = Field(description="Whether more invalid trips exist than `errors` shows.")
    created_at: dt.datetime
    finished_at: dt.datetime | None
    failure: str | None = Field(description="Why a `failed` roster stopped.")
    results: str = Field(description="Path of the results, one line per trip.")


class RosterResult(BaseModel):
    """One trip's outcome (a line of the results)."""

    row: int
    reference: str | None
    status: ItemStatus
    band: Band | None
    probability: float | None
    top_factors: list[str] = Field(description="Ids of up to three factors that raised the score most.")
    assessment_id: str | None = Field(description="The stored assessment, `GET /v1/assessments/{id}`.")
    errors: list[RosterError] | None = Field(description="Why an invalid trip was not scored.")
