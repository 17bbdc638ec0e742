#!/usr/bin/env bash
# Spark scoring benchmark: pyfunc.spark_udf, pyfunc.spark.score_dataframe (Arrow -> numpy)
# and mlflow.pyfunc.spark_udf against the mapInPandas and mapInArrow floors, on local[2],
# on the pinned stack (.venv) and, when it exists, the newest one (.venv-latest). See
# bench/spark/README.md.
#
#   bench/spark/run.sh [ROWS]          (default 5000000)
#
# Environment: PYTHONS, the interpreters of the stacks to run (default .venv/bin/python,
# and .venv-latest/bin/python when it exists); ONLY="floor:pandas pyfunc:local ..." to run
# a subset; TIMES timed passes per run, each run a fresh process and SparkSession warmed
# up on WARMUP_ROWS rows first (defaults 3 and 1000000); REPEAT runs of each (default 1);
# configurations in SLOW (default "mlflow:virtualenv mlflow:uv") are run once, one pass,
# warmed up on 20000 rows; RUN_TIMEOUT seconds per run (default 1200); RESULTS=file to
# append to (default: a fresh $WORK/results.jsonl). The summary gives each
# configuration's fastest pass and the median of its passes.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${1:-5000000}
if [ -z "${PYTHONS:-}" ]; then
  PYTHONS=.venv/bin/python
  [ -x .venv-latest/bin/python ] && PYTHONS="$PYTHONS .venv-latest/bin/python"
fi
RUN_TIMEOUT=${RUN_TIMEOUT:-1200}
ONLY=${ONLY:-"floor:pandas floor:arrow pyfunc:local arrow:local mlflow:local pyfunc:virtualenv mlflow:virtualenv mlflow:uv"}
REPEAT=${REPEAT:-1}
TIMES=${TIMES:-3}
WARMUP_ROWS=${WARMUP_ROWS:-1000000}
SLOW=${SLOW:-"mlflow:virtualenv mlflow:uv"}
WORK=${TMPDIR:-/tmp}/pyfunc_spark_bench
export SPARK_LOCAL_IP=127.0.0.1 MLFLOW_ALLOW_FILE_STORE=true PYTHONWARNINGS=ignore
# MLflow's virtualenv mode needs pyenv on PATH
[ -d "$HOME/.pyenv/bin" ] && export PATH="$HOME/.pyenv/bin:$PATH"
mkdir -p "$WORK"
if [ -z "${RESULTS:-}" ]; then RESULTS="$WORK/results.jsonl"; : > "$RESULTS"; fi
: > "$WORK/batch.jsonl"

echo "machine: nproc=$(nproc), $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/Mem:/{print $2}') GB"
echo "rows: $ROWS"
for PY in $PYTHONS; do
  PYABS="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"  # not realpath: a venv python is a symlink
  stack=$("$PYABS" -c 'import pyspark, pandas, sklearn, mlflow, sys; print("python %d.%d.%d, pyspark %s, pandas %s, scikit-learn %s, mlflow %s" % (sys.version_info[:3] + (pyspark.__version__, pandas.__version__, sklearn.__version__, mlflow.__version__)))')
  tag=$("$PYABS" -c 'import pyspark; print(pyspark.__version__)')
  echo "=== $stack ($PY)"
  # one model per stack, saved by that stack's MLflow and scikit-learn
  MODEL="$WORK/model-pyspark-$tag"
  if [ ! -f "$MODEL/MLmodel" ]; then
    rm -rf "$MODEL"
    "$PYABS" bench/spark/bench.py prepare "$MODEL"
  fi
  # uv (MLflow's uv mode) and the Python workers come from this stack's venv
  export PYSPARK_PYTHON="$PYABS" PYSPARK_DRIVER_PYTHON="$PYABS" PATH="$(dirname "$PYABS"):$PATH"
  for rep in $(seq "$REPEAT"); do
    for cfg in $ONLY; do
      times=$TIMES warmup=$WARMUP_ROWS
      if [[ " $SLOW " == *" $cfg "* ]]; then
        [ "$rep" -gt 1 ] && continue
        times=1 warmup=20000
      fi
      impl=${cfg%%:*}; env=${cfg##*:}
      echo "--- $impl $env"
      log="$WORK/$impl-$env-$tag.log"
      if out=$(WARMUP_ROWS=$warmup timeout "$RUN_TIMEOUT" "$PYABS" bench/spark/bench.py run "$impl" "$env" "$MODEL" \
          "$ROWS" "$times" 2>"$log" | tail -1) \
          && [ -n "$out" ]; then
        echo "$out" | tee -a "$RESULTS"
      else
        echo "FAILED or timed out after ${RUN_TIMEOUT}s; last lines of $log:"
        grep -v "WARN\|^\s*$" "$log" | tail -15
      fi
    done
  done
  echo "--- Python work per 10,000-row batch, without Spark (microseconds)"
  "$PYABS" bench/spark/bench.py batch "$MODEL" 2>/dev/null | tee -a "$WORK/batch.jsonl"
done

"${PYTHONS%% *}" - "$RESULTS" <<'EOF'
import json, statistics, sys
from collections import defaultdict

runs = defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[(r.get("pyspark", "?"), r["impl"], r["env"])].append(r)
names = {("floor", "pandas"): "mapInPandas floor", ("floor", "arrow"): "mapInArrow floor",
         ("pyfunc", "local"): "pyfunc spark_udf, local", ("arrow", "local"): "pyfunc score_dataframe (Arrow -> numpy)",
         ("mlflow", "local"): "MLflow spark_udf, local", ("pyfunc", "virtualenv"): "pyfunc spark_udf, virtualenv",
         ("mlflow", "virtualenv"): "MLflow spark_udf, virtualenv", ("mlflow", "uv"): "MLflow spark_udf, uv"}
for stack in sorted({k[0] for k in runs}):
    print("\npyspark {}".format(stack))
    print("{:<42} {:>6} {:>8} {:>9} {:>9} {:>11}".format("configuration", "passes", "setup s", "score s", "median",
                                                          "rows/s"))
    best = {}
    for (s, impl, env), rs in runs.items():
        if s != stack:
            continue
        fastest = min(rs, key=lambda r: r["score_s"])
        passes = [t for r in rs for t in r.get("scores", [r["score_s"]])]
        fastest["median_s"] = statistics.median(passes)
        best[(impl, env)] = fastest
        print("{:<42} {:>6} {:>8.2f} {:>9.2f} {:>9.2f} {:>11,.0f}".format(
            names.get((impl, env), impl + " " + env), len(passes), fastest["setup_s"], fastest["score_s"],
            fastest["median_s"], fastest["rows"] / fastest["score_s"]))
    sums = {round(r["sum"], 4) for r in best.values()}
    counts = {r["count"] for r in best.values()}
    print("same result in every run: {} (sum {}, count {})".format(
        len(sums) == 1 and len(counts) == 1, ", ".join(map(str, sorted(sums))), ", ".join(map(str, sorted(counts)))))
    floor = best.get(("floor", "pandas"))
    for key, what in ((("pyfunc", "local"), "spark_udf / mapInPandas floor (bar: <= 1.05)"),
                      (("mlflow", "local"), "MLflow spark_udf / mapInPandas floor"),
                      (("floor", "arrow"), "mapInArrow floor / mapInPandas floor"),
                      (("arrow", "local"), "score_dataframe / mapInPandas floor")):
        if floor and key in best:
            fast, med = best[key]["score_s"] / floor["score_s"], best[key]["median_s"] / floor["median_s"]
            print("{}: {:.2f}x fastest, {:.2f}x median{}".format(
                what, fast, med, " ({:.2f}x faster)".format(1 / med) if med < 1 else ""))
    p, m = best.get(("pyfunc", "virtualenv")), best.get(("mlflow", "uv"))
    if p and m:
        print("MLflow uv / pyfunc virtualenv score time: {:.1f}x".format(m["score_s"] / p["score_s"]))
EOF
