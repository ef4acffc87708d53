"""Shared value types: strict ISO dates that still accept YAML's dates, UTC times, text without controls."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from risk_rules.forms import AssessmentRequest
from risk_rules.values import IsoDate, IsoDateTime, Text, UtcDateTime, control_character

DATE = TypeAdapter(IsoDate)
UTC = TypeAdapter(UtcDateTime)


def test_yaml_dates_and_iso_strings_are_dates() -> None:
    loaded = yaml.safe_load("arrive: 2018-12-05\nquoted: '2018-12-06'")
    assert isinstance(loaded["arrive"], dt.date)
    assert DATE.validate_python(loaded["arrive"]) == dt.date(2018, 12, 5)
    assert DATE.validate_python(loaded["quoted"]) == dt.date(2018, 12, 6)
    assert DATE.validate_json('"2018-12-07"') == dt.date(2018, 12, 7)


@pytest.mark.parametrize("value", [0, 1893456000, 1.5, True, None, "1893456000", "2018-12-05T00:00:00", "2018-1-5"])
def test_anything_else_is_not_a_date(value: object) -> None:
    with pytest.raises(ValidationError):
        DATE.validate_python(value)


def test_a_yaml_timestamp_is_not_a_date() -> None:
    with pytest.raises(ValidationError, match="not a date and time"):
        DATE.validate_python(yaml.safe_load("at: 2018-12-05 10:00:00")["at"])


def test_a_request_from_yaml_validates_like_one_from_json() -> None:
    document = yaml.safe_load(
        """
        traveler: {citizenships: [CA]}
        trip: {legs: [{country: CN, arrive: 1934-05-01, depart: 1934-05-09}]}
        """
    )
    assert AssessmentRequest.model_validate(document).trip.end == dt.date(1934, 5, 9)
    document["trip"]["legs"][0]["arrive"] = -1198800000
    with pytest.raises(ValidationError, match="not a number"):
        AssessmentRequest.model_validate(document)


def test_times_are_read_as_utc_and_overflowing_ones_refused() -> None:
    assert UTC.validate_python("2026-03-01T09:30:00+08:00") == dt.datetime(2026, 3, 1, 1, 30, tzinfo=dt.UTC)
    assert UTC.validate_python("2026-03-01T09:30") == dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)
    assert UTC.validate_python("0001-01-01T00:00:00-01:00").year == 1
    for value in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-00:01"):
        with pytest.raises(ValidationError, match="outside the years 1 to 9999"):
            UTC.validate_python(value)
    with pytest.raises(ValidationError):
        TypeAdapter(IsoDateTime).validate_python(1893456000)


def test_text_refuses_control_characters() -> None:
    text = TypeAdapter(Text)
    assert text.validate_python("Zürich – 北京") == "Zürich – 北京"
    for value in ("a\x00", "\t", "\n", "\x7f", "\x9f"):
        with pytest.raises(ValidationError, match="control character"):
            text.validate_python(value)
    assert control_character("a\tb\nc", multiline=True) is None
    assert control_character("a\x00", multiline=True) == "U+0000"
