// Model: a pyfunc model loaded once and scored many times from C++.
//
//   pyfunc::LoadOptions options;
//   options.env_manager = pyfunc::EnvManager::kVirtualenv;
//   options.workers = 2;
//   auto model = pyfunc::Model::Load("path/to/model", options);
//   if (!model.ok()) { ...model.status().message()... }
//   auto prediction = model->Predict(table);
//
// Load prepares the model's environment (see environment.h) and starts `workers`
// Python worker processes in it, each of which loads the model. Predict sends the
// Table to an idle worker through shared memory; the worker builds one pandas
// DataFrame, calls the model's predict once and returns its output the same way.
//
// Failures: a model that raises fails only that call (ModelError, with the Python
// exception type and message); a worker that crashes or exceeds the predict timeout
// fails its call (Unavailable / DeadlineExceeded). A worker that dies, in a call or
// while idle, is noticed at once (its socket closes) and replaced in the background;
// calls go to the other workers meanwhile, and wait only when none is running. Destroying the last copy of a Model
// stops its workers; no process or shared memory outlives it (memory is passed as memfds, so nothing is left in
// /dev/shm even when this process is killed, and workers exit when their parent dies).
//
// Thread safety: Predict may be called from many threads at once; each call waits for
// an idle worker, so at most `workers` batches run at a time.
#ifndef PYFUNC_MODEL_H_
#define PYFUNC_MODEL_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "pyfunc/environment.h"
#include "pyfunc/model_spec.h"
#include "pyfunc/prediction.h"
#include "pyfunc/status.h"
#include "pyfunc/table.h"
#include "pyfunc/value.h"

namespace pyfunc {

struct LoadOptions {
  // Where the model's Python runs (environment.h). Default: the local interpreter.
  EnvManager env_manager = EnvManager::kLocal;
  // The local interpreter; empty: $PYFUNC_PYTHON, else python3 on PATH.
  std::string python;
  // Cache directory of built environments; empty: the default (environment.h).
  std::string env_root;
  // Worker processes, each holding the model in memory: up to this many batches are
  // scored in parallel.
  int workers = 1;
  // Starting a worker and loading the model, per worker.
  std::chrono::milliseconds load_timeout{std::chrono::minutes(5)};
  // One predict call; a worker that exceeds it is killed and replaced.
  std::chrono::milliseconds predict_timeout{std::chrono::seconds(60)};
  // Overrides of the flavor's saved `config` (only keys it has are applied, as MLflow).
  Value model_config;
  // Threads each worker's native libraries (OpenBLAS, MKL, OpenMP, numexpr) may use:
  // sets OMP_NUM_THREADS and its siblings in the worker's environment unless they are
  // already set there. 0: the usable cores (UsableCores) divided among the workers. Workers that
  // each start a thread per core oversubscribe the machine, and idle BLAS threads spin.
  int threads_per_worker = 0;
  // Suppress progress messages (environment creation) on stderr.
  bool quiet = false;
  // Called for each worker started (replacements too), on the thread starting it, once
  // the worker has imported pandas and before it loads the model, with that pandas'
  // version ("2.3.3"). The batch scorer learns there how pandas would read the input's
  // numbers (csv.h, FloatRounding) while the model is still loading.
  std::function<void(const std::string& pandas_version)> on_worker_started;
};

// Per-call options of Model::Predict.
struct PredictOptions {
  // Busy-poll instead of sleeping for up to this long: the caller while the worker
  // predicts, and the worker, after answering, for the next request (when requests
  // have been arriving within this window). A sleeping thread costs a wake-up of tens
  // of microseconds on each side of a round trip, which dominates a small model's
  // latency; polling burns a core meanwhile, so use it only when the machine has one to
  // spare (pyfunc serve does so while no request waits). 0: sleep.
  std::chrono::microseconds busy_poll{0};
  // The Python object predict is given: a DataFrame of the table, or (as MLflow's
  // server passes `inputs`/`instances` to a model without a column signature) a numpy
  // array, a dict of arrays, a list of records or a scalar made from it.
  InputShape input_shape = InputShape::kDataFrame;
  // Whether the table's column types are the caller's own (a Python caller's DataFrame
  // or arrays): predict gets them as they are and the model's signature enforces them,
  // refusing an int64 column for an int32 input as MLflow does. false: the table came
  // from a text codec (CSV, JSON), whose numbers are 64-bit, and the worker first casts
  // them to the signature's narrower types, as MLflow's server casts request columns.
  bool exact_types = false;
};

class Model {
 public:
  // `model_dir` is a local model directory (or its MLmodel file); callers resolve model
  // URIs (runs:/, models:/, file://) with ResolveModelUri (model_uri.h) first, and a URI
  // here is InvalidArgument. NotFound / InvalidArgument for a missing or malformed model;
  // LoadFailed when the model's loader raised; other codes from environment preparation.
  static Result<Model> Load(const std::string& model_dir, const LoadOptions& options = {});

  // Scores one batch. `params` (a map, or null) is passed to predict as MLflow does.
  Result<Prediction> Predict(const Table& input, const Value& params = Value(),
                             const PredictOptions& options = {}) const;

  const ModelSpec& spec() const;
  const std::string& path() const;  // the local model directory
  const std::string& environment_description() const;
  // The pandas version the model's workers import ("2.3.3").
  const std::string& pandas_version() const;
  int num_workers() const;
  // Workers running now: num_workers() less those that died and are being replaced.
  int live_workers() const;
  // The longest one Predict call takes before it fails with DeadlineExceeded.
  std::chrono::milliseconds predict_timeout() const;
  // Workers started to replace ones that died or timed out, since Load.
  int64_t worker_restarts() const;

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

 private:
  struct Impl;
  explicit Model(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// The cores this process may use: its CPU affinity, capped by a cgroup CPU quota (a
// container's CPU limit; the machine's core count is not what a pod limited to 2 CPUs
// may use). At least 1. Worker threads, `serve -w 0` and the CSV reader size by it.
int UsableCores();

}  // namespace pyfunc

#endif  // PYFUNC_MODEL_H_
