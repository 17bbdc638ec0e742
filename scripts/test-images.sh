#!/usr/bin/env bash
# The container image tests (tests/images): installs buildah, podman and mmdebstrap
# (apt-get), makes the base image (tests/images/make-base.sh, cached), then builds and runs
# images with `pyfunc build-docker`. Slow: several minutes. Needs scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for p in buildah podman mmdebstrap; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "test-images: installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
tests/images/make-base.sh
exec .venv/bin/python -m pytest -q tests/images "$@"
