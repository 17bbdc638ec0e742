"""`pyfunc predict` end to end: the real binary, real worker processes, files and pipes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pyfunc

PYFUNC = os.environ.get("PYFUNC_BINARY") or str(Path(sys.executable).parent / "pyfunc")
BEHAVE = Path(__file__).resolve().parents[1] / "data" / "models" / "behave" / "behave_model.py"
ENV = dict(os.environ, PYFUNC_PYTHON=sys.executable)


def run(*args, stdin=None):
    return subprocess.run([PYFUNC, *map(str, args)], input=stdin, capture_output=True, text=True, env=ENV,
                          timeout=120)


def save_behave_model(path, mode):
    """The behave test model, running `mode` unless a request's params say otherwise."""
    model = pyfunc.Model()
    model.signature = {"inputs": None, "outputs": None,
                       "params": '[{"name": "mode", "type": "string", "default": "%s", "shape": null}]' % mode}
    pyfunc.save_model(str(path), loader_module="behave_model", code_path=[str(BEHAVE)], model=model)
    return str(path)


@pytest.fixture(scope="module")
def linear_model(tmp_path_factory):
    """An sklearn model saved by pyfunc the seed's way (a loader module and a pickle)."""
    import pickle

    from sklearn.linear_model import LinearRegression

    d = tmp_path_factory.mktemp("linear")
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.rand(50, 3), columns=["a", "b", "c"])
    est = LinearRegression().fit(X, X @ np.array([1.0, 2.0, 3.0]) + 0.5)
    with open(d / "model.pkl", "wb") as f:
        pickle.dump(est, f)
    (d / "linear_loader.py").write_text(
        "import pickle\n"
        "def _load_pyfunc(path):\n"
        "    with open(path, 'rb') as f:\n"
        "        return pickle.load(f)\n")
    path = d / "model"
    pyfunc.save_model(str(path), loader_module="linear_loader", data_path=str(d / "model.pkl"),
                      code_path=[str(d / "linear_loader.py")], batching="rows")
    return str(path)


@pytest.fixture(scope="module")
def frame():
    rng = np.random.RandomState(1)
    return pd.DataFrame(rng.rand(1000, 3), columns=["a", "b", "c"])


def test_csv_file_to_json_file_in_order_with_parallel_workers(linear_model, frame, tmp_path):
    frame.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.json"
    proc = run("predict", "-m", linear_model, "-i", tmp_path / "in.csv", "-o", out, "--env-manager", "local",
               "-w", 2, "--batch-rows", 97)
    assert proc.returncode == 0, proc.stderr
    want = pyfunc.load_pyfunc(linear_model).predict(frame)
    got = json.loads(out.read_text())["predictions"]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal


def test_json_request_on_stdin_to_stdout(linear_model, frame):
    body = json.dumps({"dataframe_split": frame.head(5).to_dict(orient="split")})
    proc = run("predict", "-m", linear_model, "--env-manager", "local", stdin=body)
    assert proc.returncode == 0, proc.stderr
    want = pyfunc.load_pyfunc(linear_model).predict(frame.head(5))
    np.testing.assert_allclose(json.loads(proc.stdout)["predictions"], want, rtol=1e-12)


def test_csv_output_format(linear_model, frame, tmp_path):
    frame.head(4).to_csv(tmp_path / "in.csv", index=False)
    proc = run("predict", "-m", linear_model, "-i", tmp_path / "in.csv", "--env-manager", "local",
               "--output-format", "csv")
    assert proc.returncode == 0, proc.stderr
    got = pd.read_csv(pd.io.common.StringIO(proc.stdout))
    assert list(got.columns) == ["prediction"]
    np.testing.assert_allclose(got["prediction"], pyfunc.load_pyfunc(linear_model).predict(frame.head(4)))


def test_a_failing_batch_fails_the_run_and_leaves_the_old_output(tmp_path):
    path = save_behave_model(tmp_path / "raiser", mode="raise")
    (tmp_path / "in.csv").write_text("x\n1\n2\n3\n")
    out = tmp_path / "out.json"
    out.write_text("previous results")
    proc = run("predict", "-m", path, "-i", tmp_path / "in.csv", "-o", out, "--env-manager", "local")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "rows 0-2: ValueError: the model refuses: 3 rows" in proc.stderr
    assert out.read_text() == "previous results"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.json", "raiser"]


def test_malformed_csv_names_line_and_column(linear_model, tmp_path):
    (tmp_path / "bad.csv").write_text('a,b,c\n1,2,3\n4,"5,6\n')
    proc = run("predict", "-m", linear_model, "-i", tmp_path / "bad.csv", "-o", tmp_path / "o.json",
               "--env-manager", "local")
    assert proc.returncode == 1
    assert "bad.csv:3:" in proc.stderr and "unterminated" in proc.stderr, proc.stderr
    assert not (tmp_path / "o.json").exists()


def test_malformed_json_request(linear_model):
    proc = run("predict", "-m", linear_model, "--env-manager", "local", stdin='{"dataframe_split": [1, 2')
    assert proc.returncode == 1
    assert proc.stderr.startswith("pyfunc: error: <stdin>: ") and "JSON" in proc.stderr, proc.stderr


def test_usage_and_user_errors(linear_model, tmp_path):
    assert run("predict", "-m", linear_model, "--no-such-flag").returncode == 2
    assert run("predict").returncode == 2  # -m is required
    missing = run("predict", "-m", linear_model, "-i", tmp_path / "nope.csv", "--env-manager", "local")
    assert missing.returncode == 1 and "nope.csv" in missing.stderr
    bad_env = run("predict", "-m", linear_model, "--env-manager", "pip", stdin="{}")
    assert bad_env.returncode == 1 and "unknown env manager 'pip'" in bad_env.stderr
    no_model = run("predict", "-m", tmp_path / "no-model", "--env-manager", "local", stdin="{}")
    assert no_model.returncode == 1 and "no-model" in no_model.stderr


def test_prepare_env_local(linear_model):
    proc = run("prepare-env", "-m", linear_model, "--env-manager", "local")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ready local interpreter ")


def test_native_thread_pools_are_sized_per_worker(tmp_path):
    path = save_behave_model(tmp_path / "threads", mode="threads")
    body = json.dumps({"dataframe_split": {"columns": ["x"], "data": [[1], [2]]}})

    def seen(*extra, env=None):
        proc = subprocess.run([PYFUNC, "predict", "-m", path, "-t", "json", "--env-manager", "local", *extra],
                              input=body, capture_output=True, text=True, env=env or ENV, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)["predictions"][0]

    # Default: one core is left to parsing, the rest divided among the workers (at least 1).
    default = str(max(1, (os.cpu_count() - 1) // 2))
    assert seen("-w", "2") == {"OMP_NUM_THREADS": default, "OPENBLAS_NUM_THREADS": default,
                               "MKL_NUM_THREADS": default}
    assert seen("--worker-threads", "3") == {"OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3",
                                             "MKL_NUM_THREADS": "3"}
    # A setting of the user's own is kept.
    assert seen("--worker-threads", "3", env=dict(ENV, OMP_NUM_THREADS="5"))["OMP_NUM_THREADS"] == "5"
    proc = run("predict", "-m", path, "--worker-threads", "-1", "-i", tmp_path / "none.json")
    assert proc.returncode != 0 and "--worker-threads" in proc.stderr, proc.stderr


def test_an_error_in_a_later_batch_fails_the_run_with_its_line(linear_model, tmp_path):
    rows = ["%d,%d,%d" % (i, i + 1, i + 2) for i in range(50)]
    rows[44] = "1,2,three"
    (tmp_path / "late.csv").write_text("a,b,c\n" + "\n".join(rows) + "\n")
    out = tmp_path / "o.json"
    proc = run("predict", "-m", linear_model, "-i", tmp_path / "late.csv", "-o", out, "--batch-rows", "10",
               "--env-manager", "local")
    assert proc.returncode == 1
    assert "late.csv:46:3: value \"three\" does not fit column 'c'" in proc.stderr, proc.stderr
    assert not out.exists()


def test_json_inputs_reach_a_model_without_column_signature_as_arrays(tmp_path):
    path = save_behave_model(tmp_path / "kind", mode="kind")
    for body, expected in [
        ({"inputs": [[1, 2], [3, 4]]}, ["ndarray (2, 2) int64"] * 2),
        ({"instances": [{"a": 1.5}, {"a": 2.5}]}, ["dict a:float64"] * 2),
        ({"dataframe_split": {"columns": ["a"], "data": [[1]]}}, ["DataFrame a:int64"]),
    ]:
        proc = run("predict", "-m", path, "-t", "json", "--env-manager", "local", stdin=json.dumps(body))
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == {"predictions": expected}


def test_unified_llm_input_and_object_outputs(tmp_path):
    chat = save_behave_model(tmp_path / "chat", mode="chat")
    proc = run("predict", "-m", chat, "-t", "json", "--env-manager", "local",
               stdin=json.dumps({"messages": [{"role": "user", "content": "hi"}]}))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {  # unwrapped, as `mlflow models predict` writes it
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "echo: hi"}}],
        "usage": {"prompt_tokens": 2}}

    obj = save_behave_model(tmp_path / "object", mode="object")
    (tmp_path / "in.csv").write_text("a,b\n1,2.5\n3,4.5\n5,6.5\n")
    proc = run("predict", "-m", obj, "-i", tmp_path / "in.csv", "--env-manager", "local")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"predictions": {"rows": 3, "columns": ["a", "b"],
                                                       "values": [[1.0, 2.5], [3.0, 4.5], [5.0, 6.5]]}}
    out = tmp_path / "out.json"
    proc = run("predict", "-m", obj, "-i", tmp_path / "in.csv", "-o", out, "--batch-rows", "2",
               "--batching", "rows", "--env-manager", "local")
    assert proc.returncode == 1
    assert "single object" in proc.stderr and "--batch-rows" in proc.stderr, proc.stderr
    assert not out.exists()


def test_a_model_whose_rows_depend_on_each_other_gets_the_whole_input_in_one_call(tmp_path):
    """pyfunc predict split the input into --batch-rows batches for every model, so a model
    that looks across rows (x - x.mean()) answered differently from mlflow models predict."""
    centered = save_behave_model(tmp_path / "centered", mode="center")
    xs = np.arange(10.0) ** 2
    pd.DataFrame({"x": xs}).to_csv(tmp_path / "in.csv", index=False)
    proc = run("predict", "-m", centered, "-i", tmp_path / "in.csv", "--batch-rows", "3", "--env-manager", "local")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(json.loads(proc.stdout)["predictions"], xs - xs.mean())
    assert "the whole input in one predict call: rows of a behave_model model may depend on each other" in proc.stderr
    # Opted in, the batches are scored apart: each is centered on its own mean.
    proc = run("predict", "-m", centered, "-i", tmp_path / "in.csv", "--batch-rows", "5", "--batching", "rows",
               "--env-manager", "local")
    assert proc.returncode == 0, proc.stderr
    want = np.concatenate([xs[:5] - xs[:5].mean(), xs[5:] - xs[5:].mean()])
    np.testing.assert_allclose(json.loads(proc.stdout)["predictions"], want)


def test_local_is_the_python_of_the_venv_pyfunc_is_installed_in(linear_model, frame, tmp_path):
    """`.venv/bin/pyfunc predict --env-manager local` from a venv that is not activated
    started its workers with `python3` from PATH and failed with "No module named 'numpy'"."""
    import shutil

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    shutil.copy(PYFUNC, venv / "bin" / "pyfunc")
    (venv / "bin" / "python").write_text('#!/bin/sh\nexec {} "$@"\n'.format(sys.executable))
    (venv / "bin" / "python").chmod(0o755)
    frame.head(4).to_csv(tmp_path / "in.csv", index=False)
    env = {k: v for k, v in os.environ.items() if k not in ("PYFUNC_PYTHON", "VIRTUAL_ENV")}
    env["PATH"] = "/usr/bin:/bin"  # a python3 without numpy
    cmd = [str(venv / "bin" / "pyfunc"), "predict", "-m", linear_model, "-i", str(tmp_path / "in.csv"),
           "--env-manager", "local"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(json.loads(proc.stdout)["predictions"],
                               pyfunc.load_pyfunc(linear_model).predict(frame.head(4)), rtol=1e-12)
    # An interpreter without numpy is named, with the ways to choose another.
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(env, PYFUNC_PYTHON="/usr/bin/python3"),
                          timeout=120)
    assert proc.returncode == 1
    assert "the Python at /usr/bin/python3 cannot run the model's worker" in proc.stderr, proc.stderr
    assert "No module named 'numpy'" in proc.stderr and "PYFUNC_PYTHON" in proc.stderr
    assert proc.stderr.count("\n") == 1


# What each model output's missing values become in MLflow's JSON (predictions_to_json):
# json.dumps of what DataFrame.to_dict / tolist holds there.
OUTPUTS_WITH_MISSING_VALUES = """\
import numpy as np
import pandas as pd

OUTPUTS = {
    "strings": lambda: pd.DataFrame({"s": ["x", None]}),  # pandas >= 3: NaN, else None
    "object strings with NaN": lambda: pd.DataFrame({"s": pd.Series(["x", np.nan], dtype=object)}),
    "series of strings": lambda: pd.Series(["x", None]),
    "string extension dtype": lambda: pd.DataFrame({"s": pd.array(["x", None], dtype="string")}),
    "booleans": lambda: pd.DataFrame({"b": [True, None]}),
    "booleans with NaN": lambda: pd.DataFrame({"b": pd.Series([True, np.nan], dtype=object)}),
    "categorical": lambda: pd.DataFrame({"c": pd.Categorical(["u", None])}),
    "timestamps": lambda: pd.DataFrame({"t": pd.to_datetime(["2024-01-02 03:04:05", None])}),
    "numbers": lambda: pd.DataFrame({"i": [1, 2], "f": [0.5, np.nan]}),
    "list": lambda: ["x", None],
    "object array with NaN": lambda: np.array(["x", np.nan], dtype=object),
    "narrow types": lambda: pd.DataFrame({"i8": np.array([-3, 4], dtype=np.int8),
                                          "u64": np.array([2**64 - 1, 0], dtype=np.uint64),
                                          "f16": np.array([0.1, 2], dtype=np.float16),
                                          "f32": np.array([0.1, np.nan], dtype=np.float32),
                                          "b": [b"\\x00\\xff" * 40, b""]}),
    "float32 array": lambda: np.array([[0.1, 1e-7], [3.5, 1e20]], dtype=np.float32),
    "dict of arrays": lambda: {"label": np.array([1, 2], dtype=np.int32), "score": np.array([0.25, 0.5], np.float32)},
}


class Outputs:
    def predict(self, df, params=None):
        return OUTPUTS[df["kind"].iloc[0]]()


def _load_pyfunc(path):
    return Outputs()
"""


@pytest.fixture(scope="module")
def outputs_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("outputs")
    (d / "outputs_model.py").write_text(OUTPUTS_WITH_MISSING_VALUES)
    pyfunc.save_model(str(d / "model"), loader_module="outputs_model", code_path=[str(d / "outputs_model.py")])
    namespace = {}
    exec(OUTPUTS_WITH_MISSING_VALUES, namespace)
    return str(d / "model"), namespace["OUTPUTS"]


@pytest.mark.parametrize("kind", ["strings", "object strings with NaN", "series of strings", "string extension dtype",
                                  "booleans", "booleans with NaN", "categorical", "timestamps", "numbers", "list",
                                  "object array with NaN", "narrow types", "float32 array", "dict of arrays"])
def test_missing_values_in_outputs_are_written_as_mlflow_writes_them(outputs_model, kind):
    """A missing string in a DataFrame output was always written null; MLflow writes the
    value pandas holds, which for strings in pandas >= 3 (and object columns holding NaN)
    is NaN, and "NaT" for a missing timestamp of a DataFrame."""
    import io

    from mlflow.pyfunc.scoring_server import predictions_to_json

    path, outputs = outputs_model
    buf = io.StringIO()
    predictions_to_json(outputs[kind](), buf)
    body = json.dumps({"dataframe_split": {"columns": ["kind"], "data": [[kind], [kind]]}})
    proc = run("predict", "-m", path, "--env-manager", "local", stdin=body)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == buf.getvalue()


# --- The same batch scorer from Python (pyfunc.batch.score_file) -----------------------

def test_score_file_from_python_matches_the_cli_and_in_process(linear_model, frame, tmp_path):
    from pyfunc.batch import score_file

    frame.to_csv(tmp_path / "in.csv", index=False)
    summary = score_file(linear_model, tmp_path / "in.csv", tmp_path / "out.json", workers=2, batch_rows=97)
    assert summary == {"rows": 1000, "batches": 11, "batched": True, "batching_reason": summary["batching_reason"]}
    assert "rows" in summary["batching_reason"]
    proc = run("predict", "-m", linear_model, "-i", tmp_path / "in.csv", "--env-manager", "local", "-w", 2,
               "--batch-rows", 97)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.json").read_text() == proc.stdout
    want = pyfunc.load_pyfunc(linear_model).predict(frame)
    np.testing.assert_allclose(json.loads(proc.stdout)["predictions"], want, rtol=1e-12)


def test_score_file_csv_output_and_a_json_request(linear_model, frame, tmp_path):
    from pyfunc.batch import score_file

    (tmp_path / "req.json").write_text(json.dumps({"dataframe_records": frame.head(3).to_dict(orient="records")}))
    summary = score_file(linear_model, tmp_path / "req.json", tmp_path / "out.csv", output_format="csv")
    assert summary["rows"] == 3
    got = pd.read_csv(tmp_path / "out.csv")
    np.testing.assert_allclose(got["prediction"], pyfunc.load_pyfunc(linear_model).predict(frame.head(3)))


def test_score_file_errors_name_the_problem_and_leave_no_output(linear_model, tmp_path):
    from pyfunc.batch import score_file
    from pyfunc.exceptions import InvalidArgumentError, NotFoundError

    with pytest.raises(NotFoundError, match="nope.csv"):
        score_file(linear_model, tmp_path / "nope.csv", tmp_path / "out.json")
    (tmp_path / "bad.csv").write_text('a,b,c\n1,2,3\n4,"5,6\n')
    with pytest.raises(InvalidArgumentError, match="bad.csv:3:2: unterminated quoted field"):
        score_file(linear_model, tmp_path / "bad.csv", tmp_path / "out.json")
    with pytest.raises(InvalidArgumentError, match="batch_rows"):
        score_file(linear_model, tmp_path / "bad.csv", tmp_path / "out.json", batch_rows=0)
    with pytest.raises(InvalidArgumentError, match="sometimes"):
        score_file(linear_model, tmp_path / "bad.csv", tmp_path / "out.json", batching="sometimes")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_csv_numbers_are_read_as_the_environments_pandas_reads_them(tmp_path):
    """MLflow reads CSV with pandas.read_csv: before pandas 3.1 its parser leaves about half
    of all 17-digit values one bit off the nearest double; from 3.1 it rounds correctly.
    The predictions match what this environment's pandas reads, to the bit."""
    model = save_behave_model(tmp_path / "echo", "echo")
    rng = np.random.RandomState(5)
    values = np.concatenate([rng.rand(3000), rng.randn(1000) * 1e-5, rng.randn(1000) * 1e12])
    rows = values.reshape(-1, 5)
    text = "a,b,c,d,e\n" + "".join(",".join("%.17g" % v for v in row) + "\n" for row in rows)
    (tmp_path / "in.csv").write_text(text)
    want = pd.read_csv(tmp_path / "in.csv")
    exact = pd.DataFrame(rows, columns=list("abcde"))
    legacy = tuple(int(p) for p in pd.__version__.split(".")[:2]) < (3, 1)
    assert (want.to_numpy() != exact.to_numpy()).any() == legacy  # the difference this test is about
    for extra in ([], ["--batch-rows", "64"]):
        out = tmp_path / "out.json"
        proc = run("predict", "-m", model, "-i", tmp_path / "in.csv", "-o", out, "--env-manager", "local", *extra)
        assert proc.returncode == 0, proc.stderr
        got = pd.DataFrame(json.loads(out.read_text())["predictions"])
        assert list(got.columns) == list("abcde")
        np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())
