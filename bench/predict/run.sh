#!/usr/bin/env bash
# One command: set up (if needed) and run the batch-scoring benchmark; see run.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ -x .venv/bin/pyfunc ]] || ./scripts/setup.sh
exec .venv/bin/python bench/predict/run.py "$@"
