"""The CLI starts without the web and database stacks, and words invalid input as the API does."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("fastapi", "starlette", "sqlalchemy", "uvicorn", "alembic", "numpy")


def imported_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_cli_loads_no_web_database_or_model_stack() -> None:
    modules = imported_after("import service.cli")
    assert not {m for m in modules if m.split(".")[0] in HEAVY}


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["serve", "--help"], ["keys", "create", "--help"], ["data", "--help"], ["model", "train", "--help"]],
)
def test_help_loads_no_web_database_or_model_stack(argv: list[str]) -> None:
    code = (
        "import sys\nfrom service.cli import app\n"
        f"sys.argv = ['travelrisk', *{argv!r}]\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
    )
    modules = imported_after(code)
    assert not {m for m in modules if m.split(".")[0] in HEAVY}


def test_assess_loads_no_web_or_database_stack(tmp_path) -> None:
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps(
            {
                "traveler": {"citizenships": ["CA"]},
                "trip": {"legs": [{"country": "CN", "arrive": "2018-12-05", "depart": "2018-12-19"}]},
            }
        )
    )
    code = (
        "import sys\nfrom service.cli import app\n"
        f"sys.argv = ['travelrisk', 'assess', {str(request)!r}]\n"
        "try:\n    app()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
    )
    modules = imported_after(code)
    assert "models.assess" in modules  # it did score
    assert not {m for m in modules if m.split(".")[0] in ("fastapi", "starlette", "sqlalchemy", "uvicorn", "alembic")}


def test_assess_words_a_validator_error_without_pydantic_prefix() -> None:
    request = {
        "traveler": {"citizenships": ["CA"]},
        "trip": {"legs": [{"country": "CN", "arrive": "2018-12-05", "depart": "2018-12-01"}]},
    }
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "assess", "-"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "trip.legs.0.depart: depart (2018-12-01) is before arrive" in done.stderr
    assert "Value error" not in done.stderr
