"""Tracking: runs, their params, metrics, tags and artifacts, and ``log_model``.

The store is chosen by the tracking URI: :func:`set_tracking_uri`, else
``$PYFUNC_TRACKING_URI``, else ``$MLFLOW_TRACKING_URI``, else MLflow's default,
``sqlite:///mlflow.db`` in the working directory (MLflow's SQL store, which MLflow's
client, UI and server read as their own; created on the first write). ``./mlruns`` (a
file store in MLflow's layout) is used when asked for, or when it exists and
``./mlflow.db`` does not. ``http(s)://`` URIs go to an MLflow tracking server through its
REST API.

``log_model`` logs an MLflow 3 logged model where the store keeps them (sqlite, an
MLflow >= 3 server): a ``models:/m-<id>`` record linked to the run as its output, with
the files in the logged model's artifact location; ``runs:/<run_id>/<artifact_path>``
finds it there, in pyfunc and in MLflow. The file store (and an older server) gets
MLflow 2's layout: the files under the run's artifacts.

The fluent API mirrors MLflow's::

    with pyfunc.start_run(run_name="train") as run:
        pyfunc.log_param("alpha", 0.5)
        pyfunc.log_metric("rmse", 0.78)
        pyfunc.log_model("model", loader_module="my_loader", data_path="weights.pkl")
    model = pyfunc.load_pyfunc("model", run_id=run.info.run_id)
"""

import getpass
import json
import os
import sys
import tempfile
import threading
import time
from types import SimpleNamespace

from pyfunc import _core
from pyfunc._flavor import save_model
from pyfunc.exceptions import InvalidArgumentError
from pyfunc.model import Model

__all__ = [
    "ActiveRun",
    "active_run",
    "end_run",
    "get_run",
    "get_tracking_uri",
    "log_artifact",
    "log_artifacts",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]

_lock = threading.RLock()
_run_stack = []  # ActiveRun objects, innermost last
_experiment_id = None  # set by set_experiment
_stores = {}


def set_tracking_uri(uri):
    """Sets the tracking URI of this process (a path, ``file://``, ``http(s)://`` or
    ``sqlite:///``); ``None`` or ``""`` goes back to the environment and the default."""
    _core.set_tracking_uri(os.fspath(uri) if uri else "")


def get_tracking_uri():
    """The tracking URI in force (local paths as absolute ``file://`` URIs)."""
    return _core.get_tracking_uri()


def _store():
    uri = get_tracking_uri()
    with _lock:
        store = _stores.get(uri)
        if store is None:
            store = _core.TrackingStore.open(uri)
            _stores[uri] = store
        return store


class _Info(SimpleNamespace):
    @property
    def run_uuid(self):  # the 0.x name
        return self.run_id


def _run_object(d):
    data = d["data"]
    return SimpleNamespace(
        info=_Info(**d["info"]),
        data=SimpleNamespace(params=data["params"], tags=data["tags"], metrics=data["metrics"]),
    )


class ActiveRun:
    """The run started by :func:`start_run`; as a context manager it ends the run,
    FINISHED on a normal exit and FAILED on an exception."""

    def __init__(self, run):
        self._run = run

    @property
    def info(self):
        return self._run.info

    @property
    def data(self):
        return self._run.data

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        with _lock:
            if self in _run_stack:
                end_run("FINISHED" if exc_type is None else "FAILED")
        return False

    def __repr__(self):
        return "<ActiveRun: run_id={}, status=RUNNING>".format(self.info.run_id)


def set_experiment(experiment_name=None, experiment_id=None):
    """Makes the experiment (created when missing) the one new runs go to; returns its dict."""
    global _experiment_id
    store = _store()
    if experiment_id is not None:
        exp = store.get_experiment(str(experiment_id))
    elif experiment_name:
        try:
            exp = store.get_experiment_by_name(experiment_name)
        except _not_found():
            store.create_experiment(experiment_name)
            exp = store.get_experiment_by_name(experiment_name)
    else:
        raise InvalidArgumentError("set_experiment: give experiment_name or experiment_id")
    _experiment_id = exp["experiment_id"]
    return exp


def _not_found():
    from pyfunc.exceptions import NotFoundError

    return NotFoundError


def _resolve_experiment_id(experiment_id):
    if experiment_id is not None:
        return str(experiment_id)
    if _experiment_id is not None:
        return _experiment_id
    if os.environ.get("MLFLOW_EXPERIMENT_ID"):
        return os.environ["MLFLOW_EXPERIMENT_ID"]
    if os.environ.get("MLFLOW_EXPERIMENT_NAME"):
        return set_experiment(os.environ["MLFLOW_EXPERIMENT_NAME"])["experiment_id"]
    return "0"


def _user():
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment
        return "unknown"


def start_run(run_id=None, experiment_id=None, run_name=None, nested=False, tags=None, description=None):
    """Starts a new run (or resumes ``run_id``) and makes it the active run.

    Raises InvalidArgumentError if a run is active and ``nested`` is false.
    """
    with _lock:
        if _run_stack and not nested:
            raise InvalidArgumentError(
                "Run with UUID {} is already active. To start a nested run, call start_run with "
                "nested=True".format(_run_stack[-1].info.run_id)
            )
        store = _store()
        if run_id is not None:
            run = store.get_run(run_id)
            store.update_run(run_id, "RUNNING")
            run = store.get_run(run_id)
        else:
            all_tags = {
                "mlflow.source.name": os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "<console>",
                "mlflow.source.type": "LOCAL",
                "mlflow.user": _user(),
            }
            if _run_stack:
                all_tags["mlflow.parentRunId"] = _run_stack[-1].info.run_id
            if description:
                all_tags["mlflow.note.content"] = description
            all_tags.update({str(k): str(v) for k, v in (tags or {}).items()})
            info = store.create_run(
                _resolve_experiment_id(experiment_id), run_name or "", all_tags, int(time.time() * 1000)
            )
            run = store.get_run(info["run_id"])
        active = ActiveRun(_run_object(run))
        _run_stack.append(active)
        return active


def end_run(status="FINISHED"):
    """Ends the active run with ``status`` (FINISHED, FAILED or KILLED); no-op without one."""
    with _lock:
        if not _run_stack:
            return
        run = _run_stack[-1]
        _store().update_run(run.info.run_id, status, int(time.time() * 1000))
        _run_stack.pop()


def active_run():
    """The active run (an ActiveRun), or None."""
    with _lock:
        return _run_stack[-1] if _run_stack else None


def _run_id():
    with _lock:
        run = active_run()
        if run is None:
            run = start_run()
        return run.info.run_id


def get_run(run_id):
    """The run ``run_id`` of the current store: an object with ``info`` and ``data``."""
    return _run_object(_store().get_run(run_id))


def search_runs(experiment_ids=None):
    """Active runs of the experiments (default: the current one), newest first."""
    if experiment_ids is None:
        experiment_ids = [_resolve_experiment_id(None)]
    return [_run_object(r) for r in _store().search_runs([str(e) for e in experiment_ids])]


def log_param(key, value):
    """Logs a parameter (stored as ``str(value)``) to the active run (started if needed)."""
    _store().log_batch(_run_id(), [], {str(key): str(value)}, {})
    return value


def log_params(params):
    _store().log_batch(_run_id(), [], {str(k): str(v) for k, v in params.items()}, {})


def log_metric(key, value, step=None, timestamp=None):
    """Appends a point to a metric's history."""
    ts = int(timestamp if timestamp is not None else time.time() * 1000)
    _store().log_batch(_run_id(), [(str(key), float(value), ts, int(step or 0))], {}, {})


def log_metrics(metrics, step=None, timestamp=None):
    ts = int(timestamp if timestamp is not None else time.time() * 1000)
    points = [(str(k), float(v), ts, int(step or 0)) for k, v in metrics.items()]
    _store().log_batch(_run_id(), points, {}, {})


def set_tag(key, value):
    _store().log_batch(_run_id(), [], {}, {str(key): str(value)})


def set_tags(tags):
    _store().log_batch(_run_id(), [], {}, {str(k): str(v) for k, v in tags.items()})


def log_artifact(local_path, artifact_path=None):
    """Logs a local file (or directory) under ``artifact_path`` of the active run."""
    local_path = os.fspath(local_path)
    dest = artifact_path or ""
    if os.path.isdir(local_path):
        dest = "/".join(p for p in (dest, os.path.basename(os.path.normpath(local_path))) if p)
    _store().log_artifacts(_run_id(), local_path, dest)


def log_artifacts(local_dir, artifact_path=None):
    """Logs the contents of a local directory under ``artifact_path`` of the active run."""
    local_dir = os.fspath(local_dir)
    if not os.path.isdir(local_dir):
        raise _not_found()("log_artifacts: {}: not a directory".format(local_dir))
    _store().log_artifacts(_run_id(), local_dir, artifact_path or "")


def log_model(artifact_path, **kwargs):
    """Exports a model in Python function form and logs it to the active run (the seed's
    ``log_model``): ``pyfunc.save_model(dst_path=<tmp>/<artifact_path>,
    model=Model(artifact_path=..., run_id=...), **kwargs)``, then the directory is logged.

    Where the store keeps MLflow 3 logged models (sqlite, an MLflow >= 3 server), as
    MLflow 3's ``log_model`` does: a logged model named ``artifact_path`` is created in
    the run's experiment (with the run's params and source tags), linked to the run as
    its output, the files go to the model's artifact location and the model is made
    READY (FAILED if saving or uploading fails); the MLmodel carries ``model_id`` and the
    location as ``artifact_path``. Otherwise (the file store, older servers, or an
    ``artifact_path`` with '/', which MLflow does not allow in model names) the directory
    is logged as the run's artifacts under ``artifact_path``. Load it back with
    ``load_pyfunc(artifact_path, run_id=...)``, ``runs:/<run_id>/<artifact_path>`` or
    ``models:/<model_id>``, in pyfunc or MLflow. Returns the saved Model
    (``model.model_id`` is set for a logged model).
    """
    if "model" in kwargs:
        raise TypeError("log_model() got an unexpected keyword argument 'model'")
    if "dst_path" in kwargs:
        raise TypeError("log_model() got an unexpected keyword argument 'dst_path'")
    artifact_path = _core.normalize_artifact_path(os.fspath(artifact_path))
    if not artifact_path:
        raise InvalidArgumentError("log_model: artifact_path must name a directory inside the run")
    run_id = _run_id()
    store = _store()
    if not any(c in artifact_path for c in _BAD_MODEL_NAME_CHARS) and store.supports_logged_models():
        return _log_logged_model(store, run_id, artifact_path, kwargs)
    with tempfile.TemporaryDirectory(prefix="pyfunc-log-model-") as tmp:
        local_path = os.path.join(tmp, artifact_path)
        os.makedirs(os.path.dirname(local_path), exist_ok=True)
        model = Model(artifact_path=artifact_path, run_id=run_id)
        saved = save_model(dst_path=local_path, model=model, **kwargs)
        store.log_artifacts(run_id, local_path, artifact_path)
        _append_model_history(store, run_id, saved, artifact_path)
    return saved


# MLflow's _validate_logged_model_name refuses these in a logged model's name.
_BAD_MODEL_NAME_CHARS = ("/", ":", ".", "%", '"', "'")
# The run tags MLflow copies onto a logged model (its resolved context tags).
_MODEL_CONTEXT_TAGS = ("mlflow.user", "mlflow.source.name", "mlflow.source.type", "mlflow.source.git.commit")


def _log_logged_model(store, run_id, name, kwargs):
    run = store.get_run(run_id)
    tags = {k: v for k, v in run["data"]["tags"].items() if k in _MODEL_CONTEXT_TAGS}
    logged = store.create_logged_model(
        run["info"]["experiment_id"], name, run_id, "", dict(run["data"]["params"]), tags
    )
    model_id = logged["model_id"]
    try:
        store.log_outputs(run_id, [model_id], 0)
        with tempfile.TemporaryDirectory(prefix="pyfunc-log-model-") as tmp:
            local_path = os.path.join(tmp, name)
            model = Model(
                artifact_path=logged["artifact_location"], run_id=run_id, model_id=model_id, model_uuid=model_id
            )
            saved = save_model(dst_path=local_path, model=model, **kwargs)
            store.log_logged_model_artifacts(model_id, local_path)
    except BaseException:
        try:
            store.finalize_logged_model(model_id, "FAILED")
        except Exception:  # the store is gone too; the original error matters
            pass
        raise
    store.finalize_logged_model(model_id, "READY")
    return saved


def log_input(dataset, context=None, tags=None):
    """Logs a dataset the active run used (MLflow's ``log_input``): an MLflow ``Dataset``
    (``mlflow.data.from_pandas(...)``), or a dict with ``name``, ``digest``,
    ``source_type``, ``source`` (JSON) and optionally ``schema``, ``profile`` (JSON).
    ``context`` ("training", "evaluation", ...) becomes the ``mlflow.data.context`` tag.
    Written where the store keeps run inputs (sqlite, an MLflow server)."""
    if isinstance(dataset, dict):
        d = dict(dataset)
    else:
        entity = dataset._to_mlflow_entity() if hasattr(dataset, "_to_mlflow_entity") else dataset
        d = {k: getattr(entity, k, None) for k in ("name", "digest", "source_type", "source", "schema", "profile")}
    input_tags = {str(k): str(v) for k, v in (tags or {}).items()}
    if context:
        input_tags["mlflow.data.context"] = str(context)
    d["tags"] = input_tags
    _store().log_inputs(_run_id(), [d], [])


def _append_model_history(store, run_id, model, artifact_path):
    """MLflow 2.x's ``mlflow.log-model.history`` run tag, which its UI and registration
    helpers read to find the models of a run."""
    d = model.to_dict() if hasattr(model, "to_dict") else dict(model)
    entry = {
        "run_id": run_id,
        "artifact_path": artifact_path,
        "utc_time_created": d.get("utc_time_created"),
        "model_uuid": d.get("model_uuid"),
        "flavors": {
            name: {k: v for k, v in (conf or {}).items() if k != "config"}
            for name, conf in (d.get("flavors") or {}).items()
        },
    }
    tags = store.get_run(run_id)["data"]["tags"]
    try:
        history = json.loads(tags.get("mlflow.log-model.history", "[]"))
    except ValueError:
        history = []
    history.append(entry)
    text = json.dumps(history, default=str)
    while len(text) > _MAX_TAG_VALUE and len(history) > 1:  # MLflow's tag value limit
        history.pop(0)
        text = json.dumps(history, default=str)
    if len(text) <= _MAX_TAG_VALUE:
        store.log_batch(run_id, [], {}, {"mlflow.log-model.history": text})


_MAX_TAG_VALUE = 8000
