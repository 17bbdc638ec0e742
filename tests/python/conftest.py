"""Shared fixtures: models saved by real MLflow, and running Python in a clean subprocess."""

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

HERE = Path(__file__).resolve().parent
PACKAGE_DIR = HERE.parents[1] / "python" / "pyfunc"

# MLflow's file store (used by anything that touches tracking) needs this since 2026.
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

# Prepended to subprocess scripts: makes the named top-level packages unimportable, the
# way an environment without them behaves (ModuleNotFoundError with .name set).
BLOCK_IMPORTS = textwrap.dedent("""\
    import sys as _sys
    class _Blocker:
        def __init__(self, names):
            self.names = set(names)
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.names:
                raise ModuleNotFoundError("No module named %r (blocked by the test)" % name, name=name)
            return None
    _sys.meta_path.insert(0, _Blocker({blocked!r}))
    """)


def run_python(script, *args, blocked=(), isolated=False, env=None, cwd=None, timeout=120):
    """Runs ``script`` in a fresh interpreter with ``blocked`` packages unimportable;
    returns its stdout. ``isolated`` adds -I (no PYTHONPATH, no user site, no cwd)."""
    code = BLOCK_IMPORTS.format(blocked=sorted(blocked)) + textwrap.dedent(script)
    cmd = [sys.executable] + (["-I"] if isolated else []) + ["-c", code] + [str(a) for a in args]
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError("subprocess failed ({}):\n{}\n{}".format(proc.returncode, proc.stdout, proc.stderr))
    return proc.stdout


def assert_same_prediction(want, got):
    if isinstance(want, pd.DataFrame):
        pd.testing.assert_frame_equal(pd.DataFrame(got), want)
    elif isinstance(want, pd.Series):
        pd.testing.assert_series_equal(pd.Series(got), want)
    elif isinstance(want, np.ndarray):
        np.testing.assert_array_equal(np.asarray(got), want)
    else:
        assert got == want


@pytest.fixture(scope="session")
def mlflow_models(tmp_path_factory):
    """A directory of models saved by real MLflow (see _make_mlflow_models.py), with
    expected.pkl = {name: (input, params, MLflow's prediction)}."""
    out = tmp_path_factory.mktemp("mlflow_models")
    proc = subprocess.run(
        [sys.executable, str(HERE / "_make_mlflow_models.py"), str(out)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="session")
def mlflow_expected(mlflow_models):
    with open(mlflow_models / "expected.pkl", "rb") as f:
        return pickle.load(f)


MLFLOW_MODEL_NAMES = [
    "sk_pickle",
    "sk_cloudpickle",
    "sk_skops",
    "sk_proba",
    "sk_legacy",
    "pm_artifacts",
    "pm_nocontext",
    "pm_typehint",
    "pm_lzma",
    "pm_function",
    "custom_loader",
    "code_affine",
    "code_function",
    "code_typehint",
    "code_halve",
]


def local_spark(app_name):
    """A local[2] SparkSession on loopback, UI off, its Python workers this interpreter."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.task.maxFailures", "1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session
