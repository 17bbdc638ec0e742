// Batch scoring of a file: CSV, Parquet, Arrow IPC or an MLflow scoring request (JSON)
// in; MLflow's {"predictions": ...}, CSV, Parquet or Arrow IPC out; through a model's
// worker processes.
//
//   pyfunc::LoadOptions load;
//   load.workers = 2;
//   pyfunc::ScoreFileOptions options;
//   options.input = "data.csv";
//   options.output = "predictions.json";
//   auto summary = pyfunc::ScoreFile("path/to/model", load, options);
//
// The workers start while the input's first batch is read and parsed (only the MLmodel
// is needed for that). The input is read in batches of `batch_rows` rows (CSV streamed;
// Parquet by row group, never a batch across two; Arrow IPC by record batch; a JSON
// request parsed once and split) on a thread of its own, ahead of the scoring,
// into a queue bounded in bytes, so memory stays bounded however large the input is.
// `workers` threads each score one batch at a time, and the output is written in input
// order. A model whose rows may depend on each other (see batching.h) gets the whole
// input in one predict call, as from MLflow. The output file is written to a temporary
// sibling and renamed into place at the end: a failed run leaves no partial file.
//
// Parquet and Arrow IPC need a build with Arrow C++ (CMake's PYFUNC_WITH_ARROW); in one
// without, such a file is InvalidArgument saying so.
//
// Errors: NotFound for a missing input; InvalidArgument for malformed input (the
// message names the input and its line, JSON path, row group or column) or options; an error of a batch's predict
// names its rows ("rows 1000-1999: ..."); the model's load errors as Model::Load's.
#ifndef PYFUNC_BATCH_SCORER_H_
#define PYFUNC_BATCH_SCORER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pyfunc/batching.h"
#include "pyfunc/model.h"
#include "pyfunc/status.h"

namespace pyfunc {

struct ScoreFileOptions {
  std::string input;   // a path; empty or "-": standard input
  std::string output;  // a path, written atomically; empty or "-": standard output
  // "csv", "parquet", "arrow" (an IPC file or stream) or "json" (an MLflow scoring
  // request); empty: by the name's extension (.csv; .parquet, .pq, .parq; .arrow,
  // .arrows, .feather, .ipc), else "json".
  std::string input_format;
  // "json" ({"predictions": ...} as MLflow writes it), "csv", "parquet", "arrow" (the IPC
  // file format) or "arrow-stream"; empty: "parquet", "arrow" or "arrow-stream" by the
  // output's extension as above, else "json" (as MLflow writes JSON whatever the name).
  // A single unnamed prediction column is named "prediction" in csv, parquet and arrow.
  std::string output_format;
  // Input columns (an id, a key) written beside the predictions, in front of them, in
  // csv, parquet or arrow output; each batch's model output must have a row per input
  // row. They are not given to the model, unless its signature names them.
  std::vector<std::string> carry_columns;
  int64_t batch_rows = 65536;
  BatchingMode batching = BatchingMode::kAuto;
  // Called from the scoring thread now and then with the rows written so far, the
  // input's bytes read and its size (0 when unknown, e.g. a pipe).
  std::function<void(int64_t rows, int64_t bytes_read, int64_t bytes_total)> progress;
};

struct ScoreFileSummary {
  int64_t rows = 0;     // predictions written
  int64_t batches = 0;  // predict calls
  // Whether the input was split into batches, and why (see DecideBatching).
  BatchingDecision batching;
};

// Scores the input with the model in directory `model_dir` (a model URI must be resolved
// first: model_uri.h), loaded with `load`.
Result<ScoreFileSummary> ScoreFile(const std::string& model_dir, const LoadOptions& load,
                                   const ScoreFileOptions& options);

}  // namespace pyfunc

#endif  // PYFUNC_BATCH_SCORER_H_
