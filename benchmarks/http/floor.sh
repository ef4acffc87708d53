#!/usr/bin/env bash
# benchmarks/http/floor.sh: POST /v1/assessments on the embedded default (`travelrisk serve`, one worker,
# SQLite in a scratch directory) against the floor of a durable write, in one run of the shared harness:
#
#     BASELINE_ECHO_PATH=/v1/echo-8k-group ../shared/bench/compare.sh "travelrisk serve ..." /v1/assessments body.json
#
# `/v1/echo-8k-group` (../shared/bench/baseline_app.py) validates a request of the same shape, answers
# ~7.5 KB, and acknowledges only after one writer thread committed the rows of every waiting request in
# one SQLite transaction (WAL, synchronous=NORMAL). Targets: throughput >= 0.6x of it, p99 <= 2x its p99.
# Run from the project root, with the project installed in VENV:
#
#     benchmarks/http/floor.sh                            # ROUNDS=3 DURATION=10s
#     VENV=.venv ROUNDS=3 DURATION=8s benchmarks/http/floor.sh
#
# Env (defaults): VENV (.venv), BENCH_DIR (../shared/bench), BODY (benchmarks/http/body.json),
#   RESULTS_DIR (benchmarks/http/results/floor-<timestamp>), and compare.sh's own (ROUNDS, DURATION,
#   WARMUP, CONNS, SERVER_CPU, WRK_CPU, BASE_PORT, PROJECT_PORT). The baseline runs with the same venv's
#   uvicorn (UVICORN), so the harness needs no venv of its own.
# Exit status: compare.sh's (0 ok; 1 setup failure; 3 a measured run had non-2xx responses or socket errors).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
VENV="$(realpath "${VENV:-$root/.venv}")"
BENCH_DIR="$(realpath "${BENCH_DIR:-$root/../shared/bench}")"
BODY="$(realpath "${BODY:-$root/benchmarks/http/body.json}")"
export RESULTS_DIR="${RESULTS_DIR:-$root/benchmarks/http/results/floor-$(date +%Y%m%d-%H%M%S)}"
export UVICORN="${UVICORN:-$VENV/bin/uvicorn}"
export BASELINE_ECHO_PATH="${BASELINE_ECHO_PATH:-/v1/echo-8k-group}"
export PROJECT_PORT="${PROJECT_PORT:-18002}"
[[ -x "$BENCH_DIR/compare.sh" ]] || { echo "floor.sh: no harness at $BENCH_DIR (set BENCH_DIR)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export TRAVELRISK_DATABASE_URL="sqlite:///$work/bench.db"
# One key drives the whole load: its rate limit is lifted (the limiter still counts every request).
export TRAVELRISK_RATE_LIMIT_PER_KEY="${TRAVELRISK_RATE_LIMIT_PER_KEY:-1000000000/minute}"
"$VENV/bin/travelrisk" db upgrade >/dev/null
BENCH_KEY="$("$VENV/bin/travelrisk" keys create --tenant bench --role requester)"
export BENCH_KEY
mkdir -p "$RESULTS_DIR"
echo "# floor.sh $(date -Is) uptime: $(uptime)" | tee "$RESULTS_DIR/load.txt"

status=0
"$BENCH_DIR/compare.sh" \
  "cd '$work' && exec '$VENV/bin/travelrisk' serve --host 127.0.0.1 --port $PROJECT_PORT --workers 1" \
  /v1/assessments "$BODY" || status=$?
echo "# after: $(uptime)" | tee -a "$RESULTS_DIR/load.txt"
exit "$status"
