"""Exceptions raised by pyfunc.

Every error from the native core arrives as one of these (the mapping from the core's
status codes lives in ``python/_core/convert.cc``). Each also derives from the built-in
exception a Python user would expect, so ``except FileNotFoundError`` keeps working.
"""


# The base class and ModelLoadError live in the loading routine, which a worker process
# runs without this package; re-exported here so there is one class of each.
from pyfunc._loading import (  # noqa: F401
    InvalidParametersError,
    ModelLoadError,
    PyfuncError,
    SchemaEnforcementError,
)


class InvalidArgumentError(PyfuncError, ValueError):
    """Bad input: an invalid MLmodel file, a bad argument, a malformed environment file."""


class NotFoundError(PyfuncError, FileNotFoundError):
    """A model, file, run or artifact that does not exist."""


class AlreadyExistsError(PyfuncError, FileExistsError):
    """A destination that must not exist does (e.g. save_model into a non-empty directory)."""


class PyfuncIOError(PyfuncError, OSError):
    """The operating system refused an operation (permissions, disk full, ...)."""


class PredictionError(PyfuncError):
    """The model raised while predicting (out of process); the message carries the
    Python exception type and message from the worker."""


class PyfuncTimeoutError(PyfuncError, TimeoutError):
    """A prediction or a model load took longer than its timeout; the worker was stopped."""


class WorkerUnavailableError(PyfuncError):
    """No worker could take the work: it died (the message says how) or the pool is closing."""
