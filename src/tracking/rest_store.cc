// RestStore: an MLflow tracking server through its REST API (/api/2.0/mlflow/...), and
// the server's artifact proxy (/api/2.0/mlflow-artifacts/artifacts/...) for
// `mlflow-artifacts:` URIs.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "tracking/http_client.h"
#include "tracking/tracking_internal.h"

namespace pyfunc::tracking_internal {
namespace {

using json = nlohmann::json;

constexpr const char* kApi = "/api/2.0/mlflow";
constexpr const char* kArtifactsApi = "/api/2.0/mlflow-artifacts/artifacts";

std::string JStr(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  return it->dump();
}

int64_t JInt(const json& j, const char* key, int64_t fallback = 0) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (it->is_number()) return it->get<int64_t>();
  if (it->is_string()) {
    try {
      return std::stoll(it->get<std::string>());
    } catch (...) {
      return fallback;
    }
  }
  return fallback;
}

// The MLflow error body ({"error_code": ..., "message": ...}) -> Status.
Status ErrorOf(const std::string& what, const HttpResponse& r) {
  std::string code, message;
  try {
    json j = json::parse(r.body);
    code = JStr(j, "error_code");
    message = JStr(j, "message");
  } catch (...) {}
  if (message.empty()) message = r.body.substr(0, 300);
  std::string msg = what + ": " + (message.empty() ? "HTTP " + std::to_string(r.status) : message);
  if (code == "RESOURCE_DOES_NOT_EXIST" || code == "NOT_FOUND" || r.status == 404) return Status::NotFound(msg);
  if (code == "RESOURCE_ALREADY_EXISTS") return Status::AlreadyExists(msg);
  if (code == "INVALID_PARAMETER_VALUE" || code == "BAD_REQUEST" || r.status == 400) {
    return Status::InvalidArgument(msg);
  }
  return Status::IOError(msg + " (HTTP " + std::to_string(r.status) + ")");
}

Result<json> Call(HttpClient& http, const std::string& method, const std::string& path, const json& body,
                  const std::string& what) {
  std::string payload = method == "GET" ? "" : body.dump();
  PYFUNC_ASSIGN_OR_RETURN(HttpResponse r, http.Request(method, path, payload));
  if (r.status < 200 || r.status >= 300) return ErrorOf(what, r);
  if (r.body.empty()) return json::object();
  try {
    return json::parse(r.body);
  } catch (const std::exception& e) {
    return Status::IOError(what + ": the server answered something that is not JSON: " + r.body.substr(0, 200));
  }
}

Experiment ExperimentOf(const json& j) {
  Experiment e;
  e.experiment_id = JStr(j, "experiment_id");
  e.name = JStr(j, "name");
  e.artifact_location = JStr(j, "artifact_location");
  e.lifecycle_stage = JStr(j, "lifecycle_stage");
  if (e.lifecycle_stage.empty()) e.lifecycle_stage = "active";
  e.creation_time = JInt(j, "creation_time");
  e.last_update_time = JInt(j, "last_update_time");
  return e;
}

Run RunOf(const json& j) {
  Run run;
  const json& info = j.contains("info") ? j["info"] : json::object();
  run.info.run_id = JStr(info, "run_id");
  if (run.info.run_id.empty()) run.info.run_id = JStr(info, "run_uuid");
  run.info.experiment_id = JStr(info, "experiment_id");
  run.info.run_name = JStr(info, "run_name");
  run.info.user_id = JStr(info, "user_id");
  run.info.artifact_uri = JStr(info, "artifact_uri");
  run.info.lifecycle_stage = JStr(info, "lifecycle_stage");
  if (run.info.lifecycle_stage.empty()) run.info.lifecycle_stage = "active";
  auto status = ParseRunStatus(JStr(info, "status"));
  run.info.status = status.ok() ? *status : RunStatus::kRunning;
  run.info.start_time = JInt(info, "start_time");
  if (info.contains("end_time") && !info["end_time"].is_null()) run.info.end_time = JInt(info, "end_time");
  if (j.contains("data")) {
    const json& data = j["data"];
    if (data.contains("params"))
      for (const json& p : data["params"]) run.data.params[JStr(p, "key")] = JStr(p, "value");
    if (data.contains("tags"))
      for (const json& t : data["tags"]) run.data.tags[JStr(t, "key")] = JStr(t, "value");
    if (data.contains("metrics")) {
      for (const json& m : data["metrics"]) {
        Metric metric;
        metric.key = JStr(m, "key");
        metric.value = m.contains("value") && m["value"].is_number() ? m["value"].get<double>() : 0.0;
        metric.timestamp = JInt(m, "timestamp");
        metric.step = JInt(m, "step");
        run.data.metrics.push_back(metric);
      }
    }
  }
  return run;
}

LoggedModel LoggedModelOf(const json& j) {
  const json& info = j.contains("info") ? j["info"] : j;
  LoggedModel m;
  m.model_id = JStr(info, "model_id");
  m.name = JStr(info, "name");
  m.experiment_id = JStr(info, "experiment_id");
  m.source_run_id = JStr(info, "source_run_id");
  m.artifact_location = JStr(info, "artifact_uri");
  m.creation_timestamp = JInt(info, "creation_timestamp_ms");
  m.model_type = JStr(info, "model_type");
  std::string status = JStr(info, "status");
  if (status == "LOGGED_MODEL_PENDING") m.status = LoggedModelStatus::kPending;
  if (status == "LOGGED_MODEL_READY") m.status = LoggedModelStatus::kReady;
  if (status == "LOGGED_MODEL_UPLOAD_FAILED") m.status = LoggedModelStatus::kFailed;
  return m;
}

const char* LoggedModelStatusProto(LoggedModelStatus status) {
  switch (status) {
    case LoggedModelStatus::kPending: return "LOGGED_MODEL_PENDING";
    case LoggedModelStatus::kReady: return "LOGGED_MODEL_READY";
    case LoggedModelStatus::kFailed: return "LOGGED_MODEL_UPLOAD_FAILED";
    case LoggedModelStatus::kUnspecified: break;
  }
  return "LOGGED_MODEL_STATUS_UNSPECIFIED";
}

json KeyValues(const std::map<std::string, std::string>& kv) {
  json out = json::array();
  for (const auto& [k, v] : kv) out.push_back({{"key", k}, {"value", v}});
  return out;
}

class ProxyArtifactRepository final : public ArtifactRepository {
 public:
  ProxyArtifactRepository(std::shared_ptr<HttpClient> http, std::string base)
      : http_(std::move(http)), base_(std::move(base)) {
    while (!base_.empty() && base_.front() == '/') base_.erase(0, 1);
    while (!base_.empty() && base_.back() == '/') base_.pop_back();
  }

  std::string LocalRoot() const override { return ""; }

  Status UploadFile(const std::string& local_file, const std::string& path) override {
    PYFUNC_ASSIGN_OR_RETURN(std::string norm, NormalizeArtifactPath(path));
    if (norm.empty()) return Status::InvalidArgument("artifact path '" + path + "': names the root, not a file");
    std::string full = JoinArtifactPath(base_, norm);
    PYFUNC_ASSIGN_OR_RETURN(HttpResponse r,
                            http_->UploadFile(std::string(kArtifactsApi) + "/" + UrlEncode(full, true), local_file));
    if (r.status < 200 || r.status >= 300) return ErrorOf("upload artifact " + full, r);
    return Status::OK();
  }

  Result<std::vector<ArtifactInfo>> List(const std::string& path) override {
    PYFUNC_ASSIGN_OR_RETURN(std::string norm, NormalizeArtifactPath(path));
    std::string full = JoinArtifactPath(base_, norm);
    PYFUNC_ASSIGN_OR_RETURN(json j, Call(*http_, "GET", std::string(kArtifactsApi) + "?path=" + UrlEncode(full, false),
                                         json::object(), "list artifacts " + full));
    std::vector<ArtifactInfo> out;
    if (!j.contains("files")) return out;
    for (const json& f : j["files"]) {
      std::string p = JStr(f, "path");
      std::string name = p.substr(p.rfind('/') == std::string::npos ? 0 : p.rfind('/') + 1);
      if (name.empty()) continue;
      ArtifactInfo info;
      info.path = JoinArtifactPath(norm, name);
      info.is_dir = f.contains("is_dir") && f["is_dir"].is_boolean() && f["is_dir"].get<bool>();
      info.file_size = JInt(f, "file_size");
      out.push_back(std::move(info));
    }
    return out;
  }

  Status DownloadFile(const std::string& path, const std::string& local_file) override {
    PYFUNC_ASSIGN_OR_RETURN(std::string norm, NormalizeArtifactPath(path));
    std::string full = JoinArtifactPath(base_, norm);
    PYFUNC_ASSIGN_OR_RETURN(
        HttpResponse r, http_->DownloadToFile(std::string(kArtifactsApi) + "/" + UrlEncode(full, true), local_file));
    if (r.status != 200) return ErrorOf("download artifact " + full, r);
    return Status::OK();
  }

 private:
  std::shared_ptr<HttpClient> http_;
  std::string base_;
};

class RestStore final : public TrackingStore {
 public:
  RestStore(std::string uri) : uri_(std::move(uri)), http_(std::make_shared<HttpClient>(uri_)) {}

  const std::string& uri() const override { return uri_; }

  Result<std::vector<Experiment>> ListExperiments() override {
    std::vector<Experiment> out;
    std::string token;
    do {
      json body = {{"max_results", 1000}, {"view_type", "ACTIVE_ONLY"}};
      if (!token.empty()) body["page_token"] = token;
      PYFUNC_ASSIGN_OR_RETURN(json j, Call(*http_, "POST", Api("/experiments/search"), body, "search experiments"));
      if (j.contains("experiments"))
        for (const json& e : j["experiments"]) out.push_back(ExperimentOf(e));
      token = JStr(j, "next_page_token");
    } while (!token.empty());
    return out;
  }

  Result<Experiment> GetExperiment(const std::string& experiment_id) override {
    PYFUNC_ASSIGN_OR_RETURN(
        json j, Call(*http_, "GET", Api("/experiments/get?experiment_id=" + UrlEncode(experiment_id, false)),
                     json::object(), "experiment '" + experiment_id + "'"));
    return ExperimentOf(j.value("experiment", json::object()));
  }

  Result<Experiment> GetExperimentByName(const std::string& name) override {
    PYFUNC_ASSIGN_OR_RETURN(
        json j, Call(*http_, "GET", Api("/experiments/get-by-name?experiment_name=" + UrlEncode(name, false)),
                     json::object(), "experiment '" + name + "'"));
    return ExperimentOf(j.value("experiment", json::object()));
  }

  Result<std::string> CreateExperiment(const std::string& name) override {
    PYFUNC_ASSIGN_OR_RETURN(
        json j, Call(*http_, "POST", Api("/experiments/create"), {{"name", name}}, "create experiment '" + name + "'"));
    return JStr(j, "experiment_id");
  }

  Result<RunInfo> CreateRun(const CreateRunRequest& request) override {
    std::map<std::string, std::string> tags = request.tags;
    std::string user = request.user_id;
    if (user.empty()) {
      const char* u = std::getenv("USER");
      user = u != nullptr && *u != '\0' ? u : "unknown";
    }
    std::string name = request.run_name.empty() ? NewRunName() : request.run_name;
    tags["mlflow.runName"] = name;
    tags.emplace("mlflow.user", user);
    tags.emplace("mlflow.source.type", "LOCAL");
    json body = {{"experiment_id", request.experiment_id},
                 {"user_id", user},
                 {"run_name", name},
                 {"start_time", request.start_time != 0 ? request.start_time : NowMillis()},
                 {"tags", KeyValues(tags)}};
    PYFUNC_ASSIGN_OR_RETURN(json j, Call(*http_, "POST", Api("/runs/create"), body, "create run"));
    return RunOf(j.value("run", json::object())).info;
  }

  Status UpdateRun(const std::string& run_id, RunStatus status, std::optional<int64_t> end_time) override {
    PYFUNC_RETURN_IF_ERROR(ValidateRunId(run_id));
    json body = {{"run_id", run_id}, {"run_uuid", run_id}, {"status", RunStatusName(status)}};
    if (end_time) body["end_time"] = *end_time;
    return Call(*http_, "POST", Api("/runs/update"), body, "update run " + run_id).status();
  }

  Result<Run> GetRun(const std::string& run_id) override {
    PYFUNC_RETURN_IF_ERROR(ValidateRunId(run_id));
    PYFUNC_ASSIGN_OR_RETURN(
        json j, Call(*http_, "GET", Api("/runs/get?run_id=" + run_id), json::object(), "run '" + run_id + "'"));
    return RunOf(j.value("run", json::object()));
  }

  Result<std::vector<Run>> SearchRuns(const std::vector<std::string>& experiment_ids) override {
    std::vector<Run> out;
    std::string token;
    do {
      json body = {{"experiment_ids", experiment_ids},
                   {"max_results", 1000},
                   {"run_view_type", "ACTIVE_ONLY"},
                   {"order_by", json::array({"attributes.start_time DESC"})}};
      if (!token.empty()) body["page_token"] = token;
      PYFUNC_ASSIGN_OR_RETURN(json j, Call(*http_, "POST", Api("/runs/search"), body, "search runs"));
      if (j.contains("runs"))
        for (const json& r : j["runs"]) out.push_back(RunOf(r));
      token = JStr(j, "next_page_token");
    } while (!token.empty());
    return out;
  }

  Status LogBatch(const std::string& run_id, const std::vector<Metric>& metrics,
                  const std::map<std::string, std::string>& params,
                  const std::map<std::string, std::string>& tags) override {
    PYFUNC_RETURN_IF_ERROR(ValidateRunId(run_id));
    for (const Metric& m : metrics) PYFUNC_RETURN_IF_ERROR(ValidateKey(m.key, "metric"));
    for (const auto& [k, v] : params) PYFUNC_RETURN_IF_ERROR(ValidateKey(k, "param"));
    for (const auto& [k, v] : tags) PYFUNC_RETURN_IF_ERROR(ValidateKey(k, "tag"));
    // The server takes at most 1000 metrics, 100 params and 100 tags per call.
    json m_all = json::array();
    for (const Metric& m : metrics) {
      json jm = {{"key", m.key}, {"timestamp", m.timestamp}, {"step", m.step}};
      if (std::isfinite(m.value)) {
        jm["value"] = m.value;
      } else {
        jm["value"] = std::isnan(m.value) ? "NaN" : (m.value > 0 ? "Infinity" : "-Infinity");
      }
      m_all.push_back(jm);
    }
    json p_all = KeyValues(params), t_all = KeyValues(tags);
    size_t mi = 0, pi = 0, ti = 0;
    int batches = 0;
    while (mi < m_all.size() || pi < p_all.size() || ti < t_all.size() || batches == 0) {
      json body = {{"run_id", run_id}, {"metrics", json::array()}, {"params", json::array()}, {"tags", json::array()}};
      for (size_t n = 0; n < 1000 && mi < m_all.size(); ++n) body["metrics"].push_back(m_all[mi++]);
      for (size_t n = 0; n < 100 && pi < p_all.size(); ++n) body["params"].push_back(p_all[pi++]);
      for (size_t n = 0; n < 100 && ti < t_all.size(); ++n) body["tags"].push_back(t_all[ti++]);
      Status st = Call(*http_, "POST", Api("/runs/log-batch"), body, "log batch to run " + run_id).status();
      if (!st.ok()) {
        if (batches > 0) {
          return st.WithContext("log batch: " + std::to_string(batches) + " earlier batch(es) were already logged");
        }
        return st;
      }
      ++batches;
    }
    return Status::OK();
  }

  Result<std::vector<Metric>> GetMetricHistory(const std::string& run_id, const std::string& key) override {
    PYFUNC_RETURN_IF_ERROR(ValidateRunId(run_id));
    std::vector<Metric> out;
    std::string token;
    do {
      std::string path =
          Api("/metrics/get-history?run_id=" + run_id + "&metric_key=" + UrlEncode(key, false) + "&max_results=25000");
      if (!token.empty()) path += "&page_token=" + UrlEncode(token, false);
      PYFUNC_ASSIGN_OR_RETURN(json j, Call(*http_, "GET", path, json::object(), "metric history '" + key + "'"));
      if (j.contains("metrics")) {
        for (const json& m : j["metrics"]) {
          Metric metric;
          metric.key = JStr(m, "key");
          metric.value = m.contains("value") && m["value"].is_number() ? m["value"].get<double>() : 0.0;
          metric.timestamp = JInt(m, "timestamp");
          metric.step = JInt(m, "step");
          out.push_back(metric);
        }
      }
      token = JStr(j, "next_page_token");
    } while (!token.empty());
    return out;
  }

  Result<std::vector<LoggedModel>> SearchLoggedModels(const std::string& experiment_id, const std::string& name,
                                                      const std::string& source_run_id) override {
    json body = {{"experiment_ids", json::array({experiment_id})}, {"max_results", 100}};
    if (!source_run_id.empty()) {
      PYFUNC_RETURN_IF_ERROR(ValidateRunId(source_run_id));
      body["filter"] = "source_run_id = '" + source_run_id + "'";
    }
    PYFUNC_ASSIGN_OR_RETURN(json j, Call(*http_, "POST", Api("/logged-models/search"), body, "search logged models"));
    std::vector<LoggedModel> out;
    if (j.contains("models")) {
      for (const json& m : j["models"]) {
        LoggedModel lm = LoggedModelOf(m);
        if (name.empty() || lm.name == name) out.push_back(std::move(lm));
      }
    }
    return out;
  }

  Result<LoggedModel> GetLoggedModel(const std::string& model_id) override {
    if (!ValidateRunId(model_id).ok()) return Status::NotFound("logged model '" + model_id + "': no such model");
    PYFUNC_ASSIGN_OR_RETURN(json j, Call(*http_, "GET", Api("/logged-models/" + model_id), json::object(),
                                         "logged model '" + model_id + "'"));
    return LoggedModelOf(j.value("model", json::object()));
  }

  // MLflow >= 3.0 servers have the logged-models endpoints; older ones answer 404 without
  // an MLflow error code (the route does not exist). Asked once per store.
  Result<bool> SupportsLoggedModels() override {
    if (int known = supports_logged_models_.load(); known >= 0) return known == 1;
    json body = {{"experiment_ids", json::array({kDefaultExperimentId})}, {"max_results", 1}};
    PYFUNC_ASSIGN_OR_RETURN(HttpResponse r, http_->Request("POST", Api("/logged-models/search"), body.dump()));
    bool supported;
    if (r.status >= 200 && r.status < 300) {
      supported = true;
    } else if (r.status == 404 || r.status == 405 || r.status == 501) {
      std::string code;
      try {
        code = JStr(json::parse(r.body), "error_code");
      } catch (...) {}
      supported = code == "RESOURCE_DOES_NOT_EXIST";  // the route exists; experiment 0 does not
    } else {
      return ErrorOf("search logged models", r);
    }
    supports_logged_models_ = supported ? 1 : 0;
    return supported;
  }

  Result<LoggedModel> CreateLoggedModel(const CreateLoggedModelRequest& request) override {
    json body = {{"experiment_id", request.experiment_id},
                 {"params", KeyValues(request.params)},
                 {"tags", KeyValues(request.tags)}};
    if (!request.name.empty()) body["name"] = request.name;
    if (!request.model_type.empty()) body["model_type"] = request.model_type;
    if (!request.source_run_id.empty()) {
      PYFUNC_RETURN_IF_ERROR(ValidateRunId(request.source_run_id));
      body["source_run_id"] = request.source_run_id;
    }
    PYFUNC_ASSIGN_OR_RETURN(json j, Call(*http_, "POST", Api("/logged-models"), body, "create logged model"));
    return LoggedModelOf(j.value("model", json::object()));
  }

  Status FinalizeLoggedModel(const std::string& model_id, LoggedModelStatus status) override {
    if (!ValidateRunId(model_id).ok()) return Status::NotFound("logged model '" + model_id + "': no such model");
    json body = {{"model_id", model_id}, {"status", LoggedModelStatusProto(status)}};
    return Call(*http_, "PATCH", Api("/logged-models/" + model_id), body, "finalize logged model " + model_id).status();
  }

  Status LogOutputs(const std::string& run_id, const std::vector<std::string>& model_ids, int64_t step) override {
    PYFUNC_RETURN_IF_ERROR(ValidateRunId(run_id));
    json models = json::array();
    for (const std::string& id : model_ids) models.push_back({{"model_id", id}, {"step", step}});
    return Call(*http_, "POST", Api("/runs/outputs"), {{"run_id", run_id}, {"models", models}},
                "log outputs of run " + run_id)
        .status();
  }

  Status LogInputs(const std::string& run_id, const std::vector<DatasetInput>& datasets,
                   const std::vector<std::string>& model_ids) override {
    PYFUNC_RETURN_IF_ERROR(ValidateRunId(run_id));
    json ds = json::array();
    for (const DatasetInput& d : datasets) {
      json dataset = {{"name", d.name}, {"digest", d.digest}, {"source_type", d.source_type}, {"source", d.source}};
      if (!d.schema.empty()) dataset["schema"] = d.schema;
      if (!d.profile.empty()) dataset["profile"] = d.profile;
      ds.push_back({{"tags", KeyValues(d.tags)}, {"dataset", dataset}});
    }
    json models = json::array();
    for (const std::string& id : model_ids) models.push_back({{"model_id", id}});
    json body = {{"run_id", run_id}, {"datasets", ds}};
    if (!models.empty()) body["models"] = models;
    return Call(*http_, "POST", Api("/runs/log-inputs"), body, "log inputs of run " + run_id).status();
  }

  Result<std::string> GetModelVersionDownloadUri(const std::string& name, const std::string& version) override {
    std::string v = version;
    if (v == "latest" || v == "LATEST" || v == "Latest") {
      PYFUNC_ASSIGN_OR_RETURN(json j, Call(*http_, "POST", Api("/registered-models/get-latest-versions"),
                                           {{"name", name}}, "registered model '" + name + "'"));
      int64_t best = -1;
      if (j.contains("model_versions"))
        for (const json& mv : j["model_versions"]) best = std::max(best, JInt(mv, "version", -1));
      if (best < 0) return Status::NotFound("registered model '" + name + "': has no versions");
      v = std::to_string(best);
    }
    PYFUNC_ASSIGN_OR_RETURN(json j, Call(*http_, "GET",
                                         Api("/model-versions/get-download-uri?name=" + UrlEncode(name, false) +
                                             "&version=" + UrlEncode(v, false)),
                                         json::object(), "registered model '" + name + "' version " + v));
    return JStr(j, "artifact_uri");
  }

  Result<std::string> GetModelVersionByAlias(const std::string& name, const std::string& alias) override {
    PYFUNC_ASSIGN_OR_RETURN(json j, Call(*http_, "GET",
                                         Api("/registered-models/alias?name=" + UrlEncode(name, false) +
                                             "&alias=" + UrlEncode(alias, false)),
                                         json::object(), "registered model '" + name + "' alias '" + alias + "'"));
    return JStr(j.value("model_version", json::object()), "version");
  }

  Result<std::unique_ptr<ArtifactRepository>> OpenArtifacts(const std::string& artifact_uri) override {
    std::string scheme = UriScheme(artifact_uri);
    if (scheme == "mlflow-artifacts") {
      std::string rest = artifact_uri.substr(std::strlen("mlflow-artifacts:"));
      // mlflow-artifacts://host:port/path names the server explicitly; else this server.
      std::shared_ptr<HttpClient> http = http_;
      if (rest.rfind("//", 0) == 0) {
        size_t slash = rest.find('/', 2);
        std::string host = rest.substr(2, slash == std::string::npos ? std::string::npos : slash - 2);
        rest = slash == std::string::npos ? "" : rest.substr(slash);
        if (!host.empty()) {
          std::string proto = uri_.substr(0, uri_.find(':'));
          http = std::make_shared<HttpClient>(proto + "://" + host);
        }
      }
      return std::unique_ptr<ArtifactRepository>(new ProxyArtifactRepository(http, rest));
    }
    std::string path = LocalPathOfUri(artifact_uri);
    if (!path.empty()) return std::unique_ptr<ArtifactRepository>(new LocalArtifactRepository(path));
    return Status::InvalidArgument("artifact URI '" + artifact_uri + "': scheme '" + scheme +
                                   ":' is not supported (run the MLflow server with --serve-artifacts)");
  }

 private:
  static std::string Api(const std::string& path) { return std::string(kApi) + path; }

  std::string uri_;
  std::shared_ptr<HttpClient> http_;
  std::atomic<int> supports_logged_models_{-1};  // unknown, no, yes
};

}  // namespace

std::unique_ptr<ArtifactRepository> NewProxyArtifactRepository(std::shared_ptr<HttpClient> http, std::string base) {
  return std::make_unique<ProxyArtifactRepository>(std::move(http), std::move(base));
}

Result<std::unique_ptr<TrackingStore>> NewRestStore(const std::string& uri) {
  std::string base = uri;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (base.find("://") == std::string::npos || base.size() <= base.find("://") + 3) {
    return Status::InvalidArgument("tracking URI '" + uri + "': no host");
  }
  return std::unique_ptr<TrackingStore>(new RestStore(base));
}

}  // namespace pyfunc::tracking_internal
