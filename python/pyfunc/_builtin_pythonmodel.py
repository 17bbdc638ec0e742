"""Stand-in for the loaders of ``mlflow.pyfunc.model`` and
``mlflow.pyfunc.loaders.code_model``, used when MLflow is not installed.

Loads models saved with ``mlflow.pyfunc.save_model(python_model=...)``: a cloudpickled
``PythonModel`` (``python_model.pkl``, or ``.pkl.xz/.bz2/.gz`` when compressed), or a
model from code (``python_model="model.py"``: the file, copied into the model
directory and named by ``model_code_path``, is run and hands its model to
``mlflow.models.set_model``); its ``artifacts`` and its ``model_config``, exposed to
``load_context`` through a context object, then ``predict`` called with the
context/params dispatch MLflow uses. A plain function becomes a PythonModel as in MLflow.

Unpickling without MLflow: a pickled PythonModel subclass refers to MLflow by name,
at least to its base class ``mlflow.pyfunc.model.PythonModel``, and in MLflow >= 2.20
to the type-hint validation wrapper around ``predict`` (``mlflow.pyfunc.utils.
data_validation``, ``mlflow.exceptions``, ``mlflow.models.signature``). While the
pickle is read, minimal replacements of exactly those names are registered in
``sys.modules`` (and removed afterwards). They are honest about what they are:

  * ``PythonModel`` / ``PythonModelContext``: the base class and context, same API;
  * the type-hint wrapper converts a DataFrame to a list for ``list[...]`` hints as
    MLflow does, but does **not** validate data against the hints;
  * any other MLflow object in the pickle becomes an inert placeholder holding its
    pickled state; using it for anything raises.

Running a model from code without MLflow: the file imports MLflow (``import mlflow``,
``from mlflow.models import set_model, ModelConfig``, ``from mlflow.pyfunc import
PythonModel``). While it runs, and only if no MLflow is imported already, the same
kind of minimal modules are registered in ``sys.modules`` with, besides the above,
``set_model`` (keeps the model for the loader), ``ModelConfig`` (the model_config in
effect, as MLflow gives it to the file: the saved config with the load-time
overrides), ``MlflowException`` and the ``@pyfunc`` decorator; they are removed once
the file has run (its own references to them keep working). A name the file needs
that they do not provide fails the load with a message saying that MLflow is missing.
``_loading`` uses MLflow's own loader whenever MLflow is importable.

Loaded by file path from ``_loading.py``; standard library only at import time.
"""

import bz2
import functools
import gzip
import importlib.util
import inspect
import lzma
import os
import pickle
import sys
import threading
import types
import typing
import uuid
import warnings
from collections import namedtuple

# Tells _loading to call _load_pyfunc with the MLmodel dict and model root.
_PYFUNC_BUILTIN = True

_OPENERS = {None: open, "lzma": lzma.open, "bzip2": bz2.open, "gzip": gzip.open}


# --- the replacements of MLflow's classes -----------------------------------------------


class MlflowException(Exception):
    """Replacement of mlflow.exceptions.MlflowException (message + error_code)."""

    def __init__(self, message, error_code="INTERNAL_ERROR", **kwargs):
        super().__init__(message)
        self.message = str(message)
        self.error_code = error_code

    @classmethod
    def invalid_parameter_value(cls, message, **kwargs):
        return cls(message, error_code="INVALID_PARAMETER_VALUE", **kwargs)


class PythonModelContext:
    """What ``load_context`` and ``predict`` receive: artifact paths and the model_config."""

    def __init__(self, artifacts, model_config):
        self._artifacts = artifacts
        self._model_config = model_config

    @property
    def artifacts(self):
        """{name: absolute path of the artifact inside the model directory}."""
        return self._artifacts

    @property
    def model_config(self):
        return self._model_config


class _TypeHints:
    def __init__(self, input_=None, output=None):
        self.input = input_
        self.output = output

    def __repr__(self):
        return "<input: {}, output: {}>".format(self.input, self.output)


def _context_in_signature(parameters):
    # predict(self, context, model_input, ...) or any two arguments besides self/params.
    return "context" in parameters or len([p for p in parameters if p not in ("self", "params")]) == 2


def _extract_type_hints(func, input_arg_index):
    try:
        hints = typing.get_type_hints(func)
        names = [p for p in inspect.signature(func).parameters if p != "self"]
    except Exception:
        return _TypeHints()
    name = names[input_arg_index] if len(names) > input_arg_index else None
    return _TypeHints(hints.get(name), hints.get("return"))


class PythonModel:
    """Replacement of mlflow.pyfunc.model.PythonModel: the base of the user's model class."""

    def __init_subclass__(cls, **kwargs):
        # As MLflow's base class does, a user's subclass gets its own predict wrapped
        # for type hints (a class from a model file; an unpickled class gets its
        # predict, wrapped already, only after it is created).
        super().__init_subclass__(**kwargs)
        predict = cls.__dict__.get("predict")
        if callable(predict) and cls.__module__ != __name__:
            cls.predict = _wrap_predict(predict)

    def load_context(self, context):
        """Called once after unpickling, with the model's artifacts and model_config."""

    def predict(self, context, model_input, params=None):
        raise NotImplementedError()

    def predict_stream(self, context, model_input, params=None):
        raise NotImplementedError()

    @property
    def predict_type_hints(self):
        if "_predict_type_hints" in self.__dict__:
            return self.__dict__["_predict_type_hints"]
        params = inspect.signature(self.predict).parameters
        hints = _extract_type_hints(self.predict, 1 if _context_in_signature(params) else 0)
        self.__dict__["_predict_type_hints"] = hints
        return hints


class _FunctionPythonModel(PythonModel):
    """A plain function saved as ``python_model`` (MLflow wraps it in this class)."""

    def __init__(self, func, signature=None):
        self.func = _wrap_predict(func)
        self.signature = signature

    @property
    def predict_type_hints(self):
        if "_predict_type_hints" not in self.__dict__:
            self.__dict__["_predict_type_hints"] = _extract_type_hints(self.func, 0)
        return self.__dict__["_predict_type_hints"]

    def predict(self, model_input, params=None):
        return self.func(model_input)


FuncInfo = namedtuple("FuncInfo", ["input_type_hint", "input_param_name"])


def _is_dataframe(obj):
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(obj, pd.DataFrame)


def _convert_data_to_type_hint(data, type_hint):
    """DataFrame -> list for ``list[...]`` hints (as MLflow does); other data unchanged."""
    if not _is_dataframe(data) or typing.get_origin(type_hint) is not list:
        return data
    args = typing.get_args(type_hint)
    element = args[0] if args else None
    if element is dict or typing.get_origin(element) is dict:
        return data.iloc[:, 0].tolist() if list(data.columns) == [0] else data.to_dict(orient="records")
    return data.iloc[:, 0].tolist()


def _validate_model_input(args, kwargs, model_input_index, type_hint, model_input_param_name):
    """Replacement of MLflow's type-hint check: converts like MLflow, does not validate."""
    if model_input_param_name in kwargs:
        kwargs[model_input_param_name] = _convert_data_to_type_hint(kwargs[model_input_param_name], type_hint)
    elif len(args) > model_input_index:
        data = _convert_data_to_type_hint(args[model_input_index], type_hint)
        args = args[:model_input_index] + (data,) + args[model_input_index + 1:]
    return args, kwargs


def _wrap_predict(func):
    """What MLflow's ``@pyfunc`` makes of a predict method or a model function: when
    its input has a ``list[...]`` type hint, a DataFrame given to it is converted to a
    list first (as MLflow converts it; nothing is validated). Other functions are
    returned as they are; so are functions wrapped already."""
    if getattr(func, "_is_pyfunc", False):
        return func
    try:
        parameters = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return func
    names = [p for p in parameters if p != "self"]
    input_index = 1 if _context_in_signature(parameters) else 0
    if len(names) <= input_index:
        return func
    hint = _extract_type_hints(func, input_index).input
    if typing.get_origin(hint) is not list:
        return func
    position = input_index + (1 if "self" in parameters else 0)
    name = names[input_index]

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        args, kwargs = _validate_model_input(args, kwargs, position, hint, name)
        return func(*args, **kwargs)

    wrapper._is_pyfunc = True
    return wrapper


def _pyfunc_decorator(func):
    """Replacement of @mlflow.pyfunc.utils.pyfunc (see _wrap_predict)."""
    wrapped = _wrap_predict(func)
    wrapped._is_pyfunc = True
    return wrapped


# --- set_model and ModelConfig, for models from code ------------------------------------

_NOT_SET = object()
# The file being run by load_code_model: the model it set, and the model_config that
# ModelConfig reads ("" when the model has none; None when no file is being run).
_code_run = {"model": _NOT_SET, "config": None}
_code_run_lock = threading.RLock()  # reentrant: a model file may load another model


def set_model(model):
    """Replacement of mlflow.models.set_model: hands the file's model to the loader."""
    if isinstance(model, str) or not (isinstance(model, PythonModel) or callable(model)):
        raise MlflowException(
            "set_model() takes a PythonModel or a callable, not {} (other model objects, such as "
            "LangChain or LlamaIndex ones, load only with MLflow installed)".format(type(model).__name__)
        )
    _code_run["model"] = model


class ModelConfig:
    """Replacement of mlflow.models.ModelConfig: the model_config of the model being
    loaded (its saved config with the load-time overrides); ``development_config`` (a
    dict or a YAML file) only when no model is being loaded."""

    def __init__(self, *, development_config=None):
        loading = _code_run["config"]
        self.config = loading if loading is not None else development_config
        if not self.config:
            raise FileNotFoundError(
                "Config file is not provided which is needed to load the model "
                "(the model was saved without a model_config)"
            )
        if not isinstance(self.config, dict) and not os.path.isfile(self.config):
            raise FileNotFoundError("Config file '{}' not found.".format(self.config))

    def _read_config(self):
        if isinstance(self.config, dict):
            return self.config
        try:
            import yaml
        except ImportError as e:
            raise ImportError("ModelConfig reads {} with PyYAML, which is not installed".format(self.config)) from e
        with open(self.config) as f:
            return yaml.safe_load(f)

    def to_dict(self):
        return self._read_config()

    def get(self, key):
        data = self._read_config()
        if data and key in data:
            return data[key]
        raise KeyError("Key '{}' not found in configuration: {}.".format(key, data))


class _Placeholder:
    """An MLflow object this stand-in does not implement; it keeps its pickled state."""

    _mlflow_name = "mlflow.?"

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        self._args = args

    def __setstate__(self, state):
        self.__dict__["_state"] = state

    def __getattr__(self, name):
        raise AttributeError(
            "{} is an MLflow object that pyfunc cannot use without MLflow installed "
            "(attribute {!r})".format(self._mlflow_name, name)
        )


# --- the shim modules --------------------------------------------------------------------


def _shim_modules():
    """module name -> module object, the minimal MLflow seen by the unpickler."""
    contents = {
        "mlflow": {"MlflowException": MlflowException},
        "mlflow.exceptions": {"MlflowException": MlflowException},
        "mlflow.pyfunc": {"PythonModel": PythonModel, "PythonModelContext": PythonModelContext},
        "mlflow.pyfunc.model": {
            "PythonModel": PythonModel,
            "PythonModelContext": PythonModelContext,
            "_FunctionPythonModel": _FunctionPythonModel,
        },
        "mlflow.pyfunc.utils": {"pyfunc": _pyfunc_decorator},
        "mlflow.pyfunc.utils.data_validation": {
            "FuncInfo": FuncInfo,
            "_validate_model_input": _validate_model_input,
            "pyfunc": _pyfunc_decorator,
        },
        "mlflow.models": {"set_model": set_model, "ModelConfig": ModelConfig},
        "mlflow.models.model": {"set_model": set_model},
        "mlflow.models.model_config": {"ModelConfig": ModelConfig},
        "mlflow.models.signature": {"_TypeHints": _TypeHints},
    }
    modules = {}
    for name, attrs in contents.items():
        module = types.ModuleType(name, "pyfunc's stand-in for {} (MLflow is not installed)".format(name))
        module.__path__ = []  # a package, so that submodules resolve
        module.__dict__.update(attrs)
        modules[name] = module
    for name, module in modules.items():
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(modules[parent], child, module)
    return modules


class _ShimUnpickler(pickle.Unpickler):
    def __init__(self, f, shims):
        super().__init__(f)
        self._shims = shims
        self._placeholders = {}

    def find_class(self, module, name):
        if module == "mlflow" or module.startswith("mlflow."):
            shim = self._shims.get(module)
            if shim is not None and hasattr(shim, name):
                return getattr(shim, name)
            key = (module, name)
            if key not in self._placeholders:
                self._placeholders[key] = type(name, (_Placeholder,), {"_mlflow_name": module + "." + name})
            return self._placeholders[key]
        return super().find_class(module, name)


def load_python_model(path, compression=None):
    """Unpickles a cloudpickled PythonModel file with MLflow replaced by the shim."""
    if compression not in _OPENERS:
        raise ValueError("unsupported python_model_compression {!r}; expected lzma, bzip2 or gzip".format(compression))
    import cloudpickle  # noqa: F401  (the pickle refers to cloudpickle's reconstructors)

    shims = _shim_modules()
    added = [name for name in shims if name not in sys.modules]
    for name in added:
        sys.modules[name] = shims[name]
    try:
        with _OPENERS[compression](path, "rb") as f:
            return _ShimUnpickler(f, shims).load()
    finally:
        for name in added:
            if sys.modules.get(name) is shims[name]:
                del sys.modules[name]


# What the stand-in modules provide, named when a model file needs more.
_SHIM_PROVIDES = ("pyfunc.PythonModel, pyfunc.PythonModelContext, models.set_model, models.ModelConfig, "
                  "MlflowException and pyfunc.utils.pyfunc")


def load_code_model(code_path, model_config=None):
    """Runs the model file ``code_path`` (a model from code) and returns the object it
    passed to ``mlflow.models.set_model``.

    The file runs as a module of its own (``code_model_<hex>``, kept in ``sys.modules``
    as MLflow keeps it), with ``ModelConfig`` reading ``model_config``. Unless MLflow
    is imported already, ``mlflow`` and the submodules the file may import are the
    stand-ins of ``_shim_modules`` while it runs. Raises MlflowException when the file
    is missing, raises, or never calls set_model (the caller names the file).
    """
    if not os.path.isfile(code_path):
        raise MlflowException("the model code file is missing (model_code_path: {})".format(code_path))
    with _code_run_lock:
        shims = _shim_modules()
        added = [] if "mlflow" in sys.modules else [name for name in shims if name not in sys.modules]
        for name in added:
            sys.modules[name] = shims[name]
        module_name = "code_model_" + uuid.uuid4().hex
        outer = dict(_code_run)
        _code_run["model"] = _NOT_SET
        _code_run["config"] = model_config if model_config is not None else ""
        try:
            spec = importlib.util.spec_from_file_location(module_name, code_path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as e:
            sys.modules.pop(module_name, None)
            hint = ""
            if added and isinstance(e, (ImportError, AttributeError)) and "mlflow" in "{} {}".format(
                    getattr(e, "name", None), e):
                hint = (" (MLflow is not installed, and pyfunc's minimal stand-in for it provides only {}; "
                        "install mlflow to load this model)".format(_SHIM_PROVIDES))
            raise MlflowException("the model code raised {}: {}{}".format(type(e).__name__, e, hint)) from e
        finally:
            for name in added:
                if sys.modules.get(name) is shims[name]:
                    del sys.modules[name]
            model = _code_run["model"]
            _code_run.update(outer)
    if model is _NOT_SET and not added:
        # An MLflow imported before the file ran received the model.
        model = getattr(sys.modules.get("mlflow.models.model"), "__mlflow_model__", None) or _NOT_SET
    if model is _NOT_SET:
        raise MlflowException("the model code ran without setting a model (it must call mlflow.models.set_model)")
    return model


# --- the loader ------------------------------------------------------------------------------


def _pickle_allowed():
    value = os.environ.get("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true").strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise ValueError("MLFLOW_ALLOW_PICKLE_DESERIALIZATION: expected true or false, found {!r}".format(value))


def _load_pyfunc(data_path, model_config=None, model_root=None, mlmodel=None):
    conf = ((mlmodel or {}).get("flavors") or {}).get("python_function") or {}
    if conf.get("model_code_path"):
        # As MLflow does: the file's basename, in the directory given to the loader.
        code_path = os.path.join(data_path, os.path.basename(conf["model_code_path"]))
        python_model = load_code_model(code_path, model_config)
        if callable(python_model):
            python_model = _FunctionPythonModel(python_model, signature=(mlmodel or {}).get("signature"))
    else:
        python_model = _load_pickled_model(data_path, conf)

    artifacts = {
        name: os.path.join(data_path, info["path"]) for name, info in (conf.get("artifacts") or {}).items()
    }
    context = PythonModelContext(artifacts=artifacts, model_config=model_config)
    python_model.load_context(context)
    return _PythonModelPyfuncWrapper(python_model, context)


def _load_pickled_model(data_path, conf):
    if not _pickle_allowed():
        raise PermissionError(
            "deserializing this model is disallowed: it is saved in cloudpickle format and "
            "MLFLOW_ALLOW_PICKLE_DESERIALIZATION is not 'true'"
        )
    try:
        import cloudpickle

        saved_version = conf.get("cloudpickle_version")
        if saved_version is None:
            warnings.warn("the model does not record the CloudPickle version it was saved with", stacklevel=2)
        elif saved_version != cloudpickle.__version__:
            warnings.warn(
                "the model was saved with CloudPickle {}, this is CloudPickle {}; they may be "
                "incompatible".format(saved_version, cloudpickle.__version__),
                stacklevel=2,
            )
    except ImportError:
        pass  # load_python_model reports it
    subpath = conf.get("python_model")
    if not subpath:
        raise ValueError("Python model path was not specified in the model configuration")
    return load_python_model(os.path.join(data_path, subpath), conf.get("python_model_compression"))


def _first_string_column(df):
    for column in df.columns:
        values = df[column]
        if len(values) and all(isinstance(v, str) for v in values):
            return column
    return None


class _PythonModelPyfuncWrapper:
    """Calls the user's ``predict`` with the context first when its signature asks for it
    (a parameter named ``context``, or two parameters besides ``self``/``params``) and
    with ``params=`` only when it has a ``params`` parameter."""

    def __init__(self, python_model, context):
        self.python_model = python_model
        self.context = context

    def _convert_input(self, model_input):
        if not _is_dataframe(model_input):
            return model_input
        hints = getattr(self.python_model, "predict_type_hints", None)
        hint = getattr(hints, "input", None)
        element = typing.get_args(hint)[0] if typing.get_origin(hint) is list and typing.get_args(hint) else None
        if element is str:  # legacy List[str] hints: the first string column
            column = _first_string_column(model_input)
            if column is None:
                raise MlflowException.invalid_parameter_value("Expected model input to contain at least one string column")
            return model_input[column].tolist()
        if typing.get_origin(element) is dict and typing.get_args(element) == (str, str):
            return model_input.to_dict(orient="records")
        return model_input

    def _call(self, method, model_input, params):
        parameters = inspect.signature(method).parameters
        kwargs = {}
        if "params" in parameters:
            kwargs["params"] = params
        elif params:
            warnings.warn("params ignored: the model's predict does not accept params", stacklevel=3)
        if _context_in_signature(parameters):
            return method(self.context, self._convert_input(model_input), **kwargs)
        return method(self._convert_input(model_input), **kwargs)

    def predict(self, model_input, params=None):
        return self._call(self.python_model.predict, model_input, params)

    def predict_stream(self, model_input, params=None):
        return self._call(self.python_model.predict_stream, model_input, params)
