"""Scoring a pyfunc model on Apache Spark: ``spark_udf`` and ``score_dataframe``.

The driver resolves the model URI to a local directory, packs it into a tar archive and
ships it with ``SparkContext.addFile``; nothing assumes a filesystem shared by the driver
and the executors. Each Python worker fetches the archive with ``SparkFiles.get``,
unpacks it once per executor, loads the model once per worker process and keeps it in a
module-level cache (keyed by the archive and the environment manager) for every later
batch and task.

Two ways to score, with the same answers as ``mlflow.pyfunc.spark_udf`` (batch for
batch: a row's last bit can depend on the Arrow batch it is scored in, since BLAS
kernels treat the last rows of an array apart, in MLflow as here):

* :func:`spark_udf` gives a column function, ``df.withColumn("p", udf(*cols))``: a Spark
  pandas UDF in iterator form. Spark sends it only the argument columns, as pandas
  Series of each Arrow batch.
* :func:`score_dataframe` returns the DataFrame with a prediction column added. For a
  model that takes arrays it runs on Arrow batches: an Arrow UDF (``arrow_udf``, pyspark
  >= 4.1) or ``DataFrame.mapInArrow`` (pyspark 3.3 to 4.0); each batch goes to numpy and
  back to Arrow, and no pandas object is built. For any other model it is
  ``df.withColumn(output_col, spark_udf(...)(*cols))``.

**The numpy path.** Two kinds of model take arrays: a model whose signature is one
unnamed tensor (MLflow itself turns the batch into that array and checks its dtype and
shape), and an MLflow scikit-learn model whose inputs are numeric columns of one dtype
(the estimator turns the DataFrame it is given into that array before anything else).
With ``env_manager="local"``, both functions give such a model the array directly: the
batch's columns stacked into the array the model would have made, with the same dtype
and the same memory layout (column-major, as a pandas block), so the arithmetic is the
same. Each Python worker checks the path on its first batch: it scores that batch both
ways and keeps the numpy path only if the answers are identical, so a model that
refuses arrays (a pipeline that selects columns by name, say) or answers differently
keeps the DataFrame. A batch the path cannot take (a null, another dtype, another
number of columns) goes the DataFrame way; so does every error, which therefore has
MLflow's message.

**Environments.** ``env_manager="local"`` loads the model inside the Spark Python
worker. ``virtualenv``/``uv``/``conda`` run it with the pyfunc runtime: the model runs in
a worker process of its own environment and batches travel to it through shared memory
(no scoring server, no JSON). The environment is built once, on the driver, before any
task runs. With a local master (``local``, ``local[N]``, ``local-cluster[...]``) the
executors run on the driver's machine and use that directory, and a build error fails
``spark_udf`` itself. With a cluster master a virtualenv is packed into a tar archive and
shipped with ``addFile``; each executor unpacks it once and runs its interpreter from
there (a virtualenv runs from any directory as long as its base interpreter is at the
same path, as on a cluster whose machines share one image). An executor of another
platform than the driver's, or where the shipped interpreter does not start, builds the
environment itself and says so in its log; so does every executor when the driver
cannot build it (a warning on the driver). Conda environments hold their absolute path
in many files and are not moved: on a cluster master each machine builds its own.

Executors need pyfunc and pyspark installed, as they need Spark itself. The output
conversion rules (``result_type``) are documented on :func:`spark_udf`.
"""

import atexit
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import uuid
import warnings

from pyfunc.exceptions import InvalidArgumentError

_ENV_MANAGERS = ("local", "virtualenv", "uv", "conda")

_PRIMITIVE_NAMES = "int, long, float, double, string, boolean"


# --- driver side ---------------------------------------------------------------------


def spark_udf(spark, path, run_id=None, result_type="double", *, env_manager="local", params=None):
    """A Spark UDF that scores the pyfunc model at ``path`` (the seed's ``spark_udf``).

    ``path``: a model directory or URI (``runs:/``, ``models:/``, ...); with ``run_id``, a
    path inside that run's artifacts. ``result_type``: a ``pyspark.sql.types.DataType`` or
    a DDL string: ``double`` (default), ``float``, ``int``, ``long``, ``string``,
    ``boolean`` (``bool``), arrays of these (nested arrays too) and structs of these;
    None takes it from the signature's outputs as MLflow does (one output: its type;
    several: a struct; none: ``double``).
    ``env_manager``: ``local`` (in the Spark Python worker) or ``virtualenv``/``uv``/
    ``conda`` (in the model's own environment, through the pyfunc runtime, built once on
    the driver; see the module docstring). ``params``: inference parameters, checked once
    against the signature's params schema.

    Columns passed to the UDF reach the model as a pandas DataFrame whose columns are
    named ``"0"``, ``"1"``, ... — or by the model signature's input names when it has a
    column signature; a single struct column gives its field names. Called with no
    columns, the UDF uses the signature's input names as column names. A model that
    takes arrays (a tensor signature, or an MLflow scikit-learn model over numeric
    columns) is given the array directly, with the same answers (the module docstring's
    "numpy path").

    The prediction becomes the result as follows. A scalar type takes the leftmost
    output column whose values can be represented (``double``/``float``: any numeric;
    ``int``/``long``: integers that fit; ``boolean``: booleans; ``string``: anything,
    nulls kept null). An array type takes each output row (or each list-like value of a
    single output column). A struct type takes each field from the output column of the
    same name. Anything else fails the task with InvalidArgumentError naming the output
    column and both types.

    Returns a function ``udf(*cols)`` giving a Spark Column; ``udf.metadata`` is the
    model's :class:`pyfunc.Model`. InvalidArgumentError for a bad argument,
    NotFoundError for a missing model. To add the prediction to a whole DataFrame with
    Arrow batches going straight to numpy, see :func:`score_dataframe`.
    """
    job, local_dir, metadata = _prepare_job(spark, path, run_id, result_type, env_manager, params)
    return _column_udf(job, local_dir, metadata)


def score_dataframe(df, path, input_cols=None, *, output_col="prediction", result_type="double", run_id=None,
                    env_manager="local", params=None):
    """``df`` with a column ``output_col`` holding the predictions of the pyfunc model at
    ``path``: the answers of ``df.withColumn(output_col, spark_udf(...)(*input_cols))``.

    ``input_cols``: the names of the columns the model is given, matched to the signature
    by position as :func:`spark_udf` matches them; None: the signature's input names.
    ``output_col`` replaces a column of that name, as ``withColumn`` does. ``path``,
    ``run_id``, ``result_type``, ``env_manager`` and ``params`` are :func:`spark_udf`'s.

    When the model takes arrays (a tensor signature, or an MLflow scikit-learn model over
    numeric columns), ``env_manager`` is ``local``, ``result_type`` is ``double``,
    ``float``, ``int``, ``long`` or ``boolean`` and the input columns are top-level
    numeric columns (or, for a tensor, one array column of numbers), it scores Arrow
    batches: each goes to numpy, the model gets the array (see the module docstring's
    numpy path), and the predictions go back as an Arrow column; no pandas object is
    built. On pyspark >= 4.1 that is an Arrow UDF (``pyspark.sql.functions.arrow_udf``)
    added with ``withColumn``: only the input columns go to Python. On pyspark 3.3 to 4.0
    it is ``DataFrame.mapInArrow``, which sends whole rows to Python and back: every
    column of ``df`` crosses twice (where a column UDF sends only its arguments) and
    Spark cannot prune columns through it, so on a wide DataFrame select the inputs and
    a key first. Otherwise (another model, input or result type) it adds
    ``spark_udf(...)(*input_cols)`` with ``withColumn``.

    Use it instead of :func:`spark_udf` to score a model that takes arrays: the answers
    are the same, and Spark does not convert each batch to pandas and back, which is
    most of what a pandas UDF costs once the model is given arrays (see
    bench/spark/README.md). ``spark_udf`` remains the way to get a Column to use in any
    expression.

    InvalidArgumentError for a bad argument (a column name that is not a string, too few
    columns for the signature), NotFoundError for a missing model; an unknown column is
    Spark's AnalysisException.
    """
    from pyspark.sql.types import StructField, StructType

    if not isinstance(output_col, str) or not output_col:
        raise InvalidArgumentError("score_dataframe: output_col must be a column name, not {!r}".format(output_col))
    if isinstance(input_cols, str):
        input_cols = [input_cols]
    cols = tuple(input_cols or ())
    bad = [c for c in cols if not isinstance(c, str)]
    if bad:
        raise InvalidArgumentError(
            "score_dataframe: input_cols must be column names; {!r} is a {} (compute it with withColumn first, "
            "or use spark_udf)".format(bad[0], type(bad[0]).__name__)
        )
    job, local_dir, metadata = _prepare_job(df.sparkSession, path, run_id, result_type, env_manager, params)
    cols = _udf_columns(job, cols, stacklevel=3)
    indices = _arrow_input_indices(job, df.schema, cols) if hasattr(df, "mapInArrow") else None  # pyspark >= 3.3
    if indices is None:
        return df.withColumn(output_col, _column_udf(job, local_dir, metadata)(*cols))
    from pyspark.sql import functions as F

    if hasattr(F, "arrow_udf"):  # pyspark >= 4.1: a column UDF of Arrow arrays
        udf = F.arrow_udf(_make_arrow_udf_function(job), returnType=job.return_type)
        names = df.schema.names
        return df.withColumn(output_col, udf(*[F.col("`{}`".format(names[i].replace("`", "``"))) for i in indices]))
    fields = list(df.schema.fields)
    out_index = _field_index([f.name for f in fields], output_col)
    out_field = StructField(output_col, job.return_type, True)
    if out_index is None:
        fields.append(out_field)
    else:
        fields[out_index] = out_field
    names = [f.name for f in fields]
    return df.mapInArrow(_make_arrow_function(job, indices, out_index, names), StructType(fields))


class _Job:
    """What the executors need to score one model, decided once on the driver."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def _prepare_job(spark, path, run_id, result_type, env_manager, params):
    """Checks the arguments, resolves and ships the model (and, for a non-local
    env_manager, its environment); returns (job, local model directory, Model)."""
    from pyspark.sql.types import StructType

    from pyfunc._flavor import read_pyfunc_mlmodel
    from pyfunc._uri import resolve_model_uri
    from pyfunc.model import Model

    if env_manager not in _ENV_MANAGERS:
        raise InvalidArgumentError(
            "spark_udf: unknown env_manager {!r} (choose {})".format(env_manager, ", ".join(_ENV_MANAGERS))
        )
    local_dir = resolve_model_uri(path, run_id)
    mlmodel = read_pyfunc_mlmodel(local_dir)
    return_type = _infer_result_type(mlmodel) if result_type is None else parse_result_type(result_type)
    params = _validate_params(params, mlmodel)
    input_names, required_names = _signature_input_names(mlmodel)

    try:
        sc = spark.sparkContext
    except Exception:  # Spark Connect sessions raise (PySparkNotImplementedError) or lack it
        sc = None
    if sc is None:
        raise InvalidArgumentError("spark_udf: needs a SparkSession with a SparkContext (Spark Connect is not supported)")
    env_spec = _environment_for_executors(sc, local_dir, env_manager) if env_manager != "local" else None
    job = _Job(
        archive_name=_ship_model(sc, local_dir),
        env_manager=env_manager,
        env_spec=env_spec,
        return_type=return_type,
        is_struct=isinstance(return_type, StructType),
        input_names=input_names,
        required_names=required_names,
        params=params,
        numpy_plan=_numpy_plan(mlmodel, env_manager, params, return_type),
    )
    return job, local_dir, Model.from_dict(mlmodel)


def _column_udf(job, local_dir, metadata):
    from pyspark.sql.functions import pandas_udf

    udf = pandas_udf(_make_udf_function(job), returnType=job.return_type)

    @functools.wraps(udf)
    def udf_with_default_cols(*cols):
        return udf(*_udf_columns(job, cols, stacklevel=3))

    udf_with_default_cols.metadata = metadata
    udf_with_default_cols.model_path = local_dir
    return udf_with_default_cols


def _udf_columns(job, cols, stacklevel):
    """The columns a UDF call gives the model: the signature's input names when ``cols``
    is empty, else ``cols`` checked against the signature (extra ones dropped)."""
    input_names, required_names = job.input_names, job.required_names
    if not cols:
        if input_names is None:
            raise InvalidArgumentError(
                "spark_udf: called with no columns, but the model has no column signature whose input "
                "names could be used; pass the input columns explicitly"
            )
        if len(required_names) != len(input_names):
            raise InvalidArgumentError(
                "spark_udf: called with no columns, but the model signature has optional inputs ({}); "
                "pass the input columns explicitly".format(
                    ", ".join(n for n in input_names if n not in required_names)
                )
            )
        return tuple(input_names)
    # A single column may be a struct whose fields name the inputs: its type is only
    # known on the executors, which check it there (input_frame).
    if input_names is not None and len(cols) > 1:
        if len(cols) < len(required_names):
            raise InvalidArgumentError(
                "spark_udf: model input is missing required columns: the signature has {} required "
                "inputs ({}) but the UDF got {} unnamed column(s); columns are matched to the "
                "signature by position".format(len(required_names), ", ".join(required_names), len(cols))
            )
        if len(cols) > len(input_names):
            warnings.warn(
                "spark_udf: {} columns given, the model signature has {} inputs ({}); the extra "
                "columns are ignored".format(len(cols), len(input_names), ", ".join(input_names)),
                stacklevel=stacklevel,
            )
            cols = cols[: len(input_names)]
    return tuple(cols)


def _field_index(names, name):
    """The index of column ``name`` among ``names``: the exact name, else the one name
    equal to it ignoring case (Spark's default resolution); None if there is none."""
    if name in names:
        return names.index(name)
    folded = [i for i, n in enumerate(names) if n.lower() == name.lower()]
    return folded[0] if len(folded) == 1 else None


def _arrow_input_indices(job, schema, cols):
    """Where ``cols`` are in ``schema`` when score_dataframe can run on mapInArrow with
    them (see score_dataframe), else None."""
    from pyspark.sql import types as T

    if job.numpy_plan is None:
        return None
    names = schema.names
    indices = [_field_index(names, c) for c in cols]
    if any(i is None for i in indices):
        return None  # a nested field or an unknown name: withColumn resolves or refuses it
    numeric = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType)
    types = [schema.fields[i].dataType for i in indices]
    if all(type(t) in numeric for t in types):
        return indices
    if (job.numpy_plan["input"] == "tensor" and len(types) == 1 and isinstance(types[0], T.ArrayType)
            and type(types[0].elementType) in numeric):
        return indices
    return None


def parse_result_type(result_type):
    """A Spark DataType from a DataType or a DDL string; InvalidArgumentError if it is
    not one spark_udf can return."""
    from pyspark.sql.types import DataType, _parse_datatype_string

    if isinstance(result_type, str):
        text = result_type.strip()
        if text.lower() == "bool":
            text = "boolean"
        try:
            parsed = _parse_datatype_string(text)
        except Exception as e:  # pyspark raises ParseException / its own error classes
            raise InvalidArgumentError(
                "spark_udf: result_type {!r} is not a Spark type: {}".format(result_type, str(e).splitlines()[0])
            ) from None
    elif isinstance(result_type, DataType):
        parsed = result_type
    else:
        raise InvalidArgumentError(
            "spark_udf: result_type must be a DDL string or a pyspark DataType, not {}".format(
                type(result_type).__name__
            )
        )
    bad = _unsupported_part(parsed)
    if bad is not None:
        raise InvalidArgumentError(
            "spark_udf: result_type {} is not supported ({} is not allowed); use {}, arrays of them, or "
            "structs of them".format(parsed.simpleString(), bad.simpleString(), _PRIMITIVE_NAMES)
        )
    return parsed


_COLSPEC_TYPES = {
    "boolean": "boolean", "integer": "int", "long": "long", "float": "float", "double": "double", "string": "string",
}
_TENSOR_TYPES = {
    "bool": "boolean", "int8": "int", "int16": "int", "int32": "int", "int64": "long", "uint8": "int",
    "uint16": "int", "uint32": "long", "float16": "float", "float32": "float", "float64": "double", "str": "string",
    "object": "string",
}


def _infer_result_type(mlmodel):
    """result_type=None: the Spark type of the signature's outputs (MLflow's rules, for
    the types spark_udf supports); double without an output schema."""
    from pyspark.sql.types import DoubleType

    signature = mlmodel.get("signature")
    text = signature.get("outputs") if isinstance(signature, dict) else None
    specs = None
    if text:
        try:
            specs = json.loads(text)
        except ValueError as e:
            raise InvalidArgumentError("spark_udf: the model's signature.outputs is not valid JSON: {}".format(e))
    if not specs:
        warnings.warn("spark_udf: no result_type and no output schema in the model signature; using double",
                      stacklevel=4)
        return DoubleType()

    def ddl(spec):
        if spec.get("type") == "tensor":
            tensor = spec.get("tensor-spec") or {}
            base = _TENSOR_TYPES.get(str(tensor.get("dtype")))
            rank = len(tensor.get("shape") or [])
            if base is None or not 1 <= rank <= 2:
                return None
            return "array<" * rank + base + ">" * rank
        return _COLSPEC_TYPES.get(spec.get("type"))

    types = [ddl(spec) for spec in specs]
    if any(t is None for t in types):
        bad = specs[types.index(None)]
        raise InvalidArgumentError(
            "spark_udf: cannot derive a result_type from the model's output schema ({}); pass result_type".format(
                json.dumps(bad)
            )
        )
    if len(types) == 1:
        return parse_result_type(types[0])
    fields = ["`{}`: {}".format(str(spec.get("name", i)).replace("`", "``"), t) for i, (spec, t) in enumerate(zip(specs, types))]
    return parse_result_type("struct<{}>".format(", ".join(fields)))


def _unsupported_part(data_type):
    from pyspark.sql.types import ArrayType, StructType

    if _primitive_kind(data_type) is not None:
        return None
    if isinstance(data_type, ArrayType):
        return _unsupported_part(data_type.elementType)
    if isinstance(data_type, StructType):
        for field in data_type.fields:
            bad = _unsupported_part(field.dataType)
            if bad is not None:
                return bad
        return None if data_type.fields else data_type
    return data_type


def _primitive_kind(data_type):
    from pyspark.sql import types as T

    # exact types: pyspark has no subclasses of these, and a user-defined type must not match
    return {
        T.IntegerType: "int",
        T.LongType: "long",
        T.FloatType: "float",
        T.DoubleType: "double",
        T.StringType: "string",
        T.BooleanType: "boolean",
    }.get(type(data_type))


def _signature_input_names(mlmodel):
    """(names, required names) of a column signature whose inputs are all named, else
    (None, None)."""
    from pyfunc import _schema

    return _schema.column_input_names(mlmodel)


def _validate_params(params, mlmodel):
    """MLflow's params rules, applied once on the driver: without a params schema params
    are ignored (with a warning); with one, unknown keys are dropped (with a warning) and
    missing keys take their defaults."""
    if params is not None and not isinstance(params, dict):
        raise InvalidArgumentError("spark_udf: params must be a dict, not {}".format(type(params).__name__))
    from pyfunc import _schema

    try:
        schema = _schema.parse_params_schema(mlmodel)
    except _schema.SchemaError as e:
        raise InvalidArgumentError("spark_udf: {}".format(e))
    if schema is None:
        if params:
            warnings.warn(
                "spark_udf: params {} ignored: the model signature defines no params schema".format(sorted(params)),
                stacklevel=4,
            )
        return None
    from pyfunc._loading import apply_params_schema

    return apply_params_schema(params, schema, context="spark_udf: ")


_NUMERIC_COLUMN_DTYPES = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32"}
_NUMERIC_TENSOR_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
                          "float32", "float64")
_NUMPY_PATH_RESULTS = ("double", "float", "long", "int", "boolean")


def _numpy_plan(mlmodel, env_manager, params, return_type):
    """How the model can be given arrays (the module docstring's numpy path), as a dict
    for the executors, or None when it cannot:

    {"input": "tensor", "dtype", "shape", "result"}: one unnamed tensor input of a numeric
    dtype and shape (-1,), (-1, 1) or (-1, k); {"input": "columns", "dtypes", "result"}:
    an MLflow scikit-learn model without a signature (dtypes None) or with one of
    required numeric columns. "result" is the primitive result type.
    """
    kind = _primitive_kind(return_type)
    if env_manager != "local" or kind not in _NUMPY_PATH_RESULTS:
        return None
    conf = (mlmodel.get("flavors") or {}).get("python_function") or {}
    if conf.get("model_code_path") or mlmodel.get("is_signature_from_type_hint") is True:
        return None
    from pyfunc import _schema

    try:
        specs = _schema.parse_input_schema(mlmodel)
    except _schema.SchemaError:
        return None
    if specs and any(s.get("type") == "tensor" for s in specs):
        if len(specs) != 1 or specs[0].get("name") is not None:
            return None
        tensor = specs[0].get("tensor-spec") or {}
        dtype, shape = str(tensor.get("dtype")), list(tensor.get("shape") or [])
        if dtype not in _NUMERIC_TENSOR_DTYPES or not all(type(d) is int for d in shape):
            return None
        if shape not in ([-1], [-1, 1]) and not (len(shape) == 2 and shape[0] == -1 and shape[1] > 1):
            return None
        return {"input": "tensor", "dtype": dtype, "shape": shape, "result": kind}
    # The sklearn flavor's predict passes the DataFrame to the estimator, whose first step
    # turns it into an array; params are not the estimator's business, so their rules
    # stay with the DataFrame path.
    if conf.get("loader_module") != "mlflow.sklearn" or params:
        return None
    if not specs:
        return {"input": "columns", "dtypes": None, "result": kind}
    dtypes = [_NUMERIC_COLUMN_DTYPES.get(s.get("type")) for s in specs]
    if any(d is None for d in dtypes) or any(s.get("name") is None or s.get("required", True) is False for s in specs):
        return None
    return {"input": "columns", "dtypes": dtypes, "result": kind}


def _platform_tag():
    return "{}-{}".format(sys.platform, platform.machine())


def _executors_on_this_machine(sc):
    """True for local masters (local, local[N], local-cluster[...]): the executors run on
    the driver's machine and can use an environment where the driver built it."""
    return str(sc.master).startswith("local")


def _environment_for_executors(sc, local_dir, env_manager):
    """Builds (or finds in the runtime's cache) the model's environment on the driver and
    returns how the executors reach it: {"kind", "platform", "root", "python"} for a local
    master, {"kind", "platform", "archive", "python" (relative)} for a virtualenv shipped
    to a cluster, or None when each executor builds its own (conda on a cluster, or a
    driver that could not build it)."""
    from pyfunc import _core

    kind = "conda" if env_manager == "conda" else "virtualenv"
    local_master = _executors_on_this_machine(sc)
    if kind == "conda" and not local_master:
        return None
    try:
        python, root, _, _ = _core.prepare_environment(local_dir, env_manager=env_manager, python=sys.executable,
                                                       quiet=True)
    except Exception as e:
        if local_master:
            raise
        warnings.warn(
            "spark_udf: the model's environment could not be built on the driver ({}: {}); each executor "
            "builds it".format(type(e).__name__, str(e).splitlines()[0] if str(e) else ""),
            stacklevel=4,
        )
        return None
    spec = {"kind": kind, "platform": _platform_tag()}
    if local_master:
        spec.update(root=root, python=python)
    else:
        spec.update(archive=_ship_environment(sc, root), python=os.path.relpath(python, root))
    return spec


_driver_dir = None
_driver_lock = threading.Lock()
_env_archives = {}  # environment root -> its archive on the driver
_env_archives_added = set()  # (Spark application id, archive) already given to addFile


def _driver_temp_dir():
    global _driver_dir
    if _driver_dir is None:
        _driver_dir = tempfile.mkdtemp(prefix="pyfunc-spark-")
        atexit.register(shutil.rmtree, _driver_dir, True)
    return _driver_dir


def _pack(directory, archive):
    # uncompressed: models and environments are mostly binaries, and the archive stays
    # inside the cluster; packing and unpacking time matters more than its size.
    # Symbolic links stay links (a virtualenv's bin/python points at its base interpreter).
    with tarfile.open(archive, "w") as tar:
        for entry in sorted(os.listdir(directory)):
            tar.add(os.path.join(directory, entry), arcname=entry)


def _ship_model(sc, local_dir):
    """Packs ``local_dir`` into a fresh archive, registers it with ``sc.addFile`` and
    returns its file name (unique per call: a model may change between calls)."""
    with _driver_lock:
        directory = _driver_temp_dir()
    name = "pyfunc-model-{}.tar".format(uuid.uuid4().hex)
    archive = os.path.join(directory, name)
    _pack(local_dir, archive)
    sc.addFile(archive)
    return name


def _ship_environment(sc, root):
    """Packs the built environment at ``root`` once per driver process, registers it with
    ``sc.addFile`` once per Spark application, and returns the archive's file name."""
    with _driver_lock:
        archive = _env_archives.get(root)
        if archive is None:
            archive = os.path.join(_driver_temp_dir(), "pyfunc-env-{}-{}.tar".format(
                os.path.basename(root.rstrip("/")), uuid.uuid4().hex[:8]))
            _pack(root, archive)
            _env_archives[root] = archive
        key = (sc.applicationId, archive)
        if key not in _env_archives_added:
            sc.addFile(archive)
            _env_archives_added.add(key)
    return os.path.basename(archive)


# --- executor side -------------------------------------------------------------------

_models = {}
_numpy_paths = {}
_environments = {}
_models_lock = threading.Lock()


def _unpacked_on_executor(archive_name, trusted=False):
    """The directory next to the archive ``archive_name`` in this executor's SparkFiles
    directory, unpacked once per executor (a lock file serializes the Python workers that
    ask at once). ``trusted``: the archive is an environment this application's driver
    packed, whose symbolic links may point outside it (a virtualenv's interpreter)."""
    import fcntl

    from pyspark import SparkFiles

    archive = SparkFiles.get(archive_name)
    target = archive + ".d"
    if os.path.isdir(target):
        return target
    with open(archive + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isdir(target):
            return target
        tmp = tempfile.mkdtemp(prefix=".unpack-", dir=os.path.dirname(archive))
        try:
            with tarfile.open(archive) as tar:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, filter="tar" if trusted else "data")
                else:
                    tar.extractall(tmp)
            os.rename(tmp, target)
        finally:
            if os.path.isdir(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def _load_model_on_executor(archive_name, env_manager, env_spec=None):
    key = (archive_name, env_manager)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            model_dir = _unpacked_on_executor(archive_name)
            if env_manager == "local":
                # The model never leaves this UDF: MLflow's sklearn and PythonModel
                # models load with the built-in loaders, without importing MLflow.
                from pyfunc import _core, _loading

                model = _loading.load_model(model_dir, _core.read_model(model_dir), suppress_warnings=True,
                                            prefer_builtin=True)
            else:
                found = _environment_on_executor(env_spec)
                if found is None:
                    from pyfunc._flavor import load_pyfunc

                    model = load_pyfunc(model_dir, env_manager=env_manager)
                else:
                    model = _load_in_environment(model_dir, env_spec["kind"], *found)
            _models[key] = model
        return model


def _environment_on_executor(env_spec):
    """(root, python) of the environment the driver built, here; None when this executor
    builds its own: no environment from the driver (conda on a cluster), another
    platform than the driver's, or an interpreter that does not start here."""
    if env_spec is None:
        return None
    key = json.dumps(env_spec, sort_keys=True)
    if key in _environments:
        return _environments[key]
    found, reason = None, None
    if env_spec.get("platform") != _platform_tag():
        reason = "it was built for {}, this executor is {}".format(env_spec.get("platform"), _platform_tag())
    else:
        if env_spec.get("archive"):
            root = _unpacked_on_executor(env_spec["archive"], trusted=True)
            python = os.path.join(root, env_spec["python"])
        else:
            root, python = env_spec["root"], env_spec["python"]
        reason = _interpreter_problem(python)
        if reason is None:
            found = (root, python)
    if found is None:
        sys.stderr.write("pyfunc.spark: not using the model environment built on the driver ({}); building it on "
                         "this executor\n".format(reason))
    _environments[key] = found
    return found


def _interpreter_problem(python):
    """None if ``python`` starts; else why not."""
    try:
        run = subprocess.run([python, "-c", "import sys"], capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        return "{}: {}".format(python, e)
    if run.returncode != 0:
        tail = run.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return "{} exits with status {}: {}".format(python, run.returncode, tail[0])
    return None


def _load_in_environment(model_dir, kind, root, python):
    """The model in worker processes of the environment at ``root`` (its interpreter
    ``python``), with the process environment the runtime gives an environment of that
    kind: its bin first on PATH, VIRTUAL_ENV (or CONDA_PREFIX), no PYTHONHOME/PYTHONPATH."""
    from pyfunc import _core, _workers

    updates = {"PATH": os.path.join(root, "bin") + os.pathsep + os.environ.get("PATH", ""),
               "CONDA_PREFIX" if kind == "conda" else "VIRTUAL_ENV": root}
    removed = ("PYTHONHOME", "PYTHONPATH", "__PYVENV_LAUNCHER__")
    saved = {k: os.environ.get(k) for k in list(updates) + list(removed)}
    # The runtime takes the worker's environment from this process's at load time (and
    # keeps it for the workers it restarts); the Spark Python worker's own is restored.
    try:
        for k in removed:
            os.environ.pop(k, None)
        os.environ.update(updates)
        native = _core.NativeModel.load(model_dir, env_manager="local", workers=1, python=python,
                                        predict_timeout=60.0, quiet=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return _workers.RemotePyFuncModel(native)


def _numpy_path_on_executor(job, model):
    if job.numpy_plan is None:
        return None
    key = (job.archive_name, job.env_manager, job.numpy_plan["result"])
    with _models_lock:
        path = _numpy_paths.get(key)
        if path is None:
            path = _numpy_paths[key] = _NumpyPath(job.numpy_plan, model, job.params)
        return path


class _NumpyPath:
    """Gives a model that takes arrays its array directly (the module docstring's numpy
    path), for one model in one Python worker.

    ``matrix_of_series`` / ``matrix_of_arrow`` make the array of one batch, or None when
    the batch must go the DataFrame way. ``values(matrix, rows, general)`` returns the
    Spark values of the batch: a numpy array from the model's prediction on ``matrix``,
    or what ``general()`` (the DataFrame path) returns. On the first batch it returns
    ``general()`` and keeps the path only if the array's answers are the same.
    """

    def __init__(self, plan, model, params):
        import numpy as np

        self.result = plan["result"]
        self.model = model
        self.params = params
        self.columns = plan["input"] == "columns"
        self.dtypes = [np.dtype(d) for d in plan["dtypes"]] if self.columns and plan["dtypes"] else None
        self.tensor_dtype = None if self.columns else np.dtype(plan["dtype"])
        self.shape = tuple(plan.get("shape") or ())
        self.state = None  # None: not checked yet; True: checked; False: the DataFrame path only

    def matrix_of_series(self, args):
        import numpy as np
        import pandas as pd

        if self.state is False:
            return None
        if any(not isinstance(a, pd.Series) or not isinstance(a.dtype, np.dtype) for a in args):
            return None
        return self.matrix([a.to_numpy() for a in args])

    def matrix_of_arrow(self, arrays):
        import pyarrow as pa

        if self.state is False or any(a.null_count for a in arrays):
            return None
        if len(arrays) == 1 and (pa.types.is_list(arrays[0].type) or pa.types.is_large_list(arrays[0].type)):
            return self._matrix_of_lists(arrays[0])
        if not all(pa.types.is_integer(a.type) or pa.types.is_floating(a.type) for a in arrays):
            return None
        return self.matrix([a.to_numpy(zero_copy_only=False) for a in arrays])

    def matrix(self, arrays):
        """The array the model makes of these columns (1-D numpy arrays), or None."""
        import numpy as np

        if not arrays or any(a.dtype.kind not in "iuf" for a in arrays):
            return None
        if self.columns:
            dtype = arrays[0].dtype  # one dtype: pandas would find a common one
            if any(a.dtype != dtype for a in arrays):
                return None
            if self.dtypes is not None and (len(arrays) != len(self.dtypes) or any(d != dtype for d in self.dtypes)):
                return None  # the signature would convert or refuse these columns
            return _stacked(arrays, dtype)
        if self.shape in ((-1,), (-1, 1)):  # one column, cast to the tensor's dtype as MLflow casts it
            return np.array(arrays[0], dtype=self.tensor_dtype).reshape(self.shape) if len(arrays) == 1 else None
        if len(arrays) != self.shape[1] or any(a.dtype != self.tensor_dtype for a in arrays):
            return None
        return _stacked(arrays, self.tensor_dtype)

    def _matrix_of_lists(self, array):
        """One array column of a (-1, k) tensor: what np.vstack makes of its rows."""
        import numpy as np
        import pyarrow as pa

        if self.columns or len(self.shape) != 2:
            return None
        width = self.shape[1]
        offsets = array.offsets.to_numpy()
        if len(offsets) != len(array) + 1 or (np.diff(offsets) != width).any():
            return None
        values = array.flatten()
        if values.null_count or not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
            return None
        flat = values.to_numpy(zero_copy_only=False)
        if flat.dtype != self.tensor_dtype:
            return None
        return np.array(flat).reshape(len(array), width)  # a writable copy, as vstack's

    def values(self, matrix, rows, general):
        if self.state is None:
            expected = general()
            try:
                got = self._predict(matrix, rows)
            except Exception:
                got = None
            self.state = got is not None and _same_values(got, expected)
            return expected
        try:
            got = self._predict(matrix, rows)
        except Exception:
            got = None  # the DataFrame path raises the model's error as MLflow's path does
        return general() if got is None else got

    def _predict(self, matrix, rows):
        if self.columns:
            # An estimator fitted on a DataFrame warns when it is given an array; the
            # array is the one it would have made of that DataFrame.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                prediction = self.model._predict_fn(matrix)
        elif self.params is not None:
            prediction = self.model.predict(matrix, self.params)
        else:
            prediction = self.model.predict(matrix)
        return _fast_values(prediction, self.result, rows)


def _stacked(arrays, dtype):
    """The 2-D array DataFrame.to_numpy makes of these columns: a row per value, in
    column-major order, since a DataFrame keeps a block of same-typed columns as rows."""
    import numpy as np

    out = np.empty((len(arrays), len(arrays[0])), dtype=dtype)
    for i, a in enumerate(arrays):
        out[i] = a
    return out.T


def _fast_values(prediction, kind, rows):
    """An ndarray prediction as the numpy values of primitive result type ``kind`` (the
    rules of convert_prediction), or None when it takes convert_prediction."""
    import numpy as np

    if not isinstance(prediction, np.ndarray) or prediction.dtype.kind not in "biuf":
        return None
    if prediction.ndim == 2 and prediction.shape[1] >= 1:
        prediction = np.ascontiguousarray(prediction[:, 0])  # the leftmost column
    if prediction.ndim != 1 or len(prediction) != rows:
        return None
    dk = prediction.dtype.kind
    if kind in ("double", "float"):
        return prediction.astype(_NUMPY_OF[kind], copy=False) if dk in "iuf" else None
    if kind in ("int", "long"):
        if dk not in "iu":
            return None
        if len(prediction):
            low, high = _INT_RANGE[kind]
            if int(prediction.min()) < low or int(prediction.max()) > high:
                return None
        return prediction.astype(_NUMPY_OF[kind], copy=False)
    if kind == "boolean":
        return prediction if dk == "b" else None
    return None


def _same_values(got, expected):
    import numpy as np
    import pandas as pd

    if not isinstance(expected, pd.Series) or expected.dtype != got.dtype or len(expected) != len(got):
        return False
    return bool(np.array_equal(got, expected.to_numpy(), equal_nan=got.dtype.kind == "f"))


def _predict_frame(model, job, args, rows):
    """The DataFrame path for one batch of UDF arguments: the Spark values (pandas)."""
    pdf = input_frame(args, job.input_names, job.required_names)
    prediction = model.predict(pdf, job.params) if job.params is not None else model.predict(pdf)
    return convert_prediction(prediction, job.return_type, rows)


def _make_udf_function(job):
    from typing import Iterator, Tuple, Union

    import pandas as pd

    def score(iterator):
        model = _load_model_on_executor(job.archive_name, job.env_manager, job.env_spec)
        numpy_path = _numpy_path_on_executor(job, model)
        for batch in iterator:
            args = (batch,) if isinstance(batch, (pd.Series, pd.DataFrame)) else tuple(batch)
            rows = len(args[0])
            if rows == 0:
                yield empty_result(job.return_type, job.is_struct)
                continue
            general = functools.partial(_predict_frame, model, job, args, rows)
            matrix = numpy_path.matrix_of_series(args) if numpy_path is not None else None
            if matrix is None:
                yield general()
                continue
            values = numpy_path.values(matrix, rows, general)
            yield pd.Series(values) if not isinstance(values, (pd.Series, pd.DataFrame)) else values

    if job.is_struct:

        def udf_fn(iterator: Iterator[Tuple[Union[pd.Series, pd.DataFrame], ...]]) -> Iterator[pd.DataFrame]:
            return score(iterator)

    else:

        def udf_fn(iterator: Iterator[Tuple[Union[pd.Series, pd.DataFrame], ...]]) -> Iterator[pd.Series]:
            return score(iterator)

    return udf_fn


def _arrow_type(kind):
    import pyarrow as pa

    return {"double": pa.float64, "float": pa.float32, "int": pa.int32, "long": pa.int64,
            "boolean": pa.bool_}[kind]()


def _arrow_values(model, numpy_path, job, arrays, arrow_type):
    """The prediction column (a pyarrow Array) of one batch of Arrow input columns."""
    import numpy as np
    import pyarrow as pa

    rows = len(arrays[0])
    if rows == 0:
        return pa.array([], type=arrow_type)
    general = functools.partial(_predict_arrow, model, job, arrays, rows)
    matrix = numpy_path.matrix_of_arrow(arrays)
    out = general() if matrix is None else numpy_path.values(matrix, rows, general)
    if isinstance(out, np.ndarray):
        return pa.array(out, type=arrow_type, from_pandas=True)  # NaN: null, as Spark makes of a pandas UDF's NaN
    return pa.Array.from_pandas(out, type=arrow_type)


def _make_arrow_function(job, indices, out_index, names):
    """score_dataframe's mapInArrow function: each record batch with the prediction
    column appended (or put at ``out_index``)."""

    def score_batches(batches):
        import pyarrow as pa

        model = _load_model_on_executor(job.archive_name, job.env_manager, job.env_spec)
        numpy_path = _numpy_path_on_executor(job, model)
        arrow_type = _arrow_type(job.numpy_plan["result"])
        for batch in batches:
            values = _arrow_values(model, numpy_path, job, [batch.column(i) for i in indices], arrow_type)
            columns = list(batch.columns)
            if out_index is None:
                columns.append(values)
            else:
                columns[out_index] = values
            yield pa.RecordBatch.from_arrays(columns, names=names)

    return score_batches


def _make_arrow_udf_function(job):
    """score_dataframe's Arrow UDF (pyspark >= 4.1): the prediction column of each batch
    of its argument columns."""
    from typing import Iterator, Tuple

    import pyarrow as pa

    def score_arrays(iterator: Iterator[Tuple[pa.Array, ...]]) -> Iterator[pa.Array]:
        model = _load_model_on_executor(job.archive_name, job.env_manager, job.env_spec)
        numpy_path = _numpy_path_on_executor(job, model)
        arrow_type = _arrow_type(job.numpy_plan["result"])
        for arrays in iterator:
            yield _arrow_values(model, numpy_path, job, [arrays] if isinstance(arrays, pa.Array) else list(arrays),
                                arrow_type)

    return score_arrays


def _predict_arrow(model, job, arrays, rows):
    """The DataFrame path for Arrow columns, converted to pandas as Spark converts a
    pandas UDF's numeric and array arguments."""
    return _predict_frame(model, job, tuple(a.to_pandas() for a in arrays), rows)


def input_frame(args, input_names, required_names=()):
    """The model's input DataFrame of one batch of UDF arguments (see spark_udf)."""
    import pandas as pd

    if len(args) == 1 and isinstance(args[0], pd.DataFrame):
        return args[0]
    if input_names is not None:
        if len(args) < len(required_names):
            raise InvalidArgumentError(
                "spark_udf: model input is missing required columns: the signature has {} required inputs ({}) "
                "but the UDF got {} unnamed column(s)".format(len(required_names), ", ".join(required_names), len(args))
            )
        names = input_names[: len(args)]
    else:
        names = [str(i) for i in range(len(args))]
    data = {}
    for name, arg in zip(names, args):
        if isinstance(arg, pd.DataFrame):  # a struct column among several: a column of dicts
            arg = pd.Series(arg.to_dict(orient="records"), index=arg.index)
        data[name] = arg
    return pd.DataFrame(data, columns=names)


def empty_result(return_type, is_struct):
    import pandas as pd

    if is_struct:
        return pd.DataFrame({f.name: pd.Series([], dtype=object) for f in return_type.fields})
    return pd.Series([], dtype=object)


# --- prediction -> Spark values ------------------------------------------------------


class _Incompatible(Exception):
    """A column whose values cannot be represented as the requested type (the reason)."""


_NUMPY_OF = {"double": "float64", "float": "float32", "int": "int32", "long": "int64"}
_INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def _describe(series):
    import pandas as pd

    dtype = str(series.dtype)
    if dtype == "object":
        kinds = sorted({type(v).__name__ for v in series.head(100) if v is not None and not _is_nan(v)})
        if kinds:
            dtype += " of " + "/".join(kinds)
    sample = series.dropna().head(1) if not isinstance(series.dtype, pd.CategoricalDtype) else series.head(1)
    if len(sample):
        dtype += ", e.g. " + _short_repr(sample.iloc[0])
    return dtype


def _short_repr(value):
    import numpy as np

    if isinstance(value, np.generic):  # numpy 2 reprs scalars as np.float64(...)
        value = value.item()
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_nan(v):
    return isinstance(v, float) and v != v


def convert_prediction(prediction, return_type, rows):
    """The pandas Series (or DataFrame, for a struct) that Spark receives for one batch
    of ``rows`` rows whose model output is ``prediction``."""
    from pyspark.sql.types import ArrayType, StructType

    frame = _output_frame(prediction)
    if len(frame) != rows:
        raise InvalidArgumentError(
            "spark_udf: the model returned {} prediction(s) for a batch of {} row(s)".format(len(frame), rows)
        )
    if isinstance(return_type, StructType):
        return _struct_frame(frame, return_type)
    if isinstance(return_type, ArrayType):
        return _array_series(frame, return_type)
    kind = _primitive_kind(return_type)
    reasons = []
    for name in frame.columns:
        try:
            return _convert_column(frame[name], kind)
        except _Incompatible as e:
            reasons.append("column '{}' ({}): {}".format(name, _describe(frame[name]), e))
    raise InvalidArgumentError(
        "spark_udf: the model's output cannot be returned as result_type {}: {}".format(
            return_type.simpleString(), "; ".join(reasons)
        )
    )


def _output_frame(prediction):
    """Any model output as a DataFrame with string column names."""
    import numpy as np
    import pandas as pd

    if isinstance(prediction, pd.DataFrame):
        frame = prediction
    elif isinstance(prediction, pd.Series):
        frame = prediction.to_frame(name=prediction.name if prediction.name is not None else 0)
    elif isinstance(prediction, dict):
        frame = pd.DataFrame({k: list(v) if not np.isscalar(v) else [v] for k, v in prediction.items()})
    elif isinstance(prediction, np.ndarray):
        if prediction.ndim == 0:
            frame = pd.DataFrame({0: [prediction.item()]})
        elif prediction.ndim == 1:
            frame = pd.DataFrame({0: prediction})
        elif prediction.ndim == 2:
            frame = pd.DataFrame(prediction)
        else:
            frame = pd.DataFrame({0: list(prediction)})
    elif isinstance(prediction, (list, tuple)):
        frame = pd.DataFrame({0: list(prediction)}) if _has_list_items(prediction) else pd.DataFrame(prediction)
    elif np.isscalar(prediction) or prediction is None:
        frame = pd.DataFrame({0: [prediction]})
    else:
        raise InvalidArgumentError(
            "spark_udf: the model returned a {}, which is not a prediction spark_udf can use "
            "(expected a DataFrame, Series, ndarray, list or dict)".format(type(prediction).__name__)
        )
    frame = frame.reset_index(drop=True)
    if not all(isinstance(c, str) for c in frame.columns):
        frame.columns = [str(c) for c in frame.columns]
    return frame


def _has_list_items(values):
    import numpy as np

    for v in values[:1]:
        return isinstance(v, (list, tuple, np.ndarray))
    return False


def _convert_column(series, kind):
    """One output column as Spark values of primitive ``kind``; _Incompatible if its
    values cannot be represented."""
    import numpy as np
    import pandas as pd
    from pandas.api import types as pt

    dtype = series.dtype
    if kind == "string":
        # Built as an object array: pandas >= 3 would make a Series of strings its "str"
        # dtype, in which a null is NaN, not None.
        nulls = series.isna().to_numpy()
        values = series.to_numpy(dtype=object)
        out = values.copy() if pt.is_string_dtype(dtype) else np.array([str(v) for v in values], dtype=object)
        out[nulls] = None
        return pd.Series(out, index=series.index, dtype=object)
    if kind == "boolean":
        if pt.is_bool_dtype(dtype):
            return series.astype("boolean") if series.isna().any() else series.astype(bool)
        if dtype == object and pd.api.types.infer_dtype(series, skipna=True) in ("boolean", "empty"):
            return series.astype("boolean")
        raise _Incompatible("not booleans")
    if pt.is_bool_dtype(dtype):
        raise _Incompatible("booleans are not numbers; use result_type boolean")
    if dtype == object or isinstance(dtype, pd.StringDtype):  # pandas >= 3: strings are "str"
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if inferred in ("integer", "empty") or (inferred in ("floating", "mixed-integer-float", "decimal") and kind in ("double", "float")):
            series = pd.to_numeric(series)
            dtype = series.dtype
        else:
            raise _Incompatible("values of inferred type {} are not numbers".format(inferred))
    if not pt.is_numeric_dtype(dtype):
        raise _Incompatible("not numbers")
    if kind in ("double", "float"):
        return pd.Series(series.to_numpy(dtype=_NUMPY_OF[kind], na_value=np.nan), index=series.index)
    if not pt.is_integer_dtype(dtype):
        raise _Incompatible("floating-point values cannot become {} without loss; use result_type double".format(kind))
    if len(series):
        low, high = _INT_RANGE[kind]
        mn, mx = series.min(), series.max()
        if (mn is not pd.NA and int(mn) < low) or (mx is not pd.NA and int(mx) > high):
            raise _Incompatible("values out of the range of {} ({}..{})".format(kind, int(mn), int(mx)))
    if series.isna().any():
        return series.astype("Int32" if kind == "int" else "Int64")
    return series.astype(_NUMPY_OF[kind])


def _array_series(frame, return_type):
    """array<...> results: each row of the output, or each value of a single column of
    list-likes."""
    import numpy as np
    import pandas as pd
    from pyspark.sql.types import ArrayType

    element = return_type.elementType
    if len(frame.columns) == 1 and frame.dtypes.iloc[0] == object and _has_list_items(frame.iloc[:, 0].dropna().tolist()):
        column = frame.iloc[:, 0]
        return pd.Series([_array_value(v, return_type, column.name) for v in column], dtype=object)
    if isinstance(element, ArrayType) or _primitive_kind(element) is None:
        raise InvalidArgumentError(
            "spark_udf: result_type {} needs the model to return one column of nested lists; it returned "
            "columns {}".format(return_type.simpleString(), ", ".join(
                "'{}' ({})".format(c, _describe(frame[c])) for c in frame.columns))
        )
    kind = _primitive_kind(element)
    columns, reasons = [], []
    for name in frame.columns:
        try:
            columns.append(_convert_column(frame[name], kind))
        except _Incompatible as e:
            reasons.append("column '{}' ({}): {}".format(name, _describe(frame[name]), e))
    if not columns:
        raise InvalidArgumentError(
            "spark_udf: the model's output cannot be returned as result_type {}: {}".format(
                return_type.simpleString(), "; ".join(reasons)
            )
        )
    if all(c.dtype != object and not pd.api.types.is_extension_array_dtype(c.dtype) for c in columns):
        matrix = np.column_stack([c.to_numpy() for c in columns])
        return pd.Series(list(matrix), dtype=object)
    return pd.Series([list(row) for row in zip(*(c.tolist() for c in columns))], dtype=object)


def _array_value(value, array_type, column):
    """One list-like output value as a Spark array of ``array_type`` (None/NaN: null)."""
    import numpy as np
    import pandas as pd
    from pyspark.sql.types import ArrayType, StructType

    if value is None or _is_nan(value):
        return None
    element = array_type.elementType
    if isinstance(element, ArrayType):
        return [_array_value(v, element, column) for v in value]
    if isinstance(element, StructType):
        return [_struct_value(v, element, column) for v in value]
    kind = _primitive_kind(element)
    try:
        return _convert_column(pd.Series(list(value) if not isinstance(value, np.ndarray) else value), kind).tolist()
    except _Incompatible as e:
        raise InvalidArgumentError(
            "spark_udf: the model's output column '{}' has a value {} that cannot be returned as {}: {}".format(
                column, _short_repr(value), array_type.simpleString(), e
            )
        ) from None


def _struct_value(value, struct_type, column):
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidArgumentError(
            "spark_udf: the model's output column '{}' has a value {} where a {} (a dict) was expected".format(
                column, _short_repr(value), struct_type.simpleString()
            )
        )
    return {f.name: value.get(f.name) for f in struct_type.fields}


def _struct_frame(frame, struct_type):
    """struct<...> results: each field from the output column of that name."""
    import pandas as pd
    from pyspark.sql.types import ArrayType, StructType

    out = {}
    for field in struct_type.fields:
        if field.name not in frame.columns:
            if len(struct_type.fields) == 1 and len(frame.columns) == 1:
                column = frame.iloc[:, 0]  # an unnamed single output fills a single field
            else:
                raise InvalidArgumentError(
                    "spark_udf: result_type {} has field '{}', but the model's output has no column of that "
                    "name (its columns: {})".format(
                        struct_type.simpleString(), field.name, ", ".join("'{}'".format(c) for c in frame.columns)
                    )
                )
        else:
            column = frame[field.name]
        ftype = field.dataType
        if isinstance(ftype, ArrayType):
            out[field.name] = pd.Series([_array_value(v, ftype, field.name) for v in column], dtype=object)
        elif isinstance(ftype, StructType):
            out[field.name] = pd.Series([_struct_value(v, ftype, field.name) for v in column], dtype=object)
        else:
            try:
                out[field.name] = _convert_column(column, _primitive_kind(ftype)).reset_index(drop=True)
            except _Incompatible as e:
                raise InvalidArgumentError(
                    "spark_udf: the model's output column '{}' ({}) cannot be returned as struct field {}: {}: {}".format(
                        column.name, _describe(column), field.name, ftype.simpleString(), e
                    )
                ) from None
    return pd.DataFrame(out)
