"""Settings come from TRAVELRISK_* variables, and each one is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import Settings
from tests.service.conftest import PROJECT_ROOT


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRAVELRISK_DATABASE_URL", "postgresql+psycopg://u:p@db/x")
    monkeypatch.setenv("TRAVELRISK_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("TRAVELRISK_MODEL_DIR", str(tmp_path))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == "postgresql+psycopg://u:p@db/x"
    assert settings.max_body_bytes == 2048
    assert settings.model_dir == tmp_path


def test_defaults_are_the_embedded_service(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(Settings.model_fields):
        monkeypatch.delenv(f"TRAVELRISK_{name.upper()}", raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == "sqlite:///./travelrisk.db"


def test_every_setting_is_documented() -> None:
    doc = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert f"`TRAVELRISK_{name.upper()}`" in doc, name
