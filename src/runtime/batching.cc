#include "pyfunc/batching.h"

namespace pyfunc {

Result<BatchingMode> ParseBatchingMode(const std::string& name) {
  if (name == "auto") return BatchingMode::kAuto;
  if (name == "rows") return BatchingMode::kRows;
  if (name == "off") return BatchingMode::kOff;
  return Status::InvalidArgument("batching must be auto, rows or off, not '" + name + "'");
}

BatchingDecision DecideBatching(const ModelSpec& spec, BatchingMode requested) {
  if (requested == BatchingMode::kRows) return {true, "--batching rows"};
  if (requested == BatchingMode::kOff) return {false, "--batching off"};
  const Value* flavor = spec.flavor(kPyFuncFlavor);
  if (const Value* key = flavor ? flavor->Find("batching") : nullptr) {
    if (key->is_string() && key->as_string() == "rows") return {true, "the python_function flavor sets batching: rows"};
    if (key->is_string() && key->as_string() == "off") return {false, "the python_function flavor sets batching: off"};
    return {false, "the python_function flavor's batching key is neither rows nor off"};
  }
  Result<PyFuncFlavor> pf = spec.python_function();
  const std::string loader = pf.ok() ? pf->loader_module : "";
  for (const char* known : {"mlflow.sklearn", "mlflow.xgboost", "mlflow.lightgbm", "mlflow.catboost"}) {
    if (loader == known) return {true, "the " + loader + " loader predicts each row on its own"};
  }
  return {false, "rows of a " + (loader.empty() ? std::string("python_function") : loader) +
                     " model may depend on each other"};
}

}  // namespace pyfunc
