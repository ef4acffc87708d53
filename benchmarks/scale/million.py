"""A million stored assessments: seed them fast, then measure the read paths at one connection.

    python benchmarks/scale/million.py seed [--count 1000000]       # into TRAVELRISK_DATABASE_URL or BENCH_DIR
    python benchmarks/scale/million.py measure [--repeat 40]        # p95 per query, query plans, file size
    python benchmarks/scale/million.py plans                        # only the indexes and query plans

`seed` scores a few thousand realistic trips with the real engine (trips.py), judged under the default
review policy, then writes N rows built exactly as POST /v1/assessments builds them (`new_assessment`,
packed by `stored_row`), with their dates moved: created over the past year, each trip starting 1 to 150
days after it was assessed, in bulk inserts of 5,000 rows. Nine in ten belong to one large tenant, the rest
to nine smaller ones. One in twenty was re-scored in the last 30 days (what `changed_since` finds); a review
is decided within two weeks, so the queue holds the last two weeks' high and severe trips.
`measure` starts `travelrisk serve` on the database and times, one request at a time, the list with each
filter, later pages, `changed_since`, the review queue and GET by id, for the large tenant; it prints
p50/p95/p99 per query, the indexes of the assessments table, the plan of each query (EXPLAIN QUERY PLAN on
SQLite, EXPLAIN on PostgreSQL) and, on SQLite, the database file's size.

Without TRAVELRISK_DATABASE_URL the database is BENCH_DIR/million.db (BENCH_DIR defaults to a new temporary
directory: set it so that `measure` finds what `seed` wrote).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from itertools import islice
from pathlib import Path
from typing import Any

import httpx
import orjson
from common import percentile, scratch_database, wait_ready

TENANT = "million-large"
YEAR = dt.timedelta(days=365)
BATCH = 5000


def seed(count: int, distinct: int) -> None:
    os.environ.setdefault("TRAVELRISK_SQLITE_SYNCHRONOUS", "OFF")  # a bulk load: durability is not measured
    url = scratch_database("million")
    from sqlalchemy import insert
    from trips import requests

    from models.assess import Assessor
    from risk_rules.reference import load_bundled_reference
    from service.assessments.models import Assessment
    from service.assessments.service import (
        created_period,
        new_assessment,
        request_hash,
        stored_row,
        timestamp,
        trip_span,
    )
    from service.db import create_db_engine, create_session_factory, session_scope
    from service.keys.models import Role
    from service.keys.service import create_key
    from service.model.models import ModelVersion
    from service.policy import service as policies
    from service.settings import get_settings

    engine = create_db_engine(get_settings())
    sessions = create_session_factory(engine)
    assessor = Assessor.load()
    reference = load_bundled_reference()
    with session_scope(sessions) as session:
        tenants = [create_key(session, TENANT if n == 0 else f"million-small-{n}", Role.requester) for n in range(10)]
        tenant_ids = [k.record.tenant_id for k in tenants]
        if session.get(ModelVersion, assessor.model.version) is None:
            session.add(
                ModelVersion(
                    version=assessor.model.version, rules_version=assessor.rules.version, card=assessor.model_card()
                )
            )
    started = time.perf_counter()
    templates = []
    for request in requests(distinct):
        document = request.model_dump(mode="json")
        result = policies.judge(assessor.assess_body(request, reference), policies.DEFAULT, assessor.model.bands)
        values = new_assessment(
            tenant_id=tenant_ids[0],
            request=request,
            document=document,
            result=result,
            idempotency_key=None,
            body_hash="",
            requested_by_key=tenants[0].record.id,
            requested_by_holder=None,
        )
        templates.append(values)
    print(f"scored {len(templates)} distinct trips in {time.perf_counter() - started:.1f} s", flush=True)

    rng = random.Random(1_000_000)
    now = dt.datetime.now(dt.UTC)
    first = now - YEAR
    step = YEAR / count
    travellers = max(1, count // 5)
    batch: list[dict[str, Any]] = []
    started = time.perf_counter()
    for n in range(count):
        created = first + step * n + dt.timedelta(microseconds=rng.randrange(1000))
        template = templates[rng.randrange(len(templates))]
        start = created.date() + dt.timedelta(days=rng.randrange(1, 150))
        shift = start - template["trip_start"]
        request = _shifted_request(template["request"], shift, f"T-{rng.randrange(travellers)}")
        assessment_id = _uuid7(created, rng)
        response = {
            **_shifted_legs(template["response"], shift),
            "id": assessment_id,
            "created_at": timestamp(created),
        }
        # One in twenty re-scored in the last 30 days (a situation touched them): what changed_since finds.
        changed = created if rng.random() >= 0.05 else max(created, now - dt.timedelta(days=30 * rng.random()))
        # Reviews are decided within two weeks: older ones are approved, the last two weeks' are open.
        review_state = template["review_state"]
        if review_state != "not_required" and now - created > dt.timedelta(days=14):
            review_state = "approved"
        response["review"] = {**response["review"], "since": timestamp(created)}
        row = {
            **template,
            "id": assessment_id,
            "tenant_id": tenant_ids[0] if rng.random() < 0.9 else tenant_ids[rng.randrange(1, 10)],
            "traveler_reference": request["traveler"]["reference"],
            "trip_start": template["trip_start"] + shift,
            "trip_end": template["trip_end"] + shift,
            "trip_span": trip_span(template["trip_start"], template["trip_end"]),
            "request": request,
            "response": response,
            "idempotency_key": str(uuid.UUID(int=rng.getrandbits(128))) if rng.random() < 0.3 else None,
            "request_hash": request_hash(request),
            "created_at": created,
            "created_period": created_period(created),
            "changed_at": changed,
            "review_state": review_state,
            "review_state_at": created,
        }
        batch.append(stored_row(row))
        if len(batch) == BATCH or n == count - 1:
            with engine.begin() as connection:
                connection.execute(insert(Assessment), batch)
            batch = []
            if (n + 1) % 100_000 == 0 or n == count - 1:
                if engine.dialect.name == "sqlite":
                    with engine.connect() as connection:
                        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                rate = (n + 1) / (time.perf_counter() - started)
                print(f"{n + 1} rows ({rate:.0f} rows/s)", flush=True)
    if engine.dialect.name == "postgresql":
        # VACUUM sets the visibility map, without which PostgreSQL cannot answer from an index alone.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE assessments")
    else:
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
            connection.commit()
    engine.dispose()
    print(f"seeded {count} assessments into {url} in {time.perf_counter() - started:.0f} s")


def _shifted_request(document: dict[str, Any], shift: dt.timedelta, reference: str) -> dict[str, Any]:
    request = orjson.loads(orjson.dumps(document))
    request["traveler"]["reference"] = reference
    for leg in request["trip"]["legs"]:
        for key in ("arrive", "depart"):
            leg[key] = (dt.date.fromisoformat(leg[key]) + shift).isoformat()
    return request


def _shifted_legs(result: dict[str, Any], shift: dt.timedelta) -> dict[str, Any]:
    legs = [
        {
            **leg,
            "arrive": (dt.date.fromisoformat(leg["arrive"]) + shift).isoformat(),
            "depart": (dt.date.fromisoformat(leg["depart"]) + shift).isoformat(),
        }
        for leg in result["legs"]
    ]
    return {**result, "legs": legs}


def _uuid7(at: dt.datetime, rng: random.Random) -> str:
    millis = int(at.timestamp() * 1000)
    value = (millis & ((1 << 48) - 1)) << 80 | rng.getrandbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return str(uuid.UUID(int=value))


# ---------------------------------------------------------------------------------------------


def list_params(sample: dict[str, Any], rng: random.Random) -> dict[str, dict[str, str]]:
    """One instance of every measured list query, drawn from the large tenant's data."""
    now = dt.datetime.now(dt.UTC)
    day = (now - dt.timedelta(days=rng.randrange(30, 330))).date()
    ahead = (now + dt.timedelta(days=rng.randrange(1, 120))).date()
    return {
        "list newest first": {},
        "list traveler_reference": {"traveler_reference": rng.choice(sample["travellers"])},
        "list band=severe": {"band": "severe"},
        "list band=low": {"band": "low"},
        "list status=out_of_scope": {"status": "out_of_scope"},
        "list trip_from+trip_to (a past week)": {
            "trip_from": day.isoformat(),
            "trip_to": (day + dt.timedelta(days=7)).isoformat(),
        },
        "list trip_from+trip_to (an upcoming week)": {
            "trip_from": ahead.isoformat(),
            "trip_to": (ahead + dt.timedelta(days=7)).isoformat(),
        },
        "list trip_from (upcoming)": {"trip_from": now.date().isoformat()},
        "list trip_to (a past day)": {"trip_to": day.isoformat()},
        "list created_from+created_to (a day)": {
            "created_from": f"{day.isoformat()}T00:00:00Z",
            "created_to": f"{day.isoformat()}T23:59:59Z",
        },
        "list band=high + trip window (30 days past)": {
            "band": "high",
            "trip_from": day.isoformat(),
            "trip_to": (day + dt.timedelta(days=30)).isoformat(),
        },
        "list band=low + trip window (a past week)": {
            "band": "low",
            "trip_from": day.isoformat(),
            "trip_to": (day + dt.timedelta(days=7)).isoformat(),
        },
        "changed_since (last hour)": {"changed_since": (now - dt.timedelta(hours=1)).isoformat()},
        "changed_since (last week)": {"changed_since": (now - dt.timedelta(days=7)).isoformat()},
        "changed_since (30 days ago)": {"changed_since": (now - dt.timedelta(days=30)).isoformat()},
    }


def queue_queries(rng: random.Random) -> dict[str, dict[str, str]]:
    """One instance of every measured review-queue query."""
    today = dt.datetime.now(dt.UTC).date()
    return {
        "review queue (open)": {},
        "review queue band=severe": {"band": "severe"},
        "review queue destination=CN": {"destination": "CN"},
        "review queue departing in a week": {
            "depart_from": (today + dt.timedelta(days=rng.randrange(1, 60))).isoformat(),
            "depart_to": (today + dt.timedelta(days=67)).isoformat(),
        },
        "review queue state=approved": {"state": "approved"},
    }


def _sample(url: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from service.assessments.models import Assessment
    from service.db import create_db_engine
    from service.settings import get_settings
    from service.tenants.models import Tenant

    engine = create_db_engine(get_settings(), url)
    with engine.connect() as connection:
        tenant_id = connection.execute(select(Tenant.id).where(Tenant.name == TENANT)).scalar_one()
        rows = connection.execute(
            select(Assessment.id, Assessment.traveler_reference)
            .where(Assessment.tenant_id == tenant_id)
            .order_by(Assessment.id)
            .offset(12345)
            .limit(2000)
        ).all()
        total = connection.execute(select(func.count()).select_from(Assessment)).scalar()
    engine.dispose()
    return {"tenant_id": tenant_id, "ids": [r[0] for r in rows], "travellers": [r[1] for r in rows], "total": total}


def plans(url: str, sample: dict[str, Any]) -> None:
    from sqlalchemy import and_, or_, select
    from sqlalchemy.orm import Session

    from service.assessments.models import Assessment
    from service.assessments.service import ListFilters, assessed_late, created_period, list_queries
    from service.db import create_db_engine
    from service.reviews.service import QueueFilters, queue_query
    from service.reviews.states import OPEN
    from service.settings import get_settings

    engine = create_db_engine(get_settings(), url)
    sqlite = engine.dialect.name == "sqlite"
    rng = random.Random(5)
    typed = {
        "trip_from": dt.date.fromisoformat,
        "trip_to": dt.date.fromisoformat,
        "depart_from": dt.date.fromisoformat,
        "depart_to": dt.date.fromisoformat,
        "created_from": dt.datetime.fromisoformat,
        "created_to": dt.datetime.fromisoformat,
        "changed_since": dt.datetime.fromisoformat,
    }

    def converted(params: dict[str, str]) -> dict[str, Any]:
        return {k: (typed[k](v.replace("Z", "+00:00")) if k in typed else v) for k, v in params.items()}

    def explain(name: str, query: Any) -> None:
        compiled = query.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
        params = {}
        for key, value in compiled.params.items():
            process = compiled.binds[key].type.bind_processor(engine.dialect) if key in compiled.binds else None
            params[key] = process(value) if process else value
        bound = tuple(params[k] for k in compiled.positiontup) if compiled.positiontup else params
        prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
        print(f"\n#### {name}\n")
        for row in connection.exec_driver_sql(prefix + str(compiled), bound):
            print("    " + (row[-1] if sqlite else row[0]))

    with engine.connect() as connection, Session(connection) as session:
        print("\n#### Indexes of `assessments`\n")
        if sqlite:
            statement = (
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'assessments' AND sql IS NOT NULL"
            )
        else:
            statement = "SELECT indexdef FROM pg_indexes WHERE tablename = 'assessments' ORDER BY indexname"
        for (sql,) in connection.exec_driver_sql(statement):
            print(f"    {sql}")
        for name, params in list_params(sample, rng).items():
            # The first queries a page may take (a window of trip dates: the newest creation periods first).
            parts = list(
                islice(list_queries(session, sample["tenant_id"], ListFilters(**converted(params)), 20, None), 3)
            )
            for number, query in enumerate(parts, 1):
                explain(name if len(parts) == 1 else f"{name}, query {number}", query)
        for name, params in queue_queries(rng).items():
            values = converted(params)
            states = (values.pop("state"),) if "state" in values else tuple(sorted(OPEN))
            explain(name, queue_query(sample["tenant_id"], QueueFilters(states=states, **values), 20, None))
        # A trip window's first look: one probe of every creation period after the window's last day's.
        until = dt.date.today() - dt.timedelta(days=200)
        late = assessed_late(
            [Assessment.tenant_id == sample["tenant_id"]],
            until - dt.timedelta(days=7),
            until,
            (
                created_period(dt.datetime.combine(until, dt.time(), dt.UTC)) + 1,
                created_period(dt.datetime.now(dt.UTC)),
            ),
        )
        explain("trip window (a past week), its probe of the periods after the window", late.limit(1))
        today = dt.date.today()
        walk = select(Assessment.id).where(Assessment.trip_end >= today).order_by(Assessment.trip_end, Assessment.id)
        explain("re-scoring walk, first batch of upcoming trips by (trip_end, id)", walk.limit(200))
        after = (today + dt.timedelta(days=30), sample["ids"][0])
        later = walk.where(
            or_(
                Assessment.trip_end > after[0],
                and_(Assessment.trip_end == after[0], Assessment.id > after[1]),
            )
        )
        explain("re-scoring walk, a later batch", later.limit(200))
        explain("GET /v1/assessments/{id}", select(Assessment).where(Assessment.id == sample["ids"][0]))
    engine.dispose()


def documents(url: str, sample: dict[str, Any]) -> None:
    """Mean size of the sampled rows' request and response: as stored, and as JSON."""
    from sqlalchemy import column, select, table

    from service.compact import unpack
    from service.db import create_db_engine
    from service.settings import get_settings

    engine = create_db_engine(get_settings(), url)
    raw = table("assessments", column("id"), column("request"), column("response"))
    stored = {"request": [0, 0], "response": [0, 0]}
    with engine.connect() as connection:
        for request, response in connection.execute(
            select(raw.c.request, raw.c.response).where(raw.c.id.in_(sample["ids"][:500]))
        ):
            for name, value in (("request", request), ("response", response)):
                stored[name][0] += len(bytes(value))
                stored[name][1] += len(orjson.dumps(unpack(value)))
    engine.dispose()
    count = min(len(sample["ids"]), 500)
    (request_stored, request_json), (response_stored, response_json) = (
        [total / count for total in stored[name]] for name in ("request", "response")
    )
    print(
        f"\nDocuments, mean of {count} rows: request {request_stored:.0f} bytes stored ({request_json:.0f} as JSON),"
        f" response {response_stored:.0f} bytes stored ({response_json:.0f} as JSON)"
    )


def measure(repeat: int) -> None:
    url = scratch_database("million")
    sample = _sample(url)
    from service.db import create_db_engine, create_session_factory, session_scope
    from service.keys.models import Role
    from service.keys.service import create_key
    from service.settings import get_settings

    engine = create_db_engine(get_settings(), url)
    with session_scope(create_session_factory(engine)) as session:
        key = create_key(session, TENANT, Role.reviewer, "bench-reviewer").secret
    engine.dispose()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env={**os.environ, "TRAVELRISK_DATABASE_URL": url},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    timings: dict[str, list[float]] = {}
    sizes: dict[str, list[int]] = {}
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, 300)
        rng = random.Random(11)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:

            def timed(name: str, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
                start = time.perf_counter()
                response = client.get(path, params=params)
                elapsed = (time.perf_counter() - start) * 1000
                response.raise_for_status()
                timings.setdefault(name, []).append(elapsed)
                body = response.json()
                sizes.setdefault(name, []).append(len(body.get("items", [body])))
                return body

            for _ in range(3):  # warm-up: caches of the server and the database
                for params in list_params(sample, rng).values():
                    client.get("/v1/assessments", params=params)
                for params in queue_queries(rng).values():
                    client.get("/v1/reviews", params=params)
            for _ in range(repeat):
                for name, params in list_params(sample, rng).items():
                    page = timed(name, "/v1/assessments", params)
                    if name == "list newest first":
                        for n in range(2, 5):
                            if not page["next_cursor"]:
                                break
                            page = timed(f"list page {n} (cursor)", "/v1/assessments", {"cursor": page["next_cursor"]})
                for name, params in queue_queries(rng).items():
                    timed(name, "/v1/reviews", params)
                timed("GET /v1/assessments/{id}", f"/v1/assessments/{rng.choice(sample['ids'])}")
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
    kind = url.split("://")[0]
    print(f"# {sample['total']} assessments; {kind}; one connection; {repeat} requests per query\n")
    print("| query | p50 ms | p95 ms | p99 ms | max ms | items (mean) |\n|---|---|---|---|---|---|")
    for name, values in timings.items():
        print(
            f"| {name} | {percentile(values, 50):.1f} | {percentile(values, 95):.1f} | {percentile(values, 99):.1f}"
            f" | {max(values):.1f} | {sum(sizes[name]) / len(sizes[name]):.0f} |"
        )
    documents(url, sample)
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        print(f"\nSQLite file (with -wal/-shm): {size / 1e9:.2f} GB")
    plans(url, sample)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    seeding = sub.add_parser("seed")
    seeding.add_argument("--count", type=int, default=1_000_000)
    seeding.add_argument("--distinct", type=int, default=3000, help="distinct trips scored by the engine")
    measuring = sub.add_parser("measure")
    measuring.add_argument("--repeat", type=int, default=40)
    sub.add_parser("plans")
    args = parser.parse_args()
    if args.command == "seed":
        seed(args.count, args.distinct)
    elif args.command == "measure":
        measure(args.repeat)
    else:
        url = scratch_database("million")
        plans(url, _sample(url))


if __name__ == "__main__":
    main()
