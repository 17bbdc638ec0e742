"""Agreement of pyfunc with real MLflow: the same models, the same inputs, every path.

    .venv/bin/python bench/compat/run.py [--out DIR] [--mlflow-cli N] [--no-spark]

Saves, with the installed MLflow, one model of each kind users have (sklearn in its three
serialization formats, the xgboost, lightgbm, catboost, statsmodels and onnx flavors, and
PythonModels with column, narrow-type, tensor, multi-tensor, dict, string, float32 and
models-from-code signatures), then asks MLflow and pyfunc the same questions:

  path        MLflow's answer                                  pyfunc's answer
  in-process  mlflow.pyfunc.load_model(p).predict(x[, params])  pyfunc.load_pyfunc(p).predict(...)
  workers     the same                                          pyfunc.load_pyfunc(p, env_manager="local")
  CLI         scoring_server._predict (what `mlflow models      build/cpp/pyfunc predict -m p -i in.json|in.csv
              predict --env-manager local` runs), and the real     --env-manager local (stdout)
              `mlflow models predict` for --mlflow-cli cases
  server      scoring_server.invocations(body, content_type,    build/cpp/pyfunc serve -m p --env-manager local,
              model, input_schema) (what `mlflow models serve`     one per model on loopback, each body POSTed
              answers)
  Spark       mlflow.pyfunc.spark_udf(env_manager="local")      pyfunc.spark_udf(env_manager="local"),
                                                                one local[1] session, column models only

Inputs: the model's own kind of object (DataFrame, ndarray, dict of ndarrays), with params
where the model has a params schema, and a few that MLflow refuses (a missing column, an
unsafe cast, a bad param); over HTTP and the CLI the same data as CSV, dataframe_split,
dataframe_records, instances and inputs (and with params).

Agreement: HTTP and CLI — same status (CLI: both fail or both succeed) and byte-identical
bodies ("bytes") or equal parsed JSON ("json"); where MLflow answers an error, the same
status and error_code. In-process, workers and Spark — equal type and values, exactly
(DataFrame: assert_frame_equal; ndarray: dtype, shape and values; dict: keys and each
value; Spark: the result column's type and every row); where MLflow raises, pyfunc raises.

Writes DIR/results.md (the table and every disagreement, also printed) and
DIR/results.json (every comparison). DIR defaults to /tmp/pyfunc-compat.
"""

import argparse
import atexit
import datetime
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable

os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
os.environ["PYFUNC_PYTHON"] = PYTHON
os.environ.setdefault("PYSPARK_PYTHON", PYTHON)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", PYTHON)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
warnings.filterwarnings("ignore")
os.environ.setdefault("PYTHONWARNINGS", "ignore")

import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

logging.getLogger("mlflow").setLevel(logging.ERROR)

PATHS = ["in-process", "workers", "CLI", "server", "Spark"]
STARTED = []  # Popen objects this script started, each the leader of its own process group


@atexit.register
def _stop_started():
    for p in STARTED:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass


# --- the PythonModels (module level in __main__: cloudpickled by value, as a notebook's) ---


class ColumnsModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        scale = (params or {}).get("scale", 1.0)
        return model_input["a"] * scale + model_input["b"]


class NarrowModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return pd.DataFrame({
            "i32x2": model_input["i32"] * 2,
            "f32half": model_input["f32"] / 2,
            "sum": model_input["i32"] + model_input["f32"],
        })


class TensorModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input.sum(axis=1)


class MultiTensorModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input["x"].sum(axis=1) * model_input["y"]


class DictModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        a = model_input["a"].to_numpy()
        b = model_input["b"].to_numpy()
        return {"sum": a + b, "prod": a * b}


class StringModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [s.upper() + "!" for s in model_input["text"]]


class Float32Model(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        x = model_input["x"].to_numpy()
        return np.column_stack([x, x * 2]).astype(np.float32)


# --- models ------------------------------------------------------------------------------


class Case:
    """One saved model and what it is asked."""

    def __init__(self, name, kind, path, layout, data, params=None, bad_params=None, extra_inproc=(),
                 spark=None):
        self.name, self.kind, self.path, self.layout = name, kind, str(path), layout
        self.data, self.params, self.bad_params = data, params, bad_params
        self.extra_inproc = list(extra_inproc)  # [(label, data, params)]
        self.spark = spark  # None, or {"result_types": [result_type for both spark_udfs, ...]}


def save_models(root):
    import catboost
    import lightgbm
    import mlflow.catboost
    import mlflow.lightgbm
    import mlflow.onnx
    import mlflow.sklearn
    import mlflow.statsmodels
    import mlflow.xgboost
    import statsmodels.api as sm
    import xgboost
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True)
    X, y = iris.data, iris.target
    xs = X.iloc[[0, 1, 50, 51, 100, 149]].reset_index(drop=True)
    first = X.columns[0]
    cases = []

    def column_extras(df, int_cast=True):
        extras = [("missing column", df.drop(columns=[df.columns[0]]), None)]
        if int_cast:  # MLflow refuses int64 for a double column (not a safe cast)
            extras.append(("int64 into double", df.round().astype("int64"), None))
        return extras

    reqs = ["scikit-learn"]
    lr = LogisticRegression(max_iter=300).fit(X, y)
    sig = infer_signature(X, lr.predict(X))
    for fmt in ("pickle", "cloudpickle", "skops"):
        mlflow.sklearn.save_model(lr, root / f"sk_{fmt}", serialization_format=fmt, signature=sig,
                                  pip_requirements=reqs)
        cases.append(Case(f"sk_{fmt}", f"sklearn ({fmt})", root / f"sk_{fmt}", "columns", xs,
                          extra_inproc=column_extras(xs), spark={"result_types": [None]}))

    xgb = xgboost.XGBClassifier(n_estimators=4, max_depth=2, n_jobs=1, random_state=0).fit(X, y)
    mlflow.xgboost.save_model(xgb, root / "xgboost", signature=infer_signature(X, xgb.predict(X)),
                              pip_requirements=["xgboost"])
    cases.append(Case("xgboost", "xgboost (mlflow.xgboost)", root / "xgboost", "columns", xs,
                      extra_inproc=column_extras(xs), spark={"result_types": [None]}))

    lgbm = lightgbm.LGBMClassifier(n_estimators=4, num_leaves=4, n_jobs=1, verbose=-1, random_state=0).fit(X, y)
    mlflow.lightgbm.save_model(lgbm, root / "lightgbm", signature=infer_signature(X, lgbm.predict(X)),
                               pip_requirements=["lightgbm"])
    cases.append(Case("lightgbm", "lightgbm (mlflow.lightgbm)", root / "lightgbm", "columns", xs,
                      extra_inproc=column_extras(xs), spark={"result_types": [None]}))

    cat = catboost.CatBoostClassifier(iterations=4, depth=2, verbose=False, thread_count=1, random_seed=0,
                                      allow_writing_files=False).fit(X, y)
    mlflow.catboost.save_model(cat, root / "catboost", signature=infer_signature(X, cat.predict(X)),
                               pip_requirements=["catboost"])
    # (its signature's output is a (-1, 1) tensor: the inferred Spark type is array<array<bigint>>)
    cases.append(Case("catboost", "catboost (mlflow.catboost)", root / "catboost", "columns", xs,
                      extra_inproc=column_extras(xs), spark={"result_types": [None, "double"]}))

    x3 = X[list(X.columns[:3])]
    ols = sm.OLS(X[X.columns[3]], x3).fit()
    mlflow.statsmodels.save_model(ols, root / "statsmodels", signature=infer_signature(x3, ols.predict(x3)),
                                  pip_requirements=["statsmodels"])
    cases.append(Case("statsmodels", "statsmodels OLS", root / "statsmodels", "columns", xs[list(X.columns[:3])],
                      extra_inproc=column_extras(xs[list(X.columns[:3])]), spark={"result_types": [None]}))

    lr32 = LogisticRegression(max_iter=300).fit(X.to_numpy(np.float32), y)
    onx = convert_sklearn(lr32, initial_types=[("X", FloatTensorType([None, 4]))],
                          options={id(lr32): {"zipmap": False}})
    mlflow.onnx.save_model(onx, root / "onnx", pip_requirements=["onnx", "onnxruntime"],
                           signature=ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 4))])))
    x32 = xs.to_numpy(np.float32)
    cases.append(Case("onnx", "onnx (skl2onnx)", root / "onnx", "tensor", x32,
                      extra_inproc=[("float64 array", xs.to_numpy(np.float64), None),
                                    ("DataFrame of float32", pd.DataFrame(x32, columns=list(X.columns)), None)]))

    # PythonModels
    pm_reqs = ["pandas"]
    cols = pd.DataFrame({"a": [0.5, 1.25, -2.0, 3.0], "b": np.array([1, 2, 3, -4], dtype=np.int64)})
    mlflow.pyfunc.save_model(
        root / "pm_columns", python_model=ColumnsModel(), pip_requirements=pm_reqs,
        signature=ModelSignature(inputs=Schema([ColSpec("double", "a"), ColSpec("long", "b")]),
                                 outputs=Schema([ColSpec("double")]),
                                 params=ParamSchema([ParamSpec("scale", "double", 1.0)])))
    cases.append(Case("pm_columns", "PythonModel, double/long columns + params", root / "pm_columns", "columns",
                      cols, params={"scale": 2.5}, bad_params={"scale": "abc"},
                      extra_inproc=[("missing column", cols[["a"]], None),
                                    ("float64 into long", cols.assign(b=[1.5, 2.0, 3.0, 4.0]), None)],
                      spark={"result_types": [None]}))

    narrow = pd.DataFrame({"i32": np.array([1, -2, 3, 40000], dtype=np.int32),
                           "f32": np.array([0.5, 1.1, -2.25, 3.3], dtype=np.float32)})
    mlflow.pyfunc.save_model(
        root / "pm_narrow", python_model=NarrowModel(), pip_requirements=pm_reqs,
        signature=ModelSignature(inputs=Schema([ColSpec("integer", "i32"), ColSpec("float", "f32")])))
    cases.append(Case("pm_narrow", "PythonModel, int32/float32 columns", root / "pm_narrow", "columns", narrow,
                      extra_inproc=[("int64 + float64 columns", narrow.astype({"i32": "int64", "f32": "float64"}),
                                     None)],
                      spark={"result_types": ["i32x2 int, f32half float, sum double"]}))

    tensor = np.array([[1, 2, 3], [0.5, 0.25, 0.125], [-1, 0, 1.5], [10, 20, 30]], dtype=np.float32)
    mlflow.pyfunc.save_model(
        root / "pm_tensor", python_model=TensorModel(), pip_requirements=pm_reqs,
        signature=ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 3))]),
                                 outputs=Schema([TensorSpec(np.dtype(np.float32), (-1,))])))
    cases.append(Case("pm_tensor", "PythonModel, float32 tensor (-1, 3)", root / "pm_tensor", "tensor", tensor,
                      extra_inproc=[("float64 array", tensor.astype(np.float64), None),
                                    ("wrong width (-1, 2)", tensor[:, :2], None)]))

    multi = {"x": np.array([[1, 2], [3, 4], [0.5, 0.5]], dtype=np.float32), "y": np.array([1, 2, 3], dtype=np.int64)}
    mlflow.pyfunc.save_model(
        root / "pm_multi", python_model=MultiTensorModel(), pip_requirements=pm_reqs,
        signature=ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 2), "x"),
                                                TensorSpec(np.dtype(np.int64), (-1,), "y")])))
    cases.append(Case("pm_multi", "PythonModel, two named tensors", root / "pm_multi", "multi", multi,
                      extra_inproc=[("missing input y", {"x": multi["x"]}, None)]))

    ab = pd.DataFrame({"a": [1.0, 2.5, -3.0], "b": [4.0, 0.5, 2.0]})
    mlflow.pyfunc.save_model(
        root / "pm_dict", python_model=DictModel(), pip_requirements=pm_reqs,
        signature=ModelSignature(inputs=Schema([ColSpec("double", "a"), ColSpec("double", "b")])))
    cases.append(Case("pm_dict", "PythonModel returning a dict of ndarrays", root / "pm_dict", "columns", ab,
                      extra_inproc=[("missing column", ab[["a"]], None)],
                      spark={"result_types": ["sum double, prod double"]}))

    text = pd.DataFrame({"text": ["abc", "\u00dcn\u00efc\u00f6d\u00e9 \u00df", "x, y", 'quote "q"']})
    mlflow.pyfunc.save_model(
        root / "pm_string", python_model=StringModel(), pip_requirements=pm_reqs,
        signature=ModelSignature(inputs=Schema([ColSpec("string", "text")]), outputs=Schema([ColSpec("string")])))
    cases.append(Case("pm_string", "PythonModel, string in and out", root / "pm_string", "columns", text,
                      extra_inproc=[("int64 into string", pd.DataFrame({"text": [1, 2]}), None)],
                      spark={"result_types": [None]}))

    fx = pd.DataFrame({"x": [0.1, 1.5, -2.0, 1e-3]})
    mlflow.pyfunc.save_model(
        root / "pm_f32", python_model=Float32Model(), pip_requirements=pm_reqs,
        signature=ModelSignature(inputs=Schema([ColSpec("double", "x")])))
    cases.append(Case("pm_f32", "PythonModel returning a float32 ndarray", root / "pm_f32", "columns", fx,
                      extra_inproc=[("float32 column into double", fx.astype(np.float32), None)],
                      spark={"result_types": ["array<float>"]}))

    code = pd.DataFrame({"x": [1.0, 2.0, 3.5], "y": [0.25, -1.0, 2.0]})
    mlflow.pyfunc.save_model(
        root / "pm_code", python_model=str(HERE / "model_from_code.py"), pip_requirements=pm_reqs,
        signature=ModelSignature(inputs=Schema([ColSpec("double", "x"), ColSpec("double", "y")]),
                                 params=ParamSchema([ParamSpec("offset", "double", 0.0)])))
    cases.append(Case("pm_code", "PythonModel from code + params", root / "pm_code", "columns", code,
                      params={"offset": 10.0}, bad_params={"offset": [1, 2]},
                      extra_inproc=[("missing column", code[["x"]], None)],
                      spark={"result_types": ["x double, y double, total double"]}))
    return cases


# --- requests ----------------------------------------------------------------------------


def _py(v):
    """A cell as a user would write it in JSON: float32 by its shortest repr."""
    if isinstance(v, np.floating):
        return float(str(v)) if v.dtype == np.float32 else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.ndarray):
        return [_py(x) for x in v]
    return v


def _frame_rows(df):
    return [[_py(v) for v in row] for row in df.itertuples(index=False)]


def requests_for(case):
    """[(label, body bytes, content type, for the CLI too)] for the server and the CLI."""
    out = []

    def add(label, body, ctype="application/json", cli=True):
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        out.append((label, raw, ctype, cli))

    if case.layout in ("columns", "tensor"):
        df = case.data if case.layout == "columns" else pd.DataFrame(case.data, columns=[str(i) for i in range(
            case.data.shape[1])])
        columns = list(df.columns)
        rows = _frame_rows(df)
        records = [dict(zip(columns, r)) for r in rows]
        add("csv", df.to_csv(index=False), "text/csv")
        add("dataframe_split", {"dataframe_split": {"columns": columns, "data": rows}})
        add("dataframe_records", {"dataframe_records": records})
        if case.layout == "columns":
            add("instances", {"instances": records})
            add("inputs", {"inputs": {c: [r[i] for r in rows] for i, c in enumerate(columns)}})
            add("dataframe_split, missing column",
                {"dataframe_split": {"columns": columns[1:], "data": [r[1:] for r in rows]}})
        else:
            add("instances", {"instances": [_py(r) for r in case.data]})
            add("inputs", {"inputs": [_py(r) for r in case.data]})
    else:  # multi: a dict of named tensors
        names = list(case.data)
        n = len(case.data[names[0]])
        records = [{k: _py(case.data[k][i]) for k in names} for i in range(n)]
        add("dataframe_split", {"dataframe_split": {"columns": names, "data": [[r[k] for k in names] for r in records]}})
        add("dataframe_records", {"dataframe_records": records})
        add("instances", {"instances": records})
        add("inputs", {"inputs": {k: _py(v) for k, v in case.data.items()}})
    if case.params:
        split = json.loads([r for r in out if r[0] == "dataframe_split"][0][1])
        inputs = json.loads([r for r in out if r[0] == "inputs"][0][1])
        add("dataframe_split + params", dict(split, params=case.params))
        add("inputs + params", dict(inputs, params=case.params))
        add("dataframe_split + bad params", dict(split, params=case.bad_params), cli=False)
    return out


def inproc_inputs(case):
    out = [("data", case.data, None)]
    if case.params:
        out.append(("data + params", case.data, case.params))
        out.append(("data + bad params", case.data, case.bad_params))
    return out + case.extra_inproc


# --- comparing ---------------------------------------------------------------------------


class Raised:
    def __init__(self, exc):
        self.type = type(exc).__name__
        text = str(exc).strip()
        self.message = text.splitlines()[-1][:300] if text else ""
        # What went wrong, without MLflow's "Failed to enforce schema of data '...'" preamble.
        self.error = text.rsplit("Error: ", 1)[-1].strip()

    def __repr__(self):
        return "raised {}: {}".format(self.type, self.message)


def call(fn):
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 — an error is an answer
        return Raised(e)


def short(v, n=180):
    if isinstance(v, Raised):
        s = repr(v)
    elif isinstance(v, pd.DataFrame):
        s = "DataFrame{} {}".format(dict(v.dtypes.astype(str)), v.to_dict(orient="list"))
    elif isinstance(v, pd.Series):
        s = "Series[{}, name={!r}] {}".format(v.dtype, v.name, v.tolist())
    elif isinstance(v, np.ndarray):
        s = "ndarray[{}, {}] {}".format(v.dtype, v.shape, v.tolist())
    elif isinstance(v, dict):
        s = "dict{{{}}}".format(", ".join("{!r}: {}".format(k, short(x, 60)) for k, x in v.items()))
    elif isinstance(v, bytes):
        s = v.decode("utf-8", "replace")
    else:
        s = "{} {!r}".format(type(v).__name__, v)
    s = s.replace("\n", "\\n").replace("|", "\\|")
    return s if len(s) <= n else s[: n - 1] + "…"


def same_value(want, got):
    """(agree, how or reason) for two Python results."""
    if isinstance(want, Raised) or isinstance(got, Raised):
        if isinstance(want, Raised) and isinstance(got, Raised):
            if want.error == got.error:
                return True, "both raise, same error"
            return True, "both raise, different error"
        return False, "MLflow {} but pyfunc {}".format("raises" if isinstance(want, Raised) else "returns",
                                                      "raises" if isinstance(got, Raised) else "returns")
    if type(want) is not type(got):
        return False, "type {} vs {}".format(type(want).__name__, type(got).__name__)
    try:
        if isinstance(want, pd.DataFrame):
            pd.testing.assert_frame_equal(got, want, check_exact=True)
        elif isinstance(want, pd.Series):
            pd.testing.assert_series_equal(got, want, check_exact=True)
        elif isinstance(want, np.ndarray):
            if want.dtype != got.dtype:
                return False, "dtype {} vs {}".format(want.dtype, got.dtype)
            if want.shape != got.shape:
                return False, "shape {} vs {}".format(want.shape, got.shape)
            if not np.array_equal(want, got, equal_nan=want.dtype.kind == "f"):
                return False, "values differ"
        elif isinstance(want, dict):
            if list(want) != list(got):
                return False, "keys {} vs {}".format(list(want), list(got))
            for k in want:
                ok, why = same_value(want[k], got[k])
                if not ok:
                    return False, "[{!r}]: {}".format(k, why)
        elif isinstance(want, (list, tuple)):
            if len(want) != len(got):
                return False, "length {} vs {}".format(len(want), len(got))
            for i, (a, b) in enumerate(zip(want, got)):
                ok, why = same_value(a, b)
                if not ok:
                    return False, "[{}]: {}".format(i, why)
        elif want != got and not (_isnan(want) and _isnan(got)):
            return False, "{!r} vs {!r}".format(want, got)
    except AssertionError as e:
        return False, " ".join(str(e).split())[:200]
    return True, "equal"


def _isnan(v):
    return isinstance(v, float) and math.isnan(v)


def json_equal(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return a == b


def _json(raw):
    try:
        return json.loads(raw)
    except ValueError:
        return None


def same_http(want, got):
    (ws, wb), (gs, gb) = want, got
    if gs is None:
        return False, "pyfunc: {}".format(gb.decode())
    if ws != gs:
        return False, "status {} vs {}".format(ws, gs)
    if ws != 200:
        wj, gj = _json(wb), _json(gb)
        if isinstance(wj, dict) and isinstance(gj, dict):
            if wj.get("error_code") != gj.get("error_code"):
                return False, "error_code {} vs {}".format(wj.get("error_code"), gj.get("error_code"))
            wm, gm = wj.get("message", ""), gj.get("message", "")
            if wm == gm:
                return True, "error, same error_code and message"
            if wm.rsplit("Error: ", 1)[-1] == gm.rsplit("Error: ", 1)[-1]:
                return True, "error, same error_code and error (the text after the last 'Error: '), framed differently"
            return True, "error, same error_code (error differs)"
        if wb == gb:
            return True, "error, bytes"
        return False, "error bodies differ"
    if wb == gb:
        return True, "bytes"
    wj, gj = _json(wb), _json(gb)
    if wj is not None and json_equal(wj, gj):
        return True, "json"
    return False, "body differs"


def same_cli(want, got):
    """want/got: (ok, stdout bytes or error line)."""
    (wok, wb), (gok, gb) = want, got
    if not gok and gb.startswith(b"killed by"):
        return False, "pyfunc crashed ({})".format(gb.decode().split(":")[0])
    if not wok or not gok:
        if not wok and not gok:
            return True, "both fail"
        return False, "MLflow {} but pyfunc {}".format("succeeds" if wok else "fails", "succeeds" if gok else "fails")
    if wb == gb:
        return True, "bytes"
    if gb == wb + b"\n":
        return True, "bytes + a final newline"
    wj, gj = _json(wb), _json(gb)
    if wj is not None and json_equal(wj, gj):
        return True, "json"
    return False, "output differs"


# --- MLflow's answers --------------------------------------------------------------------


def mlflow_http(model, body, ctype):
    """What `mlflow models serve` answers: status and body, in process."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server
    from mlflow.pyfunc.utils.environment import _simulate_serving_environment

    with _simulate_serving_environment():
        try:
            r = scoring_server.invocations(body, ctype, model, model.metadata.get_input_schema())
            return r.status, r.response.encode() if isinstance(r.response, str) else r.response
        except MlflowException as e:
            return e.get_http_status_code(), e.serialize_as_json().encode()
        except Exception:  # noqa: BLE001 — FastAPI answers an uncaught exception so
            return 500, b"Internal Server Error"


def mlflow_cli(path, input_path, ctype, out_path):
    """What `mlflow models predict -m path -i input -t ctype --env-manager local` writes."""
    from mlflow.pyfunc import scoring_server
    from mlflow.utils.file_utils import path_to_local_file_uri

    if os.path.exists(out_path):
        os.unlink(out_path)
    try:
        scoring_server._predict(path_to_local_file_uri(path), input_path, out_path, ctype)
    except Exception as e:  # noqa: BLE001
        return False, repr(Raised(e)).encode()
    with open(out_path, "rb") as f:
        return True, f.read()


# --- pyfunc's answers --------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, model, log_path):
        self.port = free_port()
        self.url = "http://127.0.0.1:{}".format(self.port)
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "serve", "-m", model, "-p", str(self.port), "--env-manager", "local"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        STARTED.append(self.proc)
        deadline = time.time() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("pyfunc serve exited with {}: see {}".format(self.proc.returncode, log_path))
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.time() > deadline:
                raise RuntimeError("pyfunc serve not ready in 120 s: see {}".format(log_path))
            time.sleep(0.05)

    def post(self, body, ctype):
        req = urllib.request.Request(self.url + "/invocations", data=body, headers={"Content-Type": ctype},
                                     method="POST")
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except Exception as e:  # noqa: BLE001
            time.sleep(0.2)
            if self.proc.poll() is not None:
                return None, "{}; the server died: {}".format(repr(e), describe_exit(self.proc.returncode)).encode()
            return None, repr(e).encode()

    def dead(self):
        return self.proc.poll() is not None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def describe_exit(code):
    if code is not None and code < 0:
        try:
            return "killed by {}".format(signal.Signals(-code).name)
        except ValueError:
            return "killed by signal {}".format(-code)
    return "exit {}".format(code)


def run_cli(cmd, timeout=180):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    STARTED.append(p)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return False, b"timed out", err
    if p.returncode != 0:
        lines = [l for l in err.decode("utf-8", "replace").splitlines() if l.strip()]
        return False, ("{}: {}".format(describe_exit(p.returncode), lines[-1] if lines else "")).encode(), err
    return True, out, err


# --- Spark -------------------------------------------------------------------------------


def spark_session():
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[1]").appName("pyfunc-compat")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.sql.shuffle.partitions", "1")
               .config("spark.default.parallelism", "1")
               .config("spark.task.maxFailures", "1")
               .getOrCreate())
    session.sparkContext.setLogLevel("OFF")
    return session


def spark_schema(df):
    """The Spark schema of a pandas frame with each column's own width (int32 → int,
    float32 → float), which createDataFrame would otherwise widen to long and double."""
    from pyspark.sql import types as T

    kinds = {"int32": T.IntegerType(), "int64": T.LongType(), "float32": T.FloatType(), "float64": T.DoubleType(),
             "object": T.StringType(), "str": T.StringType(), "string": T.StringType(), "bool": T.BooleanType()}  # str: pandas 3
    fields = [T.StructField(str(c), kinds[str(df[c].dtype)]) for c in df.columns]
    return T.StructType(fields + [T.StructField("__row", T.LongType())])


class SparkAnswer:
    def __init__(self, data_type, rows):
        self.data_type, self.rows = data_type, rows

    def __repr__(self):
        return "{} {}".format(self.data_type, self.rows)


def _spark_value(v):
    if hasattr(v, "asDict"):
        return {k: _spark_value(x) for k, x in v.asDict().items()}
    if isinstance(v, list):
        return [_spark_value(x) for x in v]
    return v


def spark_answer(sdf, udf_maker, columns):
    from pyspark.sql import functions as F

    def run():
        udf = udf_maker()
        out = sdf.select("__row", udf(*[F.col("`{}`".format(c)) for c in columns]).alias("p")).orderBy("__row")
        rows = [_spark_value(r["p"]) for r in out.collect()]
        return SparkAnswer(out.schema["p"].dataType.simpleString(), rows)

    return call(run)


def same_spark(want, got):
    if isinstance(want, Raised) or isinstance(got, Raised):
        return same_value(want, got)
    if want.data_type != got.data_type:
        return False, "result type {} vs {}".format(want.data_type, got.data_type)
    if not json_equal(want.rows, got.rows):
        return False, "rows differ"
    return True, "equal"


# --- the run -----------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/pyfunc-compat", help="directory for results.md and results.json")
    ap.add_argument("--pyfunc", default=str(ROOT / "build" / "cpp" / "pyfunc"), help="the pyfunc binary")
    ap.add_argument("--mlflow-cli", type=int, default=2,
                    help="how many CLI cases also run the real `mlflow models predict` (slow; default 2)")
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--models", help="comma-separated model names to run (default: all)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (models, inputs, logs)")
    args = ap.parse_args()

    import pyfunc

    t_start = time.time()
    started_at = datetime.datetime.now().astimezone()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="pyfunc-compat-"))
    # A copy of the binary, so that a rebuild during the run does not change (or remove) it
    # under the run; it finds its Python by PYFUNC_PYTHON and embeds its worker script.
    binary = str(tmp / "pyfunc")
    for _ in range(60):
        try:
            shutil.copy2(args.pyfunc, binary)
            if subprocess.run([binary, "--version"], capture_output=True).returncode == 0:
                break
        except OSError:
            pass
        time.sleep(2)  # being relinked
    else:
        sys.exit("cannot run {}".format(args.pyfunc))
    with open(binary, "rb") as f:
        binary_sha = hashlib.sha256(f.read()).hexdigest()[:12]
    binary_mtime = datetime.datetime.fromtimestamp(os.path.getmtime(binary)).strftime("%Y-%m-%d %H:%M")
    timings = {}
    results = []  # {model, kind, path, input, mlflow, pyfunc, agree, how}

    def record(case, path, label, want, got, verdict, show=short):
        agree, how = verdict
        results.append({"model": case.name, "kind": case.kind, "path": path, "input": label, "agree": agree,
                         "how": how, "mlflow": show(want), "pyfunc": show(got)})

    def phase(name):
        t = time.time()
        print("[{:6.1f} s] {}".format(t - t_start, name), file=sys.stderr, flush=True)
        return t

    # 1. models
    t = phase("saving models with MLflow {}".format(mlflow.__version__))
    cases = save_models(tmp / "models")
    if args.models:
        cases = [c for c in cases if c.name in args.models.split(",")]
    timings["save models"] = time.time() - t

    # 2. MLflow's answers
    t = phase("MLflow's answers (in process, scoring server, CLI)")
    ml_models = {c.name: mlflow.pyfunc.load_model(c.path) for c in cases}
    want_inproc, want_http, want_cli, cli_files = {}, {}, {}, {}
    for c in cases:
        m = ml_models[c.name]
        for label, data, params in inproc_inputs(c):
            want_inproc[c.name, label] = call(lambda: m.predict(data, params=params))
        for i, (label, body, ctype, cli) in enumerate(requests_for(c)):
            want_http[c.name, label] = mlflow_http(m, body, ctype)
            if cli:
                ext = "csv" if ctype == "text/csv" else "json"
                in_path = tmp / "inputs" / "{}-{}.{}".format(c.name, i, ext)
                in_path.parent.mkdir(exist_ok=True)
                in_path.write_bytes(body)
                cli_files[c.name, label] = (str(in_path), ext)
                want_cli[c.name, label] = mlflow_cli(c.path, str(in_path), ext, str(tmp / "mlflow-cli.out"))
    timings["MLflow answers"] = time.time() - t

    # 3. pyfunc in process
    t = phase("pyfunc in process")
    for c in cases:
        model = call(lambda: pyfunc.load_pyfunc(c.path))
        for label, data, params in inproc_inputs(c):
            got = model if isinstance(model, Raised) else call(lambda: model.predict(data, params=params))
            record(c, "in-process", label, want_inproc[c.name, label], got,
                   same_value(want_inproc[c.name, label], got))
    timings["pyfunc in process"] = time.time() - t

    # 4. pyfunc workers
    t = phase("pyfunc workers (load_pyfunc(env_manager='local'))")
    for c in cases:
        model = call(lambda: pyfunc.load_pyfunc(c.path, env_manager="local"))
        for label, data, params in inproc_inputs(c):
            got = model if isinstance(model, Raised) else call(lambda: model.predict(data, params=params))
            record(c, "workers", label, want_inproc[c.name, label], got,
                   same_value(want_inproc[c.name, label], got))
        if not isinstance(model, Raised):
            model.close()
        del model
    timings["pyfunc workers"] = time.time() - t

    # 5. pyfunc serve
    t = phase("pyfunc serve ({})".format(binary))
    for c in cases:
        try:
            server = Server(binary, c.path, str(tmp / "serve-{}.log".format(c.name)))
        except RuntimeError as e:
            server = None
            start_error = str(e)
        for label, body, ctype, _ in requests_for(c):
            if server and server.dead():  # it died on an earlier request: a new one for the rest
                server.stop()
                server = Server(binary, c.path, str(tmp / "serve-{}-{}.log".format(c.name, label)))
            got = server.post(body, ctype) if server else (None, start_error.encode())
            want = want_http[c.name, label]
            record(c, "server", label, want, got, same_http(want, got),
                   show=lambda r: "{} {}".format(r[0], short(r[1], 170)))
        if server:
            server.stop()
    timings["pyfunc serve"] = time.time() - t

    # 6. pyfunc predict (and a sample of the real `mlflow models predict`)
    t = phase("pyfunc predict ({})".format(binary))
    for c in cases:
        for label, body, ctype, cli in requests_for(c):
            if not cli:
                continue
            in_path, ext = cli_files[c.name, label]
            ok, out, _ = run_cli([binary, "predict", "-m", c.path, "-i", in_path, "--env-manager", "local"])
            want = want_cli[c.name, label]
            record(c, "CLI", label, want, (ok, out), same_cli(want, (ok, out)),
                   show=lambda r: ("" if r[0] else "failed: ") + short(r[1], 170))
    timings["pyfunc predict"] = time.time() - t

    mlflow_cli_checks = []
    if args.mlflow_cli:
        t = phase("the real `mlflow models predict` for {} cases".format(args.mlflow_cli))
        mlflow_bin = str(Path(PYTHON).parent / "mlflow")
        picks = [(c, label) for c in cases for label, _, _, cli in requests_for(c) if cli]
        # One JSON case of the first model, one CSV case of a PythonModel, then spread.
        order = [p for p in picks if p[0].name == "sk_pickle" and p[1] == "dataframe_split"]
        order += [p for p in picks if p[0].name == "pm_narrow" and p[1] == "csv"]
        order += [p for i, p in enumerate(picks) if i % 7 == 3 and p not in order]
        for c, label in order[: args.mlflow_cli]:
            in_path, ext = cli_files[c.name, label]
            ok, out, _ = run_cli([mlflow_bin, "models", "predict", "-m", c.path, "-i", in_path, "-t", ext,
                                  "--env-manager", "local"], timeout=300)
            real = (ok, out)
            inproc_ref = want_cli[c.name, label]
            pyfunc_got = [r for r in results if r["model"] == c.name and r["path"] == "CLI" and r["input"] == label][0]
            mlflow_cli_checks.append({
                "model": c.name, "input": label,
                "real_vs_in_process": same_cli(real, inproc_ref),
                "mlflow": ("" if ok else "failed: ") + short(out, 170),
                "pyfunc": pyfunc_got["pyfunc"],
            })
        timings["mlflow models predict"] = time.time() - t

    # 7. Spark
    if not args.no_spark:
        t = phase("Spark: mlflow.pyfunc.spark_udf vs pyfunc.spark_udf (local[1])")
        spark = call(spark_session)
        for c in cases:
            if not c.spark:
                continue
            if isinstance(spark, Raised):
                record(c, "Spark", "data", spark, spark, (False, "no Spark session: " + spark.message))
                continue
            columns = list(c.data.columns)
            sdf = spark.createDataFrame(c.data.assign(__row=range(len(c.data))), schema=spark_schema(c.data))
            variants = [("data", None, rt) for rt in c.spark["result_types"]]
            variants += [("data + params", c.params, c.spark["result_types"][0])] if c.params else []
            for label, params, rt in variants:
                want = spark_answer(sdf, lambda: mlflow.pyfunc.spark_udf(
                    spark, c.path, result_type=rt, env_manager="local", params=params), columns)
                got = spark_answer(sdf, lambda: pyfunc.spark_udf(
                    spark, c.path, result_type=rt, env_manager="local", params=params), columns)
                record(c, "Spark", label + (" ({})".format(rt) if rt else ""), want, got, same_spark(want, got))
        if not isinstance(spark, Raised):
            spark.stop()
        timings["Spark"] = time.time() - t

    wall = time.time() - t_start

    # --- report ---
    import catboost
    import lightgbm
    import sklearn
    import statsmodels
    import xgboost

    versions = {
        "mlflow": mlflow.__version__, "pyfunc": pyfunc.__version__, "python": platform.python_version(),
        "numpy": np.__version__, "pandas": pd.__version__, "scikit-learn": sklearn.__version__,
        "xgboost": xgboost.__version__, "lightgbm": lightgbm.__version__, "catboost": catboost.__version__,
        "statsmodels": statsmodels.__version__,
    }
    for mod in ("onnx", "onnxruntime", "skl2onnx", "pyspark"):
        versions[mod] = __import__(mod).__version__
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    machine = "{} cores ({}), Linux {}, load average at the end {:.1f}".format(
        os.cpu_count(), cpu, platform.release(), os.getloadavg()[0])

    lines = []
    lines.append("Agreement of pyfunc with MLflow {} — {}".format(mlflow.__version__,
                                                                started_at.strftime("%Y-%m-%d %H:%M %Z")))
    lines.append("")
    lines.append("Command: `.venv/bin/python bench/compat/run.py --out {}`; wall time {:.0f} s ({}).".format(
        args.out, wall, ", ".join("{} {:.0f} s".format(k, v) for k, v in timings.items())))
    lines.append("Binary: a copy of `{}` taken at the start (sha256 {}…, built {}), repo at {}.".format(
        os.path.relpath(args.pyfunc, ROOT) if args.pyfunc.startswith(str(ROOT)) else args.pyfunc, binary_sha,
        binary_mtime, commit))
    lines.append("Versions: " + ", ".join("{} {}".format(k, v) for k, v in versions.items()) + ".")
    lines.append("Machine: " + machine + ".")
    lines.append("")
    header = "| model | " + " | ".join(PATHS) + " |"
    lines.append(header)
    lines.append("|---|" + "---:|" * len(PATHS))
    totals = {p: [0, 0] for p in PATHS}
    for c in cases:
        cells = []
        for p in PATHS:
            rs = [r for r in results if r["model"] == c.name and r["path"] == p]
            if not rs:
                cells.append("—")
                continue
            a = sum(r["agree"] for r in rs)
            totals[p][0] += a
            totals[p][1] += len(rs)
            cells.append("{}/{}".format(a, len(rs)) if a == len(rs) else "**{}/{}**".format(a, len(rs)))
        lines.append("| {} | {} |".format(c.kind, " | ".join(cells)))
    lines.append("| **all** | {} |".format(" | ".join("{}/{}".format(*totals[p]) for p in PATHS)))
    agreed = [r for r in results if r["agree"]]
    hows = {}
    for r in agreed:
        hows.setdefault(r["path"], {}).setdefault(r["how"], 0)
        hows[r["path"]][r["how"]] += 1
    lines.append("")
    for p, h in hows.items():
        lines.append("- {} agreements: {}.".format(p, ", ".join("{} {}".format(v, k) for k, v in sorted(h.items()))))
    for chk in mlflow_cli_checks:
        ok, how = chk["real_vs_in_process"]
        lines.append("- real `mlflow models predict` on {} / {}: {} its in-process `_predict` ({}); "
                     "MLflow: {}; pyfunc: {}".format(chk["model"], chk["input"], "same as" if ok else "DIFFERS from",
                                                     how, chk["mlflow"], chk["pyfunc"]))
    lines.append("")
    bad = [r for r in results if not r["agree"]]
    lines.append("Disagreements: {}".format(len(bad)))
    if bad:
        lines.append("")
        lines.append("| model | path | input | why | MLflow | pyfunc |")
        lines.append("|---|---|---|---|---|---|")
        for r in bad:
            lines.append("| {} | {} | {} | {} | {} | {} |".format(r["model"], r["path"], r["input"],
                                                                r["how"].replace("|", "\\|"), r["mlflow"],
                                                                r["pyfunc"]))
    odd = [r for r in results if r["agree"] and ("different error" in r["how"] or "error differs" in r["how"])]
    if odd:
        lines.append("")
        lines.append("Agreements on an error, but not the same error:")
        lines.append("")
        lines.append("| model | path | input | MLflow | pyfunc |")
        lines.append("|---|---|---|---|---|")
        for r in odd:
            lines.append("| {} | {} | {} | {} | {} |".format(r["model"], r["path"], r["input"], r["mlflow"], r["pyfunc"]))
    report = "\n".join(lines) + "\n"
    print(report)
    (out_dir / "results.md").write_text(report)
    (out_dir / "results.json").write_text(json.dumps({
        "started": started_at.isoformat(), "wall_seconds": round(wall, 1), "timings": timings,
        "versions": versions, "binary": args.pyfunc, "binary_sha256_12": binary_sha, "commit": commit,
        "machine": machine, "results": results, "mlflow_cli_checks": mlflow_cli_checks,
    }, indent=1, default=str))
    if args.keep:
        print("scratch directory kept: {}".format(tmp), file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
