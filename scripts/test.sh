#!/usr/bin/env bash
# Runs every test: sets up (scripts/setup.sh), then the C++ unit tests (ctest) and the
# Python tests (pytest, with real scikit-learn, MLflow and worker processes).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "== C++ tests"
ctest --test-dir build/cpp --output-on-failure -j2
echo "== Python tests"
.venv/bin/python -m pytest -q "$@"
