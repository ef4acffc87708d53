"""Validation that can fail: held-out events against the checklist of fired factors.

Two schemes, each run with the same fit as training (`models.training.fit_posterior`):

- leave-one-event-out: every event (everyone detained in one state response, relatives held together)
  is scored by a model fitted without its incidents *and without the reference records derived from
  them* (its own detention recorded as a situation, an employer dispute built from the case, a third
  country's record of that very return). Controls are scored out of fold too (five folds of control trips).
- a temporal backtest: fitted on incidents before a cutoff (and the controls travelling before it), with
  the records derived from later incidents removed, and scored on the later incidents and controls.

For each: the model's ROC AUC, the AUC of the unweighted count of fired factors (the checklist a
compliance team would otherwise use), the share of held-out incidents that land `high` or `severe`, and
the share of held-out control trips that land `low` or `elevated`. Nothing is tuned: the priors are
fixed by their grades before any case is seen.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from models.corpus import Incident
from risk_rules.reference import InMemoryReference

if TYPE_CHECKING:
    from models.training import TrainingData
    from risk_rules.ruleset import RuleSet

# The backtest's cutoff: incidents from this date on are "the future". It leaves at least ten cases on
# each side of the bundled corpus (a test checks it).
TEMPORAL_CUTOFF = dt.date(2016, 1, 1)
CONTROL_FOLDS = 5
BAND_ORDER = ("low", "elevated", "high", "severe")


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


def _bands(probability: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    cut = np.array([thresholds["elevated"], thresholds["high"], thresholds["severe"]])
    return np.searchsorted(cut, probability, side="right")  # 0 low … 3 severe


def _trip_probability(eta: np.ndarray, trips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Combine legs as 1 − Π(1 − p) per control trip; the trips in order of first appearance."""
    order, starts = np.unique(trips, return_index=True)
    starts = np.sort(starts)
    log_survival = -np.logaddexp(0.0, eta)
    return -np.expm1(np.add.reduceat(log_survival, starts)), trips[starts]


def _trip_checklist(x_rules: np.ndarray, trips: np.ndarray) -> np.ndarray:
    _, starts = np.unique(trips, return_index=True)
    starts = np.sort(starts)
    return (np.maximum.reduceat(x_rules, starts, axis=0) > 0).sum(axis=1).astype(float)


def _fit_and_correct(x: np.ndarray, y: np.ndarray, priors, base_rate: float):
    from models.training import band_thresholds, fit_posterior, prior_correction

    posterior = fit_posterior(x, y, priors)
    intercept = posterior.intercept - prior_correction(float(y.mean()), base_rate)
    return posterior.coefficients, intercept, band_thresholds(intercept)


def _summary(
    name: str,
    scheme: str,
    case_p: np.ndarray,
    case_band: np.ndarray,
    case_count: np.ndarray,
    control_p: np.ndarray,
    control_band: np.ndarray,
    control_count: np.ndarray,
    events: int,
    per_incident: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "name": name,
        "scheme": scheme,
        "incidents": len(case_p),
        "events": events,
        "controls": len(control_p),
        "model_auc": round(roc_auc(case_p, control_p), 4),
        "checklist_auc": round(roc_auc(case_count, control_count), 4),
        "incidents_high_or_severe": round(float((case_band >= 2).mean()), 4),
        "incidents_by_band": {b: int((case_band == k).sum()) for k, b in enumerate(BAND_ORDER)},
        "controls_low_or_elevated": round(float((control_band <= 1).mean()), 4),
        "controls_above_elevated": round(float((control_band >= 2).mean()), 4),
        "controls_by_band": {b: int((control_band == k).sum()) for k, b in enumerate(BAND_ORDER)},
        "held_out_incidents": per_incident,
    }


def validate_model(
    incidents: list[Incident],
    control_requests: list,
    ruleset: RuleSet,
    reference: InMemoryReference,
    data: TrainingData,
    seed: int,
    base_rate: float | None = None,
) -> dict[str, Any]:
    """Both held-out schemes, the in-sample figure (labelled as such), and the headline."""
    from models.training import DEFAULT_BASE_RATE, priors_from_rules, without_records

    base_rate = DEFAULT_BASE_RATE if base_rate is None else base_rate
    priors = priors_from_rules(ruleset)
    by_id = {i.id: i for i in incidents}
    trained = [by_id[i] for i in data.cases_used]
    rules = slice(0, data.x.shape[1] - 1)  # every column but the third-country indicator

    # ---- leave one event out -------------------------------------------------------------------
    events = sorted(set(data.case_events))
    case_p = np.zeros(len(trained))
    case_band = np.zeros(len(trained), dtype=int)
    case_count = np.zeros(len(trained))
    for event in events:
        derived = {r for i in trained if i.event == event for r in i.derived_records}
        x_fold = without_records(data, ruleset, reference_without(reference, derived), derived) if derived else data.x
        held = np.asarray([e == event for e in data.case_events])
        n = len(trained)
        train = np.concatenate([~held, np.ones(len(data.y) - n, dtype=bool)])
        coef, intercept, thresholds = _fit_and_correct(x_fold[train], data.y[train], priors, base_rate)
        x_held = x_fold[:n][held]
        p = 1.0 / (1.0 + np.exp(-(intercept + x_held @ coef)))
        case_p[held] = p
        case_band[held] = _bands(p, thresholds)
        case_count[held] = (x_held[:, rules] > 0).sum(axis=1)
    # Controls out of fold: five folds of control trips, each scored by a fit on everything else.
    n = len(trained)
    x_ctrl, trips = data.x[n:], data.control_trip
    fold_of_trip = np.random.default_rng(seed).integers(0, CONTROL_FOLDS, size=int(trips.max()) + 1)
    control_fold = fold_of_trip[trips]
    eta = np.zeros(len(x_ctrl))
    control_thresholds = []
    for k in range(CONTROL_FOLDS):
        out = control_fold == k
        train = np.concatenate([np.ones(n, dtype=bool), ~out])
        coef, intercept, thresholds = _fit_and_correct(data.x[train], data.y[train], priors, base_rate)
        eta[out] = intercept + x_ctrl[out] @ coef
        control_thresholds.append(thresholds)
    control_p, trip_ids = _trip_probability(eta, trips)
    trip_fold = fold_of_trip[trip_ids]
    control_band = np.zeros(len(control_p), dtype=int)
    for k in range(CONTROL_FOLDS):
        control_band[trip_fold == k] = _bands(control_p[trip_fold == k], control_thresholds[k])
    control_count = _trip_checklist(x_ctrl[:, rules], trips)
    loeo = _summary(
        "leave-one-event-out",
        "each event's incidents scored by a model fitted without them and without the reference records"
        " derived from them; control trips scored out of fold (5 folds); no tuning",
        case_p,
        case_band,
        case_count,
        control_p,
        control_band,
        control_count,
        len(events),
        [
            {"id": i.id, "event": i.event, "probability": round(float(p), 8), "band": BAND_ORDER[b], "factors": int(c)}
            for i, p, b, c in zip(trained, case_p, case_band, case_count, strict=True)
        ],
    )

    # ---- temporal backtest ---------------------------------------------------------------------
    later = [i for i in trained if i.occurred_on >= TEMPORAL_CUTOFF]
    earlier = [i for i in trained if i.occurred_on < TEMPORAL_CUTOFF]
    derived = {r for i in later for r in i.derived_records}
    x_world = without_records(data, ruleset, reference_without(reference, derived), derived)
    is_later = np.asarray([i.occurred_on >= TEMPORAL_CUTOFF for i in trained])
    control_start = np.asarray([r.trip.start >= TEMPORAL_CUTOFF for r in control_requests])
    row_later = control_start[data.control_trip]
    train = np.concatenate([~is_later, ~row_later])
    coef, intercept, thresholds = _fit_and_correct(x_world[train], data.y[train], priors, base_rate)
    x_cases = x_world[:n][is_later]
    p_cases = 1.0 / (1.0 + np.exp(-(intercept + x_cases @ coef)))
    x_later_ctrl = x_world[n:][row_later]
    p_ctrl, _ = _trip_probability(intercept + x_later_ctrl @ coef, data.control_trip[row_later])
    temporal = _summary(
        "temporal backtest",
        f"fitted on the {len(earlier)} incidents before {TEMPORAL_CUTOFF.isoformat()} and the control trips"
        " before it, with the reference records derived from later incidents removed; scored on the later"
        " incidents and control trips",
        p_cases,
        _bands(p_cases, thresholds),
        (x_cases[:, rules] > 0).sum(axis=1).astype(float),
        p_ctrl,
        _bands(p_ctrl, thresholds),
        _trip_checklist(x_later_ctrl[:, rules], data.control_trip[row_later]),
        len({i.event for i in later}),
        [
            {"id": i.id, "event": i.event, "probability": round(float(p), 8), "band": BAND_ORDER[b]}
            for i, p, b in zip(later, p_cases, _bands(p_cases, thresholds), strict=True)
        ],
    )
    temporal["cutoff"] = TEMPORAL_CUTOFF.isoformat()
    temporal["incidents_before_cutoff"] = len(earlier)

    # ---- in sample, against the synthetic controls (not a measure of performance on new cases) ---
    coef, intercept, _ = _fit_and_correct(data.x, data.y, priors, base_rate)
    in_case = intercept + data.x[:n] @ coef
    in_ctrl, _ = _trip_probability(intercept + x_ctrl @ coef, trips)
    synthetic = {
        "label": "in-sample AUC against the synthetic controls (every case trained the model that scores it:"
        " an upper bound, not a measure of performance on new cases)",
        "model_auc": round(roc_auc(1.0 / (1.0 + np.exp(-in_case)), in_ctrl), 4),
        "checklist_auc": round(roc_auc((data.x[:n, rules] > 0).sum(axis=1).astype(float), control_count), 4),
    }
    headline = {
        "scheme": "leave-one-event-out (see validation)",
        "roc_auc": loeo["model_auc"],
        "checklist_roc_auc": loeo["checklist_auc"],
        "incidents_high_or_severe": loeo["incidents_high_or_severe"],
        "controls_low_or_elevated": loeo["controls_low_or_elevated"],
        "temporal_roc_auc": temporal["model_auc"],
        "temporal_checklist_roc_auc": temporal["checklist_auc"],
        "in_sample_synthetic_roc_auc": synthetic["model_auc"],
    }
    return {
        "leave_one_event_out": loeo,
        "temporal_backtest": temporal,
        "in_sample_synthetic_controls": synthetic,
        "headline": headline,
    }
