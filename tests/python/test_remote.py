"""Out-of-process models: load_pyfunc(path, env_manager=...) runs the model in worker
processes (the C++ runtime) and must predict exactly what in-process loading predicts."""

import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pyfunc
from pyfunc.exceptions import PredictionError, PyfuncTimeoutError, WorkerUnavailableError

from conftest import MLFLOW_MODEL_NAMES, assert_same_prediction

BEHAVE = Path(__file__).resolve().parents[1] / "data" / "models" / "behave" / "behave_model.py"
PARAMS_SIGNATURE = {
    "inputs": None,
    "outputs": None,
    "params": '[{"name": "mode", "type": "string", "default": "echo", "shape": null}]',
}
PY_VERSION = "{}.{}.{}".format(*sys.version_info[:3])


@pytest.fixture(scope="module")
def behave_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("behave") / "model"
    model = pyfunc.Model()
    model.signature = PARAMS_SIGNATURE
    pyfunc.save_model(str(path), loader_module="behave_model", code_path=[str(BEHAVE)], model=model)
    return str(path)


@pytest.fixture(scope="module")
def remote(behave_model):
    model = pyfunc.load_pyfunc(behave_model, env_manager="local", predict_timeout=3)
    yield model
    model.close()


@pytest.mark.parametrize("name", MLFLOW_MODEL_NAMES)
def test_out_of_process_predicts_what_mlflow_predicts(mlflow_models, mlflow_expected, name):
    data, params, want = mlflow_expected[name]
    model = pyfunc.load_pyfunc(str(mlflow_models / name), env_manager="local")
    got = model.predict(data, params=params) if params else model.predict(data)
    assert_same_prediction(want, got)


def test_every_column_type_round_trips(remote):
    df = pd.DataFrame({
        "i": np.array([1, -2, 2**62], dtype=np.int64),
        "f": [0.5, np.nan, -1e300],
        "s": ["x", None, "z\u00e9\u2603\x00nul"],
        "t": pd.to_datetime(["2020-01-01 00:00:00", None, "2021-06-30 12:00:00.000000001"], format="ISO8601"),
        "b": [True, False, True],
        "n": pd.array([1, None, 3], dtype="Int64"),
    })
    got = remote.predict(df, params={"mode": "echo"})
    want = df.copy()
    want["n"] = [1.0, np.nan, 3.0]  # a nullable int reaches the model as pandas reads it: float64 + NaN
    pd.testing.assert_frame_equal(got, want)


def test_narrow_types_keep_their_dtype_both_ways_as_in_mlflow(remote, behave_model):
    """An int32 column came back int64 and a float32 array float64 through the workers;
    MLflow in process returns them as the model made them. Inputs keep theirs too."""
    import mlflow.pyfunc

    reference = mlflow.pyfunc.load_model(behave_model)
    df = pd.DataFrame({"i32": np.array([1, -2], dtype=np.int32), "u8": np.array([0, 255], dtype=np.uint8),
                       "f32": np.array([0.1, np.nan], dtype=np.float32), "f16": np.array([1.5, 2], np.float16),
                       "u64": np.array([2**64 - 1, 0], dtype=np.uint64), "bin": [b"\x00\xff", None]})
    for mode in ("narrow", "f32", "dtypes"):
        want = reference.predict(df, params={"mode": mode})
        got = remote.predict(df, params={"mode": mode})
        if isinstance(want, pd.DataFrame):
            pd.testing.assert_frame_equal(got, want)
        else:
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
    # A multi-output model's dict of arrays comes back as one, each array in its dtype;
    # a DataFrame whose cells hold lists comes back as a DataFrame.
    want = reference.predict(df, params={"mode": "dict_arrays"})
    got = remote.predict(df, params={"mode": "dict_arrays"})
    assert list(got) == list(want)
    for key in want:
        assert got[key].dtype == want[key].dtype or want[key].dtype.kind == "U", key
        np.testing.assert_array_equal(got[key], want[key])
    want = reference.predict(df, params={"mode": "list_cells"})
    got = remote.predict(df, params={"mode": "list_cells"})
    assert isinstance(got, pd.DataFrame) and got["tokens"].tolist() == want["tokens"].tolist()
    assert got["id"].tolist() == want["id"].tolist()
    # A nullable integer reaches the model as pandas reads one: float64 with NaN.
    echoed = remote.predict(df.assign(n32=pd.array([1, None], dtype="Int32")), params={"mode": "echo"})
    assert dict(echoed.dtypes.astype(str)) == {"i32": "int32", "u8": "uint8", "f32": "float32", "f16": "float16",
                                               "u64": "uint64", "bin": "object", "n32": "float64"}
    assert echoed["bin"].tolist() == [b"\x00\xff", None]
    assert echoed["u64"].tolist() == [2**64 - 1, 0]


def test_output_shapes(remote):
    df = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5]})
    np.testing.assert_array_equal(remote.predict(df, params={"mode": "sum"}), [1.5, 3.5, 5.5])
    series = remote.predict(df, params={"mode": "series"})
    assert isinstance(series, pd.Series) and series.name == "first"
    assert remote.predict(df, params={"mode": "2d"}).shape == (3, 2)
    assert list(remote.predict(df, params={"mode": "list"})) == ["0", "1", "2"]


def test_the_model_gets_the_kind_of_object_it_was_given(remote, behave_model):
    local = pyfunc.load_pyfunc(behave_model)
    for data in (pd.DataFrame({"a": [1, 2]}), np.array([[1.5, 2.0], [3.0, 4.0]]), np.array([1, 2, 3]),
                 {"a": np.array([1.0, 2.0]), "b": np.array([3, 4])}):
        got = remote.predict(data, params={"mode": "kind"})
        assert list(got) == list(local.predict(data, params={"mode": "kind"})), data
    # A list of rows arrives as the array numpy makes of it (as from MLflow's server).
    assert list(remote.predict([[1, 2], [3, 4]], params={"mode": "kind"})) == ["ndarray (2, 2) int64"] * 2
    # Records arrive as the caller gave them, as in process (and from MLflow in process).
    records = [{"a": 1}, {"a": 2}]
    assert list(remote.predict(records, params={"mode": "kind"})) == list(local.predict(records, params={"mode": "kind"}))
    assert list(remote.predict(records, params={"mode": "kind"})) == ["list [{'a': 1}, {'a': 2}]"] * 2


def test_an_object_output_comes_back_as_json_types(remote):
    got = remote.predict(pd.DataFrame({"a": [1, 2]}), params={"mode": "object"})
    assert got == {"rows": 2, "columns": ["a"], "values": [[1], [2]]}


def test_model_errors_crashes_and_timeouts(remote):
    df = pd.DataFrame({"a": [1, 2]})
    with pytest.raises(PredictionError, match="ValueError: the model refuses: 2 rows"):
        remote.predict(df, params={"mode": "raise"})
    with pytest.raises(WorkerUnavailableError, match="killed by signal 9"):
        remote.predict(df, params={"mode": "crash"})
    with pytest.raises(PyfuncTimeoutError, match="timed out"):
        remote.predict(df, params={"mode": "hang"})
    # Each failure cost only its own call; the replaced worker serves the next one.
    np.testing.assert_array_equal(remote.predict(df, params={"mode": "sum"}), [1, 2])
    assert remote.worker_restarts == 2


def test_untyped_input_is_refused_with_the_column_name(remote):
    with pytest.raises(pyfunc.InvalidArgumentError, match="column 'obj'"):
        remote.predict(pd.DataFrame({"obj": [{"a": 1}, [2]]}))


def test_bad_env_manager_is_named(behave_model):
    with pytest.raises(pyfunc.InvalidArgumentError, match="unknown env manager 'pip'"):
        pyfunc.load_pyfunc(behave_model, env_manager="pip")


VERSION_MODEL = textwrap.dedent("""\
    import numpy as np
    import six

    class SixVersion:
        def predict(self, df):
            return np.array([six.__version__] * len(df), dtype=object)

    def _load_pyfunc(path):
        return SixVersion()
    """)


def test_virtualenv_runs_the_model_with_its_own_requirements(tmp_path):
    """The model pins six==1.16.0 while this interpreter has another six: in its own
    virtualenv the model sees 1.16.0, in-process it sees ours."""
    import six

    assert six.__version__ != "1.16.0"
    (tmp_path / "six_version_model.py").write_text(VERSION_MODEL)
    conda_env = {"name": "t", "dependencies": ["python=" + PY_VERSION, "pip", {"pip": ["six==1.16.0"]}]}
    path = str(tmp_path / "model")
    pyfunc.save_model(path, loader_module="six_version_model", code_path=[str(tmp_path / "six_version_model.py")],
                      conda_env=conda_env)
    df = pd.DataFrame({"x": [1, 2]})
    assert list(pyfunc.load_pyfunc(path).predict(df)) == [six.__version__] * 2
    isolated = pyfunc.load_pyfunc(path, env_manager="virtualenv")
    assert "virtualenv" in isolated.environment
    assert list(isolated.predict(df)) == ["1.16.0", "1.16.0"]
    # The environment is cached: a second load reuses it.
    again = pyfunc.load_pyfunc(path, env_manager="virtualenv")
    assert again.environment == isolated.environment


def test_two_processes_building_one_environment_build_it_once(tmp_path):
    """Both prepare-env runs succeed with the same environment; exactly one builds it."""
    import subprocess

    (tmp_path / "m.py").write_text("def _load_pyfunc(path):\n    return None\n")
    path = str(tmp_path / "model")
    pyfunc.save_model(path, loader_module="m", code_path=[str(tmp_path / "m.py")],
                      conda_env={"dependencies": ["python=" + PY_VERSION, "pip", {"pip": ["six==1.16.0"]}]})
    env = dict(os.environ, PYFUNC_PYTHON=sys.executable, PYFUNC_ENV_ROOT=str(tmp_path / "envs"))
    cmd = [str(Path(sys.executable).parent / "pyfunc"), "prepare-env", "-m", path, "--env-manager", "virtualenv"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    words = sorted(out.split()[0] for out, _ in outs)
    assert words == ["created", "ready"], outs
    assert outs[0][0].split()[2] == outs[1][0].split()[2]  # the same directory
    envs = sorted(p.name for p in (tmp_path / "envs").iterdir() if p.is_dir())
    assert len(envs) == 1


def test_the_same_model_in_another_directory_uses_the_same_environment(tmp_path):
    """An environment depends on the requirements' content, not on where the model is:
    a copy (as an image's /opt/ml/model) finds the environment built for the original, and
    a finished environment is used even where its lock cannot be taken (a read-only root)."""
    import shutil
    import subprocess

    (tmp_path / "m.py").write_text("def _load_pyfunc(path):\n    return None\n")
    path = tmp_path / "model"
    pyfunc.save_model(str(path), loader_module="m", code_path=[str(tmp_path / "m.py")],
                      conda_env={"dependencies": ["python=" + PY_VERSION, "pip", {"pip": ["six==1.16.0"]}]})
    assert (path / "requirements.txt").exists()
    copy = tmp_path / "elsewhere" / "model"
    shutil.copytree(path, copy)
    envs = tmp_path / "envs"
    env = dict(os.environ, PYFUNC_PYTHON=sys.executable, PYFUNC_ENV_ROOT=str(envs))
    exe = str(Path(sys.executable).parent / "pyfunc")

    def prepare(model):
        proc = subprocess.run([exe, "prepare-env", "-m", str(model), "--env-manager", "virtualenv"], env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    first = prepare(path)
    assert first[0] == "created"
    locks = list(envs.glob("*.lock"))
    assert locks
    for lock in locks:  # a lock that cannot be opened, even by root
        lock.unlink()
        lock.mkdir()
    second = prepare(copy)
    assert second[0] == "ready" and second[2] == first[2], (first, second)


@pytest.mark.parametrize("prediction,json_text", [
    (["a", 1], True), ([1, "a"], True), ([[1, 2]], True), ([{"a": 1}], True), ({"a": 1}, True), ("x", True),
    (["a", "b"], False), ([1, 2], False), (np.arange(3), False), (pd.DataFrame({"a": [1]}), False),
])
def test_outputs_without_a_table_form_travel_as_json(prediction, json_text):
    from pyfunc import _columns

    assert (_columns.prediction_columns(prediction)[0] == _columns.SHAPE_JSON) == json_text


def test_an_unknown_input_shape_is_refused(remote):
    with pytest.raises(pyfunc.InvalidArgumentError, match="input_shape 4 is not an input shape"):
        remote._native.predict_columns([], 0, None, 4)


def test_schema_and_params_errors_in_workers_are_the_in_process_errors(remote, behave_model):
    """Through worker processes, params that do not fit the params schema raised a generic
    PredictionError "InvalidParametersError: ..."; in process they raise
    InvalidParametersError (MLflow: "Invalid parameters found")."""
    from pyfunc.exceptions import InvalidParametersError

    local = pyfunc.load_pyfunc(behave_model)
    df = pd.DataFrame({"a": [1, 2]})
    with pytest.raises(InvalidParametersError) as want:
        local.predict(df, params={"mode": 5})
    with pytest.raises(InvalidParametersError) as got:
        remote.predict(df, params={"mode": 5})
    assert str(got.value) == str(want.value)
    assert str(got.value).startswith("Invalid parameters found: {('mode', ")


def test_a_missing_column_in_workers_is_the_in_process_schema_error(mlflow_models, mlflow_expected):
    from pyfunc.exceptions import SchemaEnforcementError

    data = mlflow_expected["sk_pickle"][0].iloc[:, 1:]  # the first signature column left out
    with pytest.raises(SchemaEnforcementError) as want:
        pyfunc.load_pyfunc(str(mlflow_models / "sk_pickle")).predict(data)
    remote = pyfunc.load_pyfunc(str(mlflow_models / "sk_pickle"), env_manager="local")
    with pytest.raises(SchemaEnforcementError) as got:
        remote.predict(data)
    assert str(got.value) == str(want.value) and "Model is missing inputs" in str(got.value)


def test_a_model_that_fails_to_load_in_workers_is_the_in_process_load_error(tmp_path):
    """A loader that raised in a worker reached load_pyfunc(env_manager=...) as a generic
    PredictionError "loading ...: ModelLoadError: ..."; in process it is ModelLoadError."""
    from pyfunc.exceptions import ModelLoadError

    (tmp_path / "broken_loader.py").write_text("def _load_pyfunc(path):\n    raise OSError('no weights here')\n")
    path = str(tmp_path / "model")
    pyfunc.save_model(path, loader_module="broken_loader", code_path=[str(tmp_path / "broken_loader.py")])
    with pytest.raises(ModelLoadError) as want:
        pyfunc.load_pyfunc(path)
    with pytest.raises(ModelLoadError) as got:
        pyfunc.load_pyfunc(path, env_manager="local")
    # The in-process message, after the environment the worker ran in.
    assert str(got.value).startswith("loading {} in local interpreter ".format(path))
    assert str(got.value).endswith(": ModelLoadError: " + str(want.value))
    assert "OSError: no weights here" in str(want.value)


@pytest.fixture(scope="module")
def mlflow_tensor_models(tmp_path_factory):
    """The behave model saved by MLflow without an input signature, with named tensors
    (x: float32 (-1, 2), y: int64 (-1,)) and with int32/float32 columns."""
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

    params = ParamSchema([ParamSpec("mode", "string", "echo")])
    signatures = {
        "untyped": ModelSignature(inputs=None, params=params),
        "named": ModelSignature(inputs=Schema([TensorSpec(np.dtype("float32"), (-1, 2), "x"),
                                               TensorSpec(np.dtype("int64"), (-1,), "y")]), params=params),
        "narrow": ModelSignature(inputs=Schema([ColSpec("integer", "i"), ColSpec("float", "f")]), params=params),
    }
    root = tmp_path_factory.mktemp("mlflow_tensor_models")
    for name, signature in signatures.items():
        mlflow.pyfunc.save_model(str(root / name), loader_module="behave_model", code_paths=[str(BEHAVE)],
                                 signature=signature, pip_requirements=["pandas"])
    return root


def _outcome(model, data, mode):
    try:
        return "ok", model.predict(data, params={"mode": mode})
    except Exception as e:  # noqa: B902 - the error is compared
        return "error", str(e)


def _assert_same_object(want, got):
    """Equal, and of the same Python and numpy types and shapes, all the way down."""
    assert type(got) is type(want) or (isinstance(want, np.ndarray) and isinstance(got, np.ndarray)), (want, got)
    if isinstance(want, dict):
        assert list(got) == list(want)
        for k in want:
            _assert_same_object(want[k], got[k])
    elif isinstance(want, np.ndarray):
        assert (got.dtype, got.shape) == (want.dtype, want.shape)
        if want.dtype == object:
            for a, b in zip(want, got):
                _assert_same_object(a, b)
        else:
            np.testing.assert_array_equal(got, want)
    elif isinstance(want, pd.DataFrame):
        assert list(got.columns) == list(want.columns)
        assert list(got.dtypes) == list(want.dtypes)
        for c in want.columns:
            _assert_same_object(want[c].to_numpy(), got[c].to_numpy())
    else:
        assert got == want


@pytest.mark.parametrize("model_name,data,mode", [
    # Named multi-input tensors: a dict of 2-D and 1-D arrays, as MLflow passes it.
    ("untyped", {"x": np.array([[1, 2], [3, 4], [1, 2]], dtype=np.float32), "y": np.array([1, 2, 1])}, "shapes"),
    ("named", {"x": np.array([[1, 2], [3, 4], [1, 2]], dtype=np.float32), "y": np.array([1, 2, 1])}, "shapes"),
    # The signature refuses what MLflow refuses: a float64 tensor, a missing input.
    ("named", {"x": np.array([[1.0, 2.0]]), "y": np.array([1])}, "shapes"),
    ("named", {"x": np.array([[1, 2]], dtype=np.float32)}, "shapes"),
    # N-d arrays in and out; a dict output holding a 2-D float32 array (onnx classifiers).
    ("untyped", np.ones((2, 3, 2), dtype=np.float32), "shapes"),
    ("untyped", np.arange(6, dtype=np.float64).reshape(2, 3), "cube"),
    ("untyped", pd.DataFrame({"a": [1, 2, 3]}), "dict_tensors"),
    # Cells holding arrays, both ways.
    ("untyped", pd.DataFrame({"v": [np.array([1.5, 2.0]), np.array([3.0, 4.5])], "k": [1, 2]}), "shapes"),
    ("untyped", pd.DataFrame({"a": [1, 2]}), "array_cells"),
    # A caller's own 64-bit columns are refused for int32/float32 inputs, as in process.
    ("narrow", pd.DataFrame({"i": np.array([1, 2], dtype=np.int64), "f": [0.5, 1.5]}), "echo"),
    ("narrow", pd.DataFrame({"i": np.array([1, 2], dtype=np.int32), "f": np.array([0.5, 1.5], np.float32)}), "echo"),
])
def test_tensors_and_exact_types_cross_workers_as_mlflow_passes_them(mlflow_tensor_models, model_name, data, mode):
    """Through worker processes a dict of 2-D arrays failed ("Per-column arrays must each be
    1-dimensional"), a dict output's 2-D float32 array came back as lists, and an int64
    column for an int32 input was cast where MLflow (and pyfunc in process) refuse it."""
    import mlflow.pyfunc

    path = str(mlflow_tensor_models / model_name)
    want = _outcome(mlflow.pyfunc.load_model(path), data, mode)
    remote = pyfunc.load_pyfunc(path, env_manager="local")
    try:
        got = _outcome(remote, data, mode)
    finally:
        remote.close()
    assert got[0] == want[0], (want, got)
    if want[0] == "error":
        # MLflow's message is the schema enforcement's; it names the data and schema alike.
        assert want[1].split("Error: ")[-1] in got[1], (want, got)
    else:
        _assert_same_object(want[1], got[1])


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_datetimes_keep_their_unit_both_ways(remote, behave_model, unit):
    """Frames carry nanoseconds; a datetime64[us] column (pandas 3's default for parsed
    text) came back from workers as datetime64[ns]. In process it stays as it was."""
    df = pd.DataFrame({"t": np.array(["2020-01-01T00:00:01", "NaT", "2261-12-31T23:59:59"],
                                     dtype="datetime64[{}]".format(unit))})
    local = pyfunc.load_pyfunc(behave_model)
    want = local.predict(df, params={"mode": "echo"})
    got = remote.predict(df, params={"mode": "echo"})
    assert got["t"].dtype == want["t"].dtype == df["t"].dtype
    pd.testing.assert_frame_equal(got, want)
    assert list(remote.predict(df, params={"mode": "dtypes"})) == list(local.predict(df, params={"mode": "dtypes"}))


def test_datetimes_nanoseconds_cannot_hold_are_refused_with_the_column_name(remote):
    df = pd.DataFrame({"when": np.array(["2300-01-01"], dtype="datetime64[s]")})
    with pytest.raises(pyfunc.InvalidArgumentError, match="column 'when' holds datetimes outside the range"):
        remote.predict(df)


KILLED_PARENT = textwrap.dedent("""\
    import sys, threading
    import pandas as pd
    import pyfunc

    model = pyfunc.load_pyfunc(sys.argv[1], env_manager="local", workers=2, predict_timeout=3600)
    model.predict(pd.DataFrame({"a": [1]}), params={"mode": "pid"})
    # One worker busy in a predict that never ends, the other idle.
    threading.Thread(target=model.predict, args=(pd.DataFrame({"a": [1]}),),
                     kwargs={"params": {"mode": "hang"}}, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()
    """)


def _children(pid):
    out = []
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/{}/stat".format(entry)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return out


def _gone(pid):
    try:
        with open("/proc/{}/stat".format(pid)) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # exited, not yet reaped
    except OSError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_their_parent_is_killed(behave_model, tmp_path):
    """A worker notices from its control socket that its parent died (SIGKILL: nothing
    of the parent ran to stop it), the busy one in the middle of a predict as well as
    the idle one."""
    import signal
    import subprocess
    import time

    script = tmp_path / "parent.py"
    script.write_text(KILLED_PARENT)
    parent = subprocess.Popen([sys.executable, str(script), behave_model], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # let the hanging predict reach its worker
        workers = _children(parent.pid)
        assert len(workers) == 2, workers
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    while not all(_gone(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [w for w in workers if not _gone(w)] == [], "workers outlived their parent"
