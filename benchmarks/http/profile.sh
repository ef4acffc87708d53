#!/usr/bin/env bash
# benchmarks/http/profile.sh: where a loaded `travelrisk serve` spends its time on POST /v1/assessments.
#
# Starts the service (one worker, SQLite in a scratch directory) pinned to CPU $SERVER_CPU, drives it with
# wrk (the shared harness's run.sh, CPU $WRK_CPU) for $DURATION, and samples it with py-spy meanwhile
# (`pip install py-spy`; needs ptrace, i.e. root or CAP_SYS_PTRACE). Writes the collapsed stacks and a
# summary of the share of samples per frame (inclusive) to $RESULTS_DIR. Run from the project root:
#
#     benchmarks/http/profile.sh                     # DURATION=20s
#     NO_PROFILE=1 benchmarks/http/profile.sh        # only throughput and CPU per request
#
# Besides wrk's figures it prints `cpu_ms_per_request`: the server's CPU time (all threads, user + system)
# during the measured run divided by the requests served. On a machine shared with other work that figure
# moves much less than req/s, so it is the one to compare changes by.
#
# Env (defaults): VENV (.venv), BENCH_DIR (../shared/bench), BODY (benchmarks/http/body.json), DURATION
#   (20s), CONNS (32), SERVER_CPU (0), WRK_CPU (1), PORT (18012), RATE (py-spy samples/s, 250),
#   RESULTS_DIR (benchmarks/http/results/profile-<timestamp>).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
VENV="$(realpath "${VENV:-$root/.venv}")"
BENCH_DIR="$(realpath "${BENCH_DIR:-$root/../shared/bench}")"
BODY="$(realpath "${BODY:-$root/benchmarks/http/body.json}")"
export DURATION="${DURATION:-20s}" CONNS="${CONNS:-32}" WRK_CPU="${WRK_CPU:-1}"
SERVER_CPU="${SERVER_CPU:-0}"
PORT="${PORT:-18012}"
RATE="${RATE:-250}"
RESULTS_DIR="${RESULTS_DIR:-$root/benchmarks/http/results/profile-$(date +%Y%m%d-%H%M%S)}"
PYSPY="${PYSPY:-$VENV/bin/py-spy}"
[[ -n "${NO_PROFILE:-}" || -x "$PYSPY" ]] || { echo "profile.sh: no py-spy at $PYSPY ($VENV/bin/pip install py-spy)" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_open "$PORT" && { echo "profile.sh: port $PORT already in use" >&2; exit 1; }

mkdir -p "$RESULTS_DIR"
work="$(mktemp -d)"
export TRAVELRISK_DATABASE_URL="sqlite:///$work/bench.db"
export TRAVELRISK_RATE_LIMIT_PER_KEY="${TRAVELRISK_RATE_LIMIT_PER_KEY:-1000000000/minute}"
"$VENV/bin/travelrisk" db upgrade >/dev/null
BENCH_KEY="$("$VENV/bin/travelrisk" keys create --tenant bench --role requester)"
export BENCH_KEY

server=""
cleanup() {
  if [[ -n "$server" ]]; then
    kill -TERM -- "-$server" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 -- "-$server" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
set -m
# One worker, run in-process (no supervisor), so that py-spy samples the process serving the requests.
(cd "$work" && exec taskset -c "$SERVER_CPU" "$VENV/bin/uvicorn" service.commands.serve:worker_app --factory \
  --host 127.0.0.1 --port "$PORT" --no-access-log --log-level warning) >"$RESULTS_DIR/server.log" 2>&1 &
server=$!
set +m
for _ in $(seq 300); do port_open "$PORT" && break; sleep 0.2; done
port_open "$PORT" || { echo "profile.sh: server did not start (see $RESULTS_DIR/server.log)" >&2; exit 1; }
echo "# profile.sh $(date -Is) uptime: $(uptime)" | tee "$RESULTS_DIR/summary.txt"
DURATION=3s "$BENCH_DIR/run.sh" "http://127.0.0.1:$PORT" /v1/assessments "$BODY" >/dev/null
seconds="${DURATION%s}"
if [[ -n "${NO_PROFILE:-}" ]]; then PYSPY=true; fi
"$PYSPY" record --pid "$server" --rate "$RATE" --duration "$((seconds - 2))" --format raw --gil --nonblocking \
  --output "$RESULTS_DIR/stacks.txt" >/dev/null 2>&1 &
spy=$!
# CPU seconds the server used (user + system, all threads), around the measured run: CPU per request is
# what a busy shared machine disturbs least.
cpu_seconds() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$server/stat"; }
before="$(cpu_seconds)"
result="$("$BENCH_DIR/run.sh" "http://127.0.0.1:$PORT" /v1/assessments "$BODY")"
after="$(cpu_seconds)"
wait "$spy" || true
requests="$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$result")"
echo "$result cpu_ms_per_request=$(awk -v a="$before" -v b="$after" -v n="$requests" 'BEGIN{printf "%.3f", 1000 * (b - a) / n}')" \
  | tee -a "$RESULTS_DIR/summary.txt"
if [[ -s "$RESULTS_DIR/stacks.txt" ]]; then
  "$VENV/bin/python" "$root/benchmarks/http/stacks_summary.py" "$RESULTS_DIR/stacks.txt" "${TOP:-70}" \
    | tee -a "$RESULTS_DIR/summary.txt"
fi
echo "results: $RESULTS_DIR" >&2
