// Batcher: dynamic batching of prediction requests in front of a predict function.
//
//   pyfunc::Batcher batcher([&](const Table& t, const Value& p) { return model.Predict(t, p); },
//                           {.dispatchers = model.num_workers()});
//   BatchedResult r = batcher.Predict(table, params, deadline);
//
// Requests wait in one bounded FIFO queue. `dispatchers` threads each take the oldest
// queued request together with every later queued request it may be merged with, up to
// `max_batch_rows` rows, concatenate them (Table::Concat) into ONE table, call the
// predict function once and split the output back per request (Table::Slice).
//
// Policy:
//   * Work-conserving: a dispatcher that is free takes what is queued at once; a lone
//     request never waits for company. With `run_inline`, when nothing is queued and
//     a predict call is free, Predict runs the request on the caller's thread (no
//     hand-off to a dispatcher and back); at most `dispatchers` predict calls run at
//     once either way. With `max_batch_delay` > 0 a dispatcher waits up
//     to that long after the oldest request's arrival for more rows, unless the batch
//     is already full.
//   * Merged only when the params (compared as JSON), the input shape and the column
//     names and types are identical; others stay queued in order and form their own batches. The oldest
//     request is always in the next batch, so nothing starves.
//   * A request larger than `max_batch_rows` runs alone, never split.
//   * Every request gets exactly its own rows back. That requires the model to return
//     one output row per input row. When a merged batch's output has a different row
//     count, the batch is re-run request by request and merging is switched off for the
//     lifetime of the Batcher (batching_disabled()): such models (aggregations, fixed-
//     size outputs) are served one request per predict call. A model whose output has
//     the right count by coincidence but is not row-aligned cannot be detected: serve
//     it with max_batch_rows = 1, which disables merging.
//   * When a merged batch fails with ModelError (the model raised), each request is
//     re-run alone, so only the request that causes the error gets it. Other failures
//     (a worker that died: Unavailable, a predict timeout: DeadlineExceeded) fail every
//     request of that batch, as the runtime fails its in-flight batch.
//
// Failures of Predict: Unavailable when the queue holds `max_queue` requests or the
// batcher is shutting down; DeadlineExceeded when `deadline` passes first — the
// request is then removed from the queue, or, when its batch is already running, its
// share of the result is discarded: a request is completed exactly once.
//
// Thread safety: Predict may be called from any number of threads.
#ifndef PYFUNC_BATCHER_H_
#define PYFUNC_BATCHER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "pyfunc/prediction.h"
#include "pyfunc/status.h"
#include "pyfunc/table.h"
#include "pyfunc/value.h"

namespace pyfunc {

struct BatcherOptions {
  // Threads calling the predict function concurrently. Set it to the model's worker
  // count: more only queue inside Model::Predict, fewer leave workers idle.
  int dispatchers = 1;
  // Largest merged batch, in rows. Larger batches amortize the per-call cost of
  // Python (DataFrame construction, predict dispatch) but delay the requests at their
  // end. 1 disables merging.
  int64_t max_batch_rows = 1024;
  // Extra time a dispatcher may wait for more requests after the oldest queued one
  // arrived. 0 (default): never wait; batches form only from what queues up while
  // every worker is busy, which is optimal for throughput and latency on a saturated
  // server. A small delay helps a lightly loaded server with costly predict calls.
  std::chrono::microseconds max_batch_delay{0};
  // Requests waiting (not yet taken by a dispatcher); more are refused with
  // Unavailable so that overload gives fast 503s rather than unbounded latency.
  size_t max_queue = 1024;
  // Run a request on the calling thread when nothing is queued and a predict call is
  // free: two thread wake-ups less per request (tens of microseconds each). Such a
  // request is answered when its predict call returns, so set it only when the predict
  // function bounds its own time by about the requests' deadline (Model::Predict does,
  // with LoadOptions::predict_timeout). Ignored when max_batch_delay > 0.
  bool run_inline = false;
};

// What one Predict call got, and how long its stages took.
struct BatchedResult {
  Result<Prediction> prediction = Status::Internal("request was never run");
  double queue_seconds = 0;    // from Predict's call until its batch started
  double predict_seconds = 0;  // the predict call of its batch (shared by the batch)
  int batch_requests = 0;      // requests in the batch that served it (0: never ran)
  int64_t batch_rows = 0;      // rows in that batch
};

class Batcher {
 public:
  // Called with a batch, its params and the Python shape of its input (all requests
  // of a batch share both).
  using PredictFn = std::function<Result<Prediction>(const Table&, const Value&, InputShape)>;
  // Called by a dispatcher after each predict call: requests and rows in the batch
  // and the call's duration (for metrics).
  using BatchObserver = std::function<void(int requests, int64_t rows, double seconds)>;

  Batcher(PredictFn predict, BatcherOptions options, BatchObserver observer = nullptr);
  ~Batcher();  // Shutdown()
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues `input` and blocks until its rows are predicted or `deadline` passes.
  // `shape` is the Python object predict is to be given (a DataFrame by default);
  // requests of a shape other than a DataFrame, an array or records-like merge only with
  // their own shape, and a scalar or a JSON object (a unified LLM request) never merges.
  BatchedResult Predict(Table input, Value params, std::chrono::steady_clock::time_point deadline,
                        InputShape shape = InputShape::kDataFrame);

  // Refuses new requests, fails queued ones with Unavailable, waits for the running
  // batches and joins the dispatchers. Idempotent.
  void Shutdown();

  size_t queue_depth() const;
  // Requests currently queued or running.
  size_t in_flight() const;
  // True once a model output was found not to be one row per input row.
  bool batching_disabled() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pyfunc

#endif  // PYFUNC_BATCHER_H_
