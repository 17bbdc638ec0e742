// Batching policy: whether a model's input may be split into batches, or concurrent
// requests merged into one predict call.
//
// Splitting and merging are correct only when each output row depends on its input row
// alone; a model that normalizes, ranks or looks across rows (x - x.mean(), a time
// series) answers differently when its input is cut up or joined with other rows. The
// scoring server (server.h) and the batch scorer (batch_scorer.h) both ask DecideBatching.
#ifndef PYFUNC_BATCHING_H_
#define PYFUNC_BATCHING_H_

#include <string>

#include "pyfunc/model_spec.h"
#include "pyfunc/status.h"

namespace pyfunc {

enum class BatchingMode {
  // Batch models known to predict each row on its own: the python_function flavor's
  // `batching` key ("rows" or "off", written by pyfunc.save_model(..., batching=)) when
  // present, else the built-in loaders of sklearn, xgboost, lightgbm and catboost. Every
  // other model gets each request (or the whole input) in one predict call, as from MLflow.
  kAuto,
  kRows,  // batch, whatever the model (the user vouches that rows are independent)
  kOff,   // never batch
};

// What DecideBatching chose for a model, and why (for logs and /metrics).
struct BatchingDecision {
  bool merge = false;
  std::string reason;
};
BatchingDecision DecideBatching(const ModelSpec& spec, BatchingMode requested);

// "auto", "rows" or "off"; InvalidArgument otherwise.
Result<BatchingMode> ParseBatchingMode(const std::string& name);

}  // namespace pyfunc

#endif  // PYFUNC_BATCHING_H_
