"""`travelrisk assess`: scores a request; bad input exits non-zero naming the field, never a traceback."""

import json
import subprocess
import sys

import pytest

GOOD = {
    "traveler": {"citizenships": ["CA"], "occupation": "former_diplomat"},
    "trip": {"legs": [{"country": "CN", "region": "Beijing", "arrive": "2018-12-05", "depart": "2018-12-19"}]},
}


def run(stdin: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "assess", *(args or ("-",))],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_scores_a_request_from_stdin() -> None:
    done = run(json.dumps(GOOD))
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["status"] == "scored"
    assert body["score"]["band"] in ("high", "severe")
    assert body["factors"][0]["evidence"]


def test_scores_a_list_from_a_file(tmp_path) -> None:
    path = tmp_path / "roster.json"
    path.write_text(json.dumps([GOOD, GOOD]))
    done = run("", str(path))
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 2


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("{not json", "malformed JSON"),
        (json.dumps({**GOOD, "traveler": {**GOOD["traveler"], "occupation": "spy"}}), "traveler.occupation"),
        (json.dumps({**GOOD, "traveler": {"citizenships": ["XX"]}}), "traveler.citizenships.0"),
        (
            json.dumps({**GOOD, "trip": {"legs": [{"country": "CN", "arrive": "2018-12-05", "depart": "2018-12-01"}]}}),
            "trip.legs.0.depart",
        ),
        (json.dumps({"trip": GOOD["trip"]}), "traveler"),
        (json.dumps({**GOOD, "extra": 1}), "extra"),
    ],
)
def test_bad_input_names_the_field(payload: str, expected: str) -> None:
    done = run(payload)
    assert done.returncode == 2
    assert expected in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_unknown_enum_lists_allowed_values() -> None:
    done = run(json.dumps({**GOOD, "traveler": {**GOOD["traveler"], "occupation": "spy"}}))
    assert "former_diplomat" in done.stderr


def test_missing_file_is_an_error() -> None:
    done = run("", "/nonexistent/request.json")
    assert done.returncode == 2
    assert "cannot read" in done.stderr
