"""Scoring with the bundled rules, reference data and active model."""

import math
from typing import Any

import numpy as np
import pytest

from models.assess import Assessor
from risk_rules.forms import AssessmentRequest
from risk_rules.reference import load_bundled_reference

ASSESSOR = Assessor.load()
REFERENCE = load_bundled_reference()


def request(traveler: dict[str, Any] | None = None, legs: list[dict[str, Any]] | None = None, **trip: Any):
    return AssessmentRequest.model_validate(
        {
            "traveler": {"citizenships": ["GB"], **(traveler or {})},
            "trip": {"legs": legs or [{"country": "CN", "arrive": "2024-03-01", "depart": "2024-03-10"}], **trip},
        }
    )


def canadian_think_tank_trip(arrive: str, depart: str) -> AssessmentRequest:
    return request(
        {
            "citizenships": ["CA"],
            "occupation": "former_diplomat",
            "employer": {"name": "International Crisis Group", "sector": "think_tank"},
        },
        [{"country": "CN", "region": "Beijing", "arrive": arrive, "depart": depart}],
        purpose="research",
    )


def test_acceptance_canadian_former_diplomat_in_beijing() -> None:
    during = ASSESSOR.assess(canadian_think_tank_trip("2018-12-05", "2018-12-19"), REFERENCE)
    assert during.score.band in ("high", "severe")
    top_three = [f.id for f in during.factors[:3]]
    assert "home_country_extradition_case" in top_three
    extradition = next(f for f in during.factors if f.id == "home_country_extradition_case")
    assert "Meng Wanzhou" in extradition.reason
    assert any(record.startswith("situation:") for record in extradition.derived_from)
    # The sources name a former diplomat among the hostages: the factor counts, it is not pinned to 0.
    assert next(f for f in during.factors if f.id == "former_official").contribution > 0
    assert during.review.required and during.review.state == "pending"
    after = ASSESSOR.assess(canadian_think_tank_trip("2022-06-06", "2022-06-19"), REFERENCE)
    assert during.score.probability >= 3 * after.score.probability
    assert "home_country_extradition_case" not in {f.id for f in after.factors}


def test_score_is_consistent() -> None:
    result = ASSESSOR.assess(canadian_think_tank_trip("2018-12-05", "2018-12-19"), REFERENCE)
    score = result.score
    lo, hi = score.interval
    assert 0 < lo <= score.probability <= hi < 1
    assert score.log_odds == pytest.approx(math.log(score.probability / (1 - score.probability)), abs=1e-3)
    assert result.baseline.probability < score.probability
    contributions = [f.contribution for f in result.factors]
    assert contributions == sorted(contributions, reverse=True)
    for factor in result.factors:
        assert factor.odds_multiplier == pytest.approx(math.exp(factor.contribution), rel=1e-5)
        assert factor.contribution == pytest.approx(factor.coefficient * factor.value, abs=1e-5)
        assert factor.evidence
    assert result.versions.model == ASSESSOR.model.version
    assert result.versions.rules == ASSESSOR.rules.version
    assert result.versions.reference_data == REFERENCE.version
    assert result.mitigations


TOGGLES = [
    {"public_profile": {"criticizes_destination_government": True}},
    {"public_profile": {"activism": ["democracy"]}},
    {"affiliations": ["falun_gong"]},
    {"family_ties": [{"relation": "parent", "sought_by_destination_authorities": True}]},
    {"relatives_in_destination": True},
    {"legal_exposure": {"criminal_investigation": True}},
    {"legal_exposure": {"tax_dispute": True}},
    {"birth_country": "CN"},
    {"occupation": "journalist"},
]
BASES = [
    {"citizenships": ["GB"]},
    {"citizenships": ["CA"], "occupation": "engineer"},
    {"citizenships": ["US", "CN"], "relatives_in_destination": False},
]
LEGS = [
    [{"country": "CN", "arrive": "2019-01-01", "depart": "2019-01-20"}],
    [
        {"country": "TH", "arrive": "2016-02-01", "depart": "2016-02-02", "transit": True},
        {"country": "HK", "arrive": "2016-02-02", "depart": "2016-03-30"},
    ],
]


@pytest.mark.parametrize("legs", LEGS)
@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("toggle", TOGGLES)
def test_adding_a_risk_factor_never_lowers_the_probability(base, toggle, legs) -> None:
    before = ASSESSOR.assess(request(base, legs), REFERENCE)
    after = ASSESSOR.assess(request({**base, **toggle}, legs), REFERENCE)
    assert after.score.probability >= before.score.probability
    assert {f.id for f in before.factors} <= {f.id for f in after.factors}


def test_legs_combine_and_unprofiled_legs_are_not_assessed() -> None:
    legs = [
        {"country": "TH", "arrive": "2017-01-01", "depart": "2017-01-02", "transit": True},
        {"country": "CN", "arrive": "2017-01-02", "depart": "2017-01-10"},
        {"country": "NZ", "arrive": "2017-01-10", "depart": "2017-01-12"},
    ]
    traveler = {"citizenships": ["CN"], "legal_exposure": {"sought_by_destination_authorities": True}}
    result = ASSESSOR.assess(request(traveler, legs), REFERENCE)
    by_country = {leg.country: leg for leg in result.legs}
    assert by_country["NZ"].assessed is False and by_country["NZ"].probability is None
    assert by_country["TH"].assessed and by_country["CN"].assessed
    p = [by_country["TH"].probability, by_country["CN"].probability]
    assert result.score.probability == pytest.approx(1 - (1 - p[0]) * (1 - p[1]), rel=1e-5)
    assert "third_country_forced_returns" in {f.id for f in result.factors}
    # A national neither sought nor targeted has the Thai leg assessed, but no forced-return factor.
    national = ASSESSOR.assess(request({"citizenships": ["CN"]}, legs), REFERENCE)
    assert next(leg for leg in national.legs if leg.country == "TH").assessed
    assert "third_country_forced_returns" not in {f.id for f in national.factors}


def test_trip_without_a_covered_leg_is_out_of_scope() -> None:
    result = ASSESSOR.assess(
        request(legs=[{"country": "NZ", "arrive": "2024-01-01", "depart": "2024-01-05"}]), REFERENCE
    )
    assert result.status == "out_of_scope"
    assert result.score is None and result.baseline is None and result.factors == []
    assert {"CN", "HK", "MO"} <= set(result.covered_destinations)
    assert result.review.required is False


def test_low_risk_trip_needs_no_review() -> None:
    result = ASSESSOR.assess(request(), REFERENCE)
    assert result.status == "scored"
    assert result.score.band in ("low", "elevated")
    assert result.review.required is False


def test_batch_matches_single_assessments() -> None:
    roster = [
        canadian_think_tank_trip("2018-12-05", "2018-12-19"),
        request(legs=[{"country": "NZ", "arrive": "2024-01-01", "depart": "2024-01-05"}]),
        request({"citizenships": ["CN"]}, LEGS[1]),
        request(),
    ]
    batch = ASSESSOR.assess_many(roster, REFERENCE)
    for i, item in enumerate(roster):
        single = ASSESSOR.assess(item, REFERENCE)
        if single.score is None:
            assert np.isnan(batch.probability[i]) and batch.bands[i] is None
            continue
        assert batch.probability[i] == pytest.approx(single.score.probability, rel=1e-6, abs=1e-8)
        assert batch.lower[i] == pytest.approx(single.score.interval[0], rel=1e-5, abs=1e-8)
        assert batch.upper[i] == pytest.approx(single.score.interval[1], rel=1e-5, abs=1e-8)
        assert batch.baseline[i] == pytest.approx(single.baseline.probability, rel=1e-5, abs=1e-8)
        assert batch.bands[i] == single.score.band
        expected_top = [f.id for f in single.factors if f.contribution > 0][:3]
        assert batch.top_factors[i] == expected_top


def test_roster_bodies_match_single_assessments() -> None:
    from models.corpus import Population, generate_controls

    roster = [
        canadian_think_tank_trip("2018-12-05", "2018-12-19"),
        request(legs=[{"country": "NZ", "arrive": "2024-01-01", "depart": "2024-01-05"}]),
        request({"citizenships": ["CN"]}, LEGS[1]),
        request(),
        *generate_controls(Population.load(), REFERENCE, trips=300, seed=11),
    ]
    bodies = ASSESSOR.assess_bodies(roster, REFERENCE)
    assert len(bodies) == len(roster)
    for item, body in zip(roster, bodies, strict=True):
        single = ASSESSOR.assess_body(item, REFERENCE)
        if single["score"] is None:
            assert body == single
            continue
        assert body["score"]["probability"] == pytest.approx(single["score"]["probability"], rel=1e-9, abs=1e-12)
        assert body["score"]["interval"] == pytest.approx(single["score"]["interval"], rel=1e-9, abs=1e-12)
        rest = ("status", "factors", "mitigations", "review", "versions", "possible_employer_matches")
        assert {k: body[k] for k in rest} == {k: single[k] for k in rest}
        for leg, single_leg in zip(body["legs"], single["legs"], strict=True):
            assert {**leg, "probability": None} == {**single_leg, "probability": None}
            if single_leg["probability"] is None:
                assert leg["probability"] is None
            else:
                assert leg["probability"] == pytest.approx(single_leg["probability"], rel=1e-9, abs=1e-12)
    assert ASSESSOR.assess_bodies([], REFERENCE) == []


def test_model_card_and_factors() -> None:
    card = ASSESSOR.model_card()
    assert card["version"] == ASSESSOR.model.version
    assert card["data"]["incidents"] > 10
    assert card["base_rate"]["value"] > 0 and card["base_rate"]["provenance"]
    factors = ASSESSOR.factors()
    assert [f["id"] for f in factors] == ASSESSOR.rules.ids
    for factor in factors:
        lo, hi = factor["interval"]
        assert 0 < lo <= hi
        assert factor["odds_multiplier"] == pytest.approx(math.exp(factor["coefficient"]), rel=1e-5)


def test_employer_name_matching_and_near_matches() -> None:
    legs = [{"country": "CN", "arrive": "2023-06-01", "depart": "2023-06-10"}]
    exact = ASSESSOR.assess(request({"employer": {"name": "NOMURA holdings, inc"}}, legs), REFERENCE)
    assert "employer_dispute" in {f.id for f in exact.factors}
    assert exact.possible_employer_matches == []
    typo = ASSESSOR.assess(request({"employer": {"name": "Nomurra Holdings"}}, legs), REFERENCE)
    assert "employer_dispute" not in {f.id for f in typo.factors}
    (match,) = typo.possible_employer_matches
    assert match.dispute_id == "nomura-2023" and 85 <= match.similarity < 100
    unrelated = ASSESSOR.assess(request({"employer": {"name": "Acme Widgets"}}, legs), REFERENCE)
    assert unrelated.possible_employer_matches == []


def test_third_country_trip_of_a_targeted_traveller_is_scored() -> None:
    """A diaspora activist born in the destination, travelling only to a country that hands such people
    back, is scored; a tourist on the same trip is out of scope."""
    legs = [{"country": "KZ", "arrive": "2024-05-01", "depart": "2024-05-08"}]
    activist = ASSESSOR.assess(
        request(
            {"citizenships": ["DE"], "birth_country": "CN", "public_profile": {"activism": ["ethnic_minority_rights"]}},
            legs,
        ),
        REFERENCE,
    )
    assert activist.status == "scored"
    assert {"third_country_forced_returns", "documented_activism"} <= {f.id for f in activist.factors}
    critic = ASSESSOR.assess(
        request({"citizenships": ["DE"], "public_profile": {"criticizes_destination_government": True}}, legs),
        REFERENCE,
    )
    assert critic.status == "scored"
    tourist = ASSESSOR.assess(request({"citizenships": ["DE"]}, legs), REFERENCE)
    assert tourist.status == "out_of_scope"


# ------------------------------------------------------------------------------------------------
# Not given is not "no"

STATED = {
    "citizenships": ["GB"],
    "birth_country": "GB",
    "former_citizenships": [],
    "occupation": "engineer",
    "employer": {"name": "Acme Engineering", "sector": "technology"},
    "public_profile": {"criticizes_destination_government": False, "activism": []},
    "affiliations": [],
    "family_ties": [],
    "relatives_in_destination": False,
    "legal_exposure": {
        "civil_or_commercial_dispute": False,
        "tax_dispute": False,
        "criminal_investigation": False,
        "sought_by_destination_authorities": False,
    },
}
STATED_TRIP = {"purpose": "business", "entry_document": "GB"}


def test_a_request_that_states_everything_has_nothing_not_given() -> None:
    result = ASSESSOR.assess(request(STATED, **STATED_TRIP), REFERENCE)
    assert result.not_given == []
    assert result.score.not_given_log_odds == 0


def test_a_field_left_out_is_scored_at_its_expectation_and_listed() -> None:
    """Leaving the occupation out neither counts as "no occupation" nor as any one occupation: the score
    lies within the range the occupations give, and that range is exactly what giving each would give."""
    traveler = {k: v for k, v in STATED.items() if k != "occupation"}
    result = ASSESSOR.assess(request(traveler, **STATED_TRIP), REFERENCE)
    assert [n.field for n in result.not_given] == ["traveler.occupation"]
    entry = result.not_given[0]
    assert {"business_executive", "journalism", "religious_work"} <= set(entry.factors)
    given = [
        ASSESSOR.assess(request({**traveler, "occupation": o}, **STATED_TRIP), REFERENCE).score.probability
        for o in ("business_executive", "engineer", "journalist", "religious_worker", "former_diplomat", "other")
    ]
    lo, hi = entry.probability_range
    assert lo == pytest.approx(min(given), rel=1e-5) and hi >= max(given) * (1 - 1e-5)
    assert lo < result.score.probability < hi
    assert result.score.not_given_log_odds > 0
    # The factors an unknown field might fire are not listed as fired.
    assert "business_executive" not in {f.id for f in result.factors}
    # The log-odds add up: baseline, the factors listed, and the fields not given at their expectation.
    baseline = math.log(result.baseline.probability / (1 - result.baseline.probability))
    total = baseline + sum(f.contribution for f in result.factors) + result.score.not_given_log_odds
    assert total == pytest.approx(result.score.log_odds, abs=1e-3)


def test_a_factor_decided_by_what_is_given_fires_though_other_fields_are_left_out() -> None:
    """A journalist's journalism factor fires whatever the sector and purpose left out would be."""
    result = ASSESSOR.assess(request({"citizenships": ["GB"], "occupation": "journalist"}), REFERENCE)
    assert "journalism" in {f.id for f in result.factors}
    assert "journalism" not in {factor for n in result.not_given for factor in n.factors}


def test_bands_are_relative_to_the_same_itinerary_for_any_number_of_legs() -> None:
    """A traveller with no factor is low whether the trip has one covered leg or three."""
    legs = [
        {"country": "CN", "arrive": "2024-03-01", "depart": "2024-03-05"},
        {"country": "HK", "arrive": "2024-03-05", "depart": "2024-03-08"},
        {"country": "MO", "arrive": "2024-03-08", "depart": "2024-03-10"},
    ]
    for count in (1, 2, 3):
        result = ASSESSOR.assess(request(STATED, legs[:count], **STATED_TRIP), REFERENCE)
        assert result.factors == [] and result.score.band == "low", count
        assert result.score.probability == pytest.approx(result.baseline.probability, rel=1e-6)
        thresholds = result.baseline.band_thresholds
        odds = result.baseline.probability / (1 - result.baseline.probability)
        # (the baseline is reported to 8 decimals, about three significant digits here)
        assert thresholds.high / (1 - thresholds.high) == pytest.approx(10 * odds, rel=2e-3)
    # The same factors on three legs are banded against three legs' baseline, as on one leg.
    stated = {**STATED, "public_profile": {"criticizes_destination_government": True, "activism": ["democracy"]}}
    one = ASSESSOR.assess(request(stated, legs[:1], **STATED_TRIP), REFERENCE)
    three = ASSESSOR.assess(request(stated, legs, **STATED_TRIP), REFERENCE)
    assert one.score.band == three.score.band


def test_a_taiwanese_traveller_is_one_the_destination_claims() -> None:
    """The nationality factor's passage names Taiwan residents: a Taiwanese citizen is claimed."""
    result = ASSESSOR.assess(request({**STATED, "citizenships": ["TW"], "birth_country": "TW"}), REFERENCE)
    assert "destination_nationality" in {f.id for f in result.factors}
    passage = " ".join(e.quote for e in next(f for f in result.factors if f.id == "destination_nationality").evidence)
    assert "Taiwan residents" in passage
