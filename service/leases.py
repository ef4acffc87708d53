"""What the leased background workers (re-scoring, rosters, webhook delivery) share: the write transaction
they commit in, the conditional update that claims a row, and the thread that claims and works jobs
until it is stopped.

Every worker of every process runs each of these threads; they share the work through the database. A
worker claims a job by a conditional `UPDATE` (of two workers racing for one row, only one changes it) and
holds it by a lease it renews as it makes progress; a job whose worker died is claimed again once its
lease runs out. What renewing means, and what keeps a job from being applied twice, is each worker's own.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while one batch of a job is read, scored and stored.

    A batch allocates many short-lived, acyclic objects (requests, bodies) that reference counting frees
    anyway, and each collection they would trigger scans every object of the process (a parsed roster
    upload included): measured, that took more than half of validation and scoring time. The pause lasts
    one batch.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def write_transaction(sessions: sessionmaker[Session], write_lock: AbstractContextManager[Any]) -> Iterator[Session]:
    """A session whose work and commit run under the process's write lock.

    The connection is taken before the lock, never while holding it (as request handlers do): a lock
    holder waiting for the pool while the pool's connections wait for the lock would deadlock.
    """
    with sessions() as session:
        session.connection()
        with write_lock:
            yield session
            session.commit()


def claim_row(session: Session, model: Any, row_id: Any, claimable: Any, **values: Any) -> bool:
    """Set `values` on the row `row_id` of `model` if it is still `claimable`, in the caller's transaction;
    whether this caller claimed it (a worker that lost the race changes nothing)."""
    claimed = session.execute(
        update(model).where(model.id == row_id, claimable).values(**values).execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1


class LeasedWorker:
    """A daemon thread that calls `run_once` (claim a job and work on it) until stopped, and waits for
    `wake` (set when this process commits new work) or `poll_seconds` whenever there was nothing to do.

    A failure is logged by `failed` and the loop goes on: the failed job's lease runs out and the job is
    claimed again. `stop` wakes the thread and waits up to `join_seconds` for it to finish its step.
    """

    def __init__(
        self, name: str, wake: threading.Event, poll_seconds: float, log: logging.Logger, join_seconds: float = 30
    ) -> None:
        self._wake = wake
        self._poll = poll_seconds
        self._log = log
        self._join_seconds = join_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop after its current step, and wait for it."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self._join_seconds)

    @property
    def stopping(self) -> bool:
        """Whether `stop` was called (long jobs check it between steps)."""
        return self._stop.is_set()

    def run_once(self) -> bool:
        """Claim one job and work on it; False when there was none."""
        raise NotImplementedError

    def failed(self, exc: Exception) -> None:
        """Log a failed `run_once` (with its traceback: override where a message may quote input)."""
        self._log.exception("background job failed; it will be retried")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception as exc:  # noqa: BLE001 - the job stays claimable and is retried after its lease
                self.failed(exc)
                worked = False
            if not worked:
                self._wake.wait(self._poll)
                self._wake.clear()
