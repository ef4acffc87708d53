"""Validation that can fail: held-out events and a temporal backtest against the checklist of factors."""

import datetime as dt

import numpy as np
import pytest

from models.artifact import artifact_from_document
from models.assess import Assessor
from models.corpus import UNSTATED_STAY_DAYS, Population, load_incidents
from models.training import train_model
from models.validation import TEMPORAL_CUTOFF, reference_without, roc_auc
from risk_rules.facts import UNASSESSED, leg_facts
from risk_rules.forms import AssessmentRequest
from risk_rules.reference import load_bundled_reference
from risk_rules.ruleset import bundled_rules
from risk_rules.unknowns import Expectations

BUNDLED = Assessor.load()
REFERENCE = load_bundled_reference()
INCIDENTS = load_incidents()


SCHEMES = ("leave_one_event_out", "temporal_backtest")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_recomputed_validation_ranks_held_out_incidents_no_worse_than_the_checklist(retrained, scheme) -> None:
    """Recomputed from the data, both schemes: a model that ranks held-out incidents worse than a plain
    count of fired factors is a defect (mean over the population draws)."""
    result = retrained[0]["validation"][scheme]
    figures = result["figures"]
    assert figures["auc_difference"]["value"] >= 0, figures
    assert figures["model_auc"]["value"] >= figures["checklist_auc"]["value"]
    for figure in figures.values():
        lo, hi = figure["interval_90"]
        assert lo <= hi and len(figure["by_draw"]) == result["population_draws"]
        assert figure["value"] == pytest.approx(float(np.mean(figure["by_draw"])), abs=1e-4)
    assert sum(result["incidents_by_band"].values()) == result["incidents"]
    assert sum(result["controls_by_band"].values()) == result["controls"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_card_states_each_target_met_or_missed_as_recomputed(retrained, scheme) -> None:
    """The bundled card's figures are the recomputed ones (within the stated tolerance), and each target is
    marked met or missed by its own numbers; the headline lists every missed target."""
    stored = BUNDLED.model.document["validation"][scheme]
    recomputed = retrained[0]["validation"][scheme]
    tolerance = BUNDLED.model.document["fit"]["reproduction_tolerance"]["validation"]
    for name, figure in recomputed["figures"].items():
        assert stored["figures"][name]["value"] == pytest.approx(figure["value"], abs=tolerance), name
    for name, target in stored["targets"].items():
        value = stored["figures"][name]["value"]
        met = value >= target["at_least"] if "at_least" in target else value <= target["at_most"]
        assert target["met"] is met, name
        listed = any(
            line.startswith(stored["name"]) and target["what"] in line
            for line in BUNDLED.model.document["metrics"]["targets_missed"]
        )
        assert listed is (not met), name
    assert stored["population_draws"] >= 5


def test_headline_is_the_held_out_figure() -> None:
    document = BUNDLED.model.document
    loeo = document["validation"]["leave_one_event_out"]["figures"]
    assert document["metrics"]["roc_auc"] == loeo["model_auc"]["value"]
    assert document["metrics"]["roc_auc_interval_90"] == loeo["model_auc"]["interval_90"]
    assert "in-sample" in document["validation"]["in_sample_synthetic_controls"]["label"]


def test_each_scheme_publishes_the_priors_it_used() -> None:
    validation = BUNDLED.model.document["validation"]
    loeo = validation["leave_one_event_out"]["priors"]
    # A fold holding out the Liu siblings no longer has the passages about them: the grade is recomputed.
    assert "liu-siblings-2018" in loeo["lowered_in_folds"]["family_member_sought"]
    temporal = validation["temporal_backtest"]["priors"]["grades"]
    # Every passage behind the priors was published after the cutoff: a reader then had none of them.
    ruleset = bundled_rules()
    for rule in ruleset.rules:
        before = [p for p in rule.prior.evidence if p.published_by < TEMPORAL_CUTOFF]
        assert (temporal[rule.id] == "weak") is (not before), rule.id


def test_temporal_cutoff_leaves_ten_cases_each_side() -> None:
    trained = [i for i in INCIDENTS if i.train and i.request.trip.legs[-1].country]
    used = set(BUNDLED.model.document["data"]["incident_ids"])
    dates = [i.occurred_on for i in trained if i.id in used]
    assert sum(d < TEMPORAL_CUTOFF for d in dates) >= 10
    assert sum(d >= TEMPORAL_CUTOFF for d in dates) >= 10


def test_corpus_holds_the_cases_that_happen_most() -> None:
    """At least 100 trained incidents in 80 events, 15 of them civil or commercial disputes."""
    data = BUNDLED.model.document["data"]
    assert data["incidents"] >= 100
    assert data["events"] >= 80
    assert data["civil_or_commercial_disputes"] >= 15


def test_every_held_out_incident_is_reported_once() -> None:
    loeo = BUNDLED.model.document["validation"]["leave_one_event_out"]
    ids = [row["id"] for row in loeo["held_out_incidents"]]
    assert sorted(ids) == sorted(BUNDLED.model.document["data"]["incident_ids"])


def test_one_person_is_one_event() -> None:
    events_of: dict[str, set[str]] = {}
    for incident in INCIDENTS:
        events_of.setdefault(incident.person, set()).add(incident.event)
    assert all(len(events) == 1 for events in events_of.values()), events_of


def test_derived_records_exist_and_holding_them_out_removes_them() -> None:
    situations = {f"situation:{s.id}" for s in REFERENCE.situations}
    disputes = {f"employer_dispute:{d.id}" for d in REFERENCE.employer_disputes}
    returns = {
        f"forced_return:{code}:{r.occurred_on.isoformat()}"
        for code, t in REFERENCE.third_countries.items()
        for r in t.forced_returns
    }
    for incident in INCIDENTS:
        for record in incident.derived_records:
            assert record in situations | disputes | returns, (incident.id, record)
    stern = next(i for i in INCIDENTS if i.id == "stern-hu-2009")
    ruleset = bundled_rules()
    employer = ruleset.by_id("employer_dispute")
    with_records = leg_facts(stern.request, REFERENCE)[-1]
    without = leg_facts(stern.request, reference_without(REFERENCE, stern.derived_records))[-1]
    assert employer.evaluate(with_records) == 1.0
    assert employer.evaluate(without) == 0.0


def test_an_unstated_stay_is_unknown_not_a_length() -> None:
    """A case whose reporting does not state its stay gets a placeholder leg; the length of that leg
    changes nothing: the length-of-stay factor takes its expectation under the reference population."""
    ruleset = bundled_rules()
    expectations = Expectations(ruleset, Population.load().shares())
    index = ruleset.ids.index("length_of_stay")
    for incident in INCIDENTS:
        if incident.stay_stated or not incident.train:
            continue
        legs = incident.request.trip.legs
        assert all((leg.depart - leg.arrive).days + 1 == UNSTATED_STAY_DAYS for leg in legs)
        assert not any(leg.transit for leg in legs)
        baseline = leg_facts(incident.request, REFERENCE, stay_given=False)[-1]
        if baseline.kind == UNASSESSED:
            continue
        assert "stay" in baseline.unknown
        expected = expectations.values(baseline)
        if baseline.kind == "destination":
            assert expected[index] > 0  # some ordinary stays are long: the expectation is not "absent"
        for days in (3, 40):
            document = incident.request.model_dump(mode="json")
            for leg in document["trip"]["legs"]:
                start = dt.date.fromisoformat(leg["arrive"])
                if start <= incident.occurred_on <= start + dt.timedelta(days=days - 1):
                    leg["depart"] = (start + dt.timedelta(days=days - 1)).isoformat()
                else:
                    end = dt.date.fromisoformat(leg["depart"])
                    leg["arrive"] = (end - dt.timedelta(days=days - 1)).isoformat()
            changed = leg_facts(AssessmentRequest.model_validate(document), REFERENCE, stay_given=False)[-1]
            assert expectations.values(changed)[index] == expected[index], (incident.id, days)


def test_roc_auc_counts_ties_half() -> None:
    assert roc_auc(np.array([2.0, 3.0]), np.array([1.0, 1.0])) == 1.0
    assert roc_auc(np.array([1.0]), np.array([1.0])) == 0.5
    assert roc_auc(np.array([0.0]), np.array([1.0, 2.0])) == 0.0


def _canadian_think_tank_trip(arrive: str, depart: str) -> AssessmentRequest:
    return AssessmentRequest.model_validate(
        {
            "traveler": {
                "citizenships": ["CA"],
                "occupation": "former_diplomat",
                "employer": {"name": "International Crisis Group", "sector": "think_tank"},
            },
            "trip": {
                "purpose": "research",
                "legs": [{"country": "CN", "region": "Beijing", "arrive": arrive, "depart": depart}],
            },
        }
    )


def test_acceptance_holds_for_a_model_that_never_saw_the_december_2018_canadian_cases() -> None:
    """Refitted without Kovrig, Spavor and the third Canadian (and the situation built from them), the
    acceptance example is still high, led by the extradition case, with the former diplomat counting."""
    document, _, _ = train_model(exclude_events=frozenset({"meng-response-2018"}), validate=False)
    assert "kovrig-2018" not in document["data"]["incident_ids"]
    # The records built from those cases (Meng's extradition case is graded on them) are out of training;
    # the traveller is scored against the reference data a travel desk would have.
    assert "situation:ca-cn-meng-extradition" in {
        r for i in INCIDENTS if i.event == "meng-response-2018" for r in i.derived_records
    }
    assessor = Assessor(bundled_rules(), artifact_from_document(document))
    reference = REFERENCE
    during = assessor.assess(_canadian_think_tank_trip("2018-12-05", "2018-12-19"), reference)
    assert during.score.band in ("high", "severe")
    assert "home_country_extradition_case" in [f.id for f in during.factors[:3]]
    former = next(f for f in during.factors if f.id == "former_official")
    assert former.contribution > 0
    after = assessor.assess(_canadian_think_tank_trip("2022-06-06", "2022-06-19"), reference)
    assert during.score.probability >= 3 * after.score.probability


# ------------------------------------------------------------------------------------------------
# Missing is missing


def _case_legs() -> list[tuple[object, object]]:
    out = []
    for incident in INCIDENTS:
        if not incident.train:
            continue
        facts = leg_facts(incident.request, REFERENCE, stay_given=incident.stay_stated)[-1]
        if facts.kind != UNASSESSED:
            out.append((incident, facts))
    return out


def test_a_left_out_field_takes_its_expectation_never_absent() -> None:
    """Every case row reads a field its reporting does not state at its expectation under the reference
    population: where the population can make the factor fire, the case's value is above zero."""
    ruleset = bundled_rules()
    shares = Population.load().shares()
    expectations = Expectations(ruleset, shares)
    document = BUNDLED.model.document
    rows = dict(zip(document["data"]["incident_ids"], range(len(document["data"]["incident_ids"])), strict=True))
    checked = 0
    for incident, facts in _case_legs():
        details, _ = expectations.details(facts)
        values = expectations.values(facts)
        assert incident.id in rows
        for rule, detail, value in zip(ruleset.rules, details, values, strict=True):
            if detail is None or detail.judged:
                continue
            checked += 1
            assert value == pytest.approx(detail.expected)
            if detail.expected > 0:
                assert value > 0, (incident.id, rule.id)
    assert checked > 100


def test_descriptive_fields_fire_as_often_as_among_cases_that_state_them() -> None:
    """For the fields reporting states whatever their value (occupation, sector, employer, purpose), a
    factor fires among all cases (unknowns at their expectation) as often as among the cases that state
    the field, within sampling noise (a 99% binomial band). Coding unknown as absent fails this."""
    import math

    from risk_rules.facts import LEFT_OUT

    ruleset = bundled_rules()
    expectations = Expectations(ruleset, Population.load().shares())
    legs = [facts for _, facts in _case_legs()]
    values = np.asarray([expectations.values(f) for f in legs])
    absent = np.asarray([ruleset.values(_as_if_absent(f)) for f in legs])
    tested = 0
    for j, rule in enumerate(ruleset.rules):
        for name, left_out in LEFT_OUT.items():
            if not left_out.descriptive or rule.closure.isdisjoint(left_out.facts):
                continue
            known = np.asarray([name not in f.unknown for f in legs])
            if known.all() or not known.any():
                continue
            rate_known = values[known, j].mean()
            noise = 2.576 * math.sqrt(max(rate_known * (1 - rate_known), 0.25 / known.sum()) / known.sum())
            assert abs(values[:, j].mean() - rate_known) <= noise, (rule.id, name)
            tested += 1
    assert tested >= 10
    # The check can fail: coding what is not stated as absent moves business_executive outside the band.
    j = ruleset.ids.index("business_executive")
    known = np.asarray(["occupation" not in f.unknown for f in legs])
    rate_known = absent[known, j].mean()
    noise = 2.576 * math.sqrt(rate_known * (1 - rate_known) / known.sum())
    assert abs(absent[:, j].mean() - rate_known) > noise


def _as_if_absent(facts):
    """The same leg with every left-out field read as absent (the placeholder): the defect to detect."""
    from dataclasses import replace

    return replace(facts, unknown=frozenset())


def test_an_undeclared_derived_record_is_refused() -> None:
    """A reference record that shares a passage or a name with an incident must be declared derived (or
    independent, with the reason); training refuses the corpus otherwise."""
    from models.corpus import CorpusError, check_derived_records

    ruleset = bundled_rules()
    check_derived_records(INCIDENTS, ruleset)
    kovrig = next(i for i in INCIDENTS if i.id == "kovrig-2018")
    stripped = kovrig.model_copy(
        update={"derived_records": [r for r in kovrig.derived_records if r != "situation:ca-cn-meng-extradition"]}
    )
    corpus = [stripped if i.id == kovrig.id else i for i in INCIDENTS]
    with pytest.raises(CorpusError, match="situation:ca-cn-meng-extradition overlaps incident kovrig-2018"):
        check_derived_records(corpus, ruleset)
    from models.corpus import NotDerived

    declared = stripped.model_copy(
        update={
            "records_not_derived": [
                *stripped.records_not_derived,
                NotDerived(record="situation:ca-cn-meng-extradition", why="A reason written for this test only."),
            ]
        }
    )
    check_derived_records([declared if i.id == kovrig.id else i for i in INCIDENTS], ruleset)


def test_records_built_from_cases_leave_the_fold_with_them() -> None:
    """The situations the audit found built from cases are declared derived from them."""
    derived = {r: {i.event for i in INCIDENTS if r in i.derived_records} for i in INCIDENTS for r in i.derived_records}
    assert "garratt-2014" in derived["situation:ca-cn-su-bin-extradition"]
    assert {"hokkaido-professor-2019", "astellas-2023"} <= derived["situation:jp-cn-detained-nationals"]
    assert "meng-response-2018" in derived["situation:ca-cn-meng-extradition"]


def test_a_prior_passage_an_incident_quotes_must_name_its_event() -> None:
    """A passage behind a prior that an incident also quotes rests on that incident: the passage must name
    the incident's event, so that a fold holding the event out grades the factor without it."""
    from dataclasses import replace

    from models.corpus import derived_record_problems
    from risk_rules.ruleset import RuleSet

    ruleset = bundled_rules()
    rule = ruleset.by_id("born_or_former_national")
    passages = tuple(
        replace(p, documents="pattern", cases=()) if "charles-lee-2003" in p.cases else p for p in rule.prior.evidence
    )
    changed = replace(rule, prior=replace(rule.prior, evidence=passages))
    rules = RuleSet(tuple(changed if r.id == rule.id else r for r in ruleset.rules), ruleset.version)
    problems = derived_record_problems(INCIDENTS, rules)
    assert any("born_or_former_national" in p and "charles-lee-2003" in p for p in problems), problems
