// The scoring server (include/pyfunc/server.h).
//
// HTTP: the strict, event-driven front of http_server.h (Boost.Asio + Beast). This file
// holds only the scoring routes. cpp-httplib, used before, ran a thread per connection
// (a few hundred idle keep-alive connections exhausted it) and accepted framing that
// enables request smuggling behind a proxy (Content-Length with Transfer-Encoding,
// obs-fold, bare CR); the front refuses those and costs a socket per idle connection.
// A handler still runs on the thread that read its request and blocks on its batch, so
// the per-request path has no thread hand-off.
#include "pyfunc/server.h"

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "base/cores.h"
#include "format/json.h"
#include "pyfunc/batcher.h"
#include "pyfunc/csv.h"
#include "pyfunc/json_codec.h"
#include "pyfunc/signature.h"
#include "pyfunc/version.h"
#include "server/grpc_front.h"
#include "server/http_errors.h"
#include "server/http_server.h"
#include "server/limits.h"
#include "server/metrics.h"
#include "server/oip.h"

namespace pyfunc {
namespace {

using Clock = std::chrono::steady_clock;
using server::HttpRequest;
using server::HttpResponse;
using server::Metrics;
using server::OipDatatype;
using server::OipRequest;
using server::OipResponse;
using server::ParseOipRequest;
using server::Stage;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

constexpr const char* kJson = "application/json";

// MLflow's text for a request in the pre-2.0 protocol.
constexpr const char* kProtocolChangeInfo =
    "IMPORTANT: The MLflow Model scoring protocol has changed in MLflow version 2.0. If you are seeing this "
    "error, you are likely using an outdated scoring request format. To resolve the error, either update your "
    "request format or adjust your MLflow Model's requirements file to specify an older version of MLflow (for "
    "example, change the 'mlflow' requirement specifier to 'mlflow==1.30.0'). If you are making a request using "
    "the MLflow client (e.g. via `mlflow.pyfunc.spark_udf()`), upgrade your MLflow client to a version >= 2.0 in "
    "order to use the new request format. For more information about the updated MLflow Model scoring protocol "
    "in MLflow 2.0, see https://mlflow.org/docs/latest/models.html#deploy-mlflow-models.";

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return std::string(s.substr(b, e - b));
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

enum class BodyFormat { kJson, kCsv, kParquet };

// MLflow's Content-Type handling (scoring_server.invocations): the media type, then
// `k=v` parameters of which only charset=utf-8 is allowed.
Result<BodyFormat> CheckContentType(const std::string& header, std::optional<HttpError>* refusal) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t semi = header.find(';', start);
    parts.push_back(
        Trim(std::string_view(header).substr(start, semi == std::string::npos ? std::string::npos : semi - start)));
    if (semi == std::string::npos) break;
    start = semi + 1;
  }
  std::string charset = "utf-8";
  std::vector<std::string> unexpected;
  for (size_t i = 1; i < parts.size(); ++i) {
    const size_t eq = parts[i].find('=');
    const std::string key = parts[i].substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : parts[i].substr(eq + 1);
    if (key == "charset") {
      charset = value;
    } else {
      unexpected.push_back(key);
    }
  }
  if (Lower(charset) != "utf-8") {
    *refusal = UnsupportedMediaType("The scoring server only supports UTF-8");
    return Status::InvalidArgument("charset");
  }
  if (!unexpected.empty()) {
    std::string names;
    for (const std::string& k : unexpected) names += (names.empty() ? "" : ", ") + k;
    *refusal =
        UnsupportedMediaType(fmt::format("Unrecognized content type parameters: {}. {}", names, kProtocolChangeInfo));
    return Status::InvalidArgument("parameters");
  }
  if (parts[0] == "application/json") return BodyFormat::kJson;
  if (parts[0] == "text/csv") return BodyFormat::kCsv;
  if (parts[0] == "application/vnd.apache.parquet") return BodyFormat::kParquet;
  *refusal = UnsupportedMediaType(
      fmt::format("This predictor only supports the following content types: Types: ['text/csv', 'application/json', "
                  "'application/vnd.apache.parquet']. Got '{}'.",
                  header.empty() ? "None" : header));
  return Status::InvalidArgument("content type");
}

// Extra columns are dropped, as MLflow's schema enforcement drops them, so that requests
// with different extras still merge. A request missing a required column is passed on
// as it is: the worker's enforcement refuses it with MLflow's error (and MLflow's note
// on the extra columns), as the one schema authority. Linear in the columns: models
// with thousands of features are common.
Result<Table> DropExtraColumns(const Table& table, const InputSchema& schema) {
  if (!schema.named) return table;
  // The common request: exactly the signature's columns, in its order (no allocation).
  if (table.num_columns() == static_cast<int>(schema.all_names.size())) {
    bool same = true;
    for (int i = 0; same && i < table.num_columns(); ++i) same = table.column_name(i) == schema.all_names[i];
    if (same) return table;
  }
  std::unordered_map<std::string_view, int> index;
  index.reserve(table.num_columns());
  for (int i = 0; i < table.num_columns(); ++i) index.emplace(table.column_name(i), i);
  for (const std::string& name : schema.required)
    if (index.count(name) == 0) return table;
  std::vector<std::string> names;
  std::vector<Column> columns;
  for (const std::string& name : schema.all_names) {
    auto it = index.find(name);
    if (it == index.end()) continue;
    names.push_back(name);
    columns.push_back(table.column(it->second));
  }
  if (static_cast<int>(names.size()) == table.num_columns()) return table;  // no extras
  if (names.empty()) return Table::Empty(table.num_rows());
  return Table::Make(std::move(names), std::move(columns));
}

// Routes as metric labels: fixed strings, never the raw path (bounded cardinality).
std::string RouteLabel(const std::string& path) {
  static const char* kFixed[] = {"/invocations", "/ping",           "/health",          "/version",
                                 "/metrics",     "/v2/health/live", "/v2/health/ready", "/v2"};
  for (const char* r : kFixed)
    if (path == r) return r;
  const auto ends_with = [&](std::string_view tail) {
    return path.size() > tail.size() && path.compare(path.size() - tail.size(), tail.size(), tail) == 0;
  };
  if (path.rfind("/v2/models/", 0) == 0) {
    if (ends_with("/infer")) return "/v2/models/{name}/infer";
    if (ends_with("/ready")) return "/v2/models/{name}/ready";
    return "/v2/models/{name}";
  }
  if (path == "/v1/models") return path;
  if (path.rfind("/v1/models/", 0) == 0)
    return ends_with(":predict") ? "/v1/models/{name}:predict" : "/v1/models/{name}";
  return "other";
}

}  // namespace

struct Server::Impl final : server::GrpcBackend {
  ServerOptions options;
  std::unique_ptr<server::HttpServer> http;
  std::unique_ptr<server::GrpcFront> grpc;  // null unless options.grpc_port >= 0
  std::thread grpc_shutdown;                // Drain's shutdown of `grpc`, joined by ~Server

  Metrics metrics;
  std::mutex mu;
  std::shared_ptr<Model> model;      // guarded by mu; set once
  std::shared_ptr<Batcher> batcher;  // guarded by mu; set once
  InputSchema input_schema;          // written once before `ready`
  BatchingDecision batching;         // written once before `ready`
  // How request bodies are read (the signature's types and params): written once
  // before `ready`, so that a request copies nothing to parse.
  JsonReadOptions json_options;
  CsvReadOptions csv_options;
  std::atomic<bool> ready{false};
  std::atomic<bool> draining{false};
  // Scoring requests received in full and not yet answered (what a drain waits for).
  std::mutex inflight_mu;
  std::condition_variable inflight_cv;
  int inflight = 0;                    // guarded by inflight_mu
  std::atomic<int> inflight_count{0};  // the same, readable without the lock

  struct InFlight {
    explicit InFlight(Impl* s) : s(s) {
      std::lock_guard<std::mutex> lock(s->inflight_mu);
      ++s->inflight;
      s->inflight_count.fetch_add(1, std::memory_order_relaxed);
    }
    ~InFlight() {
      std::lock_guard<std::mutex> lock(s->inflight_mu);
      s->inflight_count.fetch_sub(1, std::memory_order_relaxed);
      if (--s->inflight == 0) s->inflight_cv.notify_all();
    }
    Impl* s;
  };

  std::shared_ptr<Batcher> GetBatcher() {
    std::lock_guard<std::mutex> lock(mu);
    return batcher;
  }

  static void Reply(HttpResponse& res, const HttpError& e) {
    res.status = e.status;
    if (!e.header_name.empty()) res.headers.emplace_back(e.header_name, e.header_value);
    res.SetContent(e.Body(), e.content_type);
  }

  // An error of an Open Inference Protocol route, in that protocol's body.
  static void ReplyOip(HttpResponse& res, const HttpError& e) {
    res.status = e.status;
    if (!e.header_name.empty()) res.headers.emplace_back(e.header_name, e.header_value);
    res.SetContent(e.OipBody(), kJson);
  }

  // Runs `table` through the batcher; records the queue and predict stages.
  Result<Prediction> Score(Table table, Value params, Clock::time_point deadline,
                           InputShape shape = InputShape::kDataFrame) {
    std::shared_ptr<Batcher> b = GetBatcher();
    if (!ready.load() || b == nullptr) {
      return Status::Unavailable(draining.load() ? "the server is shutting down" : "the model is not loaded yet");
    }
    BatchedResult r = b->Predict(std::move(table), std::move(params), deadline, shape);
    metrics.ObserveStage(Stage::kQueue, r.queue_seconds);
    if (r.batch_requests > 0) metrics.ObserveStage(Stage::kPredict, r.predict_seconds);
    return std::move(r.prediction);
  }

  void Invocations(const HttpRequest& req, HttpResponse& res) {
    InFlight guard(this);
    const Clock::time_point deadline = req.start + options.timeout;
    if (!ready.load()) {
      return Reply(res, HttpErrorFromStatus(Status::Unavailable(draining.load() ? "the server is shutting down"
                                                                                : "the model is not loaded yet")));
    }
    std::optional<HttpError> refusal;
    Result<BodyFormat> format = CheckContentType(std::string(req.Header("Content-Type")), &refusal);
    if (!format.ok()) return Reply(res, *refusal);

    const Clock::time_point parse_start = Clock::now();
    Table table;
    Value params;
    InputShape shape = InputShape::kDataFrame;
    bool unwrapped = false;
    if (*format == BodyFormat::kJson) {
      Result<ScoringRequest> parsed = ParseScoringRequest(req.body, json_options);
      if (!parsed.ok()) return Reply(res, HttpErrorFromStatus(parsed.status()));
      table = std::move(parsed->table);
      params = std::move(parsed->params);
      shape = PredictInputShape(*parsed, input_schema.columns);
      // The unified LLM format: the body is the input, and the answer has no wrapper.
      unwrapped = parsed->format == RequestFormat::kUnifiedLlm;
    } else if (*format == BodyFormat::kParquet) {
      // Read by pandas in the worker, as MLflow's server reads it (pandas.read_parquet);
      // the frame it makes meets the model's schema enforcement there.
      TableBuilder body({{"", DataType::kBinary}});
      body.column(0).AppendString(req.body);
      Result<Table> built = body.Finish();
      if (!built.ok()) return Reply(res, HttpErrorFromStatus(built.status()));
      table = std::move(built).value();
      shape = InputShape::kParquet;
    } else {
      Result<Table> parsed = ReadCsv(req.body, csv_options);
      if (!parsed.ok()) {
        return Reply(res, HttpErrorFromStatus(Status::InvalidArgument(fmt::format(
                              "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
                              "CSV-formatted Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` "
                              "method. Error: '{}'",
                              parsed.status().message()))));
      }
      table = std::move(parsed).value();
    }
    // A unified LLM body and a Parquet file are checked against the signature by the
    // model's own enforcement.
    Result<Table> enforced = unwrapped || shape == InputShape::kParquet ? Result<Table>(std::move(table))
                                                                        : DropExtraColumns(table, input_schema);
    if (!enforced.ok()) return Reply(res, HttpErrorFromStatus(enforced.status()));
    metrics.ObserveStage(Stage::kParse, Seconds(Clock::now() - parse_start));

    Result<Prediction> p = Score(std::move(enforced).value(), std::move(params), deadline, shape);
    if (!p.ok()) return Reply(res, HttpErrorFromStatus(p.status()));

    const Clock::time_point ser_start = Clock::now();
    res.status = 200;
    if (unwrapped) {
      std::string body;
      AppendPredictionJson(*p, &body);
      res.SetContent(body, kJson);
    } else {
      res.SetContent(PredictionsToJson(*p), kJson);
    }
    metrics.ObserveStage(Stage::kSerialize, Seconds(Clock::now() - ser_start));
  }

  // An Open Inference Protocol request of either codec, REST or gRPC: the same path from
  // its columns to the prediction.
  Result<Prediction> ScoreOip(OipRequest request, Clock::time_point deadline) {
    PYFUNC_ASSIGN_OR_RETURN(Table enforced, DropExtraColumns(request.table, input_schema));
    return Score(std::move(enforced), std::move(request.params), deadline);
  }

  void OipInfer(const HttpRequest& req, HttpResponse& res) {
    InFlight guard(this);
    const Clock::time_point deadline = req.start + options.timeout;
    const std::string& name = req.params[0];
    auto fail = [&](const HttpError& e) { ReplyOip(res, e); };
    if (name != options.model_name) {
      return ReplyOip(res, HttpErrorFromStatus(Status::NotFound("Model " + name + " not found")));
    }
    const Clock::time_point parse_start = Clock::now();
    Result<OipRequest> parsed = ParseOipRequest(req.body);
    if (!parsed.ok()) return fail(HttpErrorFromStatus(parsed.status()));
    metrics.ObserveStage(Stage::kParse, Seconds(Clock::now() - parse_start));
    const std::optional<std::string> id = parsed->id;
    Result<Prediction> p = ScoreOip(std::move(parsed).value(), deadline);
    if (!p.ok()) return fail(HttpErrorFromStatus(p.status()));
    const Clock::time_point ser_start = Clock::now();
    res.status = 200;
    res.SetContent(OipResponse(options.model_name, id, *p), kJson);
    metrics.ObserveStage(Stage::kSerialize, Seconds(Clock::now() - ser_start));
  }

  // KServe's V1 protocol: `POST /v1/models/NAME:predict` with `{"instances": [...]}` (or
  // `{"inputs": ...}`), answered `{"predictions": [...]}` — MLflow's JSON request formats
  // and answer, so it is /invocations with JSON by default and errors as `{"error": ...}`.
  void V1Predict(const HttpRequest& req, HttpResponse& res) {
    const std::string& target = req.params[0];
    const size_t colon = target.rfind(':');
    const std::string name = colon == std::string::npos ? target : target.substr(0, colon);
    const std::string verb = colon == std::string::npos ? "" : target.substr(colon + 1);
    if (name != options.model_name) {
      return ReplyOip(res, HttpErrorFromStatus(Status::NotFound("Model with name " + name + " does not exist.")));
    }
    if (verb != "predict") {
      HttpError e = HttpErrorFromStatus(
          Status::NotFound(verb == "explain" ? "this server has no explainer for model " + name
                                             : "unknown verb '" + verb + "'; use " + name + ":predict"));
      if (verb == "explain") e.status = 501;
      return ReplyOip(res, e);
    }
    HttpRequest json = req;
    if (req.Header("Content-Type").empty()) json.headers.emplace_back("Content-Type", kJson);
    Invocations(json, res);
    if (res.status == 200) return;
    Result<Value> error = json::ParseValue(res.body);
    const Value* message = error.ok() ? error->Find("message") : nullptr;
    res.SetContent(
        ToJson(Value(Value::Map{{"error", message != nullptr && message->is_string() ? *message : Value(res.body)}})),
        kJson);
  }

  // {"name": ..., "ready": ...} for the served model (V1 and V2 say a missing one apart).
  void ModelReady(const HttpRequest& req, HttpResponse& res, bool v1) {
    const std::string& name = req.params[0];
    if (name != options.model_name) {
      return ReplyOip(res, HttpErrorFromStatus(Status::NotFound(v1 ? "Model with name " + name + " does not exist."
                                                                   : "Model " + name + " not found")));
    }
    const bool r = ready.load();
    res.status = r ? 200 : 503;
    res.SetContent(ToJson(Value(Value::Map{{"name", name}, {"ready", r}})), kJson);
  }

  void OipModelMetadata(const HttpRequest& req, HttpResponse& res) {
    const std::string& name = req.params[0];
    if (name != options.model_name) {
      return ReplyOip(res, HttpErrorFromStatus(Status::NotFound("Model " + name + " not found")));
    }
    Value::List inputs;
    for (const server::OipTensorMetadata& t : server::OipModelInputs(input_schema.typed)) {
      Value::List shape;
      for (int64_t d : t.shape) shape.push_back(Value(d));
      inputs.push_back(
          Value(Value::Map{{"name", t.name}, {"datatype", t.datatype}, {"shape", Value(std::move(shape))}}));
    }
    const Value out(Value::Map{{"name", options.model_name},
                               {"versions", Value::EmptyList()},
                               {"platform", "mlflow-pyfunc"},
                               {"inputs", Value(std::move(inputs))},
                               {"outputs", Value::EmptyList()}});
    res.SetContent(ToJson(out), kJson);
  }

  // The gRPC front's questions (server::GrpcBackend).
  bool Ready() override { return ready.load(); }
  const std::string& ModelName() override { return options.model_name; }
  std::vector<server::OipTensorMetadata> ModelInputs() override { return server::OipModelInputs(input_schema.typed); }
  Result<Prediction> Infer(OipRequest request, Clock::time_point deadline) override {
    InFlight guard(this);
    return ScoreOip(std::move(request), deadline);
  }
  Metrics& ServerMetrics() override { return metrics; }

  server::HttpRouter Routes() {
    server::HttpRouter http;
    http.Handle("GET", "/ping", [this](const HttpRequest&, HttpResponse& res) {
      res.status = ready.load() ? 200 : 404;
      res.SetContent("\n", kJson);
    });
    http.Handle("GET", "/health", [this](const HttpRequest&, HttpResponse& res) {
      res.status = ready.load() ? 200 : 404;
      res.SetContent("\n", kJson);
    });
    http.Handle("GET", "/version",
                [](const HttpRequest&, HttpResponse& res) { res.SetContent(PYFUNC_VERSION, kJson); });
    http.Handle("GET", "/metrics", [this](const HttpRequest&, HttpResponse& res) {
      Metrics::Gauges g;
      g.ready = ready.load();
      std::shared_ptr<Model> m;
      {
        std::lock_guard<std::mutex> lock(mu);
        m = model;
      }
      if (std::shared_ptr<Batcher> b = GetBatcher()) {
        g.queue_depth = static_cast<int64_t>(b->queue_depth());
        g.in_flight = static_cast<int64_t>(b->in_flight());
        g.batching_disabled = b->batching_disabled();
        g.batching_merge = batching.merge;
        g.batching_reason = batching.reason;
      }
      if (m) {
        g.worker_restarts = m->worker_restarts();
        g.workers = m->num_workers();
        g.live_workers = m->live_workers();
      }
      res.SetContent(metrics.Render(g), "text/plain; version=0.0.4; charset=utf-8");
    });
    http.Handle("POST", "/invocations", [this](const HttpRequest& req, HttpResponse& res) { Invocations(req, res); });

    http.Handle("GET", "/v2/health/live",
                [](const HttpRequest&, HttpResponse& res) { res.SetContent(R"({"live": true})", kJson); });
    http.Handle("GET", "/v2/health/ready", [this](const HttpRequest&, HttpResponse& res) {
      const bool r = ready.load();
      res.status = r ? 200 : 503;
      res.SetContent(r ? R"({"ready": true})" : R"({"ready": false})", kJson);
    });
    http.Handle("GET", "/v2", [](const HttpRequest&, HttpResponse& res) {
      res.SetContent(ToJson(Value(Value::Map{
                         {"name", "pyfunc"}, {"version", PYFUNC_VERSION}, {"extensions", Value::EmptyList()}})),
                     kJson);
    });
    http.Handle("GET", "/v2/models/{name}/ready",
                [this](const HttpRequest& req, HttpResponse& res) { ModelReady(req, res, false); });
    http.Handle("GET", "/v2/models/{name}",
                [this](const HttpRequest& req, HttpResponse& res) { OipModelMetadata(req, res); });
    http.Handle("POST", "/v2/models/{name}/infer",
                [this](const HttpRequest& req, HttpResponse& res) { OipInfer(req, res); });
    // The same with a model version (one model is served: any version names it).
    http.Handle("GET", "/v2/models/{name}/versions/{version}/ready",
                [this](const HttpRequest& req, HttpResponse& res) { ModelReady(req, res, false); });
    http.Handle("GET", "/v2/models/{name}/versions/{version}",
                [this](const HttpRequest& req, HttpResponse& res) { OipModelMetadata(req, res); });
    http.Handle("POST", "/v2/models/{name}/versions/{version}/infer",
                [this](const HttpRequest& req, HttpResponse& res) { OipInfer(req, res); });

    http.Handle("GET", "/v1/models", [this](const HttpRequest&, HttpResponse& res) {
      res.SetContent(ToJson(Value(Value::Map{{"models", Value(Value::List{Value(options.model_name)})}})), kJson);
    });
    http.Handle("GET", "/v1/models/{name}",
                [this](const HttpRequest& req, HttpResponse& res) { ModelReady(req, res, true); });
    http.Handle("POST", "/v1/models/{name}",
                [this](const HttpRequest& req, HttpResponse& res) { V1Predict(req, res); });

    return http;
  }

  // The HTTP front's own refusals (framing, limits, unknown routes) in MLflow's error
  // shape, and the per-request metrics and access log.
  server::HttpHooks Hooks() {
    server::HttpHooks hooks;
    hooks.refusal = [this](int status, std::string_view message, HttpResponse* res) {
      HttpError e;
      if (status == 413) {
        e = PayloadTooLarge(options.max_body_size);
      } else if (status == 404) {
        e = EndpointNotFound(std::string(message));
      } else if (status >= 500) {
        e = HttpErrorFromStatus(Status::Internal(std::string(message)));
      } else {
        e = HttpErrorFromStatus(Status::InvalidArgument(std::string(message)));
      }
      e.status = status;
      Reply(*res, e);
    };
    hooks.on_response = [this](const HttpRequest& req, const HttpResponse& res) {
      const double total = Seconds(Clock::now() - req.start);
      const std::string route = RouteLabel(req.path);
      metrics.CountRequest(route, res.status);
      if (route == "/invocations" || route == "/v2/models/{name}/infer" || route == "/v1/models/{name}:predict") {
        metrics.ObserveStage(Stage::kTotal, total);
      }
      if (options.access_log) {
        fmt::print(stderr, "{} \"{} {} HTTP/{}.{}\" {} {} {:.3f}ms\n", req.remote_addr,
                   req.method.empty() ? "-" : req.method, req.path.empty() ? "-" : req.path, req.version / 10,
                   req.version % 10, res.status, res.body.size(), total * 1e3);
      }
    };
    return hooks;
  }
};

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  Impl& s = *impl;
  server::HttpServerOptions ho;
  ho.host = options.host;
  ho.port = options.port;
  ho.threads = std::max(1, options.http_threads);
  ho.max_connections = std::max<size_t>(1, options.max_connections);
  ho.max_body_size = options.max_body_size;
  ho.header_timeout = options.header_timeout;
  ho.keep_alive_timeout = options.keep_alive_timeout;
  ho.io_timeout = options.read_timeout;
  Result<std::unique_ptr<server::HttpServer>> http = server::HttpServer::Start(ho, s.Routes(), s.Hooks());
  if (!http.ok()) return http.status();
  s.http = std::move(http).value();
  if (options.grpc_port >= 0) {
    server::GrpcFrontOptions go;
    go.host = options.host;
    go.port = options.grpc_port;
    go.max_message_size = options.max_body_size;
    go.threads = std::max(1, options.http_threads);
    go.timeout = options.timeout;
    go.access_log = options.access_log;
    Result<std::unique_ptr<server::GrpcFront>> grpc = server::StartGrpcFront(go, &s);
    if (!grpc.ok()) return grpc.status();
    s.grpc = std::move(grpc).value();
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

bool GrpcAvailable() { return server::GrpcFrontAvailable(); }

void Server::SetModel(std::shared_ptr<Model> model) {
  Impl& s = *impl_;
  s.input_schema = ReadInputSchema(model->spec());
  s.json_options.schema = s.input_schema.typed;
  s.json_options.params_keys = ReadParamNames(model->spec());
  s.csv_options.schema = s.input_schema.typed;
  s.csv_options.source_name = "<request body>";
  s.csv_options.float_rounding = FloatRoundingOfPandas(model->pandas_version());  // as MLflow's read_csv
  s.batching = DecideBatching(model->spec(), s.options.batching);
  BatcherOptions bo;
  bo.dispatchers = model->num_workers();
  bo.max_batch_rows = s.batching.merge ? s.options.max_batch_rows : 1;
  bo.max_batch_delay = s.options.max_batch_delay;
  bo.max_queue = s.options.max_queue;
  // A request run inline is answered when its predict call returns: only when the
  // workers' predict timeout answers it by its deadline (pyfunc serve sets both alike).
  bo.run_inline = model->predict_timeout() <= s.options.timeout;
  std::shared_ptr<Model> m = model;
  const int cores = base::UsableCores();
  const bool may_poll = s.options.busy_poll.count() > 0 && 2 * m->num_workers() <= cores;
  auto batcher = std::make_shared<Batcher>(
      [m, &s, may_poll](const Table& t, const Value& p, InputShape shape) {
        PredictOptions po;
        po.input_shape = shape;
        if (may_poll && s.inflight_count.load(std::memory_order_relaxed) <= m->num_workers()) {
          po.busy_poll = s.options.busy_poll;
        }
        return m->Predict(t, p, po);
      },
      bo, [&s](int requests, int64_t rows, double) { s.metrics.ObserveBatch(requests, rows); });
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.model = std::move(model);
    s.batcher = std::move(batcher);
  }
  if (!s.draining.load()) s.ready = true;
  if (s.grpc && s.ready.load()) s.grpc->SetServing(true);
}

int Server::port() const { return impl_->http->port(); }
int Server::grpc_port() const { return impl_->grpc ? impl_->grpc->port() : -1; }
BatchingDecision Server::batching() const { return impl_->batching; }
bool Server::ready() const { return impl_->ready.load(); }

Status Server::Drain(std::chrono::milliseconds grace) {
  Impl& s = *impl_;
  s.draining = true;
  s.ready = false;
  s.http->StopAccepting();  // connections end after their current request; idle ones now
  if (s.grpc) {
    // gRPC stops taking calls at once and lets running ones finish until the grace
    // period's end; it blocks meanwhile, so on a thread of its own.
    const auto deadline = std::chrono::system_clock::now() + grace;
    s.grpc->SetServing(false);
    s.grpc_shutdown = std::thread([&s, deadline] { s.grpc->Shutdown(deadline); });
  }
  {
    // Requests already received finish (their batches run); idle keep-alive
    // connections are not waited for: they would hold the drain for the keep-alive timeout.
    std::unique_lock<std::mutex> lock(s.inflight_mu);
    if (!s.inflight_cv.wait_for(lock, grace, [&] { return s.inflight == 0; })) {
      return Status::DeadlineExceeded(
          fmt::format("{} requests were still running after the grace period of {} ms", s.inflight, grace.count()));
    }
  }
  // Every scoring call has been answered; the other RPCs take no time.
  if (s.grpc_shutdown.joinable()) s.grpc_shutdown.join();
  std::shared_ptr<Batcher> b;
  std::shared_ptr<Model> m;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    b = std::move(s.batcher);
    m = std::move(s.model);
  }
  if (b) b->Shutdown();
  b.reset();
  m.reset();  // the last reference: workers stop here
  return Status::OK();
}

void Server::Wait() { impl_->http->Wait(); }

Server::~Server() {
  Impl& s = *impl_;
  s.ready = false;
  s.http.reset();  // closes every connection, waits for running handlers
  if (s.grpc_shutdown.joinable()) s.grpc_shutdown.join();
  if (s.grpc) s.grpc->Shutdown(std::chrono::system_clock::now());  // cancels calls, waits for their handlers
  if (std::shared_ptr<Batcher> b = s.GetBatcher()) b->Shutdown();
}

}  // namespace pyfunc
