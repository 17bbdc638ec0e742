#!/usr/bin/env bash
# The main job, end to end on a fresh machine: set up, then a real model is trained,
# saved, checked, batch-scored, served over HTTP and scored there, and logged to a run in
# MLflow's default store (./mlflow.db), which MLflow's own client then lists and loads.
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
echo "== 5. Log it to a run in MLflow's default store (./mlflow.db), then list it with MLflow's own client"
mkdir -p "$work/project"
(cd "$work/project" && env -u MLFLOW_TRACKING_URI -u PYFUNC_TRACKING_URI python - "$work" <<'PY'
import os, sys
import pyfunc
work = sys.argv[1]
print("tracking URI:", pyfunc.get_tracking_uri())
with pyfunc.start_run(run_name="iris-demo") as run:
    pyfunc.log_params({"model": "LogisticRegression", "max_iter": 200})
    for step, loss in enumerate([0.61, 0.34, 0.21]):
        pyfunc.log_metric("loss", loss, step=step)
    model = pyfunc.log_model("model", loader_module="iris_loader", data_path=os.path.join(work, "inputs", "model.pkl"),
                             code_path=[os.path.join(work, "inputs", "iris_loader.py")])
print("logged run", run.info.run_id, "with logged model", model.model_id)
loaded = pyfunc.load_pyfunc("runs:/%s/model" % run.info.run_id)
print("pyfunc loaded it back from runs:/%s/model: %s" % (run.info.run_id, type(loaded).__name__))
PY
)
pyfunc runs list --tracking-uri "sqlite:///$work/project/mlflow.db"
echo "-- what \`mlflow ui\`'s backend shows (MlflowClient with MLflow's defaults, no environment variables):"
(cd "$work/project" && env -u MLFLOW_TRACKING_URI python - 2>/dev/null <<'PY'
import mlflow
from mlflow import MlflowClient
client = MlflowClient()
print("MLflow", mlflow.__version__, "tracking URI:", mlflow.get_tracking_uri())
for run in client.search_runs(["0"]):
    print("run   ", run.info.run_id, run.info.run_name, run.info.status)
    print("params", run.data.params)
    print("metrics", run.data.metrics, "loss history:", [m.value for m in client.get_metric_history(run.info.run_id, "loss")])
for m in client.search_logged_models(experiment_ids=["0"]):
    print("logged model", m.model_id, "name:", m.name, "status:", m.status, "source run:", m.source_run_id)
    model = mlflow.pyfunc.load_model("models:/" + m.model_id)
    import pandas as pd
    x = pd.DataFrame([[5.1, 3.5, 1.4, 0.2]], columns=["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"])
    print("mlflow.pyfunc.load_model('models:/%s').predict(...) ->" % m.model_id, list(model.predict(x)))
PY
)
echo
echo "demo: done"
