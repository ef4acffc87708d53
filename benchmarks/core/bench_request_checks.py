"""What the request checks of the hot path cost, per request, in process.

Reading the body: Pydantic's own JSON parser (`model_validate_json`, which keeps the last of duplicate
keys) against `parse_json` (the standard library's scanner with a duplicate-key hook) followed by
`model_validate`. Rate limiting: counting one request of a key and checking the caller's address.
Medians of `--runs` timings, each the best of 5 repeats.

    python benchmarks/core/bench_request_checks.py [--runs 5] [--number 20000]
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from pathlib import Path

import orjson

from risk_rules.forms import AssessmentRequest
from service.assessments.examples import REQUEST_EXAMPLE
from service.bodies import parse_json
from service.ratelimit import RateLimiter

BODY = Path(__file__).resolve().parents[1] / "http" / "body.json"


def per_call_us(fn, number: int, runs: int) -> float:
    return statistics.median(min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6 for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--number", type=int, default=20_000)
    args = parser.parse_args()
    for name, body in (("benchmark body", BODY.read_bytes()), ("contract example", orjson.dumps(REQUEST_EXAMPLE))):
        before = per_call_us(lambda b=body: AssessmentRequest.model_validate_json(b), args.number, args.runs)
        after = per_call_us(lambda b=body: AssessmentRequest.model_validate(parse_json(b)), args.number, args.runs)
        print(
            f"{name} ({len(body)} B): model_validate_json {before:.1f} us;"
            f" parse_json + model_validate {after:.1f} us ({after - before:+.1f} us)"
        )
    limiter = RateLimiter("1000000000/minute", "30/minute")
    keys = iter([f"key{i % 1000}" for i in range(args.number * 5 * args.runs + 1)])
    hit = per_call_us(lambda: limiter.hit_key(next(keys)), args.number, args.runs)
    check = per_call_us(lambda: limiter.check_address("192.0.2.1"), args.number, args.runs)
    print(f"rate limit: count a key's request {hit:.2f} us; check the address {check:.2f} us")


if __name__ == "__main__":
    main()
