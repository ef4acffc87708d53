"""Fitting the case-control logistic model and writing its JSON artifact and model card.

Cases are the bundled incidents, controls the reference population; both go through the same facts
and rules as scoring (`models.assess.feature_matrix`). scikit-learn fits; the intercept is corrected
to a stated per-trip base rate (King & Zeng 2001 prior correction); bootstrap refits give intervals;
risk factors are constrained to be non-negative by an active-set refit, which the card reports.
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
from risk_rules.facts import UNASSESSED, leg_facts
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
# Bands are multiples of the base rate τ (the average trip), so they move with an operator's τ.
BAND_MULTIPLES = {"elevated": 2.0, "high": 5.0, "severe": 50.0}
BANDS_PROVENANCE = (
    "policy choice: elevated from 2x the average trip's probability (the base rate), high from 5x,"
    " severe from 50x; high and severe require review"
)
# Candidate L2 strengths; the one with the lowest grouped cross-validated log loss is used.
# Stored numbers are rounded so that the artifact (and its content-hash version) does not depend on
# floating-point noise below what any score could show.
DIGITS = 8
C_GRID = (1.0, 3.0, 10.0, 30.0, 100.0)
LIMITATIONS = [
    "The cases are the incidents that five commentary and reporting sources describe; the many incidents"
    " that were never reported are missing, and reported cases lean towards prominent Western nationals.",
    "The controls are a synthetic population whose proportions are assumptions (see population); the"
    " coefficients measure how much more common a factor is among documented incidents than in that"
    " assumed population, so they move when the assumptions move.",
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
    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    features: list[str]
    cases_used: list[str]
    cases_excluded: dict[str, str] = field(default_factory=dict)
    controls: int = 0


def build_training_data(
    incidents: list[Incident],
    controls: list,
    ruleset: RuleSet,
    reference: InMemoryReference,
) -> TrainingData:
    """Feature rows: each incident's last (incident) leg as a case, each control's assessed legs."""
    rows: list[np.ndarray] = []
    labels: list[int] = []
    groups: list[str] = []
    used: list[str] = []
    excluded: dict[str, str] = {}
    for incident in incidents:
        if not incident.train:
            excluded[incident.id] = incident.train_note or "not used for training"
            continue
        legs = leg_facts(incident.request, reference)
        last = legs[-1]
        if last.kind == UNASSESSED:
            excluded[incident.id] = f"the incident leg's country ({last.leg.country}) has no risk profile"
            continue
        rows.append(feature_matrix(ruleset, [last]))
        labels.append(1)
        groups.append("case:" + incident.person)
        used.append(incident.id)
    n_controls = 0
    for number, request in enumerate(controls):
        legs = [f for f in leg_facts(request, reference) if f.kind != UNASSESSED]
        if not legs:
            continue
        rows.append(feature_matrix(ruleset, legs))
        labels.extend([0] * len(legs))
        groups.extend([f"control:{number}"] * len(legs))
        n_controls += 1
    return TrainingData(
        x=np.vstack(rows),
        y=np.asarray(labels, dtype=int),
        groups=np.asarray(groups),
        features=model_features(ruleset),
        cases_used=used,
        cases_excluded=excluded,
        controls=n_controls,
    )


def _fit(x: np.ndarray, y: np.ndarray, constrained: list[int], c: float) -> tuple[np.ndarray, float, list[int], Any]:
    """Fit with scikit-learn, refitting without any constrained feature whose coefficient is negative."""
    from sklearn.linear_model import LogisticRegression

    active = list(range(x.shape[1]))
    zeroed: list[int] = []
    while True:
        model = LogisticRegression(C=c, solver="lbfgs", max_iter=5000, tol=1e-10)
        model.fit(x[:, active], y)
        coef = np.zeros(x.shape[1])
        coef[active] = model.coef_[0]
        negative = [j for j in active if j in constrained and coef[j] < 0]
        if not negative:
            return coef, float(model.intercept_[0]), sorted(zeroed), model
        zeroed.extend(negative)
        active = [j for j in active if j not in negative]


def prior_correction(case_share: float, base_rate: float) -> float:
    """King & Zeng (2001): the amount subtracted from the sample intercept, ln[(1−τ)/τ · ȳ/(1−ȳ)]."""
    return math.log(((1 - base_rate) / base_rate) * (case_share / (1 - case_share)))


def _cv_predictions(data: TrainingData, constrained: list[int], c: float, seed: int) -> tuple[np.ndarray, int]:
    """Out-of-fold predictions from grouped folds: no person's incident trains the model that scores it."""
    from sklearn.model_selection import StratifiedGroupKFold

    folds = max(2, min(5, int(data.y.sum())))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    predicted = np.zeros(len(data.y))
    for train, test in splitter.split(data.x, data.y, data.groups):
        coef, intercept, _, _ = _fit(data.x[train], data.y[train], constrained, c)
        predicted[test] = 1 / (1 + np.exp(-(intercept + data.x[test] @ coef)))
    return predicted, folds


def _choose_c(data: TrainingData, constrained: list[int], seed: int) -> tuple[float, dict[str, float]]:
    """The L2 strength with the lowest grouped cross-validated log loss."""
    from sklearn.metrics import log_loss

    losses = {}
    for c in C_GRID:
        predicted, _ = _cv_predictions(data, constrained, c, seed)
        losses[str(c)] = round(float(log_loss(data.y, predicted, labels=[0, 1])), 6)
    best = min(C_GRID, key=lambda c: (losses[str(c)], c))
    return best, losses


def _cross_validated(data: TrainingData, constrained: list[int], c: float, seed: int) -> dict[str, Any]:
    """Grouped cross-validated discrimination and calibration of the chosen fit."""
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    predicted, folds = _cv_predictions(data, constrained, c, seed)
    logit = np.log(np.clip(predicted, 1e-12, 1 - 1e-12) / np.clip(1 - predicted, 1e-12, 1))
    # Calibration slope and intercept on the sample scale (1 and 0 are perfect).
    from sklearn.linear_model import LogisticRegression

    recal = LogisticRegression(C=1e6, solver="lbfgs", max_iter=5000).fit(logit.reshape(-1, 1), data.y)
    order = np.argsort(predicted)
    bins = np.array_split(order, 10)
    table = [
        {
            "mean_predicted": round(float(predicted[b].mean()), 6),
            "observed_share": round(float(data.y[b].mean()), 6),
            "rows": len(b),
        }
        for b in bins
        if len(b)
    ]
    return {
        "scheme": f"{folds}-fold stratified group cross-validation; a person's incident and each control"
        " trip form one group, so no incident trains the model that scores it",
        "roc_auc": round(float(roc_auc_score(data.y, predicted)), 4),
        "brier": round(float(brier_score_loss(data.y, predicted)), 6),
        "log_loss": round(float(log_loss(data.y, predicted, labels=[0, 1])), 6),
        "calibration_slope": round(float(recal.coef_[0][0]), 4),
        "calibration_intercept": round(float(recal.intercept_[0]), 4),
        "calibration_scale": "case-control sample (before the prior correction)",
        "calibration_deciles": table,
    }


def _data_hash(data: TrainingData) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(data.features).encode())
    digest.update(np.ascontiguousarray(data.x).tobytes())
    digest.update(np.ascontiguousarray(data.y).tobytes())
    return "sha256:" + digest.hexdigest()


def _rounded(values: np.ndarray, digits: int = DIGITS) -> list:
    return np.round(values, digits).tolist()


def train_model(
    incidents_path: Path | None = None,
    seed: int | None = None,
    base_rate: float = DEFAULT_BASE_RATE,
    base_rate_provenance: str = DEFAULT_BASE_RATE_PROVENANCE,
    bootstrap: int = 200,
    controls: int | None = None,
    c: float | None = None,
    ruleset: RuleSet | None = None,
    reference: InMemoryReference | None = None,
) -> tuple[dict[str, Any], Any, TrainingData]:
    """Fit a model version; return its artifact document, the fitted scikit-learn model and the data."""
    if not 0 < base_rate < 1:
        raise ValueError("base rate must be in (0, 1)")
    ruleset = ruleset or bundled_rules()
    reference = reference or load_bundled_reference()
    population = Population.load()
    seed = population.seed if seed is None else seed
    incidents = load_incidents(incidents_path)
    control_requests = generate_controls(population, reference, trips=controls, seed=seed)
    data = build_training_data(incidents, control_requests, ruleset, reference)
    if data.y.sum() < 2:
        raise ValueError("need at least two usable incidents to train")
    features = data.features
    constrained = [j for j, name in enumerate(features) if name != THIRD_COUNTRY_FEATURE]
    c_losses: dict[str, float] = {}
    if c is None:
        c, c_losses = _choose_c(data, constrained, seed)
    coef, intercept_sample, zeroed, fitted = _fit(data.x, data.y, constrained, c)
    case_share = float(data.y.mean())
    correction = prior_correction(case_share, base_rate)
    intercept = intercept_sample - correction

    rng = np.random.default_rng(seed)
    cases = np.flatnonzero(data.y == 1)
    ctrls = np.flatnonzero(data.y == 0)
    boot_coef = np.zeros((bootstrap, len(features)))
    boot_int = np.zeros(bootstrap)
    for b in range(bootstrap):
        # Stratified resampling keeps the case share, so every draw takes the same correction.
        sample = np.concatenate([rng.choice(cases, len(cases)), rng.choice(ctrls, len(ctrls))])
        bc, bi, _, _ = _fit(data.x[sample], data.y[sample], constrained, c)
        boot_coef[b] = bc
        boot_int[b] = bi - correction
    lo, hi = np.percentile(boot_coef, [2.5, 97.5], axis=0)
    metrics = _cross_validated(data, constrained, c, seed)
    tc = features.index(THIRD_COUNTRY_FEATURE)
    constraints = [
        {
            "feature": features[j],
            "note": "unconstrained fit gave a negative coefficient for a factor the sources describe as"
            " raising risk; fixed at 0 and the model refitted without it",
        }
        for j in zeroed
    ]
    document: dict[str, Any] = {
        "format": ARTIFACT_FORMAT,
        "features": features,
        "coefficients": _rounded(coef),
        "intercept": round(intercept, DIGITS),
        "intercept_sample": round(intercept_sample, DIGITS),
        "intercepts": {
            "destination_leg": round(intercept, DIGITS),
            "third_country_leg": round(intercept + float(coef[tc]), DIGITS),
            "sample_before_correction": round(intercept_sample, DIGITS),
        },
        "coefficient_intervals": {
            f: [round(float(lo[j]), DIGITS), round(float(hi[j]), DIGITS)] for j, f in enumerate(features)
        },
        "bootstrap": {
            "n": bootstrap,
            "seed": seed,
            "coefficients": _rounded(boot_coef),
            "intercepts": _rounded(boot_int),
        },
        "base_rate": {
            "value": base_rate,
            "provenance": base_rate_provenance,
            "sample_case_share": round(case_share, DIGITS),
            "correction": round(correction, DIGITS),
            "method": "King & Zeng (2001) prior correction: intercept − ln[((1−τ)/τ)·(ȳ/(1−ȳ))]",
        },
        "bands": {
            "thresholds": {name: base_rate * m for name, m in BAND_MULTIPLES.items()},
            "multiples_of_base_rate": BAND_MULTIPLES,
            "provenance": BANDS_PROVENANCE,
        },
        "data": {
            "incidents": len(data.cases_used),
            "incident_ids": data.cases_used,
            "incidents_excluded": data.cases_excluded,
            "controls": data.controls,
            "control_rows": int((data.y == 0).sum()),
            "case_rows": int(data.y.sum()),
            "population": Population.load().provenance(),
            "hash": _data_hash(data),
        },
        "fit": {
            "library": "scikit-learn LogisticRegression",
            "penalty": "l2",
            "C": c,
            "C_selection": {"grid_log_loss": c_losses, "rule": "lowest grouped cross-validated log loss"}
            if c_losses
            else {"rule": "set by the caller"},
            "solver": "lbfgs",
            "seed": seed,
        },
        "constraints": constraints,
        "metrics": metrics,
        "rules_version": ruleset.version,
        "reference_data_version": reference.version,
        "limitations": LIMITATIONS,
    }
    content = json.dumps(document, sort_keys=True, separators=(",", ":"))
    document["version"] = "m" + hashlib.sha256(content.encode()).hexdigest()[:12]
    document["trained_at"] = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    return document, fitted, data


def content_hash(document: dict[str, Any]) -> str:
    """Hash of an artifact without its training time: equal for equal data, seed and settings."""
    stripped = {k: v for k, v in document.items() if k != "trained_at"}
    return hashlib.sha256(json.dumps(stripped, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def model_card_markdown(document: dict[str, Any]) -> str:
    """A human-readable model card."""
    data = document["data"]
    metrics = document["metrics"]
    base = document["base_rate"]
    lines = [
        f"# Model card: {document['version']}",
        "",
        f"Trained {document['trained_at']} on rules {document['rules_version']} and reference data"
        f" {document['reference_data_version']}. Case-control logistic regression ({document['fit']['library']},"
        f" L2, C={document['fit']['C']}, {document['fit']['C_selection']['rule']}"
        f" {document['fit']['C_selection'].get('grid_log_loss', '')}), seed {document['fit']['seed']}.",
        "",
        "## Data",
        "",
        f"- incidents used as cases: {data['incidents']} ({data['case_rows']} rows)",
        f"- control trips: {data['controls']} ({data['control_rows']} assessed legs)",
        f"- incidents not used: {len(data['incidents_excluded'])}",
        f"- data hash: `{data['hash']}`",
        "",
        "## Base rate and intercepts",
        "",
        f"- per-trip base rate τ = {base['value']:g}. {base['provenance']}",
        f"- sample case share ȳ = {base['sample_case_share']:.6f}; correction ln[((1−τ)/τ)(ȳ/(1−ȳ))] ="
        f" {base['correction']:.4f}",
        f"- intercepts: destination leg {document['intercepts']['destination_leg']:.4f}, third-country leg"
        f" {document['intercepts']['third_country_leg']:.4f} (before correction"
        f" {document['intercepts']['sample_before_correction']:.4f})",
        "",
        "## Coefficients (log-odds, 95% bootstrap interval, odds multiplier)",
        "",
        "| factor | coefficient | interval | odds × |",
        "|---|---|---|---|",
    ]
    for name, value in zip(document["features"], document["coefficients"], strict=True):
        lo, hi = document["coefficient_intervals"][name]
        lines.append(f"| {name} | {value:.3f} | [{lo:.3f}, {hi:.3f}] | {math.exp(value):.2f} |")
    lines += ["", "## Constraints", ""]
    lines += [f"- {c['feature']}: {c['note']}" for c in document["constraints"]] or ["- none were needed"]
    lines += [
        "",
        "## Discrimination and calibration (cross-validated)",
        "",
        f"- {metrics['scheme']}",
        f"- ROC AUC {metrics['roc_auc']}, Brier {metrics['brier']}",
        f"- calibration slope {metrics['calibration_slope']}, intercept {metrics['calibration_intercept']}"
        f" ({metrics['calibration_scale']})",
        "",
        "## Bands",
        "",
        f"- thresholds: {document['bands']['thresholds']} ({document['bands']['provenance']})",
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
    card = {k: v for k, v in document.items() if k != "bootstrap"}
    (directory / f"model-{document['version']}.card.json").write_text(
        json.dumps(card, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    (directory / f"model-{document['version']}.card.md").write_text(model_card_markdown(document), encoding="utf-8")
    if make_active:
        activate(document["version"], directory)
    return path
