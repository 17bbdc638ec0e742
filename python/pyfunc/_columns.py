"""Typed columns: pandas and numpy values <-> the columns of pyfunc's Table.

The one codec of both ends of a model's worker processes: the caller's side
(``_workers.py``: a predict's input into columns for the native runtime, the result's
columns back into what the model returned) and the worker (``_worker.py``: the model's
output into the columns of a result frame, an input frame's columns into what predict
is given). The codes of types, shapes and null spellings are those of
docs/worker-protocol.md.

The worker loads this file by path, next to it, in the model's environment: standard
library only at import time (numpy and pandas are imported when a function runs), never
``pyfunc``, any Python >= 3.8.
"""

import json

# Wire types (the C++ DataType + 1), result shapes (PredictionShape), input shapes
# (InputShape) and null spellings: docs/worker-protocol.md.
T_INT64, T_FLOAT64, T_BOOL, T_STRING, T_TIMESTAMP = 1, 2, 3, 4, 5
T_BINARY = 15
# Fixed-width types: wire type -> numpy dtype name, and back.
FIXED_TYPES = {1: "int64", 2: "float64", 5: "int64", 6: "int8", 7: "int16", 8: "int32", 9: "uint8",
               10: "uint16", 11: "uint32", 12: "uint64", 13: "float16", 14: "float32"}
WIRE_OF_DTYPE = {name: typ for typ, name in FIXED_TYPES.items() if typ != T_TIMESTAMP}
NULLS_DEFAULT, NULLS_NAN, NULLS_NAT = 0, 1, 2
TIME_UNITS = ("ns", "us", "ms", "s")  # a timestamp column's time unit byte -> datetime64 unit
SHAPE_DATAFRAME, SHAPE_SERIES, SHAPE_ARRAY1D, SHAPE_ARRAY2D, SHAPE_LIST = 0, 1, 2, 3, 4
SHAPE_JSON, SHAPE_COLUMNS = 5, 6
IN_COLUMNS, IN_RECORDS, IN_SCALAR, IN_JSON, IN_PLAIN_RECORDS, IN_TENSORS_JSON = 5, 6, 7, 8, 9, 10
IN_FRAME_JSON, IN_PARQUET = 11, 12


class ColumnError(ValueError):
    """Values that have no column type (or no table form); the message names the column."""


def tensor_cells(arr):
    """The object array ``arr`` of ndarray cells as one N-d array when every cell is a
    numeric ndarray of one shape and dtype (a column of tensor cells); else None."""
    import numpy as np

    if not len(arr):
        return None
    first = arr[0]
    if not isinstance(first, np.ndarray) or first.ndim == 0 or first.dtype.name not in WIRE_OF_DTYPE:
        return None
    for cell in arr:
        if not isinstance(cell, np.ndarray) or cell.shape != first.shape or cell.dtype != first.dtype:
            return None
    return np.stack(list(arr))


def column_of(name, values):
    """(type, values ndarray, validity bool ndarray or None) of a column's values (a
    Series, an ndarray or a sequence; timestamps as datetime64 of their unit); an
    N-d values array (a column of tensor cells) for a numeric array of more than one
    dimension or cells that are numeric arrays of one shape. ColumnError for values of no
    column type."""
    import numpy as np
    import pandas as pd

    if isinstance(values, np.ndarray) and values.ndim > 1:
        typ = WIRE_OF_DTYPE.get(values.dtype.name)
        if typ is None:
            raise ColumnError("column '{}' is a {}-D array of {} values".format(name, values.ndim, values.dtype))
        return typ, values, None
    if isinstance(values, np.ndarray) and values.dtype.kind in "iubf":
        # The common case (a numeric prediction array), without building a Series.
        if values.dtype.kind == "b":
            return T_BOOL, values, None
        typ = WIRE_OF_DTYPE.get(values.dtype.name)
        if typ is not None:  # the array's own dtype, as MLflow returns it
            return typ, values, None
    if isinstance(values, pd.Series):
        series = values
    else:
        series = pd.Series(values)
    dtype = series.dtype
    kind = getattr(dtype, "kind", "O")
    if isinstance(dtype, pd.CategoricalDtype):
        series = series.astype(object)
        kind = "O"
    if hasattr(pd.api.types, "is_extension_array_dtype") and pd.api.types.is_extension_array_dtype(series.dtype) \
            and kind != "O":
        mask = series.isna().to_numpy()
        numpy_name = getattr(getattr(dtype, "numpy_dtype", None), "name", "")
        if kind in "iu":
            typ = WIRE_OF_DTYPE.get(numpy_name, T_INT64)
            return (typ, series.fillna(0).to_numpy(dtype=FIXED_TYPES[typ]),
                    ~mask if mask.any() else None)
        if kind == "f":
            typ = WIRE_OF_DTYPE.get(numpy_name, T_FLOAT64)
            return typ, series.to_numpy(dtype=FIXED_TYPES[typ], na_value=np.nan), None
        if kind == "b":
            return T_BOOL, series.fillna(False).to_numpy(dtype=bool), ~mask if mask.any() else None
        series = series.astype(object)
        kind = "O"
    arr = series.to_numpy()
    if kind in "iuf" and arr.dtype.name in WIRE_OF_DTYPE:
        return WIRE_OF_DTYPE[arr.dtype.name], arr, None
    if kind in "iu":
        return T_INT64, arr.astype(np.int64), None
    if kind == "f":
        return T_FLOAT64, arr.astype(np.float64), None
    if kind == "b":
        return T_BOOL, arr, None
    if kind == "S":  # fixed-width numpy bytes
        return T_BINARY, np.array(arr.tolist(), dtype=object), None
    if kind == "M":
        nat = np.isnat(arr)
        return T_TIMESTAMP, arr, (~nat if nat.any() else None)  # as it is: nanoseconds() makes it ns
    stacked = tensor_cells(arr)
    if stacked is not None:
        return WIRE_OF_DTYPE[stacked.dtype.name], stacked, None
    # Object columns: strings, or Python scalars of one kind, with None/NaN as null.
    missing = pd.isna(arr) if arr.size else np.zeros(0, dtype=bool)
    present = [v for v, m in zip(arr, missing) if not m]
    valid = ~missing if missing.any() else None
    if all(isinstance(v, str) for v in present):
        return T_STRING, arr, valid
    if present and all(isinstance(v, (bytes, bytearray)) for v in present):
        return T_BINARY, arr, valid
    if all(isinstance(v, (bool, np.bool_)) for v in present):
        return T_BOOL, np.array([bool(v) if not m else False for v, m in zip(arr, missing)]), valid
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in present):
        return T_INT64, np.array([int(v) if not m else 0 for v, m in zip(arr, missing)], dtype=np.int64), valid
    if all(isinstance(v, (int, float, np.integer, np.floating)) for v in present):
        return T_FLOAT64, np.array([float(v) if not m else np.nan for v, m in zip(arr, missing)]), None
    kinds = sorted({type(v).__name__ for v in present})
    raise ColumnError("column '{}' holds values of types {}".format(name, kinds))


def _jsonable(obj):
    """``json.dumps``'s ``default`` for what MLflow's NumpyEncoder writes: numpy values
    and arrays, DataFrames (records) and Series, bytes (base64), dates, pydantic models."""
    import base64
    import datetime

    import numpy as np
    import pandas as pd

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, pd.DataFrame):
        return obj.to_dict(orient="records")
    if isinstance(obj, pd.Series):
        return pd.DataFrame(obj).to_dict(orient="records")
    if isinstance(obj, (bytes, bytearray)):
        return base64.encodebytes(bytes(obj)).decode("ascii")
    if isinstance(obj, (datetime.date, datetime.datetime, pd.Timestamp)):
        return obj.isoformat()
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    raise TypeError("Object of type {} is not JSON serializable".format(type(obj).__name__))


def json_result(prediction):
    """The kJson result: one string cell with the object as MLflow writes it."""
    import numpy as np

    import pandas as pd

    text = json.dumps(prediction, default=_jsonable)
    name = "DataFrame" if isinstance(prediction, pd.DataFrame) else ""
    return SHAPE_JSON, [(name, T_STRING, np.array([text], dtype=object), None, NULLS_DEFAULT)], 1


def prediction_columns(prediction):
    """(shape, [(name, type, values, validity, null spelling)], rows) for a model's output.
    What has no table form (a dict, a str, nested or mixed lists, cells holding lists) is
    returned as JSON text (SHAPE_JSON)."""
    try:
        return _prediction_table(prediction)
    except ColumnError:
        return json_result(prediction)


def _prediction_table(prediction):
    import numpy as np
    import pandas as pd

    if isinstance(prediction, dict):
        # A dict of arrays of one length (multi-output models): its columns, an N-d
        # array a column of tensor cells.
        values = list(prediction.values())
        if (not values or not all(isinstance(k, str) for k in prediction)
                or not all(isinstance(v, np.ndarray) and v.ndim >= 1 for v in values)
                or len({len(v) for v in values}) != 1):
            raise ColumnError("not a table")
        columns = []
        for name, v in prediction.items():
            typ, arr, valid = column_of(name, v)
            columns.append((name, typ, arr, valid, null_spelling(SHAPE_COLUMNS, v, typ, valid)))
        return SHAPE_COLUMNS, columns, len(values[0])
    if isinstance(prediction, (str, bytes)):
        raise ColumnError("not a table")
    if isinstance(prediction, list) and prediction:
        # Nested lists and records; strings mixed with numbers (numpy would make all strings).
        strings = sum(isinstance(v, str) for v in prediction)
        if isinstance(prediction[0], (dict, list, tuple)) or 0 < strings < len(prediction):
            raise ColumnError("not a table")
    if isinstance(prediction, pd.DataFrame) and len(prediction.columns) == 0:
        # Rows without columns: as JSON, so that their records are what this pandas makes
        # of them ([] before pandas 3, one {} per row since).
        raise ColumnError("not a table")
    if isinstance(prediction, pd.DataFrame):
        shape = SHAPE_DATAFRAME
        items = [(str(c), prediction.iloc[:, i]) for i, c in enumerate(prediction.columns)]
    elif isinstance(prediction, pd.Series):
        shape = SHAPE_SERIES
        items = [("" if prediction.name is None else str(prediction.name), prediction)]
    else:
        is_list = not isinstance(prediction, np.ndarray)
        arr = prediction if not is_list else np.asarray(prediction)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim == 1:
            shape = SHAPE_LIST if is_list else SHAPE_ARRAY1D
            items = [("", arr)]
        elif arr.ndim == 2:
            shape = SHAPE_ARRAY2D
            items = [(str(i), arr[:, i]) for i in range(arr.shape[1])]
        elif is_list or arr.dtype.name not in WIRE_OF_DTYPE:
            raise ColumnError("not a table")
        else:  # an N-d array: one column of (N-1)-d tensor cells
            shape = SHAPE_ARRAY1D
            items = [("", arr)]
    columns = []
    rows = len(prediction) if isinstance(prediction, (pd.DataFrame, pd.Series)) and not items else None
    for name, values in items:
        typ, arr, valid = column_of(name, values)
        columns.append((name, typ, arr, valid, null_spelling(shape, values, typ, valid)))
        rows = len(arr) if rows is None else rows
    return shape, columns, rows or 0


def null_spelling(shape, values, typ, valid):
    """How the column's nulls are written as JSON (NULLS_*), as MLflow's scoring server
    writes the missing values the model's output held: float NaN as NaN (what pandas >= 3
    holds for a missing string), pandas.NaT of records as "NaT", the others (None,
    pandas.NA) as null."""
    import numpy as np
    import pandas as pd

    if valid is None or typ == T_FLOAT64:
        return NULLS_DEFAULT
    if typ == T_TIMESTAMP:
        return NULLS_NAT if shape in (SHAPE_DATAFRAME, SHAPE_SERIES) else NULLS_DEFAULT
    cells = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    missing = cells[~valid]
    return NULLS_NAN if all(isinstance(v, float) and v != v for v in missing) else NULLS_DEFAULT


def nanoseconds(values):
    """(int64 ns since the epoch, time unit code) of a datetime64 array of any unit;
    ValueError when a datetime lies outside what nanoseconds hold (years 1678 to 2261)."""
    import numpy as np

    unit = np.datetime_data(values.dtype)[0]
    ns = values.astype("datetime64[ns]")
    present = ~np.isnat(values)
    if unit != "ns" and np.any(ns[present].astype(values.dtype) != values[present]):
        raise ValueError("datetimes outside the range of datetime64[ns] (years 1678 to 2261)")
    return ns.view(np.int64), TIME_UNITS.index(unit) if unit in TIME_UNITS else 0


def pandas_values(typ, values, valid, unit=0):
    """A typed column's values as pandas holds them: ``values`` (a timestamp's as int64
    ns since the epoch; strings and bytes as given, their nulls None) with the missing
    ones (``valid`` False) NaN in floats (integers widen to float64), NaT in timestamps
    (of the column's time unit, the TIME_UNITS index ``unit``) and None in booleans.
    Never writes into ``values``."""
    import numpy as np

    if typ == T_TIMESTAMP:
        values = values.view("datetime64[ns]")
        if valid is not None:
            values = values.copy()
            values[~valid] = np.datetime64("NaT")
        return values.astype("datetime64[{}]".format(TIME_UNITS[unit])) if unit else values
    if valid is None or typ in (T_STRING, T_BINARY):
        return values
    if typ == T_BOOL:
        values = values.astype(object)
        values[~valid] = None
        return values
    # As pandas holds missing numbers: NaN in a float column (integers widen).
    values = values.astype(values.dtype if values.dtype.kind == "f" else np.float64)
    values[~valid] = np.nan
    return values


def model_input(df, shape, tensors=None):
    """What predict is given for an input frame of ``shape`` decoded as ``df`` (and
    ``tensors``, the N-d arrays of its columns of tensor cells, by position)."""
    tensors = tensors or {}
    if shape == SHAPE_DATAFRAME:
        return df
    if shape == SHAPE_ARRAY1D:
        return tensors[0] if 0 in tensors else df.iloc[:, 0].to_numpy()
    if shape == SHAPE_ARRAY2D:
        return df.to_numpy()
    if shape == IN_COLUMNS:
        return {str(c): tensors[i] if i in tensors else df.iloc[:, i].to_numpy() for i, c in enumerate(df.columns)}
    import numpy as np

    if shape == IN_RECORDS:  # as MLflow converts them: each value a 0-d array
        return [{str(k): np.asarray(v) for k, v in record.items()} for record in df.to_dict("records")]
    if shape == IN_PLAIN_RECORDS:  # as the caller of predict gave them: Python scalars
        return df.to_dict("records")
    if shape == IN_SCALAR:
        return np.asarray(df.iloc[0, 0])
    if shape == IN_JSON:
        return json.loads(df.iloc[0, 0])
    raise ColumnError("unknown input shape {}".format(shape))


