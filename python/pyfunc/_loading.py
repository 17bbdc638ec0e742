"""The loading routine of pyfunc models: MLmodel dict + model directory -> PyFuncModel.

This is what ``mlflow.pyfunc.load_model`` does once the model directory is local and
its ``MLmodel`` is parsed: put the model's code on ``sys.path``, work out the data
path and the model_config, import the loader module, call its loader, and wrap the
result in a :class:`PyFuncModel`. ``pyfunc.load_pyfunc`` and the out-of-process worker
share it, so both load a model the same way.

Constraints (the worker runs this file in the *model's* environment):
  * standard library only at import time; numpy/pandas only if the model needs them;
  * never imports ``pyfunc``, ``pyfunc._core`` or PyYAML: the MLmodel arrives parsed;
  * runnable when loaded by file path (``importlib.util.spec_from_file_location``),
    in any Python >= 3.8. Sibling modules are therefore found relative to __file__.

When the loader module is one of MLflow's (``mlflow.sklearn``, ``mlflow.pyfunc.model``,
``mlflow.pyfunc.loaders.code_model``) and MLflow cannot be imported, the built-in
stand-ins next to this file (``_builtin_sklearn.py``, ``_builtin_pythonmodel.py``) load
the model instead. When MLflow is importable, MLflow's own loader module is used.
"""

import importlib
import importlib.util
import inspect
import json
import os
import sys
import warnings

FLAVOR_NAME = "python_function"

# Environment variable with a JSON dict of model_config overrides (MLflow's name).
INFERENCE_CONFIG_ENV = "MLFLOW_PYFUNC_INFERENCE_CONFIG"

# loader_module -> file (next to this one) of the stand-in used when MLflow is absent.
_BUILTIN_LOADERS = {
    "mlflow.sklearn": "_builtin_sklearn.py",
    "mlflow.pyfunc.model": "_builtin_pythonmodel.py",
    "mlflow.pyfunc.loaders.code_model": "_builtin_pythonmodel.py",  # models from code
}


class PyfuncError(Exception):
    """Base class of pyfunc's errors (re-exported by ``pyfunc.exceptions``)."""


class SchemaEnforcementError(PyfuncError, ValueError):
    """The input does not fit the model's input signature (MLflow's schema enforcement);
    the message is MLflow's: "Failed to enforce schema of data '...' with schema '...'.
    Error: ..."."""


class InvalidParametersError(SchemaEnforcementError):
    """Params that do not fit the model's params schema; the message is MLflow's:
    "Invalid parameters found: {(name, problem), ...}"."""


class ModelLoadError(PyfuncError):
    """The model's loader module could not be imported, or failed to load the model.

    Re-exported by ``pyfunc.exceptions``; defined here so that a worker process that
    loads this file by path raises the same kind of error without importing pyfunc.
    """


def pyfunc_conf(model_root, mlmodel):
    """The python_function flavor dict of ``mlmodel``; ModelLoadError if it has none."""
    flavors = mlmodel.get("flavors") if isinstance(mlmodel, dict) else None
    conf = flavors.get(FLAVOR_NAME) if isinstance(flavors, dict) else None
    if not isinstance(conf, dict):
        names = ", ".join(sorted(flavors)) if isinstance(flavors, dict) and flavors else "none"
        raise ModelLoadError(
            '{}: Model does not have the "python_function" flavor (flavors: {})'.format(model_root, names)
        )
    return conf


def loader_module_name(conf):
    """The flavor's loader module; MLflow's own when an old file leaves it implied."""
    name = conf.get("loader_module")
    if name:
        return name
    if conf.get("model_code_path"):
        return "mlflow.pyfunc.loaders.code_model"
    return "mlflow.pyfunc.model"


def merge_model_config(saved, overrides, env=None):
    """The model_config passed to the loader (MLflow's load_model, step 9).

    Overrides come from the JSON in ``MLFLOW_PYFUNC_INFERENCE_CONFIG`` and then from the
    caller's dict. Only keys already present in the saved ``config`` are applied; the
    others are ignored with a warning. With no saved config every override is ignored
    and None is returned. With no overrides the saved config is returned as is.
    """
    env = os.environ if env is None else env
    merged_overrides = {}
    env_text = env.get(INFERENCE_CONFIG_ENV)
    if env_text:
        try:
            merged_overrides.update(dict(json.loads(env_text)))
        except (ValueError, TypeError) as e:
            raise ModelLoadError("{}: not a JSON object: {}".format(INFERENCE_CONFIG_ENV, e))
    if overrides:
        if not isinstance(overrides, dict):
            raise ModelLoadError("model_config must be a dict, not {}".format(type(overrides).__name__))
        merged_overrides.update(overrides)
    if not merged_overrides:
        return saved
    if not saved:
        warnings.warn(
            "model_config key(s) {} ignored: the model's python_function flavor has no config "
            "(save the model with a model_config to allow them)".format(", ".join(map(str, merged_overrides))),
            stacklevel=3,
        )
        return None
    ignored = [k for k in merged_overrides if k not in saved]
    if ignored:
        warnings.warn(
            "model_config key(s) {} ignored: not keys of the saved config (allowed: {})".format(
                ", ".join(map(str, ignored)), ", ".join(map(str, saved))
            ),
            stacklevel=3,
        )
    merged = dict(saved)
    merged.update({k: v for k, v in merged_overrides.items() if k in saved})
    return merged


def _mlflow_importable():
    try:
        importlib.import_module("mlflow")
    except ModuleNotFoundError as e:
        # Only MLflow itself missing counts; a broken MLflow install is an error to report.
        return e.name not in (None, "mlflow")
    return True


def _load_sibling(file_name):
    """Imports a module that sits next to this file, by path (works without the package)."""
    module_name = "_pyfunc_" + file_name[:-3].lstrip("_")
    module = sys.modules.get(module_name)
    if module is not None:
        return module
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), file_name)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # before exec: pickled classes may refer to it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _check_python_version(model_root, conf):
    saved = conf.get("python_version")
    running = "{}.{}.{}".format(*sys.version_info[:3])
    if saved is None:
        warnings.warn(
            "{}: the model does not record the Python version it was saved with".format(model_root),
            stacklevel=4,
        )
    elif str(saved).split(".")[:2] != running.split(".")[:2]:
        warnings.warn(
            "{}: the model was saved with Python {}, this is Python {}; it may not load or "
            "predict correctly".format(model_root, saved, running),
            stacklevel=4,
        )


def load_model(model_root, mlmodel, model_config=None, suppress_warnings=False, prefer_builtin=False):
    """Loads the pyfunc model in directory ``model_root`` whose parsed MLmodel is ``mlmodel``.

    ``model_config`` (a dict or None) overrides keys of the flavor's saved ``config``
    (see merge_model_config). Raises ModelLoadError, naming the model directory and
    the loader module, when the model has no python_function flavor, its loader module
    cannot be imported, or its loader fails.

    ``prefer_builtin`` loads MLflow's sklearn and PythonModel models with the built-in
    loaders even when MLflow is importable: the worker processes do, because the loaded
    object never leaves them and importing MLflow costs seconds per worker start.
    Models from code (``model_code_path``) are the exception: their file imports MLflow
    anyway, so an importable MLflow always loads them with its own loader.
    """
    model_root = os.path.abspath(model_root)
    conf = pyfunc_conf(model_root, mlmodel)
    loader_module = loader_module_name(conf)
    if not suppress_warnings:
        _check_python_version(model_root, conf)

    code = conf.get("code")
    if code:
        code_dir = os.path.join(model_root, code)
        # MLflow prepends the code dir on every load and never removes it.
        if not sys.path or sys.path[0] != code_dir:
            sys.path.insert(0, code_dir)
    data = conf.get("data")
    data_path = os.path.join(model_root, data) if data else model_root

    effective_config = merge_model_config(conf.get("config"), model_config)

    module = _import_loader_module(model_root, loader_module, prefer_builtin and not conf.get("model_code_path"))
    loader = getattr(module, "_load_pyfunc", None)
    legacy = loader is None
    if legacy:
        # MLflow < 0.7 loader modules expose the public load_pyfunc(path) of the seed API.
        loader = getattr(module, "load_pyfunc", None)
    if loader is None:
        raise ModelLoadError(
            "{}: loader module '{}' defines neither _load_pyfunc nor load_pyfunc".format(model_root, loader_module)
        )
    try:
        if getattr(module, "_PYFUNC_BUILTIN", False):
            impl = module._load_pyfunc(data_path, effective_config, model_root=model_root, mlmodel=mlmodel)
        elif effective_config and not legacy:
            impl = loader(data_path, effective_config)
        else:
            impl = loader(data_path)
    except ModelLoadError:
        raise
    except Exception as e:
        code_file = conf.get("model_code_path")
        source = os.path.join(data_path, os.path.basename(code_file)) if code_file else data_path
        raise ModelLoadError(
            "{}: loader module '{}' failed to load the model from {}: {}: {}".format(
                model_root, loader_module, source, type(e).__name__, e
            )
        ) from e

    predict_fn = conf.get("predict_fn") or "predict"
    predict_stream_fn = (conf.get("predict_stream_fn") or "predict_stream") if conf.get("streamable") else None
    return PyFuncModel(
        mlmodel, impl, predict_fn, predict_stream_fn, model_root=model_root, model_config=effective_config
    )


def _import_loader_module(model_root, loader_module, prefer_builtin=False):
    builtin = _BUILTIN_LOADERS.get(loader_module)
    try:
        if builtin is not None and (prefer_builtin or not _mlflow_importable()):
            return _load_sibling(builtin)
        return importlib.import_module(loader_module)
    except Exception as e:
        hint = ""
        if isinstance(e, ModuleNotFoundError) and (e.name or "").split(".")[0] == "mlflow":
            hint = " (this loader module is part of MLflow; install mlflow to load the model)"
        raise ModelLoadError(
            "{}: cannot import loader module '{}': {}: {}{}".format(model_root, loader_module, type(e).__name__, e, hint)
        ) from e


_COPY_ON_WRITE = []


def _own_frame(data):
    """``data`` if it is not a DataFrame; else a DataFrame the model may change without
    changing ``data`` (MLflow's enforcement builds a new one): a shallow copy under
    copy-on-write (always on in pandas >= 3), a deep copy otherwise."""
    pd = sys.modules.get("pandas")
    if pd is None or not isinstance(data, pd.DataFrame):
        return data
    if not _COPY_ON_WRITE:
        major = int(pd.__version__.split(".")[0])
        _COPY_ON_WRITE.append(major >= 3 or pd.options.mode.copy_on_write is True)
    return data.copy(deep=not _COPY_ON_WRITE[0])


_ACCEPTS_PARAMS = {}


def _accepts_params(fn):
    """True if ``fn`` has a parameter literally named ``params`` that is not ``**params``.

    Cached per function (bound methods by their function and instance): inspecting a
    signature costs tens of microseconds, which a worker would pay on every batch.
    """
    key = (getattr(fn, "__func__", fn), id(getattr(fn, "__self__", None)))
    cached = _ACCEPTS_PARAMS.get(key)
    if cached is None:
        cached = _ACCEPTS_PARAMS[key] = _inspect_accepts_params(fn)
    return cached


def _inspect_accepts_params(fn):
    try:
        param = inspect.signature(fn).parameters.get("params")
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return param is not None and param.kind != inspect.Parameter.VAR_KEYWORD


def apply_params_schema(params, schema, context=""):
    """``params`` (a dict or None) under a params schema (a list of {name, default, ...}):
    unknown keys are dropped with a warning naming them, missing keys take their
    defaults, values are converted to their spec's type as MLflow converts them, and
    values that do not fit raise InvalidParametersError (MLflow's "Invalid parameters
    found: ...")."""
    params = {str(k): v for k, v in (params or {}).items()}
    allowed = [spec["name"] for spec in schema]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        warnings.warn(
            "{}params {} ignored: not in the model's params schema ({})".format(context, unknown, ", ".join(allowed)),
            stacklevel=4,
        )
    schema_module = _load_sibling("_schema.py")
    try:
        converted = schema_module.enforce_params(params, schema)
    except schema_module.ParamsError as e:
        raise InvalidParametersError(str(e)) from None
    out = {k: converted.get(k, v) for k, v in params.items() if k in allowed}
    for spec in schema:
        out.setdefault(spec["name"], spec.get("default"))
    return out


class PyFuncModel:
    """A loaded pyfunc model: ``predict(data, params=None)`` on the loader's result.

    ``metadata`` is the MLmodel dict. The wrapped object is whatever the loader module
    returned; only its ``predict_fn`` method (``predict`` unless the flavor says
    otherwise) is called.
    """

    def __init__(self, metadata, model_impl, predict_fn="predict", predict_stream_fn=None, model_root=None,
                 model_config=None):
        if not hasattr(model_impl, predict_fn):
            raise ModelLoadError("Model implementation is missing required {} method.".format(predict_fn))
        self._metadata = metadata
        self._model_impl = model_impl
        self._predict_fn = getattr(model_impl, predict_fn)
        self._predict_stream_fn = getattr(model_impl, predict_stream_fn, None) if predict_stream_fn else None
        self._model_root = model_root
        self._model_config = model_config
        self._input_specs_cache = None
        self._params_schema_cache = None

    @property
    def metadata(self):
        """The MLmodel, as a dict."""
        return self._metadata

    @property
    def model_root(self):
        """The model directory it was loaded from."""
        return self._model_root

    @property
    def _conf(self):
        return (self._metadata.get("flavors") or {}).get(FLAVOR_NAME) or {}

    @property
    def model_config(self):
        """The model_config in effect: the saved ``config`` with the load-time overrides."""
        if self._model_config is not None:
            return self._model_config
        return self._conf.get("config") or {}

    @property
    def loader_module(self):
        return self._conf.get("loader_module")

    @property
    def model_id(self):
        return self._metadata.get("model_id")

    def use_parsed_schema(self, schema):
        """Takes the signature as the caller parsed it, {"inputs": [specs] or None,
        "params": [specs] or None} (a worker's load message), instead of parsing the
        MLmodel's JSON text again."""
        inputs, params = schema.get("inputs"), schema.get("params")
        if isinstance(inputs, list) or inputs is None:
            self._input_specs_cache = (inputs or None,)
        if isinstance(params, list) or params is None:
            self._params_schema_cache = (None if params is None else
                                         [s for s in params if isinstance(s, dict) and "name" in s],)

    def _params_schema(self):
        """The signature's params specs (parsed once), or None."""
        if self._params_schema_cache is None:
            self._params_schema_cache = (_load_sibling("_schema.py").parse_params_schema(self._metadata),)
        return self._params_schema_cache[0]

    def _input_specs(self):
        """The signature's input specs (parsed once), or None."""
        if self._input_specs_cache is None:
            schema = _load_sibling("_schema.py")
            try:
                self._input_specs_cache = (schema.parse_input_schema(self._metadata),)
            except schema.SchemaError as e:
                raise SchemaEnforcementError(str(e)) from None
        return self._input_specs_cache[0]

    def _signature_from_type_hints(self):
        """True for a signature MLflow inferred from predict's type hints: MLflow checks
        such a model's data against the hints in predict, not against the signature."""
        return self._metadata.get("is_signature_from_type_hint") is True

    def fits_input_schema(self, df):
        """True when the DataFrame ``df`` needs no schema enforcement: exactly the
        signature's columns and dtypes, or no signature to enforce. A caller scoring many
        frames of one layout (the worker) checks one and tells predict_table."""
        if self._signature_from_type_hints():
            return True
        specs = self._input_specs()
        return specs is None or _load_sibling("_schema.py").fits_input_schema(df, specs)

    def predict_table(self, df, params=None, as_input=None, exact=False, fits_schema=False):
        """predict for an input that arrived as a table of typed columns (a worker's
        frame) rather than as the caller's object.

        ``df``: the table as a DataFrame. ``as_input``: what makes of it what predict is
        given (arrays, a dict, records: the kind of object the caller passed); None gives
        the DataFrame itself. ``exact``: the column types are the caller's own; without it
        they came from a text codec, whose numbers are 64-bit, and are first cast to the
        signature's int32/float32 columns or tensor dtype, as MLflow's scoring server casts
        request columns (see _schema.narrow_wire_types). ``fits_schema``: the caller found
        that ``df`` fits the input schema (fits_input_schema), which is then not enforced.
        """
        if not fits_schema and not exact:
            df = _load_sibling("_schema.py").narrow_wire_types(df, self._input_specs())
        data = df if as_input is None else as_input(df)
        return self._predict(data, params, enforce_schema=not fits_schema)

    def predict_request(self, request, params=None):
        """predict for a scoring request's JSON body whose data has no table form: the
        ndarrays MLflow's server makes of ``{"instances"|"inputs": nested arrays}``, in the
        tensor signature's dtypes (see _schema.tensors_from_request), or the DataFrame it
        makes of ``{"dataframe_split"|"dataframe_records": value}`` whose cells hold arrays
        or objects (see _schema.frame_from_request); then enforced as predict enforces."""
        schema = _load_sibling("_schema.py")
        if "dataframe_split" in request or "dataframe_records" in request:
            data = schema.frame_from_request(request, self._input_specs())
        else:
            data = schema.tensors_from_request(request, self._input_specs())
        return self._predict(data, params, enforce_schema=True)

    def predict_parquet(self, data):
        """predict for a Parquet file's bytes (a scoring server's
        ``application/vnd.apache.parquet`` body): the DataFrame pandas.read_parquet makes
        of it, enforced as predict enforces; MLflow passes no params with it."""
        frame = _load_sibling("_schema.py").frame_from_parquet(data)
        return self._predict(frame, None, enforce_schema=True)

    def _enforce_input_schema(self, data):
        if self._signature_from_type_hints():
            return data
        specs = self._input_specs()
        if specs is None:
            return data
        schema = _load_sibling("_schema.py")
        try:
            return schema.enforce_input_schema(data, specs)
        except schema.SchemaError as e:
            raise SchemaEnforcementError(str(e)) from None

    def _check_params(self, params):
        """MLflow's params rules: without a params schema in the signature, params are
        ignored; with one, see apply_params_schema."""
        schema = self._params_schema()
        if schema is None:
            if params in (None, {}):
                return params
            warnings.warn(
                "params ignored: the model signature defines no params schema (params: {})".format(
                    sorted(params) if isinstance(params, dict) else type(params).__name__
                ),
                stacklevel=3,
            )
            return {}
        if params is not None and not isinstance(params, dict):
            raise TypeError("params must be a dict, not {}".format(type(params).__name__))
        return apply_params_schema(params, schema)

    def predict(self, data, params=None):
        """Calls the model's predict function on ``data``.

        With an input signature, ``data`` is first enforced as MLflow enforces it
        (``_schema.py``): a column signature gives a DataFrame of exactly its columns, in
        its order, each converted to its type where that is safe; a tensor signature
        checks dtype and shape. A mismatch raises SchemaEnforcementError. A signature
        inferred from type hints (``is_signature_from_type_hint``) is not enforced here,
        as in MLflow: the PythonModel's predict checks the data. As in MLflow, a model
        with a column signature gets a DataFrame of its own: changing it (adding a
        column, setting values) leaves the caller's ``data`` as it was.
        ``params`` follow MLflow's params schema rules (see _check_params), then are
        passed only when the predict function has a parameter named ``params`` (not
        ``**params``); otherwise they are dropped with a warning, as MLflow does.
        """
        enforced = self._enforce_input_schema(data)
        if enforced is data and not self._signature_from_type_hints() and self._input_specs() is not None:
            enforced = _own_frame(data)
        return self._predict(enforced, params, enforce_schema=False)

    def _predict(self, data, params, enforce_schema):
        """predict; ``enforce_schema=False`` when the caller knows that ``data`` fits."""
        if enforce_schema:
            data = self._enforce_input_schema(data)
        params = self._check_params(params)
        if _accepts_params(self._predict_fn):
            return self._predict_fn(data, params=params)
        if params:
            warnings.warn(
                "params {} ignored: the model's predict function does not accept params".format(sorted(params)),
                stacklevel=2,
            )
        return self._predict_fn(data)

    def predict_stream(self, data, params=None):
        if self._predict_stream_fn is None:
            raise ModelLoadError("This model does not support predict_stream method.")
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        if _accepts_params(self._predict_stream_fn):
            return self._predict_stream_fn(data, params=params)
        return self._predict_stream_fn(data)

    def unwrap_python_model(self):
        """The user's PythonModel object (only for ``mlflow.pyfunc.model`` models)."""
        python_model = getattr(self._model_impl, "python_model", None)
        if python_model is None:
            raise ModelLoadError(
                "Unable to retrieve base model object from pyfunc: the loaded model "
                "(loader module '{}') is not a PythonModel".format(self.loader_module)
            )
        return python_model

    def get_raw_model(self):
        """The underlying model, if the loader's wrapper exposes ``get_raw_model``."""
        if hasattr(self._model_impl, "get_raw_model"):
            return self._model_impl.get_raw_model()
        raise NotImplementedError("`get_raw_model` is not implemented by the underlying model")

    def __repr__(self):
        parts = ["loader_module={!r}".format(self.loader_module)]
        for key in ("run_id", "artifact_path"):
            if self._metadata.get(key) is not None:
                parts.append("{}={!r}".format(key, self._metadata[key]))
        if self._model_root:
            parts.append("path={!r}".format(self._model_root))
        return "PyFuncModel({})".format(", ".join(parts))
