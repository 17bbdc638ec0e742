// Prometheus metrics of the scoring server, rendered in the text exposition format.
// Private to src/server. Counters and histograms are lock-free on the hot path except
// the per-(route, status) and per-(rpc, code) request counters, which take a short mutex.
#ifndef PYFUNC_SERVER_METRICS_H_
#define PYFUNC_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace pyfunc::server {

// A histogram with fixed upper bounds (plus +Inf).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  // Appends the _bucket, _sum and _count lines of `name` with `labels` ("" or `k="v"`).
  void Render(const std::string& name, const std::string& labels, std::string* out) const;

 private:
  std::vector<double> bounds_;
  std::vector<std::atomic<uint64_t>> counts_;  // one per bound, then +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_nanos_{0};  // sum in units of 1e-9 (seconds → ns, rows → nano-rows)
};

// Stages of a request, each with its own latency histogram.
enum class Stage { kParse = 0, kQueue, kPredict, kSerialize, kTotal };
constexpr int kNumStages = 5;

class Metrics {
 public:
  Metrics();
  void CountRequest(const std::string& route, int status);
  // A gRPC call: the RPC's method name and the code's name ("OK", "NOT_FOUND", ...).
  void CountRpc(const std::string& rpc, const std::string& code);
  void ObserveStage(Stage stage, double seconds) { stages_[static_cast<int>(stage)]->Observe(seconds); }
  void ObserveBatch(int requests, int64_t rows);

  struct Gauges {
    int64_t queue_depth = 0;
    int64_t in_flight = 0;
    int64_t worker_restarts = 0;
    int64_t workers = 0;
    int64_t live_workers = 0;
    bool ready = false;
    bool batching_disabled = false;
    bool batching_merge = false;  // the batching mode in force: merge requests or not
    std::string batching_reason;  // why (empty before a model is set)
  };
  std::string Render(const Gauges& gauges) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;      // guarded by mu_
  std::map<std::pair<std::string, std::string>, uint64_t> rpcs_;  // guarded by mu_
  std::vector<std::unique_ptr<Histogram>> stages_;
  Histogram batch_requests_;
  Histogram batch_rows_;
};

}  // namespace pyfunc::server

#endif  // PYFUNC_SERVER_METRICS_H_
