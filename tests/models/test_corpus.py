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
    assert rows["citizenships"]["basis"] == "reporting"
    assert rows["citizenships"]["evidence"]
    assert rows["travel_volume"]["basis"] == "reporting"
    assert [p["relative"] for p in rows["travel_volume"]["value"]] == [0.08, 0.36]


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
        (lambda d: d["travel_volume"]["periods"][1].update({"from": "2023-03-01"}), "must not overlap"),
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
    share = {code: home.count(code) / len(home) for code in ("JP", "CA", "AU")}
    # 3.23 of 26 million (Japan), 0.685 (Canada), 0.561 (Australia), within sampling error.
    assert share["JP"] == pytest.approx(3.23 / 26, abs=0.012)
    assert share["CA"] == pytest.approx(0.6853 / 26, abs=0.006)
    assert share["AU"] == pytest.approx(0.561 / 26, abs=0.006)
