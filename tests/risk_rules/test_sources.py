"""Every quote the service shows is verbatim (up to whitespace) in the reference source it names."""

import filecmp
import os
from pathlib import Path

import pytest
import yaml

from models.corpus import bundled_incidents_path, load_incidents
from risk_rules.reference import bundled_reference_path
from risk_rules.ruleset import bundled_rules
from risk_rules.sources import (
    ReportingError,
    bundled_reporting_path,
    bundled_sources_dir,
    load_reporting,
    quote_problem,
    report_problems,
    source_texts,
    source_title,
)

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("TRAVELRISK_SOURCES_DIR", REPO.parent / "shared" / "sources"))


def _sources_dir() -> Path:
    """The original sources when present beside the repository, else the bundled copy."""
    return SHARED if SHARED.is_dir() else bundled_sources_dir()


def _citations(node, where=""):
    """Every {source, quote} pair anywhere in a YAML document, with where it sits."""
    if isinstance(node, dict):
        if "source" in node and "quote" in node and node.get("quote"):
            yield where, node["source"], node["quote"]
        for key, value in node.items():
            yield from _citations(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _citations(value, f"{where}[{index}]")


def test_bundled_copy_matches_the_originals() -> None:
    if not SHARED.is_dir():
        pytest.skip("the original reference sources are not beside the repository")
    originals = sorted(p.name for p in SHARED.glob("*.txt"))
    assert originals == sorted(p.name for p in bundled_sources_dir().glob("*.txt"))
    _, mismatch, errors = filecmp.cmpfiles(SHARED, bundled_sources_dir(), originals, shallow=False)
    assert mismatch == [] and errors == []


def test_five_sources_are_known() -> None:
    documents = {p.stem for p in _sources_dir().glob("*.txt")}
    assert len(documents) == 5
    assert documents <= set(source_texts(_sources_dir()))


def test_rule_evidence_is_verbatim() -> None:
    problems = [
        f"{rule.id}: {problem}"
        for rule in bundled_rules().rules
        for evidence in rule.evidence
        if (problem := quote_problem(evidence.source, evidence.quote, _sources_dir()))
    ]
    assert problems == []


def test_reference_data_quotes_are_verbatim() -> None:
    document = yaml.safe_load(bundled_reference_path().read_text(encoding="utf-8"))
    cited = list(_citations(document))
    assert len(cited) > 20
    problems = [f"{where}: {p}" for where, s, q in cited if (p := quote_problem(s, q, _sources_dir()))]
    assert problems == []


def test_every_reference_record_cites_a_source() -> None:
    document = yaml.safe_load(bundled_reference_path().read_text(encoding="utf-8"))
    for section in ("situations", "employer_disputes"):
        for record in document[section]:
            assert record["sources"], f"{section} {record['id']} cites nothing"
    for country in document["third_countries"]:
        for item in country.get("extradition_treaties", []) + country.get("forced_returns", []):
            assert item["sources"], f"third country {country['code']} has an uncited record"


def test_incident_quotes_are_verbatim() -> None:
    incidents = load_incidents()
    assert incidents
    problems = [
        f"{incident.id}: {problem}"
        for incident in incidents
        for citation in incident.sources
        if (problem := quote_problem(citation.source, citation.quote, _sources_dir()))
    ]
    assert problems == []
    assert bundled_incidents_path().is_file()


def test_a_changed_quote_is_caught() -> None:
    rule = bundled_rules().rules[0]
    evidence = rule.evidence[0]
    assert quote_problem(evidence.source, evidence.quote, _sources_dir()) is None
    assert quote_problem(evidence.source, evidence.quote + " and more", _sources_dir()) is not None


# ------------------------------------------------------------------------------------------------
# The registry of public reporting


def _registry() -> list[dict]:
    return yaml.safe_load(bundled_reporting_path().read_text(encoding="utf-8"))


def test_reporting_registry_loads_and_ids_are_unique() -> None:
    entries = _registry()
    ids = [entry["id"] for entry in entries]
    assert len(ids) == len(set(ids))
    assert set(load_reporting()) == set(ids)
    # A report id must not shadow one of the five reference documents.
    assert not set(ids) & {p.stem for p in bundled_sources_dir().glob("*.txt")}


def test_every_report_is_well_formed() -> None:
    for entry in _registry():
        assert report_problems(entry) == [], entry["id"]
        assert entry["url"].startswith(("https://", "http://")), entry["id"]
        assert entry["excerpts"] and all(e.strip() for e in entry["excerpts"]), entry["id"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("url", "ftp://example.org/report", "http(s) address"),
        ("url", "https://", "http(s) address"),
        ("date", "2019-02-30", "calendar date"),
        ("date", "March 2019", "YYYY"),
        ("excerpts", [], "nonempty list"),
        ("excerpts", ["  "], "nonempty text"),
        ("id", "Not A Slug", "slug"),
    ],
)
def test_a_malformed_report_is_refused(field: str, value: object, expected: str) -> None:
    entry = {**_registry()[0], field: value}
    problems = report_problems(entry)
    assert any(expected in p for p in problems), problems


def test_duplicate_report_ids_are_refused(tmp_path: Path) -> None:
    entry = _registry()[0]
    path = tmp_path / "reporting.yaml"
    path.write_text(yaml.safe_dump([entry, entry]), encoding="utf-8")
    with pytest.raises(ReportingError, match="duplicate"):
        load_reporting(path)


def test_a_report_quote_must_lie_inside_one_excerpt() -> None:
    report = next(r for r in load_reporting().values() if len(r.excerpts) >= 2)
    first, second = report.excerpts[0], report.excerpts[1]
    assert quote_problem(report.id, first) is None
    # Whitespace is normalised, as for the reference documents.
    assert quote_problem(report.id, first.replace(" ", "\n  ", 3)) is None
    assert quote_problem(report.id, first[: len(first) // 2]) is None
    # Text that is not in any excerpt, and text spanning two excerpts, are refused.
    assert quote_problem(report.id, first + " and more") is not None
    assert quote_problem(report.id, f"{first[-20:]} {second[:20]}") is not None
    assert quote_problem(report.id, "a sentence the report never printed") is not None


def test_report_titles_are_known() -> None:
    report = next(iter(load_reporting().values()))
    title = source_title(report.id)
    assert title is not None and report.title in title and report.date in title
    assert source_title("brookings-long-arm-of-the-law") is None
