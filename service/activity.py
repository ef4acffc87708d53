"""Requests in flight in this worker process, so that background work can give way to them.

Background threads (re-scoring) share the process, and so the interpreter lock, with the threads serving
requests: a thread that scores for tens of milliseconds at a time makes every request wait for it, several
times over. `give_way` lets such a thread work in short slices and pause between them while a request is
being served, so that requests run at nearly the speed they would alone and background work uses the time
in between.
"""

from __future__ import annotations

import threading
import time


class Activity:
    """A count of requests in flight, and a wait for none to be."""

    def __init__(self) -> None:
        self._in_flight = 0
        self._idle = threading.Condition(threading.Lock())

    @property
    def in_flight(self) -> int:
        """Requests being served now."""
        return self._in_flight

    def enter(self) -> None:
        """A request started."""
        with self._idle:
            self._in_flight += 1

    def leave(self) -> None:
        """A request ended."""
        with self._idle:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()

    def give_way(self, longest: float) -> None:
        """Wait until no request is in flight, at most `longest` seconds.

        The lock is always released for a moment (a request may be arriving that no one counts yet); after
        `longest`, the caller goes on anyway, so background work is slowed, never starved, under a
        continuous load.
        """
        time.sleep(0)
        if self._in_flight == 0:
            return
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=longest)


# One per process: the middleware counts requests, background threads give way.
REQUESTS = Activity()
