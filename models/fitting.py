"""The fit shared by training and validation: feature rows from the corpus and the controls, the priors,
the posterior mode and its draws, and the prior correction to a per-trip base rate.

`models.training` fits and writes a model version with these, `models.validation` refits them on held-out
folds; neither imports the other's module for them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.assess import model_features
from models.corpus import Incident
from risk_rules.facts import THIRD_COUNTRY, UNASSESSED, LegFacts, leg_facts
from risk_rules.priors import PRIOR_GRADES
from risk_rules.reference import InMemoryReference
from risk_rules.ruleset import PriorPassage, RuleSet
from risk_rules.unknowns import Expectations

# Bands are multiples of the no-factor odds of the same itinerary: how many times riskier the traveller's
# factors make the trip than the same legs for a traveller with none of them, whatever the number of legs.
BAND_MULTIPLES = {"elevated": 3.0, "high": 10.0, "severe": 50.0}
# The third-country indicator is not a rule: it shifts the baseline of a leg in a third country. The
# sources document returns from third countries only of people the destination seeks or targets (the
# factors that fire on such legs), never of a traveller merely passing through; and the destination
# must first get the traveller back. So a third-country leg carries at most a destination leg's
# baseline: a normal truncated above at zero. Without the bound the shift would absorb the case mix
# (the corpus's returns are of people living abroad, the controls' third-country legs are transits).
THIRD_COUNTRY_PRIOR = {
    "mean": 0.0,
    "sd": 1.5,
    "upper": 0.0,
    "why": "a leg in a third country carries at most the baseline of a leg in the destination: the sources"
    " document returns from third countries only of people the destination seeks or targets, which the"
    " factors on such legs carry; normal, location 0, sd 1.5, truncated above at 0",
}
INTERCEPT_PRIOR_SD = 10.0
# Stored numbers are rounded to this many decimals: far below what a score shows.
DIGITS = 6


@dataclass
class TrainingData:
    """Feature rows of cases and control legs, with what validation needs to hold events out."""

    x: np.ndarray
    fired: np.ndarray  # bool, per row and rule: the factor is judged to fire (what a checklist counts)
    y: np.ndarray
    groups: np.ndarray  # the case's event, or "control:<n>" for every leg of control trip n
    features: list[str]
    cases_used: list[str]
    case_events: list[str] = field(default_factory=list)
    case_dates: list[dt.date] = field(default_factory=list)
    cases_excluded: dict[str, str] = field(default_factory=dict)
    controls: int = 0
    control_trip: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))  # per control row
    control_start: list[dt.date] = field(default_factory=list)  # per control trip
    # Per row: the request it comes from, which of its legs, whether the stay is given, and the reference
    # records its facts rest on, so that validation can re-derive only the rows a held-out record touches.
    row_requests: list[Any] = field(default_factory=list)
    row_legs: list[int] = field(default_factory=list)
    row_stay_given: list[bool] = field(default_factory=list)
    row_records: list[frozenset[str]] = field(default_factory=list)

    @property
    def cases(self) -> int:
        return len(self.cases_used)


def _records_of(facts: LegFacts) -> frozenset[str]:
    return frozenset(r for names in facts.records.values() for r in names)


def _row(expectations: Expectations, facts: LegFacts) -> tuple[list[float], list[bool]]:
    values, fired = expectations.row(facts)
    return [*values, 1.0 if facts.kind == THIRD_COUNTRY else 0.0], fired


def build_training_data(
    incidents: list[Incident],
    controls: list,
    ruleset: RuleSet,
    reference: InMemoryReference,
    expectations: Expectations,
) -> TrainingData:
    """Feature rows: each incident's last (incident) leg as a case, each control's assessed legs.

    A case's stay is unknown when its reporting does not state it; every other field its request leaves
    out is unknown too, and the rules reading it take their expectation (`expectations`)."""
    rows: list[list[float]] = []
    fired: list[list[bool]] = []
    requests: list[Any] = []
    legs_of_row: list[int] = []
    stay_given: list[bool] = []
    records: list[frozenset[str]] = []
    used: list[Incident] = []
    excluded: dict[str, str] = {}
    for incident in incidents:
        if not incident.train:
            excluded[incident.id] = incident.train_note or "not used for training"
            continue
        facts = leg_facts(incident.request, reference, stay_given=incident.stay_stated)
        last = facts[-1]
        if last.kind == UNASSESSED:
            excluded[incident.id] = f"the incident leg's country ({last.leg.country}) has no risk profile"
            continue
        values, judged = _row(expectations, last)
        rows.append(values)
        fired.append(judged)
        requests.append(incident.request)
        legs_of_row.append(len(facts) - 1)
        stay_given.append(incident.stay_stated)
        records.append(_records_of(last))
        used.append(incident)
    n_cases = len(rows)
    trips: list[int] = []
    starts: list[dt.date] = []
    for number, request in enumerate(controls):
        starts.append(request.trip.start)
        for k, facts in enumerate(leg_facts(request, reference)):
            if facts.kind == UNASSESSED:
                continue
            values, judged = _row(expectations, facts)
            rows.append(values)
            fired.append(judged)
            requests.append(request)
            legs_of_row.append(k)
            stay_given.append(True)
            records.append(_records_of(facts))
            trips.append(number)
    width = len(ruleset.rules) + 1
    x = np.asarray(rows, dtype=float).reshape(len(rows), width)
    return TrainingData(
        x=x,
        fired=np.asarray(fired, dtype=bool).reshape(len(rows), width - 1),
        y=np.concatenate([np.ones(n_cases, dtype=int), np.zeros(len(x) - n_cases, dtype=int)]),
        groups=np.asarray([i.event for i in used] + [f"control:{t}" for t in trips]),
        features=model_features(ruleset),
        cases_used=[i.id for i in used],
        case_events=[i.event for i in used],
        case_dates=[i.occurred_on for i in used],
        cases_excluded=excluded,
        controls=len(controls),
        control_trip=np.asarray(trips, dtype=int),
        control_start=starts,
        row_requests=requests,
        row_legs=legs_of_row,
        row_stay_given=stay_given,
        row_records=records,
    )


def touched_by(record: str) -> str:
    """The record id a leg's facts name for a held-out record: a forced return is named by its country."""
    if record.startswith("forced_return:"):
        return "third_country:" + record.split(":")[1]
    return record


def without_records(
    data: TrainingData,
    reference: InMemoryReference,
    removed: set[str],
    expectations: Expectations,
) -> tuple[np.ndarray, np.ndarray]:
    """The feature matrix (and fired flags) with `removed` held out of the reference data (`reference`
    already lacks them). Only rows whose facts rest on a removed record can change, so only they are
    derived again."""
    touched = {touched_by(r) for r in removed}
    x = data.x.copy()
    fired = data.fired.copy()
    for row, names in enumerate(data.row_records):
        if names & touched:
            legs = leg_facts(data.row_requests[row], reference, stay_given=data.row_stay_given[row])
            values, judged = _row(expectations, legs[data.row_legs[row]])
            x[row] = values
            fired[row] = judged
    return x, fired


# ------------------------------------------------------------------------------------------------
# Priors and the posterior


@dataclass(frozen=True)
class Priors:
    """Per-feature prior means, standard deviations and lower bounds (model feature order)."""

    features: list[str]
    mean: np.ndarray
    sd: np.ndarray
    lower: np.ndarray  # 0 for a rule's prior (truncated below), -inf otherwise
    upper: np.ndarray  # 0 for the third-country shift (truncated above), +inf otherwise
    grades: list[str]

    def describe(self) -> dict[str, dict[str, Any]]:
        """The card's view: grade, location, scale and the 95% prior interval of each coefficient."""
        out: dict[str, dict[str, Any]] = {}
        for j, name in enumerate(self.features):
            grade = PRIOR_GRADES.get(self.grades[j])
            if grade is not None:
                lo, hi = grade.interval()
                expected = grade.expected()
            else:
                lo, hi, expected = _truncated_normal_summary(
                    float(self.mean[j]), float(self.sd[j]), float(self.lower[j]), float(self.upper[j])
                )
            out[name] = {
                "grade": self.grades[j],
                "location": float(self.mean[j]),
                "sd": float(self.sd[j]),
                "truncated_at_zero": bool(np.isfinite(self.lower[j])),
                "truncated_above_zero": bool(np.isfinite(self.upper[j])),
                "mean": round(expected, DIGITS),
                "interval": [round(lo, DIGITS), round(hi, DIGITS)],
            }
        return out


def _truncated_normal_summary(mean: float, sd: float, lower: float, upper: float) -> tuple[float, float, float]:
    """95% interval and mean of a normal truncated to [lower, upper]."""
    from statistics import NormalDist

    std = NormalDist()
    a = std.cdf((lower - mean) / sd) if math.isfinite(lower) else 0.0
    b = std.cdf((upper - mean) / sd) if math.isfinite(upper) else 1.0
    lo = mean + sd * std.inv_cdf(a + 0.025 * (b - a))
    hi = mean + sd * std.inv_cdf(a + 0.975 * (b - a))
    alpha = (lower - mean) / sd if math.isfinite(lower) else -math.inf
    beta = (upper - mean) / sd if math.isfinite(upper) else math.inf
    pdf_a = std.pdf(alpha) if math.isfinite(alpha) else 0.0
    pdf_b = std.pdf(beta) if math.isfinite(beta) else 0.0
    return lo, hi, mean + sd * (pdf_a - pdf_b) / (b - a)


def priors_from_rules(ruleset: RuleSet, keep: Callable[[PriorPassage], bool] | None = None) -> Priors:
    """Each rule's prior, then the third-country indicator's (see THIRD_COUNTRY_PRIOR).

    With `keep`, each rule's grade is the one the kept passages support (the table's words applied to
    them): a fold that holds an event out keeps only passages that do not name it, a backtest only those
    published before its cutoff."""
    grades = [r.prior.grade if keep is None else r.prior.grade_from(keep) for r in ruleset.rules]
    return Priors(
        model_features(ruleset),
        np.asarray([g.mean for g in grades] + [THIRD_COUNTRY_PRIOR["mean"]]),
        np.asarray([g.sd for g in grades] + [THIRD_COUNTRY_PRIOR["sd"]]),
        np.asarray([g.lower for g in grades] + [-np.inf]),
        np.asarray([np.inf] * len(grades) + [THIRD_COUNTRY_PRIOR["upper"]]),
        [g.name for g in grades] + ["baseline shift"],
    )


@dataclass(frozen=True)
class Posterior:
    """The posterior mode (coefficients and sample-scale intercept) and its Laplace covariance."""

    coefficients: np.ndarray
    intercept: float
    covariance: np.ndarray  # over (intercept, coefficients)
    iterations: int

    def linear(self, x: np.ndarray) -> np.ndarray:
        return self.intercept + x @ self.coefficients


def _negative_log_posterior(
    w: np.ndarray, x1: np.ndarray, n: np.ndarray, s: np.ndarray, mean: np.ndarray, precision: np.ndarray
) -> tuple[float, np.ndarray]:
    eta = x1 @ w
    # n·log(1 + e^eta) − s·eta over distinct rows (n rows, s of them cases): the logistic negative
    # log-likelihood, stable for any eta.
    nll = float(np.sum(n * np.logaddexp(0.0, eta) - s * eta))
    residual = n * (0.5 * (1.0 + np.tanh(0.5 * eta))) - s  # n·sigmoid(eta) − s, without overflow
    diff = w - mean
    value = nll + 0.5 * float(np.sum(precision * diff * diff))
    gradient = x1.T @ residual + precision * diff
    return value, gradient


def distinct_row_index(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of `x` in lexicographic order, and for each row of `x` the index of its distinct
    row (as `np.unique(x, axis=0, return_inverse=True)`, by a sort over the columns, much faster)."""
    if len(x) == 0:
        return x.copy(), np.zeros(0, dtype=int)
    order = np.lexsort(x.T[::-1])
    ordered = x[order]
    first = np.concatenate([[True], np.any(ordered[1:] != ordered[:-1], axis=1)])
    inverse = np.empty(len(x), dtype=int)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def distinct_rows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct rows of `x`, how many rows each stands for, and how many of those are cases.

    Tens of thousands of control legs share a few thousand distinct feature rows: the likelihood summed
    over distinct rows is the same and much cheaper, and does not depend on the rows' order."""
    rows, inverse = distinct_row_index(x)
    n = np.bincount(inverse, minlength=len(rows)).astype(float)
    s = np.bincount(inverse, weights=y.astype(float), minlength=len(rows))
    return rows, n, s


def fit_posterior(x: np.ndarray, y: np.ndarray, priors: Priors) -> Posterior:
    """The posterior mode under the priors (L-BFGS-B; a truncated prior is a bound at zero)."""
    from scipy.optimize import minimize

    rows, n, s = distinct_rows(x, y)
    x1 = np.hstack([np.ones((rows.shape[0], 1)), rows])
    mean = np.concatenate([[0.0], priors.mean])
    precision = np.concatenate([[1.0 / INTERCEPT_PRIOR_SD**2], 1.0 / priors.sd**2])
    bounds = [(None, None)] + [
        (float(lo) if np.isfinite(lo) else None, float(hi) if np.isfinite(hi) else None)
        for lo, hi in zip(priors.lower, priors.upper, strict=True)
    ]
    share = min(max(float(y.mean()), 1e-9), 1 - 1e-9)
    start = np.concatenate([[math.log(share / (1 - share))], np.clip(priors.mean, priors.lower, priors.upper)])
    result = minimize(
        _negative_log_posterior,
        start,
        args=(x1, n, s, mean, precision),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 10_000, "ftol": 1e-15, "gtol": 1e-10},
    )
    w = result.x.copy()
    lower = np.concatenate([[-np.inf], priors.lower])
    upper = np.concatenate([[np.inf], priors.upper])
    # Newton steps on the coordinates off their bounds polish the mode to machine precision, so that the
    # stored numbers do not depend on where one optimizer build happened to stop.
    for _ in range(8):
        p = 0.5 * (1.0 + np.tanh(0.5 * (x1 @ w)))
        hessian = (x1 * (n * p * (1 - p))[:, None]).T @ x1 + np.diag(precision)
        free = (w > lower + 1e-12) & (w < upper - 1e-12)
        gradient = x1.T @ (n * p - s) + precision * (w - mean)
        step = np.linalg.solve(hessian[np.ix_(free, free)], gradient[free])
        w[free] -= step
        w = np.clip(w, lower, upper)
        if np.max(np.abs(step)) < 1e-13:
            break
    p = 0.5 * (1.0 + np.tanh(0.5 * (x1 @ w)))
    hessian = (x1 * (n * p * (1 - p))[:, None]).T @ x1 + np.diag(precision)
    covariance = np.linalg.inv(hessian)
    return Posterior(w[1:].copy(), float(w[0]), covariance, int(result.nit))


def posterior_draws(posterior: Posterior, priors: Priors, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws of (coefficients, sample intercept) from the Laplace approximation, truncated at the bounds.

    A draw beyond a truncated prior's bound is set to the bound: the posterior has no mass there, and
    the draws keep the mode's correlations everywhere else.
    """
    rng = np.random.default_rng(seed)
    centre = np.concatenate([[posterior.intercept], posterior.coefficients])
    chol = np.linalg.cholesky(posterior.covariance + 1e-12 * np.eye(len(centre)))
    z = rng.standard_normal((n, len(centre)))
    draws = centre + z @ chol.T
    coefficients = draws[:, 1:]
    coefficients = np.clip(coefficients, priors.lower, priors.upper)
    return coefficients, draws[:, 0]


def prior_correction(case_share: float, base_rate: float) -> float:
    """King & Zeng (2001): the amount subtracted from the sample intercept, ln[(1−τ)/τ · ȳ/(1−ȳ)]."""
    return math.log(((1 - base_rate) / base_rate) * (case_share / (1 - case_share)))


def band_thresholds(intercept: float) -> dict[str, float]:
    """Band thresholds (probability) of one destination leg for a corrected intercept."""
    odds = math.exp(intercept)
    return {name: (m * odds) / (1 + m * odds) for name, m in BAND_MULTIPLES.items()}
