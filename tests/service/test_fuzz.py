"""Generated requests against the real application: no 5xx, and every answer as the OpenAPI document says.

Schemathesis generates requests for every operation of the app's own OpenAPI document, valid ones and
ones that break it, and sends each with a key of every role (requester, reviewer, analyst, admin). The
application runs in-process with its lifespan (model loaded, re-scoring worker running) over its own
migrated SQLite database, so the records it writes never meet the other tests' data.

Generation is derandomized: the same requests are sent on every run. The number per operation, role and
kind (valid / invalid) is `TRAVELRISK_FUZZ_EXAMPLES` (default 20, about 2,000 requests in all); a longer
run is, e.g.:

    TRAVELRISK_FUZZ_EXAMPLES=200 TRAVELRISK_FUZZ_REPORT=fuzz.txt .venv/bin/python -m pytest tests/service/test_fuzz.py

(`TRAVELRISK_FUZZ_REPORT` names a file for the summary: requests sent, their statuses, every failure.)
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.meta import negated_parameters
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import response_schema_conformance

from service.app import create_app
from service.db import create_db_engine, create_session_factory, session_scope, upgrade_database
from service.keys import service as keys
from service.keys.models import Role
from tests.service.conftest import make_settings

EXAMPLES_ENV = "TRAVELRISK_FUZZ_EXAMPLES"
# A file to write the run's summary to: how many requests, their statuses, every failed check.
REPORT_ENV = "TRAVELRISK_FUZZ_REPORT"
DEFAULT_EXAMPLES = 20
MINIMUM_REQUESTS = 2_000
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


@dataclass
class Findings:
    """What the generated requests met: counts, and every failed check with how to reproduce it."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    unsatisfiable: set[tuple[str, str]] = field(default_factory=set)


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, dict[Role, str]]]:
    """The app over a database of its own, started once, and a key for every role of one tenant."""
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    upgrade_database(url)
    # Warnings and errors only: a log line per request would cost more than the request.
    app_settings = make_settings(url, log_level="WARNING")
    engine = create_db_engine(app_settings)
    with session_scope(create_session_factory(engine)) as session:
        tenant = f"fuzz-{uuid.uuid4().hex[:8]}"
        issued = {role: keys.create_key(session, tenant, role, f"{role.value}-holder").secret for role in Role}
    engine.dispose()
    app = create_app(app_settings)
    with asgi.get_client(app) as client:  # runs the lifespan once for the whole run
        yield app, client, issued


def keeps_the_key(case: Any) -> bool:
    """False for an invalid case whose invalid part is the `Authorization` header: the key would not be
    sent, and the request would test only that a missing key is 401 (the auth tests cover that)."""
    return not any(name.lower() == "authorization" for name, _ in negated_parameters(case.meta))


def fuzz_operation(
    operation: Any, mode: schemathesis.GenerationMode, role: Role, key: str, client: Any, findings: Findings, n: int
) -> None:
    """Send up to `n` generated requests for one operation, recording every failed check."""
    headers = {"Authorization": f"Bearer {key}"}

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        # Failures are recorded, not raised: no shrinking, and every finding is listed.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        if not keeps_the_key(case):
            # Not filtered: where the key is the only thing that can be made invalid, a filter would reject
            # every case and Hypothesis would search at length before giving up.
            return
        response = case.call(session=client, headers=headers)
        findings.requests += 1
        findings.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance], headers=headers)
        except Exception as exc:  # schemathesis' FailureGroup: one or more failed checks
            first = str(exc).strip().splitlines()
            findings.failures.append(
                f"{operation.label} as {role} ({mode}): {response.status_code}: {' / '.join(first[:6])}"
            )

    if (operation.label, mode) in findings.unsatisfiable:
        return
    try:
        run()
    except Unsatisfiable:
        # Nothing about this operation can be made invalid (no parameters, no body, or only free-form path
        # strings): nothing to send, for this role or any other.
        assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
        findings.unsatisfiable.add((operation.label, mode))


def test_generated_requests_get_no_server_error_and_documented_answers(
    fuzz_target: tuple[Any, Any, dict[Role, str]],
) -> None:
    app, client, issued = fuzz_target
    examples = int(os.environ.get(EXAMPLES_ENV, DEFAULT_EXAMPLES))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # Each request carries the role's key; invalid cases break the request itself, never the key (a missing or
    # wrong key is 401, which the authentication tests cover).
    schema.config.generation.update(with_security_parameters=False)
    findings = Findings()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, "every operation of the API is fuzzed"
    for operation in operations:
        for role in Role:
            for mode in MODES:
                fuzz_operation(operation, mode, role, issued[role], client, findings, examples)

    if os.environ.get(REPORT_ENV):
        Path(os.environ[REPORT_ENV]).write_text(
            f"{findings.requests} requests; statuses {dict(sorted(findings.statuses.items()))}\n"
            + "\n".join(findings.failures)
            + "\n"
        )
    if examples >= DEFAULT_EXAMPLES:
        assert findings.requests >= MINIMUM_REQUESTS, findings.requests
    assert not findings.failures, (
        f"{len(findings.failures)} of {findings.requests} generated requests failed a check:\n"
        + "\n".join(findings.failures[:40])
    )
