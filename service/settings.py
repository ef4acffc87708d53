"""Service configuration, read from `TRAVELRISK_*` environment variables (and an optional `.env` file).

Every field's description is its documentation: the README lists them, and a test checks that the
table and this class agree.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400}
_LIMIT = re.compile(r"\s*(\d+)\s*/\s*(?:(\d+)\s*)?(second|minute|hour|day)s?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Limit:
    """A quota of `amount` requests per `window` seconds."""

    amount: int
    window: int


def parse_limits(spec: str) -> list[Limit]:
    """Limits written `1200/minute`, `10/second;1200/minute` or `100/5 minutes`; an empty string is none.

    A ValueError says what is wrong.
    """
    limits = []
    for part in filter(str.strip, spec.split(";")):
        found = _LIMIT.fullmatch(part)
        if found is None or int(found.group(1)) < 1 or (found.group(2) is not None and int(found.group(2)) < 1):
            raise ValueError(f"'{part.strip()}' is not a rate limit: write e.g. 1200/minute, or 50/second;1200/minute")
        amount, count, unit = int(found.group(1)), int(found.group(2) or 1), found.group(3).lower()
        limits.append(Limit(amount, count * UNITS[unit]))
    return limits


class Settings(BaseSettings):
    """Settings of the HTTP service and the command line."""

    model_config = SettingsConfigDict(
        env_prefix="TRAVELRISK_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default="sqlite:///./travelrisk.db",
        description="SQLAlchemy URL of the database. The default is a SQLite file in the working directory;"
        " for PostgreSQL use `postgresql+psycopg://user:password@host:5432/dbname`.",
    )
    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address `travelrisk serve` listens on (`0.0.0.0` for every interface); `--host` overrides it.",
    )
    port: int = Field(
        default=8000,
        ge=1,
        le=65_535,
        description="TCP port of `travelrisk serve` (and of the image's health check); `--port` overrides it.",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Worker processes of `travelrisk serve`; `--workers` overrides it. Workers exit when the"
        " process that started them dies.",
    )
    max_body_bytes: int = Field(
        default=65_536,
        ge=1_024,
        le=16 * 1024 * 1024,
        description="Largest accepted request body in bytes; a larger one (declared or streamed) is"
        " answered with 413 before it is parsed.",
    )
    roster_max_body_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1_024,
        le=1024 * 1024 * 1024,
        description="Largest accepted roster upload (`POST /v1/rosters`) in bytes; every other request has"
        " `max_body_bytes`. A roster of 50,000 trips in JSON is typically 10-40 MB.",
    )
    roster_chunk_size: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Trips of a roster scored and committed together, with the roster's progress: a roster"
        " interrupted by a restart resumes after its last committed chunk.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Level of the JSON-lines log written to standard error."
    )
    model_dir: Path | None = Field(
        default=None,
        description="Directory holding model artifacts, overriding the bundled ones (e.g. a model"
        " trained on your own incident history).",
    )
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = Field(
        default="NORMAL",
        description="SQLite `PRAGMA synchronous` (WAL mode). NORMAL keeps every committed assessment"
        " through a crash or `kill -9` of the service; FULL also through a power loss, at a cost per"
        " write.",
    )
    sqlite_checkpoint_seconds: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        description="How often a background thread of each worker copies SQLite's write-ahead log into the"
        " database file. Requests never checkpoint themselves, so the log's fsync stays off their path.",
    )
    sqlite_busy_timeout_ms: int = Field(
        default=5_000,
        ge=0,
        description="How long a SQLite writer waits for another writer's lock before failing.",
    )
    db_pool_size: int = Field(default=10, ge=1, description="Connections kept open per worker process (PostgreSQL).")
    assessment_batch_max: int = Field(
        default=64,
        ge=1,
        le=10_000,
        description="Most assessments a worker commits in one transaction: the requests that arrive while"
        " the previous commit runs are scored and committed together, each answered after that commit.",
    )
    key_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="How long a worker trusts a key it has verified before checking the database again: a"
        " key revoked with `travelrisk keys revoke` is refused within this time (0: check every request).",
    )
    ui_session_seconds: int = Field(
        default=8 * 3600,
        ge=60,
        le=7 * 24 * 3600,
        description="How long a sign-in to the web workspace (`/ui/`) lasts before the officer signs in"
        " again with the API key; signing out or revoking the key ends it at once.",
    )
    trip_earliest_date: dt.date = Field(
        default=dt.date(1929, 1, 1),
        description="Earliest day a trip's leg may start: the incident history the model rests on begins in"
        " January 1929, so it has nothing to say about earlier trips. Earlier legs are refused with 422.",
    )
    trip_years_ahead: int = Field(
        default=5,
        ge=0,
        le=50,
        description="How many years after today a trip's leg may end. A trip further out than any plan is a"
        " mistake, and would be re-scored on every reference-data change until it ends.",
    )
    trip_max_days: int = Field(
        default=730,
        ge=1,
        le=36_600,
        description="Longest trip, in days from the first arrival to the last departure (both counted);"
        " a longer one is refused with 422.",
    )
    rate_limit_per_key: str = Field(
        default="1200/minute",
        description="Requests one API key may make, as `N/second`, `N/minute`, `N/hour` or `N/day` (or `N/M"
        " minutes`; several joined with `;`, e.g. `50/second;1200/minute`); over it, 429 with `Retry-After`."
        " Counted per worker process: with N workers a key may make up to N times this. Empty: no limit.",
    )
    rate_limit_failed_auth_per_address: str = Field(
        default="30/minute",
        description="Requests with a key that is not valid that one client address may make (same notation);"
        " over it, every request from that address that presents a key gets 429 until the window has room"
        " again. Counted per worker process. Empty: no limit.",
    )
    apply_migrations: bool = Field(
        default=True,
        description="Whether `travelrisk serve` applies database migrations before it starts.",
    )
    webhooks_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs with `http://` and hosts that are or resolve to private, loopback,"
        " link-local, multicast or reserved addresses (for tests and local development only).",
    )
    webhooks_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="How long one webhook delivery may take (connect, send and read the answer) before it"
        " counts as a failed attempt.",
    )
    webhooks_max_attempts: int = Field(
        default=13,
        ge=1,
        le=30,
        description="Attempts per event and endpoint before the delivery is given up (with the default backoff"
        " the last one is about a day after the first).",
    )
    webhooks_backoff_base_seconds: float = Field(
        default=20.0,
        gt=0,
        le=3600,
        description="Wait before the first retry of a failed delivery; each later wait doubles, with ±20%"
        " random jitter.",
    )
    webhooks_disable_after_failed_events: int = Field(
        default=5,
        ge=1,
        description="An endpoint is disabled (with a reason) when this many consecutive events have used up"
        " all their attempts.",
    )
    webhooks_disable_after_hours: float = Field(
        default=24.0,
        gt=0,
        description="An endpoint that has failed every attempt for longer than this is disabled (with a reason).",
    )
    webhooks_secret_grace_hours: float = Field(
        default=24.0,
        ge=0,
        le=24 * 30,
        description="After a signing secret is rotated, how long deliveries are also signed with the old one.",
    )
    webhooks_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often each worker's delivery thread looks for webhook deliveries that are due (a new"
        " event in the same worker wakes it at once).",
    )

    @field_validator("rate_limit_per_key", "rate_limit_failed_auth_per_address")
    @classmethod
    def _rate_limits(cls, value: str) -> str:
        # Fail at start-up, not on the first request.
        parse_limits(value)
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
