"""The pyfunc worker: runs one model inside its own environment, fed over shared memory.

A parent process (libpyfunc's Model, one Worker per process) starts this file by path with the model
environment's interpreter:

    <python> _worker.py --fd <control socket fd> --protocol <version>

It must run in any Python >= 3.8 with numpy and pandas, and nothing of pyfunc
installed: it imports only the standard library, numpy, pandas, and the loading
routine ``_loading.py`` next to it (by file path).

The protocol — the control channel's messages, the frame layout of the shared memory,
the shape and type codes — is specified once, in docs/worker-protocol.md; the constants
below are its Python side. In short: JSON messages over an AF_UNIX SOCK_SEQPACKET socket
(hello, load, map, predict -> result | grow | error, exit), frames of typed columns in a
memfd the parent shares. The worker exits when the control socket closes: its parent
died or let it go (noticed even while a predict runs). A predict that raises fails only
its batch.
"""

import array
import json
import mmap
import os
import socket
import struct
import sys
import select
import time
import traceback

MAGIC = "pyfunc-worker"
PROTOCOL = 2
FRAME_MAGIC = b"PFF1"
FRAME_VERSION = 3
HEADER = struct.Struct("<4sIQIIQ32x")
COLUMN = struct.Struct("<QIBBBBQQQQQB7x")
assert HEADER.size == 64 and COLUMN.size == 64
ALIGN = 64
PACKET_PAYLOAD = 32 * 1024
MORE_PACKETS = b"\x01"
MAX_MESSAGE = 64 << 20
# Error texts sent to the parent are cut to this many characters: a model may raise
# with a message of any size, and the parent only shows it.
MAX_ERROR_TEXT = 32 * 1024  # within the server's 64 KiB bound on error messages, so cut once

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
IN_FRAME_JSON = 11


class FrameError(Exception):
    pass


def _align(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


# --- control channel -------------------------------------------------------------


def _send(sock, message, fds=None):
    data = json.dumps(message, separators=(",", ":"), allow_nan=False, default=str).encode("utf-8")
    view = memoryview(data)
    start = 0
    while True:
        end = min(start + PACKET_PAYLOAD, len(data))
        parts = [view[start:end]] if end == len(data) else [MORE_PACKETS, view[start:end]]
        if fds and start == 0:
            sock.sendmsg(parts, [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        else:
            sock.sendmsg(parts)
        if end == len(data):
            return
        start = end


_RECV_BUFFER = bytearray(PACKET_PAYLOAD + 1)


def _poll_briefly(poller, seconds):
    """Polls the control socket without sleeping for up to ``seconds``; True if readable."""
    end = time.perf_counter() + seconds
    while True:
        if poller.poll(0):
            return True
        if time.perf_counter() >= end:
            return False


def _recv(sock):
    """One message and the fds that came with it; (None, []) when the parent is gone."""
    fds = array.array("i")
    pending = []
    pending_size = 0
    while True:
        # Into a buffer allocated once: recvmsg(n) would allocate a buffer of n bytes per
        # packet, which costs more than the rest of a small batch's round trip.
        size, ancdata, flags, _addr = sock.recvmsg_into([_RECV_BUFFER], socket.CMSG_LEN(4 * fds.itemsize))
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
        if size == 0:
            return None, list(fds)
        if flags & socket.MSG_TRUNC or pending_size + size > MAX_MESSAGE:
            raise FrameError("the parent sent an oversized message")
        if _RECV_BUFFER[0] == MORE_PACKETS[0]:
            pending.append(bytes(memoryview(_RECV_BUFFER)[1:size]))
            pending_size += size - 1
            continue
        data = bytes(memoryview(_RECV_BUFFER)[:size])
        if pending:
            data = b"".join(pending) + data
        return json.loads(data.decode("utf-8")), list(fds)


# --- frames <-> pandas -------------------------------------------------------------


def _unpack_bits(np, buf, offset, rows):
    packed = np.frombuffer(buf, dtype=np.uint8, count=(rows + 7) // 8, offset=offset)
    return np.unpackbits(packed, bitorder="little", count=rows).astype(bool)


_U32 = struct.Struct("<I")
_U64_U32 = struct.Struct("<QI")
_PLANS = {}


def _plan_key(buf, offset, size):
    """The bytes that determine how a frame decodes: header, column descriptors and the
    column names (from the first name to the end of the last); None if out of bounds."""
    if size < HEADER.size:
        return None
    ncols = _U32.unpack_from(buf, offset + 16)[0]
    end = HEADER.size + ncols * COLUMN.size
    if ncols == 0 or end > size:
        return None
    first, _ = _U64_U32.unpack_from(buf, offset + HEADER.size)
    last, last_len = _U64_U32.unpack_from(buf, offset + end - COLUMN.size)
    if first < end or last + last_len > size or last + last_len - first > 1 << 16:
        return None
    return bytes(buf[offset:offset + end]) + bytes(buf[offset + first:offset + last + last_len])


def decode_frame(buf, offset, size):
    """The pandas.DataFrame held by the frame at ``buf[offset:offset+size]``.

    Numeric columns without nulls are numpy views of ``buf`` (no copy). A frame of only
    such columns, laid out as one block, is decoded by a plan cached by its header,
    descriptors and names: the next batch of the same shape is a view and a DataFrame.
    Returns (DataFrame, shape, the plan or None); a plan's ``fits_schema`` attribute is
    free for the caller to remember whether its frames fit the model's input schema.
    Returns (DataFrame, shape, the plan or None, tensors); a plan's ``fits_schema``
    attribute is free for the caller to remember whether its frames fit the model's input
    schema. A column of tensor cells is an object column of the rows' arrays in the
    DataFrame, and in ``tensors`` ({column position: N-d array}) as one array.
    """
    key = _plan_key(buf, offset, size)
    plan = _PLANS.get(key) if key is not None else None
    if plan is not None:
        return plan(buf, offset, size) + (plan, {})
    df, shape, plan, tensors = _decode_frame(buf, offset, size)
    if plan is not None and key is not None:
        if len(_PLANS) > 64:
            _PLANS.clear()
        _PLANS[key] = plan
    return df, shape, plan, tensors


def _block_plan(pd, dtype, start, count, rows, total, index, shape):
    import numpy as np

    def decode(buf, offset, size):
        """(DataFrame, shape) of a frame laid out like the first one."""
        if total > size:
            raise FrameError("frame claims {} bytes, only {} bytes given".format(total, size))
        base = np.frombuffer(buf, dtype=dtype, count=rows * count, offset=offset + start)
        return pd.DataFrame(base.reshape(count, rows).T, columns=index, copy=False), shape

    decode.fits_schema = None  # unknown until the first frame of this layout is checked
    return decode


def _decode_frame(buf, offset, size):
    """decode_frame without the plan cache: (DataFrame, shape, plan or None, tensors)."""
    import numpy as np
    import pandas as pd

    if size < HEADER.size:
        raise FrameError("frame of {} bytes is shorter than its header".format(size))
    magic, version, rows, ncols, shape, total = HEADER.unpack_from(buf, offset)
    if magic != FRAME_MAGIC or version != FRAME_VERSION:
        raise FrameError("bad frame header {!r} v{}".format(magic, version))
    if total > size or HEADER.size + ncols * COLUMN.size > size:
        raise FrameError("frame claims {} bytes and {} columns, only {} bytes given".format(total, ncols, size))

    def check(off, length, what):
        if off + length > size:
            raise FrameError("{} [{}, {}) lies outside the frame of {} bytes".format(what, off, off + length, size))
        return offset + off

    names, columns, tensors = [], [], {}
    block = None  # (dtype, absolute offset, columns) of a run of adjacent same-typed numbers
    for i in range(ncols):
        (name_off, name_len, typ, has_validity, _nulls, ndim, validity_off, values_off, values_size,
         offsets_off, dims_off, unit) = COLUMN.unpack_from(buf, offset + HEADER.size + i * COLUMN.size)
        if unit >= len(TIME_UNITS) or (unit and typ != T_TIMESTAMP):
            raise FrameError("column {} of type {} has time unit {}".format(i, typ, unit))
        name = bytes(buf[check(name_off, name_len, "column name"):offset + name_off + name_len]).decode("utf-8")
        valid = None
        if has_validity:
            valid = _unpack_bits(np, buf, check(validity_off, (rows + 7) // 8, "validity of " + name), rows)
        if ndim:
            if typ not in FIXED_TYPES or typ == T_TIMESTAMP:
                raise FrameError("column {} of type {} cannot hold tensor cells".format(name, typ))
            dims = struct.unpack_from("<{}q".format(ndim), buf, check(dims_off, 8 * ndim, "dimensions of " + name))
            if any(d < 0 for d in dims):
                raise FrameError("column {} has tensor dimensions {}".format(name, dims))
            dtype = np.dtype(FIXED_TYPES[typ])
            count = rows
            for d in dims:
                count *= d
            start = check(values_off, dtype.itemsize * count, "values of " + name)
            array = np.frombuffer(buf, dtype=dtype, count=count, offset=start).reshape((rows,) + tuple(dims))
            cells = np.empty(rows, dtype=object)
            cells[:] = list(array)
            if valid is not None:
                cells[~valid] = None
            tensors[len(columns)] = array
            names.append(name)
            columns.append(cells)
            block = None
            continue
        if typ in FIXED_TYPES:
            dtype = np.dtype(FIXED_TYPES[typ])
            start = check(values_off, dtype.itemsize * rows, "values of " + name)
            values = np.frombuffer(buf, dtype=dtype, count=rows, offset=start)
            if typ != T_TIMESTAMP and valid is None:
                if i == 0:
                    block = (dtype, start, 1)
                elif (block is not None and block[0] == dtype
                      and block[1] + dtype.itemsize * rows * block[2] == start):
                    block = (dtype, block[1], block[2] + 1)
                else:
                    block = None
            else:
                block = None
            if typ == T_TIMESTAMP:
                values = values.view("datetime64[ns]")
                if valid is not None:
                    values = values.copy()
                    values[~valid] = np.datetime64("NaT")
                if unit:
                    values = values.astype("datetime64[{}]".format(TIME_UNITS[unit]))
            elif valid is not None:
                # As pandas holds missing numbers: NaN in a float column (integers widen).
                values = values.astype(dtype if dtype.kind == "f" else np.float64)
                values[~valid] = np.nan
        elif typ == T_BOOL:
            values = _unpack_bits(np, buf, check(values_off, (rows + 7) // 8, "values of " + name), rows)
            if valid is not None:
                values = values.astype(object)
                values[~valid] = None
        elif typ in (T_STRING, T_BINARY):
            offs = np.frombuffer(buf, dtype=np.int64, count=rows + 1,
                                 offset=check(offsets_off, 8 * (rows + 1), "offsets of " + name))
            start = check(values_off, values_size, "strings of " + name)
            if rows and (offs[0] < 0 or offs[-1] > values_size or np.any(offs[1:] < offs[:-1])):
                raise FrameError("string offsets of column {} are out of order or out of bounds".format(name))
            data = bytes(buf[start:start + values_size])
            bounds = offs.tolist()
            values = np.empty(rows, dtype=object)
            if typ == T_STRING:
                values[:] = [data[bounds[j]:bounds[j + 1]].decode("utf-8", "surrogateescape") for j in range(rows)]
            else:
                values[:] = [data[bounds[j]:bounds[j + 1]] for j in range(rows)]
            if valid is not None:
                values[~valid] = None
        else:
            raise FrameError("column {} has unknown type {}".format(name, typ))
        names.append(name)
        columns.append(values)

    index = _column_index(pd, names)
    if block is not None and block[2] == len(columns) and not tensors:
        # Same-typed numeric columns laid out back to back: one 2-D block, no copy.
        dtype, start, count = block
        plan = _block_plan(pd, dtype, start - offset, count, rows, total, index, shape)
        return plan(buf, offset, size) + (plan, {})
    if not columns:  # rows without columns, as pandas holds them
        return pd.DataFrame(index=pd.RangeIndex(rows)), shape, None, {}
    df = pd.DataFrame(dict(zip(range(len(names)), columns)), copy=False)
    df.columns = index
    return df, shape, None, tensors


_INDEX_CACHE = {}


def _column_index(pd, names):
    """A pandas Index of the column names, reused across batches with the same names."""
    key = tuple(names)
    index = _INDEX_CACHE.get(key)
    if index is None:
        if len(_INDEX_CACHE) > 64:
            _INDEX_CACHE.clear()
        index = _INDEX_CACHE[key] = pd.Index(names, dtype=object)
    return index


def _tensor_cells(np, name, arr):
    """The object array ``arr`` of ndarray cells as one N-d array when every cell is a
    numeric ndarray of one shape and dtype (a column of tensor cells); else None."""
    if not len(arr):
        return None
    first = arr[0]
    if not isinstance(first, np.ndarray) or first.ndim == 0 or first.dtype.name not in WIRE_OF_DTYPE:
        return None
    for cell in arr:
        if not isinstance(cell, np.ndarray) or cell.shape != first.shape or cell.dtype != first.dtype:
            return None
    return np.stack(list(arr))


def _column_of(np, pd, name, values):
    """(type, values ndarray, validity bool ndarray or None) for one output column; an
    N-d values array (a column of tensor cells) for a numeric array of more than one
    dimension or cells that are numeric arrays of one shape."""
    if isinstance(values, np.ndarray) and values.ndim > 1:
        typ = WIRE_OF_DTYPE.get(values.dtype.name)
        if typ is None:
            raise FrameError("output '{}' is a {}-D array of {} values".format(name, values.ndim, values.dtype))
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
        return T_TIMESTAMP, arr, (~nat if nat.any() else None)  # encode_frame writes it as ns
    stacked = _tensor_cells(np, name, arr)
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
    raise FrameError("output column '{}' holds values of types {} that have no table type".format(name, kinds))


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


def _json_result(prediction):
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
    except FrameError:
        return _json_result(prediction)


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
            raise FrameError("not a table")
        columns = []
        for name, v in prediction.items():
            typ, arr, valid = _column_of(np, pd, name, v)
            columns.append((name, typ, arr, valid, _null_spelling(np, pd, SHAPE_COLUMNS, v, typ, valid)))
        return SHAPE_COLUMNS, columns, len(values[0])
    if isinstance(prediction, (str, bytes)):
        raise FrameError("not a table")
    if isinstance(prediction, list) and prediction:
        # Nested lists and records; strings mixed with numbers (numpy would make all strings).
        strings = sum(isinstance(v, str) for v in prediction)
        if isinstance(prediction[0], (dict, list, tuple)) or 0 < strings < len(prediction):
            raise FrameError("not a table")
    if isinstance(prediction, pd.DataFrame) and len(prediction.columns) == 0:
        # Rows without columns: as JSON, so that their records are what this pandas makes
        # of them ([] before pandas 3, one {} per row since).
        raise FrameError("not a table")
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
            raise FrameError("not a table")
        else:  # an N-d array: one column of (N-1)-d tensor cells
            shape = SHAPE_ARRAY1D
            items = [("", arr)]
    columns = []
    rows = len(prediction) if isinstance(prediction, (pd.DataFrame, pd.Series)) and not items else None
    for name, values in items:
        typ, arr, valid = _column_of(np, pd, name, values)
        columns.append((name, typ, arr, valid, _null_spelling(np, pd, shape, values, typ, valid)))
        rows = len(arr) if rows is None else rows
    return shape, columns, rows or 0


def _null_spelling(np, pd, shape, values, typ, valid):
    """How the column's nulls are written as JSON (NULLS_*), as MLflow's scoring server
    writes the missing values the model's output held: float NaN as NaN (what pandas >= 3
    holds for a missing string), pandas.NaT of records as "NaT", the others (None,
    pandas.NA) as null."""
    if valid is None or typ == T_FLOAT64:
        return NULLS_DEFAULT
    if typ == T_TIMESTAMP:
        return NULLS_NAT if shape in (SHAPE_DATAFRAME, SHAPE_SERIES) else NULLS_DEFAULT
    cells = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    missing = cells[~valid]
    return NULLS_NAN if all(isinstance(v, float) and v != v for v in missing) else NULLS_DEFAULT


def nanoseconds(np, values):
    """(int64 ns since the epoch, time unit code) of a datetime64 array of any unit;
    ValueError when a datetime lies outside what nanoseconds hold (years 1678 to 2261)."""
    unit = np.datetime_data(values.dtype)[0]
    ns = values.astype("datetime64[ns]")
    present = ~np.isnat(values)
    if unit != "ns" and np.any(ns[present].astype(values.dtype) != values[present]):
        raise ValueError("datetimes outside the range of datetime64[ns] (years 1678 to 2261)")
    return ns.view(np.int64), TIME_UNITS.index(unit) if unit in TIME_UNITS else 0


def encode_frame(shape, columns, rows):
    """The layout of a result frame: (total size, writer(buf, offset))."""
    import numpy as np

    pos = _align(HEADER.size + len(columns) * COLUMN.size)
    plans = []
    for name, typ, arr, valid, nulls in columns:
        name_bytes = name.encode("utf-8")
        plan = {"name": name_bytes, "type": typ, "arr": arr, "valid": valid, "nulls": nulls, "dims": (), "unit": 0}
        if typ == T_TIMESTAMP:
            try:
                arr, plan["unit"] = nanoseconds(np, arr)
            except ValueError as e:
                raise FrameError("output column '{}': {}".format(name, e))
        plan["name_off"] = pos
        pos = _align(pos + len(name_bytes))
        if typ in FIXED_TYPES and getattr(arr, "ndim", 1) > 1:
            plan["dims"] = tuple(arr.shape[1:])
            plan["dims_off"] = pos
            pos = _align(pos + 8 * len(plan["dims"]))
        if valid is not None:
            plan["valid_off"] = pos
            pos = _align(pos + (rows + 7) // 8)
        if typ in (T_STRING, T_BINARY):
            if typ == T_STRING:
                encoded = [v.encode("utf-8", "surrogateescape") if isinstance(v, str) else b"" for v in arr]
            else:
                encoded = [bytes(v) if isinstance(v, (bytes, bytearray)) else b"" for v in arr]
            offsets = np.zeros(rows + 1, dtype=np.int64)
            if rows:
                np.cumsum([len(b) for b in encoded], out=offsets[1:])
            plan["data"] = b"".join(encoded)
            plan["offsets"] = offsets
            plan["offsets_off"] = pos
            pos = _align(pos + 8 * (rows + 1))
            plan["values_off"] = pos
            plan["values_size"] = len(plan["data"])
        elif typ == T_BOOL:
            plan["data"] = np.packbits(np.asarray(arr, dtype=bool), bitorder="little").tobytes()
            plan["values_off"] = pos
            plan["values_size"] = len(plan["data"])
        else:
            plan["data"] = np.ascontiguousarray(arr, dtype=FIXED_TYPES[typ])
            plan["values_off"] = pos
            plan["values_size"] = plan["data"].nbytes
        pos = _align(pos + plan["values_size"])
        plans.append(plan)
    total = pos

    def write(buf, offset):
        HEADER.pack_into(buf, offset, FRAME_MAGIC, FRAME_VERSION, rows, len(plans), shape, total)
        for i, p in enumerate(plans):
            has_valid = p["valid"] is not None
            COLUMN.pack_into(buf, offset + HEADER.size + i * COLUMN.size, p["name_off"], len(p["name"]), p["type"],
                             1 if has_valid else 0, p["nulls"], len(p["dims"]), p.get("valid_off", 0), p["values_off"],
                             p["values_size"], p.get("offsets_off", 0), p.get("dims_off", 0), p["unit"])
            buf[offset + p["name_off"]:offset + p["name_off"] + len(p["name"])] = p["name"]
            if p["dims"]:
                struct.pack_into("<{}q".format(len(p["dims"])), buf, offset + p["dims_off"], *p["dims"])
            if has_valid:
                bits = np.packbits(np.asarray(p["valid"], dtype=bool), bitorder="little").tobytes()
                buf[offset + p["valid_off"]:offset + p["valid_off"] + len(bits)] = bits
            if p["type"] in (T_STRING, T_BINARY):
                off = p["offsets"].tobytes()
                buf[offset + p["offsets_off"]:offset + p["offsets_off"] + len(off)] = off
            data = p["data"]
            mv = memoryview(data).cast("B") if not isinstance(data, bytes) else data
            buf[offset + p["values_off"]:offset + p["values_off"] + p["values_size"]] = mv

    return total, write


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
    raise FrameError("unknown input shape {}".format(shape))


def _schema_work(model, df, shape, plan, exact=False):
    """(df, whether predict must still enforce the input schema on it). Frames of one
    layout all fit the schema or all do not, so a plan remembers which; data that does
    not fit first gets the casts MLflow's server applies to requests (int32/float32
    columns, a tensor spec's dtype), unless its types are ``exact`` (a Python caller's
    own, which the signature enforces as they are)."""
    if shape in (IN_SCALAR, IN_JSON, IN_TENSORS_JSON, IN_FRAME_JSON):
        return df, True
    if shape != SHAPE_DATAFRAME:
        return (df if exact else model._narrow_wire_types(df)), True
    if plan is not None:
        if plan.fits_schema is None:
            plan.fits_schema = model._fits_input_schema(df)
        if plan.fits_schema:
            return df, False
    return (df if exact else model._narrow_wire_types(df)), True


# --- main loop ---------------------------------------------------------------------


def _load_loading_module():
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_loading.py")
    spec = importlib.util.spec_from_file_location("_pyfunc_loading", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["_pyfunc_loading"] = module
    spec.loader.exec_module(module)
    return module


def _cut(text, limit=MAX_ERROR_TEXT):
    if len(text) <= limit:
        return text
    return "{}... [{} more characters]".format(text[:limit], len(text) - limit)


# The loading module's error classes (set once it is loaded): what the error's "kind" is.
_SCHEMA_ERRORS = ()


def _error_kind(exc):
    """"params" or "schema" when the model's signature refused the call, "load" when
    the loader could not load the model, else "model"."""
    if _SCHEMA_ERRORS and isinstance(exc, _SCHEMA_ERRORS[1]):
        return "params"
    if _SCHEMA_ERRORS and isinstance(exc, _SCHEMA_ERRORS[0]):
        return "schema"
    if _SCHEMA_ERRORS and isinstance(exc, _SCHEMA_ERRORS[2]):
        return "load"
    if _SCHEMA_ERRORS and isinstance(exc, _SCHEMA_ERRORS[3]):
        return "input"
    return "model"


def _error(exc, seq=None):
    try:
        text = str(exc)
    except Exception as e:  # noqa: B902 - a broken __str__ must not end the worker
        text = "<{} while formatting the exception: {}>".format(type(e).__name__, e)
    message = {"op": "error", "type": _cut(type(exc).__name__, 200), "kind": _error_kind(exc), "message": _cut(text),
               "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-8000:]}
    if seq is not None:
        message["seq"] = seq
    return message


def _send_error(sock, exc, seq=None):
    """Reports ``exc``; a report that cannot be encoded is replaced by a plain one, so
    that a model's odd exception never ends the worker."""
    try:
        _send(sock, _error(exc, seq))
    except (ValueError, TypeError, UnicodeError) as e:
        fallback = {"op": "error", "type": "Error", "message": "the model raised {} that could not be reported: {}"
                    .format(type(exc).__name__, e), "traceback": ""}
        if seq is not None:
            fallback["seq"] = seq
        _send(sock, fallback)


def serve(sock):
    try:  # fail at start, not mid-batch, when numpy or pandas is missing
        import numpy  # noqa: F401
        import pandas
    except ImportError as e:
        _send(sock, {"op": "error", "type": "MissingDependency", "python": sys.executable,
                     "message": "{}: {}".format(type(e).__name__, e)})
        return 4

    _send(sock, {"op": "hello", "magic": MAGIC, "protocol": PROTOCOL, "pid": os.getpid(),
                 "python": "{}.{}.{}".format(*sys.version_info[:3]), "pandas": pandas.__version__})
    model = None
    mapping = None
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    busy_poll = 0.0  # seconds the parent asked us to poll for the next message
    arriving = True  # messages have been arriving within that window
    answered = None  # when the last answer was sent
    while True:
        if busy_poll and arriving and answered is not None:
            _poll_briefly(poller, busy_poll)
        message, fds = _recv(sock)
        if answered is not None:
            arriving = time.perf_counter() - answered <= busy_poll
            answered = None
        if message is None:
            return 0
        op = message.get("op")
        if op == "map":
            if not fds:
                _send(sock, {"op": "error", "type": "ProtocolError", "message": "map without a file descriptor"})
                continue
            mapping = mmap.mmap(fds[0], message["size"], mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            os.close(fds[0])
            for extra in fds[1:]:
                os.close(extra)
            _send(sock, {"op": "mapped"})
        elif op == "load":
            try:
                global _SCHEMA_ERRORS
                loading = _load_loading_module()
                _SCHEMA_ERRORS = (loading.SchemaEnforcementError, loading.InvalidParametersError,
                                  loading.ModelLoadError, loading._load_sibling("_schema.py").InputError)
                model = loading.load_model(message["model_root"], message["mlmodel"], message.get("model_config"),
                                           prefer_builtin=os.environ.get("PYFUNC_WORKER_MLFLOW_LOADERS") != "1")
                if isinstance(message.get("schema"), dict) and hasattr(model, "use_parsed_schema"):
                    model.use_parsed_schema(message["schema"])
                _send(sock, {"op": "loaded"})
            except BaseException as e:  # noqa: B902 - reported to the parent, which decides
                _send_error(sock, e)
        elif op == "predict":
            seq = message.get("seq")
            busy_poll = max(0.0, float(message.get("busy_poll_us") or 0) / 1e6)
            try:
                if model is None or mapping is None:
                    raise FrameError("predict before the model was loaded and memory mapped")
                df, in_shape, plan, tensors = decode_frame(mapping, message["offset"], message["size"])
                df, enforce = _schema_work(model, df, in_shape, plan, bool(message.get("exact")))
                if in_shape == IN_TENSORS_JSON:
                    data = model._tensors_from_request(json.loads(df.iloc[0, 0]))
                elif in_shape == IN_FRAME_JSON:
                    data = model._frame_from_request(json.loads(df.iloc[0, 0]))
                else:
                    data = model_input(df, in_shape, tensors)
                prediction = model._predict(data, message.get("params"), enforce)
                del df, tensors
                shape, columns, rows = prediction_columns(prediction)
                total, write = encode_frame(shape, columns, rows)
                out = message["out_offset"]
                if out + total > len(mapping):
                    _send(sock, {"op": "grow", "seq": seq, "need": out + total})
                    reply, fds = _recv(sock)
                    if reply is None:
                        return 0
                    if reply.get("op") != "map" or not fds:
                        raise FrameError("expected a larger mapping, got {!r}".format(reply.get("op")))
                    mapping = mmap.mmap(fds[0], reply["size"], mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
                    os.close(fds[0])
                    if out + total > len(mapping):
                        raise FrameError("the new mapping is still too small")
                write(mapping, out)
                _send(sock, {"op": "result", "seq": seq, "offset": out, "size": total})
                answered = time.perf_counter()
            except Exception as e:
                _send_error(sock, e, seq)
        elif op == "exit":
            return 0
        else:
            _send(sock, {"op": "error", "type": "ProtocolError", "message": "unknown op {!r}".format(op)})


def _exit_when_parent_leaves(sock, grace=0.5):
    """Exits when the parent's end of the control socket closes (the parent died, or let
    this worker go), even while predict is busy: the main thread reads the socket only
    between batches. A thread waits on the socket for the hang-up, which poll reports
    without reading anything; an idle main thread sees the end of the socket itself and
    returns, and ``grace`` seconds let it end the worker in order."""
    import threading

    fd = sock.fileno()

    def watch():
        poller = select.poll()
        poller.register(fd, 0)  # POLLHUP, POLLERR and POLLNVAL are reported unasked
        while True:
            events = 0
            for _fd, ev in poller.poll():
                events |= ev
            if events & select.POLLNVAL:
                return  # the main thread closed the socket: it is ending the worker
            if events & (select.POLLHUP | select.POLLERR):
                break
        time.sleep(grace)
        os._exit(0)

    threading.Thread(target=watch, name="pyfunc-parent-watch", daemon=True).start()


def main(argv):
    fd = None
    protocol = None
    for i, arg in enumerate(argv):
        if arg == "--fd" and i + 1 < len(argv):
            fd = int(argv[i + 1])
        elif arg == "--protocol" and i + 1 < len(argv):
            protocol = int(argv[i + 1])
    if fd is None or protocol is None:
        sys.stderr.write("usage: _worker.py --fd N --protocol V\n")
        return 2
    if protocol != PROTOCOL:
        sys.stderr.write("pyfunc worker speaks protocol {}, parent asked for {}\n".format(PROTOCOL, protocol))
        return 3
    sock = socket.socket(fileno=fd)
    _exit_when_parent_leaves(sock)
    # Model code that prints must not corrupt anything: stdout goes to stderr.
    sys.stdout = sys.stderr
    try:
        return serve(sock)
    except (ConnectionError, OSError):
        return 0
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
