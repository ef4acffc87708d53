"""The README's integration examples, copied out of README.md and run against a real service."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from service.rosters.csv_format import template
from tests.service.conftest import PROJECT_ROOT, Server, server_env

README_URL = "http://127.0.0.1:8000"
FENCED = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def section(title: str) -> str:
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n### {title}\n")
    end = min(i for i in (text.find("\n### ", start + 1), text.find("\n## ", start + 1)) if i != -1)
    return text[start:end]


def blocks(title: str, language: str) -> list[str]:
    return [code for lang, code in FENCED.findall(section(title)) if lang == language]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "roster.csv").write_text(template(), encoding="utf-8")
    trips = [
        {
            "traveler": {"reference": f"J-{i}", "citizenships": ["CA"]},
            "trip": {"legs": [{"country": "CN", "arrive": "2018-12-05", "depart": "2018-12-20"}]},
        }
        for i in range(3)
    ]
    (tmp_path / "roster.json").write_text(json.dumps(trips), encoding="utf-8")
    return tmp_path


def environment(server: Server, key: str) -> dict[str, str]:
    env = server_env(server.database_url)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(KEY=key, TRAVELRISK_KEY=key, TRAVELRISK_URL=server.base_url)
    return env


def test_the_command_line_roster_examples(server: Server, new_key: Any, workdir: Path) -> None:
    (script,) = blocks("A roster from the command line", "sh")
    result = subprocess.run(
        ["bash", "-e", "-c", script.replace(README_URL, server.base_url)],
        cwd=workdir,
        env=environment(server, new_key()),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("roster done") == 2
    assert len((workdir / "results.csv").read_text(encoding="utf-8").splitlines()) == 1 + 2
    assert len((workdir / "results.jsonl").read_text(encoding="utf-8").splitlines()) == 3


def test_the_client_examples(server: Server, new_key: Any, workdir: Path) -> None:
    scripts = [code for code in blocks("The Python client", "python") if "def receive" not in code]
    assert len(scripts) == 2
    env = environment(server, new_key())
    for script in scripts:
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=workdir, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert re.search(r"\b(low|elevated|high|severe)\b", result.stdout), result.stdout


def test_the_webhook_receiver_example() -> None:
    (code,) = [code for code in blocks("The Python client", "python") if "def receive" in code]
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    receive = namespace["receive"]
    body = b'{"type": "assessment.created"}'
    now = int(time.time())
    signature = hmac.new(b"whsec", f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"Travelrisk-Signature": f"t={now},v1={signature}", "Travelrisk-Event-Id": "evt-1"}
    assert receive(body, headers, "whsec") == 204
    assert receive(body, headers, "whsec") == 204 and namespace["seen_events"] == {"evt-1"}
    assert receive(body + b" ", headers, "whsec") == 400
    assert receive(body, headers, "another secret") == 400
