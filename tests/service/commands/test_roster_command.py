"""`travelrisk roster FILE`: in-process on the configured database, and against a server with --server."""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path

from service.rosters.csv_format import template
from tests.service.conftest import Server, cli

EXTRA_ROW = "E-3,CA,,,astronaut,,,,,,,,,,,,,,CN 2018-12-05 2018-12-20\r\n"


def test_a_csv_roster_in_process(tmp_path: Path, database_url: str) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(template() + EXTRA_ROW, encoding="utf-8")
    out = tmp_path / "results.csv"
    tenant = f"cli-{uuid.uuid4().hex[:8]}"
    result = cli("roster", str(roster), "--tenant", tenant, "--out", str(out), database_url=database_url)
    assert "roster done" in result.stdout
    assert "invalid" in result.stdout and "occupation" in result.stdout  # the summary and the error table
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["row"], r["status"]) for r in rows] == [("2", "scored"), ("3", "scored"), ("4", "invalid")]
    assert rows[0]["band"] == "severe" and rows[0]["assessment_id"]


def test_an_unreadable_roster_fails_with_a_message(tmp_path: Path, database_url: str) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("name,legs\r\nx,CN 2018-01-01 2018-01-02\r\n", encoding="utf-8")
    result = cli("roster", str(roster), database_url=database_url, check=False)
    assert result.returncode == 2
    assert "unknown column 'name'" in result.stderr


def test_a_json_roster_on_a_server(tmp_path: Path, database_url: str) -> None:
    key = cli(
        "keys", "create", "--tenant", f"cli-{uuid.uuid4().hex[:8]}", "--role", "requester", database_url=database_url
    )
    trips = [
        {
            "traveler": {"reference": f"S-{i}", "citizenships": ["CA"]},
            "trip": {"legs": [{"country": "CN", "arrive": "2018-12-05", "depart": "2018-12-20"}]},
        }
        for i in range(25)
    ]
    roster = tmp_path / "roster.json"
    roster.write_text(json.dumps(trips), encoding="utf-8")
    out = tmp_path / "results.jsonl"
    server = Server(database_url, tmp_path / "server.log").start()
    try:
        result = cli(
            "roster", str(roster), "--server", server.base_url, "--key", key.stdout.strip(), "--out", str(out),
            database_url=database_url,
        )  # fmt: skip
    finally:
        server.stop()
    assert "roster done" in result.stdout and "25 of 25" in result.stdout
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["reference"] for line in lines] == [f"S-{i}" for i in range(25)]
    assert all(line["status"] == "scored" for line in lines)
