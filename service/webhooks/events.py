"""The registry of event types a webhook endpoint can subscribe to.

A new event type is one entry here and one `emit` call in the same transaction as the change it reports;
endpoints are validated against this registry, so none can subscribe to a type that is never sent.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EventType:
    """An event type: its name (`resource.verb`), what it reports and the keys of its `data`."""

    name: str
    description: str
    data: tuple[str, ...]


_ASSESSMENT = ("assessment_id", "traveler_reference", "band", "probability", "revision")

EVENT_TYPES: dict[str, EventType] = {
    event.name: event
    for event in (
        EventType(
            "assessment.created",
            "An assessment was scored and stored (through POST /v1/assessments or a roster).",
            _ASSESSMENT,
        ),
        EventType(
            "assessment.rescored",
            "A stored assessment was scored again because reference data it rests on changed; `band` and"
            " `probability` are the new ones, `old_band` and `new_band` the move, `reason` the change.",
            (*_ASSESSMENT, "old_band", "new_band", "reason"),
        ),
        EventType(
            "review.decided",
            "A reviewer recorded a decision on an assessment; `state` is the review state it led to.",
            ("assessment_id", "review_id", "decision", "state", "revision"),
        ),
    )
}
