"""The seed API: save_model, add_to_model, load_pyfunc, get_module_loader_src, Model,
PyFuncModel, and the errors each gives for bad input."""

import json
import os
import pickle
import platform
import sys
import textwrap
import uuid
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import PACKAGE_DIR, run_python

import pyfunc
from pyfunc import _core, _loading


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch):
    # Loading prepends a model's code dir to sys.path, as MLflow does; keep tests apart.
    monkeypatch.setattr(sys, "path", list(sys.path))


def unique_name(prefix="loader"):
    return "{}_{}".format(prefix, uuid.uuid4().hex[:12])


def write_loader(directory, body):
    """A loader module with a unique name (imports are cached per process)."""
    name = unique_name()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / (name + ".py")).write_text(textwrap.dedent(body))
    return name, directory / (name + ".py")


DOUBLER = """\
    class Doubler:
        def __init__(self, path):
            with open(path) as f:
                self.factor = float(f.read())
        def predict(self, data, params=None):
            self.seen_params = params
            return data * self.factor

    def _load_pyfunc(path):
        return Doubler(path)
    """


def save_doubler(tmp_path, **kwargs):
    name, loader = write_loader(tmp_path / "src", DOUBLER)
    (tmp_path / "factor.txt").write_text("2")
    dst = tmp_path / "model"
    model = pyfunc.save_model(str(dst), name, data_path=str(tmp_path / "factor.txt"), code_path=[str(loader)], **kwargs)
    return dst, name, model


# --- save_model --------------------------------------------------------------------------


def test_save_model_writes_the_seed_layout_and_loads_back(tmp_path):
    dst, name, model = save_doubler(tmp_path)
    assert isinstance(model, pyfunc.Model)
    conf = model.flavors["python_function"]
    assert conf == {
        "loader_module": name,
        "code": "code",
        "data": "data/factor.txt",
        "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
        "python_version": platform.python_version(),
    }
    assert sorted(os.listdir(dst)) == ["MLmodel", "code", "conda.yaml", "data", "python_env.yaml", "requirements.txt"]
    assert os.listdir(dst / "code") == [name + ".py"]
    assert pyfunc.Model.load(dst) == model
    loaded = pyfunc.load_pyfunc(str(dst))
    assert isinstance(loaded, pyfunc.PyFuncModel)
    assert loaded.loader_module == name
    pd.testing.assert_frame_equal(loaded.predict(pd.DataFrame({"x": [1, 2]})), pd.DataFrame({"x": [2.0, 4.0]}))
    assert sys.path[0] == str(dst / "code")


def test_save_model_default_environment_records_this_interpreter(tmp_path):
    dst, _, _ = save_doubler(tmp_path)
    conda = yaml.safe_load((dst / "conda.yaml").read_text())
    assert "python=" + platform.python_version() in conda["dependencies"]
    pip = [d for d in conda["dependencies"] if isinstance(d, dict)][0]["pip"]
    assert [r.split("==")[0] for r in pip] == ["numpy", "pandas", "cloudpickle"]
    assert "numpy==" + np.__version__ in pip and "pandas==" + pd.__version__ in pip
    assert (dst / "requirements.txt").read_text().splitlines() == pip
    assert yaml.safe_load((dst / "python_env.yaml").read_text())["python"] == platform.python_version()


def test_save_model_with_conda_env_file(tmp_path):
    env = tmp_path / "env.yml"
    env.write_text("name: e\ndependencies:\n- python=3.10.4\n- pip:\n  - scikit-learn==1.5.0\n")
    dst, _, _ = save_doubler(tmp_path, conda_env=str(env))
    assert yaml.safe_load((dst / "conda.yaml").read_text()) == yaml.safe_load(env.read_text())
    assert (dst / "requirements.txt").read_text() == "scikit-learn==1.5.0"
    assert yaml.safe_load((dst / "python_env.yaml").read_text())["python"] == "3.10.4"


def test_save_model_updates_and_returns_the_given_model(tmp_path):
    given = pyfunc.Model(artifact_path="model", run_id="r1", custom_key={"a": 1})
    _, name, returned = save_doubler(tmp_path, model=given)
    assert returned is given
    assert given.flavors["python_function"]["loader_module"] == name
    on_disk = yaml.safe_load((tmp_path / "model" / "MLmodel").read_text())
    assert on_disk["run_id"] == "r1" and on_disk["artifact_path"] == "model" and on_disk["custom_key"] == {"a": 1}


def test_save_model_into_non_empty_directory_changes_nothing(tmp_path):
    dst = tmp_path / "model"
    dst.mkdir()
    (dst / "keep.txt").write_text("precious")
    (tmp_path / "factor.txt").write_text("2")
    with pytest.raises(pyfunc.AlreadyExistsError, match="not empty"):
        pyfunc.save_model(str(dst), "m", data_path=str(tmp_path / "factor.txt"))
    assert os.listdir(dst) == ["keep.txt"] and (dst / "keep.txt").read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["factor.txt", "model"]


def test_save_model_with_missing_data_path_creates_nothing(tmp_path):
    with pytest.raises(pyfunc.NotFoundError, match="nope.pkl"):
        pyfunc.save_model(str(tmp_path / "model"), "m", data_path=str(tmp_path / "nope.pkl"))
    assert os.listdir(tmp_path) == []


# --- bad MLmodel files --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("flavors: [a\n  b: c: d\n", 2, "not valid YAML"),
        ("- a\n- b\n", 1, "expected a mapping of MLmodel fields"),
        ("run_id: x\nflavors:\n  python_function:\n    data: d\n", 4, "missing 'loader_module'"),
        ("flavors:\n  python_function:\n    loader_module: m\n    code: 5\n", 4, "code: expected a path"),
        ("flavors:\n  python_function:\n    loader_module: [m]\n", 3, "loader_module: expected a module name"),
        ("flavors:\n  python_function:\n    loader_module: m\n    data: ../../etc/passwd\n", 4, "leaves the model directory"),
        ("flavors:\n  python_function:\n    loader_module: m\n    env:\n      conda: ../c.yaml\n", 5, "leaves the model"),
        ("flavors:\n  python_function:\n    loader_module: m\n    data: /abs/x\n", 4, "is absolute"),
        ("flavors:\n- python_function\n", 2, "flavors: expected a mapping"),
    ],
)
def test_invalid_mlmodel_names_file_and_line(tmp_path, text, line, fragment):
    (tmp_path / "MLmodel").write_text(text)
    mlmodel = str(tmp_path / "MLmodel")
    for call in (lambda: pyfunc.load_pyfunc(str(tmp_path)), lambda: pyfunc.Model.load(tmp_path)):
        with pytest.raises(pyfunc.InvalidArgumentError) as info:
            call()
        message = str(info.value)
        assert message.startswith("{}:{}:".format(mlmodel, line)), message
        assert fragment in message


def test_model_without_python_function_flavor(tmp_path):
    (tmp_path / "MLmodel").write_text("flavors:\n  sklearn:\n    pickled_model: model.pkl\n")
    with pytest.raises(pyfunc.InvalidArgumentError, match='python_function.*flavors: sklearn'):
        pyfunc.load_pyfunc(str(tmp_path))


def test_missing_model_directory(tmp_path):
    with pytest.raises(pyfunc.NotFoundError):
        pyfunc.load_pyfunc(str(tmp_path / "absent"))


# --- loading -------------------------------------------------------------------------------


def write_model(tmp_path, loader_body, **flavor):
    name, _ = write_loader(tmp_path / "model" / "code", loader_body)
    conf = dict(loader_module=name, code="code", python_version=platform.python_version(), **flavor)
    signature = conf.pop("signature", None)
    model = pyfunc.Model().add_flavor("python_function", **conf)
    if signature:
        model.signature = signature
    model.save(tmp_path / "model" / "MLmodel")
    return tmp_path / "model", name


PARAMS_SIGNATURE = {
    "inputs": None,
    "outputs": None,
    "params": json.dumps([{"name": "k", "default": 1, "shape": None, "type": "long"},
                          {"name": "mode", "default": "a", "shape": None, "type": "string"}]),
}


def test_params_are_passed_to_a_predict_with_a_params_parameter(tmp_path):
    path, _ = write_model(tmp_path, """\
        class M:
            def predict(self, data, params=None):
                return params
        def _load_pyfunc(path):
            return M()
        """, signature=PARAMS_SIGNATURE)
    model = pyfunc.load_pyfunc(str(path))
    assert model.predict([1], params={"k": 5}) == {"k": 5, "mode": "a"}
    with pytest.warns(UserWarning, match="zzz"):
        assert model.predict([1], params={"zzz": 1}) == {"k": 1, "mode": "a"}


@pytest.mark.parametrize("predict_def", ["def predict(self, data):", "def predict(self, data, **params):"])
def test_params_are_dropped_for_a_predict_without_params(tmp_path, predict_def):
    path, _ = write_model(tmp_path, """\
        class M:
            {}
                return ("called", data)
        def _load_pyfunc(path):
            return M()
        """.format(predict_def), signature=PARAMS_SIGNATURE)
    model = pyfunc.load_pyfunc(str(path))
    with pytest.warns(UserWarning, match="does not accept params"):
        assert model.predict(3, params={"k": 2}) == ("called", 3)


def test_params_without_a_params_schema_are_ignored(tmp_path):
    path, _ = write_model(tmp_path, """\
        class M:
            def predict(self, data, params=None):
                return params
        def _load_pyfunc(path):
            return M()
        """)
    model = pyfunc.load_pyfunc(str(path))
    assert model.predict(1) is None
    with pytest.warns(UserWarning, match="no params schema"):
        assert model.predict(1, params={"k": 1}) == {}


def test_legacy_public_load_pyfunc_loader_and_data_defaulting_to_root(tmp_path):
    path, _ = write_model(tmp_path, """\
        class M:
            def __init__(self, path):
                self.path = path
            def predict(self, data):
                return self.path
        def load_pyfunc(path):
            return M(path)
        """)
    assert pyfunc.load_pyfunc(str(path)).predict(None) == str(path)


def test_model_config_is_passed_only_when_saved(tmp_path, monkeypatch):
    body = """\
        class M:
            def __init__(self, config):
                self.config = config
            def predict(self, data):
                return self.config
        def _load_pyfunc(path, model_config=None):
            return M(model_config)
        """
    path, _ = write_model(tmp_path / "a", body, config={"temperature": 0.1, "top_k": 3})
    assert pyfunc.load_pyfunc(str(path)).predict(None) == {"temperature": 0.1, "top_k": 3}
    monkeypatch.setenv("MLFLOW_PYFUNC_INFERENCE_CONFIG", '{"top_k": 5}')
    model = pyfunc.load_pyfunc(str(path), model_config={"temperature": 0.9})
    assert model.predict(None) == {"temperature": 0.9, "top_k": 5}
    config_file = tmp_path / "config.yaml"
    config_file.write_text("temperature: 0.5\n")
    assert pyfunc.load_pyfunc(str(path), model_config=str(config_file)).predict(None)["temperature"] == 0.5
    path_b, _ = write_model(tmp_path / "b", body)
    with pytest.warns(UserWarning, match="no config"):
        assert pyfunc.load_pyfunc(str(path_b), model_config={"x": 1}).predict(None) is None


def test_merge_model_config_rules():
    saved = {"a": 1, "b": 2}
    assert _loading.merge_model_config(saved, None, env={}) is saved
    with pytest.warns(UserWarning, match="c"):
        assert _loading.merge_model_config(saved, {"b": 3, "c": 4}, env={}) == {"a": 1, "b": 3}
    assert _loading.merge_model_config(saved, {"a": 9}, env={"MLFLOW_PYFUNC_INFERENCE_CONFIG": '{"a": 5, "b": 6}'}) == {
        "a": 9, "b": 6}
    assert saved == {"a": 1, "b": 2}
    with pytest.warns(UserWarning):
        assert _loading.merge_model_config(None, {"a": 1}, env={}) is None


def test_loader_import_failure_names_model_and_module(tmp_path):
    (tmp_path / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: no_such_loader_xyz\n    python_version: {}\n".format(
            platform.python_version()))
    with pytest.raises(pyfunc.ModelLoadError) as info:
        pyfunc.load_pyfunc(str(tmp_path))
    assert str(tmp_path) in str(info.value) and "no_such_loader_xyz" in str(info.value)
    assert isinstance(info.value, pyfunc.PyfuncError)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_loader_failure_names_model_module_and_cause(tmp_path):
    path, name = write_model(tmp_path, """\
        def _load_pyfunc(path):
            raise RuntimeError("weights are corrupt")
        """)
    with pytest.raises(pyfunc.ModelLoadError, match="weights are corrupt") as info:
        pyfunc.load_pyfunc(str(path))
    assert str(path) in str(info.value) and name in str(info.value)


def test_missing_predict_method(tmp_path):
    path, _ = write_model(tmp_path, """\
        def _load_pyfunc(path):
            return object()
        """, predict_fn="predict_proba")
    with pytest.raises(pyfunc.ModelLoadError, match="^Model implementation is missing required predict_proba method.$"):
        pyfunc.load_pyfunc(str(path))


def test_pyfunc_model_accessors(tmp_path):
    path, name = write_model(tmp_path, """\
        class M:
            def predict(self, data):
                return data
            def get_raw_model(self):
                return "raw"
        def _load_pyfunc(path, model_config=None):
            return M()
        """, config={"a": 1})
    model = pyfunc.load_pyfunc(str(path))
    assert model.metadata["flavors"]["python_function"]["loader_module"] == name
    assert model.model_config == {"a": 1}
    assert model.get_raw_model() == "raw"
    with pytest.raises(pyfunc.ModelLoadError, match="not a PythonModel"):
        model.unwrap_python_model()
    assert name in repr(model)


# --- add_to_model and Model ---------------------------------------------------------------


def test_add_to_model_mutates_and_returns_the_model():
    model = pyfunc.Model()
    out = pyfunc.add_to_model(model, "my.loader", data="data/model.pkl", env="mlflow_env.yml")
    assert out is model
    assert model.flavors["python_function"] == {
        "loader_module": "my.loader",
        "data": "data/model.pkl",
        "env": "mlflow_env.yml",
        "python_version": platform.python_version(),
    }
    pyfunc.add_to_model(model, "other", code="code")
    assert "data" not in model.flavors["python_function"] and model.flavors["python_function"]["code"] == "code"
    with pytest.raises(pyfunc.InvalidArgumentError, match="leaves the model directory"):
        pyfunc.add_to_model(pyfunc.Model(), "m", data="../x")


def test_model_fields_unknown_keys_and_yaml(tmp_path):
    model = pyfunc.Model(artifact_path="model", run_id="abc", future_field=[1, 2])
    model.add_flavor("sklearn", pickled_model="model.pkl").add_flavor("python_function", loader_module="mlflow.sklearn")
    model._private = "not written"
    d = model.to_dict()
    assert d["artifact_path"] == "model" and d["run_id"] == "abc" and d["future_field"] == [1, 2]
    assert "_private" not in d and len(d["model_uuid"]) == 32
    assert model.to_yaml() == yaml.safe_dump(d, default_flow_style=False)
    model.save(tmp_path)
    again = pyfunc.Model.load(tmp_path / "MLmodel")
    assert again.to_dict() == d and again.future_field == [1, 2]
    assert os.listdir(tmp_path) == ["MLmodel"]
    assert "run_id" not in pyfunc.Model().to_dict()


def test_model_accepts_a_datetime():
    import datetime

    model = pyfunc.Model(utc_time_created=datetime.datetime(2018, 6, 5, 12, 0, 0, 123456))
    assert "utc_time_created: '2018-06-05 12:00:00.123456'" in model.to_yaml()


# --- get_module_loader_src ----------------------------------------------------------------


def test_module_loader_source_runs_in_a_clean_interpreter(tmp_path):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    estimator = LogisticRegression(max_iter=300).fit(iris.data, iris.target)
    with open(tmp_path / "estimator.pkl", "wb") as f:
        pickle.dump(estimator, f)
    name, loader = write_loader(tmp_path / "src", """\
        import pickle
        def _load_pyfunc(path):
            with open(path, "rb") as f:
                return pickle.load(f)
        """)
    pyfunc.save_model(str(tmp_path / "model"), name, data_path=str(tmp_path / "estimator.pkl"), code_path=[str(loader)])
    src = pyfunc.get_module_loader_src(str(tmp_path / "model"), str(tmp_path / "deployed"))
    assert "import pyfunc" not in src and "yaml" not in src and "mlflow" not in src
    os.rename(tmp_path / "model", tmp_path / "deployed")
    (tmp_path / "score.py").write_text(src)
    out = run_python(
        """
        import json, runpy, sys
        load_pyfunc = runpy.run_path(sys.argv[1])["load_pyfunc"]
        print(json.dumps(load_pyfunc().predict(json.loads(sys.argv[2])).tolist()))
        """,
        tmp_path / "score.py", json.dumps(iris.data[:20].tolist()),
        blocked={"pyfunc", "mlflow", "yaml"}, isolated=True,
    )
    assert json.loads(out) == estimator.predict(iris.data[:20]).tolist()


# --- import hygiene -------------------------------------------------------------------------


@pytest.mark.parametrize("file_name", ["_loading.py", "_worker.py", "_columns.py"])
def test_worker_files_load_by_path_with_only_the_standard_library(file_name):
    """What a worker runs in a model's environment, loaded as it loads them (by path,
    pyfunc not installed), imports only the standard library (and its siblings)."""
    out = run_python(
        """
        import importlib.util, json, sys
        before = set(sys.modules)
        spec = importlib.util.spec_from_file_location("standalone", sys.argv[1])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(json.dumps(sorted(set(sys.modules) - before)))
        """,
        PACKAGE_DIR / file_name, blocked={"pyfunc", "mlflow", "yaml", "numpy", "pandas"}, isolated=True,
    )
    new = json.loads(out)
    stdlib = set(sys.stdlib_module_names)
    assert all(m.split(".")[0] in stdlib or m.startswith("_pyfunc_") for m in new), new


@pytest.mark.parametrize("file_name", ["tracking.py", "spark.py", "_flavor.py"])
def test_modules_of_the_package_do_not_import_the_package_back(file_name):
    """``pyfunc/__init__.py`` only re-exports: its modules import what they need from
    each other, never ``import pyfunc``."""
    import ast

    tree = ast.parse((PACKAGE_DIR / file_name).read_text())
    imports = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    assert "pyfunc" not in imports


def test_import_pyfunc_does_not_import_mlflow_or_yaml():
    out = run_python("""
        import sys, pyfunc
        print(sorted(m for m in ("mlflow", "yaml", "sklearn") if m in sys.modules))
        """)
    assert out.strip() == "[]"


def test_iris_example_runs_without_mlflow(tmp_path):
    example = PACKAGE_DIR.parents[1] / "examples" / "iris.py"
    out = run_python(
        """
        import runpy, sys
        sys.argv = sys.argv[1:]
        runpy.run_path(sys.argv[0], run_name="__main__")
        """,
        example, tmp_path, blocked={"mlflow", "yaml"},
    )
    assert "predictions: ['setosa', 'setosa', 'setosa', 'versicolor'" in out
    assert "MLflow imported: False | PyYAML imported: False" in out
    assert (tmp_path / "iris" / "data" / "model.pkl").is_file()
