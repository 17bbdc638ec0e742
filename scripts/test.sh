#!/usr/bin/env bash
# Runs every test: sets up (scripts/setup.sh, scripts/setup-latest.sh), then the C++ unit
# tests (ctest), the Python tests (pytest, with real scikit-learn, MLflow, Spark and
# worker processes) in .venv, the pinned stack of requirements-dev.txt, and the
# compatibility tests again in .venv-latest, the newest stack (requirements-latest.txt).
#
# Arguments go to both pytest runs (./scripts/test.sh tests/python/test_schema.py -k dict);
# without arguments the second run takes the compatibility tests (LATEST_TESTS below).
# PYFUNC_SKIP_LATEST=1 skips the second run. Between them, without arguments, the
# container image tests (scripts/test-images.sh: buildah, several minutes;
# PYFUNC_SKIP_IMAGES=1 skips them). Every group always runs; the exit status is the first
# failure's.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/setup-latest.sh

# What the newest pandas, numpy, scikit-learn, pyspark and MLflow can change: loading and
# scoring MLflow's models, schema enforcement, workers, the Python API, Spark, the CLI
# and the server.
LATEST_TESTS=(tests/python/test_mlflow_compat.py tests/python/test_code_models.py tests/python/test_schema.py
  tests/python/test_remote.py tests/python/test_api.py tests/python/test_spark.py
  tests/python/test_spark_arrow.py
  tests/python/test_predict_cli.py tests/python/test_predict_files.py tests/python/test_serve.py)

stack() {
  "$1" -c 'import importlib.metadata as m
print(", ".join(p + " " + m.version(p) for p in ("pandas", "numpy", "scikit-learn", "pyspark", "mlflow")))'
}

status=0
echo "== C++ format (.clang-format)"
./scripts/format.sh --check || status=$?
echo "== C++ tests"
ctest --test-dir build/cpp --output-on-failure -j2 || status=$?
echo "== Python tests (pinned: $(stack .venv/bin/python))"
.venv/bin/python -m pytest -q "$@" || { rc=$?; ((status)) || status=$rc; }
if [[ ${PYFUNC_SKIP_IMAGES:-0} != 1 && $# -eq 0 ]]; then
  echo "== Container images (tests/images: pyfunc build-docker with buildah; slow)"
  ./scripts/test-images.sh || { rc=$?; ((status)) || status=$rc; }
fi
if [[ ${PYFUNC_SKIP_LATEST:-0} != 1 ]]; then
  echo "== Python tests (latest: $(stack .venv-latest/bin/python))"
  if (($#)); then
    .venv-latest/bin/python -m pytest -q "$@" || { rc=$?; ((status)) || status=$rc; }
  else
    .venv-latest/bin/python -m pytest -q "${LATEST_TESTS[@]}" || { rc=$?; ((status)) || status=$rc; }
  fi
fi
exit "$status"
