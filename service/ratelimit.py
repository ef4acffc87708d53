"""Rate limits: requests per API key, and failed authentications per client address.

Each limit is a quota per window (`1200/minute`), enforced with the generic cell rate algorithm (GCRA,
the algorithm of ATM traffic policing and of most API gateways): one timestamp per key, the
"theoretical arrival time", advanced by window/quota on every request; a request that would move it more
than a window ahead is refused. That allows a burst of the whole quota and then a steady rate, and costs
a dictionary look-up and a few float operations per request, with no thread or lock: every check runs on
the worker's event loop.

(The `limits` library was measured first: its in-memory storage starts a timer thread on each hit after
a quiet spell and its moving window inserts into a list per hit, 35-280 us a request on the development
machine against under 1 us here; see the README.)

The counters belong to one worker process: with N workers (or replicas) a key may make up to N times
its limit, spread over them. Every counted response carries the IETF `RateLimit-Policy` and `RateLimit`
headers (draft-ietf-httpapi-ratelimit-headers); a refused request is a 429 with `Retry-After`.

A client address whose failed authentications pass their limit is refused before its key is even
checked, so that guessing keys cannot go on at full speed, even when a guess happens to be right.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from service.problems import TooManyRequests
from service.settings import UNITS, Limit, parse_limits

Headers = list[tuple[bytes, bytes]]

# Past this many tracked keys or addresses, entries whose quota is whole again are dropped.
MAX_TRACKED = 100_000


@dataclass
class _Policy:
    """One family of limits (per key, or failed authentications per address) and its counters."""

    label: str
    limits: list[Limit]
    # Per limit: identifier -> theoretical arrival time (time.monotonic seconds).
    arrivals: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.arrivals = [{} for _ in self.limits]
        self._policy_header = ", ".join(
            f'"{self.label}-{lim.window}s";q={lim.amount};w={lim.window}' for lim in self.limits
        ).encode()

    def policy_header(self) -> bytes:
        return self._policy_header

    def status_header(self, limit: Limit, remaining: int, reset: float) -> bytes:
        return f'"{self.label}-{limit.window}s";r={remaining};t={math.ceil(reset)}'.encode()

    def wait(self, index: int, identifier: str, now: float) -> float:
        """Seconds until `identifier` may make one more request under limit `index` (0: it may now)."""
        limit = self.limits[index]
        interval = limit.window / limit.amount
        tat = max(self.arrivals[index].get(identifier, now), now)
        return max(0.0, tat - now - (limit.window - interval))

    def take(self, index: int, identifier: str, now: float) -> tuple[int, float]:
        """Count one request; what remains of the quota and seconds until it is whole again."""
        limit = self.limits[index]
        interval = limit.window / limit.amount
        arrivals = self.arrivals[index]
        tat = max(arrivals.get(identifier, now), now) + interval
        if len(arrivals) >= MAX_TRACKED:
            _prune(arrivals, now)
        arrivals[identifier] = tat
        remaining = int((limit.window - (tat - now)) / interval + 1e-9)
        return max(0, remaining), tat - now


def _prune(arrivals: dict[str, float], now: float) -> None:
    # An entry in the past stands for a whole quota, as a missing one does.
    for identifier in [k for k, tat in arrivals.items() if tat <= now]:
        del arrivals[identifier]
    if len(arrivals) >= MAX_TRACKED:
        # Still full of active entries (many addresses at once): forget them rather than grow without end.
        arrivals.clear()


class RateLimiter:
    """The worker's counters for both policies."""

    def __init__(self, per_key: str, failed_auth_per_address: str) -> None:
        self._per_key = _Policy("key", parse_limits(per_key))
        self._failed_auth = _Policy("failed-auth", parse_limits(failed_auth_per_address))

    def hit_key(self, key_id: str) -> Headers:
        """Count one request of a key: its rate-limit headers, or a 429 when it is over its limit."""
        policy = self._per_key
        if not policy.limits:
            return []
        now = time.monotonic()
        for index in range(len(policy.limits)):
            wait = policy.wait(index, key_id, now)
            if wait > 0:
                self._refuse(policy, index, wait, "This API key has made too many requests")
        closest: tuple[int, float, Limit] | None = None
        for index, limit in enumerate(policy.limits):
            remaining, reset = policy.take(index, key_id, now)
            if closest is None or remaining < closest[0]:
                closest = (remaining, reset, limit)
        assert closest is not None
        remaining, reset, limit = closest
        return [
            (b"ratelimit-policy", policy.policy_header()),
            (b"ratelimit", policy.status_header(limit, remaining, reset)),
        ]

    def check_address(self, address: str | None) -> None:
        """A 429 when this client address has failed to authenticate too often lately."""
        policy = self._failed_auth
        now = time.monotonic()
        for index in range(len(policy.limits)):
            wait = policy.wait(index, address or "-", now)
            if wait > 0:
                self._refuse(
                    policy, index, wait, "Too many requests with a key that is not valid came from your address"
                )

    def record_failure(self, address: str | None) -> None:
        """Count one failed authentication from this client address."""
        now = time.monotonic()
        for index in range(len(self._failed_auth.limits)):
            self._failed_auth.take(index, address or "-", now)

    @staticmethod
    def _refuse(policy: _Policy, index: int, wait: float, message: str) -> None:
        limit = policy.limits[index]
        seconds = max(1, math.ceil(wait))
        raise TooManyRequests(
            f"{message}: the limit is {limit.amount} per {_window(limit.window)}. Retry after {seconds} s.",
            retry_after=seconds,
            headers={
                "RateLimit-Policy": policy.policy_header().decode(),
                "RateLimit": policy.status_header(limit, 0, wait).decode(),
            },
        )


def _window(seconds: int) -> str:
    for unit, size in reversed(UNITS.items()):
        if seconds == size:
            return unit
    return f"{seconds} seconds"
