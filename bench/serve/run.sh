#!/usr/bin/env bash
# bench/serve/run.sh — scoring-server throughput and latency: pyfunc serve vs
# `mlflow models serve` vs MLServer (MLflow runtime, adaptive batching on).
#
# The same scikit-learn model (LogisticRegression, iris, 4 float columns, saved by
# MLflow) is served by each server with ONE Python worker, on loopback. Load comes from
# wrk with a Lua script posting the same JSON body again and again:
#   single-row requests at concurrency 1, 16 and 64; 100-row requests at concurrency 16.
# pyfunc and MLflow get MLflow's protocol (POST /invocations, dataframe_split);
# MLServer gets its native V2 endpoint (POST /v2/models/model/infer, pandas codec),
# because its adaptive batching applies only there (its /invocations handler calls
# predict directly, unbatched).
#
# Usage: bench/serve/run.sh [seconds-per-point]   (default 4)
# Env: PYFUNC (binary; default build/cpp/pyfunc), MLSERVER_VENV (default
# bench/serve/.venv-mlserver, created with `pip install mlserver mlserver-mlflow` on
# first use; set SKIP_MLSERVER=1 to leave MLServer out, SKIP_MLFLOW=1 to leave MLflow out:
# both, to compare two pyfunc binaries in alternating runs).
# Output: a Markdown table on stdout (and in $OUT, default bench/serve/results.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export PATH=$ROOT/.venv/bin:$PATH  # mlflow models serve runs `uvicorn` from PATH
PY=$ROOT/.venv/bin/python
PYFUNC=${PYFUNC:-$ROOT/build/cpp/pyfunc}
DUR=${1:-4}
OUT=${OUT:-$ROOT/bench/serve/results.md}
MLSERVER_VENV=${MLSERVER_VENV:-$ROOT/bench/serve/.venv-mlserver}
WORK=$(mktemp -d /tmp/pyfunc-bench-serve.XXXXXX)
SERVER_PID=""

cleanup() {
  [[ -n $SERVER_PID ]] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_ready() {  # url
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server died; log:" >&2; tail -20 "$WORK/server.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "server not ready: $1" >&2; exit 1
}

stop_server() {  # SIGTERM, then SIGKILL to the whole group after 15 s (MLServer can hang on exit)
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  pkill -KILL -P "$SERVER_PID" 2>/dev/null || true
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  sleep 1
}

RESULTS=$WORK/results.tsv
point() {  # server-name lua concurrency rows
  local name=$1 lua=$2 c=$3 rows=$4 t=$(( $3 < 2 ? 1 : 2 ))
  wrk -t1 -c"$c" -d1s -s "$lua" "$URL" >/dev/null 2>&1 || true   # warm-up
  local line
  line=$(wrk -t"$t" -c"$c" -d"${DUR}s" --timeout 30s -s "$lua" "$URL" 2>&1 | grep '^RESULT') || line="RESULT 0 0 0 0 0"
  read -r _ n errors rps p50 p99 <<<"$line"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rows" "$c" "$rps" "$p50" "$p99" "$errors" | tee -a "$RESULTS" >&2
}

run_points() {  # name lua-prefix
  point "$1" "$WORK/${2}_1.lua" 1 1
  point "$1" "$WORK/${2}_1.lua" 16 1
  point "$1" "$WORK/${2}_1.lua" 64 1
  point "$1" "$WORK/${2}_100.lua" 16 100
}

echo "== model and request bodies" >&2
$PY bench/serve/make_model.py "$WORK" >/dev/null 2>&1
PREDICT_US=$($PY bench/serve/floor.py "$WORK/model" 2>/dev/null | tail -1)
echo "model.predict(1 row) median: ${PREDICT_US} us" >&2

echo "== pyfunc serve" >&2
PORT=$(free_port); URL=http://127.0.0.1:$PORT
PYFUNC_PYTHON=$PY "$PYFUNC" serve -m "$WORK/model" -p "$PORT" -w 1 --env-manager local >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_ready "$URL/ping"
run_points pyfunc invocations
# Latency at concurrency 1 against the in-process floor, in alternating rounds: on a
# shared machine the speed of both drifts by tens of percent within a minute.
for round in 1 2 3; do
  floor=$($PY bench/serve/floor.py "$WORK/model" 2>/dev/null | tail -1)
  line=$(wrk -t1 -c1 -d"${DUR}s" -s "$WORK/invocations_1.lua" "$URL" 2>&1 | grep '^RESULT')
  read -r _ _ _ _ p50 _ <<<"$line"
  printf 'round\t%s\t%s\t%s\n' "$round" "$floor" "$p50" | tee -a "$WORK/rounds.tsv" >&2
done
stop_server

if [[ ${SKIP_MLFLOW:-0} != 1 ]]; then
  echo "== mlflow models serve" >&2
  PORT=$(free_port); URL=http://127.0.0.1:$PORT
  "$ROOT/.venv/bin/mlflow" models serve -m "$WORK/model" -p "$PORT" -w 1 --env-manager local >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "$URL/ping"
  run_points mlflow invocations
  stop_server
fi

MLSERVER_NOTE=""
if [[ ${SKIP_MLSERVER:-0} != 1 ]]; then
  if [[ ! -x $MLSERVER_VENV/bin/mlserver ]]; then
    echo "== creating $MLSERVER_VENV (pip install mlserver mlserver-mlflow scikit-learn)" >&2
    python3 -m venv "$MLSERVER_VENV"
    # uvloop 0.22+ breaks MLServer 1.7 ("There is no current event loop in thread MainThread").
    "$MLSERVER_VENV/bin/pip" install -q mlserver mlserver-mlflow scikit-learn "uvloop<0.22" >&2 || MLSERVER_NOTE="MLServer could not be installed"
  fi
  if [[ -z $MLSERVER_NOTE ]]; then
    echo "== mlserver (MLflow runtime, adaptive batching)" >&2
    PORT=$(free_port); URL=http://127.0.0.1:$PORT
    mkdir -p "$WORK/mlserver/model"
    cat >"$WORK/mlserver/settings.json" <<JSON
{"http_port": $PORT, "grpc_port": $(free_port), "metrics_port": $(free_port), "parallel_workers": 1,
 "debug": false}
JSON
    cat >"$WORK/mlserver/model/model-settings.json" <<JSON
{"name": "model", "implementation": "mlserver_mlflow.MLflowRuntime",
 "parameters": {"uri": "$WORK/model"}, "max_batch_size": 64, "max_batch_time": 0.002}
JSON
    (cd "$WORK/mlserver" && exec "$MLSERVER_VENV/bin/mlserver" start .) >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    wait_ready "$URL/v2/models/model/ready"
    run_points mlserver v2
    stop_server
  fi
fi

echo "== results" >&2
$PY - "$RESULTS" "$PREDICT_US" "$MLSERVER_NOTE" "$WORK/rounds.tsv" <<'PYEOF' | tee "$OUT"
import os, subprocess, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
predict_us, note = float(sys.argv[2]), sys.argv[3]
res = {(r[0], int(r[1]), int(r[2])): (float(r[3]), float(r[4]), float(r[5]), int(r[6])) for r in rows}
cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), "?")
print(f"Machine: {os.cpu_count()} CPUs (nproc {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}), {model}; "
      f"loopback; wrk; one Python worker per server.\n")
print(f"Model's own `predict` on one row (sklearn, in process): {predict_us:.0f} µs median.\n")
print("| rows | conc. | server | req/s | p50 ms | p99 ms | errors | pyfunc req/s ÷ this |")
print("|---:|---:|---|---:|---:|---:|---:|---:|")
for rows_, c in [(1, 1), (1, 16), (1, 64), (100, 16)]:
    base = res.get(("pyfunc", rows_, c))
    for name in ("pyfunc", "mlflow", "mlserver"):
        r = res.get((name, rows_, c))
        if r is None:
            continue
        ratio = f"{base[0] / r[0]:.1f}×" if base and r[0] > 0 else "–"
        print(f"| {rows_} | {c} | {name} | {r[0]:,.0f} | {r[1]:.2f} | {r[2]:.2f} | {r[3]} | {ratio} |")
if note:
    print(f"\n{note}.")
rounds = [l.rstrip("\n").split("\t") for l in open(sys.argv[4])]
if rounds:
    print("\nConcurrency 1, single row, alternating rounds (floor: the model's own predict in process,"
          " just before):\n")
    print("| round | floor µs | pyfunc p50 µs | p50 − floor µs |")
    print("|---:|---:|---:|---:|")
    over = []
    for _, n, floor, p50 in rounds:
        over.append(float(p50) * 1000 - float(floor))
        print(f"| {n} | {float(floor):.0f} | {float(p50) * 1000:.0f} | {over[-1]:.0f} |")
    print(f"\nMedian p50 − floor: {sorted(over)[len(over) // 2]:.0f} µs.")
PYEOF
