#!/usr/bin/env bash
# Spark scoring benchmark: pyfunc.spark_udf vs mlflow.pyfunc.spark_udf, env_manager local
# and virtualenv, on local[2]. See bench/spark/README.md.
#
#   bench/spark/run.sh [ROWS]          (default 5000000)
#
# Environment: PYTHON (default .venv/bin/python), RUN_TIMEOUT seconds per run (default
# 1200), ONLY="pyfunc:local mlflow:local ..." to run a subset, REPEAT runs of each
# (default 1; the summary keeps each configuration's fastest run). RESULTS=file to append
# to (default: a fresh $WORK/results.jsonl).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${1:-5000000}
PY=${PYTHON:-.venv/bin/python}
RUN_TIMEOUT=${RUN_TIMEOUT:-1200}
ONLY=${ONLY:-"pyfunc:local mlflow:local pyfunc:virtualenv mlflow:virtualenv mlflow:uv"}
WORK=${TMPDIR:-/tmp}/pyfunc_spark_bench
PYABS="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"  # not realpath: a venv python is a symlink
export PYSPARK_PYTHON="$PYABS" PYSPARK_DRIVER_PYTHON="$PYABS"
export SPARK_LOCAL_IP=127.0.0.1 MLFLOW_ALLOW_FILE_STORE=true PYTHONWARNINGS=ignore
# MLflow's virtualenv mode needs pyenv on PATH, its uv mode uv (from the venv's bin)
[ -d "$HOME/.pyenv/bin" ] && export PATH="$HOME/.pyenv/bin:$PATH"
export PATH="$(dirname "$PYABS"):$PATH"

mkdir -p "$WORK"
MODEL="$WORK/model"
if [ ! -f "$MODEL/MLmodel" ]; then
  rm -rf "$MODEL"
  "$PY" bench/spark/bench.py prepare "$MODEL"
fi

echo "machine: nproc=$(nproc), $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/Mem:/{print $2}') GB"
echo "rows: $ROWS, model: $MODEL"
REPEAT=${REPEAT:-1}
if [ -z "${RESULTS:-}" ]; then RESULTS="$WORK/results.jsonl"; : > "$RESULTS"; fi
for rep in $(seq "$REPEAT"); do
for cfg in $ONLY; do
  impl=${cfg%%:*}; env=${cfg##*:}
  echo "--- $impl env_manager=$env"
  if out=$(timeout "$RUN_TIMEOUT" "$PY" bench/spark/bench.py run "$impl" "$env" "$MODEL" "$ROWS" 2>"$WORK/$impl-$env.log" | tail -1); then
    echo "$out" | tee -a "$RESULTS"
  else
    echo "FAILED or timed out after ${RUN_TIMEOUT}s; last lines of $WORK/$impl-$env.log:"
    grep -v "WARN\|^\s*$" "$WORK/$impl-$env.log" | tail -15
  fi
done
done

"$PY" - "$RESULTS" <<'EOF'
import json, sys
runs = {}
for r in map(json.loads, open(sys.argv[1])):
    key = (r["impl"], r["env"])
    r["n"] = runs[key]["n"] + 1 if key in runs else 1
    if key not in runs or r["score_s"] < runs[key]["score_s"]:
        runs[key] = r
    else:
        runs[key]["n"] = r["n"]
print("\n{:<8} {:<11} {:>5} {:>9} {:>9} {:>12}".format("impl", "env", "runs", "setup s", "score s", "rows/s"))
for (impl, env), r in runs.items():
    print("{:<8} {:<11} {:>5} {:>9.2f} {:>9.2f} {:>12,.0f}".format(
        impl, env, r["n"], r["setup_s"], r["score_s"], r["rows"] / r["score_s"]))
for env, menv in (("local", "local"), ("virtualenv", "virtualenv"), ("virtualenv", "uv")):
    p, m = runs.get(("pyfunc", env)), runs.get(("mlflow", menv))
    if p and m:
        env = env if env == menv else "pyfunc {} vs mlflow {}".format(env, menv)
        same = abs(p["sum"] - m["sum"]) <= 1e-6 * abs(m["sum"]) and p["count"] == m["count"]
        print("{}: mlflow/pyfunc score time {:.2f}x, setup+score {:.2f}x, same result: {}".format(
            env, m["score_s"] / p["score_s"], (m["setup_s"] + m["score_s"]) / (p["setup_s"] + p["score_s"]), same))
EOF
