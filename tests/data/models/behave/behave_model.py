"""A test model whose behaviour is chosen per call with params={"mode": ...}."""
import os
import time

import numpy as np
import pandas as pd


class BehaveModel:
    def predict(self, df, params=None):
        mode = (params or {}).get("mode", "echo")
        if mode == "echo":
            return df
        if mode == "sum" and isinstance(df, np.ndarray):  # `inputs` as a list, from MLflow too
            return df.reshape(len(df), -1).sum(axis=1)
        if mode == "sum":
            return df.select_dtypes("number").sum(axis=1).to_numpy()
        if mode == "series":
            return pd.Series(df.iloc[:, 0].to_numpy(), name="first")
        if mode == "2d":
            return np.column_stack([np.arange(len(df)), np.arange(len(df)) * 2.5])
        if mode == "list":
            return [str(v) for v in range(len(df))]
        if mode == "dtypes":
            return pd.DataFrame({"column": list(df.columns), "dtype": [str(t) for t in df.dtypes]})
        if mode == "narrow":  # every numpy type a model returns, one column each
            n = len(df)
            return pd.DataFrame({
                "i8": np.arange(n, dtype=np.int8) - 3, "i16": np.arange(n, dtype=np.int16) * 300,
                "i32": np.arange(n, dtype=np.int32) - 70000, "u8": np.arange(n, dtype=np.uint8) + 250,
                "u16": np.arange(n, dtype=np.uint16), "u32": np.arange(n, dtype=np.uint32) + 4000000000,
                "u64": np.arange(n, dtype=np.uint64) + np.uint64(2 ** 63 + 7),
                "f16": (np.arange(n) / 10 + 0.1).astype(np.float16),
                "f32": (np.arange(n) / 10 + 0.1).astype(np.float32),
                "bytes": [bytes([0, 255, i % 256]) + b"ab" * 40 for i in range(n)],
            })
        if mode == "dict_arrays":  # a multi-output model: a dict of 1-D arrays
            n = len(df)
            return {"label": np.arange(n, dtype=np.int32), "score": np.linspace(0, 1, n).astype(np.float32),
                    "name": np.array(["r%d" % i for i in range(n)])}
        if mode == "list_cells":  # a DataFrame whose cells hold lists
            return pd.DataFrame({"id": np.arange(len(df)), "tokens": [[i, i + 1] for i in range(len(df))]})
        if mode == "f32":  # a float32 2-D array (onnx, xgboost, torch outputs)
            return np.column_stack([np.arange(len(df)) / 10 + 0.1, np.arange(len(df)) / 3]).astype(np.float32)
        if mode == "center":  # each row's output depends on every row of the input
            x = df.select_dtypes("number").iloc[:, 0].to_numpy(dtype=float)
            return x - x.mean()
        if mode == "long_error":  # an exception whose text exceeds a socket's largest message
            raise ValueError("x" * 300_000)
        if mode == "named_like_schema_error":  # a model's own class, only named like pyfunc's
            raise type("SchemaEnforcementError", (ValueError,), {})("the model's own error")
        if mode == "raise":
            raise ValueError("the model refuses: " + str(len(df)) + " rows")
        if mode == "crash":
            os.kill(os.getpid(), 9)
        if mode == "sleep":
            time.sleep(0.8)
            return df
        if mode == "hang":
            time.sleep(3600)
        if mode == "pid":
            return np.full(len(df), os.getpid())
        if mode == "kind":
            # What predict was given, once per row: MLflow passes `inputs`/`instances` to a
            # model without a column signature as arrays, dicts or lists.
            if isinstance(df, pd.DataFrame):
                desc, n = "DataFrame " + ",".join("%s:%s" % (c, t) for c, t in df.dtypes.items()), len(df)
            elif isinstance(df, np.ndarray):
                desc, n = "ndarray %s %s" % (df.shape, df.dtype), (len(df) if df.ndim else 1)
            elif isinstance(df, dict):
                desc = "dict " + ",".join("%s:%s" % (k, np.asarray(v).dtype) for k, v in df.items())
                n = len(next(iter(df.values()))) if df else 0
            else:
                desc, n = "%s %r" % (type(df).__name__, df), len(df)
            return [desc] * n
        if mode == "chat":  # a unified LLM request: the body (less params) as a dict
            content = df.get("prompt") or df["messages"][-1]["content"]
            return {"choices": [{"index": 0, "message": {"role": "assistant", "content": "echo: " + content}}],
                    "usage": {"prompt_tokens": np.int64(len(content))}}
        if mode == "object":  # an output with no table form
            return {"rows": np.int64(len(df)), "columns": [str(c) for c in df.columns], "values": df.to_numpy()}
        if mode == "shapes":  # what predict was given, with the shapes and dtypes of arrays
            def describe(v):
                if isinstance(v, np.ndarray):
                    return "%s%s" % (v.dtype, list(v.shape))
                if isinstance(v, pd.Series):
                    return "[%s]" % ",".join(describe(c) if isinstance(c, np.ndarray) else type(c).__name__
                                             for c in v)
                return type(v).__name__
            if isinstance(df, dict):
                return ["dict " + ",".join("%s:%s" % (k, describe(v)) for k, v in df.items())]
            if isinstance(df, pd.DataFrame):
                return ["DataFrame " + ",".join("%s:%s" % (c, describe(df[c])) for c in df.columns)]
            return [describe(df)]
        if mode == "dict_tensors":  # a multi-output model with a 2-D output (onnx classifiers)
            n = len(df)
            return {"label": np.arange(n), "probabilities": np.full((n, 3), 1 / 3, dtype=np.float32)}
        if mode == "cube":  # an N-d array output
            a = np.asarray(df, dtype=np.float32)
            return np.stack([a, 2 * a], axis=1)
        if mode == "array_cells":  # a DataFrame whose cells hold arrays (embeddings)
            return pd.DataFrame({"id": np.arange(len(df)),
                                 "vec": [np.array([i, i + 0.5], dtype=np.float32) for i in range(len(df))]})
        if mode == "threads":
            names = ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"]
            return pd.DataFrame({n: [os.environ.get(n, "")] * len(df) for n in names})
        raise KeyError(mode)


def _load_pyfunc(path):
    return BehaveModel()
