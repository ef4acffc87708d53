"""What the assessment, queue and model pages show, gathered from the stored data and the model card."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from risk_rules.sources import source_title
from service.assessments.models import Assessment
from service.db import utcnow
from service.keys.models import Role
from service.keys.service import Principal
from service.reviews import service as reviews
from service.reviews.states import OPEN, Decision, PriorDecision, State, refusal
from service.ui.charts import Estimate, forest_svg, waterfall_steps, waterfall_svg
from service.ui.reference import BY_PREFIX, SOURCE_TITLES

OTHER_RECORDS = {"third_country": "Third-country profile", "law": "Law in the destination's profile"}


def cited_records(session: Session, derived_from: list[str]) -> list[dict[str, Any]]:
    """The reference records a factor rests on, with what the page links and shows."""
    found = []
    for reference in derived_from:
        prefix, _, record_id = reference.partition(":")
        page = BY_PREFIX.get(prefix)
        row = session.get(page.kind.model, record_id) if page is not None and record_id else None
        if page is None or row is None:
            label = f"{OTHER_RECORDS.get(prefix, prefix)}: {record_id}" if record_id else reference
            found.append({"reference": reference, "label": label, "url": None})
            continue
        document = row.document
        found.append(
            {
                "reference": reference,
                "kind": page.kind.label,
                "label": page.label_of(document),
                "started_on": document.get("started_on"),
                "ended_on": document.get("ended_on"),
                "url": f"/ui/reference/{page.slug}/{record_id}",
            }
        )
    return found


def evidence_items(evidence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evidence quotes with the title of the source they come from."""
    items = []
    for item in evidence:
        source = item.get("source")
        title = (SOURCE_TITLES.get(source) or source_title(source) or source) if source else item.get("title")
        items.append({**item, "source_title": title})
    return items


def assessment_view(session: Session, body: dict[str, Any]) -> dict[str, Any]:
    """The assessment page's content: score, waterfall, factors with their records and evidence."""
    score = body.get("score")
    factors = [
        {
            **factor,
            "records": cited_records(session, factor.get("derived_from", [])),
            "evidence_items": evidence_items(factor.get("evidence", [])),
        }
        for factor in body.get("factors", [])
    ]
    chart = None
    if score is not None and body.get("baseline"):
        steps_of = list(body.get("factors", []))
        left_out = float(score.get("not_given_log_odds") or 0.0)
        if left_out > 0.005:
            # Fields left out add their expectation to the score: a step of their own, so that the bars of
            # the listed factors are not stretched to cover it.
            steps_of.append(
                {"id": "not_given", "title": "Fields not given, at their expectation", "contribution": left_out}
            )
        steps = waterfall_steps(body["baseline"]["probability"], score["log_odds"], steps_of)
        chart = {"steps": steps, "svg": waterfall_svg(steps)}
    not_given = [
        {**item, "factor_titles": [_factor_title(f) for f in item.get("factors", [])]}
        for item in body.get("not_given", [])
    ]
    return {"body": body, "score": score, "factors": factors, "waterfall": chart, "not_given": not_given}


def _factor_title(factor_id: str) -> str:
    from risk_rules.ruleset import bundled_rules

    try:
        return bundled_rules().by_id(factor_id).title
    except KeyError:
        return factor_id


# ---------------------------------------------------------------------------------------------
# The queue and the review


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One trip waiting for a decision."""

    id: str
    band: str
    probability: float | None
    traveler_reference: str | None
    destinations: list[str]
    trip_start: dt.date
    trip_end: dt.date
    top_factor: str | None
    state: str
    waiting_since: dt.datetime | None

    @property
    def waiting(self) -> str:
        """How long the trip has waited, in words: "3 d 4 h", "5 h 12 min", "8 min"."""
        if self.waiting_since is None:
            return "—"
        seconds = max(int((utcnow() - self.waiting_since).total_seconds()), 0)
        days, rest = divmod(seconds, 86_400)
        hours, rest = divmod(rest, 3_600)
        minutes = rest // 60
        if days:
            return f"{days} d {hours} h"
        if hours:
            return f"{hours} h {minutes} min"
        return f"{minutes} min"


def queue_items(rows: list[Assessment]) -> list[QueueItem]:
    """Queue rows as the page shows them (from the review service's queue items)."""
    items = []
    for row in rows:
        item = reviews.queue_item(row)
        items.append(
            QueueItem(
                id=item["assessment_id"],
                band=item["band"] or "",
                probability=item["probability"],
                traveler_reference=item["traveler_reference"],
                destinations=item["destinations"],
                trip_start=item["trip_start"],
                trip_end=item["trip_end"],
                top_factor=item["top_factor_title"],
                state=item["state"],
                waiting_since=item["waiting_since"],
            )
        )
    return items


def review_view(session: Session, principal: Principal, row: Assessment, mitigations: list[str]) -> dict[str, Any]:
    """The review part of an assessment page: history, and whether this officer gets the form (and if not,
    why). The form goes only to reviewers and admins, never to whoever requested the trip."""
    history = reviews.history(session, principal.tenant_id, row.id)
    state = State(history["state"])
    may_review = principal.role in (Role.reviewer, Role.admin)
    notice = None
    show_form = False
    if may_review and state in OPEN:
        round_ = 1 + sum(1 for event in history["history"] if event["cause"] == reviews.REOPENED)
        prior = [
            PriorDecision(item["holder"], Decision(item["decision"]))
            for item in history["items"]
            if item["round"] == round_
        ]
        notice = refusal(
            state, principal.holder, principal.key_id, row.requested_by_holder, row.requested_by_key, prior
        )
        show_form = notice is None
    return {
        "review_history": history,
        "review_state": state.value,
        "show_review_form": show_form,
        "review_notice": notice,
        "decisions": [d.value for d in Decision],
        "default_conditions": "\n".join(mitigations),
    }


# ---------------------------------------------------------------------------------------------
# The model


def _figure(value: Any) -> str:
    """A population figure in words: shares as percentages, periods as dates with their fraction."""
    if isinstance(value, dict):
        # Shares are weights (counts of trips, or fractions): shown as each one's part of their sum.
        total = sum(float(share) for share in value.values()) or 1.0
        ranked = sorted(value.items(), key=lambda item: -float(item[1]))
        return ", ".join(f"{key} {float(share) / total:.1%}" for key, share in ranked)
    if isinstance(value, list):
        return "; ".join(f"{p['from']} to {p['to']}: {float(p['relative']):.0%} of the usual volume" for p in value)
    if isinstance(value, float) and value < 1:
        return f"{value:.2%}"
    return "—" if value is None else str(value)


def population_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reference population's figures for the model page, each with its basis and quoted evidence."""
    return [
        {
            "name": row["name"].replace("_", " "),
            "figure": _figure(row.get("value")),
            "basis": row["basis"],
            "why": row["why"],
            "evidence_items": evidence_items(row.get("evidence", [])),
        }
        for row in rows
    ]


def model_view(card: dict[str, Any], artifact: dict[str, Any]) -> dict[str, Any]:
    """The model page's content: the forest plot and the validation figures.

    Coefficients and their intervals are on the log-odds scale: the artifact's `coefficient_intervals`
    when it has them, else the log of the card's multiplier intervals. Each factor's prior (grade, mean,
    interval) comes with the factor on the card; the held-out validation when the artifact has it.
    """
    intervals = artifact.get("coefficient_intervals") or {}
    priors = card.get("priors") or artifact.get("priors") or {}  # the grade table
    estimates = []
    for factor in card.get("factors", []):
        feature = factor["id"]
        interval = intervals.get(feature)
        if interval is None and factor.get("interval"):
            interval = [math.log(max(bound, 1e-12)) for bound in factor["interval"]]
        prior = factor.get("prior") or {}
        prior_interval = prior.get("interval")
        estimates.append(
            Estimate(
                feature=feature,
                title=factor.get("title", feature),
                value=float(factor["coefficient"]),
                interval=(float(interval[0]), float(interval[1])) if interval else None,
                prior_mean=float(prior["mean"]) if prior.get("mean") is not None else None,
                prior_interval=(float(prior_interval[0]), float(prior_interval[1])) if prior_interval else None,
                grade=prior.get("grade"),
            )
        )
    estimates.sort(key=lambda e: (-e.value, e.feature))
    return {
        "card": card,
        "population": population_rows((card.get("data") or {}).get("population") or []),
        "estimates": estimates,
        "forest": forest_svg(estimates) if estimates else None,
        "has_priors": any(e.prior_mean is not None for e in estimates),
        "priors": priors,
        "validation": card.get("validation") or artifact.get("validation"),
        "validation_rows": validation_rows(card.get("validation") or artifact.get("validation")),
        "metrics": card.get("metrics") or {},
    }


def validation_rows(validation: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per held-out scheme: each figure as text with its 90% interval and, where it has a target,
    whether the target is met. Models stored before figures had intervals give the bare figures."""
    if not validation:
        return []
    rows = []
    for key in ("leave_one_event_out", "temporal_backtest"):
        v = validation[key]
        figures = v.get("figures")
        targets = v.get("targets") or {}

        def shown(
            name: str, percent: bool, v: dict[str, Any] = v, figures: Any = figures, targets: Any = targets
        ) -> dict[str, Any]:
            if figures is None:  # an older artifact: the bare figure
                value = v.get(name)
                text = "—" if value is None else (f"{100 * value:.0f}%" if percent else f"{value:.3f}")
                return {"text": text, "interval": None, "met": None}
            figure = figures[name]
            lo, hi = figure["interval_90"]
            if percent:
                text, interval = f"{100 * figure['value']:.0f}%", f"{100 * lo:.0f}–{100 * hi:.0f}%"
            else:
                text, interval = f"{figure['value']:.3f}", f"{lo:.3f}–{hi:.3f}"
            met = targets.get(name, {}).get("met")
            return {"text": text, "interval": interval, "met": met}

        rows.append(
            {
                "name": v["name"],
                "scheme": v["scheme"],
                "incidents": v["incidents"],
                "events": v["events"],
                "draws": v.get("population_draws"),
                "model_auc": shown("model_auc", False),
                "checklist_auc": shown("checklist_auc", False),
                "incidents_high_or_severe": shown("incidents_high_or_severe", True),
                "controls_above_elevated": shown("controls_above_elevated", True),
                "beats_checklist": targets.get("auc_difference", {}).get("met"),
            }
        )
    return rows
