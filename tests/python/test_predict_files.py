"""`pyfunc predict` and `pyfunc.batch.score_file` on Parquet and Arrow IPC files, against
MLflow scoring the same file in process (`mlflow.pyfunc.load_model(...).predict(pandas.read_parquet(...))`)."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import pyfunc
from pyfunc import batch

PYFUNC = os.environ.get("PYFUNC_BINARY") or str(Path(sys.executable).parent / "pyfunc")
ENV = dict(os.environ, PYFUNC_PYTHON=sys.executable)


def run(*args, stdin=None, text=True):
    return subprocess.run([PYFUNC, *map(str, args)], input=stdin, capture_output=True, text=text, env=ENV,
                          timeout=180)


def frame(rows=1000, seed=1):
    """Features of the types a data lake holds: float32, int32, int64, strings, a
    categorical (dictionary-encoded in Parquet), and an id that is not a feature."""
    rng = np.random.RandomState(seed)
    return pd.DataFrame({
        "id": np.arange(rows, dtype=np.int64) * 7 + 3,
        "x32": rng.rand(rows).astype(np.float32),
        "n32": rng.randint(0, 50, rows).astype(np.int32),
        "x": rng.rand(rows),
        "city": pd.Categorical(rng.choice(["oslo", "lima", "pune"], rows)),
        "tag": rng.choice(["a", "b", "c", "d"], rows).astype(object),
    })


@pytest.fixture(scope="module")
def mlflow_model(tmp_path_factory):
    """An sklearn pipeline (scaling and one-hot encoding) saved by MLflow with the
    signature MLflow infers from the features."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X = frame(400, seed=0).drop(columns=["id"])
    X["city"] = X["city"].astype(object)
    y = (X["x"] + X["x32"] > 1.0).astype(int)
    pipe = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), ["x32", "n32", "x"]),
                           ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "tag"])]),
        LogisticRegression())
    pipe.fit(X, y)
    path = tmp_path_factory.mktemp("files") / "model"
    mlflow.sklearn.save_model(pipe, str(path), signature=infer_signature(X, pipe.predict(X)))
    return str(path)


@pytest.fixture(scope="module")
def mlflow_proba_model(tmp_path_factory):
    """A model whose predict returns a 2-D array (columns in the output)."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    X = frame(300, seed=2)[["x32", "x"]]
    est = LogisticRegression().fit(X, (X["x"] > 0.5).astype(int))
    path = tmp_path_factory.mktemp("proba") / "model"
    mlflow.sklearn.save_model(est, str(path), pyfunc_predict_fn="predict_proba")
    return str(path)


def mlflow_predict(model, df):
    """MLflow's prediction. A dictionary-encoded column, which pandas.read_parquet makes a
    categorical, fails MLflow's schema enforcement for a string column ("Can not safely
    convert category to <U0"); pyfunc gives the model its strings, so the reference is
    MLflow's prediction on the strings."""
    import mlflow.pyfunc

    df = df.copy()
    for c in df.columns:
        if isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].astype(object)
    return mlflow.pyfunc.load_model(model).predict(df)


def test_parquet_in_parquet_out_matches_mlflow_in_order_with_ids(mlflow_model, tmp_path):
    df = frame(1000)
    df.to_parquet(tmp_path / "in.parquet", row_group_size=300)  # 4 row groups
    out = tmp_path / "out.parquet"
    proc = run("predict", "-m", mlflow_model, "-i", tmp_path / "in.parquet", "-o", out, "--env-manager", "local",
               "-w", 2, "--batch-rows", 128, "--carry-columns", "id")
    assert proc.returncode == 0, proc.stderr
    got = pd.read_parquet(out)
    assert list(got.columns) == ["id", "prediction"]
    np.testing.assert_array_equal(got["id"], df["id"])  # input order, ids beside their rows
    want = mlflow_predict(mlflow_model, pd.read_parquet(tmp_path / "in.parquet").drop(columns=["id"]))
    np.testing.assert_array_equal(got["prediction"].to_numpy(), np.asarray(want))
    assert got["prediction"].dtype == np.asarray(want).dtype


def test_parquet_without_carried_ids_gives_the_model_every_column_as_mlflow(mlflow_model, tmp_path):
    # The signature names no 'id': MLflow's schema enforcement drops it, and so does pyfunc's.
    df = frame(200)
    df.to_parquet(tmp_path / "in.parquet")
    proc = run("predict", "-m", mlflow_model, "-i", tmp_path / "in.parquet", "-o", tmp_path / "out.json",
               "--env-manager", "local")
    assert proc.returncode == 0, proc.stderr
    want = mlflow_predict(mlflow_model, pd.read_parquet(tmp_path / "in.parquet"))
    assert json.loads((tmp_path / "out.json").read_text()) == {"predictions": np.asarray(want).tolist()}


def test_parquet_and_csv_inputs_give_the_same_predictions(mlflow_model, tmp_path):
    df = frame(500)
    df.to_parquet(tmp_path / "in.parquet")
    df.to_csv(tmp_path / "in.csv", index=False)
    for src in ("in.parquet", "in.csv"):
        proc = run("predict", "-m", mlflow_model, "-i", tmp_path / src, "-o", tmp_path / (src + ".csv"),
                   "--output-format", "csv", "--env-manager", "local", "--carry-columns", "id")
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "in.parquet.csv").read_text() == (tmp_path / "in.csv.csv").read_text()


def test_arrow_file_in_arrow_stream_out_on_stdout(mlflow_proba_model, tmp_path):
    df = frame(600)
    table = pa.Table.from_pandas(df[["id", "x32", "x"]], preserve_index=False)
    feather.write_feather(table, tmp_path / "in.arrow", chunksize=250)  # Arrow IPC file, 3 record batches
    proc = run("predict", "-m", mlflow_proba_model, "-i", tmp_path / "in.arrow", "--output-format", "arrow-stream",
               "--env-manager", "local", "--batch-rows", 100, "--carry-columns", "id", text=False)
    assert proc.returncode == 0, proc.stderr
    got = pa.ipc.open_stream(io.BytesIO(proc.stdout)).read_all().to_pandas()
    want = mlflow_predict(mlflow_proba_model, df[["x32", "x"]])
    assert list(got.columns) == ["id", "0", "1"]
    np.testing.assert_array_equal(got["id"], df["id"])
    np.testing.assert_allclose(got[["0", "1"]].to_numpy(), want, rtol=1e-6)


def test_arrow_stream_on_stdin_to_an_arrow_file(mlflow_proba_model, tmp_path):
    df = frame(300)[["x32", "x"]]
    sink = io.BytesIO()
    table = pa.Table.from_pandas(df, preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as w:
        for b in table.to_batches(max_chunksize=64):
            w.write_batch(b)
    out = tmp_path / "out.arrow"
    proc = run("predict", "-m", mlflow_proba_model, "-t", "arrow", "-o", out, "--env-manager", "local",
               stdin=sink.getvalue(), text=False)
    assert proc.returncode == 0, proc.stderr
    got = feather.read_table(out).to_pandas()
    np.testing.assert_allclose(got.to_numpy(), mlflow_predict(mlflow_proba_model, df), rtol=1e-6)


def test_score_file_from_python_on_parquet(mlflow_model, tmp_path):
    df = frame(300)
    df.to_parquet(tmp_path / "in.parquet", row_group_size=100)
    summary = batch.score_file(mlflow_model, tmp_path / "in.parquet", tmp_path / "out.parquet",
                               carry_columns=["id"], batch_rows=64)
    assert summary["rows"] == 300
    assert summary["batches"] == 6  # 64+36 per row group of 100: a batch never spans two
    got = pd.read_parquet(tmp_path / "out.parquet")
    want = mlflow_predict(mlflow_model, df.drop(columns=["id"]))
    np.testing.assert_array_equal(got["prediction"], want)


def test_types_reach_the_model_as_pandas_read_parquet_gives_them(tmp_path):
    """A model that reports the dtypes it was given."""
    (tmp_path / "dtypes_model.py").write_text(
        "import pandas as pd\n"
        "class M:\n"
        "    def predict(self, df):\n"
        "        return pd.DataFrame({'dtypes': [','.join(str(df[c].dtype) for c in df.columns)] * len(df)})\n"
        "def _load_pyfunc(path):\n"
        "    return M()\n")
    model = tmp_path / "model"
    pyfunc.save_model(str(model), loader_module="dtypes_model", code_path=[str(tmp_path / "dtypes_model.py")])
    df = pd.DataFrame({
        "i8": np.array([1, 2, 3], dtype=np.int8), "u16": np.array([1, 2, 3], dtype=np.uint16),
        "f32": np.array([1.5, 2, 3], dtype=np.float32), "b": [True, False, True],
        "s": ["a", None, "c"], "t": pd.to_datetime(["2024-01-01", "2024-01-02", None]).as_unit("us"),
        "bin": [b"x", b"y", b"\x00"],
    })
    df.to_parquet(tmp_path / "in.parquet")
    proc = run("predict", "-m", model, "-i", tmp_path / "in.parquet", "-o", tmp_path / "out.parquet",
               "--env-manager", "local")
    assert proc.returncode == 0, proc.stderr
    got = pd.read_parquet(tmp_path / "out.parquet")["dtypes"][0]
    read = pd.read_parquet(tmp_path / "in.parquet")
    assert got == ",".join(str(read[c].dtype) for c in read.columns)


# --- bad input: one clear line naming the file, row group or column; no output left ---

def assert_fails(proc, *needles, out=None):
    assert proc.returncode != 0
    err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode()
    # The last line (a model's warnings on stderr may come before it), one line.
    err = err.rstrip("\n").split("\n")[-1]
    assert err.startswith("pyfunc: error: "), err
    for n in needles:
        assert n in err, err
    if out is not None:
        assert not Path(out).exists()
        assert not [p for p in Path(out).parent.iterdir() if p.name.startswith("." + Path(out).name)]


def test_truncated_parquet_names_the_file(mlflow_model, tmp_path):
    frame(1000).to_parquet(tmp_path / "in.parquet", row_group_size=300)
    data = (tmp_path / "in.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.parquet"
    assert_fails(run("predict", "-m", mlflow_model, "-i", tmp_path / "cut.parquet", "-o", out,
                     "--env-manager", "local"), "cut.parquet", "Parquet", out=out)


def test_corrupt_row_group_names_the_row_group(mlflow_model, tmp_path):
    frame(1000).to_parquet(tmp_path / "in.parquet", row_group_size=300, compression="snappy")
    meta = pq.ParquetFile(tmp_path / "in.parquet").metadata
    col = meta.row_group(2).column(1)  # x32 of the third row group
    data = bytearray((tmp_path / "in.parquet").read_bytes())
    start = col.data_page_offset
    for i in range(start, start + col.total_compressed_size):
        data[i] = 0xFF
    (tmp_path / "bad.parquet").write_bytes(bytes(data))
    out = tmp_path / "out.parquet"
    assert_fails(run("predict", "-m", mlflow_model, "-i", tmp_path / "bad.parquet", "-o", out,
                     "--env-manager", "local", "--batch-rows", 100), "bad.parquet: row group 2", out=out)


def test_not_parquet_at_all(mlflow_model, tmp_path):
    (tmp_path / "in.parquet").write_text("a,b\n1,2\n")
    assert_fails(run("predict", "-m", mlflow_model, "-i", tmp_path / "in.parquet", "--env-manager", "local"),
                 "in.parquet: not a Parquet file")


def test_unsupported_arrow_types_name_the_column_and_type(mlflow_model, tmp_path):
    import datetime

    pd.DataFrame({"x": [1.0], "day": [datetime.date(2024, 1, 1)]}).to_parquet(tmp_path / "date.parquet")
    assert_fails(run("predict", "-m", mlflow_model, "-i", tmp_path / "date.parquet", "--env-manager", "local"),
                 "date.parquet: column 'day' has Arrow type date32[day]")
    feather.write_feather(pa.table({"v": pa.array([[1, 2], [3]])}), tmp_path / "list.arrow")
    assert_fails(run("predict", "-m", mlflow_model, "-i", tmp_path / "list.arrow", "--env-manager", "local"),
                 "list.arrow: column 'v' has Arrow type list<item: int64>")


def test_a_file_that_misses_a_signature_column_fails_as_mlflow_does(mlflow_model, tmp_path):
    frame(50).drop(columns=["tag"]).to_parquet(tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    proc = run("predict", "-m", mlflow_model, "-i", tmp_path / "in.parquet", "-o", out, "--env-manager", "local")
    assert proc.returncode != 0
    assert "tag" in proc.stderr and "rows 0-49" in proc.stderr, proc.stderr
    assert not out.exists()


def test_output_that_cannot_be_written_and_misused_options(mlflow_model, tmp_path):
    frame(20).to_parquet(tmp_path / "in.parquet")
    src = tmp_path / "in.parquet"
    assert_fails(run("predict", "-m", mlflow_model, "-i", src, "-o", tmp_path / "no" / "such" / "out.parquet",
                     "--env-manager", "local"), "out.parquet")
    assert_fails(run("predict", "-m", mlflow_model, "-i", src, "-o", tmp_path / "o.parquet", "--env-manager",
                     "local", "--carry-columns", "key"), "has no column 'key'", "'id'", out=tmp_path / "o.parquet")
    assert_fails(run("predict", "-m", mlflow_model, "-i", src, "-o", tmp_path / "o.json", "--env-manager", "local",
                     "--carry-columns", "id"), "need an output of columns", out=tmp_path / "o.json")
    assert_fails(run("predict", "-m", mlflow_model, "-t", "parquet", "--env-manager", "local",
                     stdin=src.read_bytes(), text=False), "not from standard input")
    feather.write_feather(pa.table({"x": [1.0]}), tmp_path / "f.arrow")
    assert_fails(run("predict", "-m", mlflow_model, "-t", "arrow", "--env-manager", "local",
                     stdin=(tmp_path / "f.arrow").read_bytes(), text=False), "cannot be read from a pipe")


def test_a_failing_later_batch_leaves_the_previous_output(tmp_path):
    (tmp_path / "fail_model.py").write_text(
        "class M:\n"
        "    def predict(self, df):\n"
        "        if (df['x'] < 0).any():\n"
        "            raise ValueError('negative x')\n"
        "        return df['x'] * 2\n"
        "def _load_pyfunc(path):\n"
        "    return M()\n")
    model = tmp_path / "model"
    pyfunc.save_model(str(model), loader_module="fail_model", code_path=[str(tmp_path / "fail_model.py")],
                      batching="rows")
    x = np.arange(1000, dtype=float)
    x[900] = -1
    pd.DataFrame({"x": x}).to_parquet(tmp_path / "in.parquet", row_group_size=250)
    out = tmp_path / "out.parquet"
    out.write_bytes(b"previous")
    proc = run("predict", "-m", model, "-i", tmp_path / "in.parquet", "-o", out, "--env-manager", "local",
               "--batch-rows", 100)
    assert proc.returncode != 0
    # Row groups of 250 in batches of 100, 100, 50: row 900 is in rows 850-949.
    assert "rows 850-949" in proc.stderr and "negative x" in proc.stderr, proc.stderr
    assert out.read_bytes() == b"previous"


# The CLI as built without Arrow C++ (CMakeLists.txt: pyfunc_noarrow, built by scripts/setup.sh).
NOARROW = os.environ.get("PYFUNC_NOARROW_BINARY") or str(Path(__file__).resolve().parents[2] / "build" / "cpp" /
                                                         "pyfunc_noarrow")


@pytest.mark.skipif(not Path(NOARROW).exists(), reason="no build/cpp/pyfunc_noarrow (scripts/setup.sh builds it)")
def test_a_build_without_arrow_says_so(mlflow_model, tmp_path):
    frame(5).to_parquet(tmp_path / "in.parquet")
    proc = subprocess.run([NOARROW, "predict", "-m", mlflow_model, "-i",
                           tmp_path / "in.parquet", "--env-manager", "local"], capture_output=True, text=True,
                          timeout=60, env=ENV)
    assert proc.returncode != 0
    assert "this build of pyfunc has no Parquet or Arrow support" in proc.stderr, proc.stderr


def save_code_model(tmp_path, name, source, **kwargs):
    (tmp_path / (name + ".py")).write_text(source)
    model = tmp_path / name
    pyfunc.save_model(str(model), loader_module=name, code_path=[str(tmp_path / (name + ".py"))], **kwargs)
    return model


def test_a_model_whose_rows_depend_on_each_other_gets_the_whole_file_in_one_call(tmp_path):
    # A normalizer: each output depends on every row. Not known to be row-wise, so the
    # whole file (4 row groups, or 3 record batches) is one predict call, as from MLflow.
    model = save_code_model(tmp_path, "norm_model",
                            "class M:\n"
                            "    def predict(self, df):\n"
                            "        return df['x'] / df['x'].sum()\n"
                            "def _load_pyfunc(path):\n"
                            "    return M()\n")
    df = pd.DataFrame({"x": np.arange(1, 1001, dtype=float)})
    df.to_parquet(tmp_path / "in.parquet", row_group_size=250)
    feather.write_feather(df, tmp_path / "in.arrow", chunksize=400)
    want = (df["x"] / df["x"].sum()).to_numpy()
    for src in ("in.parquet", "in.arrow"):
        summary = batch.score_file(model, tmp_path / src, tmp_path / "out.parquet", batch_rows=100)
        assert summary["batches"] == 1 and not summary["batched"], summary
        got = pd.read_parquet(tmp_path / "out.parquet")
        assert list(got.columns) == ["x"]  # the Series keeps its name
        np.testing.assert_allclose(got["x"], want, rtol=1e-15)


def test_carried_columns_need_one_prediction_per_row_and_a_name_of_their_own(tmp_path):
    model = save_code_model(tmp_path, "first_model",
                            "class M:\n"
                            "    def predict(self, df):\n"
                            "        return df['x'].head(int(df['x'].iloc[0])).to_numpy()\n"
                            "def _load_pyfunc(path):\n"
                            "    return M()\n", batching="rows")
    pd.DataFrame({"x": [3.0, 5.0, 7.0], "prediction": [1, 2, 3]}).to_parquet(tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    assert_fails(run("predict", "-m", model, "-i", tmp_path / "in.parquet", "-o", out, "--env-manager", "local",
                     "--carry-columns", "prediction"), "rows 0-2", "carried input column 'prediction' has the name",
                 out=out)
    pd.DataFrame({"x": [2.0, 5.0, 7.0], "id": [1, 2, 3]}).to_parquet(tmp_path / "in.parquet")
    assert_fails(run("predict", "-m", model, "-i", tmp_path / "in.parquet", "-o", out, "--env-manager", "local",
                     "--carry-columns", "id"), "the model returned 2 rows for 3 input rows", out=out)
