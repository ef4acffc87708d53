"""Schemas of the policy resource."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator

from risk_rules.forms import Band

BAND_ORDER = (Band.low, Band.elevated, Band.high, Band.severe)


class Thresholds(BaseModel):
    """Probability thresholds at which a trip enters a band; a band left out keeps the model's."""

    model_config = ConfigDict(extra="forbid")

    elevated: float | None = Field(default=None, gt=0, lt=1)
    high: float | None = Field(default=None, gt=0, lt=1)
    severe: float | None = Field(default=None, gt=0, lt=1)


class PolicyIn(BaseModel):
    """The whole policy (PUT replaces it)."""

    model_config = ConfigDict(extra="forbid")

    review_bands: list[Band] = Field(
        description="Bands whose assessments need a review decision.", examples=[["high", "severe"]]
    )
    severe_approvals: int = Field(
        ge=1, le=2, description="Approvals from different holders a severe assessment needs (1, or 2 for four eyes)."
    )
    thresholds: Thresholds | None = Field(
        default=None,
        description="Probability thresholds stricter than the model's for one destination leg: a trip enters a"
        " band when its probability reaches the policy's threshold or the model's band for its own itinerary"
        " (multiples of that itinerary's no-factor odds), whichever band is higher; null uses the model's.",
    )

    @field_validator("review_bands")
    @classmethod
    def _distinct(cls, bands: list[Band]) -> list[Band]:
        if len(set(bands)) != len(bands):
            raise ValueError("list each band once")
        # Stored in band order, so that equal policies compare equal.
        return sorted(bands, key=BAND_ORDER.index)


class BandThresholds(BaseModel):
    elevated: float
    high: float
    severe: float


class PolicyOut(BaseModel):
    """A version of the tenant's policy."""

    version: int = Field(description="0 is the default policy, before the tenant's admin set one.")
    review_bands: list[Band]
    severe_approvals: int
    thresholds: Thresholds | None
    effective_thresholds: BandThresholds = Field(
        description="The thresholds a trip of one destination leg is banded with now: the policy's where it sets"
        " one, the active model's otherwise (if a newer model is stricter than the policy, the model's). A trip of"
        " other legs is banded against its own itinerary's no-factor odds, or the policy's threshold if that is"
        " reached first."
    )
    model_thresholds: BandThresholds = Field(
        description="The active model's thresholds for one destination leg; every itinerary's are the same"
        " multiples (elevated 3×, high 10×, severe 50×) of its own no-factor odds (baseline.band_thresholds of"
        " an assessment)."
    )
    created_at: dt.datetime | None = Field(description="When this version was set; null for the default.")
    changed_by_key: str | None = Field(description="Id of the admin key that set it.")
    changed_by_holder: str | None = Field(description="Holder of that key.")


class PolicyHistory(BaseModel):
    """Every version of the tenant's policy, oldest first (version 0, the default, included)."""

    items: list[PolicyOut]
