"""pyfunc: load, save and score pyfunc (MLflow ``python_function``) models."""

from pyfunc._core import __version__
from pyfunc.exceptions import (
    AlreadyExistsError,
    InvalidArgumentError,
    ModelLoadError,
    NotFoundError,
    PyfuncError,
    PyfuncIOError,
    SchemaEnforcementError,
)

# --- model format API (the seed's functions, pyfunc._flavor) -----------------------

from pyfunc._flavor import (
    CODE,
    DATA,
    ENV,
    FLAVOR_NAME,
    MAIN,
    PY_VERSION,
    add_to_model,
    get_module_loader_src,
    load_pyfunc,
    save_model,
)
from pyfunc._loading import PyFuncModel
from pyfunc.model import Model

# --- tracking API (pyfunc.tracking) -----------------------------------------------

from pyfunc.tracking import (
    ActiveRun,
    active_run,
    end_run,
    get_run,
    get_tracking_uri,
    log_artifact,
    log_artifacts,
    log_input,
    log_metric,
    log_metrics,
    log_model,
    log_param,
    log_params,
    search_runs,
    set_experiment,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)

from pyfunc.spark import spark_udf  # noqa: E402  (pyfunc.spark; pyspark is imported only when called)
