"""The bundled rule set: its examples, the factors it must cover, and refusal of broken rule files."""

from pathlib import Path

import pytest
import yaml

from risk_rules.errors import RuleSetError
from risk_rules.facts import leg_facts
from risk_rules.reference import load_bundled_reference
from risk_rules.ruleset import bundled_rules, bundled_rules_dir, load_rules, load_rules_from_texts
from risk_rules.unknowns import Expectations, neutral_shares

RULES = bundled_rules()
EXAMPLES = [(rule, example) for rule in RULES.rules for example in rule.examples]

REQUIRED_FACTORS = {
    "destination_nationality",
    "born_or_former_national",
    "destination_travel_permit",
    "family_member_sought",
    "relatives_in_destination",
    "personally_sought",
    "legal_dispute_in_destination",
    "employer_dispute",
    "research_on_destination",
    "former_official",
    "due_diligence_work",
    "journalism",
    "religious_work",
    "finance_work",
    "public_criticism",
    "documented_activism",
    "targeted_affiliation",
    "home_country_extradition_case",
    "home_country_dispute",
    "compatriot_detentions",
    "third_country_forced_returns",
    "third_country_extradition_treaty",
    "hong_kong_national_security_law",
    "length_of_stay",
}


def test_required_factors_are_covered() -> None:
    assert set(RULES.ids) >= REQUIRED_FACTORS


@pytest.mark.parametrize(("rule", "example"), EXAMPLES, ids=[f"{r.id}:{e.name}" for r, e in EXAMPLES])
def test_rule_example(rule, example) -> None:
    """Every example states what its rule reads: its value does not depend on a field it leaves out."""
    expectations = Expectations(RULES, neutral_shares())
    index = RULES.ids.index(rule.id)
    values = []
    for facts in leg_facts(example.request, load_bundled_reference()):
        detail = expectations.details(facts)[0][index]
        assert detail is None or detail.judged, f"the example leaves out a field the rule reads: {facts.unknown}"
        values.append(rule.evaluate(facts) if detail is None else detail.low)
    fired = max(values) > 0
    assert fired is example.fires
    if example.value is not None and example.fires:
        assert max(values) == pytest.approx(example.value)


def test_every_rule_has_examples_both_ways() -> None:
    for rule in RULES.rules:
        outcomes = {example.fires for example in rule.examples}
        assert outcomes == {True, False}, rule.id


def test_version_is_a_content_hash() -> None:
    files = [(p.name, p.read_text()) for p in sorted(bundled_rules_dir().glob("*.yaml"))]
    assert load_rules_from_texts(files).version == RULES.version
    changed = [(files[0][0], files[0][1] + "\n# changed\n"), *files[1:]]
    assert load_rules_from_texts(changed).version != RULES.version


def _rule_text(**changes) -> str:
    document = yaml.safe_load((bundled_rules_dir() / "former_official.yaml").read_text())
    document.update(changes)
    return yaml.safe_dump({k: v for k, v in document.items() if v is not None or k != "prior"}, allow_unicode=True)


def test_every_rule_declares_a_prior_resting_on_passages_about_the_factor() -> None:
    from risk_rules.priors import PRIOR_GRADES, grade_of

    for rule in RULES.rules:
        assert rule.prior.grade in PRIOR_GRADES.values()
        # The grade is the one the grade table's words give its passages.
        assert rule.prior.grade.name == grade_of((p.documents, p.cases) for p in rule.prior.evidence), rule.id
        if rule.prior.grade.name != "weak":
            assert rule.prior.evidence, rule.id
        else:
            assert rule.prior.evidence or rule.prior.unsupported, rule.id


def test_a_grade_is_recomputed_from_the_passages_a_reader_may_use() -> None:
    """Dropping the passages that name a held-out event, or those published after a cutoff, lowers the grade
    by the table's words: strong needs the stated motive in two documented cases."""
    import datetime as dt

    family = RULES.by_id("relative_of_critic").prior
    assert family.grade.name == "strong"
    assert family.grade_from(lambda p: "students-parents-2020" not in p.cases).name == "moderate"
    assert family.grade_from(lambda p: p.published_by < dt.date(2016, 1, 1)).name == "weak"
    extradition = RULES.by_id("home_country_extradition_case").prior
    assert extradition.grade_from(lambda p: "meng-response-2018" not in p.cases).name == "strong"
    assert extradition.grade_from(lambda p: "garratt-2014" not in p.cases).name == "moderate"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reads": ["occupation", "no_such_fact"]}, "unknown fact"),
        ({"when": "occupation in {'former_diplomat'"}, "cannot parse"),
        ({"when": "occupation > 2"}, "cannot compare text with number"),
        ({"when": "occupation"}, "'when' must be a condition"),
        ({"when": "sector == 'x'"}, "not listed in 'reads'"),
        ({"reason": "A {nonexistent} reason sentence."}, "does not read"),
        (
            {"evidence": [{"source": "zhang-beijings-new-hostage-diplomacy", "quote": "words that are not in it"}]},
            "quote not found verbatim",
        ),
        ({"evidence": [{"source": "no-such-source", "quote": "a quote of some length"}]}, "unknown source"),
        (
            {"examples": [{"name": "x", "request": {}, "fires": True}, {"name": "y", "request": {}, "fires": True}]},
            "at least one that fires and one that does not",
        ),
        ({"surprise": 1}, "Extra inputs are not permitted"),
        ({"prior": None}, "prior"),
        ({"prior": {"grade": "certain", "rationale": "Because the sources say so."}}, "grade"),
        ({"prior": {"grade": "strong", "rationale": "Because the sources say so."}}, "support the grade 'weak'"),
        (
            {
                "prior": {
                    "grade": "strong",
                    "rationale": "Because the sources say so.",
                    "evidence": [
                        {
                            "source": "zhang-beijings-new-hostage-diplomacy",
                            "quote": "Since Meng Wanzhou was detained in Vancouver",
                            "documents": "motive_or_method",
                            "cases": ["meng-response-2018"],
                        }
                    ],
                }
            },
            "support the grade 'moderate', not 'strong'",
        ),
        (
            {
                "prior": {
                    "grade": "moderate",
                    "rationale": "Because the sources say so.",
                    "evidence": [
                        {
                            "source": "zhang-beijings-new-hostage-diplomacy",
                            "quote": "Since Meng Wanzhou was detained in Vancouver",
                            "documents": "case",
                        }
                    ],
                }
            },
            "must name its case",
        ),
        ({"prior": {"grade": "weak", "rationale": "Because the sources say so."}}, "unsupported"),
        (
            {
                "prior": {
                    "grade": "moderate",
                    "rationale": "Because the sources say so.",
                    "evidence": [
                        {
                            "source": "zhang-beijings-new-hostage-diplomacy",
                            "quote": "not in the text at all",
                            "documents": "pattern",
                        }
                    ],
                }
            },
            "prior.evidence: quote not found verbatim",
        ),
        ({"title": None}, "title"),
    ],
)
def test_broken_rule_is_refused_naming_file_and_rule(changes, message) -> None:
    with pytest.raises(RuleSetError) as caught:
        load_rules_from_texts([("former_official.yaml", _rule_text(**changes))])
    assert caught.value.file == "former_official.yaml"
    assert caught.value.rule == "former_official"
    assert message in str(caught.value)


def test_example_that_is_not_a_valid_request_is_refused() -> None:
    text = _rule_text(
        examples=[
            {"name": "bad", "request": {"traveler": {"citizenships": ["XX"]}}, "fires": True},
            {"name": "ok", "request": {}, "fires": False},
        ]
    )
    with pytest.raises(RuleSetError, match="example 'bad' is not a valid request"):
        load_rules_from_texts([("former_official.yaml", text)])


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    text = _rule_text()
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text(text)
    with pytest.raises(RuleSetError, match="duplicate rule id"):
        load_rules(tmp_path)


def test_malformed_yaml_is_refused() -> None:
    with pytest.raises(RuleSetError, match="not valid YAML"):
        load_rules_from_texts([("x.yaml", "id: [unclosed")])


def test_empty_rule_set_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError, match="no rule files"):
        load_rules(tmp_path)
