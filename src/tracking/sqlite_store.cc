// SqliteStore: read-only access to MLflow's SQLAlchemy store in a SQLite file (MLflow
// 3.7+'s default `sqlite:///mlflow.db`), far enough to resolve `runs:/` and `models:/`
// URIs: experiments, runs with params/tags/latest metrics, logged models, registered
// model versions and aliases. Writing is refused: log to an MLflow server over that
// database, or to a file store.
#include <sqlite3.h>

#include <algorithm>

#include "tracking/tracking_internal.h"

namespace pyfunc::tracking_internal {
namespace {

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  Statement& Bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.c_str(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  bool Step() { return stmt_ != nullptr && sqlite3_step(stmt_) == SQLITE_ROW; }
  std::string Text(int i) {
    const unsigned char* t = sqlite3_column_text(stmt_, i);
    return t == nullptr ? "" : reinterpret_cast<const char*>(t);
  }
  int64_t Int(int i) { return sqlite3_column_int64(stmt_, i); }
  double Double(int i) { return sqlite3_column_double(stmt_, i); }
  bool IsNull(int i) { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

Status ReadOnly(const std::string& what) {
  return Status::InvalidArgument(what + ": pyfunc reads sqlite tracking stores but does not write them; "
                                        "log to an MLflow server (mlflow server --backend-store-uri sqlite:///...) "
                                        "or to a file store");
}

class SqliteStore final : public TrackingStore {
 public:
  SqliteStore(sqlite3* db, std::string path, std::string uri) : db_(db), path_(std::move(path)), uri_(std::move(uri)) {}
  ~SqliteStore() override { sqlite3_close(db_); }

  const std::string& uri() const override { return uri_; }

  Result<std::vector<Experiment>> ListExperiments() override {
    Statement q(db_, "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time "
                     "FROM experiments WHERE lifecycle_stage = 'active' ORDER BY creation_time DESC");
    if (!q.ok()) return Error("list experiments");
    std::vector<Experiment> out;
    while (q.Step()) out.push_back(ExperimentRow(q));
    return out;
  }

  Result<Experiment> GetExperiment(const std::string& experiment_id) override {
    Statement q(db_, "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time "
                     "FROM experiments WHERE experiment_id = ?");
    if (!q.ok()) return Error("experiment");
    q.Bind(1, experiment_id);
    if (!q.Step()) return Status::NotFound("experiment '" + experiment_id + "': no such experiment in " + uri_);
    return ExperimentRow(q);
  }

  Result<Experiment> GetExperimentByName(const std::string& name) override {
    Statement q(db_, "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time "
                     "FROM experiments WHERE name = ?");
    if (!q.ok()) return Error("experiment");
    q.Bind(1, name);
    if (!q.Step()) return Status::NotFound("experiment '" + name + "': no experiment with this name in " + uri_);
    return ExperimentRow(q);
  }

  Result<std::string> CreateExperiment(const std::string& name) override { return ReadOnly("create experiment"); }
  Result<RunInfo> CreateRun(const CreateRunRequest&) override { return ReadOnly("create run"); }
  Status UpdateRun(const std::string&, RunStatus, std::optional<int64_t>) override { return ReadOnly("update run"); }
  Status LogBatch(const std::string&, const std::vector<Metric>&, const std::map<std::string, std::string>&,
                  const std::map<std::string, std::string>&) override {
    return ReadOnly("log to run");
  }

  Result<Run> GetRun(const std::string& run_id) override {
    PYFUNC_RETURN_IF_ERROR(ValidateRunId(run_id));
    Statement q(db_, "SELECT run_uuid, experiment_id, name, user_id, artifact_uri, lifecycle_stage, status, "
                     "start_time, end_time FROM runs WHERE run_uuid = ?");
    if (!q.ok()) return Error("run");
    q.Bind(1, run_id);
    if (!q.Step()) return Status::NotFound("run '" + run_id + "': no such run in " + uri_);
    Run run;
    run.info = RunRow(q);
    FillData(&run);
    return run;
  }

  Result<std::vector<Run>> SearchRuns(const std::vector<std::string>& experiment_ids) override {
    std::vector<Run> out;
    for (const std::string& exp : experiment_ids) {
      Statement q(db_, "SELECT run_uuid, experiment_id, name, user_id, artifact_uri, lifecycle_stage, status, "
                       "start_time, end_time FROM runs WHERE experiment_id = ? AND lifecycle_stage = 'active'");
      if (!q.ok()) return Error("search runs");
      q.Bind(1, exp);
      while (q.Step()) {
        Run run;
        run.info = RunRow(q);
        out.push_back(std::move(run));
      }
    }
    for (Run& r : out) FillData(&r);
    std::sort(out.begin(), out.end(), [](const Run& a, const Run& b) { return a.info.start_time > b.info.start_time; });
    return out;
  }

  Result<std::vector<Metric>> GetMetricHistory(const std::string& run_id, const std::string& key) override {
    Statement q(db_, "SELECT key, value, timestamp, step FROM metrics WHERE run_uuid = ? AND key = ? "
                     "ORDER BY timestamp, step");
    if (!q.ok()) return Error("metric history");
    q.Bind(1, run_id).Bind(2, key);
    std::vector<Metric> out;
    while (q.Step()) out.push_back(Metric{q.Text(0), q.Double(1), q.Int(2), q.Int(3)});
    return out;
  }

  Result<std::vector<LoggedModel>> SearchLoggedModels(const std::string& experiment_id, const std::string& name,
                                                      const std::string& source_run_id) override {
    Statement q(db_, "SELECT model_id, name, experiment_id, source_run_id, artifact_location, creation_timestamp_ms "
                     "FROM logged_models WHERE experiment_id = ? AND lifecycle_stage = 'active' "
                     "ORDER BY creation_timestamp_ms DESC");
    if (!q.ok()) return Error("search logged models");
    q.Bind(1, experiment_id);
    std::vector<LoggedModel> out;
    while (q.Step()) {
      LoggedModel m = ModelRow(q);
      if ((name.empty() || m.name == name) && (source_run_id.empty() || m.source_run_id == source_run_id)) {
        out.push_back(std::move(m));
      }
    }
    return out;
  }

  Result<LoggedModel> GetLoggedModel(const std::string& model_id) override {
    Statement q(db_, "SELECT model_id, name, experiment_id, source_run_id, artifact_location, creation_timestamp_ms "
                     "FROM logged_models WHERE model_id = ?");
    if (!q.ok()) return Error("logged model");
    q.Bind(1, model_id);
    if (!q.Step()) return Status::NotFound("logged model '" + model_id + "': no such model in " + uri_);
    return ModelRow(q);
  }

  Result<std::string> GetModelVersionDownloadUri(const std::string& name, const std::string& version) override {
    std::string v = version;
    if (v == "latest" || v == "LATEST" || v == "Latest") {
      Statement q(db_, "SELECT MAX(version) FROM model_versions WHERE name = ? AND current_stage != 'Deleted_Internal'");
      if (!q.ok()) return Error("registered model");
      q.Bind(1, name);
      if (!q.Step() || q.IsNull(0)) return Status::NotFound("registered model '" + name + "': no such model in " + uri_);
      v = std::to_string(q.Int(0));
    }
    Statement q(db_, "SELECT storage_location, source FROM model_versions WHERE name = ? AND version = ?");
    if (!q.ok()) return Error("model version");
    q.Bind(1, name).Bind(2, v);
    if (!q.Step()) {
      return Status::NotFound("registered model '" + name + "' version " + v + ": no such model version in " + uri_);
    }
    std::string loc = q.Text(0);
    return loc.empty() ? q.Text(1) : loc;
  }

  Result<std::string> GetModelVersionByAlias(const std::string& name, const std::string& alias) override {
    Statement q(db_, "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?");
    if (!q.ok()) return Error("model alias");
    q.Bind(1, name).Bind(2, alias);
    if (!q.Step()) return Status::NotFound("registered model '" + name + "': no alias '" + alias + "' in " + uri_);
    return std::to_string(q.Int(0));
  }

  Result<std::unique_ptr<ArtifactRepository>> OpenArtifacts(const std::string& artifact_uri) override {
    std::string path = LocalPathOfUri(artifact_uri);
    if (path.empty()) {
      return Status::InvalidArgument("artifact URI '" + artifact_uri +
                                     "': not local; these artifacts are served by an MLflow server: use its "
                                     "http:// URI as the tracking URI");
    }
    return std::unique_ptr<ArtifactRepository>(new LocalArtifactRepository(path));
  }

 private:
  Status Error(const std::string& what) {
    return Status::IOError(what + ": " + path_ + ": " + sqlite3_errmsg(db_) + " (is this an MLflow database?)");
  }

  static Experiment ExperimentRow(Statement& q) {
    Experiment e;
    e.experiment_id = q.Text(0);
    e.name = q.Text(1);
    e.artifact_location = q.Text(2);
    e.lifecycle_stage = q.Text(3);
    e.creation_time = q.Int(4);
    e.last_update_time = q.Int(5);
    return e;
  }

  static RunInfo RunRow(Statement& q) {
    RunInfo info;
    info.run_id = q.Text(0);
    info.experiment_id = q.Text(1);
    info.run_name = q.Text(2);
    info.user_id = q.Text(3);
    info.artifact_uri = q.Text(4);
    info.lifecycle_stage = q.Text(5);
    auto status = ParseRunStatus(q.Text(6));
    info.status = status.ok() ? *status : RunStatus::kRunning;
    info.start_time = q.Int(7);
    if (!q.IsNull(8)) info.end_time = q.Int(8);
    return info;
  }

  static LoggedModel ModelRow(Statement& q) {
    LoggedModel m;
    m.model_id = q.Text(0);
    m.name = q.Text(1);
    m.experiment_id = q.Text(2);
    m.source_run_id = q.Text(3);
    m.artifact_location = q.Text(4);
    m.creation_timestamp = q.Int(5);
    return m;
  }

  void FillData(Run* run) {
    {
      Statement q(db_, "SELECT key, value FROM params WHERE run_uuid = ?");
      q.Bind(1, run->info.run_id);
      while (q.Step()) run->data.params[q.Text(0)] = q.Text(1);
    }
    {
      Statement q(db_, "SELECT key, value FROM tags WHERE run_uuid = ?");
      q.Bind(1, run->info.run_id);
      while (q.Step()) run->data.tags[q.Text(0)] = q.Text(1);
    }
    {
      Statement q(db_, "SELECT key, value, timestamp, step FROM latest_metrics WHERE run_uuid = ?");
      q.Bind(1, run->info.run_id);
      while (q.Step()) run->data.metrics.push_back(Metric{q.Text(0), q.Double(1), q.Int(2), q.Int(3)});
    }
  }

  sqlite3* db_;
  std::string path_;
  std::string uri_;
};

}  // namespace

Result<std::unique_ptr<TrackingStore>> NewSqliteStore(const std::string& db_path, std::string uri) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : "cannot open";
    sqlite3_close(db);
    return Status::NotFound("tracking store " + uri + ": " + db_path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  return std::unique_ptr<TrackingStore>(new SqliteStore(db, db_path, std::move(uri)));
}

}  // namespace pyfunc::tracking_internal
