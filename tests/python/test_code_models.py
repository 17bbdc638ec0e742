"""Models from code (``mlflow.pyfunc.save_model(path, python_model="model.py")``: the
file imports MLflow and calls ``mlflow.models.set_model``) load and predict what MLflow
predicts, with MLflow installed (MLflow's loader runs the file) and without it (the
built-in loader runs the file with a minimal stand-in for MLflow): in process, in
worker processes and through ``pyfunc predict``.

The models are saved by real MLflow in ``_make_mlflow_models.py`` (``code_*``). "Without
MLflow" is an interpreter where ``import mlflow`` fails as in an environment that lacks
it: a ``sitecustomize`` on PYTHONPATH blocks it in that interpreter and in the workers it
starts.
"""

import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
from conftest import BLOCK_IMPORTS, MLFLOW_MODEL_NAMES, assert_same_prediction, run_python

import pyfunc

CODE_MODELS = [name for name in MLFLOW_MODEL_NAMES if name.startswith("code_")]
PYFUNC = os.environ.get("PYFUNC_BINARY") or str(Path(sys.executable).parent / "pyfunc")
REAL_MLFLOW = "mlflow.pyfunc.model"
STAND_IN = "_pyfunc_builtin_pythonmodel"


@pytest.fixture(scope="module")
def no_mlflow_env(tmp_path_factory):
    """Environment variables under which Python (and the workers it starts) has no MLflow."""
    site = tmp_path_factory.mktemp("no_mlflow_site")
    (site / "sitecustomize.py").write_text(BLOCK_IMPORTS.format(blocked=["mlflow"]))
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "PYFUNC_PYTHON": sys.executable}


def _unhex(out):
    return pickle.loads(bytes.fromhex(out.strip().splitlines()[-1]))


_SCORE_EVERYWHERE = """
import os, pickle, sys, warnings
warnings.simplefilter("ignore")
import pyfunc
root, names = sys.argv[1], sys.argv[2].split(",")
with open(os.path.join(root, "expected.pkl"), "rb") as f:
    expected = pickle.load(f)
out = {}
for name in names:
    data, params, _ = expected[name]
    local = pyfunc.load_pyfunc(os.path.join(root, name))
    remote = pyfunc.load_pyfunc(os.path.join(root, name), env_manager="local", workers=2)
    out[name] = {"in_process": local.predict(data, params=params), "workers": remote.predict(data, params=params),
                 "impl": type(local._model_impl).__module__}
    remote.close()
out["__mlflow_importable__"] = True
try:
    import mlflow  # noqa: F401
except ImportError:
    out["__mlflow_importable__"] = False
out["__mlflow_modules__"] = sorted(m for m in sys.modules if m.split(".")[0] == "mlflow")
sys.stdout.write(pickle.dumps(out).hex())
"""


def test_models_from_code_predict_what_mlflow_predicts_without_mlflow(mlflow_models, mlflow_expected,
                                                                     no_mlflow_env):
    out = _unhex(run_python(_SCORE_EVERYWHERE, mlflow_models, ",".join(CODE_MODELS + ["code_probe"]),
                            env=no_mlflow_env))
    assert out["__mlflow_importable__"] is False
    # The stand-in exists only while a model file runs.
    assert out["__mlflow_modules__"] == []
    for name in CODE_MODELS:
        want = mlflow_expected[name][2]
        assert_same_prediction(want, out[name]["in_process"])
        assert_same_prediction(want, out[name]["workers"])
        assert out[name]["impl"] == STAND_IN, name
    # The model files ran with the stand-in, in process and in the workers.
    assert list(out["code_probe"]["in_process"]) == [STAND_IN] * 3
    assert list(out["code_probe"]["workers"]) == [STAND_IN] * 3


def test_models_from_code_use_mlflow_when_it_is_installed(mlflow_models, mlflow_expected):
    """Workers load MLflow's sklearn and pickled PythonModels with the built-in loaders
    even when MLflow is importable; a model file imports MLflow anyway, so it runs with
    the real one, in process and in workers."""
    out = _unhex(run_python(_SCORE_EVERYWHERE, mlflow_models, ",".join(CODE_MODELS + ["code_probe"])))
    assert out["__mlflow_importable__"] is True
    for name in CODE_MODELS:
        want = mlflow_expected[name][2]
        assert_same_prediction(want, out[name]["in_process"])
        assert_same_prediction(want, out[name]["workers"])
        assert out[name]["impl"] == REAL_MLFLOW, name
    assert list(out["code_probe"]["in_process"]) == [REAL_MLFLOW] * 3
    assert list(out["code_probe"]["workers"]) == [REAL_MLFLOW] * 3


def _mlflow_json(prediction):
    """What MLflow's scoring server writes for ``prediction``."""
    from mlflow.pyfunc.scoring_server import predictions_to_json

    buf = io.StringIO()
    predictions_to_json(prediction, buf)
    return json.loads(buf.getvalue())


@pytest.mark.parametrize("name", CODE_MODELS)
def test_pyfunc_predict_scores_models_from_code_without_mlflow(mlflow_models, mlflow_expected, no_mlflow_env, name):
    data, params, want = mlflow_expected[name]
    body = {"dataframe_split": data.to_dict(orient="split")}
    if params:
        body["params"] = params
    proc = subprocess.run([PYFUNC, "predict", "-m", str(mlflow_models / name), "-t", "json", "--env-manager", "local"],
                          input=json.dumps(body), capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **no_mlflow_env))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == _mlflow_json(want)


_WITH_CONFIG = """
import json, os, pickle, sys, warnings
warnings.simplefilter("ignore")
import pandas as pd
import pyfunc
path, overrides = sys.argv[1], json.loads(sys.argv[2])
data = pd.DataFrame({"a": [1.0, 2.0], "b": [10.0, 20.0]})
model = pyfunc.load_pyfunc(path, model_config=overrides)
remote = pyfunc.load_pyfunc(path, model_config=overrides, env_manager="local")
sys.stdout.write(pickle.dumps((model.predict(data), remote.predict(data), model.model_config)).hex())
"""


@pytest.mark.parametrize("name, overrides", [
    ("code_affine", {"scale": 10, "unknown": 1}),  # context.model_config and ModelConfig both see it
    ("code_function", {"factor": -2}),  # ModelConfig, read while the file runs
])
def test_model_config_overrides_reach_the_model_file_as_in_mlflow(mlflow_models, no_mlflow_env, monkeypatch, name,
                                                                  overrides):
    import mlflow.pyfunc

    monkeypatch.setenv("MLFLOW_PYFUNC_INFERENCE_CONFIG", json.dumps({"shift": 0}))
    path = str(mlflow_models / name)
    data = pd.DataFrame({"a": [1.0, 2.0], "b": [10.0, 20.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = mlflow.pyfunc.load_model(path, model_config=overrides).predict(data)
    in_process, in_workers, config = _unhex(run_python(_WITH_CONFIG, path, json.dumps(overrides), env=dict(
        no_mlflow_env, MLFLOW_PYFUNC_INFERENCE_CONFIG=json.dumps({"shift": 0}))))
    assert_same_prediction(want, in_process)
    assert_same_prediction(want, in_workers)
    saved = {"code_affine": {"scale": 3, "shift": 100}, "code_function": {"factor": 5}}[name]
    assert config == {k: {**overrides, "shift": 0}.get(k, v) for k, v in saved.items()}


# --- model files that do not give a model --------------------------------------------------

BAD_FILES = {
    "raises": ("import mlflow\nraise RuntimeError('no model here')\n", "RuntimeError: no model here"),
    "no_set_model": ("import mlflow\n\ndef times(model_input):\n    return model_input\n", "set_model"),
    "needs_more_mlflow": ("import mlflow\n\n@mlflow.trace\ndef f(x):\n    return x\n\nmlflow.models.set_model(f)\n",
                          "module 'mlflow' has no attribute 'trace' (MLflow is not installed"),
}

_LOAD_BAD = """
import json, sys, warnings
warnings.simplefilter("ignore")
import pyfunc
out = {}
for path in sys.argv[1:]:
    for where in ("in_process", "workers"):
        try:
            if where == "in_process":
                pyfunc.load_pyfunc(path)
            else:
                pyfunc.load_pyfunc(path, env_manager="local")
            out[path + " " + where] = "loaded"
        except Exception as e:
            out[path + " " + where] = [type(e).__name__, str(e)]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def bad_models(mlflow_models, tmp_path_factory):
    """code_function with its model file replaced by each of BAD_FILES (MLflow would not
    save them: it runs the file when saving)."""
    root = tmp_path_factory.mktemp("bad_code_models")
    paths = {}
    for kind, (text, _) in BAD_FILES.items():
        shutil.copytree(mlflow_models / "code_function", root / kind)
        (root / kind / "times_model.py").write_text(text)
        paths[kind] = str(root / kind)
    return paths


def test_a_model_file_that_gives_no_model_is_a_model_load_error_naming_it(bad_models, no_mlflow_env):
    out = json.loads(run_python(_LOAD_BAD, *bad_models.values(), env=no_mlflow_env))
    for kind, path in bad_models.items():
        for where in ("in_process", "workers"):
            kind_of_error, message = out[path + " " + where]
            assert kind_of_error == "ModelLoadError", (kind, where, message)
            assert os.path.join(path, "times_model.py") in message, message
            assert BAD_FILES[kind][1] in message, message


def test_a_model_file_that_gives_no_model_fails_to_load_with_mlflow_too(bad_models):
    # A fresh interpreter per model: MLflow keeps the last model a file set in a global,
    # which a later file that sets none would return.
    for kind in ("raises", "no_set_model"):
        out = json.loads(run_python(_LOAD_BAD, bad_models[kind]))
        for where in ("in_process", "workers"):
            kind_of_error, message = out[bad_models[kind] + " " + where]
            assert kind_of_error == "ModelLoadError", (kind, where, message)
            assert os.path.join(bad_models[kind], "times_model.py") in message, message
    # The MLflow that was importable kept the file's own MLflow usage working.
    out = json.loads(run_python(_LOAD_BAD, bad_models["needs_more_mlflow"]))
    assert set(out.values()) == {"loaded"}
