#include "server/metrics.h"

#include <cmath>

#include <fmt/core.h>

namespace pyfunc::server {
namespace {

std::vector<double> LatencyBounds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}
std::vector<double> CountBounds() { return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536}; }

const char* StageName(int stage) {
  static const char* kNames[kNumStages] = {"parse", "queue", "predict", "serialize", "total"};
  return kNames[stage];
}

std::string Num(double v) { return fmt::format("{}", v); }

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1) {}

void Histogram::Observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_nanos_.fetch_add(static_cast<uint64_t>(std::llround(value * 1e9)), std::memory_order_relaxed);
}

void Histogram::Render(const std::string& name, const std::string& labels, std::string* out) const {
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    const std::string le = i < bounds_.size() ? Num(bounds_[i]) : "+Inf";
    *out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, le, cumulative);
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  *out += fmt::format("{}_sum{} {}\n", name, braces, Num(sum_nanos_.load(std::memory_order_relaxed) / 1e9));
  *out += fmt::format("{}_count{} {}\n", name, braces, count_.load(std::memory_order_relaxed));
}

Metrics::Metrics() : batch_requests_(CountBounds()), batch_rows_(CountBounds()) {
  stages_.reserve(kNumStages);
  for (int i = 0; i < kNumStages; ++i) stages_.push_back(std::make_unique<Histogram>(LatencyBounds()));
}

void Metrics::CountRequest(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
}

void Metrics::CountRpc(const std::string& rpc, const std::string& code) {
  std::lock_guard<std::mutex> lock(mu_);
  ++rpcs_[{rpc, code}];
}

void Metrics::ObserveBatch(int requests, int64_t rows) {
  batch_requests_.Observe(requests);
  batch_rows_.Observe(static_cast<double>(rows));
}

std::string Metrics::Render(const Gauges& g) const {
  std::string out;
  out += "# HELP pyfunc_requests_total HTTP requests answered, by route and status.\n";
  out += "# TYPE pyfunc_requests_total counter\n";
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, n] : requests_)
      out += fmt::format("pyfunc_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, n);
  }
  out += "# HELP pyfunc_grpc_requests_total gRPC calls answered (inference.GRPCInferenceService), by RPC and code.\n";
  out += "# TYPE pyfunc_grpc_requests_total counter\n";
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, n] : rpcs_)
      out += fmt::format("pyfunc_grpc_requests_total{{rpc=\"{}\",code=\"{}\"}} {}\n", key.first, key.second, n);
  }
  out +=
      "# HELP pyfunc_request_stage_seconds Latency of each stage of a scoring request "
      "(parse: body to table; queue: waiting for a worker; predict: the batch's predict call; "
      "serialize: prediction to body; total: arrival to response).\n";
  out += "# TYPE pyfunc_request_stage_seconds histogram\n";
  for (int i = 0; i < kNumStages; ++i)
    stages_[i]->Render("pyfunc_request_stage_seconds", fmt::format("stage=\"{}\"", StageName(i)), &out);
  out += "# HELP pyfunc_batch_requests Requests merged into one predict call.\n";
  out += "# TYPE pyfunc_batch_requests histogram\n";
  batch_requests_.Render("pyfunc_batch_requests", "", &out);
  out += "# HELP pyfunc_batch_rows Rows in one predict call.\n";
  out += "# TYPE pyfunc_batch_rows histogram\n";
  batch_rows_.Render("pyfunc_batch_rows", "", &out);
  out += "# HELP pyfunc_queue_depth Requests waiting for a worker.\n# TYPE pyfunc_queue_depth gauge\n";
  out += fmt::format("pyfunc_queue_depth {}\n", g.queue_depth);
  out +=
      "# HELP pyfunc_requests_in_flight Scoring requests queued or running.\n"
      "# TYPE pyfunc_requests_in_flight gauge\n";
  out += fmt::format("pyfunc_requests_in_flight {}\n", g.in_flight);
  out += "# HELP pyfunc_workers Python worker processes serving the model.\n# TYPE pyfunc_workers gauge\n";
  out += fmt::format("pyfunc_workers {}\n", g.workers);
  out +=
      "# HELP pyfunc_workers_live Python worker processes running now (pyfunc_workers less those "
      "that died and are being replaced).\n# TYPE pyfunc_workers_live gauge\n";
  out += fmt::format("pyfunc_workers_live {}\n", g.live_workers);
  out +=
      "# HELP pyfunc_worker_restarts_total Workers started to replace ones that died or timed out.\n"
      "# TYPE pyfunc_worker_restarts_total counter\n";
  out += fmt::format("pyfunc_worker_restarts_total {}\n", g.worker_restarts);
  out +=
      "# HELP pyfunc_ready 1 when the model is loaded and the server accepts scoring requests.\n"
      "# TYPE pyfunc_ready gauge\n";
  out += fmt::format("pyfunc_ready {}\n", g.ready ? 1 : 0);
  out +=
      "# HELP pyfunc_batching_disabled 1 when merging was switched off because the model's output "
      "is not one row per input row.\n# TYPE pyfunc_batching_disabled gauge\n";
  out += fmt::format("pyfunc_batching_disabled {}\n", g.batching_disabled ? 1 : 0);
  if (!g.batching_reason.empty()) {
    out +=
        "# HELP pyfunc_batching_mode 1 for the batching mode in force (rows: concurrent requests may be "
        "merged into one predict call; off: one request per call), with the reason.\n"
        "# TYPE pyfunc_batching_mode gauge\n";
    std::string reason;
    for (const char c : g.batching_reason) {
      if (c == '\\' || c == '"') reason += '\\';
      reason += c == '\n' ? ' ' : c;
    }
    out +=
        fmt::format("pyfunc_batching_mode{{mode=\"{}\",reason=\"{}\"}} 1\n", g.batching_merge ? "rows" : "off", reason);
  }
  return out;
}

}  // namespace pyfunc::server
