"""`pyfunc serve` end to end: the real binary on a free loopback port, real Python
workers, MLflow's own client and MLflow's own request handling as the reference."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]

# A model whose behaviour is chosen per call with params={"mode": ...}; "sleep" takes
# long enough to be caught in flight, "crash" kills its worker, "hang" never returns.
BEHAVE = ROOT / "tests" / "data" / "models" / "behave" / "behave_model.py"


def pyfunc_binary():
    if os.environ.get("PYFUNC_BINARY"):
        return os.environ["PYFUNC_BINARY"]
    for p in (ROOT / "build/cpp/pyfunc", ROOT / ".venv/bin/pyfunc"):
        if p.exists():
            return str(p)
    pytest.skip("no pyfunc binary (build/cpp/pyfunc or .venv/bin/pyfunc)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d))
    return sorted(out)


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def wait_until(predicate, timeout=15.0):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "condition not reached within {} s".format(timeout)
        time.sleep(0.05)


class Server:
    def __init__(self, model, *args, workers=1, timeout=10):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [pyfunc_binary(), "serve", "-m", str(model), "-p", str(self.port), "-w", str(workers),
               "-t", str(timeout), "--env-manager", "local", *args]
        env = dict(os.environ, PYFUNC_PYTHON=sys.executable)
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read()
            try:
                if requests.get(self.url + "/ping", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError("server did not become ready")

    def post(self, path="/invocations", body=None, content_type="application/json", **kw):
        data = json.dumps(body) if isinstance(body, (dict, list)) else body
        return requests.post(self.url + path, data=data, headers={"Content-Type": content_type}, **kw)

    def metric(self, name):
        text = requests.get(self.url + "/metrics").text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.proc.stderr.closed:
            self.log = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ParamSchema, ParamSpec
    from sklearn.linear_model import LinearRegression

    root = tmp_path_factory.mktemp("serve")
    sig = ModelSignature(inputs=None, params=ParamSchema([ParamSpec("mode", "string", "echo")]))
    mlflow.pyfunc.save_model(str(root / "behave"), loader_module="behave_model",
                             code_paths=[str(BEHAVE)], signature=sig,
                             pip_requirements=["pandas"])
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.5, 1.5, 2.0, 0.0]})
    y = X.a * 2 + X.b
    reg = LinearRegression().fit(X, y)
    mlflow.sklearn.save_model(reg, str(root / "sk"), signature=infer_signature(X, reg.predict(X)),
                             pip_requirements=["scikit-learn"])
    return {"behave": root / "behave", "sk": root / "sk"}


@pytest.fixture(scope="module")
def server(models):
    # The behave model's modes used with concurrency are row-wise: merging is opted into.
    s = Server(models["behave"], "--max-body-size", "200000", "--batching", "rows", workers=2)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def mlflow_reference(models):
    """MLflow's own /invocations handling, in process: (body, content type) → (status, body)."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    model = mlflow.pyfunc.load_model(str(models["behave"]))

    def score(body, content_type="application/json"):
        data = json.dumps(body) if isinstance(body, dict) else body
        try:
            r = scoring_server.invocations(data, content_type, model, model.metadata.get_input_schema())
            return r.status, r.response
        except MlflowException as e:
            return e.get_http_status_code(), e.serialize_as_json()

    return score


# --- MLflow's protocol ----------------------------------------------------------------


def test_mlflow_scoring_server_client_works(server):
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    client = ScoringServerClient("127.0.0.1", server.port)
    client.wait_server_ready(timeout=10)
    df = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5]})
    got = client.invoke(df).get_predictions()
    pd.testing.assert_frame_equal(got, df)
    got = client.invoke(df, params={"mode": "sum"}).get_predictions()
    np.testing.assert_allclose(np.asarray(got).ravel(), [1.5, 3.5, 5.5])
    assert client.get_version()


def test_health_and_version(server):
    for path in ("/ping", "/health"):
        r = requests.get(server.url + path)
        assert (r.status_code, r.text, r.headers["Content-Type"]) == (200, "\n", "application/json")
    r = requests.get(server.url + "/version")
    assert r.status_code == 200 and r.text and '"' not in r.text


def _parquet(frame):
    import io

    buf = io.BytesIO()
    frame.to_parquet(buf)
    return buf.getvalue()


REQUESTS = [
    ({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2.5], [3, 4.0]]}}, "application/json"),
    ({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2.5], [3, 4.0]]}, "params": {"mode": "sum"}},
     "application/json"),
    ({"dataframe_records": [{"a": 1, "s": "x"}, {"a": 2, "s": "\u00e9"}]}, "application/json"),
    # A missing string comes back as pandas holds it: None (null), or NaN in pandas >= 3.
    ({"dataframe_records": [{"a": 1, "s": "x"}, {"a": 2, "s": None}]}, "application/json"),
    ({"dataframe_records": [{"a": 1.5}, {"a": None}], "params": {"mode": "series"}}, "application/json"),
    # (instances and inputs reach MLflow's model as a dict of arrays but pyfunc's as a
    # DataFrame, which this model's answers reflect; they are checked on their own below.)
    ({"dataframe_records": [{"a": 1, "b": 2.5}], "params": {"mode": "sum"}}, "application/json; charset=UTF-8"),
    # Narrow numpy types, float32/16 and bytes in the output, written as MLflow writes them.
    ({"dataframe_split": {"columns": ["a"], "data": [[1], [2], [3]]}, "params": {"mode": "narrow"}},
     "application/json"),
    ({"dataframe_split": {"columns": ["a"], "data": [[1], [2], [3]]}, "params": {"mode": "f32"}},
     "application/json"),
    ({"dataframe_split": {"columns": ["a"], "data": [[1], [2], [3]]}, "params": {"mode": "dict_arrays"}},
     "application/json"),
    ({"dataframe_split": {"columns": ["a"], "data": [[1], [2]]}, "params": {"mode": "list_cells"}},
     "application/json"),
    # No columns at all (a model's one column left out): once a crash of the server.
    ({"dataframe_split": {"columns": [], "data": [[], [], []]}}, "application/json"),
    ("a,b\n1,x\n2,y\n", "text/csv"),
    ("a,b\n1,2\n", "text/csv; charset=utf-8"),
    ({"dataframe_split": {"columns": ["a"], "data": [[1]]}, "params": {"mode": "raise"}}, "application/json"),
    # The error's kind travels as a field: a model's own class named like the schema
    # error is a model error, as in MLflow.
    ({"dataframe_split": {"columns": ["a"], "data": [[1]]}, "params": {"mode": "named_like_schema_error"}},
     "application/json"),
    ({"inputs": [1], "dataframe_split": {"data": [[1]]}}, "application/json"),
    ("a,b\n1,2\n", "text/csv; charset=latin-1"),
    ("a,b\n1,2\n", "application/json; format=pandas-split"),
    ("a,b\n1,2\n", "text/plain"),
    # Parquet bodies (MLflow 3.17: pandas.read_parquet), read by pandas in the worker.
    (_parquet(pd.DataFrame({"a": [1, 2, 3], "b": [0.5, None, 2.5], "s": ["x", "y", None]})),
     "application/vnd.apache.parquet"),
    (_parquet(pd.DataFrame({"a": [1.5, 2.5]})), "application/vnd.apache.parquet; charset=utf-8"),
    (_parquet(pd.DataFrame({"a": [1, 2]}))[:-9], "application/vnd.apache.parquet"),  # truncated
    (b"PAR1 is not enough", "application/vnd.apache.parquet"),
    # 17-digit numbers, which pandas before 3.1 reads one bit off the nearest double about
    # half the time: the echo is what MLflow's read_csv of this pandas gives, to the bit.
    ("x,y\n0.12345678901234567,3.141592653589793238\n-0.30000000000000004,0.000123456789012345678\n"
     "0.71518936637241929,1e23\n", "text/csv"),
]


@pytest.mark.parametrize("body,content_type", REQUESTS)
def test_same_response_as_mlflows_scoring_server(server, mlflow_reference, body, content_type):
    want_status, want_body = mlflow_reference(body, content_type)
    r = server.post(body=body, content_type=content_type)
    assert r.status_code == want_status, r.text
    if want_status == 200 or want_status == 415:
        assert r.text == want_body
    else:
        got, want = r.json(), json.loads(want_body)
        assert got["error_code"] == want["error_code"]
        # MLflow prints a Python set there, in hash order.
        unordered = re.compile(r"\{'[^}]*\}")
        assert unordered.sub("{}", got["message"]) == unordered.sub("{}", want["message"])


def test_instances_and_inputs(server, mlflow_reference):
    # The behave model has no column signature: it gets a dict or a list, as from MLflow,
    # and its DataFrame-only "sum" mode fails the same way.
    for body in ({"instances": [{"a": 1, "b": 2.5}, {"a": 2, "b": 1}]}, {"inputs": {"a": [1, 2], "b": [2.5, 1]}},
                 {"inputs": [{"a": 1, "b": 2.5}, {"a": 2, "b": 1}]}):
        request = dict(body, params={"mode": "sum"})
        r = server.post(body=request)
        status, expected = mlflow_reference(request)
        assert (r.status_code, r.json()["error_code"]) == (status, json.loads(expected)["error_code"]), body
    r = server.post(body={"dataframe_records": [{"a": 1, "b": 2.5}, {"a": 2, "b": 1}], "params": {"mode": "sum"}})
    assert r.json() == {"predictions": [3.5, 3.0]}


def test_malformed_json_and_csv_are_400(server):
    for body, ct in [("{bad", "application/json"), ("[1, 2]", "application/json"),
                     ('a,b\n"open,2\n', "text/csv"), ("a\n1,2,3\n", "text/csv"), (b"\xff\xfe", "text/csv")]:
        r = server.post(body=body, content_type=ct)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error_code"] == "BAD_REQUEST"


def test_missing_and_unknown_columns(models):
    s = Server(models["sk"])
    try:
        ok = s.post(body={"dataframe_records": [{"a": 1.0, "b": 2.0, "zzz": 5}]})
        assert ok.status_code == 200, ok.text  # extra columns are dropped, as MLflow does
        assert ok.json()["predictions"] == pytest.approx([4.0])
        # A missing column is refused by the one schema check, with MLflow's code and message.
        r = s.post(body={"dataframe_records": [{"a": 1.0}]})
        assert r.status_code == 400
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert r.json()["error_class"] == "SCHEMA_ENFORCEMENT_FAILED"
        assert r.json()["message"].endswith("Error: Model is missing inputs ['b'].")
        r = s.post(body={"dataframe_records": [{"a": 1.0, "zz": 3}]})
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert r.json()["message"].endswith("Model is missing inputs ['b']. Note that there were extra inputs: ['zz'].")
        # Numeric strings and floats are cast as MLflow's server casts them (astype).
        r = s.post(body={"dataframe_split": {"columns": ["a", "b"], "data": [["5.1", 2], [1, "0.5"]]}})
        assert r.status_code == 200 and r.json()["predictions"] == pytest.approx([12.2, 2.5])
        r = s.post(body={"dataframe_records": [{"a": "abc", "b": 1.0}]})
        assert r.status_code == 400 and "could not convert string to float: 'abc'" in r.json()["message"]
        r = s.post(body="a,b\n1,notanumber\n", content_type="text/csv")
        assert r.status_code == 400
    finally:
        s.stop()


def test_oversized_body_is_413_and_server_keeps_serving(server):
    big = {"inputs": list(range(100000))}
    r = server.post(body=big)
    assert r.status_code == 413
    assert r.json()["error_code"] == "RESOURCE_EXHAUSTED"
    assert server.post(body={"inputs": [1, 2]}).status_code == 200


# --- Open Inference Protocol ----------------------------------------------------------


def test_open_inference_protocol(server):
    assert requests.get(server.url + "/v2/health/live").json() == {"live": True}
    assert requests.get(server.url + "/v2/health/ready").status_code == 200
    assert requests.get(server.url + "/v2/models/model/ready").json() == {"name": "model", "ready": True}
    assert requests.get(server.url + "/v2/models/model").json()["name"] == "model"
    assert requests.get(server.url + "/v2/models/other/ready").status_code == 404
    req = {"id": "42", "parameters": {"mode": "sum"},
           "inputs": [{"name": "a", "shape": [2], "datatype": "INT64", "data": [1, 2]},
                      {"name": "b", "shape": [2, 1], "datatype": "FP32", "data": [[0.5], [1.5]]}]}
    r = server.post("/v2/models/model/infer", req)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == "42" and out["model_name"] == "model"
    assert out["outputs"] == [{"name": "predict", "shape": [2], "datatype": "FP64", "data": [1.5, 3.5]}]
    r = server.post("/v2/models/model/infer", {"inputs": [{"name": "x", "shape": [3], "datatype": "FP64",
                                                           "data": [1, 2]}]})
    assert r.status_code == 400 and "error" in r.json()


def test_open_inference_protocol_with_a_model_version(server):
    # KServe's clients put the version in the path; the one model answers to any version.
    base = server.url + "/v2/models/model/versions/3"
    assert requests.get(base + "/ready").json() == {"name": "model", "ready": True}
    assert requests.get(base).json()["name"] == "model"
    req = {"parameters": {"mode": "sum"}, "inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [1, 2]}]}
    r = server.post("/v2/models/model/versions/3/infer", req)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [1.0, 2.0]
    r = server.post("/v2/models/other/versions/3/infer", req)
    assert r.status_code == 404 and "other" in r.json()["error"]


def test_kserve_v1_protocol_answers_as_mlflow_does(server, mlflow_reference):
    assert requests.get(server.url + "/v1/models").json() == {"models": ["model"]}
    assert requests.get(server.url + "/v1/models/model").json() == {"name": "model", "ready": True}
    r = requests.get(server.url + "/v1/models/other")
    assert r.status_code == 404 and r.json() == {"error": "Model with name other does not exist."}
    # `instances` and `inputs`, answered {"predictions": ...} exactly as MLflow's /invocations.
    for body in ({"instances": [{"a": 1, "b": 2.5}, {"a": 3, "b": 4.5}]}, {"inputs": {"a": [1, 2], "b": [0.5, 1]}},
                 {"instances": [[1, 2], [3, 4]], "params": {"mode": "sum"}}):
        want_status, want_body = mlflow_reference(body)
        for headers in ({"Content-Type": "application/json"}, {}):  # KServe clients send JSON, curl may not say so
            r = requests.post(server.url + "/v1/models/model:predict", data=json.dumps(body), headers=headers)
            assert (r.status_code, r.text) == (want_status, want_body), body
    # Errors in V1's shape, with MLflow's message; the service stays up.
    bad = requests.post(server.url + "/v1/models/model:predict", data="{not json",
                        headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and set(bad.json()) == {"error"} and bad.json()["error"]
    assert requests.post(server.url + "/v1/models/model:explain", json={"instances": []}).status_code == 501
    assert requests.post(server.url + "/v1/models/model:train", json={}).status_code == 404
    assert requests.post(server.url + "/v1/models/other:predict", json={"instances": [[1]]}).status_code == 404
    assert requests.post(server.url + "/v1/models/model:predict", json={"instances": [[5, 6]],
                                                                        "params": {"mode": "sum"}}).json() == \
        {"predictions": [11]}
    metrics = requests.get(server.url + "/metrics").text
    assert 'route="/v1/models/{name}:predict"' in metrics


# --- Robustness -------------------------------------------------------------------------


def test_slow_client_byte_by_byte_does_not_block_others(server):
    body = json.dumps({"inputs": {"a": [7, 8]}}).encode()
    head = (f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    result = {}

    def slow():
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            for i in range(len(head + body)):
                s.sendall((head + body)[i:i + 1])
                time.sleep(0.004)
            # Headers and body may arrive in separate segments: read the whole response.
            data = b""
            while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < int(
                    data.split(b"Content-Length: ", 1)[1].split(b"\r\n", 1)[0]):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            result["response"] = data.decode()

    t = threading.Thread(target=slow)
    t.start()
    started = time.time()
    fast = 0
    while t.is_alive():
        assert server.post(body={"inputs": [1]}).status_code == 200
        fast += 1
    t.join()
    assert fast > 10 and time.time() - started > 0.3
    assert result["response"].startswith("HTTP/1.1 200") and '"a": [7, 8]' in result["response"]


def test_client_disconnecting_mid_request_is_dropped_cleanly(server):
    fds = open_fds(server.proc.pid)
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{\"inputs\": [1, ")
    # A client that leaves while its prediction runs.
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            body = json.dumps({"inputs": [1], "params": {"mode": "sleep"}}).encode()
            s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert server.post(body={"inputs": [1, 2], "params": {"mode": "sum"}}).json() == {"predictions": [1, 2]}
    deadline = time.time() + 10
    while open_fds(server.proc.pid) > fds and time.time() < deadline:
        time.sleep(0.1)
    assert open_fds(server.proc.pid) <= fds


def test_worker_killed_mid_batch(server):
    workers = children(server.proc.pid)
    assert len(workers) == 2
    restarts = server.metric("pyfunc_worker_restarts_total")
    with ThreadPoolExecutor(8) as pool:
        crash = pool.submit(server.post, body={"inputs": [1], "params": {"mode": "crash"}})
        others = [pool.submit(server.post, body={"inputs": [i], "params": {"mode": "sum"}}) for i in range(40)]
        r = crash.result()
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "1"
        for i, f in enumerate(others):
            assert f.result().json() == {"predictions": [i]}
    assert server.post(body={"inputs": [5]}).status_code == 200
    # The dead worker is reaped and replaced in the background, not by a request.
    wait_until(lambda: server.metric("pyfunc_worker_restarts_total") == restarts + 1)
    wait_until(lambda: len(children(server.proc.pid)) == 2)
    assert server.metric("pyfunc_workers_live") == 2


def test_concurrent_requests_are_batched_and_each_gets_its_rows(server):
    def one(i):
        rows = [[i, j] for j in range(i % 4 + 1)]
        r = server.post(body={"dataframe_split": {"columns": ["i", "j"], "data": rows}})
        return r.json() == {"predictions": [{"i": a, "j": b} for a, b in rows]}

    with ThreadPoolExecutor(32) as pool:
        assert all(pool.map(one, range(400)))
    text = requests.get(server.url + "/metrics").text
    merged = [l for l in text.splitlines() if l.startswith('pyfunc_batch_requests_bucket{le="1"}')]
    count = [l for l in text.splitlines() if l.startswith("pyfunc_batch_requests_count")]
    assert float(merged[0].split()[1]) < float(count[0].split()[1])  # some batches had > 1 request


def test_metrics(server):
    text = requests.get(server.url + "/metrics").text
    for name in ('pyfunc_requests_total{route="/invocations",status="200"}',
                 'pyfunc_request_stage_seconds_bucket{stage="queue",le="+Inf"}',
                 'pyfunc_request_stage_seconds_count{stage="parse"}',
                 'pyfunc_request_stage_seconds_count{stage="predict"}',
                 'pyfunc_request_stage_seconds_count{stage="serialize"}',
                 "pyfunc_batch_rows_count", "pyfunc_queue_depth", "pyfunc_worker_restarts_total",
                 "pyfunc_ready 1"):
        assert name in text, name


def test_timeout_504_queue_full_503_and_drain(models):
    s = Server(models["behave"], "--max-queue", "1", "--grace-period", "10", "--access-log", timeout=2)
    try:
        pid = s.proc.pid
        with ThreadPoolExecutor(4) as pool:
            hang = pool.submit(s.post, body={"inputs": [1], "params": {"mode": "hang"}})
            time.sleep(0.3)
            queued = pool.submit(s.post, body={"inputs": [2]})
            time.sleep(0.3)
            refused = s.post(body={"inputs": [3]})
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
            r = hang.result()
            assert (r.status_code, r.text) == (504, "Request processing time exceeded limit")
            # The queued request waited behind the hung one past its own deadline.
            assert queued.result().status_code in (200, 504)
        assert s.post(body={"inputs": [4], "params": {"mode": "sum"}}).json() == {"predictions": [4]}  # replaced

        # SIGTERM drains: the in-flight request finishes, then the process exits 0.
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(s.post, body={"dataframe_records": [{"x": 9}], "params": {"mode": "sleep"}})
            time.sleep(0.3)
            s.proc.send_signal(signal.SIGTERM)
            assert slow.result().json() == {"predictions": [{"x": 9}]}
        assert s.proc.wait(15) == 0
        assert children(pid) == []
        with pytest.raises(requests.ConnectionError):
            requests.get(s.url + "/ping", timeout=1)
        log = s.proc.stderr.read()
        assert '"POST /invocations HTTP/1.1" 504' in log
    finally:
        s.stop()


def test_busy_polling_server_answers_each_request_with_its_own_rows(models):
    s = Server(models["behave"], "--busy-poll-us", "3000", workers=1)
    try:
        for i in range(40):
            rows = [{"x": float(i), "y": float(j)} for j in range(i % 5 + 1)]
            r = s.post(body={"dataframe_records": rows, "params": {"mode": "sum"}})
            assert r.json() == {"predictions": [i + j for j in range(i % 5 + 1)]}
            if i % 10 == 9:
                time.sleep(0.02)  # longer than the window: the worker goes back to sleeping
        assert s.post(body={"inputs": [1], "params": {"mode": "raise"}}).status_code == 400
        assert s.post(body={"inputs": [5], "params": {"mode": "sum"}}).json() == {"predictions": [5]}
    finally:
        s.stop()


@pytest.mark.parametrize("option", ["--busy-poll-us", "--worker-threads", "--workers"])
def test_serve_rejects_negative_numbers(models, option):
    proc = subprocess.run([pyfunc_binary(), "serve", "-m", str(models["behave"]), option, "-1"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert option in proc.stderr, proc.stderr


@pytest.mark.parametrize("body", [
    {"inputs": [[1.5, 2.0], [3.0, 4.0]]},
    {"inputs": [1, 2, 3]},
    {"inputs": 5},
    {"inputs": {"a": [1, 2], "b": [0.5, 1.5]}},
    {"instances": [{"a": 1, "b": 2.5}, {"a": 3, "b": 4.5}]},
    {"inputs": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]},
    {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2.5]]}},
    {"dataframe_records": [{"a": 1}, {"a": 2}]},
])
def test_model_without_column_signature_gets_what_mlflow_gives_it(server, mlflow_reference, body):
    request = dict(body, params={"mode": "kind"})
    r = server.post(body=request)
    status, expected = mlflow_reference(request)
    assert (r.status_code, r.json()) == (status, json.loads(expected))


def test_inputs_become_a_dataframe_for_a_model_with_a_column_signature(models, mlflow_reference):
    import mlflow.pyfunc

    s = Server(models["sk"], workers=1)
    try:
        body = {"inputs": {"a": [1.0, 2.0], "b": [0.5, 1.0]}}
        r = s.post(body=body)
        expected = mlflow.pyfunc.load_model(str(models["sk"])).predict(pd.DataFrame(body["inputs"]))
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["predictions"], expected)
    finally:
        s.stop()


def test_int32_and_float32_signature_columns_are_cast_as_mlflow_casts_them(tmp_path):
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException
    from mlflow.models import ModelSignature
    from mlflow.pyfunc import scoring_server
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    sig = ModelSignature(inputs=Schema([ColSpec("integer", "i"), ColSpec("float", "f"), ColSpec("long", "l")]),
                         params=ParamSchema([ParamSpec("mode", "string", "dtypes")]))
    path = tmp_path / "narrow"
    mlflow.pyfunc.save_model(str(path), loader_module="behave_model", code_paths=[str(BEHAVE)], signature=sig,
                             pip_requirements=["pandas"])
    body = json.dumps({"dataframe_split": {"columns": ["i", "f", "l"], "data": [[1, 2.5, 3], [4, 5.5, 6]]}})
    reference = mlflow.pyfunc.load_model(str(path))
    want = scoring_server.invocations(body, "application/json", reference, reference.metadata.get_input_schema())
    s = Server(path, workers=1)
    try:
        for _ in range(2):
            r = s.post(body=body)
            assert (r.status_code, r.json()) == (want.status, json.loads(want.response))
        assert r.json()["predictions"][0] == {"column": "i", "dtype": "int32"}
        # A value the signature cannot take is MLflow's schema error, not a generic one.
        bad = s.post(body={"dataframe_split": {"columns": ["i", "f", "l"], "data": [[1, 2.5, "x"]]}})
        assert bad.status_code == 400
        # A cell holding a list goes to the worker, where pandas builds the frame as in
        # MLflow's server; the cast to the signature's int32 fails there: MLflow's
        # BAD_REQUEST "Invalid input. Data is not compatible with model signature. ...".
        listed = json.dumps({"dataframe_split": {"columns": ["i", "f", "l"], "data": [[[1, 2], 2.5, 3]]}})
        try:
            scoring_server.invocations(listed, "application/json", reference, reference.metadata.get_input_schema())
            raise AssertionError("MLflow accepted a list for an integer column")
        except MlflowException as e:
            want_status, want_error = e.get_http_status_code(), json.loads(e.serialize_as_json())
        r = s.post(body=listed)
        assert r.status_code == want_status == 400, r.text
        assert r.json()["error_code"] == want_error["error_code"], (r.text, want_error)
        assert r.json()["message"].startswith("Invalid input. Data is not compatible with model signature. "
                                              "Failed to convert column i to type 'int32'")
        assert want_error["message"].startswith("Invalid input. Data is not compatible with model signature. "
                                                "Failed to convert column i to type 'int32'")
        assert s.post(body=body).status_code == 200  # the worker serves on
    finally:
        s.stop()


def test_tensor_signature_is_enforced_in_the_worker_with_mlflows_error(tmp_path):
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException
    from mlflow.models import ModelSignature
    from mlflow.pyfunc import scoring_server
    from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

    sig = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float64"), (-1, 4))]),
                         params=ParamSchema([ParamSpec("mode", "string", "kind")]))
    path = tmp_path / "tensor"
    mlflow.pyfunc.save_model(str(path), loader_module="behave_model", code_paths=[str(BEHAVE)], signature=sig,
                             pip_requirements=["pandas"])
    reference = mlflow.pyfunc.load_model(str(path))
    s = Server(path, workers=1)
    try:
        for body in ({"inputs": [[1.0, 2.0, 3.0, 4.0]]},
                     {"dataframe_split": {"columns": list("abcd"), "data": [[1.0, 2.0, 3.0, 4.0]]}},
                     {"inputs": [[1.0, 2.0, 3.0]]}):
            text = json.dumps(body)
            try:
                want = scoring_server.invocations(text, "application/json", reference,
                                                  reference.metadata.get_input_schema())
                status, expected = want.status, json.loads(want.response)
            except MlflowException as e:
                status, expected = e.get_http_status_code(), json.loads(e.serialize_as_json())
            r = s.post(body=text)
            assert r.status_code == status, r.text
            if status == 200:
                assert r.json() == expected
            else:
                assert r.json()["error_code"] == expected["error_code"] == "INVALID_PARAMETER_VALUE"
                assert "Shape of input (1, 3) does not match expected shape (-1, 4)." in r.json()["message"]
    finally:
        s.stop()


@pytest.mark.parametrize("body", [
    {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}], "mode": "chat"},
    {"prompt": "once upon", "max_tokens": 5, "mode": "chat"},
    {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2.5], [3, 4.5]]}, "params": {"mode": "object"}},
])
def test_unified_llm_requests_and_object_outputs_as_mlflow_answers_them(server, mlflow_reference, body):
    r = server.post(body=body)
    status, expected = mlflow_reference(body)
    assert (r.status_code, r.json()) == (status, json.loads(expected))


# --- Batching never changes an answer -----------------------------------------------------


def batching_mode(server):
    for line in requests.get(server.url + "/metrics").text.splitlines():
        if line.startswith("pyfunc_batching_mode{"):
            return re.match(r'pyfunc_batching_mode\{mode="(\w+)",reason="([^"]*)"\} 1', line).groups()
    return None


def merged_batches(server):
    text = requests.get(server.url + "/metrics").text
    single = [l for l in text.splitlines() if l.startswith('pyfunc_batch_requests_bucket{le="1"}')]
    count = [l for l in text.splitlines() if l.startswith("pyfunc_batch_requests_count")]
    return float(count[0].split()[1]) - float(single[0].split()[1])


def test_row_dependent_model_keeps_its_lone_answer_under_concurrency(models):
    """Merging concurrent requests into one predict gave a model whose rows depend on each
    other (x - x.mean()) other requests' rows: 40 of 40 answers were wrong."""
    s = Server(models["behave"], workers=1)
    try:
        mode, reason = batching_mode(s)
        assert (mode, reason) == ("off", "rows of a behave_model model may depend on each other")

        def one(i):
            xs = [float(i + 3 * j) for j in range(i % 4 + 2)]
            r = s.post(body={"dataframe_split": {"columns": ["x"], "data": [[x] for x in xs]},
                             "params": {"mode": "center"}})
            mean = sum(xs) / len(xs)
            return r.status_code == 200 and r.json() == {"predictions": [x - mean for x in xs]}

        with ThreadPoolExecutor(16) as pool:
            assert all(pool.map(one, range(160)))
        assert merged_batches(s) == 0
    finally:
        s.stop()
    assert ("pyfunc serve: batching off: rows of a behave_model model may depend on each other; one request per "
            "predict call (--batching rows merges them)") in s.log


def test_default_merges_for_sklearn_and_off_is_obeyed(models):
    s = Server(models["sk"], workers=1)
    try:
        assert batching_mode(s) == ("rows", "the mlflow.sklearn loader predicts each row on its own")

        def one(i):
            r = s.post(body={"dataframe_records": [{"a": float(i), "b": 1.0}]})
            return r.status_code == 200 and abs(r.json()["predictions"][0] - (2 * i + 1)) < 1e-6

        with ThreadPoolExecutor(32) as pool:
            assert all(pool.map(one, range(400)))
        assert merged_batches(s) > 0
    finally:
        s.stop()
    s = Server(models["sk"], "--batching", "off", workers=1)
    try:
        assert batching_mode(s) == ("off", "--batching off")
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(lambda i: s.post(body={"dataframe_records": [{"a": 1.0, "b": 1.0}]}), range(200)))
        assert merged_batches(s) == 0
    finally:
        s.stop()


def test_batching_key_written_by_save_model_round_trips_through_mlflow(tmp_path):
    import pyfunc
    from mlflow.models import Model

    pyfunc.save_model(tmp_path / "m", loader_module="behave_model", code_path=[str(BEHAVE)], batching="rows")
    assert Model.load(str(tmp_path / "m")).flavors["python_function"]["batching"] == "rows"
    Model.load(str(tmp_path / "m")).save(str(tmp_path / "MLmodel.again"))  # MLflow keeps the key
    assert "batching: rows" in (tmp_path / "MLmodel.again").read_text()
    with pytest.raises(pyfunc.exceptions.InvalidArgumentError, match="batching must be"):
        pyfunc.save_model(tmp_path / "n", loader_module="behave_model", batching="yes")
    s = Server(tmp_path / "m", workers=1)
    try:
        assert batching_mode(s) == ("rows", "the python_function flavor sets batching: rows")
    finally:
        s.stop()


def test_serve_rejects_an_unknown_batching_mode(models):
    proc = subprocess.run([pyfunc_binary(), "serve", "-m", str(models["behave"]), "--batching", "maybe"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--batching" in proc.stderr


# --- No request crashes the server or a worker ----------------------------------------------


HOSTILE_OIP = {
    # The shape's product overflows int64 to 0, matching the empty data.
    "shape_overflow": '{"inputs":[{"name":"x","shape":[1024,18014398509481984],"datatype":"FP64","data":[]}]}',
    "data_nested_100000": '{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":' +
                          "[" * 100000 + "1" + "]" * 100000 + "}]}",
    "parameters_nested_200000": '{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1]}],'
                                '"parameters":{"p":' + "[" * 200000 + "]" * 200000 + "}}",
    # 82 bytes asking for 2,000,000 columns.
    "amplification": '{"inputs":[{"name":"x","shape":[0,2000000],"datatype":"FP64","data":[]}]}',
}


@pytest.fixture(scope="module")
def big_server(models):
    s = Server(models["behave"], "--batching", "rows", workers=2)
    yield s
    s.stop()


@pytest.mark.parametrize("case", sorted(HOSTILE_OIP))
def test_hostile_open_inference_requests_get_400_and_the_server_keeps_serving(big_server, case):
    s = big_server
    rss, fds = rss_mb(s.proc.pid), open_fds(s.proc.pid)
    r = s.post("/v2/models/model/infer", HOSTILE_OIP[case])
    assert r.status_code == 400, r.text[:300]
    assert len(r.content) < 1000 and "error" in r.json()
    ok = s.post("/v2/models/model/infer", {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [2]}],
                                           "parameters": {"mode": "sum"}})
    assert ok.status_code == 200 and ok.json()["outputs"][0]["data"] == [2.0]
    assert rss_mb(s.proc.pid) < rss + 100
    assert open_fds(s.proc.pid) <= fds + 2


def test_a_long_model_error_neither_kills_the_worker_nor_slows_the_others(big_server):
    """A model exception of 300 KB exceeded the socket's largest message: the worker exited,
    the request got 503 and the replacement started inside the next request (3-4 s)."""
    s = big_server
    restarts = s.metric("pyfunc_worker_restarts_total")
    workers = children(s.proc.pid)
    for _ in range(5):
        r = s.post(body={"inputs": [1], "params": {"mode": "long_error"}})
        assert r.status_code == 400
        body = r.json()
        assert body["stack_trace"].startswith("ValueError: xxxx") and "more" in body["stack_trace"]
        assert len(r.content) < 100 * 1024
        t = time.time()
        assert s.post(body={"inputs": [3], "params": {"mode": "sum"}}).json() == {"predictions": [3]}
        assert time.time() - t < 1.0
    assert s.metric("pyfunc_worker_restarts_total") == restarts
    assert children(s.proc.pid) == workers


def test_a_worker_that_dies_while_idle_is_replaced_before_it_is_needed(big_server):
    """A worker killed while idle stayed a zombie, /metrics still counted it and the next
    request sent to it got 503."""
    s = big_server
    restarts = s.metric("pyfunc_worker_restarts_total")
    victim = children(s.proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: s.metric("pyfunc_worker_restarts_total") == restarts + 1)
    wait_until(lambda: len(children(s.proc.pid)) == 2 and victim not in children(s.proc.pid))
    assert s.metric("pyfunc_workers_live") == 2
    zombies = [d for d in os.listdir("/proc") if d == str(victim)]
    assert zombies == []  # reaped, not a zombie
    for i in range(10):
        assert s.post(body={"inputs": [i], "params": {"mode": "sum"}}).status_code == 200


def test_a_model_with_an_mlmodel_of_260_kb_is_served(tmp_path):
    """An MLmodel over ~210 KB could not be sent to a worker ("Message too long") though
    `pyfunc validate` called it valid."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(20, 4000)), columns=[f"feature_{i}" for i in range(4000)])
    y = (X.iloc[:, 0] > 0).astype(int)
    clf = LogisticRegression(max_iter=50).fit(X, y)
    mlflow.sklearn.save_model(clf, str(tmp_path / "wide"), signature=infer_signature(X, clf.predict(X)),
                              pip_requirements=["scikit-learn"])
    assert (tmp_path / "wide" / "MLmodel").stat().st_size > 250_000
    s = Server(tmp_path / "wide", workers=1)
    try:
        r = s.post(body={"dataframe_split": {"columns": list(X.columns), "data": X.iloc[:3].values.tolist()}})
        assert r.status_code == 200, r.text[:500]
        assert r.json() == {"predictions": clf.predict(X.iloc[:3]).tolist()}
    finally:
        s.stop()


@pytest.fixture(scope="module")
def float32_tensor_model(tmp_path_factory):
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

    sig = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float32"), (-1, 3))]),
                         params=ParamSchema([ParamSpec("mode", "string", "kind")]))
    path = tmp_path_factory.mktemp("f32") / "tensor32"
    mlflow.pyfunc.save_model(str(path), loader_module="behave_model", code_paths=[str(BEHAVE)], signature=sig,
                             pip_requirements=["pandas"])
    return path


@pytest.mark.parametrize("body", [
    {"instances": [[5.1, 3.5, 1.4], [1, 2, 3]]},
    {"inputs": [[5.1, 3.5, 1.4]]},
    {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[5.1, 3.5, 1.4]]}},
    {"dataframe_records": [{"a": 5.1, "b": 3.5, "c": 1}]},
])
def test_float32_tensor_model_gets_float32_arrays_as_from_mlflow(float32_tensor_model, body):
    """JSON numbers for a float32 tensor signature were refused with "dtype of input float64
    does not match expected dtype float32"; MLflow's server reads them as float32."""
    import mlflow.pyfunc
    from mlflow.pyfunc import scoring_server

    reference = mlflow.pyfunc.load_model(str(float32_tensor_model))
    want = scoring_server.invocations(json.dumps(body), "application/json", reference,
                                      reference.metadata.get_input_schema())
    assert want.status == 200
    s = Server(float32_tensor_model, workers=1)
    try:
        r = s.post(body=body)
        assert r.status_code == 200, r.text
        assert r.json() == json.loads(want.response)
        assert "float32" in r.text
    finally:
        s.stop()


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    import mlflow.onnx
    from mlflow.models import infer_signature
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=300).fit(X, y)
    onx = convert_sklearn(clf, initial_types=[("float_input", FloatTensorType([None, 4]))],
                          options={id(clf): {"zipmap": False}})
    path = tmp_path_factory.mktemp("onnx") / "iris_onnx"
    mlflow.onnx.save_model(onx, str(path), signature=infer_signature(X[:3].astype(np.float32), clf.predict(X[:3])))
    return path


def test_onnx_model_answers_as_mlflow_on_every_json_format_and_pyfunc_predict(onnx_model, tmp_path):
    """An onnx model with input float32 [-1, 4] answered `instances` with 400 "dtype of input
    float64 does not match expected dtype float32"; MLflow answers 200."""
    import mlflow.pyfunc
    from mlflow.pyfunc import scoring_server

    reference = mlflow.pyfunc.load_model(str(onnx_model))
    bodies = [{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]},
              {"inputs": [[5.1, 3.5, 1.4, 0.2]]},
              {"dataframe_split": {"columns": ["0", "1", "2", "3"], "data": [[5.1, 3.5, 1.4, 0.2]]}}]
    s = Server(onnx_model, workers=1)
    try:
        for body in bodies:
            want = scoring_server.invocations(json.dumps(body), "application/json", reference,
                                              reference.metadata.get_input_schema())
            r = s.post(body=body)
            assert (r.status_code, r.json()) == (want.status, json.loads(want.response)), body
    finally:
        s.stop()
    (tmp_path / "in.json").write_text(json.dumps(bodies[0]))
    proc = subprocess.run([pyfunc_binary(), "predict", "-m", str(onnx_model), "-i", str(tmp_path / "in.json"),
                           "--env-manager", "local"], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYFUNC_PYTHON=sys.executable))
    assert proc.returncode == 0, proc.stderr
    want = scoring_server.invocations(json.dumps(bodies[0]), "application/json", reference,
                                      reference.metadata.get_input_schema())
    assert json.loads(proc.stdout) == json.loads(want.response)


def test_params_that_do_not_fit_the_params_schema_get_mlflows_error(server, mlflow_reference):
    body = {"inputs": [1, 2], "params": {"mode": 5}}
    status, want = mlflow_reference(body)
    want = json.loads(want)
    r = server.post(body=body)
    assert r.status_code == status == 400
    got = r.json()
    assert (got["error_code"], got["error_class"]) == (want["error_code"], want["error_class"]) == (
        "INVALID_PARAMETER_VALUE", "INVALID_PARAMETER_VALUE")
    # MLflow's message has a "Failed to predict data '<repr of the input>'" prefix of its own.
    assert want["message"].endswith(got["message"]) and got["message"].startswith("Invalid parameters found:")
    assert server.post(body={"inputs": [1, 2], "params": {"mode": "sum"}}).json() == {"predictions": [1, 2]}


@pytest.mark.parametrize("body", [
    {"inputs": {"a": [[1, 2], [3, 4]], "b": [[0.5, 1.5, 2.5], [1, 2, 3]]}},
    {"instances": [{"a": [1, 2], "b": [0.5, 1.5, 2.5]}, {"a": [3, 4], "b": [1, 2, 3]}]},
    {"inputs": {"a": [[1, 2]], "b": [[1, 2]]}},  # b has the wrong shape: MLflow's error
    # Cells holding arrays: pandas makes object columns of lists, the signature the arrays.
    {"dataframe_split": {"columns": ["a", "b"], "data": [[[1, 2], [0.5, 1.5, 2.5]], [[3, 4], [1, 2, 3]]]}},
    {"dataframe_records": [{"a": [1, 2], "b": [0.5, 1.5, 2.5]}, {"a": [3, 4], "b": [1, 2, 3]}]},
    {"dataframe_records": [{"a": [1, 2], "b": [1, 2]}]},
])
def test_named_multi_input_tensors_reach_the_model_as_mlflow_passes_them(tmp_path_factory, body):
    """Named multi-input tensors ({"inputs": {"a": [[...]]}}), records of arrays or frames
    whose cells hold arrays were refused: "expected a number, string, boolean or null,
    found array". MLflow passes a dict of ndarrays in the signature's dtypes."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException
    from mlflow.models import ModelSignature
    from mlflow.pyfunc import scoring_server
    from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

    sig = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float32"), (-1, 2), "a"),
                                        TensorSpec(np.dtype("float64"), (-1, 3), "b")]),
                         params=ParamSchema([ParamSpec("mode", "string", "kind")]))
    path = tmp_path_factory.mktemp("multi") / "multi"
    mlflow.pyfunc.save_model(str(path), loader_module="behave_model", code_paths=[str(BEHAVE)], signature=sig,
                             pip_requirements=["pandas"])
    reference = mlflow.pyfunc.load_model(str(path))
    try:
        want = scoring_server.invocations(json.dumps(body), "application/json", reference,
                                          reference.metadata.get_input_schema())
        status, expected = want.status, json.loads(want.response)
    except MlflowException as e:
        status, expected = e.get_http_status_code(), json.loads(e.serialize_as_json())
    s = Server(path, workers=1)
    try:
        r = s.post(body=body)
        assert r.status_code == status, r.text
        if status == 200:
            assert r.json() == expected and "dict a:float32,b:float64" in r.text
        else:
            assert r.json()["error_code"] == expected["error_code"] == "INVALID_PARAMETER_VALUE"
            # The enforcement's own words, after MLflow's "Failed to enforce schema of data '...'".
            reason = expected["message"].split("Error: ")[-1]
            assert ("does not match expected shape (-1, 3)" in reason
                    or "could not be converted to the expected shape of: '(-1, 3)'" in reason), reason
            assert r.json()["message"].endswith(reason)
    finally:
        s.stop()
