// SqliteStore: MLflow's SQL tracking store in a SQLite file (`sqlite:///mlflow.db`,
// MLflow's default tracking URI since 3.7), read and written the way MLflow's
// SqlAlchemyStore reads and writes it.
//
// Schema. A missing (or empty) database file is created on the first write with the
// schema of kMlflowSchemaRevision (every table, index and trigger of the database that
// MLflow itself creates, see mlflow_sqlite_schema.h), stamped in alembic_version, with
// the Default experiment (id 0). An existing database is written only when its revision
// is one pyfunc knows, from kOldestWritableRevision (MLflow 3's run outputs: inputs.step)
// to kMlflowSchemaRevision, and only in the columns that are there (the tables' columns are
// read with PRAGMA table_info; a NOT NULL column pyfunc would not fill is an error).
// Reading works at any revision.
//
// Rows are those MLflow writes: runs with source_type UNKNOWN and status names, metrics
// with is_nan (NaN stored as 0, +-inf as +-DBL_MAX), latest_metrics by the largest
// (step, timestamp, value), params that cannot change, tags overwritten (mlflow.runName
// also renames the run), logged models with their params and tags, run outputs and
// dataset inputs in `inputs`.
//
// Concurrency. One connection per store, used under a mutex. Each logging call is one
// transaction, begun with BEGIN IMMEDIATE so that it takes the write lock before reading
// (no lock upgrade that could deadlock with another writer); the busy handler waits up to
// $PYFUNC_SQLITE_BUSY_TIMEOUT seconds (default 60) for the lock, and a transaction that
// still finds the database busy is rolled back and retried. Validation happens before the
// transaction, and any error rolls it back: a call is written whole or not at all.
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "base/ids.h"
#include "tracking/mlflow_sqlite_schema.h"
#include "tracking/tracking_internal.h"

namespace pyfunc::tracking_internal {
namespace {

// The oldest revision pyfunc writes: the one that added `inputs.step` (run outputs, MLflow
// 3.0). Older databases predate logged models; `mlflow db upgrade` brings them forward.
constexpr const char* kOldestWritableRevision = "6953534de441";

constexpr size_t kMaxParamValue = 6000;     // MLflow's MAX_PARAM_VAL_LENGTH
constexpr size_t kMaxTagValue = 8000;       // MAX_TAG_VAL_LENGTH
constexpr size_t kMaxExperimentName = 500;  // MAX_EXPERIMENT_NAME_LENGTH
constexpr int kMaxAttempts = 8;             // transactions that found the database busy

class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  int rc() const { return rc_; }
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& Bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.c_str(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindOrNull(int i, const std::string& s) { return s.empty() ? BindNull(i) : Bind(i, s); }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Stmt& Bind(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  Stmt& BindNull(int i) {
    sqlite3_bind_null(stmt_, i);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() {
    if (stmt_ == nullptr) return rc_ == SQLITE_OK ? SQLITE_ERROR : rc_;
    rc_ = sqlite3_step(stmt_);
    return rc_;
  }
  bool Row() { return Step() == SQLITE_ROW; }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::string Text(int i) {
    const unsigned char* t = sqlite3_column_text(stmt_, i);
    return t == nullptr ? "" : std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(stmt_, i));
  }
  int64_t Int(int i) { return sqlite3_column_int64(stmt_, i); }
  double Double(int i) { return sqlite3_column_double(stmt_, i); }
  bool IsNull(int i) { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

bool AllDigits(const std::string& s) {
  return !s.empty() && s.size() < 19 && s.find_first_not_of("0123456789") == std::string::npos;
}

// MLflow's append_to_uri_path for the URIs and paths of artifact roots.
std::string JoinUri(const std::string& base, const std::string& rest) {
  if (base.empty()) return rest;
  if (base.back() == '/') return base + rest;
  return base + "/" + rest;
}

// The value stored for a metric, and is_nan (MLflow's sanitize_metric_value).
std::pair<double, bool> SanitizedMetric(double v) {
  if (std::isnan(v)) return {0.0, true};
  if (std::isinf(v)) return {v > 0 ? DBL_MAX : -DBL_MAX, false};
  return {v, false};
}

int BusyTimeoutMs() {
  const char* v = std::getenv("PYFUNC_SQLITE_BUSY_TIMEOUT");
  if (v != nullptr && *v != '\0') {
    char* end = nullptr;
    double s = std::strtod(v, &end);
    if (end != v && s >= 0 && s < 86400) return static_cast<int>(s * 1000);
  }
  return 60000;
}

std::string DefaultUser() {
  const char* u = std::getenv("USER");
  return u != nullptr && *u != '\0' ? u : "unknown";
}

// The columns of a table the store writes: those it needs, and those it fills when they
// are there (added by later revisions).
struct TableSpec {
  const char* table;
  std::vector<const char*> required;
  std::vector<const char*> optional;
};

const std::vector<TableSpec>& WrittenTables() {
  static const std::vector<TableSpec> specs = {
      {"experiments",
       {"experiment_id", "name", "artifact_location", "lifecycle_stage", "creation_time", "last_update_time"},
       {"workspace"}},
      {"runs",
       {"run_uuid", "name", "source_type", "source_name", "entry_point_name", "user_id", "status", "start_time",
        "end_time", "source_version", "lifecycle_stage", "artifact_uri", "experiment_id"},
       {"deleted_time"}},
      {"params", {"key", "value", "run_uuid"}, {}},
      {"tags", {"key", "value", "run_uuid"}, {}},
      {"metrics", {"key", "value", "timestamp", "run_uuid", "step", "is_nan"}, {}},
      {"latest_metrics", {"key", "value", "timestamp", "step", "is_nan", "run_uuid"}, {}},
      {"inputs", {"input_uuid", "source_type", "source_id", "destination_type", "destination_id", "step"}, {}},
      {"input_tags", {"input_uuid", "name", "value"}, {}},
      {"datasets",
       {"dataset_uuid", "experiment_id", "name", "digest", "dataset_source_type", "dataset_source", "dataset_schema",
        "dataset_profile"},
       {}},
      {"logged_models",
       {"model_id", "experiment_id", "name", "artifact_location", "creation_timestamp_ms", "last_updated_timestamp_ms",
        "status", "lifecycle_stage", "model_type", "source_run_id", "status_message"},
       {}},
      {"logged_model_params", {"model_id", "experiment_id", "param_key", "param_value"}, {}},
      {"logged_model_tags", {"model_id", "experiment_id", "tag_key", "tag_value"}, {}},
  };
  return specs;
}

class SqliteStore final : public TrackingStore {
 public:
  SqliteStore(std::string path, std::string uri) : path_(std::move(path)), uri_(std::move(uri)) {
    std::error_code ec;
    std::string cwd = std::filesystem::current_path(ec).string();
    // MLflow's default artifact root for a sqlite store used without a server: ./mlruns,
    // made absolute (resolve_uri_if_local) when the store is opened.
    artifact_root_ = (ec ? std::string(".") : cwd) + "/mlruns";
  }
  ~SqliteStore() override {
    if (pid_ == ::getpid()) sqlite3_close(db_);
  }

  // Opens the file if it exists (read-write, or read-only when that is all it allows).
  Status Open() {
    std::lock_guard<std::mutex> lock(mu_);
    return OpenLocked(/*create=*/false);
  }

  const std::string& uri() const override { return uri_; }

  // --- experiments -----------------------------------------------------------------

  Result<std::vector<Experiment>> ListExperiments() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Experiment> out;
    PYFUNC_ASSIGN_OR_RETURN(bool have, ReadableLocked());
    if (!have) return out;
    Stmt q(db_, std::string(kExperimentColumns) +
                    " FROM experiments WHERE lifecycle_stage = 'active' ORDER BY creation_time DESC, experiment_id");
    while (q.Row()) out.push_back(ExperimentRow(q));
    PYFUNC_RETURN_IF_ERROR(Done(q, "list experiments"));
    return out;
  }

  Result<Experiment> GetExperiment(const std::string& experiment_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    return GetExperimentLocked(experiment_id);
  }

  Result<Experiment> GetExperimentByName(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    PYFUNC_ASSIGN_OR_RETURN(bool have, ReadableLocked());
    if (have) {
      Stmt q(db_, std::string(kExperimentColumns) + " FROM experiments WHERE name = ?");
      q.Bind(1, name);
      if (q.Row()) return ExperimentRow(q);
      PYFUNC_RETURN_IF_ERROR(Done(q, "experiment '" + name + "'"));
    } else if (name == kDefaultExperimentName) {
      return DefaultExperimentOfNewDatabase();
    }
    return Status::NotFound("experiment '" + name + "': no experiment with this name in " + uri_);
  }

  Result<std::string> CreateExperiment(const std::string& name) override {
    if (name.empty()) return Status::InvalidArgument("create experiment: the name must not be empty");
    if (name.size() > kMaxExperimentName) {
      return Status::InvalidArgument("create experiment: the name is longer than " +
                                     std::to_string(kMaxExperimentName) + " characters");
    }
    std::string id;
    PYFUNC_RETURN_IF_ERROR(Write("create experiment '" + name + "'", [&]() -> Status {
      Stmt exists(db_, "SELECT experiment_id FROM experiments WHERE name = ?");
      exists.Bind(1, name);
      if (exists.Row()) return Status::AlreadyExists("experiment '" + name + "': already exists in " + uri_);
      PYFUNC_RETURN_IF_ERROR(Done(exists, "create experiment"));
      int64_t now = NowMillis();
      std::string sql =
          "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time";
      sql += has_workspace_ ? ", workspace) VALUES (?, NULL, 'active', ?, ?, 'default')"
                            : ") VALUES (?, NULL, 'active', ?, ?)";
      Stmt ins(db_, sql);
      ins.Bind(1, name).Bind(2, now).Bind(3, now);
      if (ins.Step() != SQLITE_DONE) {
        if (ins.rc() == SQLITE_CONSTRAINT)
          return Status::AlreadyExists("experiment '" + name + "': already exists in " + uri_);
        return DbError("create experiment", ins.rc());
      }
      id = std::to_string(sqlite3_last_insert_rowid(db_));
      Stmt upd(db_, "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?");
      upd.Bind(1, JoinUri(artifact_root_, id)).Bind(2, static_cast<int64_t>(std::stoll(id)));
      return Exec(upd, "create experiment");
    }));
    return id;
  }

  // --- runs ------------------------------------------------------------------------

  Result<RunInfo> CreateRun(const CreateRunRequest& request) override {
    std::map<std::string, std::string> tags = request.tags;
    RunInfo info;
    info.run_id = base::NewUuidHex();
    info.experiment_id = request.experiment_id;
    info.run_name = request.run_name;
    if (info.run_name.empty()) {
      auto it = tags.find("mlflow.runName");
      info.run_name = it != tags.end() && !it->second.empty() ? it->second : NewRunName();
    }
    tags["mlflow.runName"] = info.run_name;
    info.user_id = request.user_id;
    if (info.user_id.empty()) {
      auto it = tags.find("mlflow.user");
      info.user_id = it != tags.end() && !it->second.empty() ? it->second : DefaultUser();
    }
    tags.emplace("mlflow.user", info.user_id);
    tags.emplace("mlflow.source.type", "LOCAL");
    PYFUNC_RETURN_IF_ERROR(ValidateTags(tags));
    info.start_time = request.start_time != 0 ? request.start_time : NowMillis();
    info.status = RunStatus::kRunning;
    PYFUNC_RETURN_IF_ERROR(Write("create run", [&]() -> Status {
      PYFUNC_ASSIGN_OR_RETURN(Experiment exp, GetExperimentLocked(request.experiment_id));
      if (exp.lifecycle_stage != "active") {
        return Status::InvalidArgument("experiment '" + exp.experiment_id + "': is deleted");
      }
      info.experiment_id = exp.experiment_id;
      info.artifact_uri = JoinUri(exp.artifact_location, info.run_id + "/artifacts");
      std::string sql =
          "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
          "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id";
      sql += has_deleted_time_
                 ? ", deleted_time) VALUES (?, ?, 'UNKNOWN', '', '', ?, 'RUNNING', ?, NULL, '', 'active', ?, ?, NULL)"
                 : ") VALUES (?, ?, 'UNKNOWN', '', '', ?, 'RUNNING', ?, NULL, '', 'active', ?, ?)";
      Stmt ins(db_, sql);
      ins.Bind(1, info.run_id).Bind(2, info.run_name).Bind(3, info.user_id).Bind(4, info.start_time);
      ins.Bind(5, info.artifact_uri).Bind(6, static_cast<int64_t>(std::stoll(exp.experiment_id)));
      PYFUNC_RETURN_IF_ERROR(Exec(ins, "create run"));
      return WriteTags(info.run_id, tags);
    }));
    return info;
  }

  Status UpdateRun(const std::string& run_id, RunStatus status, std::optional<int64_t> end_time) override {
    PYFUNC_RETURN_IF_ERROR(ValidateRunId(run_id));
    return Write("update run " + run_id, [&]() -> Status {
      PYFUNC_RETURN_IF_ERROR(CheckRunActive(run_id));
      Stmt upd(db_, end_time ? "UPDATE runs SET status = ?, end_time = ? WHERE run_uuid = ?"
                             : "UPDATE runs SET status = ? WHERE run_uuid = ?");
      upd.Bind(1, std::string(RunStatusName(status)));
      if (end_time) {
        upd.Bind(2, *end_time).Bind(3, run_id);
      } else {
        upd.Bind(2, run_id);
      }
      return Exec(upd, "update run " + run_id);
    });
  }

  Result<Run> GetRun(const std::string& run_id) override {
    PYFUNC_RETURN_IF_ERROR(ValidateRunId(run_id));
    std::lock_guard<std::mutex> lock(mu_);
    PYFUNC_ASSIGN_OR_RETURN(bool have, ReadableLocked());
    if (have) {
      Stmt q(db_, std::string(kRunColumns) + " FROM runs WHERE run_uuid = ?");
      q.Bind(1, run_id);
      if (q.Row()) {
        Run run;
        run.info = RunRow(q);
        PYFUNC_RETURN_IF_ERROR(FillData(&run));
        return run;
      }
      PYFUNC_RETURN_IF_ERROR(Done(q, "run '" + run_id + "'"));
    }
    return Status::NotFound("run '" + run_id + "': no such run in " + uri_);
  }

  Result<std::vector<Run>> SearchRuns(const std::vector<std::string>& experiment_ids) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Run> out;
    PYFUNC_ASSIGN_OR_RETURN(bool have, ReadableLocked());
    for (const std::string& exp : experiment_ids) {
      if (!have || !AllDigits(exp)) {
        if (have || exp != kDefaultExperimentId) {
          return Status::NotFound("experiment '" + exp + "': no such experiment in " + uri_);
        }
        continue;
      }
      PYFUNC_RETURN_IF_ERROR(GetExperimentLocked(exp).status());
      Stmt q(db_, std::string(kRunColumns) + " FROM runs WHERE experiment_id = ? AND lifecycle_stage = 'active'");
      q.Bind(1, static_cast<int64_t>(std::stoll(exp)));
      while (q.Row()) {
        Run run;
        run.info = RunRow(q);
        out.push_back(std::move(run));
      }
      PYFUNC_RETURN_IF_ERROR(Done(q, "search runs"));
    }
    for (Run& r : out) PYFUNC_RETURN_IF_ERROR(FillData(&r));
    std::sort(out.begin(), out.end(), [](const Run& a, const Run& b) {
      return a.info.start_time != b.info.start_time ? a.info.start_time > b.info.start_time
                                                    : a.info.run_id < b.info.run_id;
    });
    return out;
  }

  Status LogBatch(const std::string& run_id, const std::vector<Metric>& metrics,
                  const std::map<std::string, std::string>& params,
                  const std::map<std::string, std::string>& tags) override {
    PYFUNC_RETURN_IF_ERROR(ValidateRunId(run_id));
    // Validate everything first: a bad key or value writes nothing.
    for (const Metric& m : metrics) PYFUNC_RETURN_IF_ERROR(ValidateKey(m.key, "metric"));
    for (const auto& [k, v] : params) {
      PYFUNC_RETURN_IF_ERROR(ValidateKey(k, "param"));
      if (v.size() > kMaxParamValue) {
        return Status::InvalidArgument("param '" + k + "': the value is longer than " + std::to_string(kMaxParamValue) +
                                       " characters (MLflow's limit)");
      }
    }
    PYFUNC_RETURN_IF_ERROR(ValidateTags(tags));
    if (metrics.empty() && params.empty() && tags.empty()) return Status::OK();
    return Write("log to run " + run_id, [&]() -> Status {
      PYFUNC_RETURN_IF_ERROR(CheckRunActive(run_id));
      PYFUNC_RETURN_IF_ERROR(WriteParams(run_id, params));
      PYFUNC_RETURN_IF_ERROR(WriteMetrics(run_id, metrics));
      return WriteTags(run_id, tags);
    });
  }

  Result<std::vector<Metric>> GetMetricHistory(const std::string& run_id, const std::string& key) override {
    PYFUNC_RETURN_IF_ERROR(ValidateRunId(run_id));
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Metric> out;
    PYFUNC_ASSIGN_OR_RETURN(bool have, ReadableLocked());
    if (!have) return Status::NotFound("run '" + run_id + "': no such run in " + uri_);
    {
      Stmt q(db_, "SELECT 1 FROM runs WHERE run_uuid = ?");
      q.Bind(1, run_id);
      if (!q.Row()) {
        PYFUNC_RETURN_IF_ERROR(Done(q, "metric history"));
        return Status::NotFound("run '" + run_id + "': no such run in " + uri_);
      }
    }
    Stmt q(db_,
           "SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ? AND key = ? "
           "ORDER BY timestamp, step, rowid");
    q.Bind(1, run_id).Bind(2, key);
    while (q.Row()) out.push_back(MetricRow(q));
    PYFUNC_RETURN_IF_ERROR(Done(q, "metric history"));
    return out;
  }

  // --- logged models, inputs and outputs ---------------------------------------------

  Result<std::vector<LoggedModel>> SearchLoggedModels(const std::string& experiment_id, const std::string& name,
                                                      const std::string& source_run_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<LoggedModel> out;
    PYFUNC_ASSIGN_OR_RETURN(bool have, ReadableLocked());
    if (!have || !AllDigits(experiment_id) || !HasTableLocked("logged_models")) return out;
    Stmt q(db_, std::string(kModelColumns) +
                    " FROM logged_models WHERE experiment_id = ? AND lifecycle_stage = 'active' "
                    "ORDER BY creation_timestamp_ms DESC");
    q.Bind(1, static_cast<int64_t>(std::stoll(experiment_id)));
    while (q.Row()) {
      LoggedModel m = ModelRow(q);
      if ((name.empty() || m.name == name) && (source_run_id.empty() || m.source_run_id == source_run_id)) {
        out.push_back(std::move(m));
      }
    }
    PYFUNC_RETURN_IF_ERROR(Done(q, "search logged models"));
    return out;
  }

  Result<LoggedModel> GetLoggedModel(const std::string& model_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    return GetLoggedModelLocked(model_id);
  }

  Result<bool> SupportsLoggedModels() override { return true; }

  Result<LoggedModel> CreateLoggedModel(const CreateLoggedModelRequest& request) override {
    if (!request.source_run_id.empty()) PYFUNC_RETURN_IF_ERROR(ValidateRunId(request.source_run_id));
    for (const auto& [k, v] : request.params) PYFUNC_RETURN_IF_ERROR(ValidateKey(k, "logged model param"));
    for (const auto& [k, v] : request.tags) PYFUNC_RETURN_IF_ERROR(ValidateKey(k, "logged model tag"));
    LoggedModel m;
    m.model_id = "m-" + base::NewUuidHex();
    m.name = request.name.empty() ? NewRunName() : request.name;
    m.source_run_id = request.source_run_id;
    m.model_type = request.model_type;
    m.status = LoggedModelStatus::kPending;
    m.creation_timestamp = NowMillis();
    PYFUNC_RETURN_IF_ERROR(Write("create logged model '" + m.name + "'", [&]() -> Status {
      PYFUNC_ASSIGN_OR_RETURN(Experiment exp, GetExperimentLocked(request.experiment_id));
      if (exp.lifecycle_stage != "active") {
        return Status::InvalidArgument("experiment '" + exp.experiment_id + "': is deleted");
      }
      if (!m.source_run_id.empty()) PYFUNC_RETURN_IF_ERROR(CheckRunActive(m.source_run_id));
      m.experiment_id = exp.experiment_id;
      m.artifact_location = JoinUri(exp.artifact_location, "models/" + m.model_id + "/artifacts");
      // The files must be writable from here: an experiment made by `mlflow server` keeps
      // them behind the server (mlflow-artifacts:/...), which a sqlite URI cannot reach.
      if (LocalPathOfUri(m.artifact_location).empty()) {
        return Status::InvalidArgument(
            "experiment '" + exp.experiment_id + "' keeps its artifacts at " + exp.artifact_location +
            ", which pyfunc cannot write through the tracking URI " + uri_ +
            " (an MLflow server serves them): log models to it through that server (MLFLOW_TRACKING_URI=http://...), "
            "or to an experiment pyfunc or MLflow's client created here");
      }
      int64_t exp_id = std::stoll(exp.experiment_id);
      Stmt ins(db_,
               "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp_ms, "
               "last_updated_timestamp_ms, status, lifecycle_stage, model_type, source_run_id, status_message) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, NULL)");
      ins.Bind(1, m.model_id).Bind(2, exp_id).Bind(3, m.name).Bind(4, m.artifact_location);
      ins.Bind(5, m.creation_timestamp).Bind(6, m.creation_timestamp).Bind(7, static_cast<int64_t>(m.status));
      ins.BindOrNull(8, m.model_type).BindOrNull(9, m.source_run_id);
      PYFUNC_RETURN_IF_ERROR(Exec(ins, "create logged model"));
      Stmt param(
          db_, "INSERT INTO logged_model_params (model_id, experiment_id, param_key, param_value) VALUES (?, ?, ?, ?)");
      for (const auto& [k, v] : request.params) {
        param.Reset();
        param.Bind(1, m.model_id).Bind(2, exp_id).Bind(3, k).Bind(4, v);
        PYFUNC_RETURN_IF_ERROR(Exec(param, "logged model params"));
      }
      Stmt tag(db_, "INSERT INTO logged_model_tags (model_id, experiment_id, tag_key, tag_value) VALUES (?, ?, ?, ?)");
      for (const auto& [k, v] : request.tags) {
        tag.Reset();
        tag.Bind(1, m.model_id).Bind(2, exp_id).Bind(3, k).Bind(4, v);
        PYFUNC_RETURN_IF_ERROR(Exec(tag, "logged model tags"));
      }
      return Status::OK();
    }));
    return m;
  }

  Status FinalizeLoggedModel(const std::string& model_id, LoggedModelStatus status) override {
    return Write("finalize logged model " + model_id, [&]() -> Status {
      Stmt upd(db_, "UPDATE logged_models SET status = ?, last_updated_timestamp_ms = ? WHERE model_id = ?");
      upd.Bind(1, static_cast<int64_t>(status)).Bind(2, NowMillis()).Bind(3, model_id);
      PYFUNC_RETURN_IF_ERROR(Exec(upd, "finalize logged model"));
      if (sqlite3_changes(db_) == 0)
        return Status::NotFound("logged model '" + model_id + "': no such model in " + uri_);
      return Status::OK();
    });
  }

  Status LogOutputs(const std::string& run_id, const std::vector<std::string>& model_ids, int64_t step) override {
    PYFUNC_RETURN_IF_ERROR(ValidateRunId(run_id));
    if (model_ids.empty()) return Status::OK();
    return Write("log outputs of run " + run_id, [&]() -> Status {
      PYFUNC_RETURN_IF_ERROR(CheckRunActive(run_id));
      for (const std::string& id : model_ids) PYFUNC_RETURN_IF_ERROR(GetLoggedModelLocked(id).status());
      Stmt ins(
          db_,
          "INSERT OR IGNORE INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, step) "
          "VALUES (?, 'RUN_OUTPUT', ?, 'MODEL_OUTPUT', ?, ?)");
      for (const std::string& id : model_ids) {
        ins.Reset();
        ins.Bind(1, base::NewUuidHex()).Bind(2, run_id).Bind(3, id).Bind(4, step);
        PYFUNC_RETURN_IF_ERROR(Exec(ins, "log outputs"));
      }
      return Status::OK();
    });
  }

  Status LogInputs(const std::string& run_id, const std::vector<DatasetInput>& datasets,
                   const std::vector<std::string>& model_ids) override {
    PYFUNC_RETURN_IF_ERROR(ValidateRunId(run_id));
    for (const DatasetInput& d : datasets) {
      if (d.name.empty() || d.name.size() > 500)
        return Status::InvalidArgument("dataset: the name must have 1 to 500 characters");
      if (d.digest.empty() || d.digest.size() > 36) {
        return Status::InvalidArgument("dataset '" + d.name + "': the digest must have 1 to 36 characters");
      }
      if (d.source_type.empty() || d.source.empty()) {
        return Status::InvalidArgument("dataset '" + d.name + "': source_type and source are required");
      }
      for (const auto& [k, v] : d.tags) {
        if (k.empty() || k.size() > 255 || v.size() > 500) {
          return Status::InvalidArgument("dataset '" + d.name + "': input tag '" + k +
                                         "' (keys have 1 to 255 characters, values at most 500)");
        }
      }
    }
    if (datasets.empty() && model_ids.empty()) return Status::OK();
    return Write("log inputs of run " + run_id, [&]() -> Status {
      PYFUNC_RETURN_IF_ERROR(CheckRunActive(run_id));
      int64_t exp_id = 0;
      {
        Stmt q(db_, "SELECT experiment_id FROM runs WHERE run_uuid = ?");
        q.Bind(1, run_id);
        if (q.Row()) exp_id = q.Int(0);
      }
      std::set<std::pair<std::string, std::string>> seen;
      for (const DatasetInput& d : datasets) {
        if (!seen.insert({d.name, d.digest}).second) continue;
        std::string dataset_uuid;
        Stmt find(db_, "SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?");
        find.Bind(1, exp_id).Bind(2, d.name).Bind(3, d.digest);
        if (find.Row()) {
          dataset_uuid = find.Text(0);
        } else {
          PYFUNC_RETURN_IF_ERROR(Done(find, "log inputs"));
          dataset_uuid = base::NewUuidHex();
          Stmt ins(db_,
                   "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, dataset_source_type, "
                   "dataset_source, dataset_schema, dataset_profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
          ins.Bind(1, dataset_uuid).Bind(2, exp_id).Bind(3, d.name).Bind(4, d.digest).Bind(5, d.source_type);
          ins.Bind(6, d.source).BindOrNull(7, d.schema).BindOrNull(8, d.profile);
          PYFUNC_RETURN_IF_ERROR(Exec(ins, "log inputs"));
        }
        Stmt have(db_,
                  "SELECT 1 FROM inputs WHERE source_type = 'DATASET' AND source_id = ? AND "
                  "destination_type = 'RUN' AND destination_id = ?");
        have.Bind(1, dataset_uuid).Bind(2, run_id);
        if (have.Row()) continue;  // MLflow keeps the first input of a dataset and its tags
        PYFUNC_RETURN_IF_ERROR(Done(have, "log inputs"));
        std::string input_uuid = base::NewUuidHex();
        Stmt ins(db_,
                 "INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, step) "
                 "VALUES (?, 'DATASET', ?, 'RUN', ?, 0)");
        ins.Bind(1, input_uuid).Bind(2, dataset_uuid).Bind(3, run_id);
        PYFUNC_RETURN_IF_ERROR(Exec(ins, "log inputs"));
        Stmt tag(db_, "INSERT INTO input_tags (input_uuid, name, value) VALUES (?, ?, ?)");
        for (const auto& [k, v] : d.tags) {
          tag.Reset();
          tag.Bind(1, input_uuid).Bind(2, k).Bind(3, v);
          PYFUNC_RETURN_IF_ERROR(Exec(tag, "log inputs"));
        }
      }
      Stmt model(
          db_,
          "INSERT OR IGNORE INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, step) "
          "VALUES (?, 'RUN_INPUT', ?, 'MODEL_INPUT', ?, 0)");
      for (const std::string& id : model_ids) {
        PYFUNC_RETURN_IF_ERROR(GetLoggedModelLocked(id).status());
        model.Reset();
        model.Bind(1, base::NewUuidHex()).Bind(2, run_id).Bind(3, id);
        PYFUNC_RETURN_IF_ERROR(Exec(model, "log inputs"));
      }
      return Status::OK();
    });
  }

  // --- the model registry ------------------------------------------------------------

  Result<std::string> GetModelVersionDownloadUri(const std::string& name, const std::string& version) override {
    std::lock_guard<std::mutex> lock(mu_);
    PYFUNC_ASSIGN_OR_RETURN(bool have, ReadableLocked());
    if (!have) return Status::NotFound("registered model '" + name + "': no such model in " + uri_);
    std::string v = version;
    if (v == "latest" || v == "LATEST" || v == "Latest") {
      Stmt q(db_, "SELECT MAX(version) FROM model_versions WHERE name = ? AND current_stage != 'Deleted_Internal'");
      q.Bind(1, name);
      if (!q.Row() || q.IsNull(0)) {
        PYFUNC_RETURN_IF_ERROR(Done(q, "registered model '" + name + "'"));
        return Status::NotFound("registered model '" + name + "': no such model in " + uri_);
      }
      v = std::to_string(q.Int(0));
    }
    Stmt q(db_, "SELECT storage_location, source FROM model_versions WHERE name = ? AND version = ?");
    q.Bind(1, name).Bind(2, v);
    if (!q.Row()) {
      PYFUNC_RETURN_IF_ERROR(Done(q, "registered model '" + name + "'"));
      return Status::NotFound("registered model '" + name + "' version " + v + ": no such model version in " + uri_);
    }
    std::string loc = q.Text(0);
    return loc.empty() ? q.Text(1) : loc;
  }

  Result<std::string> GetModelVersionByAlias(const std::string& name, const std::string& alias) override {
    std::lock_guard<std::mutex> lock(mu_);
    PYFUNC_ASSIGN_OR_RETURN(bool have, ReadableLocked());
    if (have) {
      Stmt q(db_, "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?");
      q.Bind(1, name).Bind(2, alias);
      if (q.Row()) return std::to_string(q.Int(0));
      PYFUNC_RETURN_IF_ERROR(Done(q, "registered model '" + name + "'"));
    }
    return Status::NotFound("registered model '" + name + "': no alias '" + alias + "' in " + uri_);
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
  static constexpr const char* kExperimentColumns =
      "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time";
  static constexpr const char* kRunColumns =
      "SELECT run_uuid, experiment_id, name, user_id, artifact_uri, lifecycle_stage, status, start_time, end_time";
  static constexpr const char* kModelColumns =
      "SELECT model_id, name, experiment_id, source_run_id, artifact_location, creation_timestamp_ms, status, "
      "model_type";

  // --- opening, errors, transactions -------------------------------------------------

  Status OpenLocked(bool create) {
    if (db_ != nullptr && pid_ != ::getpid()) {
      // A connection must not be used across fork(): the child opens its own. The
      // inherited one is left alone (closing it could disturb the parent's locks).
      db_ = nullptr;
      read_checked_ = write_checked_ = false;
    }
    if (db_ != nullptr) return Status::OK();
    struct stat st;
    if (::stat(path_.c_str(), &st) != 0) {
      if (!create) return Status::OK();  // created by the first write
      std::error_code ec;
      std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
      if (ec) return Status::IOError(uri_ + ": cannot create the directory of " + path_ + ": " + ec.message());
    } else if (S_ISDIR(st.st_mode)) {
      return Status::InvalidArgument(uri_ + ": " + path_ + " is a directory, not a database file");
    }
    sqlite3* db = nullptr;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path_.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close(db);
      return Status::IOError("tracking store " + uri_ + ": cannot open " + path_ + ": " + msg);
    }
    sqlite3_busy_handler(db, &SqliteStore::OnBusy, this);
    pid_ = ::getpid();
    sqlite3_extended_result_codes(db, 0);
    db_ = db;
    return Status::OK();
  }

  // The busy handler: waits for the lock in short, jittered sleeps (SQLite's own handler
  // backs off to 100 ms, which lets the lock sit idle between many writers), for up to
  // the busy timeout of each wait.
  static int OnBusy(void* self_ptr, int count) {
    auto* self = static_cast<SqliteStore*>(self_ptr);
    auto now = std::chrono::steady_clock::now();
    if (count == 0) self->busy_since_ = now;
    if (now - self->busy_since_ >= std::chrono::milliseconds(self->busy_timeout_ms_)) return 0;
    std::this_thread::sleep_for(std::chrono::microseconds(500 + self->busy_rng_() % 3000));
    return 1;
  }

  // Whether there is a database to read (the file may have been created since the store
  // was opened); an error if the file is not a readable SQLite database.
  Result<bool> ReadableLocked() {
    PYFUNC_RETURN_IF_ERROR(OpenLocked(false));
    if (db_ == nullptr) return false;
    if (!read_checked_) {
      Stmt q(db_, "SELECT count(*) FROM sqlite_master");
      if (!q.Row()) return DbError("read", q.rc());
      read_checked_ = true;
    }
    return true;
  }

  bool HasTableLocked(const std::string& table) {
    Stmt q(db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
    q.Bind(1, table);
    return q.Row();
  }

  Status DbError(const std::string& what, int rc) {
    rc &= 0xff;
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) busy_ = true;
    std::string msg = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    std::string where = uri_ + " (" + path_ + ")";
    switch (rc) {
      case SQLITE_NOTADB:
        return Status::InvalidArgument(what + ": " + where + " is not an SQLite database (" + msg + ")");
      case SQLITE_CORRUPT: return Status::IOError(what + ": " + where + ": the database file is corrupt (" + msg + ")");
      case SQLITE_READONLY:
        return Status::IOError(what + ": " + where + ": the database is read-only (" + msg +
                               "): pyfunc can read it but not log to it");
      case SQLITE_CANTOPEN:
        return Status::IOError(what + ": " + where + ": cannot open the database or its journal (" + msg +
                               "; the directory must be writable too)");
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        return Status::IOError(what + ": " + where + ": the database stayed locked by another writer (" + msg +
                               ") for longer than the busy timeout of " + std::to_string(BusyTimeoutMs() / 1000) +
                               " s ($PYFUNC_SQLITE_BUSY_TIMEOUT)");
      case SQLITE_FULL: return Status::IOError(what + ": " + where + ": the disk is full (" + msg + ")");
      default: return Status::IOError(what + ": " + where + ": " + msg + " (is this an MLflow tracking database?)");
    }
  }

  // The error of a statement that stopped stepping: OK when it finished (SQLITE_DONE).
  Status Done(Stmt& q, const std::string& what) {
    if (!q.ok() && q.rc() != SQLITE_DONE && q.rc() != SQLITE_ROW) return DbError(what, q.rc());
    return Status::OK();
  }

  Status Exec(Stmt& q, const std::string& what) {
    if (q.Step() != SQLITE_DONE) return DbError(what, q.rc());
    return Status::OK();
  }

  int ExecSql(const char* sql) { return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }

  // Runs body in one write transaction (see the top of the file); retried from the start
  // when the database was busy.
  template <typename F>
  Status Write(const std::string& what, F&& body) {
    std::lock_guard<std::mutex> lock(mu_);
    PYFUNC_RETURN_IF_ERROR(PrepareWriteLocked(what));
    std::mt19937 rng(static_cast<unsigned>(::getpid()) ^ static_cast<unsigned>(NowMillis()));
    for (int attempt = 1;; ++attempt) {
      busy_ = false;
      int rc = ExecSql("BEGIN IMMEDIATE");
      Status st;
      if (rc != SQLITE_OK) {
        st = DbError(what, rc);
      } else {
        st = CheckRevisionUnchanged(what);
        if (st.ok()) st = body();
        if (st.ok()) {
          rc = ExecSql("COMMIT");
          if (rc == SQLITE_OK) return Status::OK();
          st = DbError(what, rc);
        }
        if (sqlite3_get_autocommit(db_) == 0) ExecSql("ROLLBACK");
      }
      if (!busy_ || attempt >= kMaxAttempts) return st;
      std::this_thread::sleep_for(std::chrono::milliseconds(10 * attempt + rng() % 50));
    }
  }

  // Opens (creating the file and the schema if needed) and checks that this database can
  // be written: not read-only, a revision pyfunc knows, tables with the columns it writes.
  Status PrepareWriteLocked(const std::string& what) {
    PYFUNC_RETURN_IF_ERROR(OpenLocked(true).WithContext(what));
    if (sqlite3_db_readonly(db_, "main") == 1) {
      return Status::IOError(what + ": " + uri_ + ": the database file " + path_ +
                             " is read-only (no permission to write it): pyfunc can read it but not log to it");
    }
    if (write_checked_) return Status::OK();
    Status st;
    for (int attempt = 1;; ++attempt) {
      busy_ = false;
      int rc = ExecSql("BEGIN IMMEDIATE");
      if (rc != SQLITE_OK) {
        st = DbError(what, rc);
      } else {
        st = CheckOrCreateSchema(what);
        if (st.ok()) {
          rc = ExecSql("COMMIT");
          if (rc == SQLITE_OK) break;
          st = DbError(what, rc);
        }
        if (sqlite3_get_autocommit(db_) == 0) ExecSql("ROLLBACK");
      }
      if (!busy_ || attempt >= kMaxAttempts) return st;
      std::this_thread::sleep_for(std::chrono::milliseconds(20 * attempt));
    }
    write_checked_ = true;
    read_checked_ = true;
    return Status::OK();
  }

  // Inside a write transaction: the database may have been upgraded (mlflow db upgrade)
  // since it was checked; then it is checked again before anything is written.
  Status CheckRevisionUnchanged(const std::string& what) {
    {
      Stmt q(db_, "SELECT version_num FROM alembic_version");
      if (q.Row() && q.Text(0) == revision_) return Status::OK();
      PYFUNC_RETURN_IF_ERROR(Done(q, what));
    }
    return CheckOrCreateSchema(what);
  }

  Status CheckOrCreateSchema(const std::string& what) {
    int64_t objects = 0;
    {
      Stmt q(db_, "SELECT count(*) FROM sqlite_master");
      if (!q.Row()) return DbError(what, q.rc());
      objects = q.Int(0);
    }
    if (objects == 0) {
      // A new (or empty) database: MLflow's schema, stamped, with the Default experiment.
      for (const std::string& sql : MlflowSchemaStatements()) {
        char* err = nullptr;
        int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
        if (rc != SQLITE_OK) {
          std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
          sqlite3_free(err);
          if ((rc & 0xff) == SQLITE_BUSY) return DbError(what, rc);
          return Status::IOError(what + ": " + uri_ + ": creating MLflow's tables failed: " + msg);
        }
      }
    }
    std::string revision;
    {
      if (!HasTableLocked("alembic_version")) {
        return Status::InvalidArgument(what + ": " + uri_ + ": " + path_ +
                                       " is an SQLite database but not MLflow's: it has tables but no alembic_version");
      }
      Stmt q(db_, "SELECT version_num FROM alembic_version");
      if (!q.Row()) {
        PYFUNC_RETURN_IF_ERROR(Done(q, what));
        return Status::InvalidArgument(what + ": " + uri_ +
                                       ": the database has no schema revision (alembic_version is "
                                       "empty): a migration did not finish; run `mlflow db upgrade " +
                                       uri_ + "`");
      }
      revision = q.Text(0);
    }
    const std::vector<std::string>& chain = MlflowSchemaRevisionChain();
    auto at = std::find(chain.begin(), chain.end(), revision);
    auto oldest = std::find(chain.begin(), chain.end(), kOldestWritableRevision);
    std::string known = std::string(kOldestWritableRevision) + " to " + kMlflowSchemaRevision + " (MLflow 3.0 to " +
                        kMlflowSchemaMlflowVersion + ")";
    if (at == chain.end()) {
      return Status::InvalidArgument(what + ": " + uri_ + ": the database's schema is at revision " + revision +
                                     ", which pyfunc does not know (the newest it knows is " + kMlflowSchemaRevision +
                                     ", MLflow " + kMlflowSchemaMlflowVersion +
                                     "); a newer MLflow made or upgraded it. Nothing was written; log through "
                                     "that MLflow's server (mlflow server --backend-store-uri " +
                                     uri_ + ") or use a pyfunc that knows it");
    }
    if (at < oldest) {
      return Status::InvalidArgument(what + ": " + uri_ + ": the database's schema is at revision " + revision +
                                     ", older than any pyfunc writes (" + known +
                                     "). Nothing was written; upgrade it, after a backup, with "
                                     "`mlflow db upgrade " +
                                     uri_ + "`");
    }
    // The columns of the tables written must be those pyfunc fills.
    for (const TableSpec& spec : WrittenTables()) {
      std::map<std::string, std::pair<bool, bool>> cols;  // name -> (NOT NULL without default, integer key)
      Stmt q(db_, std::string("PRAGMA table_info(\"") + spec.table + "\")");
      while (q.Row()) {
        bool notnull = q.Int(3) != 0 && q.IsNull(4);
        bool int_key = q.Int(5) != 0 && q.Text(2) == "INTEGER";
        cols[q.Text(1)] = {notnull, int_key};
      }
      PYFUNC_RETURN_IF_ERROR(Done(q, what));
      if (cols.empty()) {
        return Status::InvalidArgument(what + ": " + uri_ + ": table " + spec.table + " is missing at revision " +
                                       revision);
      }
      std::set<std::string> filled;
      for (const char* c : spec.required) {
        if (cols.count(c) == 0) {
          return Status::InvalidArgument(what + ": " + uri_ + ": table " + spec.table + " has no column " + c +
                                         " (revision " + revision + "; the database does not have MLflow's schema)");
        }
        filled.insert(c);
      }
      for (const char* c : spec.optional) filled.insert(c);
      for (const auto& [name, flags] : cols) {
        if (flags.first && !flags.second && filled.count(name) == 0) {
          return Status::InvalidArgument(what + ": " + uri_ + ": table " + spec.table + " has a required column " +
                                         name + " that pyfunc does not fill (revision " + revision + ")");
        }
      }
      if (std::string(spec.table) == "experiments") has_workspace_ = cols.count("workspace") != 0;
      if (std::string(spec.table) == "runs") has_deleted_time_ = cols.count("deleted_time") != 0;
    }
    revision_ = revision;
    // MLflow makes the Default experiment whenever its store starts without one.
    Stmt q(db_, "SELECT 1 FROM experiments WHERE experiment_id = 0");
    if (q.Row()) return Status::OK();
    PYFUNC_RETURN_IF_ERROR(Done(q, what));
    int64_t now = NowMillis();
    std::string sql =
        "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, "
        "last_update_time";
    sql += has_workspace_ ? ", workspace) VALUES (0, ?, ?, 'active', ?, ?, 'default')"
                          : ") VALUES (0, ?, ?, 'active', ?, ?)";
    Stmt ins(db_, sql);
    ins.Bind(1, std::string(kDefaultExperimentName)).Bind(2, JoinUri(artifact_root_, "0")).Bind(3, now).Bind(4, now);
    return Exec(ins, what + " (the Default experiment)");
  }

  // --- pieces of the write transactions ------------------------------------------------

  Status CheckRunActive(const std::string& run_id) {
    Stmt q(db_, "SELECT lifecycle_stage FROM runs WHERE run_uuid = ?");
    q.Bind(1, run_id);
    if (!q.Row()) {
      PYFUNC_RETURN_IF_ERROR(Done(q, "run " + run_id));
      return Status::NotFound("run '" + run_id + "': no such run in " + uri_);
    }
    if (q.Text(0) != "active") {
      return Status::InvalidArgument("run '" + run_id + "': must be active to be changed (it is " + q.Text(0) + ")");
    }
    return Status::OK();
  }

  Status ValidateTags(const std::map<std::string, std::string>& tags) {
    for (const auto& [k, v] : tags) {
      PYFUNC_RETURN_IF_ERROR(ValidateKey(k, "tag"));
      if (v.size() > kMaxTagValue) {
        return Status::InvalidArgument("tag '" + k + "': the value is longer than " + std::to_string(kMaxTagValue) +
                                       " characters (MLflow's limit)");
      }
    }
    return Status::OK();
  }

  Status WriteParams(const std::string& run_id, const std::map<std::string, std::string>& params) {
    Stmt get(db_, "SELECT value FROM params WHERE run_uuid = ? AND key = ?");
    Stmt ins(db_, "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)");
    for (const auto& [k, v] : params) {
      get.Reset();
      get.Bind(1, run_id).Bind(2, k);
      if (get.Row()) {
        std::string old = get.Text(0);
        if (old != v) {
          return Status::InvalidArgument("param '" + k + "' of run " + run_id + ": already logged with value '" + old +
                                         "', cannot change it to '" + v + "'");
        }
        continue;
      }
      PYFUNC_RETURN_IF_ERROR(Done(get, "log params"));
      ins.Reset();
      ins.Bind(1, k).Bind(2, v).Bind(3, run_id);
      PYFUNC_RETURN_IF_ERROR(Exec(ins, "log params"));
    }
    return Status::OK();
  }

  Status WriteMetrics(const std::string& run_id, const std::vector<Metric>& metrics) {
    if (metrics.empty()) return Status::OK();
    Stmt ins(db_,
             "INSERT OR IGNORE INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)");
    // The latest point of each key in this batch: the largest (step, timestamp, value).
    struct Point {
      double value;
      bool is_nan;
      int64_t timestamp, step;
    };
    auto newer = [](const Point& a, const Point& b) {
      if (a.step != b.step) return a.step > b.step;
      if (a.timestamp != b.timestamp) return a.timestamp > b.timestamp;
      return a.value > b.value;
    };
    std::map<std::string, Point> latest;
    for (const Metric& m : metrics) {
      auto [value, is_nan] = SanitizedMetric(m.value);
      ins.Reset();
      ins.Bind(1, m.key).Bind(2, value).Bind(3, m.timestamp).Bind(4, run_id).Bind(5, m.step).Bind(6, int64_t{is_nan});
      PYFUNC_RETURN_IF_ERROR(Exec(ins, "log metrics"));
      Point p{value, is_nan, m.timestamp, m.step};
      auto it = latest.find(m.key);
      if (it == latest.end()) {
        latest.emplace(m.key, p);
      } else if (newer(p, it->second)) {
        it->second = p;
      }
    }
    Stmt get(db_, "SELECT value, timestamp, step FROM latest_metrics WHERE run_uuid = ? AND key = ?");
    Stmt put(db_,
             "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?) "
             "ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value, timestamp = excluded.timestamp, "
             "step = excluded.step, is_nan = excluded.is_nan");
    for (const auto& [key, p] : latest) {
      get.Reset();
      get.Bind(1, run_id).Bind(2, key);
      if (get.Row()) {
        Point old{get.Double(0), false, get.Int(1), get.Int(2)};
        if (!newer(p, old)) continue;
      } else {
        PYFUNC_RETURN_IF_ERROR(Done(get, "log metrics"));
      }
      put.Reset();
      put.Bind(1, key).Bind(2, p.value).Bind(3, p.timestamp).Bind(4, p.step).Bind(5, int64_t{p.is_nan}).Bind(6, run_id);
      PYFUNC_RETURN_IF_ERROR(Exec(put, "log metrics"));
    }
    return Status::OK();
  }

  Status WriteTags(const std::string& run_id, const std::map<std::string, std::string>& tags) {
    Stmt put(db_,
             "INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?) "
             "ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value");
    for (const auto& [k, v] : tags) {
      put.Reset();
      put.Bind(1, k).Bind(2, v).Bind(3, run_id);
      PYFUNC_RETURN_IF_ERROR(Exec(put, "set tags"));
      if (k == "mlflow.runName") {  // the run's name follows its tag, as in MLflow
        Stmt upd(db_, "UPDATE runs SET name = ? WHERE run_uuid = ?");
        upd.Bind(1, v).Bind(2, run_id);
        PYFUNC_RETURN_IF_ERROR(Exec(upd, "set tags"));
      }
    }
    return Status::OK();
  }

  // --- reading rows ------------------------------------------------------------------

  // The Default experiment as it will be created by the first write (reads of a database
  // that does not exist yet).
  Experiment DefaultExperimentOfNewDatabase() const {
    Experiment e;
    e.experiment_id = kDefaultExperimentId;
    e.name = kDefaultExperimentName;
    e.artifact_location = JoinUri(artifact_root_, "0");
    return e;
  }

  Result<Experiment> GetExperimentLocked(const std::string& experiment_id) {
    PYFUNC_ASSIGN_OR_RETURN(bool have, ReadableLocked());
    if (!have && experiment_id == kDefaultExperimentId) return DefaultExperimentOfNewDatabase();
    if (have && AllDigits(experiment_id)) {
      Stmt q(db_, std::string(kExperimentColumns) + " FROM experiments WHERE experiment_id = ?");
      q.Bind(1, static_cast<int64_t>(std::stoll(experiment_id)));
      if (q.Row()) return ExperimentRow(q);
      PYFUNC_RETURN_IF_ERROR(Done(q, "experiment '" + experiment_id + "'"));
    }
    return Status::NotFound("experiment '" + experiment_id + "': no such experiment in " + uri_);
  }

  Result<LoggedModel> GetLoggedModelLocked(const std::string& model_id) {
    PYFUNC_ASSIGN_OR_RETURN(bool have, ReadableLocked());
    if (have && HasTableLocked("logged_models")) {
      Stmt q(db_,
             std::string(kModelColumns) + " FROM logged_models WHERE model_id = ? AND lifecycle_stage != 'deleted'");
      q.Bind(1, model_id);
      if (q.Row()) return ModelRow(q);
      PYFUNC_RETURN_IF_ERROR(Done(q, "logged model '" + model_id + "'"));
    }
    return Status::NotFound("logged model '" + model_id + "': no such model in " + uri_);
  }

  static Experiment ExperimentRow(Stmt& q) {
    Experiment e;
    e.experiment_id = q.Text(0);
    e.name = q.Text(1);
    e.artifact_location = q.Text(2);
    e.lifecycle_stage = q.Text(3);
    e.creation_time = q.Int(4);
    e.last_update_time = q.Int(5);
    return e;
  }

  static RunInfo RunRow(Stmt& q) {
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

  static Metric MetricRow(Stmt& q) {
    Metric m{q.Text(0), q.Double(1), q.Int(2), q.Int(3)};
    if (q.Int(4) != 0) m.value = std::nan("");
    return m;
  }

  static LoggedModel ModelRow(Stmt& q) {
    LoggedModel m;
    m.model_id = q.Text(0);
    m.name = q.Text(1);
    m.experiment_id = q.Text(2);
    m.source_run_id = q.Text(3);
    m.artifact_location = q.Text(4);
    m.creation_timestamp = q.Int(5);
    int64_t status = q.Int(6);
    m.status = status >= 0 && status <= 3 ? static_cast<LoggedModelStatus>(status) : LoggedModelStatus::kUnspecified;
    m.model_type = q.Text(7);
    return m;
  }

  Status FillData(Run* run) {
    {
      Stmt q(db_, "SELECT key, value FROM params WHERE run_uuid = ?");
      q.Bind(1, run->info.run_id);
      while (q.Row()) run->data.params[q.Text(0)] = q.Text(1);
      PYFUNC_RETURN_IF_ERROR(Done(q, "run params"));
    }
    {
      Stmt q(db_, "SELECT key, value FROM tags WHERE run_uuid = ?");
      q.Bind(1, run->info.run_id);
      while (q.Row()) run->data.tags[q.Text(0)] = q.Text(1);
      PYFUNC_RETURN_IF_ERROR(Done(q, "run tags"));
    }
    {
      Stmt q(db_, "SELECT key, value, timestamp, step, is_nan FROM latest_metrics WHERE run_uuid = ? ORDER BY key");
      q.Bind(1, run->info.run_id);
      while (q.Row()) run->data.metrics.push_back(MetricRow(q));
      PYFUNC_RETURN_IF_ERROR(Done(q, "run metrics"));
    }
    return Status::OK();
  }

  std::mutex mu_;
  sqlite3* db_ = nullptr;
  std::string path_;
  std::string uri_;
  std::string artifact_root_;
  bool read_checked_ = false;
  bool write_checked_ = false;
  bool busy_ = false;
  bool has_workspace_ = false;
  bool has_deleted_time_ = false;
  std::string revision_;
  int busy_timeout_ms_ = BusyTimeoutMs();
  pid_t pid_ = 0;  // the process that opened db_
  std::chrono::steady_clock::time_point busy_since_;
  std::minstd_rand busy_rng_{static_cast<unsigned>(::getpid()) ^ static_cast<unsigned>(NowMillis())};
};

}  // namespace

Result<std::unique_ptr<TrackingStore>> NewSqliteStore(const std::string& db_path, std::string uri) {
  auto store = std::make_unique<SqliteStore>(db_path, std::move(uri));
  PYFUNC_RETURN_IF_ERROR(store->Open());
  return std::unique_ptr<TrackingStore>(std::move(store));
}

}  // namespace pyfunc::tracking_internal
