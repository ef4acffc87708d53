"""`travelrisk model list` and `model train`: versions only, and a missing package said in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from models.artifact import active_version, bundled_model_dir, list_versions
from service.commands.common import missing_module_message

# Runs the CLI with some modules made impossible to import, as on an install without an extra.
BLOCKING_RUNNER = """
import sys
from importlib.abc import MetaPathFinder

BLOCKED = set(sys.argv[1].split(","))

class Block(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block())
from service.cli import app
sys.argv = ["travelrisk", *sys.argv[2:]]
app()
"""


def run_cli(*args: str, blocked: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKING_RUNNER, blocked, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def test_model_list_names_versions_not_their_cards(tmp_path: Path) -> None:
    assert any(bundled_model_dir().glob("model-*.card.json")), "the bundled model has a card beside it"
    done = run_cli("model", "list", env={"TRAVELRISK_MODEL_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    listed = {line[2:]: line[0] for line in done.stdout.splitlines()}
    artifacts = {p.name.removeprefix("model-").removesuffix(".json") for p in bundled_model_dir().glob("model-*.json")}
    assert set(listed) == {a for a in artifacts if not a.endswith(".card")}
    assert [v for v, mark in listed.items() if mark == "*"] == [active_version()]
    assert ".card" not in done.stdout


def test_list_versions_skips_cards_in_a_model_directory(tmp_path: Path) -> None:
    for name in ("model-mabc.json", "model-mabc.card.json", "model-mabc.card.md", "active.json"):
        (tmp_path / name).write_text("{}")
    versions = list_versions(tmp_path)
    assert versions[0] == "mabc"
    assert all("." not in v for v in versions)


def test_train_without_its_packages_says_what_to_install_in_one_line(tmp_path: Path) -> None:
    # The fitting package is missing, as after a broken install.
    done = run_cli("model", "train", "--out", str(tmp_path), blocked="scipy")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == f"error: {missing_module_message('scipy')}", done.stderr
    assert "pip install" in done.stderr
    assert "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir()), "nothing is written"


def test_postgres_url_without_the_driver_names_the_postgres_extra() -> None:
    done = run_cli(
        "db",
        "current",
        blocked="psycopg,psycopg2",
        env={"TRAVELRISK_DATABASE_URL": "postgresql+psycopg://u:p@127.0.0.1:1/db"},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "'postgres' extra" in done.stderr
    assert "pip install -e '.[postgres]'" in done.stderr


def test_missing_module_messages() -> None:
    message = missing_module_message("psycopg")
    assert message is not None and "travelrisk[postgres]" in message
    unknown = missing_module_message("somepackage.sub")
    assert unknown is not None and "'somepackage' is missing" in unknown and "pip install -e ." in unknown
    # One of our own modules missing is a bug, shown in full rather than explained away.
    assert missing_module_message("service.nowhere") is None
    assert missing_module_message("") is None
