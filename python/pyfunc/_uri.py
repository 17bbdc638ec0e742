"""Model URIs: turns what a user passes as a model "path" into a local directory.

Accepted: plain paths, ``file://`` URIs, ``runs:/<run_id>/<path>`` (with MLflow 3's
fallback to the run's logged model of that name), ``models:/<name>/<version>``,
``models:/<name>/latest``, ``models:/<name>@<alias>``, ``models:/<model_id>`` and
``mlflow-artifacts:/...``. Runs and registered models are looked up in the store of the
tracking URI in force (see ``pyfunc.tracking``); remote artifacts are downloaded into
``$PYFUNC_CACHE_DIR`` (default ``~/.cache/pyfunc/models``).
"""

import os

from pyfunc import _core
from pyfunc.exceptions import InvalidArgumentError


def resolve_model_uri(uri, run_id=None):
    """Returns the local directory of the model named by ``uri`` (and ``run_id``).

    With ``run_id`` (the seed's ``load_pyfunc(path, run_id)``), ``uri`` is a path inside
    that run's artifacts: the same as ``runs:/<run_id>/<uri>``.
    """
    uri = os.fspath(uri)
    if run_id is not None:
        if "://" in uri or uri.startswith(("runs:", "models:")):
            raise InvalidArgumentError(f"{uri}: with run_id, the path must be a path inside the run's artifacts")
        uri = "runs:/{}/{}".format(run_id, uri.lstrip("/"))
    return _core.resolve_model_uri(uri)
