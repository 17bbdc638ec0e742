"""The C++ example program and an installed-library consumer, run for real."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pyfunc

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "cpp"
BEHAVE = ROOT / "tests" / "data" / "models" / "behave" / "behave_model.py"


@pytest.fixture(scope="module")
def echo_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("example") / "model"
    pyfunc.save_model(str(path), loader_module="behave_model", code_path=[str(BEHAVE)])
    return str(path)


def test_predict_table_example(echo_model):
    exe = BUILD / "example_predict_table"
    assert exe.exists(), "scripts/setup.sh builds the examples into build/cpp"
    proc = subprocess.run([str(exe), echo_model], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYFUNC_PYTHON=sys.executable))
    assert proc.returncode == 0, proc.stderr
    # The behave model echoes its input: the table built in C++ comes back unchanged.
    assert proc.stdout == "x:float64 | y:float64\n0.0 | 0.0\n1.0 | 0.5\n2.0 | 1.0\n3.0 | 1.5\n4.0 | 2.0\n"


def test_example_reports_a_missing_model(tmp_path):
    proc = subprocess.run([str(BUILD / "example_predict_table"), str(tmp_path / "nope")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and "nope" in proc.stderr


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is installed by scripts/setup.sh")
def test_installed_package_builds_a_consumer(tmp_path, echo_model):
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(prefix)], check=True, capture_output=True)
    assert (prefix / "include" / "pyfunc" / "model.h").exists()
    assert (prefix / "bin" / "pyfunc").exists()
    build = tmp_path / "consumer"
    subprocess.run(["cmake", "-S", str(ROOT / "tests" / "install"), "-B", str(build), "-G", "Ninja",
                    "-DCMAKE_PREFIX_PATH=" + str(prefix)], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    out = subprocess.run([str(build / "consumer"), echo_model], capture_output=True, text=True, check=True)
    assert out.stdout == "pyfunc {}: behave_model\n".format(pyfunc.__version__)
