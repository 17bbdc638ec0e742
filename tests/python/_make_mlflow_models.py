"""Saves models with real MLflow and records what MLflow predicts for them.

Run as a script (``python _make_mlflow_models.py OUT_DIR``) so that the PythonModel
classes below live in ``__main__`` and are cloudpickled by value, as a user's
notebook classes are. Writes OUT_DIR/<name>/ model directories and
OUT_DIR/expected.pkl = {name: (input, params, mlflow's prediction)}.
"""

import os
import pickle
import sys
import textwrap
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

import mlflow.pyfunc  # noqa: E402
import mlflow.sklearn  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

out = sys.argv[1]
REQS = ["scikit-learn", "pandas"]  # explicit: skips MLflow's slow requirement inference

iris = load_iris(as_frame=True)
X, y = iris.data, iris.target
estimator = LogisticRegression(max_iter=300).fit(X, y)
X10 = X.iloc[:10].copy()
signature = infer_signature(X10, estimator.predict(X10))
inputs = {}

for fmt in ("pickle", "cloudpickle", "skops"):
    mlflow.sklearn.save_model(
        estimator, f"{out}/sk_{fmt}", serialization_format=fmt, signature=signature, pip_requirements=REQS
    )
    inputs[f"sk_{fmt}"] = (X10, None)
mlflow.sklearn.save_model(estimator, f"{out}/sk_proba", pyfunc_predict_fn="predict_proba", pip_requirements=REQS)
inputs["sk_proba"] = (X10, None)

# An MLflow <= 1.9 sklearn model: the pyfunc flavor's `data` is the pickle file itself.
os.makedirs(f"{out}/sk_legacy")
with open(f"{out}/sk_legacy/model.pkl", "wb") as f:
    pickle.dump(estimator, f)
with open(f"{out}/sk_legacy/MLmodel", "w") as f:
    f.write(textwrap.dedent("""\
        flavors:
          python_function:
            data: model.pkl
            env: conda.yaml
            loader_module: mlflow.sklearn
            python_version: 3.6.9
          sklearn:
            pickled_model: model.pkl
            sklearn_version: 0.22.1
        run_id: 0f1e2d3c4b5a69788796a5b4c3d2e1f0
        utc_time_created: '2020-05-01 12:00:00.123456'
        """))
inputs["sk_legacy"] = (X10, None)


class Scaler(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        with open(context.artifacts["offset"]) as f:
            self.offset = float(f.read())
        self.scale = context.model_config["scale"]

    def predict(self, context, model_input, params=None):
        bias = (params or {}).get("bias", 0)
        return model_input.sum(axis=1) * self.scale + self.offset + bias + context.model_config["shift"]


with open(f"{out}/offset.txt", "w") as f:
    f.write("0.5")
numbers = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [10.0, 20.0, 30.0]})
mlflow.pyfunc.save_model(
    f"{out}/pm_artifacts", python_model=Scaler(), artifacts={"offset": f"{out}/offset.txt"},
    model_config={"scale": 3, "shift": 100}, pip_requirements=REQS,
    signature=infer_signature(numbers, params={"bias": 0.0}),
)
inputs["pm_artifacts"] = (numbers, {"bias": 7})


class NoContext(mlflow.pyfunc.PythonModel):
    def predict(self, model_input):
        return model_input * 2


mlflow.pyfunc.save_model(f"{out}/pm_nocontext", python_model=NoContext(), pip_requirements=REQS)
inputs["pm_nocontext"] = (numbers, None)


class Upper(mlflow.pyfunc.PythonModel):
    def predict(self, model_input: list[str], params=None) -> list[str]:
        return [s.upper() for s in model_input]


mlflow.pyfunc.save_model(f"{out}/pm_typehint", python_model=Upper(), input_example=["ab", "c"], pip_requirements=REQS)
inputs["pm_typehint"] = (pd.DataFrame({"text": ["ab", "cd"]}), None)

os.environ["MLFLOW_LOG_MODEL_COMPRESSION"] = "lzma"
mlflow.pyfunc.save_model(f"{out}/pm_lzma", python_model=NoContext(), pip_requirements=REQS)
del os.environ["MLFLOW_LOG_MODEL_COMPRESSION"]
inputs["pm_lzma"] = (numbers, None)


def add_one(model_input):
    return model_input + 1


mlflow.pyfunc.save_model(f"{out}/pm_function", python_model=add_one, pip_requirements=REQS)
inputs["pm_function"] = (numbers, None)

# A custom loader-module model: a loader module in code_paths, a pickled estimator as data.
os.makedirs(f"{out}/src")
with open(f"{out}/src/iris_loader.py", "w") as f:
    f.write(textwrap.dedent("""\
        import pickle

        def _load_pyfunc(path):
            with open(path, "rb") as f:
                return pickle.load(f)
        """))
with open(f"{out}/src/estimator.pkl", "wb") as f:
    pickle.dump(estimator, f)
mlflow.pyfunc.save_model(
    f"{out}/custom_loader", loader_module="iris_loader", data_path=f"{out}/src/estimator.pkl",
    code_paths=[f"{out}/src/iris_loader.py"], pip_requirements=REQS,
)
inputs["custom_loader"] = (X10, None)

expected = {}
for name, (data, params) in inputs.items():
    model = mlflow.pyfunc.load_model(f"{out}/{name}")
    expected[name] = (data, params, model.predict(data, params=params))
with open(f"{out}/expected.pkl", "wb") as f:
    pickle.dump(expected, f)
