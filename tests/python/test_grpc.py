"""`pyfunc serve --grpc-port`: the Open Inference Protocol over gRPC, end to end. Real
servers on loopback, spoken to by Triton's client (tritonclient[grpc], which sends raw
contents) and by stubs built at test time with grpcio-tools from KServe's own
grpc_predict_v2.proto (typed and raw contents). Every answer is compared with the same
server's REST /v2 answer and with MLflow's own predict on the same data."""
import base64
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from test_serve import BEHAVE, ROOT, Server, children, free_port, merged_batches, pyfunc_binary

grpc = pytest.importorskip("grpc")
triton = pytest.importorskip("tritonclient.grpc")
from tritonclient.utils import InferenceServerException  # noqa: E402

KSERVE = "github.com/kserve/kserve@v0.16.0"
KSERVE_PROTO = "python/kserve/kserve/protocol/grpc/grpc_predict_v2.proto"

# Each datatype's numpy dtype and typed field (InferTensorContents).
DTYPES = {"BOOL": (np.bool_, "bool_contents"), "INT8": (np.int8, "int_contents"),
          "INT16": (np.int16, "int_contents"), "INT32": (np.int32, "int_contents"),
          "INT64": (np.int64, "int64_contents"), "UINT8": (np.uint8, "uint_contents"),
          "UINT16": (np.uint16, "uint_contents"), "UINT32": (np.uint32, "uint_contents"),
          "UINT64": (np.uint64, "uint64_contents"), "FP16": (np.float16, None),
          "FP32": (np.float32, "fp32_contents"), "FP64": (np.float64, "fp64_contents"),
          "BYTES": (np.object_, "bytes_contents")}


class GrpcServer(Server):
    """test_serve's Server with --grpc-port, and a tritonclient for it."""

    def __init__(self, model, *args, **kw):
        self.grpc_port = free_port()
        super().__init__(model, "--grpc-port", str(self.grpc_port), *args, **kw)
        self.target = f"127.0.0.1:{self.grpc_port}"
        self.triton = triton.InferenceServerClient(self.target)

    def rest(self, tensors, params=None):
        """The REST /v2 answer for the same tensors: {name: (datatype, shape, data)}."""
        body = {"inputs": [{"name": n, "shape": list(a.shape), "datatype": dt,
                            "data": [v.decode() if isinstance(v, bytes) else v for v in a.ravel().tolist()]}
                           for n, dt, a in tensors]}
        if params:
            body["parameters"] = params
        r = self.post("/v2/models/model/infer", body)
        assert r.status_code == 200, r.text
        return {o["name"]: (o["datatype"], o["shape"], o["data"]) for o in r.json()["outputs"]}

    def infer_triton(self, tensors, params=None):
        return infer_triton(self.triton, tensors, params)


def infer_triton(client, tensors, params=None):
    """tritonclient's infer (raw contents): {name: (datatype, shape, as_numpy)}."""
    inputs = []
    for name, dt, a in tensors:
        i = triton.InferInput(name, list(a.shape), dt)
        i.set_data_from_numpy(a)
        inputs.append(i)
    r = client.infer("model", inputs, parameters=params)
    return {o.name: (o.datatype, list(o.shape), r.as_numpy(o.name)) for o in r.get_response().outputs}


class KServeClient:
    """Messages and calls of inference.GRPCInferenceService as KServe's proto declares
    them. The messages live in a descriptor pool of their own: tritonclient registers
    its own definitions of the same names in protobuf's default pool."""

    def __init__(self, pool, classes, target):
        self.classes = classes
        self.channel = grpc.insecure_channel(target)
        service = pool.FindServiceByName("inference.GRPCInferenceService")
        for m in service.methods:
            req, res = classes[m.input_type.full_name], classes[m.output_type.full_name]
            setattr(self, m.name, self.channel.unary_unary(f"/{service.full_name}/{m.name}",
                                                           request_serializer=req.SerializeToString,
                                                           response_deserializer=res.FromString))

    def msg(self, message, **kw):
        return self.classes["inference." + message](**kw)

    def request(self, tensors, params=None, raw=False, model="model"):
        req = self.msg("ModelInferRequest", model_name=model, id="req-1")
        for name, dt, a in tensors:
            t = req.inputs.add(name=name, datatype=dt, shape=list(a.shape))
            if raw:
                req.raw_input_contents.append(raw_bytes(dt, a))
            else:
                getattr(t.contents, DTYPES[dt][1]).extend(a.ravel().tolist())
        for k, v in (params or {}).items():
            p = req.parameters[k]
            if isinstance(v, bool):
                p.bool_param = v
            elif isinstance(v, int):
                p.int64_param = v
            else:
                p.string_param = v
        return req

    def infer(self, tensors, params=None, raw=False):
        res = self.ModelInfer(self.request(tensors, params, raw))
        assert res.model_name == "model" and res.id == "req-1"
        return decode(res)


def raw_bytes(datatype, a):
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v)) + v for v in a.ravel())
    return np.ascontiguousarray(a, dtype=np.dtype(DTYPES[datatype][0]).newbyteorder("<")).tobytes()


def decode(res):
    """{name: (datatype, shape, array)} of a ModelInferResponse, read as KServe's
    InferResponse.from_grpc reads it (raw contents first, else the typed field)."""
    out = {}
    for i, o in enumerate(res.outputs):
        shape = list(o.shape)
        if i < len(res.raw_output_contents):
            raw = res.raw_output_contents[i]
            if o.datatype == "BYTES":
                values, pos = [], 0
                while pos < len(raw):
                    (n,) = struct.unpack_from("<I", raw, pos)
                    values.append(raw[pos + 4:pos + 4 + n])
                    pos += 4 + n
                a = np.array(values, dtype=np.object_)
            else:
                a = np.frombuffer(raw, dtype=DTYPES[o.datatype][0])
        else:
            a = np.array(getattr(o.contents, DTYPES[o.datatype][1]), dtype=DTYPES[o.datatype][0])
        out[o.name] = (o.datatype, shape, a.reshape(shape))
    return out


@pytest.fixture(scope="session")
def kserve_proto(tmp_path_factory):
    """KServe's grpc_predict_v2.proto (Go module proxy, cached in the Go module cache),
    compiled by grpcio-tools into a descriptor pool: (pool, {full name: message class})."""
    grpc_tools = pytest.importorskip("grpc_tools.protoc")
    go = shutil.which("go")
    if go is None:
        pytest.skip("no `go` to fetch KServe's proto through the Go module proxy")
    proc = subprocess.run([go, "mod", "download", "-json", KSERVE], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path_factory.mktemp("go"))
    info = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    if proc.returncode != 0 or not info.get("Dir"):
        pytest.skip("KServe's module is unreachable: " + (info.get("Error") or proc.stderr.strip())[:300])
    proto = Path(info["Dir"]) / KSERVE_PROTO
    out = tmp_path_factory.mktemp("kserve") / "grpc_predict_v2.pb"
    assert grpc_tools.main(["protoc", f"-I{proto.parent}", f"--descriptor_set_out={out}", proto.name]) == 0
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    pool = descriptor_pool.DescriptorPool()
    for f in files:
        pool.Add(f)
    return pool, message_factory.GetMessages(list(files), pool=pool)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec
    from sklearn.linear_model import LinearRegression

    root = tmp_path_factory.mktemp("grpc")
    sig = ModelSignature(inputs=None, params=ParamSchema([ParamSpec("mode", "string", "echo")]))
    mlflow.pyfunc.save_model(str(root / "behave"), loader_module="behave_model", code_paths=[str(BEHAVE)],
                             signature=sig, pip_requirements=["pandas"])
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.5, 1.5, 2.0, 0.0]})
    reg = LinearRegression().fit(X, X.a * 2 + X.b)
    mlflow.sklearn.save_model(reg, str(root / "sk"), signature=infer_signature(X, reg.predict(X)),
                              pip_requirements=["scikit-learn"])
    # A PythonModel with a float32 tensor signature, and one of strings with a param
    # (models from code: the worker imports them by path).
    (root / "tensor_model.py").write_text(
        "import numpy as np\nimport mlflow\n"
        "class Affine(mlflow.pyfunc.PythonModel):\n"
        "    def predict(self, context, model_input, params=None):\n"
        "        assert model_input.dtype == np.float32, model_input.dtype\n"
        "        return model_input * np.float32(2) + np.float32(0.25)\n"
        "mlflow.models.set_model(Affine())\n")
    mlflow.pyfunc.save_model(str(root / "tensor"), python_model=str(root / "tensor_model.py"),
                             signature=ModelSignature(inputs=Schema([TensorSpec(np.dtype("float32"), (-1, 3))])),
                             pip_requirements=["numpy"])
    (root / "text_model.py").write_text(
        "import mlflow\n"
        "class Shout(mlflow.pyfunc.PythonModel):\n"
        "    def predict(self, context, model_input, params=None):\n"
        "        suffix = (params or {}).get('suffix', '')\n"
        "        return [t.upper() + suffix * n for t, n in zip(model_input['text'], model_input['n'])]\n"
        "mlflow.models.set_model(Shout())\n")
    mlflow.pyfunc.save_model(str(root / "text"), python_model=str(root / "text_model.py"),
                             signature=ModelSignature(inputs=Schema([ColSpec("string", "text"), ColSpec("long", "n")]),
                                                      params=ParamSchema([ParamSpec("suffix", "string", "!")])),
                             pip_requirements=["pandas"])
    return {name: root / name for name in ("behave", "sk", "tensor", "text")}


@pytest.fixture(scope="module")
def behave(models):
    s = GrpcServer(models["behave"], "--batching", "rows", workers=2)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def kserve(behave, kserve_proto):
    return KServeClient(*kserve_proto, behave.target)


def assert_same_outputs(rest, got):
    """A gRPC answer ({name: (datatype, shape, array)}) equals the REST /v2 answer."""
    assert list(got) == list(rest)
    for name, (datatype, shape, data) in rest.items():
        g_datatype, g_shape, g_array = got[name]
        assert (g_datatype, g_shape) == (datatype, shape), name
        flat = g_array.ravel().tolist()
        if datatype == "BYTES":  # REST writes text as it is and other bytes as base64
            flat = [text_or_base64(v, want) for v, want in zip(flat, data)]
        assert flat == data, name


def text_or_base64(value, want):
    try:
        if value.decode() == want:
            return want
    except UnicodeDecodeError:
        pass
    return base64.b64encode(value).decode()


def ask_all(server, kserve_client, tensors, params=None):
    """The answer over gRPC three ways (tritonclient raw, KServe typed, KServe raw), each
    checked equal to the REST answer; returns the gRPC answer."""
    rest = server.rest(tensors, params)
    got = server.infer_triton(tensors, params)
    assert_same_outputs(rest, got)
    if all(datatype != "FP16" for _, datatype, _ in tensors):  # FP16 has no typed field
        assert_same_outputs(rest, kserve_client.infer(tensors, params))
    assert_same_outputs(rest, kserve_client.infer(tensors, params, raw=True))
    return got


# --- Health and metadata ------------------------------------------------------------------


def health(target):
    """grpc.health.v1.Health/Check for the server ("" service): SERVING is 1."""
    with grpc.insecure_channel(target) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=bytes,
                                    response_deserializer=bytes)
        answer = check(b"", timeout=5)
    return answer[1] if len(answer) == 2 and answer[0] == 0x08 else 0  # field 1, varint


def test_health_and_metadata_rpcs(behave, kserve):
    assert behave.triton.is_server_live() and behave.triton.is_server_ready()
    assert behave.triton.is_model_ready("model") and behave.triton.is_model_ready("model", "3")
    assert kserve.ServerLive(kserve.msg("ServerLiveRequest")).live
    assert kserve.ServerReady(kserve.msg("ServerReadyRequest")).ready
    assert kserve.ModelReady(kserve.msg("ModelReadyRequest", name="model")).ready
    for call, request in ((kserve.ModelReady, "ModelReadyRequest"), (kserve.ModelMetadata, "ModelMetadataRequest")):
        with pytest.raises(grpc.RpcError) as e:
            call(kserve.msg(request, name="other"))
        assert (e.value.code(), e.value.details()) == (grpc.StatusCode.NOT_FOUND, "Model other not found")
    meta = kserve.ServerMetadata(kserve.msg("ServerMetadataRequest"))
    assert meta.name == "pyfunc" and meta.version == requests.get(behave.url + "/version").text
    assert behave.triton.get_server_metadata().name == "pyfunc"
    rest = requests.get(behave.url + "/v2/models/model").json()
    m = kserve.ModelMetadata(kserve.msg("ModelMetadataRequest", name="model"))
    assert (m.name, m.platform, list(m.versions), list(m.inputs)) == (rest["name"], rest["platform"],
                                                                      rest["versions"], rest["inputs"])
    assert health(behave.target) == 1  # SERVING, for Kubernetes' gRPC probes


def test_model_metadata_lists_the_signature_as_rest_does(models, kserve_proto):
    s = GrpcServer(models["text"], workers=1)
    try:
        rest = requests.get(s.url + "/v2/models/model").json()
        assert rest["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]},
                                  {"name": "n", "datatype": "INT64", "shape": [-1]}]
        k = KServeClient(*kserve_proto, s.target)
        m = k.ModelMetadata(k.msg("ModelMetadataRequest", name="model", version="1"))
        assert [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in m.inputs] == rest["inputs"]
        assert [i.name for i in s.triton.get_model_metadata("model").inputs] == ["text", "n"]
    finally:
        s.stop()


# --- ModelInfer: the REST /v2 answer, and MLflow's --------------------------------------


def mlflow_outputs(prediction):
    """MLflow's predict output as the protocol's output tensors: {name: array}."""
    if isinstance(prediction, pd.DataFrame):
        return {c: prediction[c].to_numpy() for c in prediction.columns}
    if isinstance(prediction, pd.Series):
        return {prediction.name or "predict": prediction.to_numpy()}
    if isinstance(prediction, dict):
        return {k: np.asarray(v) for k, v in prediction.items()}
    return {"predict": np.asarray(prediction)}


def assert_same_as_mlflow(want, got):
    assert set(got) == set(want)
    for name, expected in want.items():
        array = got[name][2]
        if array.dtype == np.object_:  # BYTES: text models give str
            array = np.array([v.decode() if isinstance(e, str) else v for v, e in zip(array.ravel(), expected.ravel())],
                             dtype=np.object_).reshape(array.shape)
        else:
            assert array.dtype == expected.dtype, name
        np.testing.assert_array_equal(array, expected, err_msg=name)


def mlflow_predict(path, data, params=None):
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(path)).predict(data, params=params)


def columns(tensors):
    """The DataFrame the server makes of column tensors, as MLflow is given it."""
    frame = {}
    for name, dt, a in tensors:
        if dt == "BYTES":
            frame[name] = [v.decode() for v in a]
        elif dt.startswith("FP"):
            frame[name] = a.astype(np.float64)
        elif dt == "BOOL":
            frame[name] = a
        else:
            frame[name] = a.astype(np.int64)
    return pd.DataFrame(frame)


ROWS = [("a", "INT64", np.array([1, -2, 3], dtype=np.int64)),
        ("b", "FP32", np.array([0.5, 1.25, -3.0], dtype=np.float32)),
        ("s", "BYTES", np.array([b"x", "\u00e9t\u00e9".encode(), b""], dtype=np.object_))]


@pytest.mark.parametrize("mode", ["echo", "sum", "2d", "narrow", "dict_arrays", "series", "list", "f32"])
def test_infer_answers_as_rest_and_mlflow(behave, kserve, models, mode):
    got = ask_all(behave, kserve, ROWS, {"mode": mode})
    assert_same_as_mlflow(mlflow_outputs(mlflow_predict(models["behave"], columns(ROWS), {"mode": mode})), got)


def test_every_input_datatype_raw_and_typed(behave, kserve, models):
    tensors = [("bool", "BOOL", np.array([True, False])), ("i8", "INT8", np.array([-128, 127], dtype=np.int8)),
               ("i16", "INT16", np.array([-3, 300], dtype=np.int16)),
               ("i32", "INT32", np.array([-70000, 5], dtype=np.int32)),
               ("u8", "UINT8", np.array([0, 255], dtype=np.uint8)),
               ("u16", "UINT16", np.array([1, 65535], dtype=np.uint16)),
               ("u32", "UINT32", np.array([4000000000, 2], dtype=np.uint32)),
               ("u64", "UINT64", np.array([2 ** 62, 3], dtype=np.uint64)),
               ("f16", "FP16", np.array([0.5, -2.0], dtype=np.float16)),
               ("f64", "FP64", np.array([0.1, 1e300]))]
    got = ask_all(behave, kserve, tensors, {"mode": "echo"})
    assert_same_as_mlflow(mlflow_outputs(mlflow_predict(models["behave"], columns(tensors))), got)


def test_sklearn_model(models, kserve_proto):
    s = GrpcServer(models["sk"], workers=1)
    try:
        tensors = [("a", "FP64", np.array([1.0, 2.5, 7.0])), ("b", "FP64", np.array([0.5, 0.0, -1.0]))]
        got = ask_all(s, KServeClient(*kserve_proto, s.target), tensors)
        assert_same_as_mlflow(mlflow_outputs(mlflow_predict(models["sk"], columns(tensors))), got)
        # One [N, 2] tensor is columns "0", "1", not the signature's: refused as REST refuses it.
        wide = [("x", "FP64", np.array([[1.0, 0.5]]))]
        r = s.post("/v2/models/model/infer", {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64",
                                                          "data": [1.0, 0.5]}]})
        with pytest.raises(InferenceServerException) as e:
            s.infer_triton(wide)
        assert r.status_code == 400 and e.value.status() == "StatusCode.INVALID_ARGUMENT"
        assert e.value.message() == r.json()["error"]
    finally:
        s.stop()


def test_float32_tensor_model(models, kserve_proto):
    s = GrpcServer(models["tensor"], workers=1)
    try:
        x = np.array([[5.1, 3.5, 1.4], [1, 2, 3]], dtype=np.float32)
        got = ask_all(s, KServeClient(*kserve_proto, s.target), [("x", "FP32", x)])
        assert got["predict"][:2] == ("FP32", [2, 3])
        assert_same_as_mlflow(mlflow_outputs(mlflow_predict(models["tensor"], x)), got)
    finally:
        s.stop()


def test_string_model_with_params(models, kserve_proto):
    s = GrpcServer(models["text"], workers=1)
    try:
        k = KServeClient(*kserve_proto, s.target)
        tensors = [("text", "BYTES", np.array([b"ab", b"c\xc3\xa9"], dtype=np.object_)),
                   ("n", "INT64", np.array([1, 2], dtype=np.int64))]
        for params in (None, {"suffix": "?"}):
            got = ask_all(s, k, tensors, params)
            want = mlflow_predict(models["text"], columns(tensors), params)
            assert [v.decode() for v in got["predict"][2]] == want == (["AB!", "CÉ!!"] if params is None
                                                                       else ["AB?", "CÉ??"])
        with pytest.raises(grpc.RpcError) as e:  # params that do not fit their schema: REST's error
            k.infer(tensors, {"suffix": 3})
        r = s.post("/v2/models/model/infer", {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES",
                                                          "data": ["ab", "c"]},
                                                         {"name": "n", "shape": [2], "datatype": "INT64",
                                                          "data": [1, 2]}], "parameters": {"suffix": 3}})
        assert r.status_code == 400
        assert (e.value.code(), e.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, r.json()["error"])
    finally:
        s.stop()


def test_concurrent_grpc_and_rest_calls_each_get_their_own_rows(behave, kserve):
    """Calls of both protocols merge into the same batches (--batching rows); each answer
    holds its own rows."""
    def one(i):
        a = np.arange(i % 5 + 1, dtype=np.float64) + 100 * i
        tensors = [("a", "FP64", a)]
        if i % 3 == 0:
            got = behave.rest(tensors, {"mode": "sum"})["predict"][2]
        elif i % 3 == 1:
            got = behave.infer_triton(tensors, {"mode": "sum"})["predict"][2].tolist()
        else:
            got = kserve.infer(tensors, {"mode": "sum"}, raw=i % 2 == 0)["predict"][2].tolist()
        return got == a.tolist()

    merged = merged_batches(behave)
    with ThreadPoolExecutor(12) as pool:
        assert all(pool.map(one, range(240)))
    assert merged_batches(behave) > merged


def test_grpc_port_from_the_environment(models):
    port, grpc_port = free_port(), free_port()
    env = dict(os.environ, PYFUNC_PYTHON=sys.executable, PYFUNC_GRPC_PORT=str(grpc_port))
    proc = subprocess.Popen([pyfunc_binary(), "serve", "-m", str(models["sk"]), "-p", str(port), "--env-manager",
                             "local"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        client = triton.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        deadline = time.time() + 60
        while True:
            assert proc.poll() is None and time.time() < deadline
            try:
                if client.is_server_ready():
                    break
            except InferenceServerException:
                pass
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert f"gRPC 127.0.0.1:{grpc_port}" in proc.stderr.read()
        proc.stderr.close()


# --- Malformed requests: INVALID_ARGUMENT naming the tensor, and the server goes on ---------


def tensor(req, name, datatype, shape):
    return req.inputs.add(name=name, datatype=datatype, shape=shape)


def hostile(k, case):
    req = k.msg("ModelInferRequest", model_name="model")
    if case == "shape_data_mismatch":
        tensor(req, "x", "FP64", [3]).contents.fp64_contents.extend([1, 2])
    elif case == "raw_wrong_size":
        tensor(req, "x", "FP32", [3])
        req.raw_input_contents.append(np.zeros(2, dtype=np.float32).tobytes())
    elif case == "shape_overflow":
        tensor(req, "x", "FP64", [2 ** 62, 4])
    elif case == "shape_amplification":  # [0, K]: no data to bound K
        tensor(req, "x", "FP64", [0, 2000000])
    elif case == "raw_for_some_inputs":
        tensor(req, "a", "FP64", [1])
        tensor(req, "b", "FP64", [1])
        req.raw_input_contents.append(np.zeros(1).tobytes())
    elif case == "raw_and_typed":
        tensor(req, "a", "FP64", [1]).contents.fp64_contents.append(1)
        req.raw_input_contents.append(np.zeros(1).tobytes())
    elif case == "unsupported_datatype":
        tensor(req, "x", "COMPLEX64", [1]).contents.fp32_contents.append(1)
    elif case == "wrong_contents_field":
        tensor(req, "x", "FP32", [1]).contents.fp64_contents.append(1)
    elif case == "bytes_past_end":
        tensor(req, "s", "BYTES", [1])
        req.raw_input_contents.append(struct.pack("<I", 1000) + b"abc")
    elif case == "uint64_beyond_int64":
        tensor(req, "u", "UINT64", [1]).contents.uint64_contents.append(2 ** 64 - 1)
    elif case == "no_inputs":
        pass
    return req


HOSTILE = {
    "shape_data_mismatch": "inputs[0] 'x': shape [3, 1] holds 3 values, data has 2",
    "raw_wrong_size": "inputs[0] 'x': raw contents of 8 bytes; shape [3, 1] of FP32 takes 12 bytes",
    "shape_overflow": "inputs[0] 'x': shape [4611686018427387904, 4] holds more values than any request can carry",
    "shape_amplification": "inputs[0] 'x': shape [0, 2000000] has more than 65536 columns",
    "raw_for_some_inputs": "raw_input_contents has 1 entries for 2 inputs: either every input's elements are raw "
                           "or none",
    "raw_and_typed": "inputs[0] 'a': the tensor has fp64_contents beside raw_input_contents: a request's elements "
                     "are raw or typed, not both",
    "unsupported_datatype": "inputs[0] 'x': unsupported datatype 'COMPLEX64'",
    "wrong_contents_field": "inputs[0] 'x': FP32 elements go in fp32_contents; the tensor has fp64_contents",
    "bytes_past_end": "inputs[0] 's': BYTES element 0 of 1000 bytes runs past the raw contents' end (3 bytes left)",
    "uint64_beyond_int64": "inputs[0] 'u': 18446744073709551615 does not fit a 64-bit integer",
    "no_inputs": "'inputs' must be a non-empty list of tensors",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_malformed_requests_are_invalid_argument_and_the_server_goes_on(behave, kserve, case):
    with pytest.raises(grpc.RpcError) as e:
        kserve.ModelInfer(hostile(kserve, case), timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == HOSTILE[case]
    ok = kserve.infer([("a", "FP64", np.array([2.0]))], {"mode": "sum"})
    assert ok["predict"][2].tolist() == [2.0]


def test_unknown_model_model_errors_and_oversized_messages(behave, kserve, models):
    with pytest.raises(grpc.RpcError) as e:
        kserve.ModelInfer(kserve.request([("a", "FP64", np.array([1.0]))], model="other"))
    assert (e.value.code(), e.value.details()) == (grpc.StatusCode.NOT_FOUND, "Model other not found")
    # A model that raises: REST's 400 and message, as INVALID_ARGUMENT.
    with pytest.raises(grpc.RpcError) as e:
        kserve.infer([("a", "FP64", np.array([1.0]))], {"mode": "raise"})
    r = behave.post("/v2/models/model/infer", {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64",
                                                           "data": [1.0]}], "parameters": {"mode": "raise"}})
    assert r.status_code == 400 and e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == r.json()["error"] and "the model refuses: 1 rows" in e.value.details()

    s = GrpcServer(models["behave"], "--max-body-size", "100000", workers=1)
    try:
        big = np.zeros(20000)  # 160 kB of raw contents
        with pytest.raises(InferenceServerException) as e:
            s.infer_triton([("a", "FP64", big)])
        assert e.value.status() == "StatusCode.RESOURCE_EXHAUSTED"
        assert s.infer_triton([("a", "FP64", np.ones(3))], {"mode": "sum"})["predict"][2].tolist() == [1.0] * 3
    finally:
        s.stop()


# --- Operations: timeout, queue, metrics, drain ---------------------------------------------


def test_timeout_queue_full_metrics_and_drain(models):
    s = GrpcServer(models["behave"], "--max-queue", "1", "--grace-period", "10", timeout=2)
    try:
        pid = s.proc.pid
        one = [("x", "INT64", np.array([1], dtype=np.int64))]
        with ThreadPoolExecutor(4) as pool:
            hang = pool.submit(s.infer_triton, one, {"mode": "hang"})
            time.sleep(0.3)
            queued = pool.submit(s.infer_triton, one)
            time.sleep(0.3)
            with pytest.raises(InferenceServerException) as refused:
                s.infer_triton(one)
            assert refused.value.status() == "StatusCode.UNAVAILABLE"
            with pytest.raises(InferenceServerException) as late:
                hang.result()
            assert late.value.status() == "StatusCode.DEADLINE_EXCEEDED"
            assert late.value.message() == "Request processing time exceeded limit"
            try:
                queued.result()
            except InferenceServerException as e:  # it waited behind the hung one past its own deadline
                assert e.status() == "StatusCode.DEADLINE_EXCEEDED"
        assert s.infer_triton(one, {"mode": "sum"})["predict"][2].tolist() == [1]  # the worker was replaced
        assert s.triton.is_server_ready()
        metrics = requests.get(s.url + "/metrics").text
        for line in ('pyfunc_grpc_requests_total{rpc="ModelInfer",code="OK"}',
                     'pyfunc_grpc_requests_total{rpc="ModelInfer",code="UNAVAILABLE"}',
                     'pyfunc_grpc_requests_total{rpc="ModelInfer",code="DEADLINE_EXCEEDED"}',
                     'pyfunc_grpc_requests_total{rpc="ServerReady",code="OK"}'):
            assert line in metrics, line

        # SIGTERM drains: the ModelInfer in flight finishes, then the process exits 0.
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(s.infer_triton, one, {"mode": "sleep"})
            time.sleep(0.3)
            s.proc.send_signal(signal.SIGTERM)
            time.sleep(0.1)
            with pytest.raises(InferenceServerException) as after:  # no new calls while draining
                infer_triton(triton.InferenceServerClient(s.target), one)
            assert after.value.status() == "StatusCode.UNAVAILABLE"
            assert slow.result()["x"][2].tolist() == [1]
        assert s.proc.wait(15) == 0
        assert children(pid) == []
    finally:
        s.stop()


def test_a_build_without_grpc_says_so(models):
    binary = ROOT / "build/cpp/pyfunc_nogrpc"
    if not binary.exists():
        pytest.skip("no build/cpp/pyfunc_nogrpc (a build with gRPC and tests makes it)")
    proc = subprocess.run([str(binary), "serve", "-m", str(models["sk"]), "--grpc-port", "0", "-p", "0",
                           "--env-manager", "local"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "--grpc-port: this build of pyfunc has no gRPC" in proc.stderr
