"""Input-schema enforcement of ``PyFuncModel.predict``, as MLflow's ``_enforce_schema``.

A model whose signature has column-based inputs gets a DataFrame of exactly the
signature's columns, in its order, each of the signature's type where the conversion is
safe; anything else is an error naming the column. Tensor-based inputs are checked for
dtype and shape and never converted. Runs in a worker process, so it uses only the
standard library, numpy and pandas (Python >= 3.8).

Fast path: a DataFrame whose columns already are the signature's, with the right
dtypes, is returned as is (what ``pyfunc serve`` and ``pyfunc predict`` hand a worker,
having cast the data while parsing it).
"""

import json
import warnings

# MLflow's column types and the numpy dtype each one is held in.
_NUMPY_NAMES = {
    "boolean": "bool",
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "string": "object",
    "binary": "object",
    "datetime": "datetime64[ns]",
}


class SchemaError(ValueError):
    """The input does not fit the model's input signature (MLflow's INVALID_PARAMETER_VALUE)."""


def _signature_part(metadata, part):
    """The parsed JSON of ``signature.<part>`` of an MLmodel dict (text or already
    parsed), or None when absent; SchemaError when it is not valid JSON."""
    signature = metadata.get("signature") if isinstance(metadata, dict) else None
    text = signature.get(part) if isinstance(signature, dict) else None
    if not text:
        return None
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError as e:
        raise SchemaError("signature.{}: not valid JSON: {}".format(part, e))


def parse_input_schema(metadata):
    """The list of input specs of an MLmodel's signature, or None when it has none."""
    specs = _signature_part(metadata, "inputs")
    if specs is None:
        return None
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise SchemaError("signature.inputs: expected a list of column or tensor specs")
    return specs or None


def column_input_names(metadata):
    """(names, required names) of a signature whose inputs are all named columns, else
    (None, None): the columns a caller (spark_udf) may pass by position."""
    try:
        specs = parse_input_schema(metadata)
    except SchemaError:
        return None, None
    if not specs or not all(s.get("name") is not None and s.get("type") != "tensor" for s in specs):
        return None, None
    return [str(s["name"]) for s in specs], [str(s["name"]) for s in specs if s.get("required", True)]


def parse_params_schema(metadata):
    """The list of param specs ({name, type, default, shape}) of an MLmodel's signature,
    or None when it has none. SchemaError when signature.params is not valid JSON."""
    schema = _signature_part(metadata, "params")
    if schema is None:
        return None
    if not isinstance(schema, list):
        raise SchemaError("signature.params: expected a list of param specs")
    return [spec for spec in schema if isinstance(spec, dict) and "name" in spec]


def _schema_repr(specs):
    parts = []
    for s in specs:
        t = s.get("type")
        if t == "tensor":
            spec = s.get("tensor-spec") or {}
            desc = "Tensor('{}', {})".format(spec.get("dtype"), tuple(spec.get("shape") or ()))
        else:
            desc = str(t)
        if s.get("name") is not None:
            desc = "'{}': {}".format(s["name"], desc)
        desc += " (required)" if s.get("required", True) else " (optional)"
        parts.append(desc)
    return "[" + ", ".join(parts) + "]"


def enforce(data, specs):
    """``data`` under the input specs (see the module docstring); SchemaError
    naming the problem when it does not fit."""
    if not specs:
        return data
    if any(s.get("type") == "tensor" for s in specs):
        return _enforce_tensors(data, specs)
    return _enforce_columns(data, specs)


def enforce_input_schema(data, specs):
    """``enforce`` with MLflow's message around its errors: "Failed to enforce schema of
    data '...' with schema '...'. Error: ..."."""
    try:
        return enforce(data, specs)
    except SchemaError as e:
        text = repr(data)
        if len(text) > 200:
            text = text[:200] + "..."
        raise SchemaError("Failed to enforce schema of data '{}' with schema '{}'. Error: {}".format(
            text, _schema_repr(specs), e)) from None


# --- column-based ------------------------------------------------------------------


def narrow_wire_types(df, specs):
    """``df`` with int64 columns cast to int32 where the signature says ``integer``, and
    float64 to float32 where it says ``float``: the Table a worker receives holds only
    64-bit numbers, and MLflow's scoring server casts request columns to the signature's
    types (``astype``) before enforcing it. The same object when nothing changes."""
    import numpy as np

    if specs and all(s.get("type") == "tensor" for s in specs):
        return _narrow_to_tensors(np, df, specs)
    if not specs or any(s.get("type") == "tensor" or s.get("name") is None for s in specs):
        return df
    narrow = {str(s["name"]): s.get("type") for s in specs if s.get("type") in ("integer", "float")}
    if not narrow:
        return df
    casts = {}
    for column, dtype in zip(df.columns, df.dtypes.tolist()):
        t = narrow.get(str(column))
        if t == "integer" and dtype == np.dtype("int64"):
            casts[column] = np.int32
        elif t == "float" and dtype == np.dtype("float64"):
            casts[column] = np.float32
    return df.astype(casts) if casts else df


def _narrow_to_tensors(np, df, specs):
    """``df``'s numeric columns cast to the tensor specs' numeric dtypes, as MLflow's
    scoring server reads request data with ``np.array(data, dtype=<the spec's dtype>)``:
    JSON numbers for a float32 tensor become float32 (an unnamed spec applies to every
    column, a named one to its column)."""
    unnamed = len(specs) == 1 and specs[0].get("name") is None
    wanted = {}
    for spec in specs:
        dtype, _ = _tensor_spec(np, spec)
        if dtype.kind in "biuf":
            wanted[None if unnamed else str(spec.get("name"))] = dtype
    if not wanted:
        return df
    casts = {}
    for column, dtype in zip(df.columns, df.dtypes.tolist()):
        want = wanted.get(None if unnamed else str(column))
        if want is not None and dtype != want and getattr(dtype, "kind", "O") in "biuf":
            casts[column] = want
    return df.astype(casts) if casts else df


def fits_input_schema(df, specs):
    """True when ``enforce_input_schema`` would return the DataFrame ``df`` as it is: a
    named column signature, exactly its columns in its order, each of its dtype."""
    import numpy as np
    import pandas as pd

    if not specs or any(s.get("type") == "tensor" or s.get("name") is None for s in specs):
        return False
    names = [str(s["name"]) for s in specs]
    if [str(c) for c in df.columns] != names:
        return False
    return all(_dtype_ok(np, pd, t, s.get("type")) for t, s in zip(df.dtypes.tolist(), specs))


def _as_dataframe(pd, np, data, specs):
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if isinstance(data, (str, bytes, bool, int, float, np.generic)):
        return pd.DataFrame([data])
    if isinstance(data, dict):
        def scalar_or_strings(v):
            return np.isscalar(v) or (isinstance(v, list) and all(isinstance(x, str) for x in v))

        nested = any(s.get("type") in ("array", "object") for s in specs)
        if nested or all(scalar_or_strings(v) for v in data.values()):
            return pd.DataFrame([data])
        return pd.DataFrame(data)
    if isinstance(data, (list, np.ndarray)):
        return pd.DataFrame(data)
    raise SchemaError("Expected input to be DataFrame. Found: {}".format(type(data).__name__))


def _enforce_columns(data, specs):
    import numpy as np
    import pandas as pd

    df = _as_dataframe(pd, np, data, specs)
    named = all(s.get("name") is not None for s in specs)
    if named:
        names = [str(s["name"]) for s in specs]
        columns = [str(c) for c in df.columns]
        required = [n for n, s in zip(names, specs) if s.get("required", True)]
        missing = [n for n in required if n not in columns]
        extra = [c for c in columns if c not in names]
        if missing:
            message = "Model is missing inputs {}.".format(missing)
            if extra:
                message += " Note that there were extra inputs: {}.".format(extra)
            raise SchemaError(message)
        if extra:
            warnings.warn("Found extra inputs in the model input that are not defined in the model signature: "
                          "{}. These inputs will be ignored.".format(extra), stacklevel=4)
        if list(df.columns) != columns:
            df = df.set_axis(columns, axis=1)
        present = [(n, s) for n, s in zip(names, specs) if n in columns]
        df = df[[n for n, _ in present]]
    else:
        if df.shape[1] < len(specs):
            raise SchemaError(
                "Model inference is missing inputs. The model signature declares {} inputs  but the provided "
                "value only has {} inputs. Note: the inputs were not named in the signature so we can only "
                "verify their count.".format(len(specs), df.shape[1]))
        df = df.iloc[:, :len(specs)]
        present = list(zip(df.columns, specs))
    # A new frame of the enforced columns, built as MLflow builds it (a dict of Series):
    # its memory layout decides how a model's BLAS sums, and so the last bits of a
    # linear model's predictions. (Worker processes skip enforcement for frames that fit,
    # whose layout is already MLflow's: one block, column after column.)
    columns = {}
    for i, (name, spec) in enumerate(present):
        columns[name] = _enforce_type(np, pd, name, df.iloc[:, i], spec.get("type"))
    return pd.DataFrame(columns)


def _dtype_ok(np, pd, dtype, type_name):
    target = _NUMPY_NAMES.get(type_name)
    if target is None:
        return True  # Array, Object, Map, Any: not checked here
    if type_name in ("string", "binary"):
        # pandas >= 3 holds strings as StringDtype ("str"); MLflow passes those as they are.
        return dtype == np.dtype(object) or isinstance(dtype, pd.StringDtype)
    return dtype == np.dtype(target)


def _enforce_type(np, pd, name, column, type_name):
    """``column`` converted to ``type_name`` where MLflow allows it (the same object when
    nothing changes)."""
    target_name = _NUMPY_NAMES.get(type_name)
    if target_name is None:
        return column  # Array, Object, Map, Any: passed as given
    dtype = column.dtype
    if dtype == object and type_name not in ("string", "binary"):
        column = column.infer_objects()
        dtype = column.dtype
    if type_name == "string" and (dtype == object or isinstance(dtype, pd.StringDtype)):
        return column
    if type_name == "binary" and (dtype == object or getattr(dtype, "kind", "") == "S"
                                  or isinstance(dtype, pd.StringDtype)):
        return column
    if type_name == "datetime":
        if getattr(dtype, "tz", None) is not None:
            raise SchemaError("Incompatible input types for column {}. Can not safely convert {} to "
                                         "datetime64[ns] (a time zone is set).".format(name, dtype))
        if dtype.kind == "M":
            return column if dtype == np.dtype("datetime64[ns]") else column.astype("datetime64[ns]")
        if dtype == object:
            return column.astype("datetime64[ns]")
    if type_name == "boolean" and dtype == object:
        return column
    # The numpy type MLflow converts to (strings and bytes: unsized, as in its messages).
    target = np.dtype(str) if type_name == "string" else np.dtype(bytes) if type_name == "binary" else np.dtype(
        target_name)
    if dtype == target:
        return column
    kind = getattr(dtype, "kind", "O")
    if type_name == "double" and dtype == object:
        # MLflow means this for decimal.Decimal columns (Spark's decimals), but numpy takes
        # Decimal for the object dtype: every object column is tried (numeric strings too).
        try:
            return pd.to_numeric(column, errors="raise")
        except (ValueError, TypeError):
            raise SchemaError("Failed to convert column {} from type {} to DataType.double.".format(
                name, dtype)) from None
    itemsize = getattr(dtype, "itemsize", 0)
    if kind == target.kind and itemsize <= target.itemsize:
        return column.astype(target)
    if kind == "u" and target.kind == "i" and itemsize < target.itemsize:
        return column.astype(target)
    if kind in "iu" and target == np.dtype("float64") and itemsize <= 6:
        return column.astype(target)
    if dtype == np.dtype("int64") and target.kind == "f" and column.isin([0, 1]).all():
        return column.astype(target)
    message = "Incompatible input types for column {}. Can not safely convert {} to {}.".format(name, dtype, target)
    if dtype == np.dtype("float64") and target.kind in "iu" and column.hasnans:
        present = column.dropna()
        if (present == present.round()).all():
            message += (" Hint: the type mismatch is likely caused by missing values. Integer columns in python "
                        "can not represent missing values and are therefore encoded as floats. Declare integer "
                        "columns as doubles (float64) whenever these columns may have missing values.")
    raise SchemaError(message)


# --- tensor-based ------------------------------------------------------------------


def _tensor_spec(np, spec):
    tensor = spec.get("tensor-spec") or {}
    return np.dtype(tensor.get("dtype", "float64")), tuple(tensor.get("shape") or ())


def _enforce_tensor_spec(np, values, spec):
    want_dtype, want_shape = _tensor_spec(np, spec)
    shape = values.shape
    dtype = values.dtype if isinstance(values, np.ndarray) else values.data.dtype
    if len(want_shape) == 1 and want_shape[0] == -1 and want_dtype == np.dtype(object):
        return values  # Tensor('object', (-1,)): anything
    if len(want_shape) > 1 and -1 in want_shape[1:] and len(shape) == 1 and dtype == np.dtype(object):
        return values  # a ragged array
    if len(want_shape) != len(shape) or any(w != -1 and w != g for w, g in zip(want_shape, shape)):
        raise SchemaError("Shape of input {} does not match expected shape {}.".format(shape, want_shape))
    clean = dtype
    if dtype.kind in "US":
        clean = np.dtype(dtype.kind)  # string dtypes compare without their sizes
    if clean != want_dtype:
        raise SchemaError("dtype of input {} does not match expected dtype {}".format(dtype, want_dtype))
    return values


def _reshape_column(np, name, series, spec):
    want_dtype, want_shape = _tensor_spec(np, spec)
    label = "input " + name if name else "the unnamed input"
    if not want_shape or want_shape[0] != -1 or -1 in want_shape[1:]:
        raise SchemaError(
            "For pandas dataframe input, the first dimension of shape must be a variable dimension and other "
            "dimensions must be fixed, but in model signature the shape of {} is {}.".format(label, want_shape))
    first = series.iloc[0] if len(series) else None
    if np.isscalar(first):
        if want_shape in ((-1,), (-1, 1)):
            return _enforce_tensor_spec(np, np.array(series, dtype=want_dtype).reshape(want_shape), spec)
        raise SchemaError(
            "The input pandas dataframe column '{}' contains scalar values, which requires the shape to be (-1,) "
            "or (-1, 1), but got tensor spec shape of {}.".format(name, want_shape))
    lists = isinstance(first, list) and len(first) and np.isscalar(first[0])
    if not lists and not isinstance(first, np.ndarray):
        raise SchemaError(
            "Because the model signature requires tensor spec input, the input pandas dataframe values should be "
            "either scalar value, python list containing scalar values or numpy array containing scalar values, "
            "other types are not supported.")
    if lists:  # the dtype is lost in lists: cast to the spec's
        problem = ("Ensure that each of the input list elements are of uniform length and that the data can be "
                   "coerced to the tensor type '{}'".format(want_dtype))
    else:  # arrays keep their dtype, which the enforcement checks
        problem = ("Ensure that each of the input numpy array elements are of uniform length and can be reshaped "
                   "to above expected shape.")
    try:
        array = np.vstack(series.tolist()).reshape(want_shape)
        if lists:
            array = array.astype(want_dtype)
    except ValueError:
        array = None
    if array is None or len(array) != len(series):
        raise SchemaError(
            "The value in the Input DataFrame column '{}' could not be converted to the expected shape of: "
            "'{}'. {}".format(name, want_shape, problem))
    return array


def _enforce_tensors(data, specs):
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.Series):
        data = pd.DataFrame(data)
    if all(s.get("name") is not None for s in specs):
        names = [s["name"] for s in specs]
        required = [s["name"] for s in specs if s.get("required", True)]
        if len(required) == 1 and isinstance(data, np.ndarray):
            data = {required[0]: data}
        present = set(data.columns if isinstance(data, pd.DataFrame) else data if isinstance(data, dict) else ())
        missing = [n for n in required if n not in present]
        if missing:
            raise SchemaError("Model is missing inputs {}.".format(missing))
        if isinstance(data, dict):
            out = {}
            for name, spec in zip(names, specs):
                if name not in data:
                    continue
                if not isinstance(data[name], np.ndarray):
                    raise SchemaError(
                        "This model contains a tensor-based model signature with input names, which suggests a "
                        "dictionary input mapping input name to a numpy array, but a dict with value type {} was "
                        "found.".format(type(data[name])))
                out[name] = _enforce_tensor_spec(np, data[name], spec)
            return out
        if isinstance(data, pd.DataFrame):
            return {name: _reshape_column(np, name, data[name], spec)
                    for name, spec in zip(names, specs) if name in data.columns}
        raise SchemaError(
            "This model contains a tensor-based model signature with input names, which suggests a dictionary "
            "input mapping input name to tensor, or a pandas DataFrame input containing columns mapping input "
            "name to flattened list value from tensor, but an input of type {} was found.".format(type(data)))
    spec = specs[0]
    if isinstance(data, pd.DataFrame):
        if data.empty:
            raise SchemaError("Input DataFrame is empty.")
        if data.shape[1] == 1:
            return _reshape_column(np, None, data.iloc[:, 0], spec)
        _, want_shape = _tensor_spec(np, spec)
        if want_shape != (-1, data.shape[1]):
            raise SchemaError(
                "This model contains a model signature with an unnamed input. Since the input data is a pandas "
                "DataFrame containing multiple columns, the input shape must be of the structure (-1, "
                "number_of_dataframe_columns). Instead, the input DataFrame passed had {} columns and an input "
                "shape of {} with all values within the DataFrame of scalar type. Please adjust the passed in "
                "DataFrame to match the expected structure".format(data.shape[1], want_shape))
        return _enforce_tensor_spec(np, data.to_numpy(), spec)
    if isinstance(data, np.ndarray) or hasattr(data, "tocsr"):
        return _enforce_tensor_spec(np, data, spec)
    raise SchemaError(
        "This model contains a tensor-based model signature with no input names, which suggests a numpy array "
        "input or a pandas dataframe input with proper column values, but an input of type {} was "
        "found.".format(type(data)))


def tensors_from_request(request, specs):
    """The ndarrays MLflow's scoring server makes of ``{"instances"|"inputs": value}``
    holding nested arrays (its ``parse_tf_serving_input``): records of arrays become a
    dict of stacked arrays, a dict a dict of arrays, a list one array; each in its
    tensor spec's dtype when the signature has one (by name, or the one unnamed spec)."""
    import numpy as np

    key = "instances" if "instances" in request else "inputs"
    items = request[key]
    unnamed, named = None, {}
    if specs and all(s.get("type") == "tensor" for s in specs):
        if len(specs) == 1 and specs[0].get("name") is None:
            unnamed = _tensor_spec(np, specs[0])[0]
        else:
            named = {str(s["name"]): _tensor_spec(np, s)[0] for s in specs if s.get("name") is not None}

    def array(value, name=None):
        dtype = unnamed if name is None else named.get(name, unnamed)
        return np.array(value, dtype=dtype) if dtype is not None else np.array(value)

    if key == "instances" and isinstance(items, list) and items and all(isinstance(r, dict) for r in items):
        return {str(n): array([r.get(n) for r in items], str(n)) for n in items[0]}
    if isinstance(items, dict):
        return {str(k): array(v, str(k)) for k, v in items.items()}
    return array(items)


class InputError(ValueError):
    """The request could not be made into the model's input (MLflow's
    MlflowInvalidInputException, BAD_REQUEST); the message is MLflow's."""

    def __init__(self, message, prefix="Invalid input. "):
        super().__init__(prefix + message)


def frame_from_parquet(data):
    """The DataFrame MLflow's scoring server makes of a Parquet body:
    pandas.read_parquet of its bytes, or MLflow's BAD_REQUEST naming pandas' error."""
    import io

    import pandas as pd

    try:
        return pd.read_parquet(io.BytesIO(bytes(data)))
    except Exception as e:  # noqa: B902 - pandas' (pyarrow's) own message goes to the caller
        raise InputError("Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid Parquet "
                         "Pandas DataFrame produced using the `pandas.DataFrame.to_parquet()` method. "
                         "Error: '{}'".format(e), prefix="") from None


# The pandas dtype MLflow's server casts a request column of each column type to.
_REQUEST_DTYPES = {"integer": "int32", "long": "int64", "float": "float32", "double": "float64",
                   "boolean": "bool", "string": "object"}


def frame_from_request(request, specs):
    """The DataFrame MLflow's scoring server makes of ``{"dataframe_split" |
    "dataframe_records": value}`` whose cells hold arrays or objects: pandas' own
    constructor, then each column of the signature cast to its type as MLflow casts
    request columns (binary from base64, datetime parsed); cells holding lists for a
    tensor spec are left to the schema enforcement, as MLflow leaves them."""
    import base64

    import numpy as np
    import pandas as pd

    if "dataframe_split" in request:
        value = request["dataframe_split"]
        try:
            df = pd.DataFrame(index=value.get("index"), columns=value.get("columns"), data=value["data"])
        except Exception as e:  # noqa: B902 - pandas' own message goes to the caller
            raise InputError("Provided dataframe_split field is not a valid dataframe representation in "
                             "'split' format. Error: '{}'".format(e)) from None
    else:
        try:
            df = pd.DataFrame(data=request["dataframe_records"])
        except Exception as e:  # noqa: B902
            raise InputError("Provided dataframe_records field is not a valid dataframe representation in "
                             "'records' format. Error: '{}'".format(e)) from None
    if not specs:
        return df
    tensors = any(s.get("type") == "tensor" for s in specs)
    if all(s.get("name") is not None for s in specs):
        typed = [(str(s["name"]), s) for s in specs]
    elif tensors and len(specs) == 1:
        typed = [(str(c), specs[0]) for c in df.columns]
    else:
        typed = list(zip([str(c) for c in df.columns], specs))
    present = {str(c): c for c in df.columns}
    for name, spec in typed:
        if name not in present or not len(df):
            continue
        column = present[name]
        kind = spec.get("type")
        try:
            if kind == "binary":
                df[column] = df[column].map(lambda x: base64.decodebytes(bytes(x, "utf8")))
            elif tensors and isinstance(df[column].iloc[0], list):
                continue
            elif kind == "tensor":
                df[column] = df[column].astype(_tensor_spec(np, spec)[0])
            elif kind == "datetime":
                parsed = pd.to_datetime(df[column])
                if getattr(parsed.dt, "unit", "ns") != "ns":
                    parsed = parsed.dt.as_unit("ns")
                df[column] = parsed
            elif kind in _REQUEST_DTYPES:
                if kind == "string" and isinstance(df[column].dtype, getattr(pd, "StringDtype", ())):
                    continue
                df[column] = df[column].astype(_REQUEST_DTYPES[kind])
        except Exception as e:  # noqa: B902 - MLflow's MlflowFailedTypeConversion
            dtype = _tensor_spec(np, spec)[0] if kind == "tensor" else np.dtype(_REQUEST_DTYPES.get(kind, "object"))
            raise InputError("Data is not compatible with model signature. Failed to convert column {} to type "
                             "'{}'. Error: '{!r}'".format(name, dtype, e)) from None
    return df


# --- params ------------------------------------------------------------------------


class ParamsError(SchemaError):
    """Params that do not fit the params schema (MLflow: "Invalid parameters found")."""


def _param_spec_repr(spec):
    text = "{!r}: {} (default: {})".format(spec["name"], spec.get("type"), spec.get("default"))
    shape = spec.get("shape")
    if shape is not None:
        text += " (shape: {})".format(tuple(shape))
    return text


def _param_scalar(value, type_name):
    """``value`` converted as MLflow's ParamSpec validation converts it: exact types, and
    integers for double/float. Raises ValueError with MLflow's wording."""
    import datetime

    import numpy as np

    ok = None
    if type_name in ("long", "integer"):
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            ok = int(value)
    elif type_name in ("double", "float"):
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
            ok = float(value)
    elif type_name == "boolean":
        if isinstance(value, (bool, np.bool_)):
            ok = bool(value)
    elif type_name == "string":
        if isinstance(value, str):
            ok = value
    elif type_name == "binary":
        if isinstance(value, (bytes, bytearray)):
            ok = value
    elif type_name == "datetime":
        if isinstance(value, (str, datetime.date, np.datetime64)):
            ok = value
    else:
        return value  # a type this check does not know: passed as given
    if ok is None:
        raise ValueError("Can not safely convert `{}` to `DataType.{}` for value `{}`".format(
            type(value), type_name, value))
    return ok


def enforce_params(params, schema):
    """``params`` (a dict) under a params schema (list of {name, type, default, shape}):
    each known value converted to its spec's type as MLflow's ``_enforce_params_schema``
    does; ParamsError naming every param that does not fit. Unknown keys are the
    caller's to drop."""
    import numpy as np

    out = {}
    problems = []
    for spec in schema:
        name = spec["name"]
        if name not in params:
            continue
        value = params[name]
        shape = spec.get("shape")
        try:
            if value is None:
                out[name] = None
            elif shape is None:
                if isinstance(value, (list, tuple, dict, np.ndarray)):
                    raise ValueError("Value must be a scalar for type `DataType.{}`, got `{}`".format(
                        spec.get("type"), value))
                out[name] = _param_scalar(value, spec.get("type"))
            else:
                array = np.asarray(value, dtype=object) if isinstance(value, (list, tuple, np.ndarray)) else None
                if array is None or array.ndim != len(shape):
                    raise ValueError("Value must be a {}D array with shape {} for param {}, received {} with "
                                     "ndim {}".format(len(shape), tuple(shape), _param_spec_repr(spec),
                                                      type(value).__name__, 0 if array is None else array.ndim))
                out[name] = [_param_scalar(v, spec.get("type")) for v in np.ravel(array)] \
                    if len(shape) == 1 else value
                continue
        except ValueError as e:
            message = str(e)
            if not message.startswith("Value must be a") or shape is None:
                message = "Failed to validate type and shape for {}, error: {}".format(_param_spec_repr(spec), e)
            problems.append((name, message))
    if problems:
        raise ParamsError("Invalid parameters found: {{{}}}".format(", ".join(repr(p) for p in problems)))
    return out
