"""Train the Zstandard dictionary that stored assessment requests and responses are compressed with.

    python benchmarks/scale/train_dictionary.py service/dictionaries/assessments-N.zdict [--samples 4000]

The samples are built exactly as `POST /v1/assessments` stores a row (`new_assessment`, judged under the
default review policy) from the bundled population's trips; a further 500, not trained on, compare the
new dictionary with the current one. A dictionary, once shipped, is never changed or removed (rows written
with it must stay readable): to adapt to new rules, train a new file and point
`service.compact.CURRENT_DICTIONARY` at it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
from pathlib import Path
from statistics import mean

import orjson
from common import ROOT  # noqa: F401 - sets up the path
from trips import requests, with_dates

HELD_OUT = 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--samples", type=int, default=4000)
    args = parser.parse_args()

    import zstandard

    from models.assess import Assessor
    from risk_rules.reference import load_bundled_reference
    from service import compact
    from service.assessments.service import new_assessment
    from service.policy import service as policies

    assessor = Assessor.load()
    reference = load_bundled_reference()
    rng = random.Random(7)
    documents: list[tuple[bytes, bytes]] = []
    for n, request in enumerate(requests(args.samples + HELD_OUT)):
        request = with_dates(request, f"T-{rng.randrange(10**6)}", dt.date(2026, 1, 1) + dt.timedelta(days=n % 700))
        result = policies.judge(assessor.assess_body(request, reference), policies.DEFAULT, assessor.model.bands)
        document = request.model_dump(mode="json")
        values = new_assessment(
            tenant_id="sample",
            request=request,
            document=document,
            result=result,
            idempotency_key=None,
            body_hash="",
        )
        documents.append((orjson.dumps(document), orjson.dumps(values["response"])))
    training, held_out = documents[:-HELD_OUT], documents[-HELD_OUT:]
    args.output.write_bytes(compact.train_dictionary([part for pair in training for part in pair]))
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes) from {2 * len(training)} samples")

    trained = zstandard.ZstdCompressor(
        level=compact.LEVEL, dict_data=zstandard.ZstdCompressionDict(args.output.read_bytes())
    )
    current = zstandard.ZstdCompressor(level=compact.LEVEL, dict_data=compact.current_dictionary())
    for index, name in ((0, "request"), (1, "response")):
        raw = [pair[index] for pair in held_out]
        print(
            f"{name}, mean of {HELD_OUT} held-out documents: {mean(map(len, raw)):.0f} bytes as JSON,"
            f" {mean(len(current.compress(d)) for d in raw):.0f} with {compact.CURRENT_DICTIONARY},"
            f" {mean(len(trained.compress(d)) for d in raw):.0f} with {args.output.name}"
        )


if __name__ == "__main__":
    main()
