"""The review state machine, as plain functions (no database, no HTTP).

States of an assessment's review:

- `not_required`: its band needs no review under the policy it was judged under. No decision is accepted.
- `pending`: waiting for a decision.
- `awaiting_second_review`: a severe assessment under a policy of two approvals has one; the next decision
  must come from another holder.
- `escalated`: a reviewer passed it on; it is open, and the next decision must come from another holder
  than the one who escalated.
- `approved`, `approved_with_conditions`, `rejected`: decided. No further decision is accepted until a
  re-score raises the band, which re-opens it (`pending`).

Approvals are counted per review round (a re-open starts a new round), by distinct holders. When any
approval of the round carried conditions, the final state is `approved_with_conditions`. A rejection or an
escalation takes effect at once, whoever made the approvals before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    not_required = "not_required"
    pending = "pending"
    awaiting_second_review = "awaiting_second_review"
    approved = "approved"
    approved_with_conditions = "approved_with_conditions"
    rejected = "rejected"
    escalated = "escalated"


class Decision(StrEnum):
    approved = "approved"
    approved_with_conditions = "approved_with_conditions"
    rejected = "rejected"
    escalated = "escalated"


OPEN = frozenset({State.pending, State.awaiting_second_review, State.escalated})
DECIDED = frozenset({State.approved, State.approved_with_conditions, State.rejected})
APPROVALS = frozenset({Decision.approved, Decision.approved_with_conditions})
BAND_RANK = {"low": 0, "elevated": 1, "high": 2, "severe": 3}


@dataclass(frozen=True, slots=True)
class PriorDecision:
    """A decision already recorded in the current round."""

    holder: str
    decision: Decision


def refusal(
    state: State,
    holder: str | None,
    key_id: str,
    requested_by_holder: str | None,
    requested_by_key: str | None,
    prior: Sequence[PriorDecision],
) -> str | None:
    """Why this holder may not decide now (a 403's reason), or None when they may.

    Called only for open states."""
    if holder is None:
        return (
            "This key has no holder, and a review must be attributable to a person: ask your tenant's admin for a"
            " key issued to you (`holder`)."
        )
    if holder == requested_by_holder or key_id == requested_by_key:
        return "You requested this assessment, so you may not review it: another person must decide (four eyes)."
    if state is State.awaiting_second_review:
        approvers = {p.holder for p in prior if p.decision in APPROVALS}
        if holder in approvers:
            return (
                "You already approved this assessment; a severe assessment needs a second approval from another"
                " holder under your tenant's policy."
            )
    if state is State.escalated and prior and prior[-1].holder == holder:
        return "You escalated this assessment; another holder must decide it."
    return None


def next_state(decision: Decision, holder: str, approvals_needed: int, prior: Sequence[PriorDecision]) -> State:
    """The state after `holder` records `decision`, given the round's earlier decisions."""
    if decision not in APPROVALS:
        return State(decision.value)
    approvals = [p for p in prior if p.decision in APPROVALS]
    approvers = {p.holder for p in approvals} | {holder}
    if len(approvers) < approvals_needed:
        return State.awaiting_second_review
    conditional = decision is Decision.approved_with_conditions or any(
        p.decision is Decision.approved_with_conditions for p in approvals
    )
    return State.approved_with_conditions if conditional else State.approved


@dataclass(frozen=True, slots=True)
class RescoreOutcome:
    """What a re-score does to the review: the new state, and the history line (None: nothing to record)."""

    state: State
    note: str | None
    reopened: bool = False


def after_rescore(
    state: State, old_band: str | None, new_band: str | None, required: bool, reason: str
) -> RescoreOutcome:
    """The review after a re-score moved the band from `old_band` to `new_band` (`required`: the new band
    needs a review under the policy in force).

    A raised band re-opens a decided, escalated or half-approved review; a lower or equal band keeps it (and
    the history says so). A review that was not required becomes pending when the new band needs one; an
    open review whose band no longer needs one is closed as not required.
    """
    rose = BAND_RANK.get(new_band or "", -1) > BAND_RANK.get(old_band or "", -1)
    change = f"band {old_band or 'none'} → {new_band or 'none'} after re-score ({reason})"
    if state is State.not_required:
        if required:
            return RescoreOutcome(State.pending, f"review required: {change}", reopened=True)
        return RescoreOutcome(state, None)
    if state is State.pending:
        if not required:
            return RescoreOutcome(State.not_required, f"review no longer required: {change}")
        return RescoreOutcome(state, f"still pending: {change}" if old_band != new_band else None)
    # Decided, escalated, or waiting for a second approval.
    if rose and required:
        return RescoreOutcome(State.pending, f"re-opened: {change}", reopened=True)
    return RescoreOutcome(state, f"{state.value} stands: {change}")
