"""Facts per leg: nationality, documents, family, and situations on the leg's own dates."""

from typing import Any

from risk_rules.facts import DESTINATION, THIRD_COUNTRY, UNASSESSED, leg_facts
from risk_rules.forms import AssessmentRequest
from risk_rules.reference import load_bundled_reference, normalise_organisation

REFERENCE = load_bundled_reference()


def facts(traveler: dict[str, Any], *legs: dict[str, Any], **trip: Any):
    request = AssessmentRequest.model_validate({"traveler": traveler, "trip": {"legs": list(legs), **trip}})
    return leg_facts(request, REFERENCE)


def leg(country: str, arrive: str = "2024-03-01", depart: str = "2024-03-10", **extra: Any) -> dict[str, Any]:
    return {"country": country, "arrive": arrive, "depart": depart, **extra}


def test_hong_kong_and_macau_are_prc_nationality() -> None:
    for citizenship in ("HK", "MO", "CN"):
        for destination in ("CN", "HK", "MO"):
            (f,) = facts({"citizenships": ["CA", citizenship]}, leg(destination))
            assert f.values["claims_as_national"] and f.values["dual_national"], (citizenship, destination)
    (f,) = facts({"citizenships": ["CA"]}, leg("CN"))
    assert not f.values["claims_as_national"]


def test_sole_national_is_not_dual() -> None:
    (f,) = facts({"citizenships": ["CN"]}, leg("CN"))
    assert f.values["claims_as_national"] and not f.values["dual_national"]


def test_birth_and_former_citizenship() -> None:
    (f,) = facts({"citizenships": ["US"], "birth_country": "HK", "former_citizenships": ["CN"]}, leg("CN"))
    assert f.values["born_in_destination"] and f.values["former_national"]


def test_entry_document() -> None:
    (permit,) = facts({"citizenships": ["CA"]}, leg("CN"), entry_document="destination_travel_permit")
    (home,) = facts({"citizenships": ["CA"]}, leg("CN"), entry_document="CA")
    (own,) = facts({"citizenships": ["CA", "CN"]}, leg("CN"), entry_document="CN")
    assert permit.values["entry_on_destination_document"]
    assert not home.values["entry_on_destination_document"]
    assert own.values["entry_on_destination_document"]


def test_family_ties() -> None:
    (f,) = facts(
        {
            "citizenships": ["US"],
            "family_ties": [
                {"relation": "parent", "sought_by_destination_authorities": True},
                {"relation": "sibling", "lives_in_destination": True},
            ],
        },
        leg("CN"),
    )
    assert f.values["family_member_sought"] and f.values["sought_relations"] == "parent"
    assert f.values["relatives_in_destination"]


def test_leg_kinds() -> None:
    kinds = [f.kind for f in facts({"citizenships": ["CN"]}, leg("TH"), leg("CN"), leg("NZ"))]
    assert kinds == [THIRD_COUNTRY, DESTINATION, UNASSESSED]


def test_extradition_case_before_during_after() -> None:
    def active(arrive: str, depart: str) -> bool:
        (f,) = facts({"citizenships": ["CA"]}, leg("CN", arrive, depart))
        return f.values["extradition_case_active"]

    assert not active("2018-06-01", "2018-06-14")
    assert active("2018-12-05", "2018-12-20")
    assert active("2020-01-01", "2020-01-05")
    assert not active("2022-06-01", "2022-06-14")


def test_situations_follow_the_travellers_citizenships() -> None:
    (canadian,) = facts({"citizenships": ["CA"]}, leg("CN", "2019-01-01", "2019-01-10"))
    (british,) = facts({"citizenships": ["GB"]}, leg("CN", "2019-01-01", "2019-01-10"))
    (dual,) = facts({"citizenships": ["GB", "CA"]}, leg("CN", "2019-01-01", "2019-01-10"))
    assert canadian.values["extradition_case_active"]
    assert not british.values["extradition_case_active"]
    assert dual.values["extradition_case_active"]
    assert any(r.startswith("situation:") for r in canadian.records["extradition_case_active"])


def test_hong_kong_legs_see_beijing_situations() -> None:
    (f,) = facts({"citizenships": ["CA"]}, leg("HK", "2019-01-01", "2019-01-10"))
    assert f.values["extradition_case_active"]


def test_employer_dispute_matches_on_normalised_name_and_dates() -> None:
    (during,) = facts(
        {"citizenships": ["AU"], "employer": {"name": "RIO TINTO Ltd."}}, leg("CN", "2009-07-01", "2009-07-10")
    )
    (later,) = facts({"citizenships": ["AU"], "employer": {"name": "Rio Tinto"}}, leg("CN", "2024-07-01", "2024-07-10"))
    assert during.values["employer_dispute_active"]
    assert any(r.startswith("employer_dispute:") for r in during.records["employer_dispute_active"])
    assert not later.values["employer_dispute_active"]


def test_third_country_facts() -> None:
    (thailand,) = facts({"citizenships": ["CN"]}, leg("TH", "2017-01-01", "2017-01-05"))
    assert thailand.values["third_country_forced_returns"] and thailand.values["claimed_sought_or_targeted"]
    (before,) = facts({"citizenships": ["CN"]}, leg("TH", "2005-01-01", "2005-01-05"))
    assert not before.values["third_country_forced_returns"]
    (tourist,) = facts({"citizenships": ["GB"]}, leg("TH", "2017-01-01", "2017-01-05"))
    assert not tourist.values["claimed_sought_or_targeted"]


def test_stay_days_count_both_ends() -> None:
    (f,) = facts({"citizenships": ["GB"]}, leg("CN", "2024-03-01", "2024-03-01"))
    assert f.values["stay_days"] == 1


def test_organisation_names_normalise() -> None:
    assert normalise_organisation("Acme Holdings Ltd.") == normalise_organisation("ACME holdings") == "acme"
    assert normalise_organisation("Nestlé S.A.") == "nestle"
    assert normalise_organisation("Société Générale  K.K.") == "societe generale"
    assert normalise_organisation("Acmee Holdings") != normalise_organisation("Acme Holdings")
