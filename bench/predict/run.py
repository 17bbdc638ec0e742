"""Batch scoring benchmark: `pyfunc predict` against `mlflow models predict` and the
in-process floor, on the same generated data as CSV and as Parquet, and the same sklearn
model.

    .venv/bin/python bench/predict/run.py [--rows 1000000] [--big-rows 10000000] [--repeat 1]

Contenders, on --rows and again on --big-rows rows:
  * pyfunc predict, 2 workers (--env-manager local): CSV in, {"predictions": [...]} JSON
    out; and Parquet in, Parquet out (--batch-rows 262144)
  * mlflow models predict --env-manager local (real MLflow from .venv): CSV in, JSON out
    (it reads no Parquet); on --rows also pyfunc with 1 worker
  * floor: one Python process, pandas.read_csv + model.predict + json write, and
    pandas.read_parquet + model.predict + DataFrame.to_parquet
Reported: wall time, rows/s, peak RSS of the whole process tree (sampled every 20 ms),
and ratios against MLflow and the floor of the same format. Data and model are cached in
$PYFUNC_BENCH_DIR (default /tmp/pyfunc-bench-predict). Prints a Markdown report.
"""

import argparse
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
COLUMNS = 20

# The floors load the pickle directly: no MLflow import, nothing but the work itself.
FLOOR = r"""
import json, sys, pandas as pd, cloudpickle
with open(sys.argv[1] + "/model.pkl", "rb") as f:
    model = cloudpickle.load(f)
df = pd.read_csv(sys.argv[2])
pred = model.predict(df)
with open(sys.argv[3], "w") as f:
    json.dump({"predictions": pred.tolist()}, f)
"""
FLOOR_PARQUET = r"""
import sys, pandas as pd, cloudpickle
with open(sys.argv[1] + "/model.pkl", "rb") as f:
    model = cloudpickle.load(f)
df = pd.read_parquet(sys.argv[2])
pd.DataFrame({"prediction": model.predict(df)}).to_parquet(sys.argv[3])
"""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def tree_rss(pid):
    """Sum of VmRSS (bytes) over pid and its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        except (OSError, ValueError):
            pass
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        stack.extend(children.get(p, []))
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def measure(cmd, env):
    peak = [0]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    t.join()
    if proc.returncode != 0:
        raise SystemExit("failed: {}\n{}".format(" ".join(cmd), err[-3000:]))
    return wall, peak[0]


def prepare(workdir, rows, big_rows):
    import numpy as np
    import pandas as pd

    workdir.mkdir(parents=True, exist_ok=True)
    model = workdir / "model"
    if not (model / "MLmodel").exists():
        import mlflow.sklearn
        from sklearn.linear_model import LinearRegression

        rng = np.random.RandomState(0)
        X = pd.DataFrame(rng.rand(1000, COLUMNS), columns=["f%d" % i for i in range(COLUMNS)])
        est = LinearRegression().fit(X, X.to_numpy() @ rng.rand(COLUMNS))
        mlflow.sklearn.save_model(est, str(model), serialization_format="cloudpickle")
    for n in {rows, big_rows}:
        path = workdir / ("input-%d.csv" % n)
        if path.exists() and (workdir / ("input-%d.parquet" % n)).exists():
            continue
        log("generating %s and .parquet" % path)
        import pyarrow as pa
        import pyarrow.parquet as pq

        names = ["f%d" % i for i in range(COLUMNS)]
        rng = np.random.RandomState(1)
        chunk = 500000
        parquet_tmp = str(workdir / ("input-%d.parquet" % n)) + ".tmp"
        writer = pq.ParquetWriter(parquet_tmp, pa.schema([(c, pa.float64()) for c in names]))
        with open(str(path) + ".tmp", "w") as f:
            f.write(",".join(names) + "\n")
            for start in range(0, n, chunk):
                block = rng.rand(min(chunk, n - start), COLUMNS)
                np.savetxt(f, block, delimiter=",", fmt="%.17g")
                writer.write_table(pa.table(dict(zip(names, block.T))), row_group_size=chunk)
        writer.close()
        os.replace(str(path) + ".tmp", path)
        os.replace(parquet_tmp, workdir / ("input-%d.parquet" % n))
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--big-rows", type=int, default=10000000)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    workdir = Path(os.environ.get("PYFUNC_BENCH_DIR", "/tmp/pyfunc-bench-predict"))
    model = prepare(workdir, args.rows, args.big_rows)
    env = dict(os.environ, PYFUNC_PYTHON=sys.executable, MLFLOW_ALLOW_FILE_STORE="true")
    out_json = str(workdir / "out.json")
    out_parquet = str(workdir / "out.parquet")
    pyfunc_bin = str(VENV_BIN / "pyfunc")

    def pyfunc(n, fmt, workers=2):
        src, out = str(workdir / ("input-%d.%s" % (n, fmt))), out_json if fmt == "csv" else out_parquet
        return [pyfunc_bin, "predict", "-m", str(model), "-i", src, "-o", out, "--env-manager", "local",
                "-w", str(workers)] + (["--batch-rows", "262144"] if fmt == "parquet" else [])

    contenders = []  # (name, rows, format, kind, command)
    for n in sorted({args.rows, args.big_rows}):
        csv = str(workdir / ("input-%d.csv" % n))
        contenders.append(("pyfunc predict, 2 workers", n, "csv", "pyfunc", pyfunc(n, "csv")))
        if n == args.rows:
            contenders.append(("pyfunc predict, 1 worker", n, "csv", "pyfunc", pyfunc(n, "csv", 1)))
        contenders.append(("mlflow models predict (local)", n, "csv", "mlflow",
                           [str(VENV_BIN / "mlflow"), "models", "predict", "-m", str(model), "-i", csv, "-o",
                            out_json, "-t", "csv", "--env-manager", "local"]))
        contenders.append(("floor: read_csv + predict + json", n, "csv", "floor",
                           [sys.executable, "-c", FLOOR, str(model), csv, out_json]))
        contenders.append(("pyfunc predict, 2 workers", n, "parquet", "pyfunc", pyfunc(n, "parquet")))
        contenders.append(("floor: read_parquet + predict + to_parquet", n, "parquet", "floor",
                           [sys.executable, "-c", FLOOR_PARQUET, str(model), str(workdir / ("input-%d.parquet" % n)),
                            out_parquet]))
    results = []
    for name, n, fmt, kind, cmd in contenders:
        best = None
        for _ in range(args.repeat):
            log("running: %s, %s, %d rows" % (name, fmt, n))
            wall, rss = measure(cmd, env)
            if best is None or wall < best[0]:
                best = (wall, rss)
        results.append((name, n, fmt, kind) + best)

    def wall_of(n, fmt, kind):
        return next(r[4] for r in results if r[1] == n and r[2] == fmt and r[3] == kind)

    lines = ["| contender | input | rows | wall s | rows/s | peak RSS MiB | speed-up vs MLflow (CSV) | speed-up vs floor (same format) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, n, fmt, kind, wall, rss in results:
        vs_mlflow = "%.2fx" % (wall_of(n, "csv", "mlflow") / wall) if kind != "mlflow" else ""
        vs_floor = "%.2fx" % (wall_of(n, fmt, "floor") / wall) if kind != "floor" else ""
        lines.append("| {} | {} | {:,} | {:.2f} | {:,.0f} | {:.0f} | {} | {} |".format(
            name, fmt, n, wall, n / wall, rss / 2**20, vs_mlflow, vs_floor))
    big = args.big_rows
    lines.append("")
    lines.append("pyfunc, Parquet vs CSV at {:,} rows: {:.2f}x faster".format(
        big, wall_of(big, "csv", "pyfunc") / wall_of(big, "parquet", "pyfunc")))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print("Machine: {} cores, {}, {:.0f} GiB RAM, Linux {}, Python {}".format(
        os.cpu_count(), cpu, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, platform.release(),
        platform.python_version()))
    print("Input: {} float64 columns, as CSV and as Parquet (row groups of 500,000, snappy); model: sklearn "
          "LinearRegression saved by mlflow.sklearn (cloudpickle)".format(COLUMNS))
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
