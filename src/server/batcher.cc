// The dynamic batcher (include/pyfunc/batcher.h).
#include "pyfunc/batcher.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/core.h>

namespace pyfunc {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Requests may share a batch when their keys are equal (same shape, column names and
// types) and so are their params (compared as Values: the params are serialized once,
// for the batch).
std::string MergeKey(const Table& table, InputShape shape) {
  std::string key = std::to_string(static_cast<int>(shape));
  for (int i = 0; i < table.num_columns(); ++i) {
    key += '\x1f';
    key += table.column_name(i);
    key += '\x1e';
    key += DataTypeName(table.column(i).type());
  }
  return key;
}

}  // namespace

struct Batcher::Impl {
  // One request's life: kQueued → kRunning → kDone, or kQueued/kRunning → kAbandoned
  // when its waiter gave up. Transitions happen under `mu`, so exactly one of "the
  // dispatcher completes it" and "the waiter abandons it" wins.
  struct Request {
    enum State { kQueued, kRunning, kDone, kAbandoned };
    Table table;
    Value params;
    InputShape shape = InputShape::kDataFrame;
    std::string key;
    Clock::time_point enqueued;

    bool Merges(const Request& other) const { return key == other.key && params == other.params; }
    std::mutex mu;
    std::condition_variable cv;
    State state = kQueued;  // guarded by mu
    BatchedResult result;   // guarded by mu
  };
  using RequestPtr = std::shared_ptr<Request>;

  PredictFn predict;
  BatcherOptions options;
  BatchObserver observer;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::condition_variable inline_done;  // a predict run on a caller's thread ended
  std::deque<RequestPtr> queue;         // guarded by mu
  bool shutdown = false;                // guarded by mu
  int idle = 0;                         // predict calls that may start now; guarded by mu
  std::vector<std::thread> dispatchers;
  std::atomic<bool> batching_disabled{false};
  size_t running = 0;  // requests in running batches; guarded by mu

  void DispatchLoop();
  std::vector<RequestPtr> TakeBatchLocked();
  void RunBatch(std::vector<RequestPtr>& batch);
  void RunAlone(const RequestPtr& r);
  static bool StartRunning(const RequestPtr& r);
  static void Complete(const RequestPtr& r, Result<Prediction> prediction, double predict_seconds, int batch_requests,
                       int64_t batch_rows);
};

bool Batcher::Impl::StartRunning(const RequestPtr& r) {
  std::lock_guard<std::mutex> lock(r->mu);
  if (r->state != Request::kQueued) return false;
  r->state = Request::kRunning;
  r->result.queue_seconds = Seconds(Clock::now() - r->enqueued);
  return true;
}

void Batcher::Impl::Complete(const RequestPtr& r, Result<Prediction> prediction, double predict_seconds,
                             int batch_requests, int64_t batch_rows) {
  std::lock_guard<std::mutex> lock(r->mu);
  if (r->state != Request::kRunning && r->state != Request::kQueued) return;  // abandoned: discard
  r->state = Request::kDone;
  r->result.prediction = std::move(prediction);
  r->result.predict_seconds = predict_seconds;
  r->result.batch_requests = batch_requests;
  r->result.batch_rows = batch_rows;
  r->cv.notify_one();
}

std::vector<Batcher::Impl::RequestPtr> Batcher::Impl::TakeBatchLocked() {
  std::vector<RequestPtr> batch;
  RequestPtr head = queue.front();
  queue.pop_front();
  batch.push_back(head);
  int64_t rows = head->table.num_rows();
  if (batching_disabled.load() || options.max_batch_rows <= 1 || head->shape == InputShape::kScalar ||
      head->shape == InputShape::kJson || head->shape == InputShape::kTensorsJson ||
      head->shape == InputShape::kFrameJson || head->shape == InputShape::kParquet) {
    return batch;
  }
  for (auto it = queue.begin(); it != queue.end() && rows < options.max_batch_rows;) {
    const int64_t n = (*it)->table.num_rows();
    if ((*it)->Merges(*head) && rows + n <= options.max_batch_rows) {
      rows += n;
      batch.push_back(*it);
      it = queue.erase(it);
    } else {
      ++it;
    }
  }
  return batch;
}

void Batcher::Impl::DispatchLoop() {
  for (;;) {
    std::vector<RequestPtr> batch;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return (shutdown && queue.empty()) || (!queue.empty() && idle > 0); });
      if (queue.empty()) return;  // shutting down with nothing left
      if (options.max_batch_delay.count() > 0 && !batching_disabled.load()) {
        // Wait for company until the oldest request has waited max_batch_delay, or
        // the compatible rows fill a batch.
        for (;;) {
          if (queue.empty() || shutdown) break;
          const RequestPtr& head = queue.front();
          int64_t rows = 0;
          for (const RequestPtr& r : queue)
            if (r->Merges(*head)) rows += r->table.num_rows();
          const Clock::time_point until = head->enqueued + options.max_batch_delay;
          if (rows >= options.max_batch_rows || Clock::now() >= until) break;
          cv.wait_until(lock, until);
        }
        if (queue.empty()) continue;
      }
      batch = TakeBatchLocked();
      running += batch.size();
      --idle;
    }
    RunBatch(batch);
    {
      std::lock_guard<std::mutex> lock(mu);
      running -= batch.size();
      ++idle;
    }
    cv.notify_one();  // a request may be queued, waiting for a free predict call
  }
}

void Batcher::Impl::RunAlone(const RequestPtr& r) {
  const Clock::time_point start = Clock::now();
  Result<Prediction> p = predict(r->table, r->params, r->shape);
  const double seconds = Seconds(Clock::now() - start);
  if (observer) observer(1, r->table.num_rows(), seconds);
  Complete(r, std::move(p), seconds, 1, r->table.num_rows());
}

void Batcher::Impl::RunBatch(std::vector<RequestPtr>& batch) {
  // Requests whose waiters already gave up are dropped before any work is done.
  batch.erase(std::remove_if(batch.begin(), batch.end(), [](const RequestPtr& r) { return !StartRunning(r); }),
              batch.end());
  if (batch.empty()) return;
  if (batch.size() == 1) return RunAlone(batch[0]);

  std::vector<Table> tables;
  tables.reserve(batch.size());
  int64_t total = 0;
  for (const RequestPtr& r : batch) {
    tables.push_back(r->table);
    total += r->table.num_rows();
  }
  Result<Table> merged = Table::Concat(tables);
  if (!merged.ok()) {  // cannot happen for equal keys; stay correct anyway
    for (const RequestPtr& r : batch) RunAlone(r);
    return;
  }
  const Clock::time_point start = Clock::now();
  Result<Prediction> p = predict(*merged, batch[0]->params, batch[0]->shape);
  const double seconds = Seconds(Clock::now() - start);
  if (observer) observer(static_cast<int>(batch.size()), total, seconds);

  if (!p.ok()) {
    // Whatever one request's rows made the model (or its signature) refuse, the
    // others still get their own answers.
    const StatusCode code = p.status().code();
    if (code == StatusCode::kModelError || code == StatusCode::kSchemaMismatch || code == StatusCode::kInvalidParams) {
      for (const RequestPtr& r : batch) RunAlone(r);
      return;
    }
    for (const RequestPtr& r : batch) Complete(r, p.status(), seconds, static_cast<int>(batch.size()), total);
    return;
  }
  if (p->table.num_rows() != total) {
    if (!batching_disabled.exchange(true)) {
      fmt::print(stderr,
                 "pyfunc serve: the model returned {} rows for a batch of {} input rows; it does not "
                 "return one row per input row, so requests are no longer merged\n",
                 p->table.num_rows(), total);
    }
    for (const RequestPtr& r : batch) RunAlone(r);
    return;
  }
  int64_t offset = 0;
  for (const RequestPtr& r : batch) {
    const int64_t n = r->table.num_rows();
    Result<Table> part = p->table.Slice(offset, n);
    offset += n;
    if (!part.ok()) {
      Complete(r, part.status(), seconds, static_cast<int>(batch.size()), total);
      continue;
    }
    Complete(r, Prediction{std::move(part).value(), p->shape, p->nulls}, seconds, static_cast<int>(batch.size()),
             total);
  }
}

Batcher::Batcher(PredictFn predict, BatcherOptions options, BatchObserver observer) : impl_(std::make_unique<Impl>()) {
  impl_->predict = std::move(predict);
  impl_->options = options;
  impl_->observer = std::move(observer);
  const int n = std::max(1, options.dispatchers);
  impl_->idle = n;
  for (int i = 0; i < n; ++i) impl_->dispatchers.emplace_back([this] { impl_->DispatchLoop(); });
}

Batcher::~Batcher() { Shutdown(); }

BatchedResult Batcher::Predict(Table input, Value params, std::chrono::steady_clock::time_point deadline,
                               InputShape shape) {
  auto r = std::make_shared<Impl::Request>();
  r->key = MergeKey(input, shape);
  r->shape = shape;
  r->table = std::move(input);
  r->params = std::move(params);
  r->enqueued = Clock::now();
  {
    std::unique_lock<std::mutex> lock(impl_->mu);
    BatchedResult refused;
    if (impl_->shutdown) {
      refused.prediction = Status::Unavailable("the server is shutting down");
      return refused;
    }
    if (impl_->options.run_inline && impl_->queue.empty() && impl_->idle > 0 &&
        impl_->options.max_batch_delay.count() == 0) {
      // Nothing waits and a predict call is free: run on the caller's thread. The
      // request skips two thread hand-offs (to a dispatcher and back), which cost
      // more than the queueing itself on a lightly loaded server. The predict function
      // bounds the call's time (run_inline's contract).
      --impl_->idle;
      ++impl_->running;
      lock.unlock();
      r->state = Impl::Request::kRunning;
      impl_->RunAlone(r);
      lock.lock();
      ++impl_->idle;
      --impl_->running;
      lock.unlock();
      impl_->cv.notify_one();  // requests queued meanwhile wait for a free predict call
      impl_->inline_done.notify_all();
      BatchedResult result = std::move(r->result);
      if (Clock::now() > deadline) {
        // Answered too late: the request has already timed out for its client.
        result.prediction = Status::DeadlineExceeded("Request processing time exceeded limit");
      }
      return result;
    }
    if (impl_->queue.size() >= impl_->options.max_queue) {
      refused.prediction = Status::Unavailable(
          fmt::format("the request queue is full ({} requests waiting); retry later", impl_->queue.size()));
      return refused;
    }
    impl_->queue.push_back(r);
  }
  // Every dispatcher may be waiting out a batch delay on this queue: wake all of them
  // when a delay is configured, so the one whose batch fills can go.
  if (impl_->options.max_batch_delay.count() > 0) {
    impl_->cv.notify_all();
  } else {
    impl_->cv.notify_one();
  }

  std::unique_lock<std::mutex> lock(r->mu);
  if (r->cv.wait_until(lock, deadline, [&] { return r->state == Impl::Request::kDone; })) {
    return std::move(r->result);
  }
  const bool was_queued = r->state == Impl::Request::kQueued;
  r->state = Impl::Request::kAbandoned;
  BatchedResult timed_out;
  timed_out.queue_seconds = was_queued ? Seconds(Clock::now() - r->enqueued) : r->result.queue_seconds;
  timed_out.prediction = Status::DeadlineExceeded("Request processing time exceeded limit");
  lock.unlock();
  if (was_queued) {
    std::lock_guard<std::mutex> qlock(impl_->mu);
    auto& q = impl_->queue;
    q.erase(std::remove(q.begin(), q.end(), r), q.end());
  }
  return timed_out;
}

void Batcher::Shutdown() {
  std::deque<Impl::RequestPtr> left;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->shutdown && impl_->dispatchers.empty()) return;
    impl_->shutdown = true;
    left.swap(impl_->queue);
  }
  impl_->cv.notify_all();
  for (const auto& r : left) Impl::Complete(r, Status::Unavailable("the server is shutting down"), 0, 0, 0);
  for (std::thread& t : impl_->dispatchers)
    if (t.joinable()) t.join();
  impl_->dispatchers.clear();
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->inline_done.wait(lock, [&] { return impl_->running == 0; });
}

size_t Batcher::queue_depth() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->queue.size();
}

size_t Batcher::in_flight() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->queue.size() + impl_->running;
}

bool Batcher::batching_disabled() const { return impl_->batching_disabled.load(); }

}  // namespace pyfunc
