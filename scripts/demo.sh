#!/usr/bin/env bash
# The main job, end to end on a fresh machine: set up, then a real model is trained,
# saved, checked, batch-scored, served over HTTP and scored there, and logged to a run.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >&2

export PATH="$PWD/.venv/bin:$PATH"
export PYFUNC_PYTHON="$PWD/.venv/bin/python"   # the "local" environment of the workers
work=$(mktemp -d)
server=""
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== 1. Train an sklearn iris model, save it as a pyfunc model, load it back (examples/iris.py)"
python examples/iris.py "$work" | sed -n '1,3p;/^predictions/p;/^MLflow imported/p'

echo
echo "== 2. Inspect and validate it"
pyfunc info "$work/iris"
pyfunc validate "$work/iris"

echo
echo "== 3. Batch-score a CSV with worker processes: pyfunc predict"
python -c "from sklearn.datasets import load_iris; load_iris(as_frame=True).data.to_csv('$work/iris.csv', index=False)"
pyfunc predict -m "$work/iris" -i "$work/iris.csv" -o "$work/predictions.json" --env-manager local -w 2 --no-progress
python -c "import json; p = json.load(open('$work/predictions.json'))['predictions']; print(len(p), 'predictions, first ten:', p[:10])"

echo
echo "== 4. Serve it over HTTP (MLflow's scoring protocol) and score two rows: pyfunc serve"
port=$(python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
pyfunc serve -m "$work/iris" -p "$port" --env-manager local 2>"$work/serve.log" &
server=$!
python - "$port" <<'PY'
import json, sys, time, urllib.request
base = "http://127.0.0.1:%s" % sys.argv[1]
for _ in range(300):
    try:
        if urllib.request.urlopen(base + "/ping", timeout=1).status == 200:
            break
    except OSError:
        time.sleep(0.1)
body = {"dataframe_split": {"columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
                            "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}}
req = urllib.request.Request(base + "/invocations", data=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
print("POST /invocations ->", urllib.request.urlopen(req, timeout=30).read().decode())
PY
kill "$server"; wait "$server" 2>/dev/null || true; server=""

echo
echo "== 5. Log it to a run (a local MLflow-layout store) and load it back by runs:/ URI"
python - "$work" <<'PY'
import os, sys
import pyfunc
work = sys.argv[1]
pyfunc.set_tracking_uri("file://" + os.path.join(work, "mlruns"))
with pyfunc.start_run() as run:
    pyfunc.log_param("model", "LogisticRegression")
    pyfunc.log_model("model", loader_module="iris_loader", data_path=os.path.join(work, "inputs", "model.pkl"),
                     code_path=[os.path.join(work, "inputs", "iris_loader.py")])
run_id = run.info.run_id
print("logged run", run_id)
model = pyfunc.load_pyfunc("runs:/%s/model" % run_id)
print("loaded back from runs:/%s/model: %s" % (run_id, type(model).__name__))
PY
pyfunc runs list --tracking-uri "file://$work/mlruns"
echo
echo "demo: done"
