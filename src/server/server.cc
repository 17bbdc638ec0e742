// The scoring server (include/pyfunc/server.h).
//
// HTTP library: cpp-httplib (Debian's libcpp-httplib-dev 0.11.4). It is a blocking,
// thread-per-connection server with HTTP/1.1 keep-alive, payload limits, read/write
// timeouts and a graceful stop that joins in-flight handlers — exactly the model this
// server needs, since a handler blocks on its batch anyway (a request costs a thread,
// not a callback chain). Boost.Beast would give an asynchronous server, which pays
// off with tens of thousands of idle connections, but at several times the code for
// the parsing, timeouts and keep-alive handling httplib already does; a scoring server
// behind a load balancer sees tens to hundreds of connections, which threads serve
// well (ServerOptions::http_threads).
#include "pyfunc/server.h"

#include <sys/socket.h>

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
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "pyfunc/batcher.h"
#include "pyfunc/csv.h"
#include "pyfunc/json_codec.h"
#include "pyfunc/signature.h"
#include "pyfunc/version.h"
#include "server/limits.h"
#include "server/metrics.h"
#include "server/oip.h"

namespace pyfunc {
namespace {

using Clock = std::chrono::steady_clock;
using server::Metrics;
using server::OipDatatype;
using server::OipError;
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

enum class BodyFormat { kJson, kCsv };

// MLflow's Content-Type handling (scoring_server.invocations): the media type, then
// `k=v` parameters of which only charset=utf-8 is allowed.
Result<BodyFormat> CheckContentType(const std::string& header, std::optional<HttpError>* refusal) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t semi = header.find(';', start);
    parts.push_back(Trim(std::string_view(header).substr(start, semi == std::string::npos ? std::string::npos
                                                                                        : semi - start)));
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
    *refusal = UnsupportedMediaType(
        fmt::format("Unrecognized content type parameters: {}. {}", names, kProtocolChangeInfo));
    return Status::InvalidArgument("parameters");
  }
  if (parts[0] == "application/json") return BodyFormat::kJson;
  if (parts[0] == "text/csv") return BodyFormat::kCsv;
  *refusal = UnsupportedMediaType(fmt::format(
      "This predictor only supports the following content types: Types: ['text/csv', 'application/json']. "
      "Got '{}'.",
      header.empty() ? "None" : header));
  return Status::InvalidArgument("content type");
}

std::string PyList(const std::vector<std::string>& names) {
  std::string s = "[";
  for (size_t i = 0; i < names.size(); ++i) s += (i ? ", '" : "'") + names[i] + "'";
  return s + "]";
}

// MLflow's schema enforcement on names: missing required columns are an error, extra
// columns are dropped (the model sees the signature's columns, in its order).
Result<Table> EnforceColumns(const Table& table, const InputSchema& schema) {
  if (!schema.named) return table;
  std::vector<std::string> missing, extra;
  for (const std::string& name : schema.required)
    if (table.ColumnIndex(name) < 0) missing.push_back(name);
  for (const std::string& name : table.column_names()) {
    bool known = false;
    for (const std::string& n : schema.all_names) known = known || n == name;
    if (!known) extra.push_back(name);
  }
  if (!missing.empty()) {
    std::string msg = fmt::format("Failed to enforce schema of data with schema {}. Error: Model is missing inputs {}.",
                                  PyList(schema.all_names), PyList(missing));
    if (!extra.empty()) msg += fmt::format(" Note that there were extra inputs: {}.", PyList(extra));
    return Status::InvalidArgument(server::BoundMessage(msg));
  }
  if (extra.empty()) return table;
  std::vector<std::string> names;
  std::vector<Column> columns;
  for (const std::string& name : schema.all_names) {
    const int i = table.ColumnIndex(name);
    if (i < 0) continue;
    names.push_back(name);
    columns.push_back(table.column(i));
  }
  Result<Table> t = Table::Make(std::move(names), std::move(columns));
  if (t.ok() && t->num_columns() == 0) return Table::Empty(table.num_rows());
  return t;
}

// Routes as metric labels: fixed strings, never the raw path (bounded cardinality).
std::string RouteLabel(const std::string& path) {
  static const char* kFixed[] = {"/invocations", "/ping", "/health", "/version", "/metrics",
                                 "/v2/health/live", "/v2/health/ready", "/v2"};
  for (const char* r : kFixed)
    if (path == r) return r;
  if (path.rfind("/v2/models/", 0) == 0) {
    if (path.size() > 6 && path.compare(path.size() - 6, 6, "/infer") == 0) return "/v2/models/{name}/infer";
    if (path.size() > 6 && path.compare(path.size() - 6, 6, "/ready") == 0) return "/v2/models/{name}/ready";
    return "/v2/models/{name}";
  }
  return "other";
}

thread_local Clock::time_point t_request_start;

}  // namespace

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
    if (key->is_string() && key->as_string() == "rows")
      return {true, "the python_function flavor sets batching: rows"};
    if (key->is_string() && key->as_string() == "off")
      return {false, "the python_function flavor sets batching: off"};
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

struct Server::Impl {
  ServerOptions options;
  httplib::Server http;
  std::thread listener;
  std::promise<void> stopped_promise;
  std::shared_future<void> stopped;
  int port = 0;

  Metrics metrics;
  std::mutex mu;
  std::shared_ptr<Model> model;        // guarded by mu; set once
  std::shared_ptr<Batcher> batcher;    // guarded by mu; set once
  InputSchema input_schema;            // written once before `ready`
  BatchingDecision batching;           // written once before `ready`
  // How request bodies are read (the signature's types and params): written once
  // before `ready`, so that a request copies nothing to parse.
  JsonReadOptions json_options;
  CsvReadOptions csv_options;
  std::atomic<bool> ready{false};
  std::atomic<bool> draining{false};
  // Scoring requests received in full and not yet answered (what a drain waits for).
  std::mutex inflight_mu;
  std::condition_variable inflight_cv;
  int inflight = 0;  // guarded by inflight_mu
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

  static void Reply(httplib::Response& res, const HttpError& e) {
    res.status = e.status;
    if (!e.header_name.empty()) res.set_header(e.header_name.c_str(), e.header_value);
    res.set_content(e.body, e.content_type.c_str());
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

  void Invocations(const httplib::Request& req, httplib::Response& res) {
    InFlight guard(this);
    const Clock::time_point deadline = t_request_start + options.timeout;
    if (!ready.load()) {
      return Reply(res, HttpErrorFromStatus(Status::Unavailable(draining.load() ? "the server is shutting down"
                                                                                : "the model is not loaded yet")));
    }
    std::optional<HttpError> refusal;
    Result<BodyFormat> format = CheckContentType(req.get_header_value("Content-Type"), &refusal);
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
    // A unified LLM body is checked against the signature by the model's own enforcement.
    Result<Table> enforced = unwrapped ? Result<Table>(std::move(table)) : EnforceColumns(table, input_schema);
    if (!enforced.ok()) return Reply(res, HttpErrorFromStatus(enforced.status()));
    metrics.ObserveStage(Stage::kParse, Seconds(Clock::now() - parse_start));

    Result<Prediction> p = Score(std::move(enforced).value(), std::move(params), deadline, shape);
    if (!p.ok()) return Reply(res, HttpErrorFromStatus(p.status()));

    const Clock::time_point ser_start = Clock::now();
    res.status = 200;
    if (unwrapped) {
      std::string body;
      AppendPredictionJson(*p, &body);
      res.set_content(body, kJson);
    } else {
      res.set_content(PredictionsToJson(*p), kJson);
    }
    metrics.ObserveStage(Stage::kSerialize, Seconds(Clock::now() - ser_start));
  }

  void OipInfer(const httplib::Request& req, httplib::Response& res) {
    InFlight guard(this);
    const Clock::time_point deadline = t_request_start + options.timeout;
    const std::string name = req.matches[1];
    auto fail = [&](const HttpError& e) {
      HttpError oip = e;
      if (e.status != 504) {
        nlohmann::json j = nlohmann::json::parse(e.body, nullptr, false);
        std::string msg = j.is_object() && j.contains("message") ? j["message"].get<std::string>() : e.body;
        if (j.is_object() && j.contains("stack_trace")) msg += ": " + j["stack_trace"].get<std::string>();
        oip.body = OipError(msg);
      } else {
        oip.body = OipError(e.body);
      }
      oip.content_type = kJson;
      Reply(res, oip);
    };
    if (name != options.model_name) {
      res.status = 404;
      return res.set_content(OipError("Model " + name + " not found"), kJson);
    }
    const Clock::time_point parse_start = Clock::now();
    Result<OipRequest> parsed = ParseOipRequest(req.body);
    if (!parsed.ok()) return fail(HttpErrorFromStatus(parsed.status()));
    Result<Table> enforced = EnforceColumns(parsed->table, input_schema);
    if (!enforced.ok()) return fail(HttpErrorFromStatus(enforced.status()));
    metrics.ObserveStage(Stage::kParse, Seconds(Clock::now() - parse_start));
    Result<Prediction> p = Score(std::move(enforced).value(), std::move(parsed->params), deadline);
    if (!p.ok()) return fail(HttpErrorFromStatus(p.status()));
    const Clock::time_point ser_start = Clock::now();
    res.status = 200;
    res.set_content(OipResponse(options.model_name, parsed->id, *p), kJson);
    metrics.ObserveStage(Stage::kSerialize, Seconds(Clock::now() - ser_start));
  }

  void OipModelMetadata(const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    if (name != options.model_name) {
      res.status = 404;
      return res.set_content(OipError("Model " + name + " not found"), kJson);
    }
    nlohmann::json inputs = nlohmann::json::array();
    for (const auto& [col, type] : input_schema.typed)
      inputs.push_back({{"name", col}, {"datatype", OipDatatype(type)}, {"shape", {-1}}});
    nlohmann::json out = {{"name", options.model_name},
                          {"versions", nlohmann::json::array()},
                          {"platform", "mlflow-pyfunc"},
                          {"inputs", std::move(inputs)},
                          {"outputs", nlohmann::json::array()}};
    res.set_content(out.dump(), kJson);
  }

  void Register() {
    http.Get("/ping", [this](const httplib::Request&, httplib::Response& res) {
      res.status = ready.load() ? 200 : 404;
      res.set_content("\n", kJson);
    });
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      res.status = ready.load() ? 200 : 404;
      res.set_content("\n", kJson);
    });
    http.Get("/version", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(PYFUNC_VERSION, kJson);
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
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
      res.set_content(metrics.Render(g), "text/plain; version=0.0.4; charset=utf-8");
    });
    http.Post("/invocations", [this](const httplib::Request& req, httplib::Response& res) { Invocations(req, res); });

    http.Get("/v2/health/live", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"live": true})", kJson);
    });
    http.Get("/v2/health/ready", [this](const httplib::Request&, httplib::Response& res) {
      const bool r = ready.load();
      res.status = r ? 200 : 503;
      res.set_content(r ? R"({"ready": true})" : R"({"ready": false})", kJson);
    });
    http.Get("/v2", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(nlohmann::json{{"name", "pyfunc"}, {"version", PYFUNC_VERSION}, {"extensions", nlohmann::json::array()}}
                          .dump(),
                      kJson);
    });
    http.Get(R"(/v2/models/([^/]+)/ready)", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string name = req.matches[1];
      if (name != options.model_name) {
        res.status = 404;
        return res.set_content(OipError("Model " + name + " not found"), kJson);
      }
      const bool r = ready.load();
      res.status = r ? 200 : 503;
      res.set_content(nlohmann::json{{"name", name}, {"ready", r}}.dump(), kJson);
    });
    http.Get(R"(/v2/models/([^/]+))",
             [this](const httplib::Request& req, httplib::Response& res) { OipModelMetadata(req, res); });
    http.Post(R"(/v2/models/([^/]+)/infer)",
              [this](const httplib::Request& req, httplib::Response& res) { OipInfer(req, res); });

    http.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
      t_request_start = Clock::now();
      return httplib::Server::HandlerResponse::Unhandled;
    });
    // Called for every response with status >= 400, including our own: fill in a body
    // only where the library produced none (unknown route, oversized body, bad request line).
    http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                       httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      HttpError e;
      if (res.status == 413) {
        e = PayloadTooLarge(options.max_body_size);
      } else if (res.status == 404) {
        e = HttpErrorFromStatus(Status::NotFound("No route for " + req.method + " " + req.path));
        e.body.replace(e.body.find("RESOURCE_DOES_NOT_EXIST"), 23, "ENDPOINT_NOT_FOUND");
      } else {
        e = HttpErrorFromStatus(Status::InvalidArgument(fmt::format("HTTP error {}", res.status)));
        e.status = res.status;
      }
      res.set_content(e.body, e.content_type.c_str());
      return httplib::Server::HandlerResponse::Handled;
    }));
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      const double total = Seconds(Clock::now() - t_request_start);
      const std::string route = RouteLabel(req.path);
      metrics.CountRequest(route, res.status);
      if (route == "/invocations" || route == "/v2/models/{name}/infer") metrics.ObserveStage(Stage::kTotal, total);
      if (options.access_log) {
        fmt::print(stderr, "{} \"{} {} {}\" {} {} {:.3f}ms\n", req.remote_addr, req.method, req.path, req.version,
                   res.status, res.body.size(), total * 1e3);
      }
    });
  }
};

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  Impl& s = *impl;
  s.http.new_task_queue = [n = std::max(1, options.http_threads)] { return new httplib::ThreadPool(n); };
  s.http.set_tcp_nodelay(true);  // responses go out as two writes: no Nagle delay on the second
  s.http.set_keep_alive_max_count(1u << 30);
  s.http.set_keep_alive_timeout(options.keep_alive_timeout.count());
  s.http.set_read_timeout(options.read_timeout.count(), 0);
  s.http.set_write_timeout(options.read_timeout.count(), 0);
  s.http.set_payload_max_length(options.max_body_size);
  // httplib listens with a backlog of 5, which resets connections under a burst of
  // connects; remember the listening socket to raise the backlog after bind.
  int listen_fd = -1;
  s.http.set_socket_options([&listen_fd](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd = sock;
  });
  s.Register();
  if (options.port == 0) {
    s.port = s.http.bind_to_any_port(options.host);
    if (s.port <= 0) return Status::IOError(fmt::format("cannot listen on {}: no free port", options.host));
  } else {
    if (!s.http.bind_to_port(options.host, options.port))
      return Status::IOError(fmt::format("cannot listen on {}:{} (address in use or not available)", options.host,
                                         options.port));
    s.port = options.port;
  }
  if (listen_fd >= 0) ::listen(listen_fd, SOMAXCONN);  // on Linux, a second listen() resizes the backlog
  s.stopped = s.stopped_promise.get_future().share();
  s.listener = std::thread([&s] {
    s.http.listen_after_bind();  // returns after stop(), once every connection thread ended
    s.stopped_promise.set_value();
  });
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

void Server::SetModel(std::shared_ptr<Model> model) {
  Impl& s = *impl_;
  s.input_schema = ReadInputSchema(model->spec());
  s.json_options.schema = s.input_schema.typed;
  s.json_options.params_keys = ReadParamNames(model->spec());
  s.csv_options.schema = s.input_schema.typed;
  s.csv_options.source_name = "<request body>";
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
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
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
      bo,
      [&s](int requests, int64_t rows, double) { s.metrics.ObserveBatch(requests, rows); });
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.model = std::move(model);
    s.batcher = std::move(batcher);
  }
  if (!s.draining.load()) s.ready = true;
}

int Server::port() const { return impl_->port; }
BatchingDecision Server::batching() const { return impl_->batching; }
bool Server::ready() const { return impl_->ready.load(); }

Status Server::Drain(std::chrono::milliseconds grace) {
  Impl& s = *impl_;
  s.draining = true;
  s.ready = false;
  s.http.stop();  // closes the listening socket; connections end after their current request
  {
    // Requests already received finish (their batches run); idle keep-alive
    // connections are not waited for: they would hold the drain for the keep-alive timeout.
    std::unique_lock<std::mutex> lock(s.inflight_mu);
    if (!s.inflight_cv.wait_for(lock, grace, [&] { return s.inflight == 0; })) {
      return Status::DeadlineExceeded(fmt::format("{} requests were still running after the grace period of {} ms",
                                                  s.inflight, grace.count()));
    }
  }
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

void Server::Wait() { impl_->stopped.wait(); }

Server::~Server() {
  Impl& s = *impl_;
  s.ready = false;
  s.http.stop();
  if (s.listener.joinable()) s.listener.join();
  if (std::shared_ptr<Batcher> b = s.GetBatcher()) b->Shutdown();
}

}  // namespace pyfunc
