"""The reference population: checked when loaded, and drawn the way its sources say travel happened."""

import copy
import datetime as dt

import pytest
import yaml

from models.corpus import CorpusError, Population, bundled_population_path, generate_controls, population_problems
from risk_rules.reference import load_bundled_reference


def _document() -> dict:
    return yaml.safe_load(bundled_population_path().read_text(encoding="utf-8"))


def test_bundled_population_is_valid_and_cites_its_reporting() -> None:
    population = Population.load()
    rows = {row["name"]: row for row in population.provenance()}
    for name in ("citizenships", "destinations", "purposes", "occupations", "stay_days", "travel_volume"):
        assert rows[name]["basis"] == "reporting", name
        assert rows[name]["evidence"], name
    assert [p["relative"] for p in rows["travel_volume"]["value"]] == [0.29, 0.08, 0.36]
    # Every other share is labelled an assumption, and says why.
    for row in rows.values():
        assert row["basis"] in ("reporting", "assumption") and row["why"]


def test_a_quote_that_is_not_in_the_reporting_is_refused(tmp_path) -> None:
    document = _document()
    document["citizenships"]["evidence"][0]["quote"] = "in 2010, a total of 62 million of them visited China"
    path = tmp_path / "population.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(CorpusError, match="citizenships: quote not found verbatim"):
        Population.load(path)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["travel_volume"]["periods"][2].update({"from": "2023-03-01"}), "must not overlap"),
        (lambda d: d["travel_volume"]["periods"][0].update({"relative": 0}), "relative volume"),
        (lambda d: d["travel_volume"]["periods"][0].pop("evidence"), "cites no evidence"),
        (lambda d: d["travel_volume"]["periods"][0].pop("to"), "needs from, to"),
        (lambda d: d["citizenships"].pop("evidence"), "must cite its evidence"),
        (lambda d: d["citizenships"]["shares"].update({"CA": -0.1}), "positive"),
        (lambda d: d["citizenships"].update({"basis": "hunch"}), "basis must be"),
    ],
)
def test_population_problems_name_what_is_wrong(change, expected) -> None:
    document = copy.deepcopy(_document())
    change(document)
    assert any(expected in p for p in population_problems(document)), population_problems(document)


def test_trips_during_the_closure_run_at_its_reported_fraction() -> None:
    population = Population.load()
    controls = generate_controls(population, load_bundled_reference(), trips=6000, seed=11)
    start = dt.date.fromisoformat(population.document["dates"]["start"])
    end = dt.date.fromisoformat(population.document["dates"]["end"])
    first, last, fraction = population.relative_volume()[0]
    closure_days = (last - first).days + 1
    usual_days = (end - start).days - sum((b - a).days + 1 for a, b, _ in population.relative_volume())
    arrivals = [c.trip.legs[-1].arrive for c in controls]
    in_closure = sum(first <= a <= last for a in arrivals)
    in_usual = sum(not any(a0 <= a <= b0 for a0, b0, _ in population.relative_volume()) for a in arrivals)
    # Trips per day in the closure against trips per day in ordinary times: the reported fraction.
    ratio = (in_closure / closure_days) / (in_usual / usual_days)
    assert ratio == pytest.approx(fraction, abs=0.04)


def test_citizenships_follow_the_reported_arrivals() -> None:
    controls = generate_controls(Population.load(), load_bundled_reference(), trips=8000, seed=5)
    home = [c.traveler.citizenships[0] for c in controls if c.traveler.citizenships != ["CN"]]
    share = {code: home.count(code) / len(home) for code in ("KR", "TW", "CA")}
    # The 2014 counts, in millions of trips: the sixteen itemised countries and Taiwan's residents.
    itemised = 4.1817 + 2.7176 + 2.0932 + 2.0458 + 1.7094 + 1.1296 + 1.0827 + 0.9714 + 0.9679 + 0.7099
    itemised += 0.6721 + 0.6671 + 0.6626 + 0.6137 + 0.6047 + 0.5669
    total = itemised + 5.3659
    assert share["KR"] == pytest.approx(4.1817 / total, abs=0.012)
    assert share["TW"] == pytest.approx(5.3659 / total, abs=0.012)
    assert share["CA"] == pytest.approx(0.6671 / total, abs=0.006)


def test_controls_state_every_field_a_request_may_leave_out() -> None:
    """Controls are ordinary trips whose every field is known: none is left to an expectation."""
    from risk_rules.facts import leg_facts

    reference = load_bundled_reference()
    for control in generate_controls(Population.load(), reference, trips=300, seed=3):
        assert all(not f.unknown for f in leg_facts(control, reference))


def test_shares_are_the_ones_the_controls_are_drawn_from() -> None:
    """The distribution a left-out field's expectation is taken under is the one the controls follow."""
    from collections import Counter

    population = Population.load()
    shares = population.shares()
    controls = generate_controls(population, load_bundled_reference(), trips=6000, seed=9)
    occupations = Counter(c.traveler.occupation.value for c in controls)
    total = sum(p for _, p in shares.occupation)
    for name, p in shares.occupation:
        assert occupations[name] / len(controls) == pytest.approx(p / total, abs=0.015), name
    stays = Counter((c.trip.legs[-1].depart - c.trip.legs[-1].arrive).days + 1 for c in controls)
    expected = dict(shares.stay_days)
    for days in (1, 5, 8, 12):
        assert stays[days] / len(controls) == pytest.approx(expected[float(days)], abs=0.015), days
    assert sum(expected.values()) == pytest.approx(1.0)
    long_share = sum(n for d, n in stays.items() if d >= 30) / len(controls)
    assert long_share == pytest.approx(0.08, abs=0.015)
