#!/usr/bin/env bash
# Sets up everything pyfunc needs on a fresh Debian machine, and is safe to run again:
# Debian build packages (apt-get), a virtual environment in .venv with the pinned
# Python packages, the C++ build in build/cpp (library, CLI, tests, examples) and an
# editable install of the Python package (which builds pyfunc._core).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(build-essential cmake ninja-build ccache pkg-config
  libyaml-cpp-dev libcli11-dev libfmt-dev libgtest-dev libgmock-dev nlohmann-json3-dev
  libsimdjson-dev wrk libcurl4-openssl-dev libsqlite3-dev libssl-dev libboost-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc  # serve --grpc-port
  clang libclang-rt-14-dev  # clang: the libFuzzer harnesses (scripts/fuzz.sh)
  clang-format)             # the C++ layout (.clang-format, scripts/format.sh)

./scripts/apt-ensure.sh "${APT_PACKAGES[@]}"

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements-installed
if [[ ! -f $stamp ]] || ! cmp -s requirements-dev.txt "$stamp"; then
  echo "setup: installing Python packages (requirements-dev.txt)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements-dev.txt
  cp requirements-dev.txt "$stamp"
fi

echo "setup: building C++ (build/cpp)"
cmake -S . -B build/cpp -G Ninja -DPYFUNC_BUILD_TESTS=ON -DPYFUNC_BUILD_EXAMPLES=ON >/dev/null
cmake --build build/cpp

echo "setup: installing the Python package (editable)"
.venv/bin/python -m pip install -q --no-build-isolation -e . 2>&1 | grep -v "^$" || true
.venv/bin/python -c "import pyfunc" || { echo "setup: the pyfunc package did not install" >&2; exit 1; }
