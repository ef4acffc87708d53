"""Background work gives way to requests in flight: it waits for them to end, but never for longer than
it was told."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from service.activity import REQUESTS, Activity


def test_giving_way_waits_for_requests_in_flight_and_no_longer() -> None:
    activity = Activity()
    started = time.monotonic()
    activity.give_way(5)
    assert time.monotonic() - started < 1  # nothing in flight: no wait

    activity.enter()
    activity.enter()
    started = time.monotonic()
    activity.give_way(0.2)
    assert 0.15 <= time.monotonic() - started < 2  # a continuous load delays, never stops, the caller

    ended: list[float] = []

    def finish() -> None:
        time.sleep(0.2)
        activity.leave()
        time.sleep(0.1)
        ended.append(time.monotonic())
        activity.leave()

    threading.Thread(target=finish).start()
    activity.give_way(10)
    assert ended and time.monotonic() - ended[0] < 1
    assert activity.in_flight == 0


def test_the_middleware_counts_requests_in_flight(client: TestClient) -> None:
    seen: list[int] = []
    original = REQUESTS.leave

    def leave() -> None:
        seen.append(REQUESTS.in_flight)
        original()

    REQUESTS.leave = leave  # type: ignore[method-assign]
    try:
        assert client.get("/healthz").status_code == 200
    finally:
        del REQUESTS.leave
    assert seen and seen[0] >= 1
    assert REQUESTS.in_flight == 0
