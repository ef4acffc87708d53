"""`travelrisk data load/export/import` against a database of their own (migrated, with the bundled set).

An import changes reference data for everything that reads it, so these tests do not share the run's
database: theirs is always a SQLite file (the commands go through SQLAlchemy like the rest of the service).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from service.db import create_db_engine, create_session_factory, upgrade_database
from service.reference.models import ReferenceRevision
from service.rescoring.models import RescoringJob
from tests.service.conftest import cli, make_settings
from tests.service.reference_helpers import QUOTE, revision_count


@pytest.fixture(scope="module")
def own_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('data-command') / 'travelrisk.db'}"
    upgrade_database(url)
    return url


@pytest.fixture(scope="module")
def sessions(own_database: str) -> Any:
    engine = create_db_engine(make_settings(own_database))
    yield create_session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def exported(own_database: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("export") / "reference.json"
    cli("data", "export", str(path), database_url=own_database)
    return json.loads(path.read_text(encoding="utf-8"))


def counts(stdout: str) -> dict[str, tuple[int, int, int]]:
    """`section: C created, U updated, N unchanged` lines as {section: (C, U, N)}."""
    found = {}
    for line in stdout.splitlines():
        if " created, " in line:
            section, rest = line.split(": ", 1)
            found[section] = tuple(int(part.split()[0]) for part in rest.split(", "))
    return found


def test_load_of_the_bundled_set_finds_it_loaded(own_database: str, sessions: Any) -> None:
    before = revision_count(sessions)
    done = cli("data", "load", database_url=own_database)
    loaded = counts(done.stdout)
    assert set(loaded) == {"destinations", "third_countries", "situations", "employer_disputes"}
    assert all(created == updated == 0 and unchanged > 0 for created, updated, unchanged in loaded.values())
    assert f"reference data version: ref-db-{before}" in done.stdout
    assert revision_count(sessions) == before


def test_export_then_import_changes_nothing(own_database: str, sessions: Any, tmp_path: Path) -> None:
    before = revision_count(sessions)
    for name in ("reference.yaml", "reference.json"):
        path = tmp_path / name
        cli("data", "export", str(path), database_url=own_database)
        done = cli("data", "import", str(path), database_url=own_database)
        assert all(c == u == 0 for c, u, _ in counts(done.stdout).values()), done.stdout
    assert revision_count(sessions) == before

    stdout = cli("data", "export", "-", database_url=own_database).stdout
    assert stdout.startswith("# travelrisk reference data")
    assert yaml.safe_load(stdout) == yaml.safe_load((tmp_path / "reference.yaml").read_text(encoding="utf-8"))
    assert yaml.safe_load(stdout) == json.loads((tmp_path / "reference.json").read_text(encoding="utf-8"))


def test_import_writes_revisions_and_queues_rescoring(
    own_database: str, sessions: Any, exported: dict[str, Any], tmp_path: Path
) -> None:
    document = copy.deepcopy(exported)
    meng = next(s for s in document["situations"] if s["id"] == "ca-cn-meng-extradition")
    meng["severity"] = "medium"
    document["situations"].append(
        {
            "id": "nz-cn-import-test",
            "home_country": "NZ",
            "destination": "CN",
            "kind": "extradition_case",
            "title": "Imported situation",
            "started_on": "2047-03-01",
            "ended_on": "2047-03-31",
            "severity": "high",
            "sources": [QUOTE],
        }
    )
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    done = cli("data", "import", str(path), database_url=own_database)
    situations = counts(done.stdout)["situations"]
    assert situations[:2] == (1, 1), done.stdout
    assert counts(done.stdout)["destinations"][:2] == (0, 0)

    with sessions() as session:
        revisions = session.scalars(
            select(ReferenceRevision).where(
                ReferenceRevision.record_id.in_(["ca-cn-meng-extradition", "nz-cn-import-test"])
            )
        ).all()
        latest = {r.record_id: r for r in sorted(revisions, key=lambda r: r.revision)}
        assert latest["ca-cn-meng-extradition"].changes == {"severity": {"from": "high", "to": "medium"}}
        assert latest["nz-cn-import-test"].action == "created"
        assert all(r.actor.startswith(f"cli:data import file:{path}") for r in latest.values())
        queued = set(session.scalars(select(RescoringJob.record_id)))
    assert {"ca-cn-meng-extradition", "nz-cn-import-test"} <= queued

    # A file (here the modified one) loaded again finds everything as it left it.
    again = cli("data", "load", str(path), database_url=own_database)
    assert all(c == u == 0 for c, u, _ in counts(again.stdout).values()), again.stdout


def test_an_invalid_set_writes_nothing_and_names_each_record_and_field(
    own_database: str, sessions: Any, exported: dict[str, Any], tmp_path: Path
) -> None:
    document = copy.deepcopy(exported)
    situations = document["situations"]
    situations[0]["sources"][0]["quote"] = "Words that are not in the source."
    situations[1]["home_country"] = "XX"
    situations[2]["ended_on"] = "1999-01-01"
    situations.append({**copy.deepcopy(situations[3]), "id": "new-but-invalid", "destination": "FR"})
    document["employer_disputes"][0]["destination"] = "US"
    document["destinations"][0]["laws"][0]["sources"][0]["quote"] = "Not a passage of MERICS."
    document["third_countries"][0]["forced_returns"][0]["destination"] = "ZZ"
    path = tmp_path / "invalid.json"
    path.write_text(json.dumps(document), encoding="utf-8")

    before = revision_count(sessions)
    done = cli("data", "import", str(path), database_url=own_database, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert "nothing was written" in done.stderr and "Traceback" not in done.stderr
    expected = [
        f"situations[0] {situations[0]['id']}: sources.0.quote: quote not found verbatim",
        f"situations[1] {situations[1]['id']}: home_country: 'XX' is not an ISO 3166-1",
        f"situations[2] {situations[2]['id']}: ended_on",
        f"situations[{len(situations) - 1}] new-but-invalid: destination: 'FR' is not a covered destination",
        f"employer_disputes[0] {document['employer_disputes'][0]['id']}: destination: 'US' is not a covered",
        "destinations[0] CN: laws.0.sources.0.quote: quote not found verbatim",
        f"third_countries[0] {document['third_countries'][0]['code']}: forced_returns.0.destination: 'ZZ'",
    ]
    for line in expected:
        assert line in done.stderr, (line, done.stderr)
    assert revision_count(sessions) == before

    # Errors of the file's own schema are named the same way.
    document = copy.deepcopy(exported)
    document["situations"][4]["kind"] = "war"
    document["situations"][4]["colour"] = "red"
    path.write_text(json.dumps(document), encoding="utf-8")
    done = cli("data", "import", str(path), database_url=own_database, check=False)
    assert done.returncode == 2
    record = f"situations[4] {document['situations'][4]['id']}"
    assert f"{record}: kind: Input should be 'extradition_case'" in done.stderr
    assert f"{record}: colour: Extra inputs are not permitted" in done.stderr
    assert revision_count(sessions) == before


def test_unreadable_input_and_unknown_formats_are_errors(own_database: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("destinations: [unclosed", encoding="utf-8")
    for args in (
        ("data", "import", str(broken)),
        ("data", "import", str(tmp_path / "missing.yaml")),
        ("data", "export", str(tmp_path / "reference.txt")),
    ):
        done = cli(*args, database_url=own_database, check=False)
        assert done.returncode == 2 and done.stderr.startswith("error: "), done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "reference.txt").exists()


def test_data_commands_have_help(own_database: str) -> None:
    for command in (["data"], ["data", "load"], ["data", "export"], ["data", "import"]):
        done = cli(*command, "--help", database_url=own_database)
        assert "Usage" in done.stdout
