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

__all__ = [
    "__version__",
    "AlreadyExistsError",
    "InvalidArgumentError",
    "ModelLoadError",
    "NotFoundError",
    "PyfuncError",
    "PyfuncIOError",
]
