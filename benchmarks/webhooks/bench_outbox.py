"""What the transactional outbox adds to storing an assessment, in process, on SQLite.

Stores N assessments (the same scored request, fresh ids), each in its own committed transaction as
POST /v1/assessments does: the assessment's INSERT alone (the path before the outbox), then through
`assessments.insert` for a tenant without webhook endpoints (one endpoint look-up) and for one with an
endpoint that wants `assessment.created` (look-up, event and delivery rows). Prints the median time per
stored assessment of each, in wall-clock time and in this process's CPU time (steadier on a shared
machine). The delivery worker is not running: only the write path is measured.

    .venv/bin/python benchmarks/webhooks/bench_outbox.py [--n 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from risk_rules.forms import AssessmentRequest
from service.assessments import service as assessments
from service.assessments.examples import REQUEST_EXAMPLE
from service.db import create_db_engine, create_session_factory, session_scope, upgrade_database
from service.keys.models import Role
from service.keys.service import create_key
from service.model.service import ScoringEngine
from service.settings import Settings
from service.webhooks import service as webhooks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="assessments stored per run and tenant")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'bench.db'}"
        upgrade_database(url)
        settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
        engine = create_db_engine(settings)
        sessions = create_session_factory(engine)
        scoring = ScoringEngine(settings, sessions)
        scoring.load()
        request = AssessmentRequest.model_validate(REQUEST_EXAMPLE)
        document = assessments.request_document(request)
        with sessions() as session:
            result = scoring.assessor().assess_body(request, scoring.reference(session))
        with session_scope(sessions) as session:
            quiet = create_key(session, "bench-quiet", Role.admin).record.tenant_id
            hooked = create_key(session, "bench-hooked", Role.admin).record.tenant_id
            webhooks.create_endpoint(
                session,
                hooked,
                url="https://hooks.example.com/x",
                event_types=["assessment.created"],
                enabled=True,
                description=None,
            )

        def store(tenant_id: str, outbox: bool = True) -> tuple[float, float]:
            started, cpu = time.perf_counter(), time.process_time()
            for _ in range(args.n):
                values = assessments.new_assessment(
                    tenant_id=tenant_id,
                    request=request,
                    document=document,
                    result=result,
                    idempotency_key=None,
                    body_hash="0" * 64,
                )
                with sessions() as session:
                    if outbox:
                        assessments.insert(session, values)
                    else:
                        session.connection().execute(assessments._INSERT, values)
                    session.commit()
            wall = (time.perf_counter() - started) / args.n * 1e6
            return wall, (time.process_time() - cpu) / args.n * 1e6

        figures: dict[str, list[tuple[float, float]]] = {"INSERT alone": [], "no endpoint": [], "one endpoint": []}
        for _ in range(args.runs):
            figures["INSERT alone"].append(store(quiet, outbox=False))
            figures["no endpoint"].append(store(quiet))
            figures["one endpoint"].append(store(hooked))
        engine.dispose()
    for name, values in figures.items():
        walls, cpus = [v[0] for v in values], [v[1] for v in values]
        print(
            f"{name:>13}: {statistics.median(walls):7.1f} µs wall, {statistics.median(cpus):7.1f} µs CPU per stored"
            f" assessment (median of {len(values)} runs)"
        )


if __name__ == "__main__":
    main()
