"""The numpy path of pyfunc.spark_udf and pyfunc.spark.score_dataframe (mapInArrow, or
arrow_udf on pyspark >= 4.1) on a real local Spark, against mlflow.pyfunc.spark_udf on models saved by real MLflow: the
same answers to the last bit, the array given to the model only where it gives the same
answers, and bad input refused with MLflow's errors."""

import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

pyspark = pytest.importorskip("pyspark")
mlflow = pytest.importorskip("mlflow")
pytest.importorskip("sklearn")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java", allow_module_level=True)

from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql import types as T  # noqa: E402

import pyfunc  # noqa: E402
from pyfunc import spark as pyfunc_spark  # noqa: E402
from conftest import local_spark  # noqa: E402

FEATURES = ["f0", "f1", "f2", "f3"]
ROWS = 20000

# A LinearRegression that logs the type of every input it is given (one line per
# predict call), to see which path the model was given. Saved as the model's code.
ESTIMATORS = '''
from sklearn.linear_model import LinearRegression


class RecordingRegression(LinearRegression):
    log_path = None

    def predict(self, X):
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(type(X).__name__ + "\\n")
        return super().predict(X)
'''

# A PythonModel with a tensor signature: MLflow gives it the (n, 4) float64 array.
TENSOR_MODEL = '''
import numpy as np
import mlflow.pyfunc


class Project(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        if not isinstance(model_input, np.ndarray):
            raise TypeError("expected an ndarray, got " + type(model_input).__name__)
        return np.tanh(model_input @ np.array([0.3, -1.7, 2.9, 0.11])) * 1e3 + model_input[:, 0] ** 3
'''


@pytest.fixture(scope="module")
def spark():
    session = local_spark("pyfunc-spark-arrow-tests")
    # many batches per task: the first is checked both ways, the others use the path
    session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "2000")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def training():
    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(500, 4)) * [1.0, 10.0, 0.1, 1000.0], columns=FEATURES)
    y = X @ np.array([1.5, -2.25, 3.0, 1e-3]) + np.sin(X["f0"]) + 0.5
    return X, y


@pytest.fixture(scope="module")
def saved(tmp_path_factory, training):
    """Models saved by MLflow: name -> directory (and the recording model's log file)."""
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    root = tmp_path_factory.mktemp("spark_arrow_models")
    X, y = training
    (root / "src").mkdir()
    (root / "src" / "spark_arrow_estimators.py").write_text(ESTIMATORS)
    (root / "src" / "spark_arrow_tensor.py").write_text(TENSOR_MODEL)
    sys.path.insert(0, str(root / "src"))
    try:
        from spark_arrow_estimators import RecordingRegression
        from spark_arrow_tensor import Project
    finally:
        sys.path.remove(str(root / "src"))
    reqs = ["scikit-learn", "numpy", "pandas"]
    out = {"log": root / "predict-inputs.txt"}

    reg = RecordingRegression().fit(X, y)
    reg.log_path = str(out["log"])
    mlflow.sklearn.save_model(reg, str(root / "recording"), signature=infer_signature(X, reg.predict(X)),
                              code_paths=[str(root / "src" / "spark_arrow_estimators.py")], pip_requirements=reqs,
                              serialization_format="cloudpickle")
    out["log"].unlink(missing_ok=True)
    out["recording"] = str(root / "recording")

    plain = LinearRegression().fit(X.to_numpy(), y)  # fitted on an array: no feature names
    mlflow.sklearn.save_model(plain, str(root / "nosig"), pip_requirements=reqs)
    out["nosig"] = str(root / "nosig")

    # selects its columns by name: it cannot take an array
    by_name = Pipeline([("cols", ColumnTransformer([("s", StandardScaler(), ["f3", "f1"])], remainder="passthrough")),
                        ("reg", LinearRegression())]).fit(X, y)
    mlflow.sklearn.save_model(by_name, str(root / "by_name"), signature=infer_signature(X, by_name.predict(X)),
                              pip_requirements=reqs)
    out["by_name"] = str(root / "by_name")

    arr = X.to_numpy()
    mlflow.pyfunc.save_model(str(root / "tensor"), python_model=Project(),
                             signature=infer_signature(arr, Project().predict(None, arr)),
                             code_paths=[str(root / "src" / "spark_arrow_tensor.py")], pip_requirements=reqs)
    out["tensor"] = str(root / "tensor")
    return out


@pytest.fixture(scope="module")
def features(spark):
    """ROWS rows of 4 double features over a wide range of magnitudes, in 2 partitions
    (not cached: Spark 4 gives a pandas UDF a cached frame's batches as they are stored)."""
    scale = [1.0, 10.0, 0.1, 1000.0]
    return spark.range(0, ROWS, numPartitions=2).select(
        "id", *[(F.randn(seed=i) * scale[i]).alias(name) for i, name in enumerate(FEATURES)]
    )


def by_id(frame, column="p"):
    """The column's values in id order (sorted here: a Spark sort would run the model
    twice, once to sample the sort keys)."""
    return [r[1] for r in sorted(frame.select("id", column).collect())]


def engine(frame):
    """How the prediction column of ``frame`` is computed, from its optimized plan."""
    plan = frame._jdf.queryExecution().optimizedPlan().toString()
    for name, function in (("mapInArrow", "score_batches"), ("arrow_udf", "score_arrays"), ("pandas_udf", "udf_fn")):
        if function + "(" in plan:
            return name
    raise AssertionError(plan)


ARROW_ENGINE = "arrow_udf" if hasattr(F, "arrow_udf") else "mapInArrow"  # pyspark >= 4.1 has arrow_udf


def mlflow_udf(spark, path, result_type="double"):
    import mlflow.pyfunc

    return mlflow.pyfunc.spark_udf(spark, path, result_type=result_type, env_manager="local")


def test_sklearn_model_answers_are_mlflows_on_both_paths(spark, features, saved):
    want = by_id(features.withColumn("p", mlflow_udf(spark, saved["recording"])(*FEATURES)))
    saved["log"].unlink(missing_ok=True)

    udf = pyfunc.spark_udf(spark, saved["recording"])
    assert by_id(features.withColumn("p", udf(*FEATURES))) == want
    # Each Python worker (one or two) checks the array on its first batch against the
    # DataFrame path, then gives the estimator arrays only: one array per batch.
    inputs = saved["log"].read_text().split()
    assert 1 <= inputs.count("DataFrame") <= 2 and inputs.count("ndarray") == ROWS // 2000
    assert len(inputs) == inputs.count("DataFrame") + inputs.count("ndarray")

    saved["log"].unlink()
    scored = pyfunc_spark.score_dataframe(features, saved["recording"], FEATURES, output_col="p")
    assert scored.columns == ["id"] + FEATURES + ["p"]
    assert engine(scored) == ARROW_ENGINE
    assert by_id(scored) == want
    inputs = saved["log"].read_text().split()
    assert 1 <= inputs.count("DataFrame") <= 2 and inputs.count("ndarray") == ROWS // 2000
    # the signature's names are the default columns
    assert by_id(pyfunc_spark.score_dataframe(features, saved["recording"], output_col="p")) == want


def test_model_without_signature_and_model_that_refuses_arrays(spark, features, saved):
    want = by_id(features.withColumn("p", mlflow_udf(spark, saved["nosig"])(*FEATURES)))
    assert by_id(features.withColumn("p", pyfunc.spark_udf(spark, saved["nosig"])(*FEATURES))) == want
    assert by_id(pyfunc_spark.score_dataframe(features, saved["nosig"], FEATURES, output_col="p")) == want

    # a pipeline that selects columns by name fails on an array: it keeps its DataFrame
    want = by_id(features.withColumn("p", mlflow_udf(spark, saved["by_name"])(*FEATURES)))
    assert by_id(features.withColumn("p", pyfunc.spark_udf(spark, saved["by_name"])(*FEATURES))) == want
    assert by_id(pyfunc_spark.score_dataframe(features, saved["by_name"], FEATURES, output_col="p")) == want


def test_tensor_model_answers_are_mlflows(spark, features, saved):
    with_array = features.withColumn("x", F.array(*FEATURES))
    want = by_id(with_array.withColumn("p", mlflow_udf(spark, saved["tensor"])("x")))
    udf = pyfunc.spark_udf(spark, saved["tensor"])
    assert by_id(with_array.withColumn("p", udf("x"))) == want
    # the array column on Arrow batches: its values go to the model as one (n, 4) block
    scored = pyfunc_spark.score_dataframe(with_array, saved["tensor"], ["x"], output_col="p")
    assert engine(scored) == ARROW_ENGINE and by_id(scored) == want
    as_float = pyfunc_spark.score_dataframe(with_array, saved["tensor"], ["x"], output_col="p", result_type="float")
    assert as_float.schema["p"].dataType == T.FloatType()
    assert by_id(as_float) == by_id(with_array.withColumn("p", mlflow_udf(spark, saved["tensor"], "float")("x")))

    # pyfunc also takes the tensor's columns one by one, as a DataFrame whose to_numpy()
    # is the tensor (MLflow's UDF wants one array column): MLflow's predict on that frame
    import mlflow.pyfunc

    pdf = features.toPandas().sort_values("id")
    want = mlflow.pyfunc.load_model(saved["tensor"]).predict(pdf[FEATURES]).tolist()
    assert by_id(with_array.withColumn("p", udf(*FEATURES))) == want
    assert by_id(pyfunc_spark.score_dataframe(features, saved["tensor"], FEATURES, output_col="p")) == want


def test_bad_input_fails_with_mlflows_errors(spark, features, saved):
    # a null feature: the estimator refuses NaN, on every path, with scikit-learn's message
    holes = features.withColumn("f2", F.when(F.col("id") == 12345, None).otherwise(F.col("f2")))
    for frame in (holes.withColumn("p", mlflow_udf(spark, saved["recording"])(*FEATURES)),
                  holes.withColumn("p", pyfunc.spark_udf(spark, saved["recording"])(*FEATURES)),
                  pyfunc_spark.score_dataframe(holes, saved["recording"], FEATURES, output_col="p")):
        with pytest.raises(Exception, match="Input X contains NaN"):
            frame.collect()
    # a long column for a double input: the signature refuses it, as MLflow's does
    longs = features.withColumn("f1", F.col("id"))
    for frame in (longs.withColumn("p", mlflow_udf(spark, saved["recording"])(*FEATURES)),
                  pyfunc_spark.score_dataframe(longs, saved["recording"], FEATURES, output_col="p")):
        with pytest.raises(Exception, match="Can not safely convert int64 to float64"):
            frame.collect()
    # a tensor of the wrong width
    with pytest.raises(Exception, match=r"could not be converted to the expected shape of: '\(-1, 4\)'"):
        pyfunc_spark.score_dataframe(features.withColumn("x", F.array(*FEATURES[:3])), saved["tensor"], ["x"],
                                     output_col="p").collect()
    with pytest.raises(pyfunc.InvalidArgumentError, match="input_cols must be column names"):
        pyfunc_spark.score_dataframe(features, saved["recording"], [F.col("f0"), "f1"])
    with pytest.raises(pyfunc.InvalidArgumentError, match=r"4 required inputs \(f0, f1, f2, f3\)"):
        pyfunc_spark.score_dataframe(features, saved["recording"], ["f0", "f1"])
    with pytest.raises(Exception, match="no_such_column"):
        pyfunc_spark.score_dataframe(features, saved["recording"], ["f0", "f1", "f2", "no_such_column"]).collect()


def test_score_dataframe_output_column_and_fallback(spark, features, saved):
    # an existing column of that name is replaced in place, as withColumn replaces it
    scored = pyfunc_spark.score_dataframe(features, saved["recording"], FEATURES, output_col="f3")
    assert scored.columns == ["id"] + FEATURES
    want = by_id(features.withColumn("p", pyfunc.spark_udf(spark, saved["recording"])(*FEATURES)))
    assert by_id(scored, "f3") == want
    # the other columns are kept as they are
    wide = features.filter("id < 3000").select(
        "id", *FEATURES, F.concat(F.lit("row "), F.col("id")).alias("s"), F.array("id", "id").alias("a"),
        F.when(F.col("id") % 2 == 0, F.col("id")).alias("n"),
        F.timestamp_seconds(F.col("id") * 86400 + 0.25).alias("t"))
    got = pyfunc_spark.score_dataframe(wide, saved["recording"], FEATURES, output_col="p")
    assert got.schema.fields[:-1] == wide.schema.fields
    assert sorted(got.drop("p").collect()) == sorted(wide.collect())
    # (the column UDF's answers on this frame: a row's last bit depends on the batch it
    # is in, as BLAS kernels treat a batch's last rows apart, in every path alike)
    udf = pyfunc.spark_udf(spark, saved["recording"])
    assert by_id(got) == by_id(wide.withColumn("p", udf(*FEATURES)))
    # a string result has no numpy path: the column UDF scores it, with its answers
    as_text = pyfunc_spark.score_dataframe(features, saved["recording"], FEATURES, output_col="p", result_type="string")
    assert as_text.schema["p"].dataType == T.StringType()
    assert engine(as_text) == "pandas_udf"
    assert by_id(as_text) == by_id(features.withColumn("p", mlflow_udf(spark, saved["recording"], "string")(*FEATURES)))
    # an empty partition, and an empty frame
    few = features.filter("id < 5")
    assert by_id(pyfunc_spark.score_dataframe(few, saved["recording"], FEATURES, output_col="p")) == by_id(
        few.withColumn("p", udf(*FEATURES)))
    empty = features.filter("id < 0")
    assert pyfunc_spark.score_dataframe(empty, saved["recording"], FEATURES, output_col="p").collect() == []


def test_numpy_path_builds_the_array_pandas_would(training):
    # the frame the DataFrame path gives the model, and the array it makes of it: the
    # numpy path's array has the same dtype and memory layout (identical BLAS arithmetic)
    X, _ = training
    series = tuple(pd.Series(X[c].to_numpy()) for c in FEATURES)
    want = pyfunc_spark.input_frame(series, FEATURES).to_numpy()
    got = pyfunc_spark._stacked([s.to_numpy() for s in series], np.dtype("float64"))
    assert got.dtype == want.dtype and got.strides == want.strides
    np.testing.assert_array_equal(got, want)
    plan = pyfunc_spark._numpy_plan
    assert plan({"flavors": {"python_function": {"loader_module": "mlflow.pyfunc.model"}}}, "local", None,
                T.DoubleType()) is None
    assert plan({"flavors": {"python_function": {"loader_module": "mlflow.sklearn"}}}, "virtualenv", None,
                T.DoubleType()) is None
    assert plan({"flavors": {"python_function": {"loader_module": "mlflow.sklearn"}}}, "local", None,
                T.StringType()) is None
    assert plan({"flavors": {"python_function": {"loader_module": "mlflow.sklearn"}}}, "local", None,
                T.DoubleType()) == {"input": "columns", "dtypes": None, "result": "double"}
