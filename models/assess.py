"""The scoring path: request → facts → rules → model → explanation.

`Assessor.assess` scores one trip and returns the contract's response body (without the stored id);
`Assessor.assess_many` scores a roster in one vectorised pass. Both run the same facts and rules as
training, and score with numpy from the JSON artifact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.artifact import THIRD_COUNTRY_FEATURE, ModelArtifact, active_version, load_artifact
from risk_rules.errors import ModelArtifactError
from risk_rules.facts import THIRD_COUNTRY, UNASSESSED, LegFacts, leg_facts
from risk_rules.forms import (
    AssessmentRequest,
    AssessmentResult,
    Baseline,
    Evidence,
    FactorOut,
    LegOut,
    Review,
    Score,
    Status,
    Versions,
)
from risk_rules.reference import ReferenceSnapshot
from risk_rules.ruleset import Rule, RuleSet, bundled_rules

INTERVAL = (2.5, 97.5)
REVIEW_BANDS = frozenset({"high", "severe"})


def feature_matrix(ruleset: RuleSet, legs: Sequence[LegFacts]) -> np.ndarray:
    """One row per leg: each rule's value, then the third-country-leg indicator (model order)."""
    rows = [ruleset.values(f) + [1.0 if f.kind == THIRD_COUNTRY else 0.0] for f in legs]
    return np.asarray(rows, dtype=float).reshape(len(rows), len(ruleset.rules) + 1)


def model_features(ruleset: RuleSet) -> list[str]:
    return [*ruleset.ids, THIRD_COUNTRY_FEATURE]


def _combine(p_legs: np.ndarray, axis: int = -1) -> np.ndarray:
    """Trip probability from independent legs: 1 − Π(1 − p)."""
    return 1.0 - np.prod(1.0 - p_legs, axis=axis)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    p = min(max(p, 1e-15), 1 - 1e-15)
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class FactorRow:
    """One line of the factor table: what fired, how much it adds, and what it rests on."""

    rule: Rule
    value: float
    coefficient: float
    contribution: float
    leg_index: int
    reason: str
    derived_from: list[str]


@dataclass(frozen=True)
class BatchResult:
    """Scores for a roster, aligned with the input order (NaN where a trip is out of scope)."""

    probability: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    baseline: np.ndarray
    bands: list[str | None]
    top_factors: list[list[str]]


class Assessor:
    """Scores trips with one rule set and one model artifact."""

    def __init__(self, rules: RuleSet, model: ModelArtifact) -> None:
        expected = model_features(rules)
        if list(model.features) != expected:
            raise ModelArtifactError(
                f"model {model.version} was trained on features {list(model.features)}, but the rule set"
                f" {rules.version} gives {expected}: retrain with `travelrisk model train --activate`"
            )
        self.rules = rules
        self.model = model
        self._coef = model.coefficients
        self._boot_coef_t = np.ascontiguousarray(model.bootstrap_coefficients.T)  # (F, B)
        self._boot_int = model.bootstrap_intercepts
        self._tc = model.third_country_index

    @classmethod
    def load(cls, version: str | None = None, model_directory: Path | None = None) -> Assessor:
        """The bundled rules with the active (or a named) model version."""
        rules = bundled_rules()
        chosen = version or active_version(model_directory)
        return cls(rules, load_artifact(chosen, model_directory))

    # ------------------------------------------------------------------ one trip

    def versions(self, reference: ReferenceSnapshot) -> Versions:
        return Versions(model=self.model.version, rules=self.rules.version, reference_data=reference.version)

    def factor_table(self, legs: Sequence[LegFacts], x: np.ndarray, assessed: Sequence[int]) -> list[FactorRow]:
        """Every fired factor with its contribution on the leg where it contributes most, largest first."""
        rows: list[FactorRow] = []
        contributions = x * self._coef  # (L, F)
        for j, rule in enumerate(self.rules.rules):
            column = x[:, j]
            if not column.any():
                continue
            best = int(np.argmax(np.where(column > 0, contributions[:, j], -np.inf)))
            facts = legs[assessed[best]]
            rows.append(
                FactorRow(
                    rule=rule,
                    value=float(column[best]),
                    coefficient=float(self._coef[j]),
                    contribution=float(contributions[best, j]),
                    leg_index=assessed[best],
                    reason=rule.reason(facts),
                    derived_from=rule.derived_from(facts),
                )
            )
        rows.sort(key=lambda r: (-r.contribution, r.rule.id))
        return rows

    def assess(self, request: AssessmentRequest, reference: ReferenceSnapshot) -> AssessmentResult:
        """Score one validated request against a reference-data snapshot."""
        legs = leg_facts(request, reference)
        assessed = [i for i, f in enumerate(legs) if f.kind != UNASSESSED]
        versions = self.versions(reference)
        if not assessed:
            return AssessmentResult(
                status=Status.out_of_scope,
                score=None,
                baseline=None,
                factors=[],
                legs=[
                    LegOut(country=f.leg.country, arrive=f.leg.arrive, depart=f.leg.depart, assessed=False)
                    for f in legs
                ],
                mitigations=[],
                review=Review(required=False, state="not_required"),
                versions=versions,
                covered_destinations=reference.covered_destinations(),
            )
        x = feature_matrix(self.rules, [legs[i] for i in assessed])
        eta = self.model.intercept + x @ self._coef
        p_legs = _sigmoid(eta)
        probability = float(_combine(p_legs))
        boot = _combine(_sigmoid(self._boot_int[:, None] + (x @ self._boot_coef_t).T), axis=1)
        lower, upper = np.percentile(boot, INTERVAL)
        # The percentile interval is reported around the point estimate; when bootstrap skew puts the
        # estimate outside it, the interval is widened to include it rather than contradict the score.
        lower, upper = min(float(lower), probability), max(float(upper), probability)
        baseline_eta = self.model.intercept + x[:, self._tc] * self._coef[self._tc]
        baseline = float(_combine(_sigmoid(baseline_eta)))
        band = self.model.bands.band(probability)
        table = self.factor_table(legs, x, assessed)
        leg_probability = dict(zip(assessed, p_legs.tolist(), strict=True))
        mitigations: dict[str, None] = {}
        for row in table:
            if row.contribution > 0:
                for text in row.rule.mitigations:
                    mitigations.setdefault(text, None)
        return AssessmentResult(
            status=Status.scored,
            score=Score(
                probability=round(probability, 8),
                interval=(round(lower, 8), round(upper, 8)),
                band=band,
                log_odds=round(_logit(probability), 4),
            ),
            baseline=Baseline(probability=round(baseline, 8)),
            factors=[self._factor_out(row, legs) for row in table],
            legs=[
                LegOut(
                    country=f.leg.country,
                    arrive=f.leg.arrive,
                    depart=f.leg.depart,
                    assessed=i in leg_probability,
                    probability=round(leg_probability[i], 8) if i in leg_probability else None,
                )
                for i, f in enumerate(legs)
            ],
            mitigations=list(mitigations),
            review=Review(required=band in REVIEW_BANDS, state="pending" if band in REVIEW_BANDS else "not_required"),
            versions=versions,
            covered_destinations=reference.covered_destinations(),
        )

    @staticmethod
    def _factor_out(row: FactorRow, legs: Sequence[LegFacts]) -> FactorOut:
        return FactorOut(
            id=row.rule.id,
            title=row.rule.title,
            value=round(row.value, 6),
            coefficient=round(row.coefficient, 6),
            contribution=round(row.contribution, 6),
            odds_multiplier=round(math.exp(row.contribution), 6),
            leg=legs[row.leg_index].leg.country,
            reason=row.reason,
            evidence=[Evidence(source=e.source, quote=e.quote) for e in row.rule.evidence],
            derived_from=row.derived_from,
        )

    # ------------------------------------------------------------------ a roster

    def assess_many(
        self, requests: Sequence[AssessmentRequest], reference: ReferenceSnapshot, top: int = 3
    ) -> BatchResult:
        """Score a roster in one vectorised pass: probabilities, intervals, bands and top factors."""
        rows: list[np.ndarray] = []
        owner: list[int] = []
        for t, request in enumerate(requests):
            legs = [f for f in leg_facts(request, reference) if f.kind != UNASSESSED]
            if legs:
                rows.append(feature_matrix(self.rules, legs))
                owner.extend([t] * len(legs))
        n = len(requests)
        probability = np.full(n, np.nan)
        lower = np.full(n, np.nan)
        upper = np.full(n, np.nan)
        baseline = np.full(n, np.nan)
        bands: list[str | None] = [None] * n
        top_factors: list[list[str]] = [[] for _ in range(n)]
        if not rows:
            return BatchResult(probability, lower, upper, baseline, bands, top_factors)
        x = np.vstack(rows)
        index = np.asarray(owner)
        log_survival = np.log1p(-_sigmoid(self.model.intercept + x @ self._coef))
        probability_in = -np.expm1(np.bincount(index, weights=log_survival, minlength=n))
        base_eta = self.model.intercept + x[:, self._tc] * self._coef[self._tc]
        baseline_in = -np.expm1(np.bincount(index, weights=np.log1p(-_sigmoid(base_eta)), minlength=n))
        boot_eta = self._boot_int[None, :] + x @ self._boot_coef_t  # (rows, B)
        boot_log_survival = np.log1p(-_sigmoid(boot_eta))
        per_trip = np.zeros((n, boot_log_survival.shape[1]))
        np.add.at(per_trip, index, boot_log_survival)
        boot_p = -np.expm1(per_trip)
        lo, hi = np.percentile(boot_p, INTERVAL, axis=1)
        scored = np.zeros(n, dtype=bool)
        scored[index] = True
        probability[scored] = probability_in[scored]
        baseline[scored] = baseline_in[scored]
        lower[scored] = np.minimum(lo[scored], probability_in[scored])
        upper[scored] = np.maximum(hi[scored], probability_in[scored])
        thresholds = self.model.bands
        cut = np.array([thresholds.elevated, thresholds.high, thresholds.severe])
        band_names = np.array(["low", "elevated", "high", "severe"])
        band_index = np.searchsorted(cut, probability_in, side="right")
        contributions = x[:, :-1] * self._coef[:-1]
        per_trip_contrib = np.zeros((n, contributions.shape[1]))
        np.maximum.at(per_trip_contrib, index, contributions)
        order = np.argsort(-per_trip_contrib, axis=1, kind="stable")[:, :top]
        ids = np.asarray(self.rules.ids)
        for t in np.flatnonzero(scored):
            bands[t] = str(band_names[band_index[t]])
            top_factors[t] = [str(ids[j]) for j in order[t] if per_trip_contrib[t, j] > 0]
        return BatchResult(probability, lower, upper, baseline, bands, top_factors)

    # ------------------------------------------------------------------ what the model is

    def factors(self) -> list[dict[str, Any]]:
        """Every factor the rules can fire, with its coefficient and interval (GET /v1/factors)."""
        card = self.model.document
        intervals = card.get("coefficient_intervals", {})
        out = []
        for j, rule in enumerate(self.rules.rules):
            coefficient = float(self._coef[j])
            lo, hi = intervals.get(rule.id, [coefficient, coefficient])
            out.append(
                {
                    "id": rule.id,
                    "title": rule.title,
                    "description": rule.description,
                    "evidence": [{"source": e.source, "quote": e.quote} for e in rule.evidence],
                    "mitigations": list(rule.mitigations),
                    "coefficient": round(coefficient, 6),
                    "odds_multiplier": round(math.exp(coefficient), 6),
                    "interval": [round(math.exp(lo), 6), round(math.exp(hi), 6)],
                }
            )
        return out

    def model_card(self) -> dict[str, Any]:
        """The active model's card (GET /v1/model)."""
        document = self.model.document
        return {
            "version": self.model.version,
            "trained_at": document.get("trained_at"),
            "rules_version": self.model.rules_version,
            "data": document["data"],
            "base_rate": document["base_rate"],
            "intercepts": document["intercepts"],
            "metrics": document["metrics"],
            "bands": document["bands"],
            "constraints": document.get("constraints", []),
            "limitations": document.get("limitations", []),
            "factors": self.factors(),
        }
