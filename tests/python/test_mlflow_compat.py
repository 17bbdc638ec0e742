"""Models move between MLflow and pyfunc: MLflow-saved models load in pyfunc (with and
without MLflow installed) and predict what MLflow predicts; pyfunc-saved models load in
MLflow."""

import json
import os
import pickle
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import MLFLOW_MODEL_NAMES, PACKAGE_DIR, assert_same_prediction, run_python

import pyfunc
from pyfunc import _core


@pytest.mark.parametrize("name", MLFLOW_MODEL_NAMES)
def test_mlflow_saved_model_predicts_the_same_in_pyfunc(mlflow_models, mlflow_expected, name):
    data, params, want = mlflow_expected[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = pyfunc.load_pyfunc(str(mlflow_models / name))
        got = model.predict(data, params=params)
    assert_same_prediction(want, got)
    assert model.metadata == _core.read_model(str(mlflow_models / name))


def test_mlflow_loader_modules_are_used_when_mlflow_is_importable(mlflow_models):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = pyfunc.load_pyfunc(mlflow_models / "sk_skops")
        code_model = pyfunc.load_pyfunc(mlflow_models / "code_affine")
    assert type(model._model_impl).__module__ == "mlflow.sklearn"
    assert type(code_model._model_impl).__module__ == "mlflow.pyfunc.model"
    assert type(code_model.unwrap_python_model()).__mro__[1].__module__ == "mlflow.pyfunc.model"


_LOAD_ALL_WITHOUT_MLFLOW = """
import os, pickle, sys, warnings
warnings.simplefilter("ignore")
import pyfunc
root, names = sys.argv[1], sys.argv[2].split(",")
with open(os.path.join(root, "expected.pkl"), "rb") as f:
    expected = pickle.load(f)
results = {}
for name in names:
    data, params, _ = expected[name]
    model = pyfunc.load_pyfunc(os.path.join(root, name))
    results[name] = (model.predict(data, params=params), type(model._model_impl).__module__)
results["__mlflow_modules_after_load__"] = sorted(m for m in sys.modules if m.split(".")[0] == "mlflow")
results["__unwrapped__"] = type(pyfunc.load_pyfunc(os.path.join(root, "pm_artifacts")).unwrap_python_model()).__name__
results["__raw__"] = type(pyfunc.load_pyfunc(os.path.join(root, "sk_skops")).get_raw_model()).__name__
os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"
try:
    pyfunc.load_pyfunc(os.path.join(root, "sk_cloudpickle"))
    results["__gate__"] = "loaded"
except pyfunc.ModelLoadError as e:
    results["__gate__"] = str(e)
sys.stdout.buffer.write(pickle.dumps(results).hex().encode())
"""


def test_mlflow_saved_models_load_without_mlflow(mlflow_models, mlflow_expected):
    out = run_python(_LOAD_ALL_WITHOUT_MLFLOW, mlflow_models, ",".join(MLFLOW_MODEL_NAMES), blocked={"mlflow"})
    results = pickle.loads(bytes.fromhex(out))
    for name in MLFLOW_MODEL_NAMES:
        got, impl_module = results[name]
        assert_same_prediction(mlflow_expected[name][2], got)
        if name.startswith("sk_"):
            assert impl_module == "_pyfunc_builtin_sklearn"
        elif name.startswith(("pm_", "code_")):
            assert impl_module == "_pyfunc_builtin_pythonmodel"
    # The MLflow stand-ins exist only while a pickle is read or a model file runs.
    assert results["__mlflow_modules_after_load__"] == []
    assert results["__unwrapped__"] == "Scaler"
    assert results["__raw__"] == "LogisticRegression"
    gate = results["__gate__"]
    assert "MLFLOW_ALLOW_PICKLE_DESERIALIZATION" in gate and "sk_cloudpickle" in gate and "mlflow.sklearn" in gate


_WORKER_STYLE = """
import importlib.util, json, pickle, sys
spec = importlib.util.spec_from_file_location("standalone_loading", sys.argv[1])
loading = importlib.util.module_from_spec(spec)
spec.loader.exec_module(loading)
root, mlmodels = sys.argv[2], json.loads(open(sys.argv[3]).read())
with open(root + "/expected.pkl", "rb") as f:
    expected = pickle.load(f)
import warnings
warnings.simplefilter("ignore")
out = {}
for name, mlmodel in mlmodels.items():
    data, params, _ = expected[name]
    out[name] = loading.load_model(root + "/" + name, mlmodel).predict(data, params=params)
out["__pyfunc_imported__"] = any(m == "pyfunc" or m.startswith("pyfunc.") for m in sys.modules)
out["__yaml_imported__"] = "yaml" in sys.modules
sys.stdout.buffer.write(pickle.dumps(out).hex().encode())
"""


def test_loading_routine_runs_by_path_without_pyfunc_mlflow_or_yaml(mlflow_models, mlflow_expected, tmp_path):
    # The worker of a model's own environment loads _loading.py by path, with the MLmodel
    # already parsed, and has neither pyfunc, MLflow nor PyYAML.
    names = ["sk_skops", "sk_legacy", "pm_artifacts", "pm_typehint", "custom_loader", "code_affine", "code_halve"]
    mlmodels = {n: _core.read_model(str(mlflow_models / n)) for n in names}
    (tmp_path / "mlmodels.json").write_text(json.dumps(mlmodels))
    out = run_python(
        _WORKER_STYLE, PACKAGE_DIR / "_loading.py", mlflow_models, tmp_path / "mlmodels.json",
        blocked={"pyfunc", "mlflow", "yaml"}, isolated=True,
    )
    results = pickle.loads(bytes.fromhex(out))
    for name in names:
        assert_same_prediction(mlflow_expected[name][2], results[name])
    assert results["__pyfunc_imported__"] is False
    assert results["__yaml_imported__"] is False


def test_model_config_overrides_match_mlflow(mlflow_models, monkeypatch):
    import mlflow.pyfunc

    path = str(mlflow_models / "pm_artifacts")
    data = pd.DataFrame({"a": [1.0], "b": [2.0]})
    monkeypatch.setenv("MLFLOW_PYFUNC_INFERENCE_CONFIG", json.dumps({"shift": 0}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = mlflow.pyfunc.load_model(path, model_config={"scale": 10, "unknown": 1}).predict(data)
    with pytest.warns(UserWarning, match="unknown"):
        model = pyfunc.load_pyfunc(path, model_config={"scale": 10, "unknown": 1})
    pd.testing.assert_series_equal(model.predict(data), want)
    assert model.predict(data).tolist() == [3 * 10 + 0.5 + 0 + 0.0]
    assert model.model_config == {"scale": 10, "shift": 0}


def _write_seed_style_model(tmp_path, estimator, loader_name, **kwargs):
    src = tmp_path / "src"
    src.mkdir()
    (src / (loader_name + ".py")).write_text(
        "import pickle\n\n"
        "def _load_pyfunc(path):\n"
        "    with open(path, 'rb') as f:\n"
        "        return pickle.load(f)\n"
    )
    with open(src / "estimator.pkl", "wb") as f:
        pickle.dump(estimator, f)
    dst = tmp_path / "model"
    saved = pyfunc.save_model(
        str(dst), loader_name, data_path=str(src / "estimator.pkl"), code_path=[str(src / (loader_name + ".py"))], **kwargs
    )
    return dst, saved


@pytest.fixture(scope="module")
def iris_estimator():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True)
    return LogisticRegression(max_iter=300).fit(iris.data, iris.target), iris.data


def test_pyfunc_saved_model_predicts_the_same_in_mlflow(tmp_path, iris_estimator):
    import mlflow.models
    import mlflow.pyfunc

    estimator, X = iris_estimator
    dst, _ = _write_seed_style_model(tmp_path, estimator, "compat_loader_a", model=mlflow.models.Model(run_id="abc"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_mlflow = mlflow.pyfunc.load_model(str(dst)).predict(X)
        from_pyfunc = pyfunc.load_pyfunc(str(dst)).predict(X)
    np.testing.assert_array_equal(from_mlflow, estimator.predict(X))
    np.testing.assert_array_equal(from_pyfunc, from_mlflow)
    meta = mlflow.models.Model.load(str(dst))
    assert meta.run_id == "abc"
    assert meta.flavors["python_function"]["loader_module"] == "compat_loader_a"


def test_pyfunc_saved_model_with_conda_env_dict_loads_in_mlflow(tmp_path, iris_estimator):
    import mlflow.pyfunc

    estimator, X = iris_estimator
    conda = {"name": "m", "channels": ["conda-forge"], "dependencies": ["python=3.11.7", "pip", {"pip": ["scikit-learn"]}]}
    dst, _ = _write_seed_style_model(tmp_path, estimator, "compat_loader_b", conda_env=conda)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mlflow.pyfunc.load_model(str(dst))
    np.testing.assert_array_equal(model.predict(X.iloc[:5]), estimator.predict(X.iloc[:5]))
    assert (dst / "requirements.txt").read_text().splitlines() == ["scikit-learn"]


def test_mlflow_model_objects_are_accepted_by_add_to_model():
    import mlflow.models

    m = mlflow.models.Model()
    out = pyfunc.add_to_model(m, "my_loader", data="data/x.pkl", code="code")
    assert out is m
    conf = m.flavors["python_function"]
    assert conf["loader_module"] == "my_loader" and conf["data"] == "data/x.pkl" and conf["code"] == "code"


def test_mlflow_written_mlmodel_files_round_trip_byte_for_byte(mlflow_models):
    names = [n for n in MLFLOW_MODEL_NAMES if n != "sk_legacy"]  # sk_legacy is hand-written
    for name in names:
        path = mlflow_models / name / "MLmodel"
        text = path.read_text()
        assert _core.model_to_yaml(_core.read_model(str(path))) == text, name
        assert pyfunc.Model.load(path).to_yaml() == text, name


def test_mlflow_written_yaml_files_parse_like_pyyaml(mlflow_models):
    import yaml

    files = [p for p in mlflow_models.rglob("*") if p.name in ("MLmodel", "conda.yaml", "python_env.yaml")]
    assert len(files) > 20
    for path in files:
        text = path.read_text()
        assert _core.parse_yaml(text, str(path)) == yaml.safe_load(text), path


def test_records_reach_models_in_workers_as_mlflow_passes_them(mlflow_models, mlflow_expected):
    """predict(df.to_dict("records")) through worker processes failed on most models with
    "Can not safely convert object to float64": the records reached the model as dicts of
    0-d arrays (how MLflow's server parses `instances`), not as the caller's scalars."""
    import mlflow.pyfunc
    import pandas as pd

    compared = 0
    for name in MLFLOW_MODEL_NAMES:
        data, params, _ = mlflow_expected[name]
        if not isinstance(data, pd.DataFrame):
            continue
        records = data.to_dict("records")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = mlflow.pyfunc.load_model(str(mlflow_models / name))
            try:
                want = reference.predict(records, params=params)
            except Exception as e:  # noqa: B902 - then pyfunc must fail too
                want = e
            remote = pyfunc.load_pyfunc(str(mlflow_models / name), env_manager="local")
            if isinstance(want, Exception):
                with pytest.raises(Exception):
                    remote.predict(records, params=params)
                continue
            assert_same_prediction(want, remote.predict(records, params=params))
            compared += 1
    assert compared >= 6  # sklearn in three formats and three PythonModels


def test_a_model_that_changes_its_input_leaves_the_callers_frame_as_mlflow_does(tmp_path):
    """With a column signature whose columns and dtypes the input already had, the model
    got the caller's own DataFrame: a column it added or a value it set showed up in the
    caller's frame. MLflow gives the model a new frame."""
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    (tmp_path / "mutating_loader.py").write_text(textwrap.dedent("""\
        class Mutating:
            def predict(self, df, params=None):
                df["added"] = 1.0
                df.iloc[0, 0] = -1.0
                return df.sum(axis=1)

        def _load_pyfunc(path):
            return Mutating()
        """))
    data = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    path = str(tmp_path / "model")
    mlflow.pyfunc.save_model(path, loader_module="mutating_loader", code_paths=[str(tmp_path / "mutating_loader.py")],
                             signature=infer_signature(data), pip_requirements=["pandas"])
    results = []
    for model in (mlflow.pyfunc.load_model(path), pyfunc.load_pyfunc(path)):
        frame = data.copy()
        results.append((model.predict(frame), frame))
    (want, mlflow_frame), (got, pyfunc_frame) = results
    pd.testing.assert_series_equal(got, want)
    pd.testing.assert_frame_equal(mlflow_frame, data)
    pd.testing.assert_frame_equal(pyfunc_frame, data)
