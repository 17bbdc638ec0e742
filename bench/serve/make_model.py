"""Saves the benchmark model (scikit-learn LogisticRegression on iris, 4 float
features f0..f3, saved by real MLflow) and writes the request bodies and wrk scripts.
(floor.py times the model's own predict.)"""
import json
import sys
from pathlib import Path

import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

out = Path(sys.argv[1])
X, y = load_iris(return_X_y=True, as_frame=True)
X.columns = ["f0", "f1", "f2", "f3"]
model = LogisticRegression(max_iter=500).fit(X, y)
mlflow.sklearn.save_model(model, str(out / "model"), signature=infer_signature(X, model.predict(X)),
                          pip_requirements=["scikit-learn", "pandas"])


def rows(n):
    return X.sample(n, replace=True, random_state=n).reset_index(drop=True)


LUA = """wrk.method = "POST"
wrk.path = "{path}"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %f %f %f\\n", summary.requests, summary.errors.status
    + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
"""
for n in (1, 100):
    df = rows(n)
    mlflow_body = json.dumps({"dataframe_split": {"columns": list(df.columns), "data": df.values.tolist()}})
    v2_body = json.dumps({"parameters": {"content_type": "pd"},
                          "inputs": [{"name": c, "shape": [n], "datatype": "FP64", "data": df[c].tolist()}
                                     for c in df.columns]})
    (out / f"invocations_{n}.lua").write_text(LUA.format(path="/invocations", body=mlflow_body))
    (out / f"v2_{n}.lua").write_text(LUA.format(path="/v2/models/model/infer", body=v2_body))

