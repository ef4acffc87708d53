"""Train the Zstandard dictionary that stored assessment requests and responses are compressed with.

    python benchmarks/scale/train_dictionary.py service/dictionaries/assessments-N.zdict [--samples 4000]

A dictionary, once shipped, is never changed or removed (rows written with it must stay readable): to
adapt to new rules, train a new file and point `service.compact.CURRENT_DICTIONARY` at it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
from pathlib import Path

import orjson
from common import ROOT  # noqa: F401 - sets up the path
from trips import requests, with_dates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--samples", type=int, default=4000)
    args = parser.parse_args()

    from models.assess import Assessor
    from risk_rules.reference import load_bundled_reference
    from service.assessments.service import new_id, timestamp
    from service.compact import train_dictionary

    assessor = Assessor.load()
    reference = load_bundled_reference()
    rng = random.Random(7)
    samples = []
    for n, request in enumerate(requests(args.samples)):
        request = with_dates(request, f"T-{rng.randrange(10**6)}", dt.date(2026, 1, 1) + dt.timedelta(days=n % 700))
        body = {
            "id": new_id(),
            "created_at": timestamp(dt.datetime.now(dt.UTC)),
            **assessor.assess_body(request, reference),
        }
        samples.append(orjson.dumps(body))
        samples.append(orjson.dumps(request.model_dump(mode="json")))
    args.output.write_bytes(train_dictionary(samples))
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes) from {len(samples)} samples")


if __name__ == "__main__":
    main()
