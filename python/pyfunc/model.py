"""Model: the MLmodel configuration of a model directory (the seed's ``mlflow.models.Model``).

Fields are plain attributes, as in MLflow: ``artifact_path``, ``run_id``,
``utc_time_created``, ``flavors``, ``model_uuid`` and any other key an MLmodel file
holds (unknown keys are kept and written back; names starting with ``_`` are not
written). Reading, validating and writing go through the native core, so a Model
written here is byte-for-byte what MLflow writes for the same fields.
"""

import datetime
import os
import tempfile

from pyfunc import _core

MLMODEL_FILE_NAME = "MLmodel"

# Keys MLflow leaves out of the MLmodel when their value is None. Every other field
# (model_uuid, utc_time_created, flavors, and 3.x's model_id/prompts) is always written.
_OMIT_IF_NONE = frozenset(
    [
        "artifact_path",
        "run_id",
        "mlflow_version",
        "signature",
        "saved_input_example_info",
        "metadata",
        "model_size_bytes",
        "resources",
        "env_vars",
        "auth_policy",
        "databricks_runtime",
        "is_signature_from_type_hint",
        "type_hint_from_example",
    ]
)


class Model:
    """An MLmodel document.

    ``Model()`` starts like MLflow's: no flavors, a fresh ``model_uuid`` and
    ``utc_time_created`` of now (a ``datetime`` passed in is stored as MLflow writes it).
    """

    def __init__(self, artifact_path=None, run_id=None, utc_time_created=None, flavors=None, **kwargs):
        fresh = _core.new_model()
        self.artifact_path = artifact_path
        self.run_id = run_id
        self.utc_time_created = _time_string(utc_time_created) if utc_time_created is not None else fresh["utc_time_created"]
        self.flavors = dict(flavors) if flavors is not None else {}
        kwargs.setdefault("model_uuid", fresh["model_uuid"])
        self.__dict__.update(kwargs)

    # --- flavors -------------------------------------------------------------------------

    def add_flavor(self, name, **params):
        """Adds (or replaces) flavor ``name`` with configuration ``params``; returns self."""
        self.flavors[name] = params
        return self

    def get_flavor(self, name):
        return self.flavors.get(name)

    # --- dict / YAML ---------------------------------------------------------------------

    def to_dict(self):
        """The MLmodel as a dict: every public attribute, None-valued optional keys left out."""
        out = {}
        for key, value in self.__dict__.items():
            if key.startswith("_") or (value is None and key in _OMIT_IF_NONE):
                continue
            out[key] = _time_string(value) if key == "utc_time_created" and value is not None else value
        return out

    @classmethod
    def from_dict(cls, model_dict):
        """A Model of an MLmodel dict (e.g. from ``_core.read_model``); the dict is copied."""
        d = dict(model_dict)
        d.setdefault("model_uuid", None)  # MLflow re-emits a missing model_uuid as null
        model = cls.__new__(cls)
        model.artifact_path = None
        model.run_id = None
        model.utc_time_created = None
        model.flavors = {}
        model.__dict__.update(d)
        return model

    def to_yaml(self, stream=None):
        """The MLmodel text as MLflow writes it (``yaml.safe_dump``, sorted keys).

        The dict is validated first: InvalidArgumentError names the bad field."""
        text = _core.model_to_yaml(self.to_dict())
        if stream is not None:
            stream.write(text)
        return text

    def __str__(self):
        return self.to_yaml()

    def __repr__(self):
        return "Model(flavors={}, run_id={!r}, artifact_path={!r})".format(
            sorted(self.flavors), self.run_id, self.artifact_path
        )

    def __eq__(self, other):
        return isinstance(other, Model) and self.to_dict() == other.to_dict()

    # --- files -----------------------------------------------------------------------------

    def save(self, path):
        """Writes the MLmodel to ``path`` (a file path, or an existing model directory),
        atomically: a temporary sibling renamed into place."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, MLMODEL_FILE_NAME)
        text = self.to_yaml()
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path):
        """Reads a model directory's MLmodel (or an MLmodel file).

        NotFoundError if missing; InvalidArgumentError (file, line, field) if invalid."""
        return cls.from_dict(_core.read_model(os.fspath(path)))


def _time_string(value):
    if isinstance(value, datetime.datetime):
        return str(value)  # "YYYY-MM-DD HH:MM:SS.ffffff", as MLflow writes it
    return value


def model_to_dict(model):
    """The MLmodel dict of ``model``: a pyfunc Model, an ``mlflow.models.Model`` (or any
    object with ``to_dict()``), a dict, or None (a new model)."""
    if model is None:
        return Model().to_dict()
    if isinstance(model, dict):
        return dict(model)
    if hasattr(model, "to_dict"):
        return model.to_dict()
    raise TypeError("expected a Model, an mlflow.models.Model or a dict, not {}".format(type(model).__name__))


def update_model(model, model_dict):
    """Puts ``model_dict`` (the result of a core call) back into the caller's ``model``
    object and returns that object (a new Model when ``model`` is None or a dict)."""
    if model is None or isinstance(model, dict):
        return Model.from_dict(model_dict)
    if isinstance(model, Model):
        for key in [k for k in model.__dict__ if not k.startswith("_")]:
            del model.__dict__[key]
        model.__dict__.update(Model.from_dict(model_dict).__dict__)
        return model
    # An mlflow.models.Model: only the flavors change (add_to_model adds one).
    for name, conf in model_dict.get("flavors", {}).items():
        if model.flavors.get(name) != conf:
            model.add_flavor(name, **conf)
    return model
