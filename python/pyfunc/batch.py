"""Batch scoring of a file, as ``pyfunc predict`` does it, from Python.

The scoring runs in the C++ library (include/pyfunc/batch_scorer.h): the model's worker
processes start while the input's first batch is read, batches are read ahead on a
thread of their own with memory bounded, ``workers`` batches are scored at once, and the
output is written in input order to a temporary sibling renamed into place at the end,
so a failed run leaves no partial file. The GIL is released for the whole run.
"""

import os
import sys

from pyfunc import _core


def score_file(model_uri, input_path, output_path, *, input_format=None, output_format=None,
               carry_columns=(), batch_rows=65536, batching="auto", env_manager="local", workers=1,
               python=None, env_root=None, predict_timeout=60.0, quiet=True):
    """Scores ``input_path`` with the model at ``model_uri`` into ``output_path``.

    :param model_uri: a model directory or URI (``runs:/``, ``models:/``, ...).
    :param input_path: a CSV, Parquet or Arrow IPC (file or stream) file, or an MLflow
        scoring request (JSON: ``dataframe_split``, ``dataframe_records``, ``instances``,
        ``inputs``); ``"-"`` reads standard input.
    :param output_path: where the predictions go; ``"-"`` writes standard output.
    :param input_format: ``"csv"``, ``"parquet"``, ``"arrow"`` or ``"json"``; by default from
        the name's extension (``.csv``; ``.parquet``, ``.pq``; ``.arrow``, ``.arrows``,
        ``.feather``, ``.ipc``), else ``"json"``.
    :param output_format: ``"json"`` (``{"predictions": ...}`` as MLflow writes it), ``"csv"``,
        ``"parquet"``, ``"arrow"`` (an IPC file) or ``"arrow-stream"``; by default Parquet or
        Arrow by the output's extension, else ``"json"``.
    :param carry_columns: input columns (an id, a key) written in front of the predictions
        in csv, parquet or arrow output; the model is not given them unless its signature
        names them.
    :param batch_rows: rows per predict call when the model's rows may be scored apart.
    :param batching: ``"auto"`` (batch models known to predict each row on its own),
        ``"rows"`` (batch whatever the model) or ``"off"`` (the whole input in one call,
        as MLflow does).
    :param env_manager: ``"local"``, ``"virtualenv"``, ``"uv"`` or ``"conda"``.
    :param workers: worker processes scoring batches at once.
    :param python: the interpreter of ``env_manager="local"``; by default ``$PYFUNC_PYTHON``,
        else this one.
    :return: a dict: ``rows`` written, ``batches`` (predict calls), ``batched`` (whether
        the input was split) and ``batching_reason``.
    """
    from pyfunc._uri import resolve_model_uri

    model_dir = resolve_model_uri(os.fspath(model_uri))
    return _core.score_file(
        model_dir, os.fspath(input_path), os.fspath(output_path), input_format=input_format or "",
        output_format=output_format or "", carry_columns=list(carry_columns), batch_rows=int(batch_rows), batching=batching, env_manager=env_manager,
        workers=int(workers), python=python or os.environ.get("PYFUNC_PYTHON") or sys.executable, env_root=os.fspath(env_root) if env_root else "",
        predict_timeout=float(predict_timeout), quiet=bool(quiet))
