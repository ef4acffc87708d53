"""The loop every leased background worker runs: it works while there is work, waits for a wake-up or
its poll otherwise, survives a failing step, and stops when asked."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from service.leases import LeasedWorker


class Worker(LeasedWorker):
    def __init__(self, outcomes: list[bool | Exception], wake: threading.Event, poll: float) -> None:
        super().__init__("test-worker", wake, poll, logging.getLogger("travelrisk.test"))
        self.outcomes = outcomes
        self.calls: list[float] = []
        self.failures: list[str] = []

    def run_once(self) -> bool:
        self.calls.append(time.monotonic())
        outcome = self.outcomes.pop(0) if self.outcomes else False
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def failed(self, exc: Exception) -> None:
        self.failures.append(type(exc).__name__)


def wait_for(check: object, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_worker_works_until_idle_then_waits_for_a_wake_up() -> None:
    wake = threading.Event()
    worker = Worker([True, True, RuntimeError("boom")], wake, poll=60)
    worker.start()
    try:
        # Two jobs back to back, then a failure, logged: the worker waits (the job is retried later).
        wait_for(lambda: len(worker.calls) == 3)
        assert worker.failures == ["RuntimeError"]
        time.sleep(0.2)
        assert len(worker.calls) == 3
        # A wake-up: nothing to do, so it waits again until the next one.
        wake.set()
        wait_for(lambda: len(worker.calls) == 4)
        time.sleep(0.2)
        assert len(worker.calls) == 4
        wake.set()
        wait_for(lambda: len(worker.calls) == 5)
    finally:
        worker.stop()
    assert worker.stopping and not worker._thread.is_alive()


def test_a_worker_polls_without_a_wake_up() -> None:
    worker = Worker([], threading.Event(), poll=0.05)
    worker.start()
    try:
        wait_for(lambda: len(worker.calls) >= 4)
    finally:
        worker.stop()


def test_the_base_has_no_job_of_its_own() -> None:
    with pytest.raises(NotImplementedError):
        LeasedWorker("idle", threading.Event(), 1, logging.getLogger("travelrisk.test")).run_once()
