#!/usr/bin/env bash
# benchmarks/http/run.sh: POST /v1/assessments on the embedded default (`travelrisk serve`, one worker,
# SQLite) against a bare FastAPI app validating the same request schema (bare_app.py), in one run.
#
# Both servers are pinned to CPU $SERVER_CPU, wrk to CPU $WRK_CPU (one wrk measurement is the shared
# harness's run.sh, see ../shared/bench/README.md). Rounds alternate bare, project, bare, project, ...;
# the summary gives medians and the ratio project/bare. Run from the project root:
#
#     benchmarks/http/run.sh
#
# With SCALE=N a third server, "scaled", runs on SCALED_PORT with N synthetic situations and N employer
# disputes added to its database (seed_reference.py, leaving out the benchmark traveller's country), and
# the summary adds the ratio scaled/project: the cost of looking facts up in a large reference set.
#
# Env (defaults): ROUNDS=5 DURATION=10s WARMUP=3s CONNS=32 SERVER_CPU=0 WRK_CPU=1 SCALE= SCALED_PORT=18103
#   BARE_PORT=18101 PROJECT_PORT=18102  BENCH_DIR=../shared/bench  BODY=benchmarks/http/body.json
#   VENV (the venv whose travelrisk and uvicorn run; default: the one on PATH)
#   RESULTS_DIR=benchmarks/http/results/<timestamp>
# Exit status: 0 ok; 1 setup failure; 3 a measured run had non-2xx responses or socket errors.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
ROUNDS="${ROUNDS:-5}"
WARMUP="${WARMUP:-3s}"
export DURATION="${DURATION:-10s}" CONNS="${CONNS:-32}" WRK_CPU="${WRK_CPU:-1}"
SERVER_CPU="${SERVER_CPU:-0}"
BARE_PORT="${BARE_PORT:-18101}"
PROJECT_PORT="${PROJECT_PORT:-18102}"
SCALED_PORT="${SCALED_PORT:-18103}"
SCALE="${SCALE:-}"
BENCH_DIR="$(realpath "${BENCH_DIR:-$root/../shared/bench}")"
BODY="$(realpath "${BODY:-$root/benchmarks/http/body.json}")"
bin="${VENV:+$VENV/bin/}"
RESULTS_DIR="${RESULTS_DIR:-$root/benchmarks/http/results/$(date +%Y%m%d-%H%M%S)}"

die() { echo "run.sh: $*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk not found (apt-get install -y wrk)"
command -v taskset >/dev/null || die "taskset not found (util-linux)"
[[ -x "$BENCH_DIR/run.sh" ]] || die "no harness at $BENCH_DIR (set BENCH_DIR)"
"${bin}travelrisk" --help >/dev/null || die "no travelrisk command (activate the venv or set VENV)"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$BARE_PORT" "$PROJECT_PORT" ${SCALE:+"$SCALED_PORT"}; do
  port_open "$port" && die "port $port already in use; refusing to measure a server I did not start"
done

mkdir -p "$RESULTS_DIR"
work="$(mktemp -d)"
export WRK_LOG="$RESULTS_DIR/wrk.log"
export TRAVELRISK_DATABASE_URL="sqlite:///$work/bench.db"
# One key drives the whole load: its rate limit is lifted (the limiter still counts every request).
export TRAVELRISK_RATE_LIMIT_PER_KEY="${TRAVELRISK_RATE_LIMIT_PER_KEY:-1000000000/minute}"

# Each server runs in its own process group and is stopped by that group's id.
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # name log command...
  local name="$1" log="$2"; shift 2
  set -m
  taskset -c "$SERVER_CPU" "$@" >"$log" 2>&1 &
  PIDS+=("$!")
  set +m
  echo "started $name: pgid $!, cpu $SERVER_CPU" >&2
}
wait_port() {
  for _ in $(seq 300); do port_open "$1" && return 0; sleep 0.2; done
  die "nothing listening on $1 after 60s (see $RESULTS_DIR/*.log)"
}

# The key, and the response the bare app returns: the service's own answer to this body.
key="$("${bin}travelrisk" keys create --tenant bench --role requester)"
export BENCH_KEY="$key"
"${bin}travelrisk" assess "$BODY" >"$work/response.json"

{
  echo "# benchmarks/http/run.sh $(date -Is) nproc=$(nproc) loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# wrk -t1 -c$CONNS -d$DURATION on cpu $WRK_CPU; servers on cpu $SERVER_CPU; rounds=$ROUNDS"
  "${bin}python" -c 'import fastapi, pydantic, starlette, sys, uvicorn; print(f"# python {sys.version.split()[0]} fastapi {fastapi.__version__} starlette {starlette.__version__} pydantic {pydantic.__version__} uvicorn {uvicorn.__version__}")'
} | tee "$RESULTS_DIR/summary.txt"

BARE_RESPONSE="$work/response.json" start bare "$RESULTS_DIR/bare.log" \
  "${bin}uvicorn" benchmarks.http.bare_app:app --host 127.0.0.1 --port "$BARE_PORT" --workers 1 \
  --log-level warning --no-access-log
# The service runs as a newcomer runs it, its SQLite file in a scratch directory.
start project "$RESULTS_DIR/project.log" \
  bash -c 'cd "$1" && shift && exec "$@"' _ "$work" "${bin}travelrisk" serve --host 127.0.0.1 \
  --port "$PROJECT_PORT" --workers 1
targets=("bare|http://127.0.0.1:$BARE_PORT" "project|http://127.0.0.1:$PROJECT_PORT")
if [[ -n "$SCALE" ]]; then
  mkdir -p "$work/scaled"
  scaled_db="sqlite:///$work/scaled/bench.db"
  TRAVELRISK_DATABASE_URL="$scaled_db" "${bin}travelrisk" db upgrade >/dev/null
  TRAVELRISK_DATABASE_URL="$scaled_db" "${bin}travelrisk" keys create --tenant bench --role requester >/dev/null
  TRAVELRISK_DATABASE_URL="$scaled_db" "${bin}python" "$root/benchmarks/http/seed_reference.py" "$SCALE" \
    --exclude "$("${bin}python" -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))["traveler"]["citizenships"]))' "$BODY")" \
    | tee -a "$RESULTS_DIR/summary.txt" >&2
  # The same key must work on both project servers: copy the key table's row across.
  "${bin}python" - "$TRAVELRISK_DATABASE_URL" "$scaled_db" <<'PY'
import sys
from sqlalchemy import create_engine, text
src, dst = (create_engine(u) for u in sys.argv[1:3])
with src.connect() as a, dst.begin() as b:
    b.execute(text("DELETE FROM api_keys")); b.execute(text("DELETE FROM tenants"))
    for table in ("tenants", "api_keys"):
        rows = [dict(r._mapping) for r in a.execute(text(f"SELECT * FROM {table}"))]
        if rows:
            b.execute(text(f"INSERT INTO {table} ({', '.join(rows[0])}) VALUES ({', '.join(':' + c for c in rows[0])})"), rows)
PY
  start scaled "$RESULTS_DIR/scaled.log" \
    bash -c 'cd "$1" && shift && exec "$@"' _ "$work/scaled" env TRAVELRISK_DATABASE_URL="$scaled_db" \
    "${bin}travelrisk" serve --host 127.0.0.1 --port "$SCALED_PORT" --workers 1
  targets+=("scaled|http://127.0.0.1:$SCALED_PORT")
fi
wait_port "$BARE_PORT"
wait_port "$PROJECT_PORT"
[[ -z "$SCALE" ]] || wait_port "$SCALED_PORT"

for target in "${targets[@]}"; do
  IFS='|' read -r name url <<<"$target"
  code=$(curl -sS -o "$RESULTS_DIR/$name.sample.json" -w '%{http_code} %{size_download}' \
    -H 'Content-Type: application/json' -H "Authorization: Bearer $key" --data-binary "@$BODY" \
    "$url/v1/assessments")
  [[ "$code" == 201* ]] || die "$name answered ${code% *} (want 201); see $RESULTS_DIR/$name.sample.json"
  echo "check $name: HTTP ${code% *}, ${code#* } bytes" | tee -a "$RESULTS_DIR/summary.txt" >&2
done

echo "warm-up ($WARMUP each)..." >&2
for target in "${targets[@]}"; do
  DURATION="$WARMUP" "$BENCH_DIR/run.sh" "${target#*|}" /v1/assessments "$BODY" >/dev/null
done

tsv="$RESULTS_DIR/results.tsv"
printf 'round\ttarget\trps\tp50_ms\tp99_ms\tvalid\n' >"$tsv"
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
invalid=0
for ((r = 1; r <= ROUNDS; r++)); do
  for target in "${targets[@]}"; do
    IFS='|' read -r name url <<<"$target"
    status=0
    line="$("$BENCH_DIR/run.sh" "$url" /v1/assessments "$BODY")" || status=$?
    [[ -n "$line" ]] || die "no result for $name in round $r"
    valid=1; (( status == 0 )) || { valid=0; invalid=1; }
    printf 'round %d %-8s %s%s\n' "$r" "$name" "${line#RESULT }" "$([[ $valid == 1 ]] || echo '  [INVALID]')" \
      | tee -a "$RESULTS_DIR/summary.txt"
    printf '%d\t%s\t%s\t%s\t%s\t%d\n' "$r" "$name" "$(field rps "$line")" "$(field p50_ms "$line")" \
      "$(field p99_ms "$line")" "$valid" >>"$tsv"
  done
done

"${bin}python" - "$tsv" <<'PY' | tee -a "$RESULTS_DIR/summary.txt"
import csv, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1]), delimiter="\t") if r["valid"] == "1"]
by = {t: [r for r in rows if r["target"] == t] for t in ("bare", "project", "scaled")}
med = {t: {m: statistics.median(float(r[m]) for r in rs) for m in ("rps", "p50_ms", "p99_ms")} for t, rs in by.items() if rs}
print()
for t, m in med.items():
    print(f"MEDIAN {t:<8} n={len(by[t])} rps={m['rps']:.1f} p50_ms={m['p50_ms']:.3f} p99_ms={m['p99_ms']:.3f}")
def ratio(a, b):
    rounds = {r["round"] for r in by[a]} & {r["round"] for r in by[b]}
    pair = lambda m: statistics.median(
        float(next(r for r in by[a] if r["round"] == k)[m]) / float(next(r for r in by[b] if r["round"] == k)[m])
        for k in rounds)
    print(f"RATIO {a}/{b} rps={med[a]['rps'] / med[b]['rps']:.3f}"
          f" p99={med[a]['p99_ms'] / med[b]['p99_ms']:.3f}"
          f"  (median of per-round ratios: rps={pair('rps'):.3f} p99={pair('p99_ms'):.3f})")
if "bare" in med and "project" in med:
    ratio("project", "bare")
    ok = med["project"]["rps"] >= 0.5 * med["bare"]["rps"] and med["project"]["p99_ms"] <= 20
    print(f"TARGETS throughput >= 0.5x bare and p99 <= 20 ms: {'met' if ok else 'NOT met'}")
if "scaled" in med and "project" in med:
    ratio("scaled", "project")
    ok = med["scaled"]["rps"] >= 0.9 * med["project"]["rps"]
    print(f"TARGET large reference set within 10% of the bundled set's throughput: {'met' if ok else 'NOT met'}")
PY
echo "results: $RESULTS_DIR" >&2
if (( invalid )); then
  echo "run.sh: some runs had non-2xx responses or socket errors; they were left out of the medians" >&2
  exit 3
fi
