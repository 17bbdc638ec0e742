"""The Open Inference Protocol over gRPC against the same over REST, on one `pyfunc serve`
(the iris LogisticRegression of make_model.py, one worker, --grpc-port).

Each request body is built once: REST sends its JSON with http.client on a keep-alive
connection, gRPC sends its serialized ModelInferRequest (raw_input_contents, as
tritonclient sends it) through grpcio's generic unary call, so the client's own work
is a socket write and read on both sides. Sequential calls (concurrency 1), 3 rounds of
N calls per size, alternating the protocols; prints the median and p99 latency of the
best round in microseconds.

  .venv/bin/python bench/serve/grpc_vs_rest.py [--calls 400] [--rows 1,100,1000]
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np
from tritonclient.grpc import service_pb2

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--rows", default="1,100,1000")
    args = ap.parse_args()
    binary = os.environ.get("PYFUNC_BINARY") or str(ROOT / "build/cpp/pyfunc")
    work = Path(tempfile.mkdtemp(prefix="grpc-bench-"))
    subprocess.run([sys.executable, str(ROOT / "bench/serve/make_model.py"), str(work)], check=True,
                   capture_output=True)
    port, gport = free_port(), free_port()
    proc = subprocess.Popen([binary, "serve", "-m", str(work / "model"), "-p", str(port), "--grpc-port", str(gport),
                             "--env-manager", "local", "-w", "1"], env=dict(os.environ, PYFUNC_PYTHON=sys.executable),
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/ping")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        rest = http.client.HTTPConnection("127.0.0.1", port)
        channel = grpc.insecure_channel(f"127.0.0.1:{gport}")
        infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                    request_serializer=lambda b: b, response_deserializer=lambda b: b)
        rng = np.random.default_rng(0)
        print(f"{'rows':>6} {'protocol':>8} {'median us':>10} {'p99 us':>8}")
        for n in [int(r) for r in args.rows.split(",")]:
            x = rng.normal(size=(4, n)) + 4
            body = json.dumps({"inputs": [{"name": f"f{i}", "shape": [n], "datatype": "FP64",
                                           "data": x[i].tolist()} for i in range(4)]}).encode()
            req = service_pb2.ModelInferRequest(model_name="model")
            for i in range(4):
                req.inputs.add(name=f"f{i}", datatype="FP64", shape=[n])
                req.raw_input_contents.append(x[i].astype("<f8").tobytes())
            message = req.SerializeToString()

            def call_rest():
                rest.request("POST", "/v2/models/model/infer", body, {"Content-Type": "application/json"})
                r = rest.getresponse()
                r.read()
                assert r.status == 200

            def call_grpc():
                infer(message)

            best = {}
            for _ in range(3):
                for name, call in (("REST", call_rest), ("gRPC", call_grpc)):
                    for _ in range(20):
                        call()
                    times = []
                    for _ in range(args.calls):
                        t = time.perf_counter()
                        call()
                        times.append((time.perf_counter() - t) * 1e6)
                    m = percentile(times, 0.5)
                    if name not in best or m < best[name][0]:
                        best[name] = (m, percentile(times, 0.99))
            for name, (m, p99) in best.items():
                print(f"{n:>6} {name:>8} {m:>10.0f} {p99:>8.0f}")
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
