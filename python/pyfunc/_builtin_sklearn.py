"""Stand-in for ``mlflow.sklearn``'s pyfunc loader, used when MLflow is not installed.

Loads scikit-learn models saved by ``mlflow.sklearn.save_model`` / ``log_model`` in any
of MLflow's serialization formats (``pickle``, ``cloudpickle``, ``skops``), including
old models whose python_function flavor points ``data`` at the pickle file itself.
The flavor configuration comes from the MLmodel dict the loading routine passes in;
nothing here parses YAML.

Loaded by file path from ``_loading.py`` (never imported as part of the package), so
it needs only the standard library plus what the model itself needs.
"""

import os
import pickle

# Tells _loading to call _load_pyfunc with the MLmodel dict and model root.
_PYFUNC_BUILTIN = True

SERIALIZATION_FORMATS = ("pickle", "cloudpickle", "skops")


def pickle_deserialization_allowed(env=None):
    """MLflow's MLFLOW_ALLOW_PICKLE_DESERIALIZATION gate (default true)."""
    env = os.environ if env is None else env
    value = env.get("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true").strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise ValueError("MLFLOW_ALLOW_PICKLE_DESERIALIZATION: expected true or false, found {!r}".format(value))


def _load_pyfunc(data_path, model_config=None, model_root=None, mlmodel=None):
    flavors = (mlmodel or {}).get("flavors") or {}
    sk_conf = flavors.get("sklearn")
    if isinstance(sk_conf, dict):
        serialization_format = sk_conf.get("serialization_format") or "pickle"
        trusted_types = sk_conf.get("skops_trusted_types")
    else:
        # MLflow assumes pickle (with a warning) when the sklearn flavor is missing.
        serialization_format, trusted_types = "pickle", None

    if os.path.isfile(data_path):
        path = data_path  # old models: `data: model.pkl` names the file itself
    else:
        model_path = (flavors.get("python_function") or {}).get("model_path")
        if not model_path:
            raise ValueError("the python_function flavor has no model_path (the scikit-learn model file)")
        path = os.path.join(data_path, model_path)
    return _SklearnModelWrapper(load_estimator(path, serialization_format, trusted_types))


def load_estimator(path, serialization_format, skops_trusted_types=None):
    """Deserializes an estimator file written in ``serialization_format``."""
    if serialization_format not in SERIALIZATION_FORMATS:
        raise ValueError(
            "unrecognized serialization format {!r}; expected one of {}".format(
                serialization_format, ", ".join(SERIALIZATION_FORMATS)
            )
        )
    # As in MLflow, every format (skops too: its trusted list comes from the model
    # itself) can run code from the model file, so all are behind the same gate.
    if not pickle_deserialization_allowed():
        raise PermissionError(
            "deserializing this model is disallowed because MLFLOW_ALLOW_PICKLE_DESERIALIZATION "
            "is not 'true'; loading a model can execute arbitrary code from its files. Only load "
            "models from trusted sources."
        )
    if serialization_format == "skops":
        import skops.io

        return skops.io.load(path, trusted=skops_trusted_types)
    with open(path, "rb") as f:
        if serialization_format == "cloudpickle":
            import cloudpickle

            return cloudpickle.load(f)
        return pickle.load(f)


class _SklearnModelWrapper:
    """What mlflow.sklearn's loader returns: ``predict(data, params=None)`` ignores params;
    the estimator's optional prediction methods are exposed so that a flavor's
    ``predict_fn: predict_proba`` finds them."""

    _OPTIONAL_METHODS = ("predict_proba", "predict_log_proba", "predict_joint_log_proba", "score")

    def __init__(self, sklearn_model):
        self.sklearn_model = sklearn_model
        for name in self._OPTIONAL_METHODS:
            fn = getattr(sklearn_model, name, None)
            if fn is not None:
                setattr(self, name, fn)

    def get_raw_model(self):
        return self.sklearn_model

    def predict(self, data, params=None):
        return self.sklearn_model.predict(data)
