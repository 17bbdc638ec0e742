"""Tracking to MLflow's SQL store in sqlite (pyfunc's default, as MLflow's): what pyfunc
writes, MLflow reads with its defaults (no environment variables) and loads; pyfunc writes
into databases MLflow made, at the revision they are at, also while `mlflow server`
serves them; concurrent writers lose nothing; bad databases get clear errors and are not
touched."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request

import pandas as pd
import pytest

import pyfunc
from pyfunc.exceptions import InvalidArgumentError, PyfuncError, PyfuncIOError

pytest_plugins = ["conftest_tracking"]

X = pd.DataFrame({"x": [1.0, 3.0]})
HEAD_REVISION = "dc11669786a5"  # MLflow 3.17.2's, the newest pyfunc knows


def clean_env():
    """The environment of a new shell: no MLflow or pyfunc settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PYFUNC_TRACKING"))}


def mlflow_sees(cwd, code, env=None):
    """Runs `code` in a fresh Python process in `cwd` with MLflow's defaults; the code
    prints one JSON document, returned."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env or clean_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def sqlite_env(tracking_env, monkeypatch):
    """The tracking environment with nothing set: pyfunc and MLflow both default to
    ./mlflow.db in tmp_path (the working directory)."""
    for var in ("MLFLOW_TRACKING_URI", "PYFUNC_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.delenv(var, raising=False)
    pyfunc.set_tracking_uri(None)
    return tracking_env


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_default_store_is_mlflow_db_and_mlflow_reads_it(sqlite_env, loader_kwargs):
    assert pyfunc.get_tracking_uri() == "sqlite:///%s/mlflow.db" % sqlite_env
    with pyfunc.start_run(run_name="train") as run:
        pyfunc.log_params({"alpha": 0.5, "n": 3})
        for step, v in enumerate([0.9, 0.5, 0.25]):
            pyfunc.log_metric("rmse", v, step=step)
        pyfunc.log_metric("nan_metric", float("nan"))
        pyfunc.set_tag("team", "ml")
        pyfunc.log_input({"name": "iris", "digest": "d1g3st", "source_type": "local",
                          "source": json.dumps({"uri": "/data/iris.csv"})}, context="training")
        model = pyfunc.log_model("model", **loader_kwargs)
    run_id = run.info.run_id
    assert model.model_id.startswith("m-") and model.run_id == run_id
    assert os.path.exists(sqlite_env / "mlflow.db") and not os.path.exists(sqlite_env / "mlruns" / "0" / "meta.yaml")

    seen = mlflow_sees(sqlite_env, """
        import json, math, mlflow, pandas as pd
        from mlflow import MlflowClient
        c = MlflowClient()
        run = c.search_runs(["0"])[0]
        models = c.search_logged_models(experiment_ids=["0"])
        m = models[0]
        X = pd.DataFrame({"x": [1.0, 3.0]})
        print(json.dumps({
            "uri": mlflow.get_tracking_uri(),
            "run_id": run.info.run_id, "name": run.info.run_name, "status": run.info.status,
            "params": run.data.params, "rmse": run.data.metrics["rmse"],
            "nan": math.isnan(run.data.metrics["nan_metric"]), "team": run.data.tags["team"],
            "history": [(p.step, p.value) for p in c.get_metric_history(run.info.run_id, "rmse")],
            "outputs": [o.model_id for o in run.outputs.model_outputs],
            "inputs": [(d.dataset.name, d.dataset.digest, [t.value for t in d.tags]) for d in run.inputs.dataset_inputs],
            "models": [(x.model_id, x.name, str(x.status), x.source_run_id, x.params) for x in models],
            "by_run": mlflow.pyfunc.load_model("runs:/%s/model" % run.info.run_id).predict(X)["x"].tolist(),
            "by_id": mlflow.pyfunc.load_model("models:/" + m.model_id).predict(X)["x"].tolist(),
            "mlmodel_id": mlflow.models.Model.load("models:/" + m.model_id).model_id,
            "artifact_location": mlflow.get_experiment("0").artifact_location,
        }))
    """)
    assert seen["uri"] == "sqlite:///%s/mlflow.db" % sqlite_env
    assert seen["run_id"] == run_id and seen["name"] == "train" and seen["status"] == "FINISHED"
    assert seen["params"] == {"alpha": "0.5", "n": "3"} and seen["rmse"] == 0.25 and seen["nan"]
    assert seen["team"] == "ml"
    assert seen["history"] == [[0, 0.9], [1, 0.5], [2, 0.25]]
    assert seen["outputs"] == [model.model_id]
    assert seen["inputs"] == [["iris", "d1g3st", ["training"]]]
    assert seen["models"] == [[model.model_id, "model", "READY", run_id, {"alpha": "0.5", "n": "3"}]]
    assert seen["by_run"] == seen["by_id"] == [2.0, 6.0]
    assert seen["mlmodel_id"] == model.model_id
    assert seen["artifact_location"] == str(sqlite_env / "mlruns" / "0")

    # And pyfunc loads it back every way.
    for uri in ("runs:/%s/model" % run_id, "models:/" + model.model_id):
        pd.testing.assert_frame_equal(pd.DataFrame(pyfunc.load_pyfunc(uri).predict(X)), X * 2, obj=uri)
    pd.testing.assert_frame_equal(pd.DataFrame(pyfunc.load_pyfunc("model", run_id=run_id).predict(X)), X * 2)


def test_new_database_schema_is_mlflows(sqlite_env, tmp_path):
    pyfunc.set_tracking_uri("sqlite:///" + str(tmp_path / "pyfunc.db"))
    pyfunc.start_run()
    pyfunc.end_run()
    mlflow_sees(tmp_path, """
        import json, mlflow
        mlflow.MlflowClient("sqlite:///mlflow-made.db").search_experiments()
        print("{}")
    """)
    import re
    import sqlite3

    def normalized(sql):
        # MLflow builds some CHECK constraints from Python sets: the order of the values, and
        # of the constraints, varies from one MLflow process to the next.
        sql = re.sub(r"IN \(([^()]*)\)", lambda m: "IN (%s)" % ", ".join(sorted(m.group(1).split(", "))), sql or "")
        return tuple(sorted(line.strip().rstrip(",") for line in sql.splitlines()))

    def schema(path):
        con = sqlite3.connect(path)
        try:
            objects = {(t, n, tb, normalized(q)) for t, n, tb, q in con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")}
            return (objects, con.execute("SELECT version_num FROM alembic_version").fetchall(),
                    con.execute("SELECT * FROM workspaces").fetchall(),
                    con.execute("SELECT experiment_id, name, lifecycle_stage, workspace FROM experiments").fetchall())
        finally:
            con.close()

    ours, theirs = schema(tmp_path / "pyfunc.db"), schema(tmp_path / "mlflow-made.db")
    assert ours[0] - theirs[0] == set() and theirs[0] - ours[0] == set()
    assert ours[1] == theirs[1] == [(HEAD_REVISION,)]
    assert ours[2] == theirs[2]
    assert ours[3] == theirs[3] == [(0, "Default", "active", "default")]


def test_pyfunc_writes_into_a_database_mlflow_made(sqlite_env, loader_kwargs):
    made = mlflow_sees(sqlite_env, """
        import json, mlflow
        class Times10(mlflow.pyfunc.PythonModel):
            def predict(self, context, model_input):
                return model_input * 10
        mlflow.set_experiment("shared")
        with mlflow.start_run(run_name="by-mlflow") as run:
            mlflow.log_param("p", "mlflow")
            info = mlflow.pyfunc.log_model(name="clf", python_model=Times10())
        print(json.dumps({"run_id": run.info.run_id, "model_uri": info.model_uri,
                          "experiment_id": run.info.experiment_id}))
    """)
    # pyfunc, with its defaults, reads MLflow's run and model and logs next to them.
    assert pyfunc.get_run(made["run_id"]).data.params == {"p": "mlflow"}
    pd.testing.assert_frame_equal(pd.DataFrame(pyfunc.load_pyfunc(made["model_uri"]).predict(X)), X * 10)
    pyfunc.set_experiment("shared")
    with pyfunc.start_run(run_name="by-pyfunc") as run:
        pyfunc.log_param("p", "pyfunc")
        model = pyfunc.log_model("model", **loader_kwargs)
    assert run.info.experiment_id == made["experiment_id"]
    seen = mlflow_sees(sqlite_env, """
        import json, mlflow, pandas as pd
        c = mlflow.MlflowClient()
        exp = c.get_experiment_by_name("shared")
        runs = c.search_runs([exp.experiment_id], order_by=["attributes.start_time"])
        models = c.search_logged_models(experiment_ids=[exp.experiment_id])
        X = pd.DataFrame({"x": [1.0, 3.0]})
        print(json.dumps({"runs": [(r.info.run_name, r.data.params["p"]) for r in runs],
                          "models": sorted(m.name for m in models),
                          "loaded": mlflow.pyfunc.load_model("runs:/%s/model" % runs[1].info.run_id).predict(X)["x"].tolist()}))
    """)
    assert seen["runs"] == [["by-mlflow", "mlflow"], ["by-pyfunc", "pyfunc"]]
    assert seen["models"] == ["clf", "model"]
    assert seen["loaded"] == [2.0, 6.0]


WRITER = """
import sys, pyfunc
run_id, who, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with pyfunc.start_run(run_id=run_id):
    pyfunc.log_param("param_%d" % who, who)
    for i in range(n):
        pyfunc.log_metric("loss", who * 100000 + i, step=i)
with pyfunc.start_run(tags={"who": str(who)}):
    pyfunc.log_metric("own", who)
"""


def test_eight_processes_500_metrics_each_lose_nothing(sqlite_env):
    with pyfunc.start_run() as run:
        pass
    started = time.time()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, run.info.run_id, str(w), "500"], cwd=sqlite_env)
             for w in range(8)]
    assert [p.wait(timeout=900) for p in procs] == [0] * 8
    elapsed = time.time() - started
    print("8 processes x 500 log_metric calls: %.1f s (%.1f ms per call)" % (elapsed, elapsed * 1000 / 4000))
    seen = mlflow_sees(sqlite_env, """
        import json, sys
        from mlflow import MlflowClient
        c = MlflowClient()
        run_id = sys.argv[1] if len(sys.argv) > 1 else None
        runs = c.search_runs(["0"], max_results=100)
        target = [r for r in runs if "param_0" in r.data.params][0]
        history = c.get_metric_history(target.info.run_id, "loss")
        print(json.dumps({"values": sorted(m.value for m in history), "params": target.data.params,
                          "runs": len(runs), "own": sorted(r.data.metrics.get("own", -1) for r in runs)}))
    """)
    expected = sorted(float(w * 100000 + i) for w in range(8) for i in range(500))
    assert seen["values"] == expected
    assert seen["params"] == {"param_%d" % w: str(w) for w in range(8)}
    assert seen["runs"] == 9 and seen["own"] == [-1] + [float(w) for w in range(8)]


def start_mlflow_server(db_uri, cwd):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(os.path.join(cwd, "server.log"), "w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", db_uri,
                             "--artifacts-destination", os.path.join(cwd, "mlartifacts"),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=clean_env())
    url = "http://127.0.0.1:%d" % port
    deadline = time.time() + 90
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return proc, log, url
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            log.close()
            pytest.fail("mlflow server did not start:\n" + open(os.path.join(cwd, "server.log")).read()[-3000:])
        time.sleep(0.3)


def test_pyfunc_writes_while_mlflow_server_serves_the_database(sqlite_env, loader_kwargs):
    db = sqlite_env / "served.db"
    db_uri = "sqlite:///" + str(db)
    proc, log, url = start_mlflow_server(db_uri, str(sqlite_env))  # the server creates the database
    try:
        pyfunc.set_tracking_uri(db_uri)
        with pyfunc.start_run() as run:
            pass
        writers = [subprocess.Popen([sys.executable, "-c", WRITER, run.info.run_id, str(w), "150"], cwd=sqlite_env,
                                    env=dict(clean_env(), PYFUNC_TRACKING_URI=db_uri)) for w in range(2)]
        # Meanwhile an MLflow client logs through the server into the same database.
        through_server = mlflow_sees(sqlite_env, """
            import json, mlflow
            with mlflow.start_run(run_name="via-server") as run:
                for i in range(100):
                    mlflow.log_metric("srv", i, step=i)
            print(json.dumps({"run_id": run.info.run_id}))
        """, env=dict(clean_env(), MLFLOW_TRACKING_URI=url))
        assert [p.wait(timeout=600) for p in writers] == [0, 0]
        # The server made experiment 0 with its artifacts behind it (mlflow-artifacts:/0),
        # out of reach of a sqlite URI: refused before anything is written.
        with pyfunc.start_run(run_id=run.info.run_id):
            with pytest.raises(InvalidArgumentError, match="mlflow-artifacts:/0.*through that server"):
                pyfunc.log_model("model", **loader_kwargs)
        # An experiment made here keeps them in ./mlruns, as MLflow's client does.
        pyfunc.set_experiment("direct")
        with pyfunc.start_run(run_name="direct-run"):
            model = pyfunc.log_model("model", **loader_kwargs)
        seen = mlflow_sees(sqlite_env, """
            import json, sys, mlflow, pandas as pd
            from mlflow import MlflowClient
            c = MlflowClient()
            runs = {r.info.run_name: r for r in c.search_runs(["0"], max_results=100)}
            target = [r for r in runs.values() if "param_0" in r.data.params][0]
            srv = runs["via-server"]
            assert c.search_logged_models(experiment_ids=["0"]) == []
            models = c.search_logged_models(experiment_ids=[c.get_experiment_by_name("direct").experiment_id])
            X = pd.DataFrame({"x": [1.0, 3.0]})
            print(json.dumps({"loss": len(c.get_metric_history(target.info.run_id, "loss")),
                              "srv": len(c.get_metric_history(srv.info.run_id, "srv")),
                              "models": [m.model_id for m in models],
                              "loaded": mlflow.pyfunc.load_model("models:/" + models[0].model_id).predict(X)["x"].tolist()}))
        """, env=dict(clean_env(), MLFLOW_TRACKING_URI=url))
        assert seen["loss"] == 300 and seen["srv"] == 100
        assert seen["models"] == [model.model_id] and seen["loaded"] == [2.0, 6.0]
        assert pyfunc.get_run(through_server["run_id"]).data.metrics == {"srv": 99.0}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def alembic(db_path, action, revision):
    """Moves a database MLflow made to another revision with MLflow's own migrations."""
    mlflow_sees(os.path.dirname(db_path), """
        import sqlalchemy
        from alembic import command
        from mlflow.store.db.utils import _get_alembic_config
        url = "sqlite:///%s"
        engine = sqlalchemy.create_engine(url)
        cfg = _get_alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.%s(cfg, "%s")
        print("{}")
    """ % (db_path, action, revision))


def test_older_known_revision_is_written_in_its_schema_then_upgraded(sqlite_env):
    import sqlite3

    db = str(sqlite_env / "old.db")
    mlflow_sees(sqlite_env, "import mlflow; mlflow.MlflowClient('sqlite:///old.db').search_experiments(); print('{}')")
    # Before the workspace columns (MLflow 3.x of early 2026): experiments has no `workspace`.
    alembic(db, "downgrade", "c8d9e0f1a2b3")
    cols = [r[1] for r in sqlite3.connect(db).execute("PRAGMA table_info(experiments)")]
    assert "workspace" not in cols
    pyfunc.set_tracking_uri("sqlite:///" + db)
    pyfunc.set_experiment("old-exp")
    with pyfunc.start_run(run_name="old-run") as run:
        pyfunc.log_metric("m", 1.5)
    assert sqlite3.connect(db).execute("SELECT version_num FROM alembic_version").fetchall() == [("c8d9e0f1a2b3",)]
    proc = subprocess.run([sys.executable, "-m", "mlflow", "db", "upgrade", "sqlite:///" + db], cwd=sqlite_env,
                          env=clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = mlflow_sees(sqlite_env, """
        import json, mlflow
        c = mlflow.MlflowClient("sqlite:///old.db")
        exp = c.get_experiment_by_name("old-exp")
        run = c.search_runs([exp.experiment_id])[0]
        print(json.dumps({"name": run.info.run_name, "m": run.data.metrics["m"], "workspace": exp.workspace}))
    """)
    assert seen == {"name": "old-run", "m": 1.5, "workspace": "default"}

    # Older than any revision pyfunc writes (before run outputs): refused, naming both,
    # untouched. (MLflow's own downgrade stops at the spans table, so the database is
    # stamped with the old revision, which is what pyfunc checks.)
    alembic(db, "stamp", "400f98739977")
    before = sha256(db)
    pyfunc.tracking._stores.clear()
    with pytest.raises(InvalidArgumentError) as e:
        pyfunc.start_run()
    assert "400f98739977" in str(e.value) and HEAD_REVISION in str(e.value) and "mlflow db upgrade" in str(e.value)
    assert sha256(db) == before


def test_bad_databases_get_clear_errors_and_are_not_touched(sqlite_env):
    import sqlite3

    def refused(path, exc, *words):
        pyfunc.set_tracking_uri("sqlite:///" + str(path))
        before = sha256(path)
        with pytest.raises(exc) as e:
            pyfunc.start_run()
        for w in words:
            assert w in str(e.value), str(e.value)
        assert pyfunc.active_run() is None
        assert sha256(path) == before
        return str(e.value)

    junk = sqlite_env / "junk.db"
    junk.write_bytes(b"this is not a database" * 200)
    refused(junk, InvalidArgumentError, "is not an SQLite database", str(junk))

    newer = sqlite_env / "newer.db"
    pyfunc.set_tracking_uri("sqlite:///" + str(newer))
    with pyfunc.start_run():
        pass
    con = sqlite3.connect(newer)
    con.execute("UPDATE alembic_version SET version_num = 'abcdef012345'")
    con.commit()
    con.close()
    msg = refused(newer, InvalidArgumentError, "abcdef012345", HEAD_REVISION, "newer MLflow")
    assert "Nothing was written" in msg

    cut = sqlite_env / "cut.db"
    cut.write_bytes(open(newer, "rb").read()[: os.path.getsize(newer) // 3])
    refused(cut, PyfuncError, "cut.db")

    readonly = sqlite_env / "readonly.db"
    pyfunc.set_tracking_uri("sqlite:///" + str(readonly))
    with pyfunc.start_run() as run:
        pyfunc.log_param("p", "v")
    pyfunc.tracking._stores.clear()
    os.chmod(readonly, 0o444)
    immutable = False
    if os.access(readonly, os.W_OK):  # root: only the immutable attribute stops writes
        immutable = subprocess.run(["chattr", "+i", str(readonly)], capture_output=True).returncode == 0
        if not immutable:
            pytest.skip("cannot make a file read-only for this user")
    try:
        refused(readonly, PyfuncIOError, "read-only", str(readonly))
        assert pyfunc.get_run(run.info.run_id).data.params == {"p": "v"}  # still read
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(readonly)])
        os.chmod(readonly, 0o644)


def test_mlruns_is_kept_when_it_exists_and_mlflow_db_does_not(sqlite_env):
    # A ./mlruns file store from before (pyfunc's old default).
    pyfunc.set_tracking_uri(str(sqlite_env / "mlruns"))
    with pyfunc.start_run() as old:
        pass
    pyfunc.set_tracking_uri(None)
    script = """
import sys, pyfunc
print(pyfunc.get_tracking_uri())
with pyfunc.start_run() as run:
    pyfunc.log_param("p", "v")
print(pyfunc.get_tracking_uri())
print(len(pyfunc.search_runs()))
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=sqlite_env, env=clean_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    uri = (sqlite_env / "mlruns").as_uri()
    assert proc.stdout.split() == [uri, uri, "2"]
    assert proc.stderr.count("pyfunc: tracking to the file store") == 1, proc.stderr
    assert "MLFLOW_ALLOW_FILE_STORE" in proc.stderr
    assert not os.path.exists(sqlite_env / "mlflow.db")
    # Once ./mlflow.db exists, it is the default again, as it is MLflow's.
    (sqlite_env / "mlflow.db").write_bytes(b"")
    proc = subprocess.run([sys.executable, "-c", script], cwd=sqlite_env, env=clean_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "sqlite:///%s/mlflow.db" % sqlite_env and proc.stderr == ""


def test_a_forked_child_logs_through_its_own_connection(sqlite_env):
    with pyfunc.start_run() as run:
        pyfunc.log_metric("m", 0)
        pid = os.fork()
        if pid == 0:  # the child uses the store its parent opened
            code = 0
            try:
                for i in range(1, 51):
                    pyfunc.log_metric("m", i, step=i)
            except BaseException:
                code = 1
            os._exit(code)
        for i in range(100, 150):
            pyfunc.log_metric("m", i, step=i)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
    store = pyfunc._core.TrackingStore.open(pyfunc.get_tracking_uri())
    assert sorted(m["value"] for m in store.get_metric_history(run.info.run_id, "m")) == \
        [float(v) for v in [0] + list(range(1, 51)) + list(range(100, 150))]
