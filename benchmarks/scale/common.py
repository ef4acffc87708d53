"""Helpers of the scale benchmarks: a scratch database (SQLite file, or TRAVELRISK_DATABASE_URL), migrated,
with optional synthetic reference data, and percentiles.

Run the scripts from the project root with the project's venv, e.g. `python benchmarks/scale/reference_update.py`.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "http"))  # seed_reference.py

# One BLAS thread: the targets are per core.
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")


def scratch_database(name: str) -> str:
    """TRAVELRISK_DATABASE_URL when set (a scratch PostgreSQL database: it is filled, not emptied), else a new
    SQLite file in a temporary directory; migrated either way, and exported for the project's settings."""
    url = os.environ.get("TRAVELRISK_DATABASE_URL")
    if not url:
        directory = Path(os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix=f"travelrisk-{name}-"))
        directory.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{directory / f'{name}.db'}"
        os.environ["TRAVELRISK_DATABASE_URL"] = url
    from service.db import upgrade_database

    upgrade_database(url)
    return url


def seed_reference(count: int, exclude: set[str] | None = None) -> None:
    """`count` synthetic situations and `count` employer disputes (benchmarks/http/seed_reference.py)."""
    import seed_reference

    seed_reference.main(count, exclude or set())


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, by linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[min(int(q), 99) - 1] if q < 100 else ordered[-1]


def summary(values_ms: list[float]) -> str:
    """p50 / p95 / p99 / max of latencies in milliseconds."""
    return (
        f"n={len(values_ms)} p50={percentile(values_ms, 50):.2f} ms p95={percentile(values_ms, 95):.2f} ms"
        f" p99={percentile(values_ms, 99):.2f} ms max={max(values_ms):.2f} ms"
    )


def wait_ready(base: str, seconds: float) -> None:
    """Wait until the server at `base` answers /readyz with 200; exit the benchmark after `seconds`."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("server not ready")
        time.sleep(0.2)
