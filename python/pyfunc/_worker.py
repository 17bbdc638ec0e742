"""The pyfunc worker: runs one model inside its own environment, fed over shared memory.

A parent process (libpyfunc's Model, one Worker per process) starts this file by path with the model
environment's interpreter:

    <python> _worker.py --fd <control socket fd> --protocol <version>

It must run in any Python >= 3.8 with numpy and pandas, and nothing of pyfunc
installed: it imports only the standard library, numpy, pandas, and the files next to
it by path: ``_columns.py`` (pandas <-> typed columns, shared with the caller's side)
and the loading routine ``_loading.py``.

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


def _load_sibling(file_name):
    """A module next to this file, by path: the worker runs where pyfunc is not installed."""
    import importlib.util

    module_name = "_pyfunc_" + file_name[:-3].lstrip("_")
    module = sys.modules.get(module_name)
    if module is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), file_name)
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return module


if __package__:  # imported as pyfunc._worker
    from . import _columns
else:  # run by path in the model's environment
    _columns = _load_sibling("_columns.py")

# The codes of types and shapes the frame codec needs (docs/worker-protocol.md), the codec's.
T_BOOL, T_STRING, T_TIMESTAMP, T_BINARY = _columns.T_BOOL, _columns.T_STRING, _columns.T_TIMESTAMP, _columns.T_BINARY
FIXED_TYPES, TIME_UNITS, SHAPE_DATAFRAME = _columns.FIXED_TYPES, _columns.TIME_UNITS, _columns.SHAPE_DATAFRAME
IN_SCALAR, IN_JSON, IN_TENSORS_JSON, IN_FRAME_JSON, IN_PARQUET = (
    _columns.IN_SCALAR, _columns.IN_JSON, _columns.IN_TENSORS_JSON, _columns.IN_FRAME_JSON, _columns.IN_PARQUET)


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
            if typ == T_TIMESTAMP or valid is not None:
                values = _columns.pandas_values(typ, values, valid, unit)
        elif typ == T_BOOL:
            values = _unpack_bits(np, buf, check(values_off, (rows + 7) // 8, "values of " + name), rows)
            values = _columns.pandas_values(typ, values, valid)
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
                arr, plan["unit"] = _columns.nanoseconds(arr)
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


def _predict(model, df, shape, plan, tensors, params, exact):
    """The model's prediction for an input frame of ``shape`` decoded as ``df`` (with
    ``plan`` and ``tensors``, see decode_frame). Frames of one layout all fit the input
    schema or all do not, so a plan remembers which; ``exact``: the frame's types are the
    caller's own (else they came from a text codec, see PyFuncModel.predict_table)."""
    if shape in (IN_TENSORS_JSON, IN_FRAME_JSON):
        return model.predict_request(json.loads(df.iloc[0, 0]), params)
    if shape == IN_PARQUET:
        return model.predict_parquet(df.iloc[0, 0])
    fits = False
    if shape == SHAPE_DATAFRAME and plan is not None:
        if plan.fits_schema is None:
            plan.fits_schema = model.fits_input_schema(df)
        fits = plan.fits_schema
    as_input = None if shape == SHAPE_DATAFRAME else lambda table: _columns.model_input(table, shape, tensors)
    # A scalar and a JSON object are the one cell as it is: nothing to narrow.
    return model.predict_table(df, params, as_input=as_input, exact=exact or shape in (IN_SCALAR, IN_JSON),
                               fits_schema=fits)


# --- main loop ---------------------------------------------------------------------


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
                loading = _load_sibling("_loading.py")
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
                prediction = _predict(model, df, in_shape, plan, tensors, message.get("params"),
                                      bool(message.get("exact")))
                del df, tensors
                shape, columns, rows = _columns.prediction_columns(prediction)
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
