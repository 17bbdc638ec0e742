"""Batch scoring benchmark: `pyfunc predict` against `mlflow models predict` and the
in-process floor, on the same generated CSV and the same sklearn model.

    .venv/bin/python bench/predict/run.py [--rows 1000000] [--big-rows 4000000] [--repeat 1]

Contenders (each reads the CSV, scores every row, writes {"predictions": [...]} JSON):
  * pyfunc predict, 1 and 2 workers (--env-manager local)
  * mlflow models predict --env-manager local (real MLflow from .venv)
  * floor: one Python process, pandas.read_csv + model.predict + json write
Reported: wall time, rows/s, peak RSS of the whole process tree (sampled every 20 ms),
and ratios. The pyfunc run is repeated on --big-rows rows to show that its peak RSS
does not grow with the input. Data and model are cached in $PYFUNC_BENCH_DIR
(default /tmp/pyfunc-bench-predict). Prints a Markdown report.
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

# The floor loads the pickle directly: no MLflow import, nothing but the work itself.
FLOOR = r"""
import json, sys, pandas as pd, cloudpickle
with open(sys.argv[1] + "/model.pkl", "rb") as f:
    model = cloudpickle.load(f)
df = pd.read_csv(sys.argv[2])
pred = model.predict(df)
with open(sys.argv[3], "w") as f:
    json.dump({"predictions": pred.tolist()}, f)
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
        if path.exists():
            continue
        log("generating %s" % path)
        rng = np.random.RandomState(1)
        chunk = 500000
        with open(str(path) + ".tmp", "w") as f:
            f.write(",".join("f%d" % i for i in range(COLUMNS)) + "\n")
            for start in range(0, n, chunk):
                block = rng.rand(min(chunk, n - start), COLUMNS)
                np.savetxt(f, block, delimiter=",", fmt="%.17g")
        os.replace(str(path) + ".tmp", path)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--big-rows", type=int, default=4000000)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    workdir = Path(os.environ.get("PYFUNC_BENCH_DIR", "/tmp/pyfunc-bench-predict"))
    model = prepare(workdir, args.rows, args.big_rows)
    env = dict(os.environ, PYFUNC_PYTHON=sys.executable, MLFLOW_ALLOW_FILE_STORE="true")
    out = workdir / "out.json"
    small = workdir / ("input-%d.csv" % args.rows)
    big = workdir / ("input-%d.csv" % args.big_rows)
    pyfunc_bin = str(VENV_BIN / "pyfunc")

    contenders = [
        ("pyfunc predict, 1 worker", args.rows,
         [pyfunc_bin, "predict", "-m", str(model), "-i", str(small), "-o", str(out), "--env-manager", "local", "-w", "1"]),
        ("pyfunc predict, 2 workers", args.rows,
         [pyfunc_bin, "predict", "-m", str(model), "-i", str(small), "-o", str(out), "--env-manager", "local", "-w", "2"]),
        ("mlflow models predict (local)", args.rows,
         [str(VENV_BIN / "mlflow"), "models", "predict", "-m", str(model), "-i", str(small), "-o", str(out),
          "-t", "csv", "--env-manager", "local"]),
        ("floor: read_csv + predict + write (1 process)", args.rows,
         [sys.executable, "-c", FLOOR, str(model), str(small), str(out)]),
        ("pyfunc predict, 2 workers, %d rows" % args.big_rows, args.big_rows,
         [pyfunc_bin, "predict", "-m", str(model), "-i", str(big), "-o", str(out), "--env-manager", "local", "-w", "2"]),
        ("floor, %d rows" % args.big_rows, args.big_rows,
         [sys.executable, "-c", FLOOR, str(model), str(big), str(out)]),
    ]
    results = {}
    for name, n, cmd in contenders:
        best = None
        for _ in range(args.repeat):
            log("running: " + name)
            wall, rss = measure(cmd, env)
            if best is None or wall < best[0]:
                best = (wall, rss)
        results[name] = (n,) + best

    mlflow_t = results["mlflow models predict (local)"][1]
    floor_t = results["floor: read_csv + predict + write (1 process)"][1]
    lines = ["| contender | rows | wall s | rows/s | peak RSS MiB | vs MLflow | vs floor |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, (n, wall, rss) in results.items():
        vs_mlflow = "%.2fx faster" % (mlflow_t / wall) if n == args.rows else ""
        vs_floor = "%.2fx" % (wall / floor_t) if n == args.rows else ""
        lines.append("| {} | {:,} | {:.2f} | {:,.0f} | {:.0f} | {} | {} |".format(
            name, n, wall, n / wall, rss / 2**20, vs_mlflow, vs_floor))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print("Machine: {} cores, {}, {:.0f} GiB RAM, Linux {}, Python {}".format(
        os.cpu_count(), cpu, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, platform.release(),
        platform.python_version()))
    print("Input: {} float64 columns, CSV; model: sklearn LinearRegression saved by mlflow.sklearn (cloudpickle)".format(COLUMNS))
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
