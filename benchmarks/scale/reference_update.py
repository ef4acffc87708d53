"""What a change to reference data costs the next request, with a large reference set loaded.

Seeds N situations and N employer disputes (default 10,000 + 10,000) into a scratch database, builds the
scoring engine's snapshot once (the cost every change used to have), then repeatedly changes one record
through the same upsert the analyst API uses and times the next `ReferenceCache.snapshot` call (what the
next assessment waits for), against the same call with nothing changed.

    python benchmarks/scale/reference_update.py [--records 10000] [--changes 50]
    TRAVELRISK_DATABASE_URL=postgresql+psycopg://... python benchmarks/scale/reference_update.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from common import scratch_database, seed_reference, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000, help="situations, and as many employer disputes")
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args()
    scratch_database("reference")
    seed_reference(args.records)

    from risk_rules.reference import EmployerDisputeIn, SituationIn
    from service.db import create_db_engine, create_session_factory
    from service.reference import store
    from service.reference.models import EMPLOYER_DISPUTE, SITUATION
    from service.settings import get_settings

    engine = create_db_engine(get_settings())
    sessions = create_session_factory(engine)
    cache = store.ReferenceCache()
    start = time.perf_counter()
    with sessions() as session:
        reference = cache.snapshot(session)
        reference.employer_near_matches("Boreal Delta 1 Holdings", "CN", dt.date(2020, 1, 1), dt.date(2020, 2, 1))
    full_ms = (time.perf_counter() - start) * 1000
    print(
        f"records: {len(reference.situations)} situations, {len(reference.employer_disputes)} employer disputes;"
        f" full build of the snapshot and its name index: {full_ms:.0f} ms"
    )

    unchanged: list[float] = []
    after_change: list[float] = []
    for n in range(args.changes):
        with sessions() as session:
            t0 = time.perf_counter()
            cache.snapshot(session)
            unchanged.append((time.perf_counter() - t0) * 1000)
        with sessions() as session:
            if n % 2 == 0:
                document = dict(session.get_one(store._MODELS[SITUATION], f"synthetic-situation-{n}").document)
                document["severity"] = "high" if document["severity"] != "high" else "low"
                document["home_country"] = "IS" if document["home_country"] != "IS" else "FI"
                store.upsert(session, SITUATION, SituationIn.model_validate(document), "benchmark")
            else:
                document = dict(session.get_one(store._MODELS[EMPLOYER_DISPUTE], f"synthetic-dispute-{n}").document)
                document["name"] = f"Renamed {n} Holdings"
                store.upsert(session, EMPLOYER_DISPUTE, EmployerDisputeIn.model_validate(document), "benchmark")
            session.commit()
        with sessions() as session:
            t0 = time.perf_counter()
            cache.snapshot(session)
            after_change.append((time.perf_counter() - t0) * 1000)
    added = [a - u for a, u in zip(after_change, unchanged, strict=True)]
    print(f"snapshot() with nothing changed:  {summary(unchanged)}")
    print(f"snapshot() after one change:      {summary(after_change)}")
    print(f"added latency of the next request: {summary(added)}")
    print(f"full rebuilds after the first: {cache.full_rebuilds - 1}")
    engine.dispose()


if __name__ == "__main__":
    main()
