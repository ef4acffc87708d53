"""Schemas of the assessments resource beyond the contract's request and response forms."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from risk_rules.forms import Band, Status


class AssessmentSummary(BaseModel):
    """One line of the assessment list; GET /v1/assessments/{id} has the full record."""

    id: str
    created_at: dt.datetime
    status: Status
    band: Band | None = Field(description="Null when the trip is out of scope.")
    probability: float | None
    traveler_reference: str | None
    trip_start: dt.date
    trip_end: dt.date
    model_version: str
    current_revision: int = Field(description="The latest scoring's number; above 1 after a re-scoring.")
    changed_at: dt.datetime = Field(description="When the assessment was created or last re-scored.")
    review_state: str = Field(description="The review state now (see GET /v1/assessments/{id}/reviews).")


class AssessmentPage(BaseModel):
    """A page of assessments, newest first."""

    items: list[AssessmentSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")
