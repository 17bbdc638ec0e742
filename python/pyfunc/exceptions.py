"""Exceptions raised by pyfunc.

Every error from the native core arrives as one of these (the mapping from the core's
status codes lives in ``python/_core/convert.cc``). Each also derives from the built-in
exception a Python user would expect, so ``except FileNotFoundError`` keeps working.
"""


class PyfuncError(Exception):
    """Base class of pyfunc's errors."""


class InvalidArgumentError(PyfuncError, ValueError):
    """Bad input: an invalid MLmodel file, a bad argument, a malformed environment file."""


class NotFoundError(PyfuncError, FileNotFoundError):
    """A model, file, run or artifact that does not exist."""


class AlreadyExistsError(PyfuncError, FileExistsError):
    """A destination that must not exist does (e.g. save_model into a non-empty directory)."""


class PyfuncIOError(PyfuncError, OSError):
    """The operating system refused an operation (permissions, disk full, ...)."""


class ModelLoadError(PyfuncError):
    """The model's loader module could not be imported or failed to load the model."""
