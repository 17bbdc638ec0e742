#!/usr/bin/env bash
# Container images of one model, pyfunc's against MLflow's: image size, build time (no
# layer cache; again with nothing changed; again with a new file in the model, as for a new
# version with the same requirements) and the time from container start to the first
# answered /invocations request (median of RUNS fresh containers).
#
#   bench/images/run.sh            (RUNS=5 by default; SERIALIZATION=cloudpickle for a
#                                   model in that format instead of MLflow's default, skops)
#
# Both images are built by the same builder (buildah, chroot isolation) from the same
# local base (tests/images/make-base.sh: Debian 12 with Python 3.11, tagged as the
# official python:3.11-slim-bookworm and python:3.11.7-slim). The model is an sklearn
# model saved by MLflow with its defaults (skops format, requirements inferred: mlflow,
# scikit-learn, pandas, ...). pyfunc's context is `pyfunc generate-dockerfile`; MLflow's
# is `mlflow models generate-dockerfile --env-manager local`, the variant that builds here
# (its default, virtualenv, starts from ubuntu:24.04 and clones pyenv from GitHub and
# Python from a Launchpad PPA, which this machine cannot reach).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-5}
export BUILDAH_ISOLATION=chroot
PY=$PWD/.venv/bin/python
work=${WORK:-/tmp/pyfunc-bench-images}
rm -rf "$work" && mkdir -p "$work"
tests/images/make-base.sh >/dev/null

"$PY" - "$work/model" "${SERIALIZATION:-skops}" <<'PYEOF' 2>/dev/null
import sys, numpy as np, pandas as pd, mlflow.sklearn
from sklearn.ensemble import RandomForestClassifier
X = pd.DataFrame(np.random.RandomState(0).rand(500, 4), columns=list("abcd"))
y = (X.a + X.b > 1).astype(int)
mlflow.sklearn.save_model(RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y), sys.argv[1],
                          input_example=X.head(2), serialization_format=sys.argv[2])
PYEOF
body='{"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[0.9, 0.2, 0.1, 0.5]]}}'

PYFUNC_PYTHON=$PY .venv/bin/pyfunc generate-dockerfile -m "$work/model" -d "$work/ctx-pyfunc" >/dev/null
.venv/bin/mlflow models generate-dockerfile -m "$work/model" -d "$work/ctx-mlflow" --env-manager local >/dev/null 2>&1

now() { date +%s.%N; }
bud() { buildah bud --quiet --layers --pull=never "$@" >/dev/null 2>>"$work/build.log"; }
build() {  # name context model-dir -> "cold cached new-model" seconds
  local t0 t1 t2 t3
  t0=$(now); bud --no-cache -t "$1" "$2"
  bud -t "$1" "$2"  # stores the layers
  t1=$(now); bud -t "$1" "$2"
  # A new version of the model (same requirements): its layers and those after are redone.
  t2=$(now); date +%s.%N > "$3/new-version.txt"; bud -t "$1" "$2"
  t3=$(now); echo "$(echo "$t1 - $t0" | bc) $(echo "$t2 - $t1" | bc) $(echo "$t3 - $t2" | bc)"
}
stop_servers() {  # the containers' processes (chroot isolation shares the PID namespace)
  pkill -TERM -f "^/opt/pyfunc/bin/pyfunc serve" || true
  pkill -f "mlflow.models import container" || true
  pkill -f "nginx: master process nginx -c /usr/local/lib/python3.11/dist-packages/mlflow" || true
  pkill -f "mlflow.pyfunc.scoring_server" || true
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$1/ping" || return 0
    sleep 0.1
  done
}
first_answer() {  # name port command... -> seconds from `buildah run` to the first 200
  local name=$1 port=$2; shift 2
  local ctr t0 t1
  if curl -s -o /dev/null "http://127.0.0.1:$port/ping"; then echo "port $port is in use" >&2; exit 1; fi
  ctr=$(buildah from --pull=never "$name")
  t0=$(now)
  buildah run --network host --env "MLFLOW_PORT=$port" "$ctr" -- "$@" >/dev/null 2>&1 &
  local pid=$!
  until curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$port/invocations"; do
    sleep 0.02
    kill -0 $pid 2>/dev/null || { echo "failed"; return; }
  done
  t1=$(now)
  stop_servers "$port"
  wait $pid 2>/dev/null || true
  buildah rm "$ctr" >/dev/null
  echo "$t1 - $t0" | bc
}
median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
size() { podman image inspect --format '{{.Size}}' "$1"; }

read -r p_cold p_warm p_model < <(build bench-pyfunc "$work/ctx-pyfunc" "$work/ctx-pyfunc/model")
read -r m_cold m_warm m_model < <(build bench-mlflow "$work/ctx-mlflow" "$work/ctx-mlflow/model_dir/model")
p_size=$(size bench-pyfunc); m_size=$(size bench-mlflow); b_size=$(size docker.io/library/python:3.11-slim-bookworm)
p_times=(); m_times=()
for _ in $(seq "$RUNS"); do
  p_times+=("$(first_answer bench-pyfunc 18090 pyfunc serve)")
  m_times+=("$(first_answer bench-mlflow 8080 python -c "from mlflow.models import container as C; C._serve('local')")")
done
p_first=$(echo "${p_times[@]}" | median); m_first=$(echo "${m_times[@]}" | median)

mb() { echo "scale=0; $1 / 1000000" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }
echo "model: RandomForestClassifier, ${SERIALIZATION:-skops} format"
echo "machine: $(nproc) cores, $(uname -r); builder: $(buildah --version | cut -d' ' -f1-3); base $(mb "$b_size") MB"
printf '%-28s %12s %12s %10s\n' "" "pyfunc" "MLflow" "ratio"
printf '%-28s %9s MB %9s MB %9sx\n' "image size" "$(mb "$p_size")" "$(mb "$m_size")" "$(ratio "$p_size" "$m_size")"
printf '%-28s %9s MB %9s MB %9sx\n' "  added to the base" "$(mb $((p_size - b_size)))" "$(mb $((m_size - b_size)))" "$(ratio $((p_size - b_size)) $((m_size - b_size)))"
printf '%-28s %10.1f s %10.1f s %9sx\n' "build, no layer cache" "$p_cold" "$m_cold" "$(ratio "$p_cold" "$m_cold")"
printf '%-28s %10.1f s %10.1f s %9sx\n' "rebuild, nothing changed" "$p_warm" "$m_warm" "$(ratio "$p_warm" "$m_warm")"
printf '%-28s %10.1f s %10.1f s %9sx\n' "rebuild, a new model file" "$p_model" "$m_model" "$(ratio "$p_model" "$m_model")"
printf '%-28s %10.2f s %10.2f s %9sx\n' "start to first answer" "$p_first" "$m_first" "$(ratio "$p_first" "$m_first")"
echo "first answers (s): pyfunc ${p_times[*]}; MLflow ${m_times[*]}"
