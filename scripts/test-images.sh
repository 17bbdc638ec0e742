#!/usr/bin/env bash
# The container image tests (tests/images): installs buildah, podman and mmdebstrap
# (apt-get), makes the base image (tests/images/make-base.sh, cached), then builds and runs
# images with `pyfunc build-docker`. Slow: several minutes. Needs scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/apt-ensure.sh buildah podman mmdebstrap
tests/images/make-base.sh
exec .venv/bin/python -m pytest -q tests/images "$@"
