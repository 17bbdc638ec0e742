"""pyfunc: load, save and score pyfunc (MLflow ``python_function``) models."""

from pyfunc._core import __version__
from pyfunc.exceptions import (
    AlreadyExistsError,
    InvalidArgumentError,
    ModelLoadError,
    NotFoundError,
    PyfuncError,
    PyfuncIOError,
)

# --- model format API (the seed's functions) -------------------------------------

# --- tracking API (pyfunc.tracking) -----------------------------------------------
