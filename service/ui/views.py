"""What the assessment, queue and model pages show, gathered from the stored data and the model card."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, load_only

from service.assessments.models import Assessment
from service.db import utcnow
from service.ui.charts import Estimate, forest_svg, waterfall_steps, waterfall_svg
from service.ui.reference import BY_PREFIX, SOURCE_TITLES

REVIEW_BANDS = ("high", "severe")
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
        title = SOURCE_TITLES.get(source, source) if source else item.get("title")
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
        steps = waterfall_steps(body["baseline"]["probability"], score["log_odds"], body.get("factors", []))
        chart = {"steps": steps, "svg": waterfall_svg(steps)}
    return {"body": body, "score": score, "factors": factors, "waterfall": chart}


# ---------------------------------------------------------------------------------------------
# The queue


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
    waiting_since: dt.datetime

    @property
    def waiting(self) -> str:
        """How long the trip has waited, in words: "3 d 4 h", "5 h 12 min", "8 min"."""
        seconds = max(int((utcnow() - self.waiting_since).total_seconds()), 0)
        days, rest = divmod(seconds, 86_400)
        hours, rest = divmod(rest, 3_600)
        minutes = rest // 60
        if days:
            return f"{days} d {hours} h"
        if hours:
            return f"{hours} h {minutes} min"
        return f"{minutes} min"


def _destinations(body: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(leg["country"] for leg in body.get("legs", []) if leg.get("assessed")))


def queue_item(row: Assessment, body: dict[str, Any], state: str, waiting_since: dt.datetime) -> QueueItem:
    """A queue row from an assessment and its latest scoring."""
    factors = body.get("factors") or []
    return QueueItem(
        id=row.id,
        band=row.band or "",
        probability=row.probability,
        traveler_reference=row.traveler_reference,
        destinations=_destinations(body),
        trip_start=row.trip_start,
        trip_end=row.trip_end,
        top_factor=factors[0].get("title") if factors else None,
        state=state,
        waiting_since=waiting_since,
    )


def open_reviews(session: Session, tenant_id: str, limit: int = 200) -> list[QueueItem]:
    """The tenant's trips whose latest scoring awaits a decision, earliest departure first."""
    from service.rescoring.service import latest_response

    rows = session.scalars(
        select(Assessment)
        .options(
            load_only(
                Assessment.id,
                Assessment.band,
                Assessment.probability,
                Assessment.traveler_reference,
                Assessment.trip_start,
                Assessment.trip_end,
                Assessment.response,
                Assessment.current_revision,
                Assessment.changed_at,
                Assessment.created_at,
            )
        )
        .where(Assessment.tenant_id == tenant_id, Assessment.band.in_(REVIEW_BANDS))
        .order_by(Assessment.trip_start, Assessment.id)
        .limit(limit)
    )
    items = []
    for row in rows:
        body = latest_response(session, row)
        state = (body.get("review") or {}).get("state", "pending")
        if state in ("pending", "awaiting_second_review"):
            items.append(queue_item(row, body, state, row.changed_at))
    return items


# ---------------------------------------------------------------------------------------------
# The model


def model_view(card: dict[str, Any], artifact: dict[str, Any]) -> dict[str, Any]:
    """The model page's content: the forest plot and the validation figures.

    Coefficients and their intervals are on the log-odds scale: the artifact's `coefficient_intervals`
    when it has them, else the log of the card's multiplier intervals. Priors (`{feature: {grade, mean,
    sd, interval}}`) and `validation` are shown when the artifact carries them.
    """
    intervals = artifact.get("coefficient_intervals") or {}
    priors = card.get("priors") or artifact.get("priors") or {}
    estimates = []
    for factor in card.get("factors", []):
        feature = factor["id"]
        interval = intervals.get(feature)
        if interval is None and factor.get("interval"):
            interval = [math.log(max(bound, 1e-12)) for bound in factor["interval"]]
        prior = priors.get(feature) or {}
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
        "estimates": estimates,
        "forest": forest_svg(estimates) if estimates else None,
        "has_priors": bool(priors),
        "priors": priors,
        "validation": card.get("validation") or artifact.get("validation"),
        "metrics": card.get("metrics") or {},
    }
