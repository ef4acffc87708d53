"""Value types shared by every input form: strict ISO 8601 dates and text without control characters.

The forms are read from JSON (the API), from YAML (the incident corpus, rule examples, the bundled
reference file) and from stored documents. YAML already turns `2018-12-01` into a `datetime.date`, and
stored documents hold ISO strings, so both are accepted; anything else (a number, a boolean, a string of
digits that Pydantic would read as Unix time) is refused, because the contract says ISO 8601.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A calendar date, optionally with a time (hours and minutes at least), fractions and an offset or Z.
_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?"
)

# C0 controls and DEL (and the C1 block): no field has a use for them; PostgreSQL cannot even store NUL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Multi-line text (notes, quotes) may hold tabs and line breaks, nothing else of the kind.
_CONTROL_BUT_LAYOUT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _strict_date(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        raise ValueError("expected a date (YYYY-MM-DD), not a date and time")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        if not _ISO_DATE.fullmatch(value):
            raise ValueError(f"'{value[:40]}' is not an ISO 8601 date: write YYYY-MM-DD, e.g. 2026-03-01")
        return value
    raise ValueError(f"expected an ISO 8601 date string (YYYY-MM-DD), not {_kind(value)}")


def _strict_datetime(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        if not _ISO_DATETIME.fullmatch(value):
            raise ValueError(
                f"'{value[:40]}' is not an ISO 8601 date and time: write e.g. 2026-03-01T09:30:00Z"
                " (or with an offset such as +08:00)"
            )
        return value
    raise ValueError(f"expected an ISO 8601 date-and-time string, not {_kind(value)}")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return f"a value of type {type(value).__name__}"


def control_character(value: str, *, multiline: bool = False) -> str | None:
    """The first control character in `value` as `U+XXXX` (tabs and line breaks allowed when
    `multiline`), or None when there is none."""
    found = (_CONTROL_BUT_LAYOUT if multiline else _CONTROL).search(value)
    return None if found is None else f"U+{ord(found.group()):04X}"


def _single_line(value: str) -> str:
    bad = control_character(value)
    if bad is not None:
        raise ValueError(f"contains the control character {bad}; remove it (no control characters allowed)")
    return value


def _multi_line(value: str) -> str:
    bad = control_character(value, multiline=True)
    if bad is not None:
        raise ValueError(f"contains the control character {bad}; remove it (only tabs and line breaks are allowed)")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_strict_date)]
"""A date given as `YYYY-MM-DD` (or a `datetime.date` from YAML); numbers are refused."""

IsoDateTime = Annotated[dt.datetime, BeforeValidator(_strict_datetime)]
"""A date and time given as an ISO 8601 string (or a `datetime`); numbers and Unix times are refused."""


def to_utc(value: dt.datetime) -> dt.datetime:
    """`value` as an aware UTC datetime (a naive one is taken as UTC); a ValueError when the instant lies
    outside the years 1 to 9999 once expressed in UTC (e.g. 0001-01-01T00:00:00+14:00)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(
            f"{value.isoformat()} is outside the years 1 to 9999 once converted to UTC; give a time within them"
        ) from None


UtcDateTime = Annotated[dt.datetime, BeforeValidator(_strict_datetime), AfterValidator(to_utc)]
"""An ISO 8601 date and time, read as an aware UTC datetime (UTC when it has no offset); instants that
fall outside the representable years once in UTC are refused rather than overflowing later."""

SingleLine = AfterValidator(_single_line)
"""Annotate a `str` with this to refuse every control character."""

MultiLine = AfterValidator(_multi_line)
"""Annotate a `str` with this to refuse control characters other than tabs and line breaks."""

Text = Annotated[str, SingleLine]
"""A string without control characters."""
