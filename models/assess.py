"""The scoring path: request → facts → rules → model → explanation.

`Assessor.assess` scores one trip and returns the contract's response body (without the stored id);
`Assessor.assess_many` scores a roster in one vectorised pass. Both run the same facts and rules as
training, and score with numpy from the JSON artifact.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from models.artifact import THIRD_COUNTRY_FEATURE, ModelArtifact, active_version, load_artifact
from risk_rules.errors import ModelArtifactError
from risk_rules.facts import THIRD_COUNTRY, UNASSESSED, LegFacts, leg_facts, possible_employer_matches
from risk_rules.forms import (
    AssessmentRequest,
    AssessmentResult,
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


def _sorted_quantile(ordered: np.ndarray, percent: float) -> float:
    """Linear-interpolated percentile of an already sorted array (numpy's default method)."""
    position = (len(ordered) - 1) * percent / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def _column_quantile(ordered: np.ndarray, position: float) -> np.ndarray:
    """Row-wise linear-interpolated quantile at `position` of an array sorted along axis 1."""
    low = int(position)
    high = min(low + 1, ordered.shape[1] - 1)
    return ordered[:, low] + (ordered[:, high] - ordered[:, low]) * (position - low)


def _logit(p: float) -> float:
    p = min(max(p, 1e-15), 1 - 1e-15)
    return math.log(p / (1 - p))


def _leg_body(facts: LegFacts, probability: float | None) -> dict[str, Any]:
    leg = facts.leg
    return {
        "country": leg.country,
        "arrive": leg.arrive.isoformat(),
        "depart": leg.depart.isoformat(),
        "assessed": probability is not None,
        "probability": None if probability is None else round(probability, 8),
    }


def _factor_body(row: FactorRow, legs: Sequence[LegFacts], evidence: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "id": row.rule.id,
        "title": row.rule.title,
        "value": round(row.value, 6),
        "coefficient": round(row.coefficient, 6),
        "contribution": round(row.contribution, 6),
        "odds_multiplier": round(math.exp(row.contribution), 6),
        "leg": legs[row.leg_index].leg.country,
        "reason": row.reason,
        "evidence": evidence,
        "derived_from": row.derived_from,
    }


class FactorRow(NamedTuple):
    """One line of the factor table: what fired, how much it adds, and what it rests on.

    A named tuple: one is built per fired factor on every assessment, and a tuple builds faster than a
    frozen dataclass."""

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
        self._coef_list = [float(c) for c in model.coefficients]
        # A factor's evidence (source and verbatim quote) is the same in every response: built once, and
        # shared by the bodies that cite it, which treat it as read-only.
        self._evidence = {
            rule.id: [{"source": e.source, "quote": e.quote} for e in rule.evidence] for rule in rules.rules
        }

    @classmethod
    def load(cls, version: str | None = None, model_directory: Path | None = None) -> Assessor:
        """The bundled rules with the active (or a named) model version."""
        rules = bundled_rules()
        chosen = version or active_version(model_directory)
        return cls(rules, load_artifact(chosen, model_directory))

    # ------------------------------------------------------------------ one trip

    def factor_table(self, legs: Sequence[LegFacts], values: Sequence[Sequence[float]]) -> list[FactorRow]:
        """Every fired factor with its contribution on the leg where it contributes most, largest first.

        `legs` are the assessed legs and `values` their rule values (rule order), one row per leg.
        """
        coef = self._coef_list
        best: dict[int, tuple[float, int]] = {}  # rule index -> (contribution, leg index)
        for index, row in enumerate(values):
            for j, value in enumerate(row):
                if value > 0:
                    contribution = value * coef[j]
                    if j not in best or contribution > best[j][0]:
                        best[j] = (contribution, index)
        rules = self.rules.rules
        rows: list[FactorRow] = []
        for j, (contribution, index) in best.items():
            rule, facts = rules[j], legs[index]
            rows.append(
                FactorRow(
                    rule=rule,
                    value=values[index][j],
                    coefficient=coef[j],
                    contribution=contribution,
                    leg_index=index,
                    reason=rule.reason(facts),
                    derived_from=rule.derived_from(facts),
                )
            )
        rows.sort(key=lambda r: (-r.contribution, r.rule.id))
        return rows

    def _interval(
        self, values: Sequence[Sequence[float]], third: Sequence[bool], probability: float
    ) -> tuple[float, float]:
        """The 95% posterior interval of the trip probability for the assessed legs' rule values.

        Sums only the non-zero features' posterior-draw columns: a handful of length-B vector additions,
        cheaper than a matrix product and free of BLAS threads contending for the worker's core.
        """
        survival = None
        for row, is_third in zip(values, third, strict=True):
            eta = self._boot_int.copy()
            for j, value in enumerate(row):
                if value:
                    eta += value * self._boot_coef_t[j]
            if is_third:
                eta += self._boot_coef_t[self._tc]
            leg_survival = 1.0 / (1.0 + np.exp(eta))  # 1 − sigmoid(eta)
            survival = leg_survival if survival is None else survival * leg_survival
        boot = 1.0 - survival
        boot.sort()
        lower, upper = _sorted_quantile(boot, INTERVAL[0]), _sorted_quantile(boot, INTERVAL[1])
        # The percentile interval is reported around the point estimate; when skew of the draws puts the
        # estimate outside it, the interval is widened to include it rather than contradict the score.
        return min(lower, probability), max(upper, probability)

    def assess(self, request: AssessmentRequest, reference: ReferenceSnapshot) -> AssessmentResult:
        """Score one validated request; the response body as a validated model."""
        return AssessmentResult.model_validate(self.assess_body(request, reference))

    def assess_body(self, request: AssessmentRequest, reference: ReferenceSnapshot) -> dict[str, Any]:
        """Score one validated request; the contract's response body (without id) as JSON-ready data.

        This is the request path: plain dicts, no re-validation of values computed here. `assess`
        validates the same body against `AssessmentResult`, and the tests hold the two equal.
        """
        legs, assessed, values = self._legs(request, reference)
        if not assessed:
            return self._out_of_scope_body(legs, reference)
        # Per-leg arithmetic in plain Python: with one or two legs it beats numpy's call overhead.
        coef = self._coef_list
        intercept = self.model.intercept
        tc_coef = coef[self._tc]
        leg_probability: list[float] = []
        survival = 1.0
        baseline_survival = 1.0
        for f, row in zip(assessed, values, strict=True):
            third = tc_coef if f.kind == THIRD_COUNTRY else 0.0
            eta = intercept + third + sum(v * c for v, c in zip(row, coef, strict=False) if v)
            p = 1.0 / (1.0 + math.exp(-eta))
            leg_probability.append(p)
            survival *= 1.0 - p
            baseline_survival *= 1.0 - 1.0 / (1.0 + math.exp(-(intercept + third)))
        probability = 1.0 - survival
        lower, upper = self._interval(values, [f.kind == THIRD_COUNTRY for f in assessed], probability)
        return self._scored_body(
            request, reference, legs, assessed, values, leg_probability, probability, lower, upper,
            1.0 - baseline_survival,
        )  # fmt: skip

    def assess_bodies(
        self, requests: Sequence[AssessmentRequest], reference: ReferenceSnapshot
    ) -> list[dict[str, Any]]:
        """Score a roster: one response body per request, the content `assess_body` gives for each.

        Facts, rules and explanations run per trip; the model, the bootstrap intervals and the bands run
        once over the roster's leg matrix, as in `assess_many`. Probabilities can differ from
        `assess_body`'s in the last bits of floating point (summation order), never after rounding to
        the precision a body reports in all but rare ties.
        """
        prepared = [self._legs(request, reference) for request in requests]
        rows: list[list[float]] = []
        starts: list[int] = []
        for _, assessed, values in prepared:
            if assessed:
                starts.append(len(rows))
                rows.extend(
                    v + [1.0 if f.kind == THIRD_COUNTRY else 0.0] for f, v in zip(assessed, values, strict=True)
                )
        scores = self._matrix_scores(np.asarray(rows), np.asarray(starts)) if rows else None
        bodies: list[dict[str, Any]] = []
        k = 0
        for request, (legs, assessed, values) in zip(requests, prepared, strict=True):
            if not assessed:
                bodies.append(self._out_of_scope_body(legs, reference))
                continue
            assert scores is not None
            leg_p, p, lo, hi, base = scores
            first = starts[k]
            bodies.append(
                self._scored_body(
                    request,
                    reference,
                    legs,
                    assessed,
                    values,
                    leg_p[first : first + len(assessed)].tolist(),
                    float(p[k]),
                    float(lo[k]),
                    float(hi[k]),
                    float(base[k]),
                )  # fmt: skip
            )
            k += 1
        return bodies

    def _legs(
        self, request: AssessmentRequest, reference: ReferenceSnapshot
    ) -> tuple[list[LegFacts], list[LegFacts], list[list[float]]]:
        """The trip's leg facts, its assessed legs, and their rule values (rule order)."""
        legs = leg_facts(request, reference)
        assessed = [f for f in legs if f.kind != UNASSESSED]
        return legs, assessed, [self.rules.values(f) for f in assessed]

    def _matrix_scores(
        self, x: np.ndarray, idx: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Leg probabilities, and per trip the probability, its interval and the baseline, for a leg matrix
        (model feature order) whose trips start at the rows `idx`."""
        eta = self.model.intercept + x @ self._coef
        leg_p = 1.0 / (1.0 + np.exp(-eta))
        # Legs combine as 1 − Π(1 − p): sums of log-survival over each trip's contiguous rows.
        p = -np.expm1(np.add.reduceat(-np.logaddexp(0.0, eta), idx))
        base_eta = self.model.intercept + x[:, self._tc] * self._coef[self._tc]
        base = -np.expm1(np.add.reduceat(-np.logaddexp(0.0, base_eta), idx))
        boot_eta = x @ self._boot_coef_t
        boot_eta += self._boot_int
        boot_p = -np.expm1(np.add.reduceat(-np.logaddexp(0.0, boot_eta), idx, axis=0))
        b = boot_p.shape[1]
        lo_pos, hi_pos = ((b - 1) * q / 100.0 for q in INTERVAL)
        # Only the four order statistics around the two quantiles are needed: partition, not sort.
        kth = sorted({int(lo_pos), min(int(lo_pos) + 1, b - 1), int(hi_pos), min(int(hi_pos) + 1, b - 1)})
        boot_p.partition(kth, axis=1)
        lo = np.minimum(_column_quantile(boot_p, lo_pos), p)
        hi = np.maximum(_column_quantile(boot_p, hi_pos), p)
        return leg_p, p, lo, hi, base

    def _out_of_scope_body(self, legs: Sequence[LegFacts], reference: ReferenceSnapshot) -> dict[str, Any]:
        return {
            "status": "out_of_scope",
            "score": None,
            "baseline": None,
            "factors": [],
            "legs": [_leg_body(f, None) for f in legs],
            "mitigations": [],
            "review": {"required": False, "state": "not_required"},
            "versions": self._versions(reference),
            "covered_destinations": reference.covered_destinations(),
            "possible_employer_matches": [],
        }

    def _versions(self, reference: ReferenceSnapshot) -> dict[str, str]:
        return {"model": self.model.version, "rules": self.rules.version, "reference_data": reference.version}

    def _scored_body(
        self,
        request: AssessmentRequest,
        reference: ReferenceSnapshot,
        legs: Sequence[LegFacts],
        assessed: Sequence[LegFacts],
        values: Sequence[Sequence[float]],
        leg_probabilities: Sequence[float],
        probability: float,
        lower: float,
        upper: float,
        baseline: float,
    ) -> dict[str, Any]:
        """The response body of a scored trip, from its scores: explanation, mitigations, review."""
        leg_probability = {id(f): p for f, p in zip(assessed, leg_probabilities, strict=True)}
        band = self.model.bands.band(probability)
        review = band in REVIEW_BANDS
        table = self.factor_table(assessed, values)
        mitigations: dict[str, None] = {}
        for row in table:
            if row.contribution > 0:
                for text in row.rule.mitigations:
                    mitigations.setdefault(text, None)
        return {
            "status": "scored",
            "score": {
                "probability": round(probability, 8),
                "interval": [round(lower, 8), round(upper, 8)],
                "band": band,
                "log_odds": round(_logit(probability), 4),
            },
            "baseline": {"probability": round(baseline, 8)},
            "factors": [_factor_body(row, assessed, self._evidence[row.rule.id]) for row in table],
            "legs": [_leg_body(f, leg_probability.get(id(f))) for f in legs],
            "mitigations": list(mitigations),
            "review": {"required": review, "state": "pending" if review else "not_required"},
            "versions": self._versions(reference),
            "covered_destinations": reference.covered_destinations(),
            "possible_employer_matches": possible_employer_matches(request, assessed, reference),
        }

    # ------------------------------------------------------------------ a roster

    def assess_many(
        self, requests: Sequence[AssessmentRequest], reference: ReferenceSnapshot, top: int = 3
    ) -> BatchResult:
        """Score a roster in one vectorised pass: probabilities, intervals, bands and top factors.

        Facts and rules run per trip (as in `assess`); the model, the posterior interval, the bands and
        the ranking of factors run once over the whole roster's leg matrix.
        """
        rows: list[list[float]] = []
        starts: list[int] = []
        scored_trips: list[int] = []
        # The loop allocates many short-lived, acyclic dicts; pausing the cycle collector for it
        # avoids repeated full scans of a growing heap (it is re-enabled even on error).
        collecting = gc.isenabled()
        gc.disable()
        try:
            for t, request in enumerate(requests):
                legs = [f for f in leg_facts(request, reference) if f.kind != UNASSESSED]
                if legs:
                    starts.append(len(rows))
                    scored_trips.append(t)
                    rows.extend(self.rules.values(f) + [1.0 if f.kind == THIRD_COUNTRY else 0.0] for f in legs)
        finally:
            if collecting:
                gc.enable()
        n = len(requests)
        probability = np.full(n, np.nan)
        lower = np.full(n, np.nan)
        upper = np.full(n, np.nan)
        baseline = np.full(n, np.nan)
        bands: list[str | None] = [None] * n
        top_factors: list[list[str]] = [[] for _ in range(n)]
        if not rows:
            return BatchResult(probability, lower, upper, baseline, bands, top_factors)
        x = np.asarray(rows)
        trips = np.asarray(scored_trips)
        _, p, lo, hi, base = self._matrix_scores(x, np.asarray(starts))
        probability[trips] = p
        baseline[trips] = base
        lower[trips] = lo
        upper[trips] = hi
        idx = np.asarray(starts)
        thresholds = self.model.bands
        cut = np.array([thresholds.elevated, thresholds.high, thresholds.severe])
        band_names = ("low", "elevated", "high", "severe")
        band_index = np.searchsorted(cut, p, side="right")
        contributions = np.maximum.reduceat(x[:, :-1] * self._coef[:-1], idx, axis=0)
        order = np.argsort(-contributions, axis=1, kind="stable")[:, :top]
        ids = self.rules.ids
        for k, t in enumerate(scored_trips):
            bands[t] = band_names[band_index[k]]
            top_factors[t] = [ids[j] for j in order[k] if contributions[k, j] > 0]
        return BatchResult(probability, lower, upper, baseline, bands, top_factors)

    # ------------------------------------------------------------------ what the model is

    def factors(self) -> list[dict[str, Any]]:
        """Every factor the rules can fire, with its prior, posterior and interval (GET /v1/factors)."""
        card = self.model.document
        intervals = card.get("coefficient_intervals", {})
        weights = card.get("factors", {})
        out = []
        for j, rule in enumerate(self.rules.rules):
            coefficient = float(self._coef[j])
            lo, hi = intervals.get(rule.id, [coefficient, coefficient])
            weight = weights.get(rule.id, {})
            prior = rule.prior
            prior_lo, prior_hi = prior.grade.interval()
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
                    "prior": {
                        "grade": prior.grade.name,
                        "mean": round(prior.grade.expected(), 6),
                        "interval": [round(prior_lo, 6), round(prior_hi, 6)],
                        "rationale": prior.rationale,
                        "evidence": [{"source": e.source, "quote": e.quote} for e in prior.evidence],
                        "unsupported": prior.unsupported,
                    },
                    "posterior": weight.get("posterior"),
                    "cases_fired": weight.get("cases_fired"),
                    "moved_from_prior": weight.get("moved"),
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
            "validation": document.get("validation"),
            "priors": document.get("priors"),
            "fit": document.get("fit"),
            "bands": document["bands"],
            "constraints": document.get("constraints", []),
            "limitations": document.get("limitations", []),
            "factors": self.factors(),
        }
