"""Out-of-process models: pandas in, the native runtime's worker processes, pandas out.

``load_pyfunc(path, env_manager=...)`` returns a :class:`RemotePyFuncModel`. Its
``predict`` turns the DataFrame into typed columns (the Table of the C++ runtime), which
travel through shared memory to a worker running the model in its own environment, and
turns the result back into what the model returned: a DataFrame, a Series or an ndarray.
"""

import os
import sys

import numpy as np
import pandas as pd

from pyfunc import _core, _worker
from pyfunc.exceptions import InvalidArgumentError

# The shape codes of results and of what the worker hands to predict (InputShape), as
# the worker protocol defines them (_worker.py, include/pyfunc/prediction.h).
_SHAPE_DATAFRAME, _SHAPE_SERIES, _SHAPE_ARRAY1D, _SHAPE_LIST, _SHAPE_JSON, _SHAPE_COLUMNS = (
    _worker.SHAPE_DATAFRAME, _worker.SHAPE_SERIES, _worker.SHAPE_ARRAY1D, _worker.SHAPE_LIST, _worker.SHAPE_JSON,
    _worker.SHAPE_COLUMNS)
_IN_DATAFRAME, _IN_ARRAY1D, _IN_ARRAY2D = _worker.SHAPE_DATAFRAME, _worker.SHAPE_ARRAY1D, _worker.SHAPE_ARRAY2D
_IN_COLUMNS, _IN_PLAIN_RECORDS = _worker.IN_COLUMNS, _worker.IN_PLAIN_RECORDS


def _tensor_columns(data):
    """The columns of a dict of arrays (or of an N-d array, N > 2) when one of them has
    more than one dimension: [(name, kind, values, mask, cell shape)], rows; else None."""
    if isinstance(data, np.ndarray):
        if data.ndim <= 2 or data.dtype.name not in _FIXED:
            return None
        items = [("0", data)]
    elif isinstance(data, dict) and data and all(isinstance(v, np.ndarray) for v in data.values()):
        if not any(v.ndim > 1 for v in data.values()) or len({len(v) for v in data.values() if v.ndim}) != 1 \
                or any(v.ndim == 0 for v in data.values()):
            return None
        items = list(data.items())
    else:
        return None
    columns = []
    for name, v in items:
        if v.ndim == 1:
            columns.extend(_columns_of(pd.DataFrame({str(name): v})))
            continue
        if v.dtype.name not in _FIXED:
            raise InvalidArgumentError(
                "input '{}' is a {}-D array of {} values, which cannot be sent to an out-of-process model"
                .format(name, v.ndim, v.dtype))
        values = np.ascontiguousarray(v).reshape(-1).view(np.uint8)
        columns.append((str(name), v.dtype.name, values, None, tuple(v.shape[1:])))
    return columns, len(items[0][1])


def _as_dataframe(data):
    """(DataFrame of the input's columns, InputShape code of the input)."""
    if isinstance(data, pd.DataFrame):
        return data, _IN_DATAFRAME
    if isinstance(data, pd.Series):
        return data.to_frame(), _IN_DATAFRAME
    if isinstance(data, (list, tuple)) and data and all(isinstance(r, dict) for r in data):
        return pd.DataFrame(list(data)), _IN_PLAIN_RECORDS
    if isinstance(data, (list, tuple)):
        data = np.asarray(data)
    if isinstance(data, np.ndarray):
        if data.ndim == 1:
            return pd.DataFrame({"0": data}), _IN_ARRAY1D
        if data.ndim == 2:
            return pd.DataFrame(data, columns=[str(i) for i in range(data.shape[1])]), _IN_ARRAY2D
    if isinstance(data, dict):
        return pd.DataFrame(data), _IN_COLUMNS
    raise InvalidArgumentError(
        "an out-of-process model takes a pandas DataFrame (or Series, ndarray, dict, list), not {}".format(
            type(data).__name__))


# numpy dtypes that cross as themselves (the C++ Table has each of these types).
_FIXED = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64")


def _column(name, series):
    """(name, kind, values, mask) for one input column; InvalidArgumentError if untyped."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        series = series.astype(object)
        dtype = series.dtype
    if pd.api.types.is_extension_array_dtype(dtype):
        mask = ~series.isna().to_numpy()
        present = None if mask.all() else mask
        numpy_name = getattr(getattr(dtype, "numpy_dtype", None), "name", "")
        if pd.api.types.is_integer_dtype(dtype):
            kind = numpy_name if numpy_name in _FIXED else "int64"
            return name, kind, series.fillna(0).to_numpy(dtype=kind), present
        if pd.api.types.is_float_dtype(dtype):
            kind = numpy_name if numpy_name in _FIXED else "float64"
            return name, kind, series.to_numpy(dtype=kind, na_value=np.nan), None
        if pd.api.types.is_bool_dtype(dtype):
            return name, "bool", series.fillna(False).to_numpy(dtype=bool), present
        if pd.api.types.is_datetime64_any_dtype(dtype):
            values = series.dt.tz_convert("UTC").dt.tz_localize(None) if getattr(dtype, "tz", None) else series
            return _column(name, values)
        series = series.astype(object)
        dtype = series.dtype
    kind = dtype.kind
    if dtype.name in _FIXED:  # (in native byte order: the Table is little-endian)
        return name, dtype.name, np.ascontiguousarray(series.to_numpy(), dtype=dtype.name), None
    if kind in "iu":
        return name, "int64", np.ascontiguousarray(series.to_numpy(), dtype=np.int64), None
    if kind == "f":
        return name, "float64", np.ascontiguousarray(series.to_numpy(), dtype=np.float64), None
    if kind == "S":
        return name, "binary", series.to_numpy().tolist(), None
    if kind == "b":
        return name, "bool", np.ascontiguousarray(series.to_numpy(), dtype=bool), None
    if kind == "M":  # as ns, with the unit the column had (kind "timestamp[us]")
        values = series.to_numpy()
        nat = np.isnat(values)
        try:
            ns, unit = _worker.nanoseconds(np, values)
        except ValueError as e:
            raise InvalidArgumentError("column '{}' holds {}".format(name, e)) from None
        kind = "timestamp" if unit == 0 else "timestamp[{}]".format(_worker.TIME_UNITS[unit])
        return name, kind, np.ascontiguousarray(ns), (~nat if nat.any() else None)
    values = series.to_numpy()
    missing = pd.isna(values)
    present = [v for v, m in zip(values, missing) if not m]
    if all(isinstance(v, str) for v in present):
        return name, "string", [None if m else v for v, m in zip(values, missing)], None
    if present and all(isinstance(v, (bytes, bytearray)) for v in present):
        return name, "binary", [None if m else bytes(v) for v, m in zip(values, missing)], None
    if all(isinstance(v, (bool, np.bool_)) for v in present):
        return (name, "bool", np.array([bool(v) if not m else False for v, m in zip(values, missing)]),
                ~missing if missing.any() else None)
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in present):
        return name, "float64", np.array([np.nan if m else float(v) for v, m in zip(values, missing)]), None
    kinds = sorted({type(v).__name__ for v in present})
    raise InvalidArgumentError(
        "column '{}' holds values of types {}, which cannot be sent to an out-of-process model".format(name, kinds))


def _array_cells(series):
    """The object column's cells stacked into one N-d array when they are all numeric
    ndarrays of one shape and dtype (a column of tensor cells); else None."""
    if series.dtype != object or not len(series):
        return None
    cells = series.to_numpy()
    first = cells[0]
    if not isinstance(first, np.ndarray) or first.ndim == 0 or first.dtype.name not in _FIXED:
        return None
    if not all(isinstance(c, np.ndarray) and c.shape == first.shape and c.dtype == first.dtype for c in cells):
        return None
    return np.stack(list(cells))


def _columns_of(df):
    """The columns as the native model takes them, (name, kind, values, mask, cell
    shape): fixed-width values as their bytes."""
    out = []
    for i, name in enumerate(df.columns):
        stacked = _array_cells(df.iloc[:, i])
        if stacked is not None:
            out.append((str(name), stacked.dtype.name, np.ascontiguousarray(stacked).reshape(-1).view(np.uint8), None,
                        tuple(stacked.shape[1:])))
            continue
        name, kind, values, mask = _column(str(name), df.iloc[:, i])
        if isinstance(values, np.ndarray) and kind != "bool":
            values = np.ascontiguousarray(values).view(np.uint8)
        out.append((name, kind, values, mask, ()))
    return out


def _series_of(kind, values, mask):
    if kind.startswith("timestamp"):
        values = values.view("datetime64[ns]")
        if mask is not None:
            values = values.copy()
            values[~mask] = np.datetime64("NaT")
        if kind != "timestamp":  # "timestamp[us]": the unit the model's column had
            values = values.astype("datetime64[" + kind[len("timestamp["):-1] + "]")
        return values
    if mask is None:
        return values
    if kind in ("string", "binary"):
        return values
    if kind.startswith("float"):
        values = values.copy()
        values[~mask] = np.nan
        return values
    if kind.startswith(("int", "uint")):  # as pandas holds missing integers: NaN in floats
        values = values.astype(np.float64)
        values[~mask] = np.nan
        return values
    values = values.astype(object)
    values[~mask] = None
    return values


def _from_columns(shape, columns, rows):
    tensors = {i: values.reshape((rows,) + tuple(cell)) for i, (_, _, values, _, cell) in enumerate(columns) if cell}
    if tensors:
        return _from_tensor_columns(shape, columns, rows, tensors)
    columns = [c[:4] for c in columns]
    if shape == _SHAPE_JSON:  # a dict, a str, nested lists: sent as JSON text
        import json

        value = json.loads(columns[0][2][0])
        if columns[0][0] == "DataFrame":  # a DataFrame whose cells hold lists: its records
            return pd.DataFrame(value)
        return value
    arrays = [(name, _series_of(kind, values, mask)) for name, kind, values, mask in columns]
    if shape == _SHAPE_COLUMNS:
        return {name: np.asarray(v, dtype=object) if isinstance(v, list) else v for name, v in arrays}
    if shape == _SHAPE_DATAFRAME:
        df = pd.DataFrame({i: np.asarray(v, dtype=object) if isinstance(v, list) else v
                           for i, (_, v) in enumerate(arrays)}, index=pd.RangeIndex(rows))
        df.columns = [name for name, _ in arrays]
        return df
    if shape == _SHAPE_SERIES:
        name, values = arrays[0]
        return pd.Series(values, name=name or None)
    if shape == _SHAPE_LIST:
        values = arrays[0][1]
        return list(values) if isinstance(values, list) else values.tolist()
    if shape == _SHAPE_ARRAY1D:
        return np.asarray(arrays[0][1], dtype=object if isinstance(arrays[0][1], list) else None)
    return np.column_stack([np.asarray(v) for _, v in arrays]) if arrays else np.empty((rows, 0))


def _from_tensor_columns(shape, columns, rows, tensors):
    """A result with columns of tensor cells: a dict of arrays, an N-d array, or a
    DataFrame / Series whose cells are the rows' arrays."""
    def column(i):
        if i in tensors:
            return tensors[i]
        _, kind, values, mask, _ = columns[i]
        return _series_of(kind, values, mask)

    def cells(i):
        if i not in tensors:
            return column(i)
        out = np.empty(rows, dtype=object)
        out[:] = list(tensors[i])
        if columns[i][3] is not None:
            out[~columns[i][3]] = None
        return out

    if shape == _SHAPE_COLUMNS:
        return {columns[i][0]: column(i) for i in range(len(columns))}
    if shape == _SHAPE_ARRAY1D:
        return tensors[0]
    if shape == _SHAPE_SERIES:
        return pd.Series(cells(0), name=columns[0][0] or None)
    df = pd.DataFrame({i: cells(i) for i in range(len(columns))}, index=pd.RangeIndex(rows))
    df.columns = [c[0] for c in columns]
    return df


class RemotePyFuncModel:
    """A pyfunc model running in worker processes of its own environment.

    ``predict(data, params=None)`` behaves like :meth:`PyFuncModel.predict`; the model
    sees a DataFrame with the same columns and dtypes as pandas would give it (or, for
    an ndarray, a dict of columns or a list of records, that kind of object rebuilt from
    those columns), and the result keeps its Python shape. ``close()`` (or garbage collection) stops the workers.
    """

    def __init__(self, native):
        self._native = native
        self.metadata = native.mlmodel

    @property
    def environment(self):
        """Where the model runs, e.g. "virtualenv /root/.cache/pyfunc/envs/... (Python 3.11.7)"."""
        return self._native.environment

    @property
    def loader_module(self):
        return self.metadata["flavors"]["python_function"].get("loader_module")

    @property
    def model_config(self):
        return self.metadata["flavors"]["python_function"].get("config") or {}

    @property
    def worker_restarts(self):
        return self._native.worker_restarts

    def predict(self, data, params=None):
        tensor_input = _tensor_columns(data)
        if tensor_input is not None:  # N-d arrays: columns of tensor cells
            columns, rows = tensor_input
            input_shape = _IN_COLUMNS if isinstance(data, dict) else _IN_ARRAY1D
        else:
            df, input_shape = _as_dataframe(data)
            columns, rows = _columns_of(df), len(df)
        shape, columns, rows = self._native.predict_columns(columns, rows, params, input_shape)
        return _from_columns(shape, columns, rows)

    def close(self):
        self._native = None

    def __repr__(self):
        return "RemotePyFuncModel(loader_module={!r}, environment={!r})".format(
            self.loader_module, self._native.environment if self._native else None)


def load(local_path, env_manager, workers=1, model_config=None, predict_timeout=60.0, env_root=None):
    native = _core.NativeModel.load(
        local_path, env_manager=env_manager, workers=workers,
        python=os.environ.get("PYFUNC_PYTHON") or sys.executable, env_root=env_root or "",
        predict_timeout=predict_timeout, model_config=model_config)
    return RemotePyFuncModel(native)
