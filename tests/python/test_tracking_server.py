"""Tracking against a real `mlflow server` (SQLite backend, artifact proxy): log_model
through the REST API, models registered in MLflow's registry, a server that goes down
or answers 5xx."""

import http.server
import subprocess
import threading
import time
from urllib.parse import urlparse

import pandas as pd
import pytest

import pyfunc
from pyfunc.exceptions import NotFoundError, PyfuncIOError

pytest_plugins = ["conftest_tracking"]

X = pd.DataFrame({"x": [1.0, 3.0]})


@pytest.fixture
def server(mlflow_server, tracking_env, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("PYFUNC_HTTP_BACKOFF", "0.05")
    monkeypatch.setenv("PYFUNC_HTTP_MAX_RETRIES", "2")
    return mlflow_server


def test_log_model_then_mlflow_loads_runs_uri(server, loader_kwargs):
    import mlflow
    from mlflow import MlflowClient

    with pyfunc.start_run(run_name="rest-run") as run:
        pyfunc.log_params({"alpha": 0.1})
        pyfunc.log_metrics({"rmse": 0.3, "mae": 0.2}, step=1)
        pyfunc.set_tag("team", "ml")
        pyfunc.log_model("model", **loader_kwargs)
    run_id = run.info.run_id

    client = MlflowClient(tracking_uri=server)
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "rest-run"
    assert got.data.params == {"alpha": "0.1"}
    assert got.data.metrics == {"rmse": 0.3, "mae": 0.2}
    assert got.info.artifact_uri.startswith("mlflow-artifacts:/")
    # An MLflow 3 server keeps logged models: the model is one, linked to the run, its
    # files behind the server's artifact proxy.
    models = client.search_logged_models(experiment_ids=["0"], filter_string="source_run_id = '%s'" % run_id)
    assert [(m.name, str(m.status)) for m in models] == [("model", "READY")]
    assert models[0].artifact_location.startswith("mlflow-artifacts:/0/models/" + models[0].model_id)
    assert models[0].params == {"alpha": "0.1"}
    assert [o.model_id for o in got.outputs.model_outputs] == [models[0].model_id]
    assert "MLmodel" in {f.path for f in client.list_logged_model_artifacts(models[0].model_id)}

    model = mlflow.pyfunc.load_model("runs:/%s/model" % run_id)
    pd.testing.assert_frame_equal(pd.DataFrame(model.predict(X)), X * 2)
    model = mlflow.pyfunc.load_model("models:/" + models[0].model_id)
    pd.testing.assert_frame_equal(pd.DataFrame(model.predict(X)), X * 2)
    assert mlflow.models.Model.load("models:/" + models[0].model_id).model_id == models[0].model_id

    pd.testing.assert_frame_equal(pd.DataFrame(pyfunc.load_pyfunc("model", run_id=run_id).predict(X)), X * 2)
    assert [r.info.run_id for r in pyfunc.search_runs()][0] == run_id
    with pytest.raises(NotFoundError):
        pyfunc.get_run("0123456789abcdef0123456789abcdef")


def test_registered_model_through_cli_and_load_pyfunc(server, loader_kwargs, pyfunc_cli):
    import mlflow

    class Times10(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input):
            return model_input * 10

    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="clf", python_model=Times10(), registered_model_name="srv-model")
    mlflow.MlflowClient().set_registered_model_alias("srv-model", "champion", "1")

    proc = subprocess.run([pyfunc_cli, "info", "models:/srv-model/1"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "python_function" in proc.stdout and info.model_id in proc.stdout

    for uri in ("models:/srv-model/1", "models:/srv-model@champion", info.model_uri, "runs:/%s/clf" % run.info.run_id):
        pd.testing.assert_frame_equal(pd.DataFrame(pyfunc.load_pyfunc(uri).predict(X)), X * 10, obj=uri)

    # A pyfunc-logged model, registered by MLflow from its runs:/ URI.
    with pyfunc.start_run() as prun:
        pyfunc.log_model("model", **loader_kwargs)
    mv = mlflow.register_model("runs:/%s/model" % prun.info.run_id, "srv-pyfunc-model")
    loaded = pyfunc.load_pyfunc("models:/srv-pyfunc-model/%s" % mv.version)
    pd.testing.assert_frame_equal(pd.DataFrame(loaded.predict(X)), X * 2)

    proc = subprocess.run([pyfunc_cli, "info", "models:/no-such-model/1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "no-such-model" in proc.stderr


def test_server_stopped_mid_run(server, tracking_env, loader_kwargs, tcp_forwarder, monkeypatch):
    forwarder = tcp_forwarder(urlparse(server).port)
    url = "http://127.0.0.1:%d" % forwarder.port
    pyfunc.set_tracking_uri(url)
    run = pyfunc.start_run()
    pyfunc.log_param("before", "1")
    forwarder.stop()
    started = time.time()
    with pytest.raises(PyfuncIOError, match=r"gave up after 3 attempts.*tracking server running"):
        pyfunc.log_metric("after", 1.0)
    assert time.time() - started < 10
    with pytest.raises(PyfuncIOError):
        pyfunc.log_model("model", **loader_kwargs)
    with pytest.raises(PyfuncIOError):
        pyfunc.end_run()
    # The run is still there and says RUNNING: nothing claims to be finished.
    pyfunc.set_tracking_uri(server)
    got = pyfunc.get_run(run.info.run_id)
    assert got.info.status == "RUNNING"
    assert got.data.params == {"before": "1"} and got.data.metrics == {}
    pyfunc.end_run("KILLED")
    assert pyfunc.get_run(run.info.run_id).info.status == "KILLED"


def test_5xx_is_retried_then_reported(tracking_env, monkeypatch):
    calls = []

    class Always503(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            calls.append(self.path)
            body = b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "overloaded"}'
            self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Always503)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("PYFUNC_HTTP_BACKOFF", "0.01")
        monkeypatch.setenv("PYFUNC_HTTP_MAX_RETRIES", "3")
        pyfunc.set_tracking_uri("http://127.0.0.1:%d" % srv.server_address[1])
        with pytest.raises(PyfuncIOError, match="HTTP 503.*gave up after 4 attempts"):
            pyfunc.get_run("0123456789abcdef0123456789abcdef")
        assert len(calls) == 4
    finally:
        srv.shutdown()


def test_logged_models_only_where_the_server_has_them(server, tracking_env):
    assert pyfunc._core.TrackingStore.open(server).supports_logged_models() is True

    class Mlflow2(http.server.BaseHTTPRequestHandler):
        # An MLflow 2 server has no /logged-models routes: Flask's plain 404.
        def do_POST(self):
            body = b"<!doctype html><title>404 Not Found</title>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Mlflow2)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        store = pyfunc._core.TrackingStore.open("http://127.0.0.1:%d" % srv.server_address[1])
        assert store.supports_logged_models() is False
    finally:
        srv.shutdown()
