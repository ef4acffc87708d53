"""Response schemas of GET /v1/factors and GET /v1/model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    # Fields may be added to these documents without breaking clients (the contract's rule).
    model_config = ConfigDict(extra="allow")


class EvidenceItem(_Open):
    source: str = Field(description="Id of the reference source.")
    quote: str = Field(description="The passage the factor rests on, verbatim.")


class FactorInfo(_Open):
    """A factor the rules can fire, with the active model's weight for it."""

    id: str
    title: str
    description: str
    evidence: list[EvidenceItem]
    coefficient: float = Field(description="Log-odds added when the factor's value is 1.")
    odds_multiplier: float = Field(description="exp(coefficient): how many times the odds multiply.")
    interval: tuple[float, float] = Field(description="95% bootstrap interval of the odds multiplier.")


class FactorList(BaseModel):
    """Every factor the rules can fire."""

    items: list[FactorInfo]
    model_version: str
    rules_version: str


class ModelCard(_Open):
    """The active model's card: what it was fitted on, how well it does, and its coefficients."""

    version: str
    trained_at: str | None = None
    rules_version: str
    data: dict[str, Any] = Field(description="Incidents and controls it was fitted on, and the base rate.")
    base_rate: Any = Field(description="The per-trip base rate the intercept is corrected to, and its source.")
    intercepts: Any
    metrics: dict[str, Any] = Field(description="Cross-validated discrimination and calibration.")
    factors: list[FactorInfo]
