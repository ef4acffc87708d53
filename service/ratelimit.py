"""Rate limits: requests per API key, and failed authentications per client address.

Counting is the `limits` library's moving window over its in-memory storage, so the counters belong to
one worker process: with N workers (or replicas) a key may make up to N times its limit, spread over
them. Every counted response carries the IETF `RateLimit-Policy` and `RateLimit` headers
(draft-ietf-httpapi-ratelimit-headers); a refused request is a 429 with `Retry-After`.

A client address whose failed authentications pass their limit is refused before its key is even
checked, so that guessing keys cannot go on at full speed, even when a guess happens to be right.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from service.problems import TooManyRequests

Headers = list[tuple[bytes, bytes]]


def parse_limits(spec: str) -> list[RateLimitItem]:
    """Limits in the `limits` notation (`600/minute`, `10/second;600/minute`); an empty string is none."""
    return list(parse_many(spec)) if spec.strip() else []


@dataclass(frozen=True)
class _Policy:
    name: str
    items: Sequence[RateLimitItem]

    def header(self) -> bytes:
        return ", ".join(
            f'"{self.name}-{item.get_expiry()}s";q={item.amount};w={item.get_expiry()}' for item in self.items
        ).encode()


class RateLimiter:
    """The worker's counters for both limits."""

    def __init__(self, per_key: str, failed_auth_per_address: str) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_key = _Policy("key", parse_limits(per_key))
        self._failed_auth = _Policy("failed-auth", parse_limits(failed_auth_per_address))

    def hit_key(self, key_id: str) -> Headers:
        """Count one request of a key: its rate-limit headers, or a 429 when it is over its limit."""
        return self._hit(self._per_key, key_id, "This API key has made too many requests")

    def check_address(self, address: str | None) -> None:
        """A 429 when this client address has failed to authenticate too often lately."""
        policy = self._failed_auth
        for item in policy.items:
            if not self._limiter.test(item, policy.name, address or "-"):
                self._refuse(
                    policy,
                    item,
                    address,
                    "Too many requests with a key that is not valid came from your address",
                )

    def record_failure(self, address: str | None) -> None:
        """Count one failed authentication from this client address."""
        for item in self._failed_auth.items:
            self._limiter.hit(item, self._failed_auth.name, address or "-")

    def _hit(self, policy: _Policy, identifier: str, message: str) -> Headers:
        if not policy.items:
            return []
        closest: tuple[int, float, RateLimitItem] | None = None
        for item in policy.items:
            if not self._limiter.hit(item, policy.name, identifier):
                self._refuse(policy, item, identifier, message)
            reset, remaining = self._limiter.get_window_stats(item, policy.name, identifier)
            if closest is None or remaining < closest[0]:
                closest = (remaining, reset, item)
        assert closest is not None
        remaining, reset, item = closest
        seconds = _seconds_until(reset)
        return [
            (b"ratelimit-policy", policy.header()),
            (b"ratelimit", f'"{policy.name}-{item.get_expiry()}s";r={remaining};t={seconds}'.encode()),
        ]

    def _refuse(self, policy: _Policy, item: RateLimitItem, identifier: str | None, message: str) -> None:
        reset, _ = self._limiter.get_window_stats(item, policy.name, identifier or "-")
        seconds = max(1, _seconds_until(reset))
        raise TooManyRequests(
            f"{message}: the limit is {item.amount} per {_window(item)}. Retry after {seconds} s.",
            retry_after=seconds,
            headers={
                "RateLimit-Policy": policy.header().decode(),
                "RateLimit": f'"{policy.name}-{item.get_expiry()}s";r=0;t={seconds}',
            },
        )


def _seconds_until(reset: float) -> int:
    return max(0, math.ceil(reset - time.time()))


def _window(item: RateLimitItem) -> str:
    seconds = item.get_expiry()
    return f"{seconds} seconds" if seconds != 1 else "second"
