"""Tracking with the local file store: pyfunc and MLflow read each other's ./mlruns,
concurrent writers, path escapes, bad run ids, the CLI."""

import json
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

import pyfunc
from pyfunc.exceptions import InvalidArgumentError, NotFoundError

pytest_plugins = ["conftest_tracking"]

X = pd.DataFrame({"x": [1.0, 2.0]})


def test_pyfunc_writes_mlflow_reads_and_loads(tracking_env, loader_kwargs):
    import mlflow
    from mlflow import MlflowClient

    with pyfunc.start_run(run_name="train") as run:
        pyfunc.log_params({"alpha": 0.5, "n": 3})
        pyfunc.log_metric("rmse", 0.75, step=0)
        pyfunc.log_metric("rmse", 0.5, step=1)
        pyfunc.set_tags({"team": "ml"})
        pyfunc.log_model("model", **loader_kwargs)
    run_id = run.info.run_id

    client = MlflowClient(tracking_uri=(tracking_env / "mlruns").as_uri())
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "train"
    assert got.data.params == {"alpha": "0.5", "n": "3"}
    assert got.data.metrics == {"rmse": 0.5}
    assert got.data.tags["team"] == "ml"
    assert [m.value for m in client.get_metric_history(run_id, "rmse")] == [0.75, 0.5]
    assert [r.info.run_id for r in client.search_runs(["0"])] == [run_id]
    names = {f.path for f in client.list_artifacts(run_id, "model")}
    assert {"model/MLmodel", "model/data", "model/code"} <= names
    local = client.download_artifacts(run_id, "model", str(tracking_env / "dl"))
    assert os.path.exists(os.path.join(local, "MLmodel"))
    history = json.loads(got.data.tags["mlflow.log-model.history"])
    assert history[0]["artifact_path"] == "model" and history[0]["run_id"] == run_id

    model = mlflow.pyfunc.load_model("runs:/{}/model".format(run_id))
    pd.testing.assert_frame_equal(pd.DataFrame(model.predict(X)), X * 2)
    # And pyfunc loads it back, both ways the seed and MLflow name it.
    pd.testing.assert_frame_equal(pd.DataFrame(pyfunc.load_pyfunc("model", run_id=run_id).predict(X)), X * 2)
    pd.testing.assert_frame_equal(pd.DataFrame(pyfunc.load_pyfunc("runs:/%s/model" % run_id).predict(X)), X * 2)
    mlmodel = pyfunc._core.read_model(pyfunc._uri.resolve_model_uri("runs:/%s/model" % run_id))
    assert mlmodel["run_id"] == run_id and mlmodel["artifact_path"] == "model"


def test_mlflow_writes_pyfunc_reads_and_loads(tracking_env):
    import mlflow

    class Times10(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input):
            return model_input * 10

    with mlflow.start_run(run_name="mlflow-run") as run:
        mlflow.log_param("p", "v")
        mlflow.log_metric("m", 1.5, step=3)
        mlflow.set_tag("t", "x")
        info = mlflow.pyfunc.log_model(name="clf", python_model=Times10(), registered_model_name="reg")
        mlflow.log_text("hello", "notes/readme.txt")
    mlflow.MlflowClient().set_registered_model_alias("reg", "champion", "1")
    run_id = run.info.run_id

    got = pyfunc.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "mlflow-run"
    assert got.data.params == {"p": "v"} and got.data.metrics == {"m": 1.5}
    assert got.data.tags["t"] == "x"
    assert [r.info.run_id for r in pyfunc.search_runs()] == [run_id]
    store = pyfunc._core.TrackingStore.open(pyfunc.get_tracking_uri())
    assert [f["path"] for f in store.list_artifacts(run_id, "notes")] == ["notes/readme.txt"]

    # MLflow 3 keeps the model's files with the logged model; runs:/<run>/clf falls back to it.
    for uri in ("runs:/%s/clf" % run_id, info.model_uri, "models:/reg/1", "models:/reg@champion", "models:/reg/latest"):
        pd.testing.assert_frame_equal(pd.DataFrame(pyfunc.load_pyfunc(uri).predict(X)), X * 10, obj=uri)


def test_concurrent_writers_from_two_processes(tracking_env):
    run = pyfunc.start_run()
    pyfunc.end_run()
    script = textwrap.dedent("""
        import sys, pyfunc
        run_id, who = sys.argv[1], sys.argv[2]
        with pyfunc.start_run(run_id=run_id):
            for i in range(150):
                pyfunc.log_metric("loss", i, step=i)
                pyfunc.set_tag("last_" + who, str(i))
            pyfunc.log_param("param_" + who, who)
        for i in range(5):
            with pyfunc.start_run(tags={"who": who}):
                pass
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, run.info.run_id, who]) for who in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    store = pyfunc._core.TrackingStore.open(pyfunc.get_tracking_uri())
    assert len(store.get_metric_history(run.info.run_id, "loss")) == 300
    got = pyfunc.get_run(run.info.run_id)
    assert got.data.params == {"param_a": "a", "param_b": "b"}
    assert got.data.tags["last_a"] == "149" and got.data.tags["last_b"] == "149"
    assert len(pyfunc.search_runs()) == 11
    leftovers = [n for n in os.listdir(tracking_env / "mlruns" / "0") if n.startswith(".")]
    assert leftovers == []


def test_artifact_paths_cannot_leave_the_run(tracking_env, loader_kwargs):
    f = tracking_env / "weights.txt"
    with pyfunc.start_run() as run:
        for bad in ("../escape", "/etc", "a/../../b"):
            with pytest.raises(InvalidArgumentError, match="artifact path"):
                pyfunc.log_artifact(f, bad)
        with pytest.raises(InvalidArgumentError):
            pyfunc.log_model("../outside", **loader_kwargs)
        run_dir = tracking_env / "mlruns" / "0" / run.info.run_id
        outside = tracking_env / "outside"
        outside.mkdir()
        os.symlink(outside, run_dir / "artifacts" / "link")
        src = tracking_env / "src"
        src.mkdir()
        (src / "a.txt").write_text("a")
        (src / "b.txt").write_text("b")
        with pytest.raises(InvalidArgumentError, match="symlink"):
            pyfunc.log_artifacts(src, "link")
        with pytest.raises(InvalidArgumentError, match="symlink"):
            pyfunc.log_artifact(f, "link/sub")
        assert list(outside.iterdir()) == []
        assert sorted(os.listdir(run_dir)) == ["artifacts", "meta.yaml", "metrics", "params", "tags"]
        assert os.listdir(run_dir / "artifacts") == ["link"]
        pyfunc.log_artifact(f, "ok/dir")
    assert (run_dir / "artifacts" / "ok" / "dir" / "weights.txt").read_text() == "2"


def test_bad_run_ids_and_names_are_not_found(tracking_env):
    with pytest.raises(NotFoundError, match="no such run"):
        pyfunc.load_pyfunc("model", run_id="0123456789abcdef0123456789abcdef")
    with pytest.raises(NotFoundError):
        pyfunc.get_run("../../etc")
    with pytest.raises(NotFoundError):
        pyfunc.load_pyfunc("models:/no-such-model/1")
    with pytest.raises(NotFoundError):
        pyfunc.load_pyfunc("models:/m-0000")
    with pyfunc.start_run() as run:
        pass
    with pytest.raises(NotFoundError, match="no artifact 'model'"):
        pyfunc.load_pyfunc("runs:/%s/model" % run.info.run_id)
    with pytest.raises(InvalidArgumentError, match="unsupported"):
        pyfunc.load_pyfunc("s3://bucket/model")


def test_context_manager_marks_failed_runs(tracking_env):
    with pytest.raises(RuntimeError):
        with pyfunc.start_run() as run:
            raise RuntimeError("boom")
    assert pyfunc.active_run() is None
    got = pyfunc.get_run(run.info.run_id)
    assert got.info.status == "FAILED" and got.info.end_time is not None
    with pyfunc.start_run() as outer:
        with pytest.raises(InvalidArgumentError, match="already active"):
            pyfunc.start_run()
        with pyfunc.start_run(nested=True) as inner:
            assert pyfunc.active_run().info.run_id == inner.info.run_id
        assert pyfunc.active_run().info.run_id == outer.info.run_id
    assert pyfunc.get_run(inner.info.run_id).data.tags["mlflow.parentRunId"] == outer.info.run_id


def test_tracking_uri_precedence(tracking_env, monkeypatch):
    assert pyfunc.get_tracking_uri() == (tracking_env / "mlruns").as_uri()
    monkeypatch.setenv("PYFUNC_TRACKING_URI", str(tracking_env / "other"))
    assert pyfunc.get_tracking_uri() == (tracking_env / "other").as_uri()
    pyfunc.set_tracking_uri("sqlite:///x.db")
    assert pyfunc.get_tracking_uri() == "sqlite:///x.db"
    pyfunc.set_tracking_uri(None)
    monkeypatch.delenv("PYFUNC_TRACKING_URI")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert pyfunc.get_tracking_uri() == "sqlite:///%s/mlflow.db" % tracking_env  # MLflow's default


def test_experiments(tracking_env):
    exp = pyfunc.set_experiment("exp-a")
    assert exp["name"] == "exp-a" and len(exp["experiment_id"]) == 18
    with pyfunc.start_run() as run:
        pass
    assert run.info.experiment_id == exp["experiment_id"]
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=(tracking_env / "mlruns").as_uri())
    assert client.get_experiment_by_name("exp-a").experiment_id == exp["experiment_id"]
    assert client.get_run(run.info.run_id).info.experiment_id == exp["experiment_id"]


def test_cli_runs_and_experiments(tracking_env, loader_kwargs, pyfunc_cli):
    with pyfunc.start_run(run_name="cli-run") as run:
        pyfunc.log_param("alpha", "0.5")
        pyfunc.log_model("model", **loader_kwargs)

    def cli(*args, ok=True):
        proc = subprocess.run([pyfunc_cli, *args], capture_output=True, text=True, timeout=60)
        assert (proc.returncode == 0) == ok, proc.stderr
        return proc

    out = cli("runs", "list").stdout
    assert run.info.run_id in out and "cli-run" in out and "FINISHED" in out
    out = cli("runs", "show", run.info.run_id).stdout
    assert "param.alpha:" in out and "artifact:" in out and "model/" in out
    assert "Default" in cli("experiments", "list").stdout
    assert "loader_module:      scaled_loader" in cli("info", "runs:/%s/model" % run.info.run_id).stdout
    assert "valid pyfunc model" in cli("validate", "runs:/%s/model" % run.info.run_id).stdout
    err = cli("runs", "show", "0123456789abcdef0123456789abcdef", ok=False).stderr
    assert "no such run" in err
    err = cli("runs", "list", "--experiment", "nope", ok=False).stderr
    assert "nope" in err


def test_mlflow_sqlite_store_is_read(tracking_env, monkeypatch, pyfunc_cli):
    import mlflow

    class Times10(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input):
            return model_input * 10

    db_uri = "sqlite:///" + str(tracking_env / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", db_uri)
    with mlflow.start_run() as run:
        mlflow.log_param("p", "v")
        info = mlflow.pyfunc.log_model(name="clf", python_model=Times10(), registered_model_name="sq")
    assert pyfunc.get_tracking_uri() == db_uri
    assert pyfunc.get_run(run.info.run_id).data.params == {"p": "v"}
    for uri in ("runs:/%s/clf" % run.info.run_id, info.model_uri, "models:/sq/1", "models:/sq/latest"):
        pd.testing.assert_frame_equal(pd.DataFrame(pyfunc.load_pyfunc(uri).predict(X)), X * 10, obj=uri)
    with pytest.raises(NotFoundError):
        pyfunc.load_pyfunc("models:/sq/7")
    # pyfunc writes into MLflow's database too (tests/python/test_tracking_sqlite.py).
    with pyfunc.start_run(run_name="by-pyfunc") as prun:
        pyfunc.log_param("q", "w")
    assert mlflow.MlflowClient().get_run(prun.info.run_id).data.params == {"q": "w"}
    proc = subprocess.run([pyfunc_cli, "runs", "list"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and run.info.run_id in proc.stdout and prun.info.run_id in proc.stdout
