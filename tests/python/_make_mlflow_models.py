"""Saves models with real MLflow and records what MLflow predicts for them.

Run as a script (``python _make_mlflow_models.py OUT_DIR``) so that the PythonModel
classes below live in ``__main__`` and are cloudpickled by value, as a user's
notebook classes are. Writes OUT_DIR/<name>/ model directories and
OUT_DIR/expected.pkl = {name: (input, params, mlflow's prediction)}.
"""

import os
import pickle
import shutil
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

# Models from code: MLflow runs each file (which imports MLflow and calls set_model) when
# saving and again when loading; the file is copied into the model directory.
code_dir = f"{out}/src_code"
os.makedirs(code_dir)
sys.path.insert(0, code_dir)  # where the model file finds its helper when MLflow saves it
CODE_FILES = {
    "code_helper.py": """\
        def read_offset(path):
            with open(path) as f:
                return float(f.read())
        """,
    # A PythonModel subclass: model_config through the context and through ModelConfig,
    # an artifact, params, and a helper module from code_paths.
    "affine_model.py": """\
        import mlflow
        from mlflow.models import ModelConfig, set_model
        from code_helper import read_offset

        config = ModelConfig(development_config={"scale": 1, "shift": 0})


        class Affine(mlflow.pyfunc.PythonModel):
            def load_context(self, context):
                self.scale = context.model_config["scale"]
                self.offset = read_offset(context.artifacts["offset"])

            def predict(self, context, model_input, params=None):
                bias = (params or {}).get("bias", 0)
                return model_input.sum(axis=1) * self.scale + self.offset + config.get("shift") + bias


        set_model(Affine())
        """,
    # A plain function, configured by ModelConfig when the file runs.
    "times_model.py": """\
        import mlflow
        from mlflow.models import ModelConfig

        factor = ModelConfig(development_config={"factor": 1}).get("factor")


        def times(model_input):
            return model_input * factor


        mlflow.models.set_model(times)
        """,
    # Type hints: a DataFrame reaches predict as the list its hint asks for.
    "shout_model.py": """\
        from mlflow.models import set_model
        from mlflow.pyfunc import PythonModel


        class Shout(PythonModel):
            def predict(self, model_input: list[str], params=None) -> list[str]:
                return [s.upper() + "!" for s in model_input]


        set_model(Shout())
        """,
    "halve_model.py": """\
        from mlflow.models import set_model


        def halve(model_input: list[float]) -> list[float]:
            return [x / 2 for x in model_input]


        set_model(halve)
        """,
    # Answers which MLflow the file ran with: real MLflow or pyfunc's stand-in.
    "probe_model.py": """\
        import mlflow
        from mlflow.models import set_model


        def which_mlflow(model_input):
            return [mlflow.pyfunc.PythonModel.__module__] * len(model_input)


        set_model(which_mlflow)
        """,
}
for file_name, text in CODE_FILES.items():
    with open(f"{code_dir}/{file_name}", "w") as f:
        f.write(textwrap.dedent(text))
mlflow.pyfunc.save_model(
    f"{out}/code_affine", python_model=f"{code_dir}/affine_model.py", artifacts={"offset": f"{out}/offset.txt"},
    code_paths=[f"{code_dir}/code_helper.py"], model_config={"scale": 3, "shift": 100}, pip_requirements=REQS,
    signature=infer_signature(numbers, params={"bias": 0.0}),
)
inputs["code_affine"] = (numbers, {"bias": 7})
mlflow.pyfunc.save_model(
    f"{out}/code_function", python_model=f"{code_dir}/times_model.py", model_config={"factor": 5},
    pip_requirements=REQS,
)
inputs["code_function"] = (numbers, None)
mlflow.pyfunc.save_model(
    f"{out}/code_typehint", python_model=f"{code_dir}/shout_model.py", input_example=["ab", "c"], pip_requirements=REQS
)
inputs["code_typehint"] = (pd.DataFrame({"text": ["ab", "cd"]}), None)
mlflow.pyfunc.save_model(
    f"{out}/code_halve", python_model=f"{code_dir}/halve_model.py", input_example=[1.0, 3.0], pip_requirements=REQS
)
inputs["code_halve"] = (pd.DataFrame({"x": [1.0, 5.0]}), None)
mlflow.pyfunc.save_model(f"{out}/code_probe", python_model=f"{code_dir}/probe_model.py", pip_requirements=REQS)
inputs["code_probe"] = (numbers, None)
sys.path.remove(code_dir)
# The MLmodel names the file where it was saved from (model_code_path); loaders use the
# copy in the model directory, as on another machine.
shutil.rmtree(code_dir)

expected = {}
for name, (data, params) in inputs.items():
    model = mlflow.pyfunc.load_model(f"{out}/{name}")
    expected[name] = (data, params, model.predict(data, params=params))
with open(f"{out}/expected.pkl", "wb") as f:
    pickle.dump(expected, f)
