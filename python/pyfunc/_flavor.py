"""The python_function flavor: the seed's model format API, re-exported by ``pyfunc``.

``save_model`` and ``add_to_model`` write the flavor, ``load_pyfunc`` loads a model that
has it (in this process or in worker processes), ``get_module_loader_src`` writes a
standalone loader for it.
"""

import os
import platform

from pyfunc import _core, _loading
from pyfunc.exceptions import InvalidArgumentError
from pyfunc.model import model_to_dict, update_model

FLAVOR_NAME = "python_function"
MAIN = "loader_module"
CODE = "code"
DATA = "data"
ENV = "env"
PY_VERSION = "python_version"

# Pip requirements written when save_model gets no conda_env. A loader module's own
# imports cannot be known here, so the default is what every pyfunc model needs to be
# loaded and scored anywhere: numpy and pandas (the predict contract and pyfunc's worker
# protocol) and cloudpickle (what MLflow-compatible loaders unpickle with), pinned to
# the versions of this interpreter so the model runs where it was saved. pyfunc itself
# is not required: its worker is pure Python, and MLflow reads the model without it.
_DEFAULT_REQUIREMENTS = ("numpy", "pandas", "cloudpickle")


def _default_pip_requirements():
    from importlib import metadata

    out = []
    for name in _DEFAULT_REQUIREMENTS:
        try:
            out.append("{}=={}".format(name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append(name)
    return out


def save_model(dst_path, loader_module, data_path=None, code_path=(), conda_env=None, model=None, *,
               batching=None):
    """Exports a model as a generic Python function model (the seed's save_model).

    ``dst_path``: the new model directory (must not exist, or be empty).
    ``loader_module``: the module whose ``_load_pyfunc(data_path)`` (or 0.x
    ``load_pyfunc``) loads the model. ``data_path``: a file or directory copied to
    ``data/``. ``code_path``: files or directories copied to ``code/`` and put on
    ``sys.path`` before the loader is imported. ``conda_env``: a conda YAML path or a
    dict; without one, a conda.yaml with this interpreter's Python and default pip
    requirements is written. ``model``: a Model (or ``mlflow.models.Model``) to add
    the flavor to; it is updated and returned.

    ``batching``: "rows" when each output row depends only on its input row, so that
    ``pyfunc serve`` may merge concurrent requests into one predict call; "off" to
    forbid that. Recorded as the python_function flavor's ``batching`` key (MLflow
    keeps it and ignores it). Without it, only sklearn, xgboost, lightgbm and catboost
    models are merged.

    The directory is written atomically. AlreadyExistsError if ``dst_path`` is a
    non-empty directory; NotFoundError if an input path is missing (nothing is written).
    """
    if isinstance(code_path, (str, bytes, os.PathLike)):
        code_path = [code_path]
    if batching not in (None, "rows", "off"):
        raise InvalidArgumentError("save_model: batching must be 'rows', 'off' or None, not {!r}".format(batching))
    saved = _core.save_model(
        os.fspath(dst_path),
        loader_module,
        data_path=os.fspath(data_path) if data_path is not None else None,
        code_paths=[os.fspath(p) for p in code_path or ()],
        conda_env=os.fspath(conda_env) if isinstance(conda_env, os.PathLike) else conda_env,
        pip_requirements=[] if conda_env is not None else _default_pip_requirements(),
        python_version=platform.python_version(),
        extra_flavor_keys={"batching": batching} if batching else None,
        model=model_to_dict(model),
    )
    return update_model(model, saved)


def add_to_model(model, loader_module, data=None, code=None, env=None):
    """Adds the python_function flavor to ``model`` (paths relative to the model root).

    ``code``, ``data`` and ``env`` (a conda file path, or ``{conda, virtualenv}``) are
    recorded only when given; the running Python version is recorded as MLflow does.
    ``model`` (a Model or ``mlflow.models.Model``) is updated and returned.
    """
    updated = _core.add_to_model(
        model_to_dict(model),
        loader_module,
        data=data or "",
        code=code or "",
        env=env,
        python_version=platform.python_version(),
    )
    return update_model(model, updated)


def load_pyfunc(path, run_id=None, *, model_config=None, suppress_warnings=False, env_manager=None,
                workers=1, predict_timeout=60.0):
    """Loads a model stored in Python function format; returns a PyFuncModel.

    ``path``: a model directory or URI (with ``run_id``: a path inside that run's
    artifacts). ``model_config``: a dict (or a YAML file path) overriding keys of the
    model's saved config. NotFoundError / InvalidArgumentError for a missing or invalid
    model; ModelLoadError when its loader module cannot be imported or fails.

    ``env_manager``: None (the default) loads the model into this process. "local",
    "virtualenv" (or "uv") and "conda" load it into ``workers`` worker processes running
    in that environment (the current interpreter, a cached virtualenv built from the
    model's requirements, or a conda environment) and return a RemotePyFuncModel whose
    ``predict`` sends each DataFrame there through shared memory; a predict that runs
    longer than ``predict_timeout`` seconds fails and its worker is replaced.
    """
    from pyfunc._uri import resolve_model_uri

    local = resolve_model_uri(path, run_id)
    mlmodel = read_pyfunc_mlmodel(local)
    if isinstance(model_config, (str, os.PathLike)):
        with open(model_config, encoding="utf-8") as f:
            model_config = _core.parse_yaml(f.read(), os.fspath(model_config))
    if env_manager is not None:
        from pyfunc import _workers

        return _workers.load(local, env_manager, workers=workers, model_config=model_config,
                             predict_timeout=predict_timeout)
    return _loading.load_model(local, mlmodel, model_config, suppress_warnings=suppress_warnings)


def get_module_loader_src(src_path, dst_path):
    """Python source of a standalone loader for the model at ``src_path`` once deployed
    at ``dst_path``: its ``load_pyfunc()`` needs neither pyfunc, MLflow nor a YAML parser."""
    return _core.module_loader_src(os.fspath(src_path), os.fspath(dst_path))


def read_pyfunc_mlmodel(local_dir):
    """The MLmodel of the model in ``local_dir`` as a dict; InvalidArgumentError naming
    its flavors when it has no python_function flavor."""
    mlmodel = _core.read_model(local_dir)
    if FLAVOR_NAME not in (mlmodel.get("flavors") or {}):
        names = ", ".join(sorted(mlmodel.get("flavors") or {})) or "none"
        raise InvalidArgumentError(
            '{}: Model does not have the "python_function" flavor (flavors: {})'.format(local_dir, names)
        )
    return mlmodel
