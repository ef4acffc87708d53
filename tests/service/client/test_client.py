"""The Python client against the real service: typed answers and errors, retries with one Idempotency-Key,
cursor pages, rosters, and the async client."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest

from risk_rules.forms import AssessmentRequest
from service.assessments.examples import REQUEST_EXAMPLE
from tests.service.conftest import Server
from travelrisk_client import (
    AssessmentResponse,
    AsyncClient,
    Client,
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    RosterStatus,
    TransportError,
    Unauthorized,
)


def trip(reference: str, country: str = "CN") -> dict[str, Any]:
    return {
        "traveler": {"reference": reference, "citizenships": ["CA"]},
        "trip": {"legs": [{"country": country, "arrive": "2018-12-05", "depart": "2018-12-20"}]},
    }


class LosesFirstResponse(httpx.HTTPTransport):
    """Delivers each of the first `losses` requests to the server, then drops its answer (as a broken
    connection would): the service did the work, the client never heard."""

    def __init__(self, losses: int = 1) -> None:
        super().__init__()
        self.losses = losses
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        response = super().handle_request(request)
        if self.losses > 0:
            self.losses -= 1
            response.read()
            response.close()
            raise httpx.ReadError("connection reset", request=request)
        return response


def test_create_read_and_page_through_assessments(server: Server, new_key: Any) -> None:
    reference = f"CL-{uuid.uuid4().hex[:8]}"
    with Client(server.base_url, new_key()) as client:
        created = client.create_assessment(AssessmentRequest.model_validate(trip(reference)))
        assert isinstance(created, AssessmentResponse) and created.score is not None
        read = client.get_assessment(created.id)
        assert read.id == created.id and read.score == created.score and read.revision == 1
        more = [client.create_assessment(trip(reference)).id for _ in range(4)]
        listed = list(client.iter_assessments(page_size=2, traveler_reference=reference))
        assert [a.id for a in listed] == list(reversed([created.id, *more]))  # newest first, over three pages
        assert client.list_assessments(limit=2, traveler_reference=reference).next_cursor is not None
        assert {f["id"] for f in client.factors()} >= {f.id for f in created.factors}


def test_errors_are_typed_from_problem_details(server: Server, new_key: Any) -> None:
    with Client(server.base_url, "trk_nope_nope") as client, pytest.raises(Unauthorized) as unauthorized:
        client.get_assessment("x")
    assert unauthorized.value.status == 401 and unauthorized.value.request_id
    key = new_key("admin")
    with Client(server.base_url, key) as client:
        with pytest.raises(NotFound):
            client.get_assessment(str(uuid.uuid4()))
        bad = trip("CL-bad")
        bad["trip"]["legs"][0]["country"] = "XX"
        with pytest.raises(InvalidInput) as invalid:
            client.request("POST", "/v1/assessments", json=bad)
        assert invalid.value.kind == "invalid-input"
        assert [e["field"] for e in invalid.value.errors] == ["trip.legs.0.country"]
        reused = str(uuid.uuid4())
        client.create_assessment(trip("CL-1"), idempotency_key=reused)
        with pytest.raises(IdempotencyKeyReused):
            client.create_assessment(trip("CL-2"), idempotency_key=reused)
    reviewer = new_key("reviewer")
    with Client(server.base_url, reviewer) as client, pytest.raises(Forbidden):
        client.create_assessment(trip("CL-3"))


def test_a_post_whose_answer_was_lost_is_retried_with_the_same_key_and_stored_once(
    server: Server, new_key: Any
) -> None:
    reference = f"CL-{uuid.uuid4().hex[:8]}"
    key = new_key()
    transport = LosesFirstResponse(losses=2)
    with Client(server.base_url, key, transport=transport, backoff=0.01) as client:
        created = client.create_assessment(trip(reference))
    assert len(transport.sent) == 3
    assert len({r.headers["Idempotency-Key"] for r in transport.sent}) == 1
    with Client(server.base_url, key) as client:
        assert [a.id for a in client.iter_assessments(traveler_reference=reference)] == [created.id]


def test_a_post_that_does_not_honour_idempotency_keys_is_not_retried(server: Server, new_key: Any) -> None:
    transport = LosesFirstResponse(losses=1)
    client = Client(server.base_url, new_key("admin"), transport=transport, backoff=0.01)
    with client, pytest.raises(TransportError):
        client.request("POST", "/v1/keys", json={"role": "requester"})
    assert len(transport.sent) == 1  # a second attempt could have created a second key


def test_retries_stop_and_fail_with_a_transport_error(server: Server, new_key: Any) -> None:
    transport = LosesFirstResponse(losses=5)
    client = Client(server.base_url, new_key(), transport=transport, max_retries=2, backoff=0.01)
    with client, pytest.raises(TransportError):
        client.get_assessment("anything")
    assert len(transport.sent) == 3  # the first try and two retries


def test_a_roster_is_uploaded_waited_on_and_read(server: Server, new_key: Any) -> None:
    seen: list[RosterStatus] = []
    with Client(server.base_url, new_key()) as client:
        trips = [AssessmentRequest.model_validate(REQUEST_EXAMPLE), trip("R-2"), {"traveler": {}, "trip": {}}]
        accepted = client.upload_roster(trips)
        assert accepted.total == 3
        status = client.wait_for_roster(accepted.id, timeout=60, poll_interval=0.1, on_progress=seen.append)
        assert status.state == "done" and (status.done, status.invalid) == (3, 1)
        assert seen[-1] == status
        assert {e.field for e in status.errors} == {"traveler.citizenships", "trip.legs"}
        results = client.roster_results(accepted.id)
        assert [r.status for r in results] == ["scored", "scored", "invalid"]
        assert client.get_assessment(results[0].assessment_id).score.band == results[0].band
        from_csv = client.upload_roster_csv(client.roster_template())
        assert (
            client.wait_for_roster(from_csv.id, timeout=60, poll_interval=0.1).counts.model_dump()["out_of_scope"] == 0
        )
        assert client.roster_results_csv(from_csv.id).splitlines()[0].startswith("row,reference,status,band")


def test_the_async_client(server: Server, new_key: Any) -> None:
    key = new_key()
    reference = f"CA-{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        async with AsyncClient(server.base_url, key) as client:
            created = await asyncio.gather(*(client.create_assessment(trip(reference)) for _ in range(3)))
            listed = [a.id async for a in client.iter_assessments(page_size=2, traveler_reference=reference)]
            assert sorted(listed) == sorted(c.id for c in created)
            assert (await client.get_assessment(created[0].id)).id == created[0].id
            accepted = await client.upload_roster([trip("A-1"), trip("A-2", country="FR")])
            status = await client.wait_for_roster(accepted.id, timeout=60, poll_interval=0.1)
            assert status.counts.out_of_scope == 1 and status.done == 2
            with pytest.raises(NotFound):
                await client.get_roster(str(uuid.uuid4()))

    asyncio.run(scenario())


def test_the_client_does_not_import_the_server_framework() -> None:
    frameworks = "{'fastapi', 'sqlalchemy', 'starlette', 'uvicorn'}"
    code = f"import sys, travelrisk_client; print(sorted({{m.split('.')[0] for m in sys.modules}} & {frameworks}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
