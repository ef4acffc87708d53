"""Fill a migrated database with synthetic reference data: N situations and N employer disputes.

Used by `run.sh` (SCALE=N) to measure the service with a large reference set against the bundled one.
The records are plainly synthetic ("Synthetic situation 123"), dated across 2000–2030, between every
ISO country and the covered destinations, so look-ups for real travellers find many candidates.

    TRAVELRISK_DATABASE_URL=sqlite:///bench.db python benchmarks/http/seed_reference.py 10000 [--exclude CA]

`--exclude` leaves out home countries (the benchmark traveller's), so that the response is the same as
with the bundled set and the comparison measures the look-ups, not extra factors.
"""

from __future__ import annotations

import datetime as dt
import random
import sys

from sqlalchemy import insert

from risk_rules.forms import iso_country_codes
from risk_rules.reference import EmployerDisputeIn, SituationIn
from service.db import create_db_engine, create_session_factory, utcnow
from service.reference.models import (
    EMPLOYER_DISPUTE,
    SITUATION,
    EmployerDisputeRecord,
    ReferenceRevision,
    SituationRecord,
)
from service.reference.store import record_document
from service.settings import get_settings

KINDS = ("extradition_case", "trade_dispute", "diplomatic_dispute", "sanctions", "detention_of_nationals")
DISPUTE_KINDS = ("commercial_dispute", "regulatory_investigation", "political_pressure", "sanctions")
WORDS = ("Alpha", "Boreal", "Cobalt", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris", "Juniper", "Kestrel")


def main(count: int, exclude: set[str]) -> None:
    rng = random.Random(20181201)
    homes = sorted(iso_country_codes() - {"CN", "HK", "MO"} - exclude)
    now = utcnow()
    source = [{"title": "synthetic benchmark record", "url": None, "date": None}]
    situations, disputes, revisions = [], [], []
    for i in range(count):
        start = dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(11_000))
        end = start + dt.timedelta(days=rng.randrange(30, 2_000)) if rng.random() < 0.7 else None
        record = SituationIn(
            id=f"synthetic-situation-{i}",
            home_country=rng.choice(homes),
            destination=rng.choice(("CN", "CN", "CN", "HK", "MO")),
            kind=rng.choice(KINDS),
            title=f"Synthetic situation {i}",
            started_on=start,
            ended_on=end,
            severity=rng.choice(("low", "medium", "high")),
            sources=source,
        )
        doc = record_document(record)
        situations.append(
            {
                "id": record.id,
                "home_country": record.home_country,
                "destination": record.destination,
                "kind": record.kind,
                "started_on": start,
                "ended_on": end,
                "document": doc,
                "revision": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        revisions.append(_revision(SITUATION, record.id, doc, now))
        name = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i} Holdings"
        dispute = EmployerDisputeIn(
            id=f"synthetic-dispute-{i}",
            name=name,
            aliases=[f"{name} Ltd"],
            destination="CN",
            kind=rng.choice(DISPUTE_KINDS),
            started_on=start,
            ended_on=end,
            sources=source,
        )
        doc = record_document(dispute)
        disputes.append(
            {
                "id": dispute.id,
                "name": name,
                "destination": "CN",
                "kind": dispute.kind,
                "started_on": start,
                "ended_on": end,
                "document": doc,
                "revision": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        revisions.append(_revision(EMPLOYER_DISPUTE, dispute.id, doc, now))
    engine = create_db_engine(get_settings())
    with create_session_factory(engine)() as session:
        session.execute(insert(SituationRecord), situations)
        session.execute(insert(EmployerDisputeRecord), disputes)
        session.execute(insert(ReferenceRevision), revisions)
        session.commit()
    engine.dispose()
    print(f"seeded {count} situations and {count} employer disputes")


def _revision(record_type: str, record_id: str, doc: dict, now: dt.datetime) -> dict:
    return {
        "record_type": record_type,
        "record_id": record_id,
        "revision": 1,
        "action": "created",
        "actor": "benchmark seed",
        "changed_at": now,
        "changes": {},
        "document": doc,
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    excluded = set(args[args.index("--exclude") + 1].split(",")) if "--exclude" in args else set()
    main(int(args[0]) if args and args[0].isdigit() else 10_000, excluded)
