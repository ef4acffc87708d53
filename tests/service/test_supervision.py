"""Workers of `travelrisk serve --workers N` exit when their supervisor dies, even by `kill -9`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.supervision import SUPERVISOR_PID_ENV, exit_with_parent
from tests.service.conftest import Server


def children_of(pid: int) -> set[int]:
    """Pids whose parent is `pid`, read from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 (after the parenthesised command name, which may contain spaces) is the parent pid.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def port_accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return bool(condition())  # type: ignore[operator]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process parentage from /proc")
def test_workers_exit_when_the_supervisor_is_killed_and_the_port_is_free_again(
    tmp_path: Path, database_url: str
) -> None:
    server = Server(database_url, tmp_path / "server.log", workers=2).start()
    assert server.process is not None
    supervisor = server.process.pid
    try:
        # Two workers (multiprocessing may add a helper process of its own): every child must go.
        workers = children_of(supervisor)
        assert len(workers) >= 2, workers

        os.kill(supervisor, signal.SIGKILL)
        server.process.wait(timeout=10)

        assert wait_until(lambda: not any(alive(pid) for pid in workers), timeout=15), (
            f"workers still running after the supervisor died: {[p for p in workers if alive(p)]}"
        )
        assert not port_accepts(server.port), "the port still accepts connections"

        # A new server starts on the same port.
        again = Server(database_url, tmp_path / "again.log", workers=2)
        again.port, again.base_url = server.port, server.base_url
        again.start()
        try:
            assert httpx.get(f"{again.base_url}/healthz", timeout=5).status_code == 200
        finally:
            again.stop()
    finally:
        # Whatever is left of the first server's process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(supervisor, signal.SIGKILL)


def test_a_process_outside_a_supervised_worker_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SUPERVISOR_PID_ENV, raising=False)
    assert exit_with_parent() is False
    monkeypatch.setenv(SUPERVISOR_PID_ENV, str(os.getpid()))  # the supervisor itself (one worker in-process)
    assert exit_with_parent() is False


def test_a_worker_whose_parent_is_already_gone_exits_at_once(tmp_path: Path) -> None:
    # A child that arms the guard naming a parent that is not its parent, as if the supervisor had died
    # before the worker started: the worker must end itself instead of serving on.
    script = (
        "import os, time\n"
        "from service.supervision import exit_with_parent\n"
        f"os.environ['{SUPERVISOR_PID_ENV}'] = str(os.getppid() + 1_000_000)\n"
        "assert exit_with_parent(interval=0.05, grace=2)\n"
        "time.sleep(30)\n"
        "print('still running')\n"
    )
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == -signal.SIGTERM, result.stderr
    assert "still running" not in result.stdout
    assert time.monotonic() - started < 20
