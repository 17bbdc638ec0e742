"""pyfunc.spark_udf on a real local Spark (local[2], one session for the module):
input column naming, every result type, code paths, models from runs, a model error as
a task failure, and env_manager="virtualenv" through the pyfunc runtime."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pandas as pd
import pytest

pyspark = pytest.importorskip("pyspark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java", allow_module_level=True)

from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql import types as T  # noqa: E402

import pyfunc  # noqa: E402
from pyfunc import spark as pyfunc_spark  # noqa: E402
from conftest import local_spark  # noqa: E402

# One loader module for every model of this file: Spark's Python workers live across
# tests and cache imported modules, so every model that imports this name must get the
# same code. What a model does is chosen by its data file (a JSON dict).
PROBE_LOADER = '''
import json

import numpy as np
import pandas as pd


class Probe:
    def __init__(self, conf):
        self.conf = conf

    def predict(self, df, params=None):
        kind = self.conf["kind"]
        if kind == "columns":  # which columns the model saw, and the row's values
            return pd.Series([",".join(df.columns) + "|" + ",".join(str(v) for v in row)
                              for row in df.itertuples(index=False)])
        if kind == "sum":
            return df.select_dtypes("number").sum(axis=1) * self.conf.get("scale", 1)
        if kind == "frame":  # a DataFrame of many types, from numeric column x
            x = df.iloc[:, 0].astype("int64")
            return pd.DataFrame({
                "s": ["v" + str(v) for v in x],
                "d": x * 0.5,
                "i": x * 3,
                "b": x % 2 == 0,
                "arr": [[int(v), int(v) + 1] for v in x],
            })
        if kind == "matrix":  # a 2-D ndarray
            x = df.iloc[:, 0].to_numpy(dtype="float64")
            return np.column_stack([x, x * 10])
        if kind == "nested":
            return pd.Series([[[int(v)], [int(v), int(v)]] for v in df.iloc[:, 0]])
        if kind == "strings":
            return pd.Series(["s" + str(v) for v in df.iloc[:, 0]])
        if kind == "params":
            return pd.Series([json.dumps(params, sort_keys=True)] * len(df))
        if kind == "error":
            raise ValueError("probe model refuses row count %d" % len(df))
        raise AssertionError(kind)


def _load_pyfunc(path):
    with open(path) as f:
        conf = json.load(f)
    if conf.get("load_log"):
        import os
        with open(conf["load_log"], "a") as log:
            log.write("%d\\n" % os.getpid())
    return Probe(conf)
'''

HELPER_PACKAGE = {
    "spark_probe_helpers/__init__.py": "",
    "spark_probe_helpers/scale.py": "FACTOR = 7\n",
}

CODE_LOADER = '''
from spark_probe_helpers.scale import FACTOR


class Scaled:
    def predict(self, df, params=None):
        return df.iloc[:, 0].astype("float64") * FACTOR


def _load_pyfunc(path):
    return Scaled()
'''


@pytest.fixture(scope="module")
def spark():
    session = local_spark("pyfunc-spark-tests")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Saves probe models on demand: models(kind, signature=None, **conf) -> path."""
    root = tmp_path_factory.mktemp("spark_models")
    (root / "src").mkdir()
    loader = root / "src" / "spark_probe_loader.py"
    loader.write_text(PROBE_LOADER)
    made = {}

    def make(kind, signature=None, **conf):
        key = json.dumps([kind, signature, conf], sort_keys=True)
        if key not in made:
            name = "m{}".format(len(made))
            data = root / (name + ".json")
            data.write_text(json.dumps(dict(conf, kind=kind)))
            model = pyfunc.Model()
            if signature is not None:
                model.signature = signature
            pyfunc.save_model(str(root / name), "spark_probe_loader", data_path=str(data), code_path=[str(loader)],
                              model=model)
            made[key] = str(root / name)
        return made[key]

    return make


def col_signature(*names, types=None, optional=()):
    specs = []
    for i, n in enumerate(names):
        spec = {"type": (types or {}).get(n, "double"), "name": n, "required": n not in optional}
        specs.append(spec)
    return {"inputs": json.dumps(specs), "outputs": None, "params": None}


@pytest.fixture(scope="module")
def df(spark):
    return spark.createDataFrame(
        pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [10, 20, 30, 40], "c": ["x", "y", "z", "w"]})
    ).repartition(2)


def collect(frame, column="p"):
    return [r[column] for r in frame.orderBy("a").collect()]


# --- inputs --------------------------------------------------------------------------


def test_positional_columns_are_named_by_ordinals(spark, df, models):
    udf = pyfunc.spark_udf(spark, models("columns"), result_type="string")
    got = collect(df.withColumn("p", udf("a", "b", "c")))
    assert got == ["0,1,2|1.0,10,x", "0,1,2|2.0,20,y", "0,1,2|3.0,30,z", "0,1,2|4.0,40,w"]


def test_signature_names_the_columns_by_position(spark, df, models):
    path = models("columns", signature=col_signature("x", "y", types={"y": "long"}))
    udf = pyfunc.spark_udf(spark, path, result_type="string")
    assert collect(df.withColumn("p", udf("a", "b")))[0] == "x,y|1.0,10"
    # with no columns, the signature's names are the Spark columns to read
    renamed = df.withColumnRenamed("a", "x").withColumnRenamed("b", "y")
    assert sorted(r.p for r in renamed.select(udf().alias("p")).collect())[0] == "x,y|1.0,10"


def test_struct_column_gives_its_field_names(spark, df, models):
    udf = pyfunc.spark_udf(spark, models("columns"), result_type="string")
    got = collect(df.withColumn("p", udf(F.struct("c", F.col("b").alias("bee")))))
    assert got[0] == "c,bee|x,10"


def test_missing_and_extra_columns_against_the_signature(spark, df, models):
    path = models("columns", signature=col_signature("x", "y", "z", types={"y": "long", "z": "string"}))
    udf = pyfunc.spark_udf(spark, path, result_type="string")
    with pytest.raises(pyfunc.InvalidArgumentError, match=r"missing required columns.*3 required inputs \(x, y, z\)"):
        udf("a", "b")
    with pytest.warns(UserWarning, match="extra columns are ignored"):
        column = udf("a", "b", "c", "a")
    assert collect(df.withColumn("p", column))[0] == "x,y,z|1.0,10,x"


def test_no_columns_needs_a_named_signature(spark, models):
    udf = pyfunc.spark_udf(spark, models("sum"))
    with pytest.raises(pyfunc.InvalidArgumentError, match="no column signature"):
        udf()
    optional = pyfunc.spark_udf(spark, models("sum", signature=col_signature("x", "y", optional=("y",))))
    with pytest.raises(pyfunc.InvalidArgumentError, match=r"optional inputs \(y\)"):
        optional()


def test_the_signature_is_enforced_as_mlflow_enforces_it(spark, df, models):
    # A Spark long column for a double input: MLflow refuses int64 -> double, and so do we.
    udf = pyfunc.spark_udf(spark, models("columns", signature=col_signature("x", "y")), result_type="string")
    with pytest.raises(Exception, match="Can not safely convert int64 to float64"):
        collect(df.withColumn("p", udf("a", "b")))


# --- result types --------------------------------------------------------------------


def test_every_scalar_result_type(spark, df, models):
    path = models("frame")
    udfs = {
        "double": pyfunc.spark_udf(spark, path),  # the default: the leftmost numeric column, d
        "float": pyfunc.spark_udf(spark, path, result_type=T.FloatType()),
        "int": pyfunc.spark_udf(spark, path, result_type="int"),
        "long": pyfunc.spark_udf(spark, path, result_type="bigint"),
        "string": pyfunc.spark_udf(spark, path, result_type="string"),
        "boolean": pyfunc.spark_udf(spark, path, result_type="bool"),
    }
    out = df.select("a", *[u("b").alias(k) for k, u in udfs.items()])
    schema = {f.name: f.dataType for f in out.schema.fields}
    assert schema["double"] == T.DoubleType() and schema["float"] == T.FloatType()
    assert schema["int"] == T.IntegerType() and schema["long"] == T.LongType()
    assert schema["string"] == T.StringType() and schema["boolean"] == T.BooleanType()
    rows = out.orderBy("a").collect()
    assert [r.double for r in rows] == [5.0, 10.0, 15.0, 20.0]
    assert [r.float for r in rows] == [5.0, 10.0, 15.0, 20.0]
    assert [r.int for r in rows] == [30, 60, 90, 120]  # int64 output values that fit in int
    assert [r.long for r in rows] == [30, 60, 90, 120]
    assert [r.string for r in rows] == ["v10", "v20", "v30", "v40"]
    assert [r.boolean for r in rows] == [True, True, True, True]


def test_array_and_struct_result_types(spark, df, models):
    matrix = models("matrix")
    udfs = {
        "arr_d": pyfunc.spark_udf(spark, matrix, result_type="array<double>"),
        "arr_s": pyfunc.spark_udf(spark, matrix, result_type=T.ArrayType(T.StringType())),
        # MLflow's rule for a DataFrame: each row's values of the columns that fit (here i)
        "arr_l": pyfunc.spark_udf(spark, models("frame"), result_type="array<long>"),
        "nested": pyfunc.spark_udf(spark, models("nested"), result_type="array<array<int>>"),
        "st": pyfunc.spark_udf(spark, models("frame"), result_type="s string, d double, arr array<long>, b boolean"),
        "st_obj": pyfunc.spark_udf(
            spark, models("frame"),
            result_type=T.StructType([T.StructField("i", T.IntegerType()), T.StructField("s", T.StringType())]),
        ),
    }
    out = df.select("a", *[u("a").alias(k) for k, u in udfs.items()])
    schema = {f.name: f.dataType.simpleString() for f in out.schema.fields}
    assert schema["st"] == "struct<s:string,d:double,arr:array<bigint>,b:boolean>"
    row = out.orderBy("a").collect()[1]  # a == 2.0
    assert row.arr_d == [2.0, 20.0]
    assert row.arr_s == ["2.0", "20.0"]
    assert row.arr_l == [6]
    assert row.nested == [[2], [2, 2]]
    assert row.st.asDict() == {"s": "v2", "d": 1.0, "arr": [2, 3], "b": True}
    assert row.st_obj.asDict() == {"i": 6, "s": "v2"}


def test_unsupported_result_types_are_refused_on_the_driver(spark, models):
    path = models("sum")
    with pytest.raises(pyfunc.InvalidArgumentError, match=r"map<string,double> is not supported"):
        pyfunc.spark_udf(spark, path, result_type="map<string,double>")
    with pytest.raises(pyfunc.InvalidArgumentError, match=r"date is not allowed"):
        pyfunc.spark_udf(spark, path, result_type="array<date>")
    with pytest.raises(pyfunc.InvalidArgumentError, match="not a Spark type"):
        pyfunc.spark_udf(spark, path, result_type="no such type<")
    with pytest.raises(pyfunc.InvalidArgumentError, match="env_manager"):
        pyfunc.spark_udf(spark, path, env_manager="docker")


def test_incompatible_output_fails_naming_column_and_types(spark, df, models):
    udf = pyfunc.spark_udf(spark, models("strings"), result_type="double")
    with pytest.raises(Exception) as info:
        df.select(udf("a")).collect()
    text = str(info.value)
    assert "InvalidArgumentError" in text
    assert "cannot be returned as result_type double" in text
    # which batch fails first depends on task order; pandas >= 3 holds the strings as "str"
    assert re.search(r"column '0' \((object of )?str, e\.g\. 's\d\.0'\): values of inferred type string", text)
    struct = pyfunc.spark_udf(spark, models("frame"), result_type="s string, missing double")
    with pytest.raises(Exception, match=r"has field 'missing', but the model's output has no column of that name"):
        df.select(struct("a")).collect()


# --- conversion rules (no Spark job needed) ------------------------------------------


@pytest.mark.parametrize(
    "prediction, result_type, expected",
    [
        (pd.DataFrame({"s": ["a"], "f": [1.5], "i": [2]}), T.DoubleType(), [1.5]),  # leftmost numeric
        (pd.DataFrame({"s": ["a"], "f": [1.5], "i": [2]}), T.LongType(), [2]),  # floats skipped for long
        (pd.DataFrame({"s": ["a"], "f": [1.5]}), T.StringType(), ["a"]),
        (np.array([1, 2], dtype=np.int64), T.IntegerType(), [1, 2]),
        (pd.Series([1.0, None]), T.StringType(), ["1.0", None]),  # nulls stay null
        (pd.Series([True, False]), T.BooleanType(), [True, False]),
        ([1, 2], T.DoubleType(), [1.0, 2.0]),
        ({"x": [3, 4]}, T.LongType(), [3, 4]),
        (pd.Series([1, None], dtype="Int64"), T.LongType(), [1, pd.NA]),
    ],
)
def test_scalar_conversion_rules(prediction, result_type, expected):
    rows = len(expected)
    got = pyfunc_spark.convert_prediction(prediction, result_type, rows)
    assert got.tolist() == expected


@pytest.mark.parametrize(
    "prediction, result_type, message",
    [
        (pd.Series([2**40]), T.IntegerType(), r"column '0' \(int64, e.g. 1099511627776\): values out of the range of int"),
        (pd.Series([1.5]), T.LongType(), r"column '0' \(float64, e.g. 1.5\): floating-point values cannot become long"),
        (pd.Series([True]), T.DoubleType(), r"column '0' \(bool, e.g. True\): booleans are not numbers"),
        (pd.Series([1.0]), T.BooleanType(), r"column '0' \(float64, e.g. 1.0\): not booleans"),
        (pd.Series([1.0, 2.0]), T.DoubleType(), r"returned 2 prediction\(s\) for a batch of 3 row\(s\)"),
    ],
)
def test_incompatible_conversions_name_the_column_and_both_types(prediction, result_type, message):
    rows = 3 if "batch of 3" in message else len(prediction)
    with pytest.raises(pyfunc.InvalidArgumentError, match=message):
        pyfunc_spark.convert_prediction(prediction, result_type, rows)


# --- model loading -------------------------------------------------------------------


def test_model_is_loaded_once_per_python_worker(spark, models, tmp_path):
    log = tmp_path / "loads.txt"
    udf = pyfunc.spark_udf(spark, models("sum", load_log=str(log)))
    many_tasks = spark.range(0, 4000, numPartitions=8).selectExpr("cast(id as double) a")
    for _ in range(2):  # two jobs of 8 tasks each
        assert many_tasks.select(F.sum(udf("a"))).collect()[0][0] == sum(range(4000))
    pids = log.read_text().split()
    assert 1 <= len(pids) < 16
    assert len(set(pids)) == len(pids), "a Python worker loaded the model twice"


def test_model_with_code_paths(spark, df, tmp_path):
    src = tmp_path / "src"
    for rel, text in HELPER_PACKAGE.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    (src / "spark_code_loader.py").write_text(CODE_LOADER)
    path = tmp_path / "model"
    pyfunc.save_model(str(path), "spark_code_loader",
                      code_path=[str(src / "spark_code_loader.py"), str(src / "spark_probe_helpers")])
    udf = pyfunc.spark_udf(spark, str(path))
    assert udf.metadata.flavors["python_function"]["code"] == "code"
    # the driver's directory may go away: executors use the archive shipped by Spark
    shutil.rmtree(path)
    assert collect(df.withColumn("p", udf("a"))) == [7.0, 14.0, 21.0, 28.0]


def test_model_logged_to_a_run(spark, df, models, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("PYFUNC_CACHE_DIR", str(tmp_path / "cache"))
    pyfunc.set_tracking_uri(None)
    data = tmp_path / "conf.json"
    data.write_text(json.dumps({"kind": "sum", "scale": 3}))
    loader = os.path.join(os.path.dirname(models("sum")), "src", "spark_probe_loader.py")
    with pyfunc.start_run() as run:
        pyfunc.log_model("model", loader_module="spark_probe_loader", data_path=str(data), code_path=[loader])
    run_id = run.info.run_id
    by_uri = pyfunc.spark_udf(spark, "runs:/{}/model".format(run_id))
    by_run_id = pyfunc.spark_udf(spark, "model", run_id=run_id)
    assert by_uri.metadata.run_id == run_id
    out = df.select("a", by_uri("a", "b").alias("p"), by_run_id("a", "b").alias("q")).orderBy("a").collect()
    assert [r.p for r in out] == [33.0, 66.0, 99.0, 132.0]
    assert [r.q for r in out] == [r.p for r in out]
    with pytest.raises(pyfunc.NotFoundError):
        pyfunc.spark_udf(spark, "runs:/{}/nothing-here".format(run_id))


def test_params_are_checked_once_against_the_schema(spark, df, models):
    signature = {"inputs": None, "outputs": None, "params": json.dumps([
        {"name": "k", "type": "long", "default": 5, "shape": None},
        {"name": "tag", "type": "string", "default": "t", "shape": None},
    ])}
    path = models("params", signature=signature)
    with pytest.warns(UserWarning, match=r"params \['zzz'\] ignored"):
        udf = pyfunc.spark_udf(spark, path, result_type="string", params={"k": 9, "zzz": 1})
    assert json.loads(collect(df.withColumn("p", udf("a")))[0]) == {"k": 9, "tag": "t"}
    with pytest.warns(UserWarning, match="no params schema"):
        pyfunc.spark_udf(spark, models("sum"), params={"k": 1})


def test_model_error_is_a_clear_task_failure(spark, df, models):
    udf = pyfunc.spark_udf(spark, models("error"))
    with pytest.raises(Exception) as info:
        df.select(udf("a")).collect()
    assert type(info.value).__name__ == "PythonException"
    assert "ValueError: probe model refuses row count" in str(info.value)


def test_not_a_pyfunc_model(spark, tmp_path):
    (tmp_path / "MLmodel").write_text("flavors:\n  other: {}\n")
    with pytest.raises(pyfunc.InvalidArgumentError, match='does not have the "python_function" flavor'):
        pyfunc.spark_udf(spark, str(tmp_path))
    with pytest.raises(pyfunc.NotFoundError):
        pyfunc.spark_udf(spark, str(tmp_path / "missing"))


# --- env_manager="virtualenv" --------------------------------------------------------


def _has_remote_loading():
    import inspect

    return "env_manager" in inspect.signature(pyfunc.load_pyfunc).parameters


ENV_LOADER = textwrap.dedent('''
    import sys
    import pandas as pd

    class WhereAmI:
        def predict(self, df, params=None):
            if (df.iloc[:, 0] < 0).any():
                raise KeyError("negative input in the virtualenv model")
            return pd.DataFrame({"prefix": [sys.prefix] * len(df), "total": df.sum(axis=1, numeric_only=True)})

    def _load_pyfunc(path):
        return WhereAmI()
    ''')


@pytest.fixture(scope="module")
def env_model(tmp_path_factory):
    """A model that reports the interpreter that runs it. Its requirements are pyfunc's
    defaults (numpy, pandas, cloudpickle pinned to this interpreter's versions), so the
    runtime's environment cache is shared across runs."""
    root = tmp_path_factory.mktemp("spark_env_model")
    (root / "spark_env_loader.py").write_text(ENV_LOADER)
    pyfunc.save_model(str(root / "model"), "spark_env_loader", code_path=[str(root / "spark_env_loader.py")])
    return str(root / "model")


def _prefixes(frame):
    rows = frame.orderBy("a").collect()
    assert [r.p.total for r in rows] == [11.0, 22.0, 33.0, 44.0]
    return {r.p.prefix for r in rows}


@pytest.mark.skipif(not _has_remote_loading(), reason="load_pyfunc(env_manager=...) not available")
def test_virtualenv_runs_the_model_in_its_own_environment(spark, df, env_model):
    # The model reports the interpreter that runs it: the model's virtualenv, not Spark's,
    # the one environment the driver built (executors on this machine do not build one).
    start = time.time()
    udf = pyfunc.spark_udf(spark, env_model, result_type="prefix string, total double", env_manager="virtualenv")
    prefixes = _prefixes(df.select("a", udf("a", "b").alias("p")))
    assert len(prefixes) == 1
    prefix = prefixes.pop()
    assert os.path.realpath(prefix) != os.path.realpath(sys.prefix)
    assert os.path.isfile(os.path.join(prefix, "pyvenv.cfg"))
    from pyfunc import _core

    _, driver_root, _, created = _core.prepare_environment(env_model, env_manager="virtualenv", python=sys.executable,
                                                           quiet=True)
    assert not created and os.path.realpath(prefix) == os.path.realpath(driver_root)
    print("virtualenv spark_udf: {:.1f}s (environment build included when not cached)".format(time.time() - start))

    # a model error in the environment's worker fails the Spark task with its type and message
    with pytest.raises(Exception) as info:
        df.select(udf((F.col("a") - 3).alias("a"), "b")).collect()
    assert type(info.value).__name__ == "PythonException"
    assert "PredictionError" in str(info.value)
    assert "KeyError" in str(info.value) and "negative input in the virtualenv model" in str(info.value)


@pytest.mark.skipif(not _has_remote_loading(), reason="load_pyfunc(env_manager=...) not available")
def test_virtualenv_is_shipped_from_the_driver_to_cluster_executors(spark, df, env_model, monkeypatch):
    # As with a cluster master: the driver packs the environment it built and ships it
    # with addFile; each executor unpacks it once into its SparkFiles directory and runs
    # the model with the interpreter there (the driver's directory is not used).
    from pyspark import SparkFiles

    from pyfunc import _core

    _, driver_root, _, _ = _core.prepare_environment(env_model, env_manager="virtualenv", python=sys.executable,
                                                     quiet=True)
    monkeypatch.setattr(pyfunc_spark, "_executors_on_this_machine", lambda sc: False)
    udf = pyfunc.spark_udf(spark, env_model, result_type="prefix string, total double", env_manager="virtualenv")
    prefixes = _prefixes(df.select("a", udf("a", "b").alias("p")))
    assert len(prefixes) == 1
    prefix = os.path.realpath(prefixes.pop())
    assert prefix.startswith(os.path.realpath(SparkFiles.getRootDirectory()) + os.sep)
    assert os.path.basename(prefix).startswith("pyfunc-env-" + os.path.basename(driver_root))
    assert os.path.isfile(os.path.join(prefix, "pyvenv.cfg"))
    # a second UDF of the same environment ships no second archive
    archives = [n for n in os.listdir(SparkFiles.getRootDirectory()) if n.startswith("pyfunc-env-")]
    again = pyfunc.spark_udf(spark, env_model, result_type="prefix string, total double", env_manager="virtualenv")
    assert _prefixes(df.select("a", again("a", "b").alias("p"))) == {prefix}
    assert [n for n in os.listdir(SparkFiles.getRootDirectory()) if n.startswith("pyfunc-env-")] == archives


def test_shipped_environment_of_another_platform_is_not_used(tmp_path, capsys):
    spec = {"kind": "virtualenv", "platform": "plan9-vax", "archive": "unused.tar", "python": "bin/python"}
    assert pyfunc_spark._environment_on_executor(spec) is None
    assert "built for plan9-vax" in capsys.readouterr().err
    spec = {"kind": "virtualenv", "platform": pyfunc_spark._platform_tag(), "root": str(tmp_path),
            "python": str(tmp_path / "bin" / "python")}
    assert pyfunc_spark._environment_on_executor(spec) is None
    assert "building it on this executor" in capsys.readouterr().err


def test_result_type_none_comes_from_the_output_schema(spark, models):
    out = lambda specs: {"inputs": None, "outputs": json.dumps(specs), "params": None}  # noqa: E731
    one = pyfunc.spark_udf(spark, models("sum", signature=out([{"type": "long"}])), result_type=None)
    assert one.returnType == T.LongType()
    several = out([{"type": "string", "name": "s"}, {"type": "double", "name": "d"}])
    assert pyfunc.spark_udf(spark, models("frame", signature=several), result_type=None).returnType.simpleString() \
        == "struct<s:string,d:double>"
    tensor = out([{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}])
    assert pyfunc.spark_udf(spark, models("matrix", signature=tensor), result_type=None).returnType.simpleString() \
        == "array<array<float>>"
    with pytest.warns(UserWarning, match="using double"):
        assert pyfunc.spark_udf(spark, models("sum"), result_type=None).returnType == T.DoubleType()
    with pytest.raises(pyfunc.InvalidArgumentError, match="cannot derive a result_type"):
        pyfunc.spark_udf(spark, models("sum", signature=out([{"type": "datetime"}])), result_type=None)
