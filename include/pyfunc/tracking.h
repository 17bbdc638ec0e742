// Tracking: experiments, runs, their params/metrics/tags and artifacts, in MLflow's stores.
//
// A TrackingStore is opened from a tracking URI (OpenTrackingStore):
//   * a local path or `file://` URI: a FileStore in MLflow's exact `./mlruns` layout, read
//     and written; what pyfunc writes, MLflow's client reads, and the reverse;
//   * `http://` / `https://`: a RestStore speaking MLflow's REST API (`/api/2.0/mlflow/...`),
//     artifacts through the server's artifact proxy (`mlflow-artifacts:/` URIs);
//   * `sqlite:///path`: MLflow's SQL store in a SQLite file, read and written in the
//     schema of the database that is there (experiments, runs, params, metrics and latest
//     metrics, tags, run inputs and outputs, MLflow 3's logged models). A missing file is
//     created on the first write at the newest schema revision pyfunc knows and stamped
//     as MLflow stamps it (alembic_version), so that MLflow opens it as its own. A
//     database of an older, unknown or newer revision is read but not written (the error
//     names both revisions). Artifacts go where MLflow puts them for a sqlite store
//     without a server: `<cwd>/mlruns/<experiment_id>/...`.
//
// The tracking URI in force is, in order: SetTrackingUri(), $PYFUNC_TRACKING_URI,
// $MLFLOW_TRACKING_URI, then MLflow's default, `sqlite:///<cwd>/mlflow.db` — except when
// `./mlruns` holds a file store (an experiment directory with meta.yaml) and
// `./mlflow.db` does not exist: then `file://<cwd>/mlruns`, said once on stderr.
//
// Artifact paths are relative, '/'-separated paths inside a run's artifact root; a path
// that would leave the root (`..`, an absolute path, a symlink pointing out) is rejected
// with InvalidArgument before anything is written.
//
// Thread safety: a TrackingStore may be used from several threads and several processes
// at once. The FileStore writes every file atomically (temp + rename) or by O_APPEND of
// whole lines (metrics), and never rewrites files shared between runs. The sqlite store
// makes each logging call one transaction (BEGIN IMMEDIATE), waits for the database lock
// (busy timeout $PYFUNC_SQLITE_BUSY_TIMEOUT seconds, default 60) and retries a
// transaction that found the database busy, so that concurrent writers lose nothing and a
// failed call leaves nothing half-written.
#ifndef PYFUNC_TRACKING_H_
#define PYFUNC_TRACKING_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pyfunc/status.h"

namespace pyfunc {

// MLflow's RunStatus; the numbers are those the FileStore writes in meta.yaml.
enum class RunStatus { kRunning = 1, kScheduled = 2, kFinished = 3, kFailed = 4, kKilled = 5 };
const char* RunStatusName(RunStatus status);  // "RUNNING", "FINISHED", ...
Result<RunStatus> ParseRunStatus(const std::string& name);

inline constexpr const char* kDefaultExperimentId = "0";
inline constexpr const char* kDefaultExperimentName = "Default";

struct Experiment {
  std::string experiment_id;
  std::string name;
  std::string artifact_location;
  std::string lifecycle_stage = "active";
  int64_t creation_time = 0;     // ms since the epoch
  int64_t last_update_time = 0;  // ms since the epoch
};

struct RunInfo {
  std::string run_id;
  std::string experiment_id;
  std::string run_name;
  std::string user_id;
  std::string artifact_uri;  // file:///..., mlflow-artifacts:/..., or a plain path
  std::string lifecycle_stage = "active";
  RunStatus status = RunStatus::kRunning;
  int64_t start_time = 0;           // ms since the epoch
  std::optional<int64_t> end_time;  // ms since the epoch, unset while running
};

struct Metric {
  std::string key;
  double value = 0;
  int64_t timestamp = 0;  // ms since the epoch
  int64_t step = 0;
};

struct RunData {
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> tags;
  std::vector<Metric> metrics;  // the latest value of each key (max of step, timestamp, value)
};

struct Run {
  RunInfo info;
  RunData data;
};

struct CreateRunRequest {
  std::string experiment_id = kDefaultExperimentId;
  std::string run_name;                     // empty: a generated name
  std::string user_id;                      // empty: $USER or "unknown"
  int64_t start_time = 0;                   // 0: now
  std::map<std::string, std::string> tags;  // mlflow.runName/mlflow.user are added
};

// One entry of an artifact listing; `path` is relative to the artifact root.
struct ArtifactInfo {
  std::string path;
  bool is_dir = false;
  int64_t file_size = 0;
};

// MLflow's LoggedModelStatus; the numbers are those of the SQL store's `status` column.
enum class LoggedModelStatus { kUnspecified = 0, kPending = 1, kReady = 2, kFailed = 3 };
const char* LoggedModelStatusName(LoggedModelStatus status);  // "PENDING", "READY", ...

// An MLflow 3 logged model (`models:/m-...`).
struct LoggedModel {
  std::string model_id;
  std::string name;
  std::string experiment_id;
  std::string source_run_id;
  std::string artifact_location;
  int64_t creation_timestamp = 0;
  LoggedModelStatus status = LoggedModelStatus::kUnspecified;
  std::string model_type;
};

struct CreateLoggedModelRequest {
  std::string experiment_id = kDefaultExperimentId;
  std::string name;           // empty: a generated name
  std::string source_run_id;  // the run that logs it (may be empty)
  std::string model_type;
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> tags;
};

// A dataset used by a run (MLflow's DatasetInput): the dataset's identity (name, digest)
// and description, and the input's tags (e.g. mlflow.data.context = "training").
struct DatasetInput {
  std::string name;
  std::string digest;
  std::string source_type;  // "local", "http", "code", ...
  std::string source;       // JSON, as MLflow's DatasetSource.to_json()
  std::string schema;       // JSON or empty
  std::string profile;      // JSON or empty
  std::map<std::string, std::string> tags;
};

// A directory of artifacts addressed by relative paths. Implementations: a local
// directory, and an MLflow server's artifact proxy.
class ArtifactRepository {
 public:
  virtual ~ArtifactRepository() = default;
  // The local directory of the root if the repository is a local directory (artifacts can
  // be read in place), else empty.
  virtual std::string LocalRoot() const = 0;
  // Uploads one local file to `path`; the file appears complete or not at all.
  virtual Status UploadFile(const std::string& local_file, const std::string& path) = 0;
  // Lists the direct children of directory `path` ("" for the root); empty if absent.
  virtual Result<std::vector<ArtifactInfo>> List(const std::string& path) = 0;
  // Downloads file `path` to `local_file`.
  virtual Status DownloadFile(const std::string& path, const std::string& local_file) = 0;
  // InvalidArgument if `path` may not be written (it would leave the root); checked for
  // every file before a multi-file upload writes anything.
  virtual Status CheckPath(const std::string& /*path*/) { return Status::OK(); }
};

// Normalizes an artifact path: '/'-separated, no empty or "." parts. InvalidArgument for an
// absolute path, a ".." part or a NUL byte ("" stays "", the root).
Result<std::string> NormalizeArtifactPath(const std::string& path);

class TrackingStore {
 public:
  virtual ~TrackingStore() = default;
  virtual const std::string& uri() const = 0;

  // Experiments. GetExperiment/ByName give NotFound for an unknown id or name.
  virtual Result<std::vector<Experiment>> ListExperiments() = 0;
  virtual Result<Experiment> GetExperiment(const std::string& experiment_id) = 0;
  virtual Result<Experiment> GetExperimentByName(const std::string& name) = 0;
  virtual Result<std::string> CreateExperiment(const std::string& name) = 0;

  // Runs. GetRun gives NotFound for an unknown run id.
  virtual Result<RunInfo> CreateRun(const CreateRunRequest& request) = 0;
  virtual Status UpdateRun(const std::string& run_id, RunStatus status, std::optional<int64_t> end_time) = 0;
  virtual Result<Run> GetRun(const std::string& run_id) = 0;
  // Active runs of the experiments, newest first.
  virtual Result<std::vector<Run>> SearchRuns(const std::vector<std::string>& experiment_ids) = 0;
  // Params may be logged once per key (the same value again is fine); tags are overwritten;
  // metrics are appended to the history.
  virtual Status LogBatch(const std::string& run_id, const std::vector<Metric>& metrics,
                          const std::map<std::string, std::string>& params,
                          const std::map<std::string, std::string>& tags) = 0;
  virtual Result<std::vector<Metric>> GetMetricHistory(const std::string& run_id, const std::string& key) = 0;

  // MLflow 3 logged models: those of an experiment with this name made by this run.
  virtual Result<std::vector<LoggedModel>> SearchLoggedModels(const std::string& experiment_id, const std::string& name,
                                                              const std::string& source_run_id) = 0;
  virtual Result<LoggedModel> GetLoggedModel(const std::string& model_id) = 0;

  // Writing logged models, run outputs and inputs. Stores that cannot (the file store, an
  // MLflow server older than 3.0) answer false to SupportsLoggedModels and
  // InvalidArgument to the calls.
  virtual Result<bool> SupportsLoggedModels() { return false; }
  // A new logged model of the experiment, PENDING, its artifact location under the
  // experiment's (`<artifact_location>/models/<model_id>/artifacts`).
  virtual Result<LoggedModel> CreateLoggedModel(const CreateLoggedModelRequest& request);
  virtual Status FinalizeLoggedModel(const std::string& model_id, LoggedModelStatus status);
  // Links models to the run as its outputs (MLflow's log_outputs), at `step`.
  virtual Status LogOutputs(const std::string& run_id, const std::vector<std::string>& model_ids, int64_t step);
  // Datasets (and models) the run used (MLflow's log_inputs).
  virtual Status LogInputs(const std::string& run_id, const std::vector<DatasetInput>& datasets,
                           const std::vector<std::string>& model_ids);

  // Model registry: the artifact URI of a version ("latest" allowed), and the version an
  // alias points at. NotFound for an unknown name, version or alias.
  virtual Result<std::string> GetModelVersionDownloadUri(const std::string& name, const std::string& version) = 0;
  virtual Result<std::string> GetModelVersionByAlias(const std::string& name, const std::string& alias) = 0;

  // The repository behind an artifact URI of this store (a run's artifact_uri, a logged
  // model's artifact_location).
  virtual Result<std::unique_ptr<ArtifactRepository>> OpenArtifacts(const std::string& artifact_uri) = 0;

  // --- artifacts of a run (implemented on OpenArtifacts) ---
  // Logs a local file or directory under `artifact_path` ("" = the root). A file keeps its
  // base name; a directory's contents go under artifact_path.
  Status LogArtifacts(const std::string& run_id, const std::string& local_path, const std::string& artifact_path);
  Result<std::vector<ArtifactInfo>> ListArtifacts(const std::string& run_id, const std::string& path);
  // Uploads a local directory's contents into a logged model's artifact location.
  Status LogLoggedModelArtifacts(const std::string& model_id, const std::string& local_dir);
  // Downloads file or directory `path` of the run into dst_dir/<basename(path)> (or the
  // whole root into dst_dir when path is ""); returns the local path.
  Result<std::string> DownloadArtifacts(const std::string& run_id, const std::string& path, const std::string& dst_dir);
};

// Opens the store of a tracking URI (see above). InvalidArgument for an unsupported scheme.
Result<std::unique_ptr<TrackingStore>> OpenTrackingStore(const std::string& tracking_uri);

// The tracking URI in force (see the precedence above); SetTrackingUri("") clears the
// value set before. Local paths are returned as absolute `file://` URIs.
void SetTrackingUri(const std::string& uri);
std::string GetTrackingUri();

// Downloads everything under `path` of `repo` into the new directory `dst` (which must not
// exist): files land in a temporary sibling that is renamed to dst at the end, so dst is
// complete or absent. NotFound if nothing is there.
Status DownloadTree(ArtifactRepository& repo, const std::string& path, const std::string& dst);

// Milliseconds since the epoch.
int64_t NowMillis();

}  // namespace pyfunc

#endif  // PYFUNC_TRACKING_H_
