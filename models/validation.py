"""Validation that can fail: held-out events against the checklist of fired factors.

Two schemes, each run with the same fit as training (`models.training.fit_posterior`):

- leave-one-event-out: every event (everyone detained in one state response, relatives held together)
  is scored by a model fitted without its incidents, without the reference records derived from them
  (its own detention recorded as a situation, an employer dispute built from the case, a third
  country's record of that very return) and without the prior passages that name it (each grade is
  recomputed from the passages left). Controls are scored out of fold too (five folds of control trips).
- a temporal backtest: fitted on incidents before a cutoff (and the controls travelling before it), with
  the records derived from later incidents removed and every prior graded only on the passages published
  before the cutoff (a factor with none gets the weakest grade), and scored on the later incidents and
  controls.

Both run on several draws of the reference population (`POPULATION_DRAWS`): a criterion on the controls
is judged on the mean over the draws, with their spread beside it. Every figure comes with a 90%
interval from a bootstrap over events (held-out incidents resampled by event, controls by trip), pooled
over the draws.

For each: the model's ROC AUC, the AUC of the unweighted count of fired factors (the checklist a
compliance team would otherwise use), the share of held-out incidents that land `high` or `severe`, and
the share of held-out control trips that land above `elevated`, beside their targets. Bands are relative
to each trip's own itinerary with no factor. Nothing is tuned: the priors are fixed by their passages
before any case is seen.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from models.assess import relative_band_indexes, trip_probability
from models.corpus import Incident, Population, generate_controls
from models.fitting import (
    BAND_MULTIPLES,
    TrainingData,
    build_training_data,
    distinct_row_index,
    fit_posterior,
    prior_correction,
    priors_from_rules,
    without_records,
)
from risk_rules.reference import InMemoryReference
from risk_rules.unknowns import Expectations

if TYPE_CHECKING:
    from risk_rules.ruleset import RuleSet

# The backtest's cutoff: incidents from this date on are "the future". It leaves at least ten cases on
# each side of the bundled corpus (a test checks it).
TEMPORAL_CUTOFF = dt.date(2016, 1, 1)
CONTROL_FOLDS = 5
POPULATION_DRAWS = 5
BOOTSTRAP_REPLICATES = 400  # per population draw; pooled over the draws
INTERVAL = (5.0, 95.0)  # a 90% interval
BAND_ORDER = ("low", "elevated", "high", "severe")
TARGETS = {
    "incidents_high_or_severe": {"at_least": 0.70, "what": "held-out incidents banded high or severe"},
    "controls_above_elevated": {"at_most": 0.05, "what": "held-out control trips banded above elevated"},
    "auc_difference": {"at_least": 0.0, "what": "model AUC minus checklist AUC (ranking no worse than a count)"},
}


def reference_without(reference: InMemoryReference, records: Iterable[str]) -> InMemoryReference:
    """The reference data without the named records.

    Records are named as incidents name them: `situation:<id>`, `employer_dispute:<id>`, and
    `forced_return:<country>:<date>` (every forced return recorded for that third country on that date).
    """
    keys = set(records)
    if not keys:
        return reference
    situations = [s for s in reference.situations if f"situation:{s.id}" not in keys]
    disputes = [d for d in reference.employer_disputes if f"employer_dispute:{d.id}" not in keys]
    thirds = {}
    for code, profile in reference.third_countries.items():
        kept = tuple(
            r for r in profile.forced_returns if f"forced_return:{code}:{r.occurred_on.isoformat()}" not in keys
        )
        thirds[code] = profile if len(kept) == len(profile.forced_returns) else replace(profile, forced_returns=kept)
    suffix = "-without-" + hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:8]
    return InMemoryReference(
        destinations=reference.destinations,
        third_countries=thirds,
        situations=situations,
        employer_disputes=disputes,
        version=reference.version + suffix,
    )


def roc_auc(cases: np.ndarray, controls: np.ndarray) -> float:
    """The probability that a case outranks a control (ties count half): the Mann–Whitney AUC."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([cases, controls]))
    n1, n0 = len(cases), len(controls)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def leg_log_odds(x: np.ndarray, coef: np.ndarray, intercept: float) -> np.ndarray:
    """Each row's log-odds, computed once per distinct row: equal rows get equal numbers, whatever the
    BLAS kernel does with a row's position."""
    rows, inverse = distinct_row_index(x)
    return (intercept + rows @ coef)[inverse]


def band_indexes(probability: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Bands (0 low … 3 severe) relative to each trip's own no-factor probability, as scoring bands them."""
    return relative_band_indexes(probability, baseline, BAND_MULTIPLES)


@dataclass(frozen=True)
class HeldOut:
    """One scheme's held-out scores on one draw of the reference population."""

    case_p: np.ndarray
    case_band: np.ndarray
    case_count: np.ndarray
    case_events: np.ndarray
    control_p: np.ndarray
    control_band: np.ndarray
    control_count: np.ndarray


def _fit(x: np.ndarray, y: np.ndarray, priors: Any, base_rate: float) -> tuple[np.ndarray, float]:
    posterior = fit_posterior(x, y, priors)
    return posterior.coefficients, posterior.intercept - prior_correction(float(y.mean()), base_rate)


def _score_trips(
    x: np.ndarray, fired: np.ndarray, trips: np.ndarray, coef: np.ndarray, intercept: float, tc: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probability, band and checklist count of each trip whose legs are the contiguous rows of `trips`."""
    _, starts = np.unique(trips, return_index=True)
    starts = np.sort(starts)
    p = trip_probability(leg_log_odds(x, coef, intercept), starts)
    base = trip_probability(intercept + x[:, tc] * coef[tc], starts)
    count = (np.maximum.reduceat(fired.astype(int), starts, axis=0) > 0).sum(axis=1).astype(float)
    return p, band_indexes(p, base), count


def _leave_one_event_out(
    data: TrainingData,
    incidents: dict[str, Incident],
    ruleset: RuleSet,
    reference: InMemoryReference,
    expectations: Expectations,
    base_rate: float,
    seed: int,
) -> tuple[HeldOut, dict[str, list[str]]]:
    n = data.cases
    tc = data.features.index("third_country_leg")
    events = np.asarray(data.case_events)
    case_p = np.zeros(n)
    case_band = np.zeros(n, dtype=int)
    case_count = np.zeros(n)
    lowered: dict[str, list[str]] = {}
    full = priors_from_rules(ruleset)
    for event in sorted(set(data.case_events)):
        derived = {r for i in data.cases_used if incidents[i].event == event for r in incidents[i].derived_records}
        if derived:
            x, fired = without_records(data, reference_without(reference, derived), derived, expectations)
        else:
            x, fired = data.x, data.fired
        priors = priors_from_rules(ruleset, keep=lambda p, e=event: e not in p.cases)
        for j, (a, b) in enumerate(zip(full.grades, priors.grades, strict=True)):
            if a != b:
                lowered.setdefault(data.features[j], []).append(event)
        held = events == event
        train = np.concatenate([~held, np.ones(len(data.y) - n, dtype=bool)])
        coef, intercept = _fit(x[train], data.y[train], priors, base_rate)
        rows = np.flatnonzero(held)
        p, band, count = _score_trips(x[rows], fired[rows], np.arange(len(rows)), coef, intercept, tc)
        case_p[held], case_band[held], case_count[held] = p, band, count
    # Controls out of fold: five folds of control trips, each scored by a fit on everything else.
    trips = data.control_trip
    fold_of_trip = np.random.default_rng(seed).integers(0, CONTROL_FOLDS, size=data.controls)
    row_fold = fold_of_trip[trips]
    control_p = np.full(data.controls, np.nan)
    control_band = np.zeros(data.controls, dtype=int)
    control_count = np.zeros(data.controls)
    x_ctrl, fired_ctrl = data.x[n:], data.fired[n:]
    for k in range(CONTROL_FOLDS):
        out = row_fold == k
        train = np.concatenate([np.ones(n, dtype=bool), ~out])
        coef, intercept = _fit(data.x[train], data.y[train], full, base_rate)
        p, band, count = _score_trips(x_ctrl[out], fired_ctrl[out], trips[out], coef, intercept, tc)
        scored = np.unique(trips[out])
        control_p[scored], control_band[scored], control_count[scored] = p, band, count
    assessed = ~np.isnan(control_p)
    held_out = HeldOut(
        case_p, case_band, case_count, events,
        control_p[assessed], control_band[assessed], control_count[assessed],
    )  # fmt: skip
    return held_out, {k: sorted(v) for k, v in sorted(lowered.items())}


def _temporal(
    data: TrainingData,
    incidents: dict[str, Incident],
    ruleset: RuleSet,
    reference: InMemoryReference,
    expectations: Expectations,
    base_rate: float,
) -> tuple[HeldOut, dict[str, str]]:
    n = data.cases
    tc = data.features.index("third_country_leg")
    later = np.asarray([d >= TEMPORAL_CUTOFF for d in data.case_dates], dtype=bool)
    later_events = {e for e, is_later in zip(data.case_events, later, strict=True) if is_later}
    derived = {
        r for i, is_later in zip(data.cases_used, later, strict=True) if is_later for r in incidents[i].derived_records
    }
    x, fired = without_records(data, reference_without(reference, derived), derived, expectations)
    priors = priors_from_rules(
        ruleset, keep=lambda p: p.published_by < TEMPORAL_CUTOFF and not (set(p.cases) & later_events)
    )
    trip_later = np.asarray([start >= TEMPORAL_CUTOFF for start in data.control_start], dtype=bool)
    row_later = trip_later[data.control_trip]
    train = np.concatenate([~later, ~row_later])
    coef, intercept = _fit(x[train], data.y[train], priors, base_rate)
    rows = np.flatnonzero(later)
    case_p, case_band, case_count = _score_trips(x[rows], fired[rows], np.arange(len(rows)), coef, intercept, tc)
    control_rows = n + np.flatnonzero(row_later)
    control_p, control_band, control_count = _score_trips(
        x[control_rows], fired[control_rows], data.control_trip[row_later], coef, intercept, tc
    )
    held_out = HeldOut(
        case_p, case_band, case_count, np.asarray(data.case_events)[later],
        control_p, control_band, control_count,
    )  # fmt: skip
    return held_out, {name: grade for name, grade in zip(data.features, priors.grades, strict=True)}


# ------------------------------------------------------------------------------------------------
# Figures with their intervals


def _weighted_auc(
    case_scores: np.ndarray, case_weights: np.ndarray, control_values: np.ndarray, control_counts: np.ndarray
) -> float:
    """AUC with case and control multiplicities (ties half): `control_values` sorted and distinct."""
    cumulative = np.concatenate([[0.0], np.cumsum(control_counts)])
    below = cumulative[np.searchsorted(control_values, case_scores, side="left")]
    upto = cumulative[np.searchsorted(control_values, case_scores, side="right")]
    total = cumulative[-1] * case_weights.sum()
    return float((case_weights * (below + 0.5 * (upto - below))).sum() / total)


def _figures(h: HeldOut, case_weights: np.ndarray, trip_counts: np.ndarray) -> dict[str, float]:
    values, inverse = np.unique(h.control_p, return_inverse=True)
    counts = np.bincount(inverse.reshape(-1), weights=trip_counts, minlength=len(values))
    checklist_values, checklist_inverse = np.unique(h.control_count, return_inverse=True)
    checklist_counts = np.bincount(checklist_inverse.reshape(-1), weights=trip_counts, minlength=len(checklist_values))
    model = _weighted_auc(h.case_p, case_weights, values, counts)
    checklist = _weighted_auc(h.case_count, case_weights, checklist_values, checklist_counts)
    return {
        "model_auc": model,
        "checklist_auc": checklist,
        "auc_difference": model - checklist,
        "incidents_high_or_severe": float((case_weights * (h.case_band >= 2)).sum() / case_weights.sum()),
        "controls_above_elevated": float((trip_counts * (h.control_band >= 2)).sum() / trip_counts.sum()),
    }


def _bootstrap(h: HeldOut, replicates: int, seed: int) -> dict[str, np.ndarray]:
    """Figures over resamples: held-out events (their incidents together) and control trips."""
    rng = np.random.default_rng(seed)
    events, event_of_case = np.unique(h.case_events, return_inverse=True)
    event_of_case = event_of_case.reshape(-1)
    out: dict[str, list[float]] = {}
    for _ in range(replicates):
        picked = np.bincount(rng.integers(0, len(events), len(events)), minlength=len(events)).astype(float)
        weights = picked[event_of_case]
        if weights.sum() == 0:
            continue
        trips = np.bincount(rng.integers(0, len(h.control_p), len(h.control_p)), minlength=len(h.control_p))
        for key, value in _figures(h, weights, trips.astype(float)).items():
            out.setdefault(key, []).append(value)
    return {key: np.asarray(values) for key, values in out.items()}


def _summary(name: str, scheme: str, draws: list[HeldOut], seed: int) -> dict[str, Any]:
    """Point figures (mean over the population draws), their 90% intervals, targets and the spread."""
    per_draw = [_figures(h, np.ones(len(h.case_p)), np.ones(len(h.control_p))) for h in draws]
    pooled: dict[str, list[np.ndarray]] = {}
    for k, h in enumerate(draws):
        for key, values in _bootstrap(h, BOOTSTRAP_REPLICATES, seed + k).items():
            pooled.setdefault(key, []).append(values)
    figures: dict[str, Any] = {}
    for key in per_draw[0]:
        values = [d[key] for d in per_draw]
        lo, hi = np.percentile(np.concatenate(pooled[key]), INTERVAL)
        figures[key] = {
            "value": round(float(np.mean(values)), 4),
            "interval_90": [round(float(lo), 4), round(float(hi), 4)],
            "by_draw": [round(v, 4) for v in values],
        }
    targets = {}
    for key, target in TARGETS.items():
        value = figures[key]["value"]
        met = value >= target["at_least"] if "at_least" in target else value <= target["at_most"]
        targets[key] = {**target, "value": value, "met": bool(met)}
    first = draws[0]
    return {
        "name": name,
        "scheme": scheme,
        "incidents": len(first.case_p),
        "events": len(set(first.case_events.tolist())),
        "controls": len(first.control_p),
        "population_draws": len(draws),
        "figures": figures,
        "targets": targets,
        "incidents_by_band": {b: int((first.case_band == k).sum()) for k, b in enumerate(BAND_ORDER)},
        "controls_by_band": {b: int((first.control_band == k).sum()) for k, b in enumerate(BAND_ORDER)},
    }


def draw_seeds(seed: int, draws: int) -> list[int]:
    """The seeds of the population draws validation runs on: the model's own seed first."""
    return [seed + k for k in range(draws)]


def validate_model(
    incidents: list[Incident],
    ruleset: RuleSet,
    reference: InMemoryReference,
    population: Population,
    seed: int,
    base_rate: float,
    controls: int | None = None,
    draws: int = POPULATION_DRAWS,
    first_draw: TrainingData | None = None,
) -> dict[str, Any]:
    """Both held-out schemes on `draws` population draws, the in-sample figure (labelled), the headline.

    `first_draw` is the training data of the first draw when the caller has built it already (training
    fits on the first draw's controls)."""
    expectations = Expectations(ruleset, population.shares())
    by_id = {i.id: i for i in incidents}
    loeo_draws: list[HeldOut] = []
    temporal_draws: list[HeldOut] = []
    lowered: dict[str, list[str]] = {}
    temporal_priors: dict[str, str] = {}
    primary: TrainingData | None = None
    for k, draw_seed in enumerate(draw_seeds(seed, draws)):
        if k == 0 and first_draw is not None:
            data = first_draw
        else:
            control_requests = generate_controls(population, reference, trips=controls, seed=draw_seed)
            data = build_training_data(incidents, control_requests, ruleset, reference, expectations)
        held, lowered = _leave_one_event_out(data, by_id, ruleset, reference, expectations, base_rate, draw_seed)
        loeo_draws.append(held)
        held, temporal_priors = _temporal(data, by_id, ruleset, reference, expectations, base_rate)
        temporal_draws.append(held)
        primary = primary or data
    assert primary is not None
    full = priors_from_rules(ruleset)
    loeo = _summary(
        "leave-one-event-out",
        "each event's incidents scored by a model fitted without them, without the reference records derived"
        " from them and without the prior passages that name them; control trips scored out of fold"
        f" ({CONTROL_FOLDS} folds); no tuning",
        loeo_draws,
        seed,
    )
    loeo["priors"] = {
        "grades": dict(zip(primary.features, full.grades, strict=True)),
        "lowered_in_folds": lowered,
        "rule": "each fold grades a factor on the passages that do not name its held-out event",
    }
    first = loeo_draws[0]
    loeo["held_out_incidents"] = [
        {
            "id": case_id,
            "event": event,
            "probability": round(float(p), 10),
            "band": BAND_ORDER[int(b)],
            "factors": int(c),
        }
        for case_id, event, p, b, c in zip(
            primary.cases_used, primary.case_events, first.case_p, first.case_band, first.case_count, strict=True
        )
    ]
    earlier = sum(1 for d in primary.case_dates if d < TEMPORAL_CUTOFF)
    temporal = _summary(
        "temporal backtest",
        f"fitted on the {earlier} incidents before {TEMPORAL_CUTOFF.isoformat()} and the control trips before it,"
        " with the reference records derived from later incidents removed and each prior graded only on the"
        " passages published before the cutoff; scored on the later incidents and control trips",
        temporal_draws,
        seed + 100,
    )
    temporal["cutoff"] = TEMPORAL_CUTOFF.isoformat()
    temporal["incidents_before_cutoff"] = earlier
    temporal["priors"] = {
        "grades": temporal_priors,
        "rule": "each factor graded on the passages published before the cutoff that name no later event;"
        " a factor with none is weak",
    }
    later_ids = [i for i, d in zip(primary.cases_used, primary.case_dates, strict=True) if d >= TEMPORAL_CUTOFF]
    first = temporal_draws[0]
    temporal["held_out_incidents"] = [
        {"id": case_id, "probability": round(float(p), 10), "band": BAND_ORDER[int(b)]}
        for case_id, p, b in zip(later_ids, first.case_p, first.case_band, strict=True)
    ]

    # ---- in sample, against the synthetic controls (not a measure of performance on new cases) ---
    n = primary.cases
    tc = primary.features.index("third_country_leg")
    coef, intercept = _fit(primary.x, primary.y, full, base_rate)
    in_p, _, in_count = _score_trips(primary.x[:n], primary.fired[:n], np.arange(n), coef, intercept, tc)
    ctrl_p, _, ctrl_count = _score_trips(primary.x[n:], primary.fired[n:], primary.control_trip, coef, intercept, tc)
    synthetic = {
        "label": "in-sample AUC against the synthetic controls (every case trained the model that scores it:"
        " an upper bound, not a measure of performance on new cases)",
        "model_auc": round(roc_auc(in_p, ctrl_p), 4),
        "checklist_auc": round(roc_auc(in_count, ctrl_count), 4),
    }
    headline = {
        "scheme": "leave-one-event-out (see validation); each figure the mean over population draws, with its"
        " 90% interval from a bootstrap over events",
        "roc_auc": loeo["figures"]["model_auc"]["value"],
        "roc_auc_interval_90": loeo["figures"]["model_auc"]["interval_90"],
        "checklist_roc_auc": loeo["figures"]["checklist_auc"]["value"],
        "incidents_high_or_severe": loeo["figures"]["incidents_high_or_severe"]["value"],
        "controls_above_elevated": loeo["figures"]["controls_above_elevated"]["value"],
        "temporal_roc_auc": temporal["figures"]["model_auc"]["value"],
        "temporal_checklist_roc_auc": temporal["figures"]["checklist_auc"]["value"],
        "in_sample_synthetic_roc_auc": synthetic["model_auc"],
        "targets_missed": [
            f"{scheme['name']}: {target['what']} {target['value']}"
            for scheme in (loeo, temporal)
            for target in scheme["targets"].values()
            if not target["met"]
        ],
    }
    return {
        "leave_one_event_out": loeo,
        "temporal_backtest": temporal,
        "in_sample_synthetic_controls": synthetic,
        "headline": headline,
    }
