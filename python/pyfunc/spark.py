"""``spark_udf``: scores a pyfunc model on Apache Spark.

The driver resolves the model URI to a local directory, packs it into a tar archive and
ships it with ``SparkContext.addFile``; nothing assumes a filesystem shared by the driver
and the executors. The UDF is a Spark pandas UDF in iterator form over Arrow batches:
each Python worker fetches the archive with ``SparkFiles.get``, unpacks it once per
executor, loads the model once per worker process and keeps it in a module-level cache
(keyed by the archive and the environment manager) for every later batch and task.

``env_manager="local"`` loads the model inside the Spark Python worker. Any other
manager (``virtualenv``, ``uv``, ``conda``) loads it with the pyfunc runtime: the model
runs in a worker process of its own environment (built once per machine, cached by the
runtime) and batches travel to it through shared memory — no scoring server, no JSON.

Executors need pyfunc and pyspark installed, as they need Spark itself. The output
conversion rules (``result_type``) are documented on :func:`spark_udf`.
"""

import atexit
import functools
import json
import os
import shutil
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
    ``conda`` (in the model's own environment, through the pyfunc runtime). ``params``:
    inference parameters, checked once against the signature's params schema.

    Columns passed to the UDF reach the model as a pandas DataFrame whose columns are
    named ``"0"``, ``"1"``, ... — or by the model signature's input names when it has a
    column signature; a single struct column gives its field names. Called with no
    columns, the UDF uses the signature's input names as column names.

    The prediction becomes the result as follows. A scalar type takes the leftmost
    output column whose values can be represented (``double``/``float``: any numeric;
    ``int``/``long``: integers that fit; ``boolean``: booleans; ``string``: anything,
    nulls kept null). An array type takes each output row (or each list-like value of a
    single output column). A struct type takes each field from the output column of the
    same name. Anything else fails the task with InvalidArgumentError naming the output
    column and both types.

    Returns a function ``udf(*cols)`` giving a Spark Column; ``udf.metadata`` is the
    model's :class:`pyfunc.Model`. InvalidArgumentError for a bad argument,
    NotFoundError for a missing model.
    """
    from pyspark.sql.functions import pandas_udf
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
    if env_manager != "local" and str(sc.master).startswith("local"):
        # Executors share this machine: build the environment once here, so that a build
        # error fails fast on the driver and tasks do not all wait on the same build.
        _prepare_environment(local_dir, env_manager)
    archive_name = _ship_model(sc, local_dir)

    is_struct = isinstance(return_type, StructType)
    udf_fn = _make_udf_function(
        archive_name, env_manager, return_type, input_names, required_names, params, is_struct
    )
    udf = pandas_udf(udf_fn, returnType=return_type)
    metadata = Model.from_dict(mlmodel)

    @functools.wraps(udf)
    def udf_with_default_cols(*cols):
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
            return udf(*input_names)
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
                    stacklevel=2,
                )
                cols = cols[: len(input_names)]
        return udf(*cols)

    udf_with_default_cols.metadata = metadata
    udf_with_default_cols.model_path = local_dir
    return udf_with_default_cols


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
                      stacklevel=3)
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
                stacklevel=3,
            )
        return None
    from pyfunc._loading import apply_params_schema

    return apply_params_schema(params, schema, context="spark_udf: ")


def _prepare_environment(local_dir, env_manager):
    """Builds (or finds in the runtime's cache) the model's environment."""
    import sys

    from pyfunc import _core

    _core.prepare_environment(local_dir, env_manager=env_manager, python=sys.executable, quiet=True)


_driver_dir = None
_driver_lock = threading.Lock()


def _ship_model(sc, local_dir):
    """Packs ``local_dir`` into a fresh archive, registers it with ``sc.addFile`` and
    returns its file name (unique per call: a model may change between calls)."""
    global _driver_dir
    with _driver_lock:
        if _driver_dir is None:
            _driver_dir = tempfile.mkdtemp(prefix="pyfunc-spark-")
            atexit.register(shutil.rmtree, _driver_dir, True)
    name = "pyfunc-model-{}.tar".format(uuid.uuid4().hex)
    archive = os.path.join(_driver_dir, name)
    with tarfile.open(archive, "w") as tar:
        # uncompressed: models are mostly pickles and binaries, and the archive stays
        # inside the cluster; packing and unpacking time matters more than its size
        for entry in sorted(os.listdir(local_dir)):
            tar.add(os.path.join(local_dir, entry), arcname=entry)
    sc.addFile(archive)
    return name


# --- executor side -------------------------------------------------------------------

_models = {}
_models_lock = threading.Lock()


def _model_dir_on_executor(archive_name):
    """The unpacked model directory next to the archive in this executor's SparkFiles
    directory, unpacked once per executor (rename makes concurrent workers safe)."""
    from pyspark import SparkFiles

    archive = SparkFiles.get(archive_name)
    target = archive + ".d"
    if os.path.isdir(target):
        return target
    tmp = tempfile.mkdtemp(prefix=".unpack-", dir=os.path.dirname(archive))
    try:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:
                tar.extractall(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not os.path.isdir(target):
                raise
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _load_model_on_executor(archive_name, env_manager):
    key = (archive_name, env_manager)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            model_dir = _model_dir_on_executor(archive_name)
            if env_manager == "local":
                # The model never leaves this UDF: MLflow's sklearn and PythonModel
                # models load with the built-in loaders, without importing MLflow.
                from pyfunc import _core, _loading

                model = _loading.load_model(model_dir, _core.read_model(model_dir), suppress_warnings=True,
                                            prefer_builtin=True)
            else:
                from pyfunc._flavor import load_pyfunc

                model = load_pyfunc(model_dir, env_manager=env_manager)
            _models[key] = model
        return model


def _make_udf_function(archive_name, env_manager, return_type, input_names, required_names, params, is_struct):
    from typing import Iterator, Tuple, Union

    import pandas as pd

    def score(iterator):
        model = _load_model_on_executor(archive_name, env_manager)
        for batch in iterator:
            args = (batch,) if isinstance(batch, (pd.Series, pd.DataFrame)) else tuple(batch)
            rows = len(args[0])
            if rows == 0:
                yield empty_result(return_type, is_struct)
                continue
            pdf = input_frame(args, input_names, required_names)
            prediction = model.predict(pdf, params) if params is not None else model.predict(pdf)
            yield convert_prediction(prediction, return_type, rows)

    if is_struct:

        def udf_fn(iterator: Iterator[Tuple[Union[pd.Series, pd.DataFrame], ...]]) -> Iterator[pd.DataFrame]:
            return score(iterator)

    else:

        def udf_fn(iterator: Iterator[Tuple[Union[pd.Series, pd.DataFrame], ...]]) -> Iterator[pd.Series]:
            return score(iterator)

    return udf_fn


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
