"""Prints the model's own predict time for one row, in process (median of 2,000 calls,
microseconds): the floor for a single-row request at concurrency 1.

    python bench/serve/floor.py MODEL_DIR
"""
import sys
import time
import warnings

import mlflow.sklearn
import numpy as np
import pandas as pd

warnings.simplefilter("ignore")
model = mlflow.sklearn.load_model(sys.argv[1])
one = pd.DataFrame([[4.9, 3.6, 1.4, 0.1]], columns=["f0", "f1", "f2", "f3"])
for _ in range(200):
    model.predict(one)
times = []
for _ in range(2000):
    t = time.perf_counter()
    model.predict(one)
    times.append(time.perf_counter() - t)
print(f"{np.median(times) * 1e6:.1f}")
