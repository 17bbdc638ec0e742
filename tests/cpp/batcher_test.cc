// The dynamic batcher without HTTP or Python: a fake predict function that echoes its
// input (one output row per input row) and can be held closed, so tests decide what
// queues up behind a running batch.
#include "pyfunc/batcher.h"

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "test_util.h"

namespace pyfunc {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

Table Rows(int64_t first, int64_t n, const char* column = "x") {
  TableBuilder b({{column, DataType::kInt64}});
  for (int64_t i = 0; i < n; ++i) b.column(0).AppendInt64(first + i);
  return *b.Finish();
}

Value Params(const char* mode) { return Value(Value::Map{{"mode", Value(mode)}}); }

// A predict function that records each call's input and can hold calls until opened.
class FakeModel {
 public:
  Result<Prediction> Predict(const Table& t, const Value& p) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      calls_.push_back(t);
      ++started_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
    }
    if (fail_on_negative_) {
      for (int64_t i = 0; i < t.num_rows(); ++i)
        if (t.column(0).int64_data()[i] < 0) return Status::ModelError("ValueError: negative");
    }
    if (one_row_) return Prediction{Rows(0, 1), PredictionShape::kArray1D};
    if (fail_code_ != StatusCode::kOk) return Status(fail_code_, "worker died");
    return Prediction{t, PredictionShape::kDataFrame};
  }
  Batcher::PredictFn Fn() {
    return [this](const Table& t, const Value& p, InputShape) { return Predict(t, p); };
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void WaitStarted(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return started_ >= n; });
  }
  std::vector<Table> calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

  bool one_row_ = false;
  bool fail_on_negative_ = false;
  StatusCode fail_code_ = StatusCode::kOk;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int started_ = 0;
  std::vector<Table> calls_;
};

Clock::time_point Later(std::chrono::milliseconds d = 10s) { return Clock::now() + d; }

// Holds the only dispatcher with a first request, queues `tables`, then releases.
std::vector<BatchedResult> QueueBehindBlocker(Batcher& batcher, FakeModel& model, std::vector<Table> tables,
                                              std::vector<Value> params) {
  model.Close();
  auto blocker = std::async(std::launch::async, [&] { return batcher.Predict(Rows(1000, 1), Value(), Later()); });
  model.WaitStarted(1);
  std::vector<std::future<BatchedResult>> futures;
  for (size_t i = 0; i < tables.size(); ++i) {
    futures.push_back(
        std::async(std::launch::async, [&, i] { return batcher.Predict(tables[i], params[i], Later()); }));
    while (batcher.queue_depth() < i + 1) std::this_thread::sleep_for(1ms);
  }
  model.Open();
  EXPECT_TRUE(blocker.get().prediction.ok());
  std::vector<BatchedResult> out;
  for (auto& f : futures) out.push_back(f.get());
  return out;
}

TEST(BatcherTest, LoneRequestRunsAtOnceAlone) {
  FakeModel model;
  Batcher batcher(model.Fn(), {});
  const Clock::time_point start = Clock::now();
  BatchedResult r = batcher.Predict(Rows(0, 3), Value(), Later());
  PYFUNC_ASSERT_OK(r.prediction);
  EXPECT_LT(Clock::now() - start, 500ms);
  EXPECT_EQ(r.batch_requests, 1);
  EXPECT_TRUE(r.prediction->table.Equals(Rows(0, 3)));
}

TEST(BatcherTest, QueuedRequestsAreMergedIntoOneCallAndSplitBack) {
  FakeModel model;
  Batcher batcher(model.Fn(), {});
  std::vector<Table> tables = {Rows(0, 2), Rows(10, 1), Rows(20, 3), Rows(30, 0)};
  std::vector<BatchedResult> results = QueueBehindBlocker(batcher, model, tables, std::vector<Value>(4, Value()));
  for (size_t i = 0; i < tables.size(); ++i) {
    PYFUNC_ASSERT_OK(results[i].prediction);
    EXPECT_TRUE(results[i].prediction->table.Equals(tables[i])) << i << "\n" << results[i].prediction->table.ToString();
    EXPECT_EQ(results[i].batch_requests, 4);
    EXPECT_EQ(results[i].batch_rows, 6);
  }
  ASSERT_EQ(model.calls().size(), 2u);  // the blocker, then one merged call
  EXPECT_EQ(model.calls()[1].num_rows(), 6);
}

TEST(BatcherTest, DifferentParamsOrColumnsAreNotMerged) {
  FakeModel model;
  Batcher batcher(model.Fn(), {});
  std::vector<Table> tables = {Rows(0, 1), Rows(1, 1), Rows(2, 1, "y"), Rows(3, 1)};
  std::vector<Value> params = {Params("a"), Params("b"), Params("a"), Params("a")};
  std::vector<BatchedResult> results = QueueBehindBlocker(batcher, model, tables, params);
  for (size_t i = 0; i < tables.size(); ++i) {
    PYFUNC_ASSERT_OK(results[i].prediction);
    EXPECT_TRUE(results[i].prediction->table.Equals(tables[i])) << i;
  }
  // Requests 0 and 3 (same params, same column) share a batch; 1 and 2 run alone.
  EXPECT_EQ(results[0].batch_requests, 2);
  EXPECT_EQ(results[3].batch_requests, 2);
  EXPECT_EQ(results[1].batch_requests, 1);
  EXPECT_EQ(results[2].batch_requests, 1);
  EXPECT_EQ(model.calls().size(), 4u);
}

TEST(BatcherTest, RowLimitBoundsBatchesButNeverSplitsARequest) {
  FakeModel model;
  BatcherOptions options;
  options.max_batch_rows = 4;
  Batcher batcher(model.Fn(), options);
  std::vector<Table> tables = {Rows(0, 3), Rows(10, 1), Rows(20, 6), Rows(30, 2)};
  std::vector<BatchedResult> results = QueueBehindBlocker(batcher, model, tables, std::vector<Value>(4, Value()));
  for (size_t i = 0; i < tables.size(); ++i) {
    PYFUNC_ASSERT_OK(results[i].prediction);
    EXPECT_TRUE(results[i].prediction->table.Equals(tables[i])) << i;
    EXPECT_LE(results[i].batch_rows, i == 2 ? 6 : 4);
  }
  EXPECT_EQ(results[2].batch_requests, 1);  // larger than the limit: alone
}

TEST(BatcherTest, OutputNotOneRowPerInputRowFallsBackToSingleRequests) {
  FakeModel model;
  model.one_row_ = true;
  Batcher batcher(model.Fn(), {});
  std::vector<Table> tables = {Rows(0, 2), Rows(10, 3)};
  std::vector<BatchedResult> results = QueueBehindBlocker(batcher, model, tables, std::vector<Value>(2, Value()));
  for (const BatchedResult& r : results) {
    PYFUNC_ASSERT_OK(r.prediction);
    EXPECT_EQ(r.prediction->table.num_rows(), 1);  // each request got the model's own answer
    EXPECT_EQ(r.batch_requests, 1);
  }
  EXPECT_TRUE(batcher.batching_disabled());
}

TEST(BatcherTest, ModelErrorInAMergedBatchFailsOnlyTheRequestThatCausedIt) {
  FakeModel model;
  model.fail_on_negative_ = true;
  Batcher batcher(model.Fn(), {});
  std::vector<Table> tables = {Rows(0, 2), Rows(-5, 1), Rows(10, 2)};
  std::vector<BatchedResult> results = QueueBehindBlocker(batcher, model, tables, std::vector<Value>(3, Value()));
  PYFUNC_EXPECT_OK(results[0].prediction);
  EXPECT_EQ(results[1].prediction.status().code(), StatusCode::kModelError);
  PYFUNC_EXPECT_OK(results[2].prediction);
  EXPECT_TRUE(results[2].prediction->table.Equals(tables[2]));
}

TEST(BatcherTest, WorkerFailureFailsItsWholeBatch) {
  FakeModel model;
  Batcher batcher(model.Fn(), {});
  model.Close();
  auto blocker = std::async(std::launch::async, [&] { return batcher.Predict(Rows(0, 1), Value(), Later()); });
  model.WaitStarted(1);
  model.fail_code_ = StatusCode::kUnavailable;
  model.Open();
  EXPECT_EQ(blocker.get().prediction.status().code(), StatusCode::kUnavailable);
}

TEST(BatcherTest, FullQueueIsRefusedWithUnavailable) {
  FakeModel model;
  BatcherOptions options;
  options.max_queue = 2;
  Batcher batcher(model.Fn(), options);
  model.Close();
  auto blocker = std::async(std::launch::async, [&] { return batcher.Predict(Rows(0, 1), Value(), Later()); });
  model.WaitStarted(1);
  std::vector<std::future<BatchedResult>> queued;
  for (int i = 0; i < 2; ++i) {
    queued.push_back(std::async(std::launch::async, [&] { return batcher.Predict(Rows(0, 1), Value(), Later()); }));
    while (batcher.queue_depth() < static_cast<size_t>(i + 1)) std::this_thread::sleep_for(1ms);
  }
  BatchedResult refused = batcher.Predict(Rows(0, 1), Value(), Later());
  EXPECT_EQ(refused.prediction.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(refused.prediction.status().message(), ::testing::HasSubstr("queue is full"));
  model.Open();
  PYFUNC_EXPECT_OK(blocker.get().prediction);
  for (auto& f : queued) PYFUNC_EXPECT_OK(f.get().prediction);
}

TEST(BatcherTest, DeadlineWhileQueuedRemovesTheRequestBeforeItRuns) {
  FakeModel model;
  Batcher batcher(model.Fn(), {});
  model.Close();
  auto blocker = std::async(std::launch::async, [&] { return batcher.Predict(Rows(0, 1), Value(), Later()); });
  model.WaitStarted(1);
  BatchedResult late = batcher.Predict(Rows(77, 1), Value(), Later(50ms));
  EXPECT_EQ(late.prediction.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(batcher.queue_depth(), 0u);
  model.Open();
  PYFUNC_EXPECT_OK(blocker.get().prediction);
  PYFUNC_EXPECT_OK(batcher.Predict(Rows(5, 1), Value(), Later()).prediction);
  for (const Table& t : model.calls()) EXPECT_NE(t.column(0).int64_data()[0], 77);  // never predicted
}

TEST(BatcherTest, DeadlineWhileRunningIsAnsweredOnceAndTheLateResultDiscarded) {
  FakeModel model;
  Batcher batcher(model.Fn(), {});
  model.Close();
  BatchedResult late = batcher.Predict(Rows(0, 1), Value(), Later(50ms));
  EXPECT_EQ(late.prediction.status().code(), StatusCode::kDeadlineExceeded);
  model.Open();  // the running batch now completes into nobody
  BatchedResult next = batcher.Predict(Rows(9, 1), Value(), Later());
  PYFUNC_ASSERT_OK(next.prediction);
  EXPECT_TRUE(next.prediction->table.Equals(Rows(9, 1)));
}

TEST(BatcherTest, ShutdownFailsQueuedRequestsAndRefusesNewOnes) {
  FakeModel model;
  auto batcher = std::make_unique<Batcher>(model.Fn(), BatcherOptions{});
  model.Close();
  auto running = std::async(std::launch::async, [&] { return batcher->Predict(Rows(0, 1), Value(), Later()); });
  model.WaitStarted(1);
  auto queued = std::async(std::launch::async, [&] { return batcher->Predict(Rows(1, 1), Value(), Later()); });
  while (batcher->queue_depth() < 1) std::this_thread::sleep_for(1ms);
  auto shutdown = std::async(std::launch::async, [&] { batcher->Shutdown(); });
  EXPECT_EQ(queued.get().prediction.status().code(), StatusCode::kUnavailable);
  model.Open();
  shutdown.get();
  PYFUNC_EXPECT_OK(running.get().prediction);  // the running batch finished
  EXPECT_EQ(batcher->Predict(Rows(2, 1), Value(), Later()).prediction.status().code(), StatusCode::kUnavailable);
}

TEST(BatcherTest, MaxBatchDelayWaitsForCompany) {
  FakeModel model;
  BatcherOptions options;
  options.max_batch_delay = 200ms;
  Batcher batcher(model.Fn(), options);
  auto first = std::async(std::launch::async, [&] { return batcher.Predict(Rows(0, 1), Value(), Later()); });
  std::this_thread::sleep_for(30ms);
  auto second = std::async(std::launch::async, [&] { return batcher.Predict(Rows(1, 1), Value(), Later()); });
  BatchedResult a = first.get();
  BatchedResult b = second.get();
  PYFUNC_ASSERT_OK(a.prediction);
  PYFUNC_ASSERT_OK(b.prediction);
  EXPECT_EQ(a.batch_requests, 2);
  EXPECT_TRUE(b.prediction->table.Equals(Rows(1, 1)));
}

TEST(BatcherTest, ManyThreadsEachGetTheirOwnRows) {
  FakeModel model;
  BatcherOptions options;
  options.dispatchers = 2;
  options.max_batch_rows = 16;
  Batcher batcher(model.Fn(), options);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const int64_t first = t * 100000 + i * 10;
        Table in = Rows(first, 1 + (i % 3));
        BatchedResult r = batcher.Predict(in, Value(), Later());
        if (!r.prediction.ok() || !r.prediction->table.Equals(in)) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(BatcherTest, InlineRunsALoneRequestOnTheCallersThread) {
  std::atomic<std::thread::id> ran_on{};
  BatcherOptions options;
  options.run_inline = true;
  Batcher batcher(
      [&](const Table& t, const Value&, InputShape) -> Result<Prediction> {
        ran_on = std::this_thread::get_id();
        return Prediction{t, PredictionShape::kDataFrame};
      },
      options);
  BatchedResult r = batcher.Predict(Rows(5, 2), Value(), Later());
  PYFUNC_ASSERT_OK(r.prediction);
  EXPECT_TRUE(r.prediction->table.Equals(Rows(5, 2)));
  EXPECT_EQ(ran_on.load(), std::this_thread::get_id());
  EXPECT_EQ(r.batch_requests, 1);
  EXPECT_EQ(batcher.in_flight(), 0u);
}

TEST(BatcherTest, InlineNeverRunsMorePredictCallsThanDispatchersAndQueuedWorkIsBatched) {
  FakeModel model;
  BatcherOptions options;
  options.run_inline = true;
  options.dispatchers = 1;
  Batcher batcher(model.Fn(), options);
  model.Close();
  // The first request takes the only predict call, inline; the next ones queue.
  auto first = std::async(std::launch::async, [&] { return batcher.Predict(Rows(0, 1), Value(), Later()); });
  model.WaitStarted(1);
  std::vector<std::future<BatchedResult>> rest;
  for (int i = 1; i <= 3; ++i) {
    rest.push_back(std::async(std::launch::async, [&, i] { return batcher.Predict(Rows(i, 1), Value(), Later()); }));
  }
  while (batcher.queue_depth() < 3) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(model.calls().size(), 1u);  // nothing else started while the call is busy
  model.Open();
  PYFUNC_ASSERT_OK(first.get().prediction);
  for (int i = 1; i <= 3; ++i) {
    BatchedResult r = rest[i - 1].get();
    PYFUNC_ASSERT_OK(r.prediction);
    EXPECT_TRUE(r.prediction->table.Equals(Rows(i, 1)));
    EXPECT_EQ(r.batch_requests, 3);  // the queued three went as one batch, to a dispatcher
  }
  EXPECT_EQ(model.calls().size(), 2u);
}

TEST(BatcherTest, InlineRequestPastItsDeadlineIsAnsweredDeadlineExceeded) {
  BatcherOptions options;
  options.run_inline = true;
  Batcher batcher(
      [](const Table& t, const Value&, InputShape) -> Result<Prediction> {
        std::this_thread::sleep_for(60ms);
        return Prediction{t, PredictionShape::kDataFrame};
      },
      options);
  BatchedResult r = batcher.Predict(Rows(0, 1), Value(), Later(20ms));
  EXPECT_EQ(r.prediction.status().code(), StatusCode::kDeadlineExceeded);
  PYFUNC_EXPECT_OK(batcher.Predict(Rows(1, 1), Value(), Later()).prediction);
}

TEST(BatcherTest, ShutdownWaitsForAnInlineRun) {
  FakeModel model;
  BatcherOptions options;
  options.run_inline = true;
  auto batcher = std::make_unique<Batcher>(model.Fn(), options);
  model.Close();
  auto running = std::async(std::launch::async, [&] { return batcher->Predict(Rows(0, 1), Value(), Later()); });
  model.WaitStarted(1);
  auto shutdown = std::async(std::launch::async, [&] { batcher->Shutdown(); });
  EXPECT_EQ(shutdown.wait_for(50ms), std::future_status::timeout);  // still running
  model.Open();
  shutdown.get();
  PYFUNC_EXPECT_OK(running.get().prediction);
}

TEST(BatcherTest, OnlyRequestsOfTheSameInputShapeMergeAndScalarsNever) {
  std::mutex mu;
  std::vector<std::pair<InputShape, int64_t>> calls;  // shape and rows of each call
  std::promise<void> open;
  std::shared_future<void> opened = open.get_future().share();
  Batcher batcher(
      [&](const Table& t, const Value&, InputShape shape) -> Result<Prediction> {
        opened.wait();
        std::lock_guard<std::mutex> lock(mu);
        calls.emplace_back(shape, t.num_rows());
        return Prediction{t, PredictionShape::kDataFrame};
      },
      {});
  auto blocker = std::async(std::launch::async, [&] { return batcher.Predict(Rows(1000, 1), Value(), Later()); });
  // The blocker is running (taken from the queue), so the queue holds exactly the requests below.
  while (batcher.in_flight() < 1 || batcher.queue_depth() > 0) std::this_thread::sleep_for(1ms);
  const std::vector<InputShape> shapes = {InputShape::kDataFrame, InputShape::kArray2D, InputShape::kScalar,
                                          InputShape::kDataFrame, InputShape::kArray2D, InputShape::kScalar};
  std::vector<std::future<BatchedResult>> futures;
  for (size_t i = 0; i < shapes.size(); ++i) {
    futures.push_back(std::async(std::launch::async, [&, i] {
      return batcher.Predict(Rows(static_cast<int64_t>(i), 1), Value(), Later(), shapes[i]);
    }));
    while (batcher.queue_depth() < i + 1) std::this_thread::sleep_for(1ms);
  }
  open.set_value();
  PYFUNC_ASSERT_OK(blocker.get().prediction);
  for (size_t i = 0; i < futures.size(); ++i) {
    BatchedResult r = futures[i].get();
    PYFUNC_ASSERT_OK(r.prediction);
    EXPECT_TRUE(r.prediction->table.Equals(Rows(static_cast<int64_t>(i), 1)));
  }
  const std::vector<std::pair<InputShape, int64_t>> want = {{InputShape::kDataFrame, 1},
                                                            {InputShape::kDataFrame, 2},
                                                            {InputShape::kArray2D, 2},
                                                            {InputShape::kScalar, 1},
                                                            {InputShape::kScalar, 1}};
  EXPECT_EQ(calls, want);
}

}  // namespace
}  // namespace pyfunc
