#!/usr/bin/env bash
# Fuzzes every parser of untrusted bytes: builds the libFuzzer harnesses of fuzz/ with
# clang, AddressSanitizer and UndefinedBehaviorSanitizer in build/fuzz, then runs each
# on its seed corpus (fuzz/corpus/<name>) for SECONDS (default 20). Fails on any
# finding (crash, sanitizer report, leak, timeout, out of memory); the input that
# caused it is kept in build/fuzz/findings/<name>/ and the log in build/fuzz/<name>.log.
# Reproduce one with: build/fuzz/fuzz_<name> build/fuzz/findings/<name>/<file>
#
#   ./scripts/fuzz.sh [SECONDS]          FUZZERS="yaml csv" ./scripts/fuzz.sh 300
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
fuzzers=${FUZZERS:-yaml json csv frame oip}

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found (Debian: apt-get install clang libclang-rt-14-dev, as scripts/setup.sh does)" >&2
  exit 1
fi
CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPYFUNC_BUILD_FUZZERS=ON \
  -DPYFUNC_BUILD_CLI=OFF -DPYFUNC_BUILD_TESTS=OFF >/dev/null
cmake --build build/fuzz --target pyfunc_fuzzers

status=0
for name in $fuzzers; do
  findings=build/fuzz/findings/$name
  mkdir -p "$findings"
  # New inputs go to a scratch directory: the checked-in corpus only changes by hand.
  scratch=$(mktemp -d)
  log=build/fuzz/$name.log
  if build/fuzz/fuzz_"$name" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="$findings/" -print_final_stats=1 "$scratch" "fuzz/corpus/$name" >"$log" 2>&1; then
    echo "fuzz: $name ok, $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs in ${seconds}s"
  else
    echo "fuzz: $name FOUND A PROBLEM (log: $log, input: $findings/)" >&2
    tail -n 40 "$log" >&2
    status=1
  fi
  rm -rf "$scratch"
done
exit $status
