"""Container images built by `pyfunc build-docker` with a real builder (buildah), run
with `buildah run` on loopback: the model image serves a model logged to a run with the
answers `pyfunc serve` gives (MLflow's protocol, KServe V1, OIP REST and gRPC) and MLflow
predicts; the generic image serves a model mounted at /opt/ml/model (SageMaker) or named
by -m (KServe's /mnt/models), and drains on SIGTERM.

Slow (minutes: a wheel, two images, an environment built at container start); run by
scripts/test-images.sh, which installs buildah, podman and mmdebstrap and makes the base
image (tests/images/make-base.sh).
"""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

HERE = Path(__file__).resolve().parent
PYFUNC = str(Path(sys.executable).parent / "pyfunc")
BUILD_ENV = dict(os.environ, BUILDAH_ISOLATION="chroot", PYFUNC_PYTHON=sys.executable)
FRAME = pd.DataFrame({"a": [0.9, 0.1, 0.55], "b": [0.1, 0.3, 0.8], "c": [0.2, 0.4, 0.6]})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, path, body=None, content_type="application/json", timeout=60):
    data = None if body is None else (body if isinstance(body, bytes) else body.encode())
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                 headers={"Content-Type": content_type} if data is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_ready(port, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError("the server exited with status {}:\n{}".format(proc.returncode, proc.stderr.read()))
        try:
            if http(port, "/ping", timeout=2)[0] == 200:
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise AssertionError("not ready after {} s".format(timeout))


def buildah(*args, **kw):
    return subprocess.run(["buildah", *args], env=BUILD_ENV, capture_output=True, text=True, check=True, **kw).stdout


def image_config(image):
    return json.loads(buildah("inspect", "--type", "image", image))["OCIv1"]["config"]


@contextlib.contextmanager
def container(image, *args, env=(), volumes=(), ready_timeout=120):
    """Runs the image's entrypoint and command (or `args` in place of the command), as
    `docker run IMAGE [args]` does, on the host's network with free ports."""
    config = image_config(image)
    command = config["Entrypoint"] + (list(args) or config["Cmd"])
    port, grpc_port = free_port(), free_port()
    name = buildah("from", "--pull=never", image).strip()
    run = ["buildah", "run", "--network", "host", "--env", f"MLFLOW_PORT={port}", "--env", f"PYFUNC_GRPC_PORT={grpc_port}"]
    for e in env:
        run += ["--env", e]
    for v in volumes:
        run += ["--volume", v]
    proc = subprocess.Popen(run + [name, "--"] + command, env=BUILD_ENV, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(port, proc, ready_timeout)
        yield proc, port, grpc_port, name
    finally:
        if proc.poll() is None:
            server_pid = next(iter(serve_pids()), None)
            if server_pid:
                os.kill(server_pid, signal.SIGKILL)
            proc.kill()
        proc.wait(timeout=30)
        subprocess.run(["buildah", "rm", name], env=BUILD_ENV, capture_output=True)


def serve_pids():
    """The container's `pyfunc serve` processes (buildah's chroot isolation shares the PID
    namespace, so they are visible here by their in-image path)."""
    out = subprocess.run(["pgrep", "-f", "^/opt/pyfunc/bin/pyfunc serve"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.fixture(scope="module")
def base_image():
    subprocess.run([str(HERE / "make-base.sh")], check=True)


@pytest.fixture(scope="module")
def logged_model(tmp_path_factory):
    """An sklearn model logged to a run of a sqlite tracking store, as MLflow users log them."""
    import mlflow
    import sklearn
    import cloudpickle
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("tracking")
    uri = f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    X = pd.DataFrame(np.random.RandomState(0).rand(60, 3), columns=list("abc"))
    y = (X.a + X.b > 1).astype(int)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            LogisticRegression().fit(X, y), name="model", input_example=X.head(3), serialization_format="cloudpickle",
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"cloudpickle=={cloudpickle.__version__}",
                              f"pandas=={pd.__version__}", f"numpy=={np.__version__}"])
    mlflow.set_tracking_uri(None)
    return uri, f"runs:/{run.info.run_id}/model"


@pytest.fixture(scope="module")
def model_image(base_image, logged_model):
    uri, model_uri = logged_model
    name = "localhost/pyfunc-test-model"
    started = time.time()
    proc = subprocess.run([PYFUNC, "build-docker", "-m", model_uri, "-n", name, "--builder", "buildah"],
                          env=dict(BUILD_ENV, MLFLOW_TRACKING_URI=uri), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.strip() == name
    print(f"built {name} in {time.time() - started:.1f} s")
    return name


@pytest.fixture(scope="module")
def generic_image(base_image):
    name = "localhost/pyfunc-test-generic"
    proc = subprocess.run([PYFUNC, "build-docker", "--no-model", "-n", name, "--builder", "buildah"],
                          env=BUILD_ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return name


@pytest.fixture(scope="module")
def host_server(logged_model):
    """`pyfunc serve` of the same model on this machine, to compare answers with."""
    uri, model_uri = logged_model
    port = free_port()
    proc = subprocess.Popen([PYFUNC, "serve", "-m", model_uri, "-p", str(port), "--env-manager", "local"],
                            env=dict(BUILD_ENV, MLFLOW_TRACKING_URI=uri), stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(port, proc, 120)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_model_image_runs_as_user_1000_serves_on_8080_and_8081_and_starts_with_serve(model_image):
    config = image_config(model_image)
    assert config["User"] == "1000:0"
    assert set(config["ExposedPorts"]) == {"8080/tcp", "8081/tcp"}
    assert config["Entrypoint"] == ["pyfunc"] and config["Cmd"] == ["serve"]
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["PYFUNC_MODEL_URI"] == "/opt/ml/model" and env["MLFLOW_PORT"] == "8080"
    assert env["PYFUNC_GRPC_PORT"] == "8081" and env["MLFLOW_HOST"] == "0.0.0.0"
    assert env["MLFLOW_MODELS_WORKERS"] == "0"  # one per core the container may use
    name = buildah("from", "--pull=never", model_image).strip()
    try:
        assert buildah("run", name, "--", "id", "-u").strip() == "1000"
        # The model's environment was built at build time: nothing is installed at start.
        out = buildah("run", name, "--", "pyfunc", "prepare-env", "-m", "/opt/ml/model")
        assert out.startswith("ready virtualenv /opt/pyfunc/envs/"), out
    finally:
        buildah("rm", name)


REQUESTS = [
    ("/invocations", "application/json", FRAME.to_json(orient="split", index=False).join(['{"dataframe_split": ', "}"])),
    ("/invocations", "application/json", json.dumps({"dataframe_records": FRAME.to_dict(orient="records")})),
    ("/invocations", "application/json", json.dumps({"instances": FRAME.to_dict(orient="records")})),
    ("/invocations", "text/csv", FRAME.to_csv(index=False)),
    ("/v1/models/model:predict", "application/json", json.dumps({"instances": FRAME.to_dict(orient="records")})),
    ("/v2/models/model/infer", "application/json", json.dumps({"inputs": [
        {"name": c, "shape": [len(FRAME)], "datatype": "FP64", "data": FRAME[c].tolist()} for c in FRAME.columns]})),
]


def test_model_image_answers_as_pyfunc_serve_and_mlflow(model_image, host_server, logged_model):
    import mlflow

    uri, model_uri = logged_model
    mlflow.set_tracking_uri(uri)
    expected = mlflow.pyfunc.load_model(model_uri).predict(FRAME).tolist()
    mlflow.set_tracking_uri(None)
    with container(model_image) as (proc, port, grpc_port, _):
        for path, content_type, body in REQUESTS:
            status, text = http(port, path, body, content_type)
            assert (status, text) == http(host_server, path, body, content_type), path
            assert status == 200, text
            answer = json.loads(text)
            got = answer["outputs"][0]["data"] if path.startswith("/v2") else answer["predictions"]
            assert got == expected, path

        import tritonclient.grpc as grpcclient

        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        assert client.is_server_ready() and client.is_model_ready("model")
        inputs = []
        for c in FRAME.columns:
            t = grpcclient.InferInput(c, [len(FRAME)], "FP64")
            t.set_data_from_numpy(FRAME[c].to_numpy())
            inputs.append(t)
        result = client.infer("model", inputs)
        rest = json.loads(http(port, *REQUESTS[-1][:1], REQUESTS[-1][2], REQUESTS[-1][1])[1])
        name = rest["outputs"][0]["name"]
        assert result.as_numpy(name).tolist() == rest["outputs"][0]["data"] == expected


SLOW_MODEL = textwrap.dedent("""
    import time

    import pandas as pd

    class Slow:
        def predict(self, df, params=None):
            df = pd.DataFrame(df)  # KServe V1 instances arrive as a dict of arrays, as in MLflow
            time.sleep(float(df["sleep"].max()))
            return (df["x"] * 2).to_numpy()

    def _load_pyfunc(path):
        return Slow()
""")


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory):
    import pyfunc

    root = tmp_path_factory.mktemp("slow")
    (root / "slow_model.py").write_text(SLOW_MODEL)
    path = root / "model"
    python = "{}.{}.{}".format(*sys.version_info[:3])
    pyfunc.save_model(str(path), loader_module="slow_model", code_path=[str(root / "slow_model.py")],
                      conda_env={"dependencies": [f"python={python}", "pip", {
                          "pip": [f"pandas=={pd.__version__}", f"numpy=={np.__version__}"]}]})
    os.chmod(root, 0o755)
    for p in path.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    path.chmod(0o755)
    return path


def test_generic_image_serves_the_model_mounted_at_opt_ml_model_and_drains_on_sigterm(generic_image, slow_model):
    config = image_config(generic_image)
    assert config["User"] == "1000:0" and config["Cmd"] == ["serve"]
    body = json.dumps({"dataframe_split": {"columns": ["x", "sleep"], "data": [[1, 2.0], [2, 0.0]]}})
    # SageMaker runs `docker run IMAGE serve` with the model at /opt/ml/model; the
    # container builds the model's environment as it starts.
    with container(generic_image, "serve", volumes=[f"{slow_model}:/opt/ml/model:ro"], ready_timeout=600) as (
            proc, port, _, name):
        assert http(port, "/ping")[0] == 200
        answer = {}
        request = threading.Thread(target=lambda: answer.update(r=http(port, "/invocations", body)))
        request.start()
        time.sleep(0.7)  # the request is in the model's predict
        pids = serve_pids()
        assert len(pids) == 1, pids
        os.kill(pids[0], signal.SIGTERM)
        request.join(timeout=60)
        assert answer["r"] == (200, '{"predictions": [2, 4]}')
        assert proc.wait(timeout=60) == 0
        log = proc.stderr.read()
        assert "draining" in log and "drained; exiting" in log, log

        # KServe's runtime passes the model as -m /mnt/models and its name; the environment
        # built by the first start is reused.
        run = ["buildah", "run", "--network", "host", "--env", f"MLFLOW_PORT={port}", "--volume",
               f"{slow_model}:/mnt/models:ro", name, "--", "pyfunc", "serve", "-m", "/mnt/models", "--name", "slow"]
        kserve = subprocess.Popen(run, env=BUILD_ENV, stderr=subprocess.PIPE, text=True)
        try:
            wait_ready(port, kserve, 120)
            v1 = json.dumps({"instances": [{"x": 5, "sleep": 0.0}]})
            assert http(port, "/v1/models/slow:predict", v1) == (200, '{"predictions": [10]}')
        finally:
            for pid in serve_pids():
                os.kill(pid, signal.SIGTERM)
            assert kserve.wait(timeout=60) == 0
