#!/usr/bin/env bash
# Codec micro-benchmark: pyfunc's CSV and JSON parsing against pandas.read_csv and
# json.loads on the same generated files. One command, from the repository root:
#   bench/codecs/run.sh
# Needs the library built in build/cpp (cmake --build build/cpp) and .venv with pandas.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${TMPDIR:-/tmp}/pyfunc_codec_bench"
mkdir -p "$out"
g++ -std=c++20 -O2 -DNDEBUG -I"$root/include" "$root/bench/codecs/codec_bench.cc" \
  "$root/build/cpp/libpyfunc.a" -lsimdjson -o "$out/codec_bench"
"$out/codec_bench" "$out" > "$out/cpp.txt"
"$root/.venv/bin/python" - "$out" <<'PY'
import io, json, sys, time
import pandas as pd
out = sys.argv[1]
def best(fn, reps=3):
    b = 1e30
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); b = min(b, time.perf_counter() - t0)
    return b
csv_path, json_path = f"{out}/bench.csv", f"{out}/bench.json"
body = open(json_path).read()
py = {
    "csv": best(lambda: pd.read_csv(csv_path)),
    "wide": best(lambda: pd.read_csv(f"{out}/wide.csv")),
    "json": best(lambda: json.loads(body)),
}
py["json_df"] = best(lambda: pd.DataFrame(**{k: v for k, v in json.loads(body)["dataframe_split"].items()}))
cpp = {}
for line in open(f"{out}/cpp.txt"):
    name, size, secs = line.split()
    cpp[name] = (int(size), float(secs))
def mbs(size, secs): return size / secs / 1e6
size = cpp["csv"][0]
print(f"CSV  ({size/1e6:.1f} MB, 1M rows x 4 cols)")
print(f"  pyfunc ReadCsvFile (whole file)     {mbs(*cpp['csv']):8.1f} MB/s")
print(f"  pyfunc CsvReader (65536-row batches) {mbs(*cpp['csv_stream']):7.1f} MB/s")
print(f"  pyfunc CsvReader, 2 threads         {mbs(*cpp['csv_stream2']):8.1f} MB/s")
print(f"  pandas.read_csv                     {mbs(size, py['csv']):8.1f} MB/s")
print(f"  ratio pyfunc/pandas                 {py['csv']/cpp['csv'][1]:8.2f}x")
size = cpp["wide"][0]
print(f"CSV  ({size/1e6:.1f} MB, 500k rows x 20 float64 cols)")
print(f"  pyfunc CsvReader, 1 thread          {mbs(*cpp['wide']):8.1f} MB/s")
print(f"  pyfunc CsvReader, 2 threads         {mbs(*cpp['wide2']):8.1f} MB/s")
print(f"  pandas.read_csv                     {mbs(size, py['wide']):8.1f} MB/s")
print(f"  ratio pyfunc (2 threads)/pandas     {py['wide']/cpp['wide2'][1]:8.2f}x")
size = cpp["json"][0]
print(f"JSON ({size/1e6:.1f} MB dataframe_split, 300k rows x 4 cols)")
print(f"  pyfunc ParseScoringRequest -> Table {mbs(*cpp['json']):8.1f} MB/s")
print(f"  json.loads                          {mbs(size, py['json']):8.1f} MB/s")
print(f"  json.loads + pd.DataFrame           {mbs(size, py['json_df']):8.1f} MB/s")
print(f"  ratio pyfunc/json.loads             {py['json']/cpp['json'][1]:8.2f}x")
print(f"  ratio pyfunc/(json.loads+DataFrame) {py['json_df']/cpp['json'][1]:8.2f}x")
PY
