"""Realistic assessments for the scale benchmarks: trips drawn from the bundled population (as the model's
controls are), plus variants of the contract's example (an executive with several factors), scored by the
real engine; and rows shaped exactly as `POST /v1/assessments` stores them."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

from common import ROOT

FIRST_NAMES = ("Rio Tinto", "AstraZeneca", "Ericsson", "Huawei", "Nortel", "Acme", "Zephyr Holdings", "Boreal Delta")


def requests(count: int, seed: int = 20261130) -> list[Any]:
    """`count` validated requests: about nine in ten ordinary trips, one in ten like the contract example."""
    from models.corpus import Population, generate_controls
    from risk_rules.forms import AssessmentRequest
    from risk_rules.reference import load_bundled_reference

    rng = random.Random(seed)
    ordinary = generate_controls(Population.load(), load_bundled_reference(), trips=count, seed=seed)
    example = json.loads((ROOT / "benchmarks" / "http" / "body.json").read_text())
    out = []
    for n, request in enumerate(ordinary):
        if n % 10 == 9:
            body = json.loads(json.dumps(example))
            body["traveler"]["employer"]["name"] = rng.choice(FIRST_NAMES)
            body["traveler"]["citizenships"] = [rng.choice(("CA", "GB", "US", "AU", "SE", "JP"))]
            request = AssessmentRequest.model_validate(body)
        out.append(request)
    return out


def with_dates(request: Any, reference: str, start: dt.date) -> Any:
    """The request for traveller `reference` with its legs moved to start on `start` (same lengths)."""
    body = request.model_dump(mode="json")
    body["traveler"]["reference"] = reference
    first = dt.date.fromisoformat(body["trip"]["legs"][0]["arrive"])
    for leg in body["trip"]["legs"]:
        for key in ("arrive", "depart"):
            leg[key] = (start + (dt.date.fromisoformat(leg[key]) - first)).isoformat()
    return type(request).model_validate(body)
