"""Fitting the Bayesian case-control logistic model and writing its JSON artifact and model card.

Cases are the bundled incidents, controls the reference population; both go through the same facts
and rules as scoring (`models.assess.feature_matrix`), and a factor that reads a field a case's
reporting does not state takes its expectation under the reference population, as for a request.
Each rule declares a prior for its coefficient (`risk_rules.priors`: a normal truncated at zero, graded
by what its passages document); the fit is the posterior mode under those priors (scipy's L-BFGS-B, the
truncation as a bound, then Newton steps), its uncertainty a Laplace approximation sampled with a fixed
seed. The intercept is corrected to a stated per-trip base rate (King & Zeng 2001 prior correction).
Validation lives in `models.validation` and runs the same fit.

A model's version names its inputs (rules and their priors, the corpus, the population, the reference
data, the seed and settings, the training code), not its floating-point outputs: a retrain anywhere
gives the same version, and its numbers agree with the bundled ones within `REPRODUCTION_TOLERANCE`.
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from models.artifact import ARTIFACT_FORMAT, THIRD_COUNTRY_FEATURE, activate, artifact_path
from models.corpus import (
    Population,
    bundled_incidents_path,
    bundled_population_path,
    check_derived_records,
    generate_controls,
    load_incidents,
)
from models.fitting import (  # noqa: F401 - the fit, re-exported for the callers of models.training
    BAND_MULTIPLES,
    DIGITS,
    INTERCEPT_PRIOR_SD,
    THIRD_COUNTRY_PRIOR,
    Posterior,
    Priors,
    TrainingData,
    band_thresholds,
    build_training_data,
    distinct_row_index,
    distinct_rows,
    fit_posterior,
    posterior_draws,
    prior_correction,
    priors_from_rules,
    touched_by,
    without_records,
)
from risk_rules.facts import leg_facts
from risk_rules.priors import PRIOR_GRADES
from risk_rules.reference import InMemoryReference, load_bundled_reference
from risk_rules.ruleset import RuleSet, bundled_rules
from risk_rules.unknowns import Expectations

# The per-trip base rate τ the intercept is corrected to. The sources give no trip denominators, so
# this is an assumption; operators set their own with `--base-rate`.
DEFAULT_BASE_RATE = 5e-5
DEFAULT_BASE_RATE_PROVENANCE = (
    "assumption: about 1 in 20,000 trips by a foreign traveller to the covered destinations ends in a"
    " detention or exit ban of the kind the sources document. Order of magnitude only: Zhang reports"
    " approximately 200 Canadian citizens in custody in the PRC (most cases not political); the number of"
    " trips they are drawn from is not in the sources and is assumed to be several hundred thousand a year."
)
BANDS_PROVENANCE = (
    "relative risk: a trip is elevated when its factors make its odds of ending in a detention or exit ban at"
    " least 3 times those of the same itinerary (the same legs) for a traveller with no factor, high from 10"
    " times, severe from 50 times, for any number of legs. A compliance officer can state the reason in one"
    " sentence, the thresholds do not move with the assumed base rate, and a trip through several covered"
    " places with no factor is low, as is a trip to one. High and severe require review."
)
DRAWS = 200
# How far a retrain's numbers may differ from the bundled artifact's (another CPU, BLAS or numpy build):
# coefficients and intercepts in log-odds, validation figures in their own units.
REPRODUCTION_TOLERANCE = {"coefficients": 1e-5, "draws": 1e-4, "validation": 2e-3}
# The code whose behaviour a model version names: the training and validation modules and the engine
# they run (facts, rules, expectations, priors), compared as syntax trees without docstrings, so that a
# comment or a reflowed line leaves the version alone.
TRAINING_CODE = (
    ("models", "assess.py"),
    ("models", "corpus.py"),
    ("models", "fitting.py"),
    ("models", "training.py"),
    ("models", "validation.py"),
    ("risk_rules", "expr.py"),
    ("risk_rules", "facts.py"),
    ("risk_rules", "priors.py"),
    ("risk_rules", "ruleset.py"),
    ("risk_rules", "unknowns.py"),
)
LIMITATIONS = [
    "The cases are the incidents that the five reference sources and the public reporting stored with the"
    " package describe; the many incidents that were never reported are missing, and reported cases lean"
    " towards prominent nationals of a few countries and towards the kinds of case the press follows.",
    "What the reporting of a case does not state (its occupation, sector, purpose, entry document, length of"
    " stay, family, legal exposure) is unknown, and takes its expectation under the reference population, as"
    " a request's left-out field does. A factor that cases rarely state therefore rests on the few cases"
    " that state it and on its prior.",
    "The controls are a synthetic population whose proportions cite published figures where there are any"
    " (the citizenship mix, purposes, destinations and travel volume by period) and are labelled assumptions"
    " elsewhere; the coefficients measure how much more common a factor is among documented incidents than"
    " in that population, shrunk towards what the sources say (the priors), so they move when it moves.",
    "The per-trip base rate is an assumption; probabilities are only as right as it is. Calibration can"
    " only be checked on the case-control sample, not on real per-trip outcomes, which no source counts.",
    "Factors are treated as adding on the log-odds scale and legs as independent; interactions (for"
    " example a dual national who is also an activist) are not modelled separately.",
    "Situations matter only when recorded in the reference data with dates; an unrecorded dispute does"
    " not raise the score.",
    "A third-country leg is assessed only when the request states what makes the traveller someone a"
    " covered destination claims, seeks or targets; left out, the leg is not assessed.",
    "The model cannot know intent, what a traveller carries or says, or private disputes not declared in the request.",
]


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


def _code_digest() -> str:
    """A digest of the training code's syntax trees without docstrings (see TRAINING_CODE)."""
    digest = hashlib.sha256()
    for package, name in TRAINING_CODE:
        tree = ast.parse((resources.files(package) / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (
                isinstance(body, list)
                and body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
        digest.update(f"{package}/{name}\0".encode() + ast.dump(tree).encode() + b"\0")
    return "sha256:" + digest.hexdigest()


def _file_digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def training_inputs(
    ruleset: RuleSet,
    reference: InMemoryReference,
    incidents_path: Path,
    population_path: Path,
    *,
    seed: int,
    base_rate: float,
    draws: int,
    controls: int | None,
    exclude_events: frozenset[str],
) -> dict[str, Any]:
    """What a model is made from: the version is the hash of this, so equal inputs give equal versions."""
    from risk_rules.sources import bundled_reporting_path

    return {
        "format": ARTIFACT_FORMAT,
        "rules": ruleset.version,
        "reference_data": reference.version,
        "reporting": _file_digest(bundled_reporting_path()),
        "corpus": _file_digest(incidents_path),
        "population": _file_digest(population_path),
        "code": _code_digest(),
        "seed": seed,
        "base_rate": base_rate,
        "posterior_draws": draws,
        "controls": controls,
        "events_excluded": sorted(exclude_events),
    }


def version_of(inputs: dict[str, Any]) -> str:
    return "m" + hashlib.sha256(json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]


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
    population_draws: int | None = None,
) -> tuple[dict[str, Any], Posterior, TrainingData]:
    """Fit a model version; return its artifact document, the posterior and the training data.

    `exclude_events` drops those events' incidents and the reference records derived from them (the
    acceptance test refits without the December 2018 Canadian cases this way).
    """
    from models.validation import POPULATION_DRAWS, reference_without, validate_model

    if not 0 < base_rate < 1:
        raise ValueError("base rate must be in (0, 1)")
    ruleset = ruleset or bundled_rules()
    reference = reference or load_bundled_reference()
    population = Population.load()
    shares = population.shares()
    expectations = Expectations(ruleset, shares)
    seed = population.seed if seed is None else seed
    source = incidents_path or bundled_incidents_path()
    incidents = load_incidents(source)
    check_derived_records(incidents, ruleset)
    inputs = training_inputs(
        ruleset,
        reference,
        source,
        bundled_population_path(),
        seed=seed,
        base_rate=base_rate,
        draws=draws,
        controls=controls,
        exclude_events=exclude_events,
    )
    if exclude_events:
        derived = {r for i in incidents if i.event in exclude_events for r in i.derived_records}
        incidents = [i for i in incidents if i.event not in exclude_events]
        reference = reference_without(reference, derived)
    control_requests = generate_controls(population, reference, trips=controls, seed=seed)
    data = build_training_data(incidents, control_requests, ruleset, reference, expectations)
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
    fired = data.fired[data.y == 1].sum(axis=0)
    stated = _cases_stating(data, ruleset, reference, expectations)
    prior_view = priors.describe()
    factors: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(features):
        posterior_mean = float(draw_coef[:, j].mean())
        cases_fired = int(fired[j]) if j < len(ruleset.rules) else int((data.x[data.y == 1, j] > 0).sum())
        factors[name] = {
            "prior": prior_view[name],
            "posterior": {
                "mode": round(float(posterior.coefficients[j]), DIGITS),
                "mean": round(posterior_mean, DIGITS),
                "interval": [round(float(lo[j]), DIGITS), round(float(hi[j]), DIGITS)],
            },
            "cases_fired": cases_fired,
            "moved": _moved_note(name, prior_view[name], posterior_mean, cases_fired),
        }
        rule = next((r for r in ruleset.rules if r.id == name), None)
        if rule is not None:
            factors[name]["prior"]["rationale"] = rule.prior.rationale
            factors[name]["prior"]["unsupported"] = rule.prior.unsupported
            factors[name]["cases_judged"] = stated[name]["judged"]
            factors[name]["expected_among_cases"] = stated[name]["expected"]
    thresholds = band_thresholds(intercept)
    document: dict[str, Any] = {
        "format": ARTIFACT_FORMAT,
        "inputs": inputs,
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
            "why": "see risk_rules/priors.py: a grade follows from its passages by the table's words (strong = the"
            " stated motive or method in more than one documented case; moderate = named in a documented case or"
            " described as a pattern; weak = no passage). Normal priors truncated at zero, because the sources"
            " only describe these factors as raising risk. Validation recomputes each grade from the passages a"
            " fold or a backtest may use.",
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
            "thresholds_are_for": "one destination leg; any itinerary's are the same multiples of its own"
            " no-factor odds (the response gives them as baseline.band_thresholds)",
            "multiples_of_no_factor_odds": BAND_MULTIPLES,
            "relative_to": "the same itinerary with no factor",
            "provenance": BANDS_PROVENANCE,
        },
        "population_shares": shares.document(),
        "data": {
            "incidents": len(data.cases_used),
            "incident_ids": data.cases_used,
            "events": len(set(data.case_events)),
            "incidents_excluded": data.cases_excluded,
            "events_excluded_from_this_fit": sorted(exclude_events),
            "controls": data.controls,
            "control_rows": int((data.y == 0).sum()),
            "case_rows": int(data.y.sum()),
            "civil_or_commercial_disputes": sum(
                1 for i in incidents if i.train and i.id in set(data.cases_used) and i.civil_or_commercial
            ),
            "population": population.provenance(),
        },
        "fit": {
            "method": "Bayesian logistic regression: posterior mode under the rules' priors (scipy L-BFGS-B,"
            " truncated priors as bounds at zero, then Newton steps), Laplace approximation for the intervals",
            "library": "scipy.optimize.minimize (L-BFGS-B) and numpy",
            "tuning": "none: the prior scale is fixed by the grade table before any case is seen, so nothing is"
            " chosen on the folds that report validation",
            "seed": seed,
            "reproduction_tolerance": REPRODUCTION_TOLERANCE,
        },
        "rules_version": ruleset.version,
        "reference_data_version": reference.version,
        "limitations": LIMITATIONS,
    }
    if validate:
        document["validation"] = validate_model(
            incidents,
            ruleset,
            reference,
            population,
            seed=seed,
            base_rate=base_rate,
            controls=controls,
            draws=POPULATION_DRAWS if population_draws is None else population_draws,
            first_draw=data,
        )
        document["metrics"] = document["validation"]["headline"]
    document["version"] = version_of(inputs)
    document["trained_at"] = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    return document, posterior, data


def _cases_stating(
    data: TrainingData, ruleset: RuleSet, reference: InMemoryReference, expectations: Expectations
) -> dict[str, dict[str, Any]]:
    """Per factor: how many cases judge it (their reporting states what it reads) and its expected firing
    rate among all cases, for the card (a factor rarely judged rests on few cases and its prior)."""
    n = data.cases
    judged = np.zeros(len(ruleset.rules), dtype=int)
    for row in range(n):
        legs = leg_facts(data.row_requests[row], reference, stay_given=data.row_stay_given[row])
        details, _ = expectations.details(legs[data.row_legs[row]])
        for j, detail in enumerate(details):
            judged[j] += detail is None or detail.judged
    expected = data.x[:n, : len(ruleset.rules)].mean(axis=0) if n else np.zeros(len(ruleset.rules))
    return {
        rule.id: {"judged": int(judged[j]), "expected": round(float(expected[j]), 4)}
        for j, rule in enumerate(ruleset.rules)
    }


def reproduction_differences(bundled: dict[str, Any], retrained: dict[str, Any]) -> list[str]:
    """Where a retrain's artifact differs from a stored one beyond `REPRODUCTION_TOLERANCE` (empty when it
    reproduces it): the same inputs, and numbers within tolerance of each other."""
    out = []
    if bundled.get("inputs") != retrained.get("inputs"):
        changed = sorted(
            k
            for k in set(bundled.get("inputs", {})) | set(retrained.get("inputs", {}))
            if bundled.get("inputs", {}).get(k) != retrained.get("inputs", {}).get(k)
        )
        out.append(f"inputs differ ({', '.join(changed)}): this is another model, not a reproduction")
        return out
    tolerance = REPRODUCTION_TOLERANCE

    def close(name: str, a: Any, b: Any, tol: float) -> None:
        a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if a_.shape != b_.shape:
            out.append(f"{name}: shapes differ {a_.shape} against {b_.shape}")
            return
        worst = float(np.max(np.abs(a_ - b_))) if a_.size else 0.0
        if worst > tol:
            out.append(f"{name}: differs by up to {worst:.3g} (tolerance {tol:g})")

    close("coefficients", bundled["coefficients"], retrained["coefficients"], tolerance["coefficients"])
    close("intercept", bundled["intercept"], retrained["intercept"], tolerance["coefficients"])
    close(
        "posterior draws",
        bundled["posterior_draws"]["coefficients"],
        retrained["posterior_draws"]["coefficients"],
        tolerance["draws"],
    )
    if "validation" in bundled and "validation" in retrained:
        for scheme in ("leave_one_event_out", "temporal_backtest"):
            for name, figure in bundled["validation"][scheme]["figures"].items():
                other = retrained["validation"][scheme]["figures"][name]
                close(f"{scheme} {name}", figure["by_draw"], other["by_draw"], tolerance["validation"])
                close(f"{scheme} {name} interval", figure["interval_90"], other["interval_90"], tolerance["validation"])
    return out


def content_hash(document: dict[str, Any]) -> str:
    """Hash of an artifact without its training time (and version): equal for equal outputs."""
    stripped = {k: v for k, v in document.items() if k not in ("trained_at",)}
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
        lines += [
            "## Validation on held-out cases (the honest figures)",
            "",
            "Each figure is the mean over the population draws, with its 90% interval from a bootstrap over events"
            " (held-out incidents resampled by event, control trips by trip, pooled over the draws), beside its"
            " target. A target missed is marked missed.",
            "",
            "| scheme | held-out incidents | model AUC | checklist AUC | model − checklist |"
            " incidents high or severe (≥ 70%) | controls above elevated (≤ 5%) |",
            "|---|---|---|---|---|---|---|",
        ]
        for key in ("leave_one_event_out", "temporal_backtest"):
            v = validation[key]

            def cell(name: str, percent: bool = False, target: str | None = None, v: dict[str, Any] = v) -> str:
                value, (lo, hi) = v["figures"][name]["value"], v["figures"][name]["interval_90"]
                text = (
                    f"{100 * value:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}]"
                    if percent
                    else f"{value:.3f} [{lo:.3f}, {hi:.3f}]"
                )
                if target is not None:
                    text += " met" if v["targets"][target]["met"] else " **missed**"
                return text

            lines.append(
                f"| {v['name']} | {v['incidents']} ({v['events']} events) | {cell('model_auc')} |"
                f" {cell('checklist_auc')} | {cell('auc_difference', target='auc_difference')} |"
                f" {cell('incidents_high_or_severe', True, 'incidents_high_or_severe')} |"
                f" {cell('controls_above_elevated', True, 'controls_above_elevated')} |"
            )
        lines += [""]
        for key in ("leave_one_event_out", "temporal_backtest"):
            v = validation[key]
            spread = ", ".join(
                f"{name} {min(x['by_draw']):.3f}–{max(x['by_draw']):.3f}" for name, x in v["figures"].items()
            )
            lines.append(f"- {v['name']}: {v['scheme']}. Over {v['population_draws']} population draws: {spread}.")
        synthetic = validation["in_sample_synthetic_controls"]
        lines += [
            f"- {synthetic['label']}: AUC {synthetic['model_auc']:.3f} (checklist {synthetic['checklist_auc']:.3f}).",
            "- The checklist is the unweighted count of the factors that fired, what a compliance team would"
            " otherwise use.",
            "",
            "### The priors each scheme used",
            "",
            "| factor | full model | folds that grade it lower (held-out event) | temporal backtest |",
            "|---|---|---|---|",
        ]
        loeo_priors = validation["leave_one_event_out"]["priors"]
        temporal_priors = validation["temporal_backtest"]["priors"]["grades"]
        for name, grade in loeo_priors["grades"].items():
            lowered = ", ".join(loeo_priors["lowered_in_folds"].get(name, [])) or "none"
            lines.append(f"| {name} | {grade} | {lowered} | {temporal_priors.get(name, '')} |")
        lines += [""]
    lines += [
        "## Data",
        "",
        f"- incidents used as cases: {data['incidents']} in {data['events']} events ({data['case_rows']} rows);"
        f" {data.get('civil_or_commercial_disputes', 0)} of them civil, commercial or tax disputes",
        f"- control trips: {data['controls']} ({data['control_rows']} assessed legs)",
        f"- incidents not used: {len(data['incidents_excluded'])}",
        f"- inputs (the version is their hash): `{json.dumps(document.get('inputs', {}), sort_keys=True)}`",
        "",
        "### Cases per factor",
        "",
        "What the reporting of a case does not state is unknown and takes its expectation under the reference"
        " population. Fired: the cases whose stated fields make the factor fire. Judged: the cases whose stated"
        " fields decide it either way. Expected: its mean value over all cases, unknowns at their expectation.",
        "",
        "| factor | cases fired | cases judged | expected among cases |",
        "|---|---|---|---|",
    ]
    for name in document["features"]:
        factor = document["factors"][name]
        if "cases_judged" in factor:
            lines.append(
                f"| {name} | {factor['cases_fired']} | {factor['cases_judged']} |"
                f" {factor['expected_among_cases']:.3f} |"
            )
    lines += [
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
        f"- band thresholds of one destination leg (probability): {document['bands']['thresholds']}; every"
        " itinerary's are the same multiples of its own no-factor odds (the response gives them)",
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
