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
    interval: tuple[float, float] = Field(description="95% posterior interval of the odds multiplier.")
    prior: dict[str, Any] | None = Field(
        default=None,
        description="What the sources say before any case is counted: the grade, the prior's mean and 95% interval"
        " of the coefficient (log-odds), why, the passages behind the grade, and a note when the sources do not"
        " support the factor directly.",
    )
    posterior: dict[str, Any] | None = Field(
        default=None, description="The coefficient after the cases: mode, mean and 95% interval (log-odds)."
    )
    cases_fired: int | None = Field(default=None, description="In how many training incidents the factor fired.")
    moved_from_prior: str | None = Field(
        default=None, description="A plain sentence when the cases moved the weight far from its prior."
    )


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
    metrics: dict[str, Any] = Field(
        description="The headline validation figures: leave-one-event-out AUC of the model (with its 90% interval)"
        " and of the checklist of fired factors, band shares, the temporal backtest's AUCs, the in-sample AUC"
        " against synthetic controls (labelled as such), and every target missed."
    )
    validation: dict[str, Any] | None = Field(
        default=None,
        description="Leave-one-event-out and temporal backtest in full: each figure (AUCs of model and checklist,"
        " their difference, the share of held-out incidents high or severe, the share of control trips above"
        " elevated) as the mean over population draws with a 90% interval from a bootstrap over events and its"
        " value on each draw; each target with whether it is met; the priors each scheme used; and every"
        " held-out incident's score.",
    )
    priors: dict[str, Any] | None = Field(default=None, description="The prior grades and what each means.")
    factors: list[FactorInfo]
