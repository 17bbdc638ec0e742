"""Hostile inputs of issue #11, replayed against the real `pyfunc` binary: what each case
sent, what came back, whether the server kept serving, and what it cost.

    .venv/bin/python bench/hostile/run.py [--pyfunc BINARY] [--out FILE]

Server cases run against `pyfunc serve` processes this script starts on free loopback
ports (`--env-manager local`, PYFUNC_PYTHON = this interpreter) and stops again:
  * iris: an sklearn LogisticRegression on the iris columns, saved with
    mlflow.sklearn.save_model(signature=infer_signature(X, y)), 2 workers,
    --max-body-size 8388608 (so that the 4.4 MB requests fit and the over-the-limit
    cases send 8 MiB, not the default 100 MiB), other limits at their defaults;
  * behave: tests/data/models/behave saved with mlflow.pyfunc.save_model (params schema
    mode=echo), 2 workers, --batching rows — the model-error cases, and the JSON and
    CSV cases a second time in echo mode, so that the answer shows how the values were
    read;
  * wide: a 4,000-feature LogisticRegression (MLmodel of ~260 KB), 1 worker.
The inputs are those of tests/python/test_serve.py, test_http_strict.py,
test_hostile_inputs.py and the C++ hostile tests (json_codec_test, csv_test,
yaml_test). For every server case: the answer (status and the start of the body, or
for raw sockets also whether the server closed the connection), whether a normal
request got 200 right after (and its latency), the server process's RSS (VmRSS, MiB)
and open fds (/proc/PID/fd) before and after, the RSS of its workers, and the time.
CLI cases (`info`, `validate`, `predict`, `serve` on hostile model directories): the
exit code, the message's error line, the time and the peak RSS (/usr/bin/time -v, else
getrusage of the children).

One difference from the tests: the signed length is `Content-Length: +85` (issue #11's
value; test_http_strict.py sends +15). Both are refused the same way.

Prints the machine, then a Markdown table (also written to --out). Takes about a minute.
Everything it starts is in its own process group and killed on exit.
"""

import argparse
import atexit
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BEHAVE_PY = ROOT / "tests" / "data" / "models" / "behave" / "behave_model.py"
MAX_BODY = 8 * 1024 * 1024
TMP = None  # the run's scratch directory (shortened to $TMP in messages)

STARTED = []  # Popen objects of everything this script started (each a process-group leader)


def kill_everything():
    for proc in STARTED:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


atexit.register(kill_everything)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


# --- /proc ------------------------------------------------------------------------------


def rss_mb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- servers ----------------------------------------------------------------------------


class Server:
    def __init__(self, name, binary, model, args, workers, normal, logdir):
        self.name, self.normal = name, normal  # normal: (path, body) of a request that must get 200
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(logdir) / f"{name}.log"
        cmd = [binary, "serve", "-m", str(model), "-p", str(self.port), "-w", str(workers),
               "--env-manager", "local", *args]
        env = dict(os.environ, PYFUNC_PYTHON=sys.executable)
        started = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        STARTED.append(self.proc)
        deadline = time.time() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if requests.get(self.url + "/ping", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"{name} server not ready in 90 s")
            time.sleep(0.05)
        self.startup_seconds = time.perf_counter() - started
        self.session = requests.Session()

    @property
    def pid(self):
        return self.proc.pid

    def rss(self):
        return rss_mb(self.pid)

    def workers_rss(self):
        return sum(rss_mb(c) for c in children(self.pid))

    def fds(self):
        return open_fds(self.pid)

    def post(self, path, body, content_type="application/json", timeout=60):
        data = json.dumps(body) if isinstance(body, (dict, list)) else body
        return requests.post(self.url + path, data=data, headers={"Content-Type": content_type}, timeout=timeout)

    def serving(self):
        """(status, seconds) of the normal request on a fresh connection."""
        path, body = self.normal
        started = time.perf_counter()
        try:
            r = self.post(path, body, timeout=30)
            return r.status_code, time.perf_counter() - started
        except requests.RequestException as e:
            return type(e).__name__, time.perf_counter() - started

    def metric(self, name):
        for line in requests.get(self.url + "/metrics", timeout=10).text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


# --- raw sockets (as tests/python/test_http_strict.py) -----------------------------------


class Conn(socket.socket):
    buffered = b""

    def response(self):
        while True:
            head, sep, rest = self.buffered.partition(b"\r\n\r\n")
            if sep:
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                if len(rest) >= length:
                    self.buffered = rest[length:]
                    return head + sep + rest[:length]
            try:
                chunk = self.recv(65536)
            except (ConnectionResetError, socket.timeout):
                chunk = b""
            if not chunk:
                data, self.buffered = self.buffered, b""
                return data
            self.buffered += chunk


def connect(server, timeout=5):
    s = Conn(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", server.port))
    return s


def closed_by_server(sock, timeout=2.0):
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def is_closed(sock):
    """Whether the peer has closed sock (without waiting)."""
    timeout = sock.gettimeout()
    sock.setblocking(False)  # (with a timeout set, Python polls before recv even for MSG_DONTWAIT)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(timeout)


def status_of(response):
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


# --- formatting -------------------------------------------------------------------------


def excerpt(data, n=90):
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    data = data.replace("\r", "\\r").replace("\n", "\\n").replace("\x00", "\\0")
    return data if len(data) <= n else data[:n] + "…"


def body_excerpt(body, n=90):
    """An error body as CODE: message (its start and end when long); else the body's start."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and "message" in doc:
        message = doc["message"]
        if len(message) > n:
            message = excerpt(message[:n // 2], n) + " … " + excerpt(message[-(n // 2):], n)
        return f"{doc.get('error_code', '')}: {excerpt(message, 2 * n)}"
    return excerpt(body, n)


def http_answer(r, n=90):
    return f"{r.status_code} ({len(r.content):,} B) {body_excerpt(r.content, n)}"


def raw_answer(response, closed, n=90):
    head, _, body = response.partition(b"\r\n\r\n")
    status = status_of(response) or "no response"
    conn = "connection closed" if closed else "connection kept open"
    return f"{status}, {conn}; {body_excerpt(body, n)}"


def cell(text):
    return str(text).replace("|", "\\|")


ROWS = []
BEGAN = time.perf_counter()


def record(no, case, sent, where, answer, serving="", rss=("", ""), fds=("", ""), workers=("", ""), seconds=None):
    def mib(v):
        return "" if v == "" else f"{v:.0f}"

    row = {"no": no, "case": case, "sent": sent, "where": where, "answer": answer, "serving": serving,
           "rss": f"{mib(rss[0])} → {mib(rss[1])}" if rss[0] != "" else "",
           "fds": f"{fds[0]} → {fds[1]}" if fds[0] != "" else "",
           "workers": f"{mib(workers[0])} → {mib(workers[1])}" if workers[0] != "" else "",
           "seconds": "" if seconds is None else f"{seconds:.3f}"}
    ROWS.append(row)
    took = "" if seconds is None else f"{seconds:.3f} s"
    print(f"{time.perf_counter() - BEGAN:6.1f} s {no:>3} {case}: {answer} | serving {serving} | {took}",
          file=sys.stderr, flush=True)


def server_case(no, case, sent, server, action):
    """Runs action() (-> answer text) against server with the measurements around it."""
    rss0, fds0, w0 = server.rss(), server.fds(), server.workers_rss()
    started = time.perf_counter()
    try:
        answer = action()
    except Exception as e:  # a hostile case that breaks the client is itself a result
        answer = f"client error: {type(e).__name__}: {excerpt(str(e), 120)}"
    seconds = time.perf_counter() - started
    alive = server.proc.poll() is None
    status, took = server.serving() if alive else (f"server exited {server.proc.returncode}", 0)
    serving = f"yes ({took * 1000:.0f} ms)" if status == 200 else f"**NO** ({status})"
    time.sleep(0.05)
    record(no, case, sent, server.name, answer, serving, (rss0, server.rss()), (fds0, server.fds()),
           (w0, server.workers_rss()), seconds)


# --- the cases --------------------------------------------------------------------------


def make_models(tmp):
    import warnings

    warnings.filterwarnings("ignore")  # MLflow's hints about integer columns and input examples
    import mlflow.pyfunc
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ParamSchema, ParamSpec
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    clf = LogisticRegression(max_iter=300).fit(X, y)
    mlflow.sklearn.save_model(clf, str(tmp / "iris"), signature=infer_signature(X, y),
                              pip_requirements=["scikit-learn"])
    sig = ModelSignature(inputs=None, params=ParamSchema([ParamSpec("mode", "string", "echo")]))
    mlflow.pyfunc.save_model(str(tmp / "behave"), loader_module="behave_model", code_paths=[str(BEHAVE_PY)],
                             signature=sig, pip_requirements=["pandas"])
    rng = np.random.default_rng(0)
    W = pd.DataFrame(rng.normal(size=(20, 4000)), columns=[f"feature_{i}" for i in range(4000)])
    wy = (W.iloc[:, 0] > 0).astype(int)
    wide = LogisticRegression(max_iter=50).fit(W, wy)
    mlflow.sklearn.save_model(wide, str(tmp / "wide"), signature=infer_signature(W, wide.predict(W)),
                              pip_requirements=["scikit-learn"])
    return X, W, wide


# Open Inference Protocol bodies: HOSTILE_OIP of tests/python/test_serve.py.
HOSTILE_OIP = [
    (1, "OIP shape product overflows int64",
     '{"inputs":[{"name":"x","shape":[1024,18014398509481984],"datatype":"FP64","data":[]}]}'),
    (2, "OIP data nested 100,000 deep",
     '{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":' + "[" * 100000 + "1" + "]" * 100000 + "}]}"),
    (3, "OIP parameters nested 200,000 deep",
     '{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1]}],"parameters":{"p":'
     + "[" * 200000 + "]" * 200000 + "}}"),
    (4, "OIP shape [0, 2000000], empty data",
     '{"inputs":[{"name":"x","shape":[0,2000000],"datatype":"FP64","data":[]}]}'),
]

# Framing of tests/python/test_http_strict.py (HOSTILE), its 16-byte body.
BODY = json.dumps({"inputs": [1, 2]}).encode()
POST = b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
FRAMING = [
    ("Content-Length + Transfer-Encoding", POST + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("two Content-Lengths", POST + b"Content-Length: 15\r\nContent-Length: 16\r\n\r\n" + BODY),
    ("Content-Length: 0x22", POST + b"Content-Length: 0x22\r\n\r\n" + BODY),
    ("Content-Length: +85", POST + b"Content-Length: +85\r\n\r\n" + BODY),
    ("Transfer-Encoding: gzip", POST + b"Transfer-Encoding: gzip\r\n\r\n" + BODY),
    ("bare CR in a header value", b"GET /ping HTTP/1.1\r\nHost: t\r\nX-A: 1\r2\r\n\r\n"),
    ("NUL in a header value", b"GET /ping HTTP/1.1\r\nHost: t\r\nX-A: 1\x002\r\n\r\n"),
    ("obs-fold", b"GET /ping HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n 2\r\n\r\n"),
    ("HTTP/1.1 without Host", b"GET /ping HTTP/1.1\r\n\r\n"),
    ("POST with neither length nor chunking", POST + b"\r\n" + BODY),
    # Never completed, as in the test: the refusal must come from counting while reading.
    ("20 KB request line (unfinished)", b"GET /" + b"a" * 20480),
    ("100 KB header (3,000 fields, unfinished)",
     b"GET /ping HTTP/1.1\r\nHost: t\r\n" + b"X-Field: cccccccccccccccccccccccc\r\n" * 3000),
]


def case_raw(server, raw, finish=None):
    def action():
        with connect(server) as s:
            try:
                s.sendall(raw)
                if finish:
                    finish(s)
            except (BrokenPipeError, ConnectionResetError):
                pass
            r = s.response()
            return raw_answer(r, closed_by_server(s))
    return action


def case_chunked_over(server):
    # test_body_over_the_limit_is_413_at_once_declared_or_chunked: 4 chunks of 30% of the limit.
    size = int(MAX_BODY * 0.3)
    chunk = b"%x\r\n%s\r\n" % (size, b"x" * size)

    def finish(s):
        for _ in range(4):
            s.sendall(chunk)
    return case_raw(server, POST + b"Transfer-Encoding: chunked\r\n\r\n", finish)


def case_idle_and_slowloris(server):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2600:
        want = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    def ping_ms():
        started = time.perf_counter()
        with connect(server) as s:
            s.sendall(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
            r = s.response()
        assert status_of(r) == 200, r
        return (time.perf_counter() - started) * 1000

    def action():
        idle = [connect(server) for _ in range(2000)]
        slow = [connect(server) for _ in range(300)]
        started = time.time()
        try:
            pings, peak_fds = [], 0
            # A header byte every 3 s ("POST /invocations ..." one byte at a time) until
            # the server's --header-timeout (10 s by default) is past.
            text = b"POST /invocations HTTP/1.1\r\n"
            closures = []
            for sends in range(1, 6):  # at 0, 3, 6, 9 and 12 s
                time.sleep(max(0.0, started + 3 * (sends - 1) - time.time()))
                for s in slow:
                    try:
                        s.sendall(text[sends - 1:sends])
                    except OSError:
                        pass
                peak_fds = max(peak_fds, server.fds())
                pings += [ping_ms() for _ in range(5)]
                closures.append((3 * (sends - 1), sum(map(is_closed, idle)), sum(map(is_closed, slow))))
            time.sleep(max(0.0, started + 12.5 - time.time()))
            closures.append((12.5, sum(map(is_closed, idle)), sum(map(is_closed, slow))))
        finally:
            for s in idle + slow:
                s.close()
        pings.sort()
        return (f"/ping p50 {pings[len(pings) // 2]:.1f} ms, max {pings[-1]:.1f} ms ({len(pings)} pings "
                f"during the 12.5 s); peak fds {peak_fds}; closed by the server (idle, slowloris) at "
                + ", ".join(f"{t} s: {i}, {s}" for t, i, s in closures))
    return action


def case_big_requests(server, X):
    rows = X.values.tolist()
    one_pass = len(json.dumps(rows))  # the 150 iris rows, as JSON
    body = {"dataframe_split": {"columns": list(X.columns), "data": rows * (4_400_000 // one_pass + 1)}}
    text = json.dumps(body)
    n_rows = len(body["dataframe_split"]["data"])

    def action():
        def one(_):
            r = requests.post(server.url + "/invocations", data=text, headers={"Content-Type": "application/json"},
                              timeout=120)
            return r.status_code

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(one, range(80)))
        peak = server.rss()
        time.sleep(0.5)
        counts = {s: statuses.count(s) for s in sorted(set(statuses))}
        return f"statuses {counts}; server RSS right after {peak:.0f} MiB, 0.5 s later {server.rss():.0f} MiB"
    return action, f"80 × {len(text) / 1e6:.1f} MB `dataframe_split` ({n_rows:,} iris rows), 16 at a time"


def json_cases():
    """The hostile JSON bodies of tests/cpp/json_codec_test.cc (JsonHostileTest)."""
    keys = "{\"dataframe_records\": [{" + ", ".join('"k%d": %d' % (i, i) for i in range(80000)) + "}, {\"k79999\": 1}]}"
    return [
        ("`dataframe_records`, a record of 80,000 keys", f"{len(keys) / 1e3:.0f} KB, keys k0…k79999", keys),
        ('"\\u0000NaN" in a string column', '`{"dataframe_split": {"columns": ["a"], "data": [["\\u0000NaN"], ["x"]]}}`',
         r'{"dataframe_split": {"columns": ["a"], "data": [["\u0000NaN"], ["x"]]}}'),
        ("short row in `dataframe_split`", '`{"columns": ["a", "b"], "data": [[1, 2], [3]]}`',
         '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3]]}}'),
        ("1e400", '`"data": [[1e400], [-1e400], [1.5], [1e-400]]`',
         '{"dataframe_split": {"columns": ["a"], "data": [[1e400], [-1e400], [1.5], [1e-400]]}}'),
        ("integer of 30 digits", '`"data": [[123456789012345678901234567890], [1]]`',
         '{"dataframe_split": {"columns": ["a"], "data": [[123456789012345678901234567890], [1]]}}'),
    ]


def csv_cases():
    """tests/cpp/csv_test.cc: many identical and many distinct header names."""
    same = ",".join(["a"] * 4000) + "\n" + ",".join(["1"] * 4000) + "\n"
    distinct = ",".join("c%d" % i for i in range(100000)) + "\n" + ",".join(["1"] * 100000) + "\n"
    return [
        ("CSV header of 4,000 identical names", f"`a,a,…,a` + a row of 1s ({len(same) / 1e3:.0f} KB)", same),
        ("CSV header of 100,000 distinct names", f"`c0,…,c99999` + a row of 1s ({len(distinct) / 1e3:.0f} KB)",
         distinct),
    ]


# --- CLI --------------------------------------------------------------------------------

HEADER = "flavors:\n  python_function:\n    loader_module: my_loader\n"


def alias_bomb(levels=9):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels + 1):
        lines.append("a%d: &a%d [%s]" % (i, i, ", ".join(["*a%d" % (i - 1)] * 9)))
    return HEADER + "\n".join(lines) + "\n"


def run_cli(binary, args, timeout=60):
    """(exit code or 'timeout', first message line, seconds, peak RSS MiB)."""
    env = dict(os.environ, PYFUNC_PYTHON=sys.executable)
    timing = tempfile.NamedTemporaryFile(prefix="pyfunc-hostile-time.", delete=False)
    timing.close()
    use_time = os.access("/usr/bin/time", os.X_OK)
    cmd = (["/usr/bin/time", "-v", "-o", timing.name] if use_time else []) + [binary, *map(str, args)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    STARTED.append(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        code = f"**still running after {timeout} s** (killed)"
    seconds = time.perf_counter() - started
    peak = None
    if use_time:
        for line in Path(timing.name).read_text().splitlines():
            if "Maximum resident set size" in line:
                peak = int(line.split(":")[1]) / 1024
        if isinstance(code, int) and "Command terminated by signal" in Path(timing.name).read_text():
            code = f"**signal** ({Path(timing.name).read_text().splitlines()[0]})"
    else:
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        peak = after / 1024 if after > before else None  # only a new maximum is visible this way
    os.unlink(timing.name)
    # validate lists the problems on stdout and sums up on stderr; the others say it on stderr.
    text = (out or b"").decode("utf-8", "replace") + "\n" + (err or b"").decode("utf-8", "replace")
    lines = [l for l in text.splitlines() if l.strip()]
    errors = [l for l in lines if ("error" in l or "outside" in l or ": MLmodel:" in l) and "problem found" not in l]
    message = (errors or lines or [""])[0]
    if len(lines) > 1:
        message += f" (+{len(lines) - 1} other lines)"
    return code, message, seconds, peak


def cli_case(no, case, sent, binary, args, timeout=60):
    code, message, seconds, peak = run_cli(binary, args, timeout)
    message = message.replace(str(TMP), "$TMP")
    answer = f"exit {code}: {excerpt(message, 140)}"
    record(no, case, sent, "CLI `" + str(args[0]) + "`", answer, "",
           (peak, peak) if peak is not None else ("", ""), seconds=seconds)
    ROWS[-1]["rss"] = f"peak {peak:.0f}" if peak is not None else "n/a"


def model_dir(root, name, text):
    d = root / name
    d.mkdir()
    (d / "MLmodel").write_bytes(text if isinstance(text, bytes) else text.encode())
    return d


def cli_cases(binary, tmp):
    root = tmp / "cli"
    root.mkdir()
    bomb = model_dir(root, "bomb", alias_bomb())
    big_text = HEADER + "metadata:\n" + "".join("  key%06d: value_%06d\n" % (i, i) for i in range(400000))
    big = model_dir(root, "big", big_text)
    inputs = [
        ("alias bomb (9 levels of `&aN [*aN-1 ×9]`)", f"{(bomb / 'MLmodel').stat().st_size:,} B", bomb),
        ("10 MB MLmodel", f"400,000 metadata keys, {len(big_text) / 2**20:.1f} MiB", big),
        ("invalid UTF-8 (fuzz)", "MLmodel = `flavors:\\n \\xe0\\x8f\\x86:\\n  e:`",
         model_dir(root, "utf8", b"flavors:\n \xe0\x8f\x86:\n  e:")),
        ("`!!int :f` (fuzz)", "`metadata: {v: !!int :f}` under a valid flavor",
         model_dir(root, "inttag", HEADER + "metadata:\n  v: !!int :f\n")),
        ("`1111111111111111119:9` (fuzz)", "`metadata: {v: 1111111111111111119:9}`",
         model_dir(root, "sexa", HEADER + "metadata:\n  v: 1111111111111111119:9\n")),
        ("plain scalar of 50,000 digits", "`metadata: {v: 777…7}` (50,000 sevens)",
         model_dir(root, "digits", HEADER + "metadata:\n  v: " + "7" * 50000 + "\n")),
    ]
    for name, sent, d in inputs:
        for command in ("info", "validate"):
            cli_case(12, name, sent, binary, [command, d])

    # 13: a data file linked out of the model (test_a_symlink_out_of_the_model_is_refused_by_predict).
    (root / "secret.txt").write_text("not the model's")
    link = model_dir(root, "link", HEADER + "    data: data/model.pkl\n")
    (link / "data").mkdir()
    (link / "data" / "model.pkl").symlink_to(root / "secret.txt")
    (root / "in.csv").write_text("a\n1\n")
    sent = "`data/model.pkl` → a file outside the model"
    cli_case(13, "symlink out of the model", sent, binary, ["validate", link])
    cli_case(13, "symlink out of the model", sent, binary,
             ["predict", "-m", link, "-i", root / "in.csv", "--env-manager", "local"])
    cli_case(13, "symlink out of the model", sent, binary,
             ["serve", "-m", link, "-p", free_port(), "--env-manager", "local"], timeout=30)


# --- main -------------------------------------------------------------------------------


def machine():
    cpu = ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"`nproc` = {os.cpu_count()}, {cpu or platform.processor()}, Linux {platform.release()}"


def table():
    out = ["| # | case | sent | to | answer | kept serving | server RSS MiB | server fds | workers RSS MiB | s |",
           "|---:|---|---|---|---|---|---:|---:|---:|---:|"]
    for r in sorted(ROWS, key=lambda r: r["no"]):
        out.append("| " + " | ".join(cell(r[k]) for k in
                                     ("no", "case", "sent", "where", "answer", "serving", "rss", "fds", "workers",
                                      "seconds")) + " |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pyfunc", default=str(ROOT / "build" / "cpp" / "pyfunc"))
    ap.add_argument("--out", default=None, help="also write the Markdown report here")
    opts = ap.parse_args()
    binary = str(Path(opts.pyfunc).resolve())
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    global TMP
    tmp = TMP = Path(tempfile.mkdtemp(prefix="pyfunc-hostile."))
    atexit.register(shutil.rmtree, tmp, True)
    began = time.perf_counter()

    print("saving the models with MLflow ...", file=sys.stderr, flush=True)
    X, W, wide_clf = make_models(tmp)
    iris_row = {"dataframe_split": {"columns": list(X.columns), "data": [X.iloc[0].tolist()]}}
    print("starting the servers ...", file=sys.stderr, flush=True)
    iris = Server("iris", binary, tmp / "iris", ["--max-body-size", str(MAX_BODY)], 2,
                  ("/invocations", iris_row), tmp)
    behave = Server("behave", binary, tmp / "behave", ["--batching", "rows"], 2,
                    ("/invocations", {"inputs": [1, 2]}), tmp)

    # 1-4: Open Inference Protocol.
    for no, name, body in HOSTILE_OIP:
        sent = f"{excerpt(body, 60)} ({len(body):,} B)" if len(body) > 100 else f"`{body}`"
        server_case(no, name, sent, iris, lambda body=body: http_answer(iris.post("/v2/models/model/infer", body)))

    # 5: a 300 KB model exception, 20 times.
    def long_errors():
        restarts, workers = behave.metric("pyfunc_worker_restarts_total"), children(behave.pid)
        answers = [behave.post("/invocations", {"inputs": [1], "params": {"mode": "long_error"}}) for _ in range(20)]
        started = time.perf_counter()
        ok = behave.post("/invocations", {"inputs": [3], "params": {"mode": "sum"}})
        normal_ms = (time.perf_counter() - started) * 1000
        statuses = sorted({r.status_code for r in answers})
        sizes = sorted({len(r.content) for r in answers})
        trace = answers[-1].json().get("stack_trace", "") if answers[-1].headers.get("Content-Type", "").startswith(
            "application/json") else ""
        return (f"20 × status {statuses}, body {sizes} B, stack_trace of {len(trace):,} chars \""
                f"{excerpt(trace[:14], 20)}…{excerpt(trace[-22:], 40)}\" (the exception's text: 300,012 chars); "
                f"then a normal request {ok.status_code} {ok.text.strip()} in {normal_ms:.1f} ms; worker restarts "
                f"+{behave.metric('pyfunc_worker_restarts_total') - restarts:.0f}, "
                f"same worker pids: {children(behave.pid) == workers}")
    server_case(5, "model raises a 300 KB exception, 20 times", '`{"inputs":[1],"params":{"mode":"long_error"}}` ×20',
                behave, long_errors)

    # 6: a worker killed while idle.
    def kill_worker():
        restarts = iris.metric("pyfunc_worker_restarts_total")
        victim = children(iris.pid)[0]
        started = time.perf_counter()
        os.kill(victim, signal.SIGKILL)
        time.sleep(0.02)
        # Requests while one worker is dead: each must go to the live one.
        during = [iris.post("/invocations", iris_row).status_code for _ in range(5)]
        seen_down = seen_restart = seen_live = None
        while time.perf_counter() - started < 20 and seen_live is None:
            t = time.perf_counter() - started
            live = iris.metric("pyfunc_workers_live")
            if seen_down is None and live == 1:
                seen_down = t
            if seen_restart is None and iris.metric("pyfunc_worker_restarts_total") == restarts + 1:
                seen_restart = t
            if seen_restart is not None and live == 2:
                seen_live = t
            time.sleep(0.01)
        r = iris.post("/invocations", iris_row)
        fmt = (lambda v: "never (in 20 s)" if v is None else f"{v * 1000:.0f} ms")
        return (f"5 requests 20 ms after the kill: {sorted(set(during))}; workers_live = 1 seen at "
                f"{fmt(seen_down)}, restarts_total +1 at {fmt(seen_restart)}, workers_live = 2 at "
                f"{fmt(seen_live)}; next request {r.status_code} {excerpt(r.text.strip(), 30)}; "
                f"old pid reaped: {not Path(f'/proc/{victim}').exists()}")
    server_case(6, "a worker SIGKILLed while idle", "`kill -9` of one of the 2 workers", iris, kill_worker)

    # 7: framing, over raw sockets.
    for name, raw in FRAMING:
        if raw.startswith(POST):  # the part that differs after the common request line and headers
            sent = "POST /invocations, Host, Content-Type, then `" + excerpt(raw[len(POST):], 70) + "`"
        else:
            sent = "`" + excerpt(raw, 70) + "`"
        server_case(7, name, sent + (f" ({len(raw):,} B)" if len(raw) > 200 else ""), iris, case_raw(iris, raw))
    server_case(7, "chunked body over --max-body-size", f"4 chunks of {int(MAX_BODY * 0.3):,} B (limit {MAX_BODY:,})",
                iris, case_chunked_over(iris))
    server_case(7, "declared Content-Length over the limit", f"`Content-Length: {MAX_BODY + 1}`, no body sent",
                iris, case_raw(iris, POST + b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1)))

    # 8: idle and slow connections.
    server_case(8, "2,000 idle + 300 slowloris connections",
                "2,000 connected sockets that send nothing, 300 that send a header byte every 3 s", iris,
                case_idle_and_slowloris(iris))

    # 9: large requests.
    action, sent = case_big_requests(iris, X)
    server_case(9, "80 requests of 4.4 MB", sent, iris, action)

    # 10, 11: JSON and CSV bodies, to iris (a column signature) and to behave (echoes what it read).
    for no, cases, ctype in ((10, json_cases(), "application/json"), (11, csv_cases(), "text/csv")):
        for name, sent, body in cases:
            for server in (iris, behave):
                server_case(no, name, sent, server,
                            lambda server=server, body=body: http_answer(server.post("/invocations", body, ctype)))

    # 11 again: a request whose body is under 1 MiB but whose table is wide, 10 times.
    name, sent, body = csv_cases()[1]

    def repeated():
        rss = []
        for _ in range(10):
            status = iris.post("/invocations", body, "text/csv").status_code
            rss.append(f"{iris.rss():.0f}")
        # A body of at least 1 MiB makes the server hand freed memory back (malloc_trim):
        # whether the growth was the allocator's retention or a leak.
        keys = json_cases()[0][2]
        trim_status = iris.post("/invocations", keys).status_code
        time.sleep(0.3)
        return (f"10 × {status}; server RSS after each: {', '.join(rss)} MiB; then one 1.3 MB body "
                f"(80,000 keys, {trim_status}): {iris.rss():.0f} MiB")
    server_case(11, name + ", 10 times", sent, iris, repeated)

    # 14: a model whose MLmodel is 260 KB.
    size = (tmp / "wide" / "MLmodel").stat().st_size
    started = time.perf_counter()
    wide_row = {"dataframe_split": {"columns": list(W.columns), "data": W.iloc[:3].values.tolist()}}
    try:
        wide = Server("wide", binary, tmp / "wide", [], 1, ("/invocations", wide_row), tmp)
        r = wide.post("/invocations", wide_row)
        same = r.status_code == 200 and r.json() == {"predictions": wide_clf.predict(W.iloc[:3]).tolist()}
        answer = (f"started in {wide.startup_seconds:.1f} s; {http_answer(r, 40)}; "
                  f"equal to the model's own predict: {same}")
        status, took = wide.serving()
        record(14, "MLmodel of 260 KB (4,000-feature LogisticRegression)",
               f"MLmodel {size:,} B; 3 rows × 4,000 columns",
               "wide", answer, f"yes ({took * 1000:.0f} ms)" if status == 200 else f"**NO** ({status})",
               (wide.rss(), wide.rss()), (wide.fds(), wide.fds()), (wide.workers_rss(), wide.workers_rss()),
               time.perf_counter() - started)
        wide.stop()
    except RuntimeError as e:
        record(14, "MLmodel of 260 KB", f"MLmodel {size:,} B", "wide", f"**server failed**: {excerpt(str(e), 200)}",
               seconds=time.perf_counter() - started)

    # Were the long-running servers alive and well to the end?
    for server in (iris, behave):
        log = server.log_path.read_text(errors="replace")
        code = server.stop()
        print(f"{server.name} server: exit {code} on SIGTERM; log {len(log.splitlines())} lines; "
              f"'Assertion'/'terminate'/'Sanitizer' in log: "
              f"{any(w in log for w in ('Assertion', 'terminate called', 'Sanitizer'))}", file=sys.stderr)

    # 12, 13: the CLI.
    cli_cases(binary, tmp)

    total = time.perf_counter() - began
    report = "\n".join([
        f"Machine: {machine()}. Binary: `{os.path.relpath(binary, ROOT) if binary.startswith(str(ROOT)) else binary}`. "
        f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, whole run {total:.0f} s.",
        "",
        table(),
        "",
    ])
    print(report)
    if opts.out:
        Path(opts.out).write_text(report)


if __name__ == "__main__":
    main()
