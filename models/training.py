"""Fitting the Bayesian case-control logistic model and writing its JSON artifact and model card.

Cases are the bundled incidents, controls the reference population; both go through the same facts
and rules as scoring (`models.assess.feature_matrix`). Each rule declares a prior for its coefficient
(`risk_rules.priors`: a normal truncated at zero, graded by how directly the sources document the
factor); the fit is the posterior mode under those priors (scipy's L-BFGS-B, the truncation as a
bound), its uncertainty a Laplace approximation sampled with a fixed seed. The intercept is corrected
to a stated per-trip base rate (King & Zeng 2001 prior correction). Validation lives in
`models.validation` and runs the same fit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.artifact import ARTIFACT_FORMAT, THIRD_COUNTRY_FEATURE, activate, artifact_path
from models.assess import feature_matrix, model_features
from models.corpus import Incident, Population, generate_controls, load_incidents
from risk_rules.facts import UNASSESSED, LegFacts, leg_facts
from risk_rules.priors import PRIOR_GRADES
from risk_rules.reference import InMemoryReference, load_bundled_reference
from risk_rules.ruleset import RuleSet, bundled_rules

# The per-trip base rate τ the intercept is corrected to. The sources give no trip denominators, so
# this is an assumption; operators set their own with `--base-rate`.
DEFAULT_BASE_RATE = 5e-5
DEFAULT_BASE_RATE_PROVENANCE = (
    "assumption: about 1 in 20,000 trips by a foreign traveller to the covered destinations ends in a"
    " detention or exit ban of the kind the sources document. Order of magnitude only: Zhang reports"
    " approximately 200 Canadian citizens in custody in the PRC (most cases not political); the number of"
    " trips they are drawn from is not in the sources and is assumed to be several hundred thousand a year."
)
# Bands are multiples of the no-factor probability of a destination leg: how many times riskier the
# traveller's factors make the trip than the same itinerary for a traveller with none of them.
BAND_MULTIPLES = {"elevated": 3.0, "high": 10.0, "severe": 50.0}
BANDS_PROVENANCE = (
    "relative risk: a trip is elevated when its factors make it at least 3 times as likely to end in a"
    " detention or exit ban as the same itinerary for a traveller with no factor, high from 10 times, severe"
    " from 50 times. A compliance officer can state the reason in one sentence, the thresholds do not move"
    " with the assumed base rate, and high begins where at least two factors the sources document well (or"
    " one strong factor with the situation behind it) are present. High and severe require review."
)
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
DRAWS = 200
# Stored numbers are rounded so that the artifact (and its content-hash version) does not depend on
# floating-point noise from one numpy, scipy or BLAS build to the next, far below what a score shows.
DIGITS = 6
LIMITATIONS = [
    "The cases are the incidents that the five reference sources and the public reporting stored with the"
    " package describe; the many incidents that were never reported are missing, and reported cases lean"
    " towards prominent Western nationals.",
    "The controls are a synthetic population whose proportions are mostly assumptions (see population; the"
    " citizenship mix and the travel volume by period rest on reporting); the"
    " coefficients measure how much more common a factor is among documented incidents than in that"
    " assumed population, shrunk towards what the sources say (the priors), so they move when the"
    " assumptions move.",
    "The per-trip base rate is an assumption; probabilities are only as right as it is. Calibration can"
    " only be checked on the case-control sample, not on real per-trip outcomes, which no source counts.",
    "Factors are treated as adding on the log-odds scale and legs as independent; interactions (for"
    " example a dual national who is also an activist) are not modelled separately.",
    "Situations matter only when recorded in the reference data with dates; an unrecorded dispute does"
    " not raise the score.",
    "The model cannot know intent, what a traveller carries or says, or private disputes not declared in the request.",
]


@dataclass
class TrainingData:
    """Feature rows of cases and control legs, with what validation needs to hold events out."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray  # the case's event, or "control:<n>" for every leg of control trip n
    features: list[str]
    cases_used: list[str]
    case_events: list[str] = field(default_factory=list)
    case_dates: list[dt.date] = field(default_factory=list)
    cases_excluded: dict[str, str] = field(default_factory=dict)
    controls: int = 0
    control_trip: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))  # per control row
    # Per row: the request it comes from, which of its assessed legs, and the reference records its facts
    # rest on, so that validation can re-derive only the rows a held-out record touches.
    row_requests: list[Any] = field(default_factory=list)
    row_legs: list[int] = field(default_factory=list)
    row_records: list[frozenset[str]] = field(default_factory=list)


def _records_of(facts: LegFacts) -> frozenset[str]:
    return frozenset(r for names in facts.records.values() for r in names)


def build_training_data(
    incidents: list[Incident],
    controls: list,
    ruleset: RuleSet,
    reference: InMemoryReference,
) -> TrainingData:
    """Feature rows: each incident's last (incident) leg as a case, each control's assessed legs."""
    rows: list[np.ndarray] = []
    requests: list[Any] = []
    legs_of_row: list[int] = []
    records: list[frozenset[str]] = []
    used: list[Incident] = []
    excluded: dict[str, str] = {}
    for incident in incidents:
        if not incident.train:
            excluded[incident.id] = incident.train_note or "not used for training"
            continue
        facts = leg_facts(incident.request, reference)
        last = facts[-1]
        if last.kind == UNASSESSED:
            excluded[incident.id] = f"the incident leg's country ({last.leg.country}) has no risk profile"
            continue
        rows.append(feature_matrix(ruleset, [last]))
        requests.append(incident.request)
        legs_of_row.append(len(facts) - 1)
        records.append(_records_of(last))
        used.append(incident)
    n_cases = len(rows)
    trips: list[int] = []
    for number, request in enumerate(controls):
        facts = leg_facts(request, reference)
        assessed = [k for k, f in enumerate(facts) if f.kind != UNASSESSED]
        if not assessed:
            continue
        rows.append(feature_matrix(ruleset, [facts[k] for k in assessed]))
        for k in assessed:
            requests.append(request)
            legs_of_row.append(k)
            records.append(_records_of(facts[k]))
            trips.append(number)
    x = np.vstack(rows) if rows else np.zeros((0, len(ruleset.rules) + 1))
    control_trip = np.asarray(trips, dtype=int)
    return TrainingData(
        x=x,
        y=np.concatenate([np.ones(n_cases, dtype=int), np.zeros(len(x) - n_cases, dtype=int)]),
        groups=np.asarray([i.event for i in used] + [f"control:{t}" for t in trips]),
        features=model_features(ruleset),
        cases_used=[i.id for i in used],
        case_events=[i.event for i in used],
        case_dates=[i.occurred_on for i in used],
        cases_excluded=excluded,
        controls=len(set(trips)),
        control_trip=control_trip,
        row_requests=requests,
        row_legs=legs_of_row,
        row_records=records,
    )


def touched_by(record: str) -> str:
    """The record id a leg's facts name for a held-out record: a forced return is named by its country."""
    if record.startswith("forced_return:"):
        return "third_country:" + record.split(":")[1]
    return record


def without_records(
    data: TrainingData, ruleset: RuleSet, reference: InMemoryReference, removed: set[str]
) -> np.ndarray:
    """The feature matrix with `removed` held out of the reference data (`reference` already lacks them).

    Only rows whose facts rest on a removed record can change, so only they are derived again.
    """
    touched = {touched_by(r) for r in removed}
    x = data.x.copy()
    for row, names in enumerate(data.row_records):
        if names & touched:
            facts = leg_facts(data.row_requests[row], reference)[data.row_legs[row]]
            x[row] = feature_matrix(ruleset, [facts])[0]
    return x


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


def priors_from_rules(ruleset: RuleSet) -> Priors:
    """Each rule's declared prior, then the third-country indicator's (see THIRD_COUNTRY_PRIOR)."""
    means = [r.prior.grade.mean for r in ruleset.rules] + [THIRD_COUNTRY_PRIOR["mean"]]
    sds = [r.prior.grade.sd for r in ruleset.rules] + [THIRD_COUNTRY_PRIOR["sd"]]
    lower = [r.prior.grade.lower for r in ruleset.rules] + [-np.inf]
    upper = [np.inf] * len(ruleset.rules) + [THIRD_COUNTRY_PRIOR["upper"]]
    grades = [r.prior.grade.name for r in ruleset.rules] + ["baseline shift"]
    return Priors(
        model_features(ruleset), np.asarray(means), np.asarray(sds), np.asarray(lower), np.asarray(upper), grades
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
    w: np.ndarray, x1: np.ndarray, y: np.ndarray, mean: np.ndarray, precision: np.ndarray
) -> tuple[float, np.ndarray]:
    eta = x1 @ w
    # log(1 + e^eta) − y·eta, summed: the logistic negative log-likelihood, stable for any eta.
    nll = float(np.sum(np.logaddexp(0.0, eta) - y * eta))
    residual = 0.5 * (1.0 + np.tanh(0.5 * eta)) - y  # sigmoid(eta) − y, without overflow
    diff = w - mean
    value = nll + 0.5 * float(np.sum(precision * diff * diff))
    gradient = x1.T @ residual + precision * diff
    return value, gradient


def fit_posterior(x: np.ndarray, y: np.ndarray, priors: Priors) -> Posterior:
    """The posterior mode under the priors (L-BFGS-B; a truncated prior is a bound at zero)."""
    from scipy.optimize import minimize

    x1 = np.hstack([np.ones((x.shape[0], 1)), x])
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
        args=(x1, y.astype(float), mean, precision),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 10_000, "ftol": 1e-15, "gtol": 1e-10},
    )
    w = result.x.copy()
    lower = np.concatenate([[-np.inf], priors.lower])
    upper = np.concatenate([[np.inf], priors.upper])
    # Newton steps on the coordinates off their bounds polish the mode to machine precision, so that the
    # stored (rounded) numbers do not depend on where one optimizer version happened to stop.
    for _ in range(5):
        p = 0.5 * (1.0 + np.tanh(0.5 * (x1 @ w)))
        hessian = (x1 * (p * (1 - p))[:, None]).T @ x1 + np.diag(precision)
        free = (w > lower + 1e-12) & (w < upper - 1e-12)
        gradient = x1.T @ (p - y) + precision * (w - mean)
        step = np.linalg.solve(hessian[np.ix_(free, free)], gradient[free])
        w[free] -= step
        w = np.clip(w, lower, upper)
        if np.max(np.abs(step)) < 1e-13:
            break
    p = 0.5 * (1.0 + np.tanh(0.5 * (x1 @ w)))
    hessian = (x1 * (p * (1 - p))[:, None]).T @ x1 + np.diag(precision)
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
    """Probability thresholds of the bands for a corrected intercept: multiples of the no-factor odds."""
    odds = math.exp(intercept)
    return {name: (m * odds) / (1 + m * odds) for name, m in BAND_MULTIPLES.items()}


def _data_hash(data: TrainingData) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(data.features).encode())
    digest.update(np.ascontiguousarray(data.x).tobytes())
    digest.update(np.ascontiguousarray(data.y).tobytes())
    return "sha256:" + digest.hexdigest()


def _rounded(values: np.ndarray, digits: int = DIGITS) -> list:
    rounded = np.round(values, digits)
    rounded[rounded == 0] = 0.0  # no "-0.0" in the JSON
    return rounded.tolist()


def _moved_note(name: str, prior: dict[str, Any], posterior_mean: float, cases: int) -> str | None:
    """A plain sentence when the cases moved a coefficient far (more than one prior sd) from its prior."""
    shift = posterior_mean - prior["mean"]
    if abs(shift) <= prior["sd"]:
        return None
    direction = "raised" if shift > 0 else "lowered"
    because = (
        f"the factor fired in {cases} of the cases, more often than the reference population makes it"
        if shift > 0
        else f"the factor fired in only {cases} of the cases, about as often as (or less often than) the"
        " reference population has it, once the other factors are accounted for"
    )
    return (
        f"The cases {direction} this weight from the prior's {prior['mean']:.2f} to {posterior_mean:.2f}"
        f" (log-odds): {because}."
    )


def train_model(
    incidents_path: Path | None = None,
    seed: int | None = None,
    base_rate: float = DEFAULT_BASE_RATE,
    base_rate_provenance: str = DEFAULT_BASE_RATE_PROVENANCE,
    draws: int = DRAWS,
    controls: int | None = None,
    ruleset: RuleSet | None = None,
    reference: InMemoryReference | None = None,
    validate: bool = True,
    exclude_events: frozenset[str] = frozenset(),
) -> tuple[dict[str, Any], Posterior, TrainingData]:
    """Fit a model version; return its artifact document, the posterior and the training data.

    `exclude_events` drops those events' incidents and the reference records derived from them (the
    acceptance test refits without the December 2018 Canadian cases this way).
    """
    from models.validation import reference_without, validate_model

    if not 0 < base_rate < 1:
        raise ValueError("base rate must be in (0, 1)")
    ruleset = ruleset or bundled_rules()
    reference = reference or load_bundled_reference()
    population = Population.load()
    seed = population.seed if seed is None else seed
    incidents = load_incidents(incidents_path)
    if exclude_events:
        derived = {r for i in incidents if i.event in exclude_events for r in i.derived_records}
        incidents = [i for i in incidents if i.event not in exclude_events]
        reference = reference_without(reference, derived)
    control_requests = generate_controls(population, reference, trips=controls, seed=seed)
    data = build_training_data(incidents, control_requests, ruleset, reference)
    if data.y.sum() < 2:
        raise ValueError("need at least two usable incidents to train")
    features = data.features
    priors = priors_from_rules(ruleset)
    posterior = fit_posterior(data.x, data.y, priors)
    case_share = float(data.y.mean())
    correction = prior_correction(case_share, base_rate)
    intercept = posterior.intercept - correction
    draw_coef, draw_int = posterior_draws(posterior, priors, draws, seed)
    draw_int = draw_int - correction
    lo, hi = np.percentile(draw_coef, [2.5, 97.5], axis=0)
    tc = features.index(THIRD_COUNTRY_FEATURE)
    fired = (data.x[data.y == 1] > 0).sum(axis=0)
    prior_view = priors.describe()
    factors: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(features):
        posterior_mean = float(draw_coef[:, j].mean())
        factors[name] = {
            "prior": prior_view[name],
            "posterior": {
                "mode": round(float(posterior.coefficients[j]), DIGITS),
                "mean": round(posterior_mean, DIGITS),
                "interval": [round(float(lo[j]), DIGITS), round(float(hi[j]), DIGITS)],
            },
            "cases_fired": int(fired[j]),
            "moved": _moved_note(name, prior_view[name], posterior_mean, int(fired[j])),
        }
        rule = next((r for r in ruleset.rules if r.id == name), None)
        if rule is not None:
            factors[name]["prior"]["rationale"] = rule.prior.rationale
            factors[name]["prior"]["unsupported"] = rule.prior.unsupported
    thresholds = band_thresholds(intercept)
    document: dict[str, Any] = {
        "format": ARTIFACT_FORMAT,
        "features": features,
        "coefficients": _rounded(posterior.coefficients),
        "intercept": round(intercept, DIGITS),
        "intercept_sample": round(posterior.intercept, DIGITS),
        "intercepts": {
            "destination_leg": round(intercept, DIGITS),
            "third_country_leg": round(intercept + float(posterior.coefficients[tc]), DIGITS),
            "sample_before_correction": round(posterior.intercept, DIGITS),
        },
        "coefficient_intervals": {
            f: [round(float(lo[j]), DIGITS), round(float(hi[j]), DIGITS)] for j, f in enumerate(features)
        },
        "factors": factors,
        "priors": {
            "grades": {
                g.name: {
                    "location": g.mean,
                    "sd": g.sd,
                    "truncated_at_zero": True,
                    "interval": [round(v, DIGITS) for v in g.interval()],
                    "meaning": g.meaning,
                }
                for g in PRIOR_GRADES.values()
            },
            "third_country_leg": THIRD_COUNTRY_PRIOR,
            "intercept": {"mean": 0.0, "sd": INTERCEPT_PRIOR_SD},
            "why": "see risk_rules/priors.py: strong = stated motive or method in more than one documented case;"
            " moderate = named in a documented case or described as a pattern; weak = plausible, not documented"
            " directly. Normal priors truncated at zero, because the sources only describe these factors as"
            " raising risk.",
        },
        "posterior_draws": {
            "n": draws,
            "seed": seed,
            "method": "Laplace approximation at the posterior mode, sampled; draws beyond a prior's bound set to it",
            "coefficients": _rounded(draw_coef),
            "intercepts": _rounded(draw_int),
        },
        "base_rate": {
            "value": base_rate,
            "provenance": base_rate_provenance,
            "sample_case_share": round(case_share, DIGITS),
            "correction": round(correction, DIGITS),
            "method": "King & Zeng (2001) prior correction: intercept − ln[((1−τ)/τ)·(ȳ/(1−ȳ))]",
        },
        "bands": {
            "thresholds": {k: round(v, 12) for k, v in thresholds.items()},
            "multiples_of_no_factor_odds": BAND_MULTIPLES,
            "provenance": BANDS_PROVENANCE,
        },
        "data": {
            "incidents": len(data.cases_used),
            "incident_ids": data.cases_used,
            "events": len(set(data.case_events)),
            "incidents_excluded": data.cases_excluded,
            "events_excluded_from_this_fit": sorted(exclude_events),
            "controls": data.controls,
            "control_rows": int((data.y == 0).sum()),
            "case_rows": int(data.y.sum()),
            "population": population.provenance(),
            "hash": _data_hash(data),
        },
        "fit": {
            "method": "Bayesian logistic regression: posterior mode under the rules' priors (scipy L-BFGS-B,"
            " truncated priors as bounds at zero), Laplace approximation for the intervals",
            "library": "scipy.optimize.minimize (L-BFGS-B) and numpy",
            "tuning": "none: the prior scale is fixed by the grade table before any case is seen, so nothing is"
            " chosen on the folds that report validation",
            "seed": seed,
        },
        "rules_version": ruleset.version,
        "reference_data_version": reference.version,
        "limitations": LIMITATIONS,
    }
    if validate:
        document["validation"] = validate_model(
            incidents, control_requests, ruleset, reference, data, seed=seed, base_rate=base_rate
        )
        document["metrics"] = document["validation"]["headline"]
    content = json.dumps(document, sort_keys=True, separators=(",", ":"))
    document["version"] = "m" + hashlib.sha256(content.encode()).hexdigest()[:12]
    document["trained_at"] = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    return document, posterior, data


def content_hash(document: dict[str, Any]) -> str:
    """Hash of an artifact without its training time: equal for equal data, seed and settings."""
    stripped = {k: v for k, v in document.items() if k != "trained_at"}
    return hashlib.sha256(json.dumps(stripped, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def model_card_markdown(document: dict[str, Any]) -> str:
    """A human-readable model card."""
    data = document["data"]
    base = document["base_rate"]
    lines = [
        f"# Model card: {document['version']}",
        "",
        f"Trained {document['trained_at']} on rules {document['rules_version']} and reference data"
        f" {document['reference_data_version']}. {document['fit']['method']}. Seed {document['fit']['seed']}."
        f" Tuning: {document['fit']['tuning']}.",
        "",
    ]
    validation = document.get("validation")
    if validation:
        lines += ["## Validation on held-out cases (the honest figures)", ""]
        lines += [
            "| scheme | held-out incidents | model AUC | checklist AUC | incidents high or severe |"
            " controls low or elevated |",
            "|---|---|---|---|---|---|",
        ]
        for key in ("leave_one_event_out", "temporal_backtest"):
            v = validation[key]
            lines.append(
                f"| {v['name']} | {v['incidents']} ({v['events']} events) | {v['model_auc']:.3f} |"
                f" {v['checklist_auc']:.3f} | {_pct(v['incidents_high_or_severe'])} |"
                f" {_pct(v['controls_low_or_elevated'])} |"
            )
        lines += [""]
        for key in ("leave_one_event_out", "temporal_backtest"):
            lines.append(f"- {validation[key]['name']}: {validation[key]['scheme']}")
        synthetic = validation["in_sample_synthetic_controls"]
        lines += [
            f"- {synthetic['label']}: AUC {synthetic['model_auc']:.3f} (checklist {synthetic['checklist_auc']:.3f}).",
            "- The checklist is the unweighted count of the factors that fired, what a compliance team would"
            " otherwise use.",
            "",
        ]
    lines += [
        "## Data",
        "",
        f"- incidents used as cases: {data['incidents']} in {data['events']} events ({data['case_rows']} rows)",
        f"- control trips: {data['controls']} ({data['control_rows']} assessed legs)",
        f"- incidents not used: {len(data['incidents_excluded'])}",
        f"- data hash: `{data['hash']}`",
        "",
        "## Priors: what the sources say before any case is counted",
        "",
        "| grade | prior (normal, truncated at 0) | 95% interval (log-odds) | meaning |",
        "|---|---|---|---|",
    ]
    for name, g in document["priors"]["grades"].items():
        lines.append(
            f"| {name} | location {g['location']}, sd {g['sd']} | [{g['interval'][0]:.2f}, {g['interval'][1]:.2f}]"
            f" | {g['meaning']} |"
        )
    tcp = document["priors"]["third_country_leg"]
    lines += [
        f"| third_country_leg | normal, location {tcp['mean']}, sd {tcp['sd']}, truncated above at {tcp['upper']} | |"
        f" {tcp['why']} |",
        "",
        document["priors"]["why"],
        "",
        "## Where each weight comes from",
        "",
        "| factor | grade | prior mean [95%] | posterior mean [95%] | odds × | cases fired |",
        "|---|---|---|---|---|---|",
    ]
    for name in document["features"]:
        f = document["factors"][name]
        pr, po = f["prior"], f["posterior"]
        lines.append(
            f"| {name} | {pr['grade']} | {pr['mean']:.2f} [{pr['interval'][0]:.2f}, {pr['interval'][1]:.2f}] |"
            f" {po['mean']:.2f} [{po['interval'][0]:.2f}, {po['interval'][1]:.2f}] | {math.exp(po['mode']):.2f} |"
            f" {f['cases_fired']} |"
        )
    notes = [(n, f) for n, f in document["factors"].items() if f["moved"] or f["prior"].get("unsupported")]
    if notes:
        lines += ["", "### Notes on single factors", ""]
        for name, f in notes:
            text = " ".join(t for t in (f["moved"], f["prior"].get("unsupported")) if t)
            lines.append(f"- {name}: {text}")
    lines += [
        "",
        "## Base rate, intercepts and bands",
        "",
        f"- per-trip base rate τ = {base['value']:g}. {base['provenance']}",
        f"- sample case share ȳ = {base['sample_case_share']:.6f}; correction ln[((1−τ)/τ)(ȳ/(1−ȳ))] ="
        f" {base['correction']:.4f}",
        f"- intercepts: destination leg {document['intercepts']['destination_leg']:.4f}, third-country leg"
        f" {document['intercepts']['third_country_leg']:.4f} (before correction"
        f" {document['intercepts']['sample_before_correction']:.4f})",
        f"- band thresholds (probability): {document['bands']['thresholds']}",
        f"- why: {document['bands']['provenance']}",
        "",
        "## Reference population",
        "",
    ]
    lines += [f"- {p['name']}: {p['value']} ({p['basis']}: {p['why']})" for p in data["population"]]
    lines += ["", "## Incidents not used", ""]
    lines += [f"- {k}: {v}" for k, v in data["incidents_excluded"].items()] or ["- none"]
    lines += ["", "## What the model cannot know", ""]
    lines += [f"- {text}" for text in document["limitations"]]
    return "\n".join(lines) + "\n"


def write_model(document: dict[str, Any], directory: Path, make_active: bool = False) -> Path:
    """Write the artifact and its model card (Markdown and JSON) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = artifact_path(directory, document["version"])
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    card = {k: v for k, v in document.items() if k != "posterior_draws"}
    (directory / f"model-{document['version']}.card.json").write_text(
        json.dumps(card, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    (directory / f"model-{document['version']}.card.md").write_text(model_card_markdown(document), encoding="utf-8")
    if make_active:
        activate(document["version"], directory)
    return path
