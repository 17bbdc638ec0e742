"""Out-of-process models: pandas in, the native runtime's worker processes, pandas out.
(This is the caller's side; what runs in each worker process is ``_worker.py``.)

``load_pyfunc(path, env_manager=...)`` returns a :class:`RemotePyFuncModel`. Its
``predict`` turns the DataFrame into typed columns (the Table of the C++ runtime), which
travel through shared memory to a worker running the model in its own environment, and
turns the result back into what the model returned: a DataFrame, a Series or an ndarray.
"""

import os
import sys

import numpy as np
import pandas as pd

from pyfunc import _columns, _core
from pyfunc._columns import (
    FIXED_TYPES,
    IN_COLUMNS,
    IN_PLAIN_RECORDS,
    SHAPE_ARRAY1D,
    SHAPE_ARRAY2D,
    SHAPE_COLUMNS,
    SHAPE_DATAFRAME,
    SHAPE_JSON,
    SHAPE_LIST,
    SHAPE_SERIES,
    T_BINARY,
    T_BOOL,
    T_STRING,
    T_TIMESTAMP,
    TIME_UNITS,
    WIRE_OF_DTYPE,
)
from pyfunc.exceptions import InvalidArgumentError

# How the native binding names each column type (a timestamp's kind may name its unit,
# "timestamp[us]"), and back.
_KIND_OF_TYPE = {t: name for t, name in FIXED_TYPES.items() if t != T_TIMESTAMP}
_KIND_OF_TYPE.update({T_BOOL: "bool", T_STRING: "string", T_BINARY: "binary", T_TIMESTAMP: "timestamp"})
_TYPE_OF_KIND = {kind: t for t, kind in _KIND_OF_TYPE.items()}
_TYPE_OF_KIND.update({"timestamp[{}]".format(u): T_TIMESTAMP for u in TIME_UNITS})


def _native_column(name, values):
    """(name, kind, values, mask, cell shape): one input column as the native model takes
    it, fixed-width values as their bytes; InvalidArgumentError if it has no column type."""
    if isinstance(values, pd.Series) and getattr(values.dtype, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)  # the Table's timestamps are UTC
    try:
        typ, values, valid = _columns.column_of(name, values)
    except _columns.ColumnError as e:
        raise InvalidArgumentError("{}, which cannot be sent to an out-of-process model".format(e)) from None
    if typ == T_TIMESTAMP:  # as ns, with the unit the column had (kind "timestamp[us]")
        try:
            ns, unit = _columns.nanoseconds(values)
        except ValueError as e:
            raise InvalidArgumentError("column '{}' holds {}".format(name, e)) from None
        kind = "timestamp" if unit == 0 else "timestamp[{}]".format(TIME_UNITS[unit])
        return name, kind, np.ascontiguousarray(ns).view(np.uint8), valid, ()
    if typ == T_BOOL:
        return name, "bool", np.ascontiguousarray(values, dtype=bool), valid, ()
    if typ in (T_STRING, T_BINARY):  # lists, their nulls None
        present = [True] * len(values) if valid is None else valid.tolist()
        cells = [(bytes(v) if typ == T_BINARY else v) if ok else None for v, ok in zip(values, present)]
        return name, _KIND_OF_TYPE[typ], cells, None, ()
    # Fixed-width, in native byte order (the Table is little-endian); N-d: tensor cells.
    values = np.ascontiguousarray(values, dtype=FIXED_TYPES[typ])
    return name, FIXED_TYPES[typ], values.reshape(-1).view(np.uint8), valid, tuple(values.shape[1:])


def _tensor_columns(data):
    """The columns of a dict of arrays (or of an N-d array, N > 2) when one of them has
    more than one dimension: [(name, kind, values, mask, cell shape)], rows; else None."""
    if isinstance(data, np.ndarray):
        if data.ndim <= 2 or data.dtype.name not in WIRE_OF_DTYPE:
            return None
        items = [("0", data)]
    elif isinstance(data, dict) and data and all(isinstance(v, np.ndarray) for v in data.values()):
        if not any(v.ndim > 1 for v in data.values()) or len({len(v) for v in data.values() if v.ndim}) != 1 \
                or any(v.ndim == 0 for v in data.values()):
            return None
        items = list(data.items())
    else:
        return None
    return [_native_column(str(name), v) for name, v in items], len(items[0][1])


def _as_dataframe(data):
    """(DataFrame of the input's columns, InputShape code of the input)."""
    if isinstance(data, pd.DataFrame):
        return data, SHAPE_DATAFRAME
    if isinstance(data, pd.Series):
        return data.to_frame(), SHAPE_DATAFRAME
    if isinstance(data, (list, tuple)) and data and all(isinstance(r, dict) for r in data):
        return pd.DataFrame(list(data)), IN_PLAIN_RECORDS
    if isinstance(data, (list, tuple)):
        data = np.asarray(data)
    if isinstance(data, np.ndarray):
        if data.ndim == 1:
            return pd.DataFrame({"0": data}), SHAPE_ARRAY1D
        if data.ndim == 2:
            return pd.DataFrame(data, columns=[str(i) for i in range(data.shape[1])]), SHAPE_ARRAY2D
    if isinstance(data, dict):
        return pd.DataFrame(data), IN_COLUMNS
    raise InvalidArgumentError(
        "an out-of-process model takes a pandas DataFrame (or Series, ndarray, dict, list), not {}".format(
            type(data).__name__))


def _columns_of(df):
    """The DataFrame's columns as the native model takes them."""
    return [_native_column(str(name), df.iloc[:, i]) for i, name in enumerate(df.columns)]


def _series_of(kind, values, mask):
    typ = _TYPE_OF_KIND[kind]
    unit = TIME_UNITS.index(kind[len("timestamp["):-1]) if kind.startswith("timestamp[") else 0
    return _columns.pandas_values(typ, values, mask, unit)


def _from_columns(shape, columns, rows):
    tensors = {i: values.reshape((rows,) + tuple(cell)) for i, (_, _, values, _, cell) in enumerate(columns) if cell}
    if tensors:
        return _from_tensor_columns(shape, columns, rows, tensors)
    columns = [c[:4] for c in columns]
    if shape == SHAPE_JSON:  # a dict, a str, nested lists: sent as JSON text
        import json

        value = json.loads(columns[0][2][0])
        if columns[0][0] == "DataFrame":  # a DataFrame whose cells hold lists: its records
            return pd.DataFrame(value)
        return value
    arrays = [(name, _series_of(kind, values, mask)) for name, kind, values, mask in columns]
    if shape == SHAPE_COLUMNS:
        return {name: np.asarray(v, dtype=object) if isinstance(v, list) else v for name, v in arrays}
    if shape == SHAPE_DATAFRAME:
        df = pd.DataFrame({i: np.asarray(v, dtype=object) if isinstance(v, list) else v
                           for i, (_, v) in enumerate(arrays)}, index=pd.RangeIndex(rows))
        df.columns = [name for name, _ in arrays]
        return df
    if shape == SHAPE_SERIES:
        name, values = arrays[0]
        return pd.Series(values, name=name or None)
    if shape == SHAPE_LIST:
        values = arrays[0][1]
        return list(values) if isinstance(values, list) else values.tolist()
    if shape == SHAPE_ARRAY1D:
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

    if shape == SHAPE_COLUMNS:
        return {columns[i][0]: column(i) for i in range(len(columns))}
    if shape == SHAPE_ARRAY1D:
        return tensors[0]
    if shape == SHAPE_SERIES:
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
            input_shape = IN_COLUMNS if isinstance(data, dict) else SHAPE_ARRAY1D
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
