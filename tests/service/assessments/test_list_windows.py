"""GET /v1/assessments with a window of trip dates and with `changed_since`: the filters read differently
at scale (by length class of the trip, and in two parts), so their answers are checked against the plain
definition, page by page, through the real API and database."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from service.assessments.models import Assessment
from service.assessments.service import created_period, trip_span
from service.db import create_db_engine, create_session_factory
from tests.service.assessments.test_assessments import list_all, post, trip


@pytest.fixture(scope="module")
def sessions(settings: Any) -> Any:
    engine = create_db_engine(settings)
    yield create_session_factory(engine)
    engine.dispose()


def backdate(sessions: Any, stored: list[dict[str, Any]]) -> None:
    """Give each stored assessment the `created_at` of its entry (and that day's creation period): a history."""
    with sessions() as session:
        for row in stored:
            session.execute(
                update(Assessment)
                .where(Assessment.id == row["id"])
                .values(created_at=row["created_at"], created_period=created_period(row["created_at"]))
                .execution_options(synchronize_session=False)
            )
        session.commit()


def test_trip_span_is_the_length_class() -> None:
    day = dt.date(2060, 3, 1)
    spans = {days: trip_span(day, day + dt.timedelta(days=days - 1)) for days in (1, 2, 3, 4, 5, 8, 9, 730, 36_600)}
    assert spans == {1: 0, 2: 1, 3: 2, 4: 2, 5: 3, 8: 3, 9: 4, 730: 10, 36_600: 16}
    for days, span in spans.items():
        assert days <= 2**span and (span == 0 or days > 2 ** (span - 1))


def test_created_period_is_8_days_from_1970_in_utc() -> None:
    assert created_period(dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) == 0
    assert created_period(dt.datetime(1970, 1, 8, 23, 59, tzinfo=dt.UTC)) == 0  # day 7
    assert created_period(dt.datetime(1970, 1, 9, tzinfo=dt.UTC)) == 1  # day 8
    assert created_period(dt.datetime(2026, 11, 30, tzinfo=dt.UTC)) == 20_787 // 8
    # The UTC day counts, not the local one.
    assert created_period(dt.datetime(1970, 1, 9, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == 0


def test_a_window_of_a_tenant_without_assessments_is_empty(client: TestClient, make_tenant: Any) -> None:
    assert list_all(client, make_tenant(), "trip_from=2061-01-01&trip_to=2061-02-01") == []


# (start, length in days, country): lengths in every class from one day to nearly two years.
TRIPS = [
    ("2061-03-10", 1, "CN"),
    ("2061-03-11", 2, "IS"),
    ("2061-03-01", 3, "CN"),
    ("2061-02-20", 9, "CN"),
    ("2061-01-15", 40, "IS"),
    ("2060-09-01", 200, "CN"),
    ("2059-05-01", 700, "CN"),
    ("2061-03-20", 5, "CN"),
    ("2061-04-02", 17, "IS"),
    ("2061-03-05", 1, "CN"),
]


def test_trip_windows_match_the_overlap_of_dates_newest_first(client: TestClient, tenant: Any, sessions: Any) -> None:
    stored = []
    for n, (start, days, country) in enumerate(TRIPS):
        first = dt.date.fromisoformat(start)
        last = first + dt.timedelta(days=days - 1)
        legs = [{"country": country, "arrive": first.isoformat(), "depart": last.isoformat()}]
        created = post(client, tenant, trip(f"W-{n}", legs=legs))
        assert created.status_code == 201, created.text
        body = created.json()
        stored.append({"id": body["id"], "start": first, "end": last, "status": body["status"]})
    # A history: the trips were assessed 1 to 200 days apart, over many 8-day creation periods (read newest
    # first, a few at a time), in the order they were posted.
    created = dt.datetime(2025, 1, 3, 12, 0, tzinfo=dt.UTC)
    for n, row in enumerate(stored):
        created += dt.timedelta(days=[1, 200, 31, 33, 2, 64, 90, 5, 150, 1][n])
        row["created_at"] = created
    backdate(sessions, stored)
    assert len({created_period(row["created_at"]) for row in stored}) == 7
    newest_first = list(reversed(stored))
    windows = [
        ("2061-03-10", "2061-03-10"),  # one day: the first day of one trip, inside longer ones
        ("2061-03-12", "2061-03-19"),  # between short trips; only long ones span it
        ("2061-03-03", "2061-03-05"),  # touches the last day of one trip and the first of another
        ("2059-05-01", "2059-05-01"),  # the first day of the longest trip, and nothing else
        ("2061-04-19", "2061-05-30"),  # from the last day of the latest trip on
        ("2061-04-20", "2061-05-30"),  # after every trip
        ("2060-01-01", "2061-12-31"),  # everything
        ("2061-03-20", "2061-03-01"),  # from after to: nothing
    ]
    for trip_from, trip_to in windows:
        low, high = dt.date.fromisoformat(trip_from), dt.date.fromisoformat(trip_to)
        expected = [s["id"] for s in newest_first if s["end"] >= low and s["start"] <= high]
        listed = list_all(client, tenant, f"trip_from={trip_from}&trip_to={trip_to}", limit=2)
        assert [i["id"] for i in listed] == expected, (trip_from, trip_to)
        scored = list_all(client, tenant, f"trip_from={trip_from}&trip_to={trip_to}&status=scored", limit=3)
        assert [i["id"] for i in scored] == [
            s["id"] for s in newest_first if s["end"] >= low and s["start"] <= high and s["status"] == "scored"
        ]
    # One bound alone: trips still running on a day, trips that had started by a day.
    for day in ("2059-04-30", "2059-05-01", "2061-03-10", "2061-03-19", "2061-04-18", "2061-04-19"):
        on = dt.date.fromisoformat(day)
        until_day = list_all(client, tenant, f"trip_to={day}", limit=3)
        assert [i["id"] for i in until_day] == [s["id"] for s in newest_first if s["start"] <= on], day
        from_day = list_all(client, tenant, f"trip_from={day}", limit=3)
        assert [i["id"] for i in from_day] == [s["id"] for s in newest_first if s["end"] >= on], day
    # Creation bounds narrow the periods read.
    since, until = stored[3]["created_at"], stored[8]["created_at"]
    bounded = list_all(
        client,
        tenant,
        f"trip_from=2060-01-01&trip_to=2061-12-31&created_from={since.isoformat().replace('+00:00', 'Z')}"
        f"&created_to={until.isoformat().replace('+00:00', 'Z')}",
    )
    assert [i["id"] for i in bounded] == [s["id"] for s in newest_first if since <= s["created_at"] <= until]
    # Out-of-scope trips (Iceland) are among the window's and are left out by the status filter.
    assert any(s["status"] == "out_of_scope" for s in stored)
    # With a traveller the window is read through the traveller's index: the same answer.
    one = list_all(client, tenant, "traveler_reference=W-6&trip_from=2060-01-01&trip_to=2060-01-02")
    assert [i["id"] for i in one] == [stored[6]["id"]]


def test_trip_windows_are_right_whether_trips_were_assessed_before_or_after_they_started(
    client: TestClient, tenant: Any, sessions: Any
) -> None:
    """The window's first look skips every creation period after its last day in one probe, trusting that
    trips are assessed before they start; trips assessed later (while running, or after they ended) must
    still be found, through the search by ever wider ranges and halves. Creation dates here come in
    bursts with gaps of months between them, before and after the trips."""
    rng = random.Random(20261130)
    stored = []
    for n in range(24):
        first = dt.date(2061, 1, 1) + dt.timedelta(days=rng.randrange(365))
        last = first + dt.timedelta(days=rng.choice([0, 1, 4, 20, 90, 400]))
        legs = [{"country": rng.choice(["CN", "IS"]), "arrive": first.isoformat(), "depart": last.isoformat()}]
        created = post(client, tenant, trip(f"A-{n}", legs=legs))
        assert created.status_code == 201, created.text
        stored.append({"id": created.json()["id"], "start": first, "end": last, "status": created.json()["status"]})
    bursts = [dt.datetime(2060, 3, 1, tzinfo=dt.UTC), dt.datetime(2061, 6, 1, tzinfo=dt.UTC)]
    bursts.append(dt.datetime(2063, 2, 1, tzinfo=dt.UTC))
    for n, row in enumerate(stored):
        row["created_at"] = bursts[n % 3] + dt.timedelta(days=rng.randrange(40), minutes=n)
    backdate(sessions, stored)
    assert any(row["created_at"].date() > row["end"] for row in stored)
    assert any(row["start"] <= row["created_at"].date() <= row["end"] for row in stored)
    assert any(row["created_at"].date() < row["start"] for row in stored)
    newest_first = sorted(stored, key=lambda row: (row["created_at"], row["id"]), reverse=True)
    for _ in range(12):
        low = dt.date(2060, 12, 1) + dt.timedelta(days=rng.randrange(420))
        high = low + dt.timedelta(days=rng.choice([0, 6, 30]))
        expected = [s["id"] for s in newest_first if s["end"] >= low and s["start"] <= high]
        listed = list_all(client, tenant, f"trip_from={low}&trip_to={high}", limit=2)
        assert [i["id"] for i in listed] == expected, (low, high)
        scored = list_all(client, tenant, f"trip_from={low}&trip_to={high}&status=scored", limit=3)
        assert [i["id"] for i in scored] == [
            i for i in expected if next(s for s in stored if s["id"] == i)["status"] == "scored"
        ]
        until_day = list_all(client, tenant, f"trip_to={high}", limit=4)
        assert [i["id"] for i in until_day] == [s["id"] for s in newest_first if s["start"] <= high], high


def test_changed_since_lists_new_and_re_scored_assessments_in_the_list_order(
    client: TestClient, tenant: Any, sessions: Any
) -> None:
    ids = [post(client, tenant, trip(f"C-{n}")).json()["id"] for n in range(3)]
    since = dt.datetime.now(dt.UTC)
    ids += [post(client, tenant, trip(f"C-{n}")).json()["id"] for n in range(3, 6)]
    # Two assessments created before `since` were re-scored after it (as re-scoring moves `changed_at`).
    with sessions() as session:
        session.execute(
            update(Assessment)
            .where(Assessment.id.in_([ids[0], ids[2]]))
            .values(changed_at=since + dt.timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )
        session.commit()
    query = f"changed_since={since.isoformat().replace('+00:00', 'Z')}"
    expected = [ids[5], ids[4], ids[3], ids[2], ids[0]]
    for limit in (1, 2, 3, 5, 20):
        assert [i["id"] for i in list_all(client, tenant, query, limit=limit)] == expected, limit
    # Other filters apply to both parts.
    assert [i["id"] for i in list_all(client, tenant, f"{query}&traveler_reference=C-2")] == [ids[2]]
    assert [i["id"] for i in list_all(client, tenant, f"{query}&traveler_reference=C-1")] == []
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    assert list_all(client, tenant, f"changed_since={later}") == []
