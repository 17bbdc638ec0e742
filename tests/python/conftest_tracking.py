"""Fixtures of the tracking tests (loaded with ``pytest_plugins = ["conftest_tracking"]``):
an isolated tracking environment, a tiny loader module, the CLI, and one real
``mlflow server`` (SQLite backend, artifact proxy) per session on a free loopback port."""

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LOADER_SOURCE = '''
class _Scaled:
    def __init__(self, path):
        with open(path) as f:
            self.k = float(f.read())
    def predict(self, df, params=None):
        return df * self.k
def _load_pyfunc(path):
    return _Scaled(path)
load_pyfunc = _load_pyfunc
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tracking_env(tmp_path, monkeypatch):
    """A fresh file store in tmp_path/mlruns that both pyfunc and MLflow use, and a
    loader module (scaled_loader.py, multiplying by the number in weights.txt)."""
    import pyfunc

    monkeypatch.chdir(tmp_path)
    store = tmp_path / "mlruns"
    monkeypatch.delenv("PYFUNC_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("PYFUNC_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "scaled_loader.py").write_text(LOADER_SOURCE)
    (tmp_path / "weights.txt").write_text("2")
    pyfunc.set_tracking_uri(None)
    yield tmp_path
    while pyfunc.active_run() is not None:
        try:
            pyfunc.end_run()
        except pyfunc.PyfuncError:  # its store is gone (a test stopped the server)
            pyfunc.tracking._run_stack.pop()
    pyfunc.tracking._experiment_id = None
    pyfunc.set_tracking_uri(None)
    sys.modules.pop("scaled_loader", None)


@pytest.fixture
def loader_kwargs(tracking_env):
    """save_model/log_model keyword arguments of the scaled_loader model (predicts x * 2)."""
    return dict(loader_module="scaled_loader", data_path=str(tracking_env / "weights.txt"),
                code_path=[str(tracking_env / "scaled_loader.py")])


@pytest.fixture
def tcp_forwarder():
    """Makes TcpForwarder(target_port) objects and stops them after the test."""
    made = []

    def make(port):
        made.append(TcpForwarder(port))
        return made[-1]

    yield make
    for f in made:
        f.stop()


@pytest.fixture(scope="session")
def pyfunc_cli():
    for candidate in (Path(sys.executable).parent / "pyfunc", ROOT / "build" / "cpp" / "pyfunc"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("pyfunc")
    if not found:
        pytest.skip("the pyfunc CLI is not built")
    return found


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server with a SQLite backend and the artifact proxy."""
    base = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = open(base / "server.log", "w")
    cmd = [sys.executable, "-m", "mlflow", "server",
           "--backend-store-uri", "sqlite:///" + str(base / "mlflow.db"),
           "--artifacts-destination", str(base / "mlartifacts"),
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=base, env=env)
    url = "http://127.0.0.1:{}".format(port)
    deadline = time.time() + 90
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            log.close()
            pytest.fail("mlflow server did not start:\n" + (base / "server.log").read_text()[-3000:])
        time.sleep(0.3)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


class TcpForwarder:
    """Forwards a loopback port to another; stop() closes the listener and every
    connection, the way a tracking server that goes down looks to a client."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.sockets = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.stopped = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.listener.close()
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass
