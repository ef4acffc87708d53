"""Reference data: validation of the set, date logic, and employer-name matching."""

import datetime as dt

import pytest

from risk_rules.errors import ReferenceDataError
from risk_rules.reference import (
    EmployerDispute,
    OrganisationNameIndex,
    load_bundled_reference,
    near_matches,
    normalise_organisation,
    reference_from_document,
)

BASE = {
    "destinations": [
        {
            "code": "CN",
            "name": "PRC",
            "nationality_group": ["CN"],
            "situations_from": ["CN"],
            "recognises_dual_nationality": False,
        }
    ],
    "situations": [
        {
            "id": "s1",
            "home_country": "CA",
            "destination": "CN",
            "kind": "trade_dispute",
            "title": "t",
            "started_on": "2020-01-01",
            "ended_on": "2020-12-31",
            "severity": "low",
            "sources": [{"title": "an analyst's note", "url": "https://example.org", "date": "2020-01-02"}],
        }
    ],
}


def dispute(name: str, dispute_id: str = "d1", ended: dt.date | None = None) -> EmployerDispute:
    return EmployerDispute(dispute_id, name, (), "CN", "commercial_dispute", dt.date(2020, 1, 1), ended)


def test_bundled_set_loads_with_a_content_version() -> None:
    reference = load_bundled_reference()
    assert reference.version.startswith("ref-")
    assert {"CN", "HK", "MO"} <= set(reference.covered_destinations())
    assert reference.situations and reference.employer_disputes


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ended_on": "2019-01-01"}, "ended_on is before started_on"),
        ({"home_country": "CN"}, "home_country equals destination"),
        ({"kind": "war"}, "kind"),
        ({"title": ""}, "title"),
        ({"sources": [{"source": "zhang-beijings-new-hostage-diplomacy"}]}, "needs its quote"),
    ],
)
def test_invalid_records_are_refused(change, message) -> None:
    document = {**BASE, "situations": [{**BASE["situations"][0], **change}]}
    with pytest.raises(ReferenceDataError, match=message):
        reference_from_document(document)


def test_duplicate_ids_are_refused() -> None:
    document = {**BASE, "situations": BASE["situations"] * 2}
    with pytest.raises(ReferenceDataError, match="duplicate situation id 's1'"):
        reference_from_document(document)


def test_situations_active_overlap_the_dates() -> None:
    reference = reference_from_document(BASE)
    assert reference.situations_active("CA", "CN", dt.date(2020, 12, 31), dt.date(2021, 1, 5))
    assert not reference.situations_active("CA", "CN", dt.date(2021, 1, 1), dt.date(2021, 1, 5))
    assert not reference.situations_active("US", "CN", dt.date(2020, 6, 1), dt.date(2020, 6, 5))


def test_near_matches_report_typos_and_longer_names_but_not_equal_ones() -> None:
    acme = dispute("Acme Holdings Ltd.")
    entries = [(normalise_organisation(acme.name), acme)]
    day = dt.date(2021, 1, 1)
    assert near_matches("ACME holdings", entries, day, day) == []  # equal after normalisation: a factor
    ((found, score),) = near_matches("Acmee Holdings", entries, day, day)
    assert found is acme and 85 <= score < 100
    assert near_matches("Acme Widgets Asia", entries, day, day)  # a longer form of the name
    assert near_matches("Zenith Partners", entries, day, day) == []
    ended = dispute("Acme Holdings", ended=dt.date(2020, 6, 1))
    assert near_matches("Acmee", [("acme", ended)], day, day) == []


@pytest.mark.parametrize("query", ["acmee", "xcme", "acne", "acme widgets"])
def test_name_index_finds_single_typos_and_longer_forms(query: str) -> None:
    acme = dispute("Acme")
    index = OrganisationNameIndex([("acme", acme), ("zenith", dispute("Zenith", "d2"))])
    assert ("acme", acme) in index.candidates(query)
    assert all(d.id != "d2" for _, d in index.candidates(query))


def test_a_changed_snapshot_does_not_answer_from_the_old_ones_look_ups() -> None:
    """Look-ups a snapshot caches (claimed nationalities, employer near matches, the share of active
    disputes) answer for the new records after a change, and the old snapshot keeps answering for its own."""
    from dataclasses import replace

    reference = load_bundled_reference()
    day = dt.date(2024, 3, 1)
    assert "TW" in reference.claimed_nationalities()
    assert reference.employer_near_matches("Acmee Holdings", "CN", day, day) == []
    share = reference.employer_disputes_active_share(("CN",), day, day)
    china = replace(reference.destinations["CN"], nationality_group=frozenset({"CN"}))
    hk = replace(reference.destinations["HK"], nationality_group=frozenset({"HK"}))
    mo = replace(reference.destinations["MO"], nationality_group=frozenset({"MO"}))
    acme = dispute("Acme Holdings Ltd.", "acme-test")
    changed = reference.with_records("v2", destinations=[china, hk, mo], employer_disputes=[acme])
    assert "TW" not in changed.claimed_nationalities()
    assert [d.id for d, _ in changed.employer_near_matches("Acmee Holdings", "CN", day, day)] == ["acme-test"]
    assert changed.employer_disputes_active_share(("CN",), day, day) != share
    assert "TW" in reference.claimed_nationalities()
    assert reference.employer_near_matches("Acmee Holdings", "CN", day, day) == []
