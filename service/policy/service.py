"""Reading, changing and applying a tenant's review policy. Functions add to the session; callers commit.

A policy is versioned: every change is a new row, and an assessment records the version it was judged
under. A change applies to assessments scored (or re-scored) after it, never to stored ones.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from models.artifact import BandThresholds
from service.db import utcnow
from service.keys.service import Principal
from service.policy.models import ReviewPolicyVersion
from service.policy.schemas import PolicyIn
from service.problems import invalid_input

BANDS = ("elevated", "high", "severe")


@dataclass(frozen=True, slots=True)
class Policy:
    """One version of a tenant's policy."""

    version: int
    review_bands: tuple[str, ...]
    severe_approvals: int
    thresholds: dict[str, float] | None
    created_at: dt.datetime | None = None
    changed_by_key: str | None = None
    changed_by_holder: str | None = None

    def requires_review(self, band: str | None) -> bool:
        """Whether an assessment in `band` needs a review decision under this policy."""
        return band is not None and band in self.review_bands

    def approvals_needed(self, band: str | None) -> int:
        """How many approvals (from different holders) an assessment in `band` needs."""
        return self.severe_approvals if band == "severe" else 1


# The contract's default, in force until the tenant's admin sets a policy.
DEFAULT = Policy(version=0, review_bands=("high", "severe"), severe_approvals=1, thresholds=None)


def _policy(row: Any) -> Policy:
    return Policy(
        version=row.version,
        review_bands=tuple(row.review_bands),
        severe_approvals=row.severe_approvals,
        thresholds=dict(row.thresholds) if row.thresholds is not None else None,
        created_at=row.created_at,
        changed_by_key=row.changed_by_key,
        changed_by_holder=row.changed_by_holder,
    )


# Read on every assessment: a Core statement on the session's connection, compiled once, costs a fraction
# of an ORM load of the same row.
_CURRENT = (
    select(
        ReviewPolicyVersion.version,
        ReviewPolicyVersion.review_bands,
        ReviewPolicyVersion.severe_approvals,
        ReviewPolicyVersion.thresholds,
        ReviewPolicyVersion.created_at,
        ReviewPolicyVersion.changed_by_key,
        ReviewPolicyVersion.changed_by_holder,
    )
    .where(ReviewPolicyVersion.tenant_id == bindparam("tenant_id"))
    .order_by(ReviewPolicyVersion.version.desc())
    .limit(1)
)


def current(session: Session, tenant_id: str) -> Policy:
    """The tenant's policy in force now (the default, version 0, when none was set)."""
    row = session.connection().execute(_CURRENT, {"tenant_id": tenant_id}).one_or_none()
    return DEFAULT if row is None else _policy(row)


def version(session: Session, tenant_id: str, number: int) -> Policy | None:
    """One version of the tenant's policy (0 is the default); None when there is no such version."""
    if number == 0:
        return DEFAULT
    row = session.get(ReviewPolicyVersion, (tenant_id, number))
    return None if row is None else _policy(row)


def history(session: Session, tenant_id: str) -> list[Policy]:
    """Every version of the tenant's policy, oldest first, starting with the default (version 0)."""
    rows = session.scalars(
        select(ReviewPolicyVersion)
        .where(ReviewPolicyVersion.tenant_id == tenant_id)
        .order_by(ReviewPolicyVersion.version)
    )
    return [DEFAULT, *(_policy(row) for row in rows)]


def effective_thresholds(policy: Policy, model: BandThresholds) -> BandThresholds:
    """The thresholds a trip of one destination leg is banded with: per band, the stricter (lower) of policy
    and model (`judge` bands every trip: its own itinerary's model bands, raised by the policy's thresholds).

    A policy may only be stricter than the model it was set against; taking the minimum keeps that true
    when a newer model with lower thresholds is activated later.
    """
    given = policy.thresholds or {}
    values = {band: min(getattr(model, band), given.get(band) or getattr(model, band)) for band in BANDS}
    return BandThresholds(**values)


def policy_band(policy: Policy, probability: float) -> str:
    """The band a probability reaches under the policy's own thresholds alone (a band it sets no threshold
    for is never reached this way)."""
    given = policy.thresholds or {}
    reached = "low"
    for band in BANDS:
        if given.get(band) is not None and probability >= given[band]:
            reached = band
    return reached


def stricter_band(model_band: str, policy_band_: str) -> str:
    """The higher of two bands: a policy can only raise a trip's band, never lower it.

    The model bands a trip against multiples of its own itinerary's no-factor odds; a policy's thresholds
    are probabilities, so a trip takes whichever of the two reaches the higher band."""
    order = ("low", *BANDS)
    return model_band if order.index(model_band) >= order.index(policy_band_) else policy_band_


def check_thresholds(form: PolicyIn, model: BandThresholds) -> None:
    """422 unless the form's thresholds are at most the model's and keep the bands in order."""
    if form.thresholds is None:
        return
    given = form.thresholds.model_dump()
    errors = []
    for band in BANDS:
        value = given[band]
        if value is not None and value > getattr(model, band):
            errors.append(
                {
                    "loc": ("body", "thresholds", band),
                    "msg": f"{value} is looser than the model's {band} threshold ({getattr(model, band)}): a policy"
                    " may only lower a threshold, so that more trips reach the band, never fewer",
                }
            )
    if not errors:
        merged = {band: given[band] if given[band] is not None else getattr(model, band) for band in BANDS}
        for lower, upper in zip(BANDS, BANDS[1:], strict=False):
            if merged[upper] < merged[lower]:
                errors.append(
                    {
                        "loc": ("body", "thresholds", upper),
                        "msg": f"the {upper} threshold ({merged[upper]}) is below the {lower} threshold"
                        f" ({merged[lower]}): thresholds must rise from elevated to high to severe",
                    }
                )
    if errors:
        raise invalid_input(errors)


def set_policy(session: Session, principal: Principal, form: PolicyIn, model: BandThresholds) -> tuple[Policy, bool]:
    """Make `form` the tenant's policy as a new version; (the policy in force, whether it changed).

    A form equal to the policy in force changes nothing (no new version). Raises a 422 problem for
    thresholds looser than the model's. A concurrent change makes the caller's commit fail on the
    version's primary key.
    """
    check_thresholds(form, model)
    thresholds = form.thresholds.model_dump(exclude_none=True) if form.thresholds is not None else None
    bands = tuple(band.value for band in form.review_bands)
    now = current(session, principal.tenant_id)
    if (now.review_bands, now.severe_approvals, now.thresholds or None) == (
        bands,
        form.severe_approvals,
        thresholds or None,
    ):
        return now, False
    row = ReviewPolicyVersion(
        tenant_id=principal.tenant_id,
        version=now.version + 1,
        review_bands=list(bands),
        severe_approvals=form.severe_approvals,
        thresholds=thresholds or None,
        created_at=utcnow(),
        changed_by_key=principal.key_id,
        changed_by_holder=principal.holder,
    )
    session.add(row)
    session.flush()
    return _policy(row), True


def judge(body: dict[str, Any], policy: Policy, model: BandThresholds) -> dict[str, Any]:
    """An engine response body banded and marked for review under `policy` (changed in place, returned).

    The band follows the effective thresholds; `review` says whether a decision is needed, its initial
    state and the policy version.
    """
    score = body.get("score")
    band = None
    if score is not None:
        if policy.thresholds:
            score["band"] = stricter_band(score["band"], policy_band(policy, score["probability"]))
        band = score["band"]
    required = policy.requires_review(band)
    body["review"] = {
        "required": required,
        "state": "pending" if required else "not_required",
        "policy_version": policy.version,
    }
    return body
