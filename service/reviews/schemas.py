"""Schemas of the reviews resource."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from risk_rules.forms import Band
from service.reviews.states import Decision, State

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Condition = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class ReviewIn(BaseModel):
    """A decision on the revision of an assessment the reviewer read."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "decision": "approved_with_conditions",
                    "revision": 2,
                    "rationale": "Travel approved for the conference only; no meetings outside the venue.",
                    "conditions": [
                        "Register the trip with the home country's consulate and agree a check-in schedule with"
                        " the employer."
                    ],
                }
            ]
        },
    )

    decision: Decision
    revision: int = Field(ge=1, description="The revision you read; a stale one is a 409 naming the current one.")
    rationale: Text = Field(description="Why: required for every decision.")
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=20,
        validate_default=True,
        description="Required (one or more) for `approved_with_conditions`; not accepted with other decisions.",
    )

    @field_validator("conditions")
    @classmethod
    def _conditions_match_decision(cls, conditions: list[str], info: ValidationInfo) -> list[str]:
        decision = info.data.get("decision")
        if decision is Decision.approved_with_conditions and not conditions:
            raise ValueError("list at least one condition for approved_with_conditions")
        if decision is not None and decision is not Decision.approved_with_conditions and conditions:
            raise ValueError(
                f"conditions go with approved_with_conditions, not {decision.value}: change the decision or leave"
                " conditions out"
            )
        return conditions


class ReviewOut(BaseModel):
    """A recorded decision. Never changed or deleted."""

    id: str
    assessment_id: str
    decision: Decision
    rationale: str
    conditions: list[str]
    revision: int = Field(description="The revision the reviewer read and decided on.")
    band: Band | None = Field(description="The band of that revision.")
    policy_version: int = Field(description="The tenant policy version that revision was judged under.")
    round: int = Field(description="1, plus one for every re-open: four-eyes rules count one round's decisions.")
    state_before: State
    state_after: State = Field(description="The assessment's review state this decision left.")
    holder: str = Field(description="The staff member who decided (the key's holder).")
    key_id: str = Field(description="The public id of the key used.")
    created_at: dt.datetime


class ReviewEventOut(BaseModel):
    """A step in the review state's history."""

    at: dt.datetime
    cause: str = Field(description="`scored`, `decision`, `reopened` (a re-score raised the band) or `rescored`.")
    state_before: State | None
    state_after: State
    revision: int
    band: Band | None
    policy_version: int
    note: str = Field(description="What happened, with a re-score's reason.")
    review_id: str | None


class Requester(BaseModel):
    key_id: str | None
    holder: str | None


class ReviewHistory(BaseModel):
    """Every decision on an assessment, oldest first, and the history of its review state."""

    assessment_id: str
    state: State
    current_revision: int
    requested_by: Requester
    items: list[ReviewOut] = Field(description="Every decision, oldest first.")
    history: list[ReviewEventOut] = Field(description="Every change of the review state, oldest first.")


class QueueItem(BaseModel):
    """An assessment in the review queue."""

    assessment_id: str
    state: State
    revision: int
    band: Band | None
    probability: float | None
    traveler_reference: str | None
    destinations: list[str]
    trip_start: dt.date
    trip_end: dt.date
    top_factor_id: str | None
    top_factor_title: str | None
    waiting_since: dt.datetime | None = Field(description="Since when it has been in this state.")


class QueuePage(BaseModel):
    """A page of the review queue, earliest departure first."""

    items: list[QueueItem]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")
