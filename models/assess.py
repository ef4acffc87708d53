"""The scoring path: request → facts → rules → model → explanation.

`Assessor.assess` scores one trip and returns the contract's response body (without the stored id);
`Assessor.assess_many` scores a roster in one vectorised pass. Both run the same facts and rules as
training, and score with numpy from the JSON artifact.
"""

from __future__ import annotations

import gc
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from models.artifact import THIRD_COUNTRY_FEATURE, ModelArtifact, active_version, load_artifact
from risk_rules.errors import ModelArtifactError
from risk_rules.facts import (
    CLAIMED_BY_CITIZENSHIP,
    EMPLOYER_DISPUTES_ACTIVE_SHARE,
    FIRST_PASSPORT_IS_DESTINATIONS,
    LEFT_OUT,
    THIRD_COUNTRY,
    UNASSESSED,
    LegFacts,
    leg_facts,
    possible_employer_matches,
)
from risk_rules.forms import (
    AssessmentRequest,
    AssessmentResult,
)
from risk_rules.reference import ReferenceSnapshot
from risk_rules.ruleset import Rule, RuleSet, bundled_rules
from risk_rules.unknowns import Expectations, Group

INTERVAL = (2.5, 97.5)
REVIEW_BANDS = frozenset({"high", "severe"})
BAND_NAMES = ("low", "elevated", "high", "severe")


def model_features(ruleset: RuleSet) -> list[str]:
    return [*ruleset.ids, THIRD_COUNTRY_FEATURE]


def feature_matrix(expectations: Expectations, legs: Sequence[LegFacts]) -> np.ndarray:
    """One row per leg: each rule's value (its expectation where it reads a left-out field), then the
    third-country-leg indicator (model order). Training and scoring build rows only this way."""
    width = len(expectations.ruleset.rules) + 1
    rows = [expectations.values(f) + [1.0 if f.kind == THIRD_COUNTRY else 0.0] for f in legs]
    return np.asarray(rows, dtype=float).reshape(len(rows), width)


def trip_probability(eta: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Each trip's probability from its legs' log-odds: 1 − Π(1 − p) over the legs, the trips' legs being
    contiguous rows that begin at `starts`. The one formula for every probability the model gives (a
    case is a trip of one leg), so that equal inputs give equal numbers."""
    return -np.expm1(np.add.reduceat(-np.logaddexp(0.0, eta), starts, axis=0))


def relative_band_indexes(probability: np.ndarray, baseline: np.ndarray, multiples: dict[str, float]) -> np.ndarray:
    """Each trip's band (0 low … 3 severe): how many of the `multiples` of its own itinerary's no-factor odds
    (`baseline`, a probability) its odds reach."""
    odds = baseline / (1.0 - baseline)
    index = np.zeros(len(probability), dtype=int)
    for name in ("elevated", "high", "severe"):
        m = multiples[name] * odds
        index += probability >= m / (1.0 + m)
    return index


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


def _round8(p: float) -> float:
    """A probability rounded to 8 decimals, as a response reports it (half up; faster than `round`)."""
    return math.floor(p * 1e8 + 0.5) / 1e8


def _survival(eta: float) -> float:
    """1 − sigmoid(eta), without overflow."""
    if eta > 0:
        e = math.exp(-eta)
        return e / (1.0 + e)
    return 1.0 / (1.0 + math.exp(eta))


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
class FieldEffect:
    """What one left-out field can do to a leg's log-odds: the change under each value it could take,
    against the expectation (fields the population ties to it taken at their expectation given that value)."""

    name: str
    field: str
    factors: tuple[int, ...]  # rule indexes whose value depends on it
    deltas: tuple[float, ...]
    low: float
    high: float


@dataclass(frozen=True)
class LeftOutPart:
    """The part of a leg's score that rests on left-out fields: cached per leg signature."""

    expected: tuple[tuple[int, float], ...]  # (rule index, expected value) of the rules reading them
    lowest: tuple[tuple[int, float], ...]  # (rule index, lowest value): a factor fires when it is above 0
    draws: np.ndarray  # (B,): Σ expected value × the rule's posterior-draw column
    fields: tuple[FieldEffect, ...]  # ordered by the highest probability each can give, then by field
    unjudged: frozenset[int]  # rules that read a left-out field and could be 0: listed under it
    unjudged_log_odds: float  # what those add at their expectation
    factor_ids: tuple[list[str], ...]  # per field (same order): the ids of the factors it decides
    taken: frozenset[int]  # the rules whose value is their expectation (those in `expected`)
    untaken: tuple[int, ...]  # the other rules, valued on the leg's facts as usual
    judged_mask: np.ndarray  # (rules,) 1.0 where a factor may be listed as fired, 0.0 where it is unjudged
    bounds_list: tuple[tuple[float, float], ...]  # each field's lowest and highest log-odds change (order of `fields`)
    field_names: tuple[str, ...]


def _field_effects(group: Group, deltas: list[float], varying: set[int], rules: Sequence[Rule]) -> list[FieldEffect]:
    """Per field of a group: the log-odds change under each value the field could take. In a group of
    fields the population ties together, the others take their expectation given that value (or, for a
    value the population never has, their mean over the rows that have it)."""
    out = []
    position = 0
    for name in group.names:
        width = len(LEFT_OUT[name].facts)
        span = slice(position, position + width)
        position += width
        values: dict[tuple, list[tuple[float, float]]] = {}
        for row, weight, delta in zip(group.rows, group.weights, deltas, strict=True):
            values.setdefault(tuple(row[span]), []).append((weight, delta))
        per_value = []
        for pairs in values.values():
            total = sum(w for w, _ in pairs)
            if total > 0:
                per_value.append(sum(w * d for w, d in pairs) / total)
            else:
                per_value.append(sum(d for _, d in pairs) / len(pairs))
        facts = set(LEFT_OUT[name].facts)
        factors = tuple(sorted(j for j in varying if not rules[j].closure.isdisjoint(facts)))
        if factors and max(per_value) != min(per_value):
            out.append(
                FieldEffect(name, LEFT_OUT[name].field, factors, tuple(per_value), min(per_value), max(per_value))
            )
    return out


@dataclass(frozen=True)
class LegScores:
    """A scored trip's assessed legs: facts, model values, and what rests on left-out fields."""

    legs: list[LegFacts]
    assessed: list[LegFacts]
    values: list[list[float]]  # per assessed leg, rule order (expectations where a field is left out)
    left_out: list[LeftOutPart | None]


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
        self.expectations = Expectations(rules, model.shares)
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
        # A leg's left-out part depends only on its kind, what it leaves out, and the facts the rules reading
        # a left-out field read (and what the population's distributions are conditioned on): per set of
        # fields left out, the getter of those facts.
        self._signatures: dict[frozenset[str], Callable[[dict[str, Any]], tuple]] = {}
        self._reads = operator.itemgetter(*sorted({name for rule in rules.rules for name in rule.reads}))
        self._rows_cache: dict[tuple, list[float]] = {}  # read-only rows, shared by the legs that have them
        self._conditions = operator.itemgetter(
            "born_in_destination",
            CLAIMED_BY_CITIZENSHIP,
            FIRST_PASSPORT_IS_DESTINATIONS,
            EMPLOYER_DISPUTES_ACTIVE_SHARE,
        )
        self._left_out_rows: dict[tuple, tuple[list[float], LeftOutPart]] = {}
        self._left_out_cache: dict[tuple, LeftOutPart] = {}
        self._draws_cache: dict[tuple, tuple[np.ndarray, tuple[float, float]]] = {}
        self._bands_cache: dict[float, Any] = {}

    @classmethod
    def load(cls, version: str | None = None, model_directory: Path | None = None) -> Assessor:
        """The bundled rules with the active (or a named) model version."""
        rules = bundled_rules()
        chosen = version or active_version(model_directory)
        return cls(rules, load_artifact(chosen, model_directory))

    # ------------------------------------------------------------------ left-out fields

    def _left_out_part(self, facts: LegFacts) -> LeftOutPart:
        values = facts.values
        signature = self._signatures.get(facts.unknown)
        if signature is None:
            signature = self._signatures[facts.unknown] = self._signature_of(facts.unknown)
        key = (facts.kind, facts.unknown, signature(values))
        part = self._left_out_cache.get(key)
        if part is not None:
            return part
        details, groups = self.expectations.details(facts)
        coef = self._coef_list
        expected = tuple((j, d.expected) for j, d in enumerate(details) if d is not None)
        lowest = tuple((j, d.low) for j, d in enumerate(details) if d is not None)
        draws = np.zeros(self._boot_int.shape[0])
        for j, value in expected:
            if value:
                draws += value * self._boot_coef_t[j]
        effects = []
        for group in groups:
            deltas = [0.0] * len(group.rows)
            varying: set[int] = set()
            for j, detail in enumerate(details):
                if detail is None:
                    continue
                for names, conditional in detail.conditional:
                    if names != group.names:
                        continue
                    if max(conditional) != min(conditional):
                        varying.add(j)
                    for i, value in enumerate(conditional):
                        deltas[i] += coef[j] * (value - detail.expected)
            if not varying:
                continue
            effects.extend(_field_effects(group, deltas, varying, self.rules.rules))
        effects.sort(key=lambda e: (-e.high, e.field))
        unjudged = frozenset(j for j, low in lowest if low <= 0)
        part = LeftOutPart(
            expected,
            lowest,
            draws,
            tuple(effects),
            unjudged,
            sum(coef[j] * value for j, value in expected if j in unjudged),
            tuple(sorted(self.rules.rules[j].id for j in e.factors) for e in effects),
            frozenset(j for j, _ in expected),
            tuple(j for j in range(len(self.rules.rules)) if j not in {i for i, _ in expected}),
            np.asarray([0.0 if j in unjudged else 1.0 for j in range(len(self.rules.rules))]),
            tuple((e.low, e.high) for e in effects),
            tuple(e.field for e in effects),
        )
        if len(self._left_out_cache) >= 100_000:
            self._left_out_cache.clear()
        self._left_out_cache[key] = part
        return part

    def _signature_of(self, unknown: frozenset[str]) -> Callable[[dict[str, Any]], tuple]:
        left_out = {f for name in unknown for f in LEFT_OUT[name].facts}
        closure: set[str] = {
            "born_in_destination",
            CLAIMED_BY_CITIZENSHIP,
            FIRST_PASSPORT_IS_DESTINATIONS,
            EMPLOYER_DISPUTES_ACTIVE_SHARE,
        }
        for rule in self.rules.rules:
            if not rule.closure.isdisjoint(left_out):
                closure |= rule.closure
        getter = operator.itemgetter(*sorted(closure))
        return lambda values: getter(values)

    def _leg_scores(self, request: AssessmentRequest, reference: ReferenceSnapshot) -> LegScores:
        """The trip's leg facts, its assessed legs, their rule values (rule order) and left-out parts."""
        legs = leg_facts(request, reference)
        assessed = [f for f in legs if f.kind != UNASSESSED]
        values: list[list[float]] = []
        parts: list[LeftOutPart | None] = []
        rules = self.rules.rules
        for f in assessed:
            if f.unknown:
                # The same look-up for a leg with fields left out: its row and left-out part depend on the facts
                # the rules read and on what the population's distributions are conditioned on.
                key = (f.kind, f.unknown, self._reads(f.values), self._conditions(f.values))
                cached = self._left_out_rows.get(key)
                if cached is None:
                    part = self._left_out_part(f)
                    row = [0.0] * len(rules)
                    for j, value in part.expected:
                        row[j] = value
                    kind, values_of = f.kind, f.values
                    for j in part.untaken:
                        row[j] = rules[j].evaluate_values(kind, values_of)
                    if len(self._left_out_rows) >= 100_000:
                        self._left_out_rows.clear()
                    cached = self._left_out_rows[key] = (row, part)
                row, part = cached
                parts.append(part)
            else:
                # A leg that leaves nothing out: its rule values depend only on the facts the rules read, and
                # ordinary traffic has few distinct combinations of them, so most legs are a look-up.
                key = (f.kind, self._reads(f.values))
                row = self._rows_cache.get(key)
                if row is None:
                    row = [rule.evaluate_values(f.kind, f.values) for rule in rules]
                    if len(self._rows_cache) >= 100_000:
                        self._rows_cache.clear()
                    self._rows_cache[key] = row
                parts.append(None)
            values.append(row)
        return LegScores(legs, assessed, values, parts)

    # ------------------------------------------------------------------ one trip

    def factor_table(self, scores: LegScores) -> list[FactorRow]:
        """Every factor judged to fire, with its contribution on the leg where it contributes most, largest
        first. A factor that reads a left-out field fires when its lowest value is above zero; one that
        could be zero is listed under the field instead (`not_given`)."""
        coef = self._coef_list
        best: dict[int, tuple[float, int]] = {}  # rule index -> (contribution, leg index)
        for index, (row, part) in enumerate(zip(scores.values, scores.left_out, strict=True)):
            unjudged = part.unjudged if part is not None else ()
            for j, value in enumerate(row):
                if value > 0 and j not in unjudged:
                    contribution = value * coef[j]
                    if j not in best or contribution > best[j][0]:
                        best[j] = (contribution, index)
        rules = self.rules.rules
        rows: list[FactorRow] = []
        for j, (contribution, index) in best.items():
            rule, facts = rules[j], scores.assessed[index]
            rows.append(
                FactorRow(
                    rule=rule,
                    value=scores.values[index][j],
                    coefficient=coef[j],
                    contribution=contribution,
                    leg_index=index,
                    reason=rule.reason(facts),
                    derived_from=rule.derived_from(facts),
                )
            )
        rows.sort(key=lambda r: (-r.contribution, r.rule.id))
        return rows

    def _leg_etas(self, scores: LegScores) -> list[float]:
        coef = self._coef_list
        intercept = self.model.intercept
        tc_coef = coef[self._tc]
        out = []
        for f, row in zip(scores.assessed, scores.values, strict=True):
            third = tc_coef if f.kind == THIRD_COUNTRY else 0.0
            out.append(intercept + third + sum(v * c for v, c in zip(row, coef, strict=False) if v))
        return out

    def _interval(self, scores: LegScores, probability: float) -> tuple[float, float]:
        """The 95% posterior interval of the trip probability.

        Sums only the non-zero features' posterior-draw columns (the left-out part comes summed from its
        cache): a handful of length-B vector additions, cheaper than a matrix product and free of BLAS
        threads contending for the worker's core.
        """
        legs = [
            self._leg_draws(row, f.kind == THIRD_COUNTRY, part)
            for f, row, part in zip(scores.assessed, scores.values, scores.left_out, strict=True)
        ]
        if len(legs) == 1:
            lower, upper = legs[0][1]
        else:
            survival = legs[0][0]
            for leg_survival, _ in legs[1:]:
                survival = survival * leg_survival
            boot = 1.0 - survival
            boot.sort()
            lower, upper = _sorted_quantile(boot, INTERVAL[0]), _sorted_quantile(boot, INTERVAL[1])
        # The percentile interval is reported around the point estimate; when skew of the draws puts the
        # estimate outside it, the interval is widened to include it rather than contradict the score.
        return min(lower, probability), max(upper, probability)

    def _leg_draws(
        self, row: Sequence[float], third: bool, part: LeftOutPart | None
    ) -> tuple[np.ndarray, tuple[float, float]]:
        """A leg's survival (1 − p) under each posterior draw, and its probability's 95% interval alone.

        Cached by the leg's feature values: ordinary traffic has few distinct rows, so most legs are a
        look-up. A miss sums only the non-zero features' draw columns (the left-out part comes summed)."""
        key = (tuple(row), third)
        cached = self._draws_cache.get(key)
        if cached is not None:
            return cached
        eta = self._boot_int.copy()
        skip = part.taken if part is not None else ()
        for j, value in enumerate(row):
            if value and j not in skip:
                eta += value * self._boot_coef_t[j]
        if part is not None:
            eta += part.draws
        if third:
            eta += self._boot_coef_t[self._tc]
        survival = 1.0 / (1.0 + np.exp(eta))  # 1 − sigmoid(eta)
        boot = np.sort(1.0 - survival)
        cached = (survival, (_sorted_quantile(boot, INTERVAL[0]), _sorted_quantile(boot, INTERVAL[1])))
        if len(self._draws_cache) >= 100_000:
            self._draws_cache.clear()
        self._draws_cache[key] = cached
        return cached

    def _baseline(self, assessed: Sequence[LegFacts]) -> float:
        intercept = self.model.intercept
        tc_coef = self._coef_list[self._tc]
        survival = 1.0
        for f in assessed:
            survival *= _survival(intercept + (tc_coef if f.kind == THIRD_COUNTRY else 0.0))
        return 1.0 - survival

    def _not_given_log_odds(self, scores: LegScores) -> float:
        """What the factors that could not be judged add at their expectation, on the leg where they add most
        (the part of the score that is neither the baseline nor a listed factor)."""
        return max((part.unjudged_log_odds for part in scores.left_out if part is not None), default=0.0)

    def not_given(self, scores: LegScores, etas: Sequence[float]) -> list[dict[str, Any]]:
        """Each left-out field a factor could not be judged without: the factors, and the range of trip
        probabilities the field's possible values give (the other left-out fields at their expectation)."""
        if len(etas) == 1:
            # One assessed leg (the usual trip): its fields come ordered from the cache.
            part = scores.left_out[0]
            if part is None:
                return []
            if not part.fields:
                return []
            eta = etas[0]
            exp = math.exp
            return [
                {
                    "field": field,
                    "factors": ids,
                    # sigmoid(eta + change) to 8 decimals, inline: this runs for every field of most requests
                    "probability_range": [
                        math.floor(1e8 / (1.0 + exp(-(eta + low))) + 0.5) / 1e8,
                        math.floor(1e8 / (1.0 + exp(-(eta + high))) + 0.5) / 1e8,
                    ],
                }
                for field, ids, (low, high) in zip(part.field_names, part.factor_ids, part.bounds_list, strict=True)
            ]
        effects: dict[str, list[tuple[int, FieldEffect]]] = {}
        for index, part in enumerate(scores.left_out):
            if part is not None:
                for effect in part.fields:
                    effects.setdefault(effect.name, []).append((index, effect))
        if not effects:
            return []
        rules = self.rules.rules
        out = []
        for on_legs in effects.values():
            first = on_legs[0][1]
            deltas = [[0.0] * len(etas) for _ in first.deltas]
            for index, effect in on_legs:
                for i, delta in enumerate(effect.deltas):
                    deltas[i][index] = delta
            trips = []
            for row in deltas:
                survival = 1.0
                for eta, delta in zip(etas, row, strict=True):
                    survival *= _survival(eta + delta)
                trips.append(1.0 - survival)
            factors = sorted({rules[j].id for _, effect in on_legs for j in effect.factors})
            span = [_round8(min(trips)), _round8(max(trips))]
            out.append({"field": first.field, "factors": factors, "probability_range": span})
        out.sort(key=lambda item: (-item["probability_range"][1], item["field"]))
        return out

    def assess(self, request: AssessmentRequest, reference: ReferenceSnapshot) -> AssessmentResult:
        """Score one validated request; the response body as a validated model."""
        return AssessmentResult.model_validate(self.assess_body(request, reference))

    def assess_body(self, request: AssessmentRequest, reference: ReferenceSnapshot) -> dict[str, Any]:
        """Score one validated request; the contract's response body (without id) as JSON-ready data.

        This is the request path: plain dicts, no re-validation of values computed here. `assess`
        validates the same body against `AssessmentResult`, and the tests hold the two equal.
        """
        scores = self._leg_scores(request, reference)
        if not scores.assessed:
            return self._out_of_scope_body(scores.legs, reference)
        # Per-leg arithmetic in plain Python: with one or two legs it beats numpy's call overhead.
        etas = self._leg_etas(scores)
        leg_probability = [1.0 - _survival(eta) for eta in etas]
        survival = 1.0
        for eta in etas:
            survival *= _survival(eta)
        probability = 1.0 - survival
        lower, upper = self._interval(scores, probability)
        return self._scored_body(
            request, reference, scores, etas, leg_probability, probability, lower, upper,
            self._baseline(scores.assessed),
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
        prepared = [self._leg_scores(request, reference) for request in requests]
        rows: list[list[float]] = []
        starts: list[int] = []
        for scores in prepared:
            if scores.assessed:
                starts.append(len(rows))
                rows.extend(
                    v + [1.0 if f.kind == THIRD_COUNTRY else 0.0]
                    for f, v in zip(scores.assessed, scores.values, strict=True)
                )
        matrix = self._matrix_scores(np.asarray(rows), np.asarray(starts)) if rows else None
        bodies: list[dict[str, Any]] = []
        k = 0
        for request, scores in zip(requests, prepared, strict=True):
            if not scores.assessed:
                bodies.append(self._out_of_scope_body(scores.legs, reference))
                continue
            assert matrix is not None
            eta, leg_p, p, lo, hi, base = matrix
            first = starts[k]
            span = slice(first, first + len(scores.assessed))
            bodies.append(
                self._scored_body(
                    request,
                    reference,
                    scores,
                    eta[span].tolist(),
                    leg_p[span].tolist(),
                    float(p[k]),
                    float(lo[k]),
                    float(hi[k]),
                    float(base[k]),
                )  # fmt: skip
            )
            k += 1
        return bodies

    def _matrix_scores(
        self, x: np.ndarray, idx: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Leg log-odds and probabilities, and per trip the probability, its interval and the baseline,
        for a leg matrix (model feature order) whose trips start at the rows `idx`."""
        eta = self.model.intercept + x @ self._coef
        leg_p = 1.0 / (1.0 + np.exp(-eta))
        p = trip_probability(eta, idx)
        base_eta = self.model.intercept + x[:, self._tc] * self._coef[self._tc]
        base = trip_probability(base_eta, idx)
        boot_eta = x @ self._boot_coef_t
        boot_eta += self._boot_int
        boot_p = trip_probability(boot_eta, idx)
        b = boot_p.shape[1]
        lo_pos, hi_pos = ((b - 1) * q / 100.0 for q in INTERVAL)
        # Only the four order statistics around the two quantiles are needed: partition, not sort.
        kth = sorted({int(lo_pos), min(int(lo_pos) + 1, b - 1), int(hi_pos), min(int(hi_pos) + 1, b - 1)})
        boot_p.partition(kth, axis=1)
        lo = np.minimum(_column_quantile(boot_p, lo_pos), p)
        hi = np.maximum(_column_quantile(boot_p, hi_pos), p)
        return eta, leg_p, p, lo, hi, base

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
        scores: LegScores,
        etas: Sequence[float],
        leg_probabilities: Sequence[float],
        probability: float,
        lower: float,
        upper: float,
        baseline: float,
    ) -> dict[str, Any]:
        """The response body of a scored trip, from its scores: explanation, mitigations, review."""
        leg_probability = {id(f): p for f, p in zip(scores.assessed, leg_probabilities, strict=True)}
        thresholds = self._bands_cache.get(baseline)
        if thresholds is None:
            # An itinerary's baseline takes few values (its legs' kinds): the thresholds are a look-up.
            thresholds = self.model.bands_for(baseline)
            if len(self._bands_cache) < 10_000:
                self._bands_cache[baseline] = thresholds
        band = thresholds.band(probability)
        review = band in REVIEW_BANDS
        table = self.factor_table(scores)
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
                "not_given_log_odds": round(self._not_given_log_odds(scores), 6),
            },
            "baseline": {
                "probability": round(baseline, 8),
                "band_thresholds": {name: round(value, 12) for name, value in thresholds.as_dict().items()},
            },
            "factors": [_factor_body(row, scores.assessed, self._evidence[row.rule.id]) for row in table],
            "not_given": self.not_given(scores, etas),
            "legs": [_leg_body(f, leg_probability.get(id(f))) for f in scores.legs],
            "mitigations": list(mitigations),
            "review": {"required": review, "state": "pending" if review else "not_required"},
            "versions": self._versions(reference),
            "covered_destinations": reference.covered_destinations(),
            "possible_employer_matches": possible_employer_matches(request, scores.assessed, reference),
        }

    # ------------------------------------------------------------------ a roster

    def assess_many(
        self, requests: Sequence[AssessmentRequest], reference: ReferenceSnapshot, top: int = 3
    ) -> BatchResult:
        """Score a roster in one vectorised pass: probabilities, intervals, bands and top factors.

        Facts and rules run per trip (as in `assess`); the model, the posterior interval, the bands and
        the ranking of factors run once over the whole roster's leg matrix. A factor that reads a
        left-out field counts towards the top factors by its expected contribution.
        """
        rows: list[list[float]] = []
        masks: list[np.ndarray] = []  # per row, 0 for a factor that reads a left-out field and could be 0
        starts: list[int] = []
        scored_trips: list[int] = []
        # The loop allocates many short-lived, acyclic dicts; pausing the cycle collector for it
        # avoids repeated full scans of a growing heap (it is re-enabled even on error).
        every_rule = np.ones(len(self.rules.rules))
        collecting = gc.isenabled()
        gc.disable()
        try:
            for t, request in enumerate(requests):
                scores = self._leg_scores(request, reference)
                if scores.assessed:
                    starts.append(len(rows))
                    scored_trips.append(t)
                    for f, v, part in zip(scores.assessed, scores.values, scores.left_out, strict=True):
                        masks.append(part.judged_mask if part is not None else every_rule)
                        rows.append(v + [1.0 if f.kind == THIRD_COUNTRY else 0.0])
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
        idx = np.asarray(starts)
        _, _, p, lo, hi, base = self._matrix_scores(x, idx)
        probability[trips] = p
        baseline[trips] = base
        lower[trips] = lo
        upper[trips] = hi
        band_index = self.band_indexes(p, base)
        # A factor that reads a left-out field and could be 0 is listed under that field, not among the factors.
        judged = x[:, :-1] * self._coef[:-1] * np.vstack(masks)
        contributions = np.maximum.reduceat(judged, idx, axis=0)
        order = np.argsort(-contributions, axis=1, kind="stable")[:, :top]
        ids = self.rules.ids
        for k, t in enumerate(scored_trips):
            bands[t] = BAND_NAMES[band_index[k]]
            top_factors[t] = [ids[j] for j in order[k] if contributions[k, j] > 0]
        return BatchResult(probability, lower, upper, baseline, bands, top_factors)

    def band_indexes(self, probability: np.ndarray, baseline: np.ndarray) -> np.ndarray:
        """Band of each trip (0 low … 3 severe) from its probability and its itinerary's no-factor one."""
        multiples = self.model.band_multiples
        if multiples is None:
            fixed = self.model.bands
            cut = np.array([fixed.elevated, fixed.high, fixed.severe])
            return np.searchsorted(cut, probability, side="right")
        return relative_band_indexes(probability, baseline, multiples)

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
