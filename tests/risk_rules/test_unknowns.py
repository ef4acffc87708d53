"""The expectation of a factor that reads a field the request leaves out."""

from __future__ import annotations

import pytest

import risk_rules.unknowns as unknowns
from models.corpus import Population
from risk_rules.facts import leg_facts
from risk_rules.forms import AssessmentRequest, Occupation
from risk_rules.reference import load_bundled_reference
from risk_rules.ruleset import bundled_rules
from risk_rules.unknowns import Expectations, neutral_shares

RULES = bundled_rules()
REFERENCE = load_bundled_reference()
SHARES = Population.load().shares()


def _request(traveler: dict, **trip: object) -> AssessmentRequest:
    legs = [{"country": "CN", "arrive": "2019-03-01", "depart": "2019-03-10"}]
    return AssessmentRequest.model_validate(
        {"traveler": {"citizenships": ["US"], **traveler}, "trip": {"legs": legs, **trip}}
    )


def test_a_left_out_occupation_is_each_occupation_in_proportion() -> None:
    """The expectation is the population-weighted mean of the values giving each occupation gives."""
    stated = {"employer": {"name": "Acme", "sector": "technology"}}
    facts = leg_facts(_request(stated, purpose="business"), REFERENCE)[0]
    assert facts.unknown >= {"occupation"}
    expected = Expectations(RULES, SHARES).values(facts)
    weights = dict(SHARES.occupation)
    total = sum(weights.values())
    for rule_id in ("business_executive", "journalism", "research_on_destination", "former_official"):
        j = RULES.ids.index(rule_id)
        mean = 0.0
        for occupation in Occupation:
            given = leg_facts(_request({**stated, "occupation": occupation.value}, purpose="business"), REFERENCE)[0]
            mean += weights.get(occupation.value, 0.0) / total * RULES.rules[j].evaluate(given)
        assert expected[j] == pytest.approx(mean, abs=1e-12), rule_id


def test_merging_the_values_a_rule_cannot_tell_apart_changes_nothing(monkeypatch) -> None:
    """Enumerating occupations a rule names no literal for once gives the same expectation, range and
    per-value expectations as enumerating each."""
    facts = leg_facts(_request({}), REFERENCE)[0]
    merged, groups = Expectations(RULES, SHARES).details(facts)
    monkeypatch.setattr(unknowns, "_literals", lambda rule: None)
    full, _ = Expectations(RULES, SHARES).details(facts)
    assert len(groups) > 10
    for a, b in zip(merged, full, strict=True):
        if a is None:
            assert b is None
            continue
        assert a.expected == pytest.approx(b.expected, abs=1e-12)
        assert (a.low, a.high) == (b.low, b.high)
        assert [names for names, _ in a.conditional] == [names for names, _ in b.conditional]
        for (_, x), (_, y) in zip(a.conditional, b.conditional, strict=True):
            assert x == pytest.approx(y, abs=1e-12)


def test_neutral_shares_read_a_left_out_field_as_absent() -> None:
    """How models trained before unknowns were modelled scored: every left-out field absent."""
    facts = leg_facts(_request({}), REFERENCE)[0]
    assert Expectations(RULES, neutral_shares()).values(facts) == [rule.evaluate(facts) for rule in RULES.rules]


def test_plain_values_refuse_a_leg_with_fields_left_out() -> None:
    facts = leg_facts(_request({}), REFERENCE)[0]
    with pytest.raises(ValueError, match="leaves out"):
        RULES.values(facts)
