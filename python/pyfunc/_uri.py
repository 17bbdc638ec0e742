"""Model URIs: turns what a user passes as a model "path" into a local directory.

Accepted today: plain paths and ``file://`` URIs.
"""

import os
from urllib.parse import unquote, urlparse

from pyfunc.exceptions import InvalidArgumentError, NotFoundError


def resolve_model_uri(uri, run_id=None):
    """Returns the local directory of the model named by ``uri`` (and ``run_id``)."""
    uri = os.fspath(uri)
    if run_id is not None:
        raise InvalidArgumentError(
            f"load from run {run_id!r}: runs need a tracking store, which this build lacks"
        )
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        path = unquote(parsed.path)
    elif parsed.scheme in ("", ) or (len(parsed.scheme) == 1 and os.name == "nt"):
        path = uri
    else:
        raise InvalidArgumentError(f"{uri}: unsupported model URI scheme '{parsed.scheme}:'")
    if not os.path.exists(path):
        raise NotFoundError(f"{uri}: no such model directory")
    return os.path.abspath(path)
