"""In-process scoring benchmark: one assessment, and a 10,000-trip roster through `assess_many`.

Runs on one core (CPU affinity and one BLAS thread) and reports medians over several runs, each next
to plain Pydantic validation of the same requests measured in the same run, so the ratio is what to
compare across machines.

Two sets of requests: the reference population's trips, every field stated, and the same trips as a
travel desk sends them, with only citizenships, occupation, employer, purpose and legs given; the rest
is left out, so every factor that reads it takes its expectation and the response lists it under
`not_given`.

    python benchmarks/core/bench_assess.py [--runs 5] [--roster 10000] [--cpu 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

# One BLAS thread: the target is per core, and threads would blur the comparison.
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

from models.assess import Assessor  # noqa: E402
from models.corpus import Population, generate_controls  # noqa: E402
from risk_rules.forms import AssessmentRequest  # noqa: E402
from risk_rules.reference import load_bundled_reference  # noqa: E402


def per_call_median_us(fn, items) -> float:
    times = []
    for item in items:
        start = time.perf_counter_ns()
        fn(item)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--roster", type=int, default=10_000)
    parser.add_argument("--single", type=int, default=2_000, help="requests timed one by one per run")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: the last one)")
    args = parser.parse_args()
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})

    reference = load_bundled_reference()
    assessor = Assessor.load()
    stated = generate_controls(Population.load(), reference, trips=args.roster, seed=424242)
    sets = {"every field stated": stated, "fields left out": [left_out(r) for r in stated]}
    for name, roster in sets.items():
        measure(name, assessor, reference, roster, args.single, args.runs, cpu)
    return 0


def left_out(request: AssessmentRequest) -> AssessmentRequest:
    """The trip as a travel desk sends it: who travels, for whom, why and where; nothing else."""
    traveler = request.traveler
    body = {
        "traveler": {
            "citizenships": traveler.citizenships,
            "occupation": traveler.occupation,
            "employer": traveler.employer.model_dump(mode="json") if traveler.employer else None,
        },
        "trip": {"purpose": request.trip.purpose, "legs": [leg.model_dump(mode="json") for leg in request.trip.legs]},
    }
    return AssessmentRequest.model_validate(body)


def measure(name, assessor, reference, roster, single, runs, cpu) -> None:
    bodies = [r.model_dump(mode="json", exclude_defaults=True) for r in roster]
    singles = roster[:single]
    single_bodies = bodies[:single]
    for request in singles[:200]:  # warm caches and code paths
        assessor.assess_body(request, reference)
    rows = []
    for run in range(1, runs + 1):
        validate_us = per_call_median_us(AssessmentRequest.model_validate, single_bodies)
        assess_us = per_call_median_us(lambda r: assessor.assess_body(r, reference), singles)
        start = time.perf_counter()
        for body in bodies:
            AssessmentRequest.model_validate(body)
        validate_rate = len(bodies) / (time.perf_counter() - start)
        start = time.perf_counter()
        batch = assessor.assess_many(roster, reference)
        batch_rate = len(roster) / (time.perf_counter() - start)
        scored = int((batch.probability == batch.probability).sum())
        rows.append((validate_us, assess_us, validate_rate, batch_rate))
        print(
            f"[{name}] run {run}: assess median {assess_us:.1f} us (validation {validate_us:.1f} us, ratio"
            f" {assess_us / validate_us:.2f}); assess_many {batch_rate:,.0f} trips/s for {len(roster):,} trips"
            f" ({scored:,} scored; validation {validate_rate:,.0f}/s, ratio {batch_rate / validate_rate:.2f})"
        )
    med = [statistics.median(col) for col in zip(*rows, strict=True)]
    print(
        f"[{name}] MEDIAN over {runs} runs on CPU {cpu}: assess {med[1]:.1f} us/request (target <= 100;"
        f" {med[1] / med[0]:.2f}x pydantic validation at {med[0]:.1f} us); assess_many {med[3]:,.0f} trips/s"
        f" (target >= 20,000; {med[3] / med[2]:.2f}x validation at {med[2]:,.0f}/s)"
    )


if __name__ == "__main__":
    sys.exit(main())
