// FileStore: MLflow's `./mlruns` directory layout, read and written.
//
//   <root>/<experiment_id>/meta.yaml                 experiment (YAML, as MLflow dumps it)
//   <root>/<experiment_id>/<run_id>/meta.yaml        run info (status as an int)
//   <root>/<experiment_id>/<run_id>/{params,tags}/<key>     raw value
//   <root>/<experiment_id>/<run_id>/metrics/<key>    lines "<ts> <value> <step>"
//   <root>/<experiment_id>/<run_id>/artifacts/       the run's artifacts
//   <root>/<experiment_id>/models/<model_id>/        MLflow 3 logged models (read)
//   <root>/models/<name>/version-<n>/meta.yaml       model registry (read)
//
// Concurrency: experiments and runs are built in a temporary directory and renamed into
// place; params, tags and meta.yaml are replaced atomically; metric points are appended
// with one O_APPEND write per batch of whole lines. No file shared between runs is
// rewritten, so two processes logging at once lose nothing.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>

#include "base/ids.h"
#include "base/posix_error.h"
#include "pyfunc/file_system.h"
#include "pyfunc/value.h"
#include "pyfunc/yaml.h"
#include "tracking/tracking_internal.h"

namespace pyfunc::tracking_internal {
namespace {

bool AllDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string StrOf(const Value* v) {
  if (v == nullptr || v->is_null()) return "";
  if (v->is_string() || v->is_timestamp()) return v->as_string();
  if (v->is_int()) return std::to_string(v->as_int());
  if (v->is_float()) return PythonFloatRepr(v->as_float());
  if (v->is_bool()) return v->as_bool() ? "True" : "False";
  return "";
}

int64_t IntOf(const Value* v, int64_t fallback = 0) {
  if (v == nullptr) return fallback;
  if (v->is_int()) return v->as_int();
  if (v->is_float()) return static_cast<int64_t>(v->as_float());
  if (v->is_string()) {
    char* end = nullptr;
    long long x = std::strtoll(v->as_string().c_str(), &end, 10);
    if (end != v->as_string().c_str()) return x;
  }
  return fallback;
}

Status AppendLines(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return base::PosixError(path);
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return base::PosixError(path, err);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::close(fd) != 0) return base::PosixError(path);
  return Status::OK();
}

// Creates a param file whole and only if absent (link(2) of a complete temp file), so two
// writers of one key cannot both win: the loser compares values instead.
Status CreateParamFile(const std::string& path, const std::string& key, const std::string& value,
                       const std::string& run_id) {
  FileSystem* fs = FileSystem::Default();
  std::filesystem::path p(path);
  std::string tmp =
      (p.parent_path() / ("." + p.filename().string() + ".pyfunc-tmp-" + base::NewUuidHex().substr(0, 12))).string();
  PYFUNC_RETURN_IF_ERROR(fs->WriteFile(tmp, value));
  int rc = ::link(tmp.c_str(), path.c_str());
  int err = errno;
  ::unlink(tmp.c_str());
  if (rc == 0) return Status::OK();
  if (err != EEXIST) return base::PosixError(path, err);
  auto old = fs->ReadFile(path);
  if (old.ok() && *old != value) {
    return Status::InvalidArgument("param '" + key + "' of run " + run_id + ": already logged with value '" + *old +
                                   "', cannot change it to '" + value + "'");
  }
  return Status::OK();
}

Status MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::IOError(path + ": cannot create directory: " + ec.message());
  return Status::OK();
}

// Reads every file below dir as key (relative path) -> content.
void ReadKeyFiles(FileSystem* fs, const std::string& dir, const std::string& prefix,
                  std::map<std::string, std::string>* out) {
  auto names = fs->ListDir(dir);
  if (!names.ok()) return;
  for (const std::string& name : *names) {
    if (name.rfind(".pyfunc-tmp-", 0) == 0 || name.rfind(".", 0) == 0) continue;
    std::string full = dir + "/" + name;
    std::string key = prefix.empty() ? name : prefix + "/" + name;
    if (fs->IsDirectory(full)) {
      ReadKeyFiles(fs, full, key, out);
    } else if (auto text = fs->ReadFile(full); text.ok()) {
      (*out)[key] = *text;
    }
  }
}

std::vector<Metric> ParseMetricLines(const std::string& key, const std::string& text) {
  std::vector<Metric> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    Metric m;
    m.key = key;
    char* p = nullptr;
    m.timestamp = std::strtoll(line.c_str(), &p, 10);
    if (p == line.c_str()) continue;
    char* q = nullptr;
    m.value = std::strtod(p, &q);
    if (q == p) continue;
    m.step = std::strtoll(q, &p, 10);  // absent in 0.x files: 0
    out.push_back(m);
  }
  return out;
}

bool MetricLess(const Metric& a, const Metric& b) {
  if (a.step != b.step) return a.step < b.step;
  if (a.timestamp != b.timestamp) return a.timestamp < b.timestamp;
  return a.value < b.value;
}

class FileStore final : public TrackingStore {
 public:
  FileStore(std::string root, std::string uri) : root_(std::move(root)), uri_(std::move(uri)) {}

  const std::string& uri() const override { return uri_; }

  Result<std::vector<Experiment>> ListExperiments() override {
    std::vector<Experiment> out;
    if (!fs_->IsDirectory(root_)) return out;
    PYFUNC_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->ListDir(root_));
    for (const std::string& name : names) {
      if (!AllDigits(name)) continue;
      auto exp = ReadExperiment(name);
      if (exp.ok() && exp->lifecycle_stage == "active") out.push_back(std::move(exp).value());
    }
    std::sort(out.begin(), out.end(), [](const Experiment& a, const Experiment& b) {
      return a.creation_time != b.creation_time ? a.creation_time > b.creation_time : a.experiment_id < b.experiment_id;
    });
    return out;
  }

  Result<Experiment> GetExperiment(const std::string& experiment_id) override {
    if (!AllDigits(experiment_id)) return Status::NotFound("experiment '" + experiment_id + "': no such experiment");
    if (experiment_id == kDefaultExperimentId && !fs_->Exists(root_ + "/0/meta.yaml")) {
      PYFUNC_RETURN_IF_ERROR(EnsureDefaultExperiment());
    }
    return ReadExperiment(experiment_id);
  }

  Result<Experiment> GetExperimentByName(const std::string& name) override {
    if (name == kDefaultExperimentName && !fs_->Exists(root_ + "/0/meta.yaml")) {
      PYFUNC_RETURN_IF_ERROR(EnsureDefaultExperiment());
    }
    PYFUNC_ASSIGN_OR_RETURN(std::vector<Experiment> all, ListExperiments());
    for (Experiment& e : all)
      if (e.name == name) return std::move(e);
    return Status::NotFound("experiment '" + name + "': no experiment with this name in " + uri_);
  }

  Result<std::string> CreateExperiment(const std::string& name) override {
    if (name.empty()) return Status::InvalidArgument("create experiment: the name must not be empty");
    if (GetExperimentByName(name).ok()) {
      return Status::AlreadyExists("experiment '" + name + "': already exists in " + uri_);
    }
    std::random_device rd;
    std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(::getpid()));
    for (int attempt = 0; attempt < 10; ++attempt) {
      std::string id = std::to_string(100000000000000000ULL + rng() % 900000000000000000ULL);
      Status st = WriteExperiment(id, name);
      if (st.ok()) return id;
      if (st.code() != StatusCode::kAlreadyExists) return st;
    }
    return Status::Internal("create experiment '" + name + "': no free experiment id");
  }

  Result<RunInfo> CreateRun(const CreateRunRequest& request) override {
    PYFUNC_ASSIGN_OR_RETURN(Experiment exp, GetExperiment(request.experiment_id));
    if (exp.lifecycle_stage != "active") {
      return Status::InvalidArgument("experiment '" + exp.experiment_id + "': is deleted");
    }
    RunInfo info;
    info.run_id = base::NewUuidHex();
    info.experiment_id = exp.experiment_id;
    info.run_name = request.run_name.empty() ? NewRunName() : request.run_name;
    info.user_id = request.user_id;
    if (info.user_id.empty()) {
      const char* user = std::getenv("USER");
      info.user_id = user != nullptr && *user != '\0' ? user : "unknown";
    }
    info.start_time = request.start_time != 0 ? request.start_time : NowMillis();
    info.status = RunStatus::kRunning;
    std::string exp_loc = exp.artifact_location;
    if (exp_loc.empty()) exp_loc = "file://" + root_ + "/" + exp.experiment_id;
    info.artifact_uri = exp_loc + "/" + info.run_id + "/artifacts";

    std::map<std::string, std::string> tags = request.tags;
    tags["mlflow.runName"] = info.run_name;
    tags.emplace("mlflow.user", info.user_id);
    tags.emplace("mlflow.source.type", "LOCAL");
    for (const auto& [k, v] : tags) PYFUNC_RETURN_IF_ERROR(ValidateKey(k, "tag"));

    // Build the run directory aside, then rename it into place: the run appears whole.
    std::string exp_dir = root_ + "/" + exp.experiment_id;
    PYFUNC_ASSIGN_OR_RETURN(std::string tmp, fs_->MakeTempDir(exp_dir, ".pyfunc-tmp-run-"));
    auto build = [&]() -> Status {
      for (const char* sub : {"metrics", "params", "tags", "artifacts"}) {
        PYFUNC_RETURN_IF_ERROR(fs_->CreateDir(tmp + "/" + sub));
      }
      for (const auto& [k, v] : tags) {
        std::string path = tmp + "/tags/" + k;
        PYFUNC_RETURN_IF_ERROR(MakeDirs(std::filesystem::path(path).parent_path().string()));
        PYFUNC_RETURN_IF_ERROR(fs_->WriteFile(path, v));
      }
      PYFUNC_RETURN_IF_ERROR(fs_->WriteFile(tmp + "/meta.yaml", DumpYaml(RunMeta(info))));
      return fs_->Rename(tmp, exp_dir + "/" + info.run_id);
    };
    Status st = build();
    if (!st.ok()) {
      (void)fs_->RemoveAll(tmp);
      return st.WithContext("create run in " + uri_);
    }
    return info;
  }

  Status UpdateRun(const std::string& run_id, RunStatus status, std::optional<int64_t> end_time) override {
    PYFUNC_ASSIGN_OR_RETURN(std::string dir, FindRunDir(run_id));
    PYFUNC_ASSIGN_OR_RETURN(RunInfo info, ReadRunInfo(dir, run_id));
    info.status = status;
    if (end_time) info.end_time = end_time;
    return WriteFileAtomic(fs_, dir + "/meta.yaml", DumpYaml(RunMeta(info)));
  }

  Result<Run> GetRun(const std::string& run_id) override {
    PYFUNC_ASSIGN_OR_RETURN(std::string dir, FindRunDir(run_id));
    return ReadRun(dir, run_id);
  }

  Result<std::vector<Run>> SearchRuns(const std::vector<std::string>& experiment_ids) override {
    std::vector<Run> out;
    for (const std::string& exp_id : experiment_ids) {
      PYFUNC_RETURN_IF_ERROR(GetExperiment(exp_id).status());
      std::string exp_dir = root_ + "/" + exp_id;
      PYFUNC_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->ListDir(exp_dir));
      for (const std::string& name : names) {
        if (name == "models" || name == "tags" || name == "datasets" || name == "traces" || name[0] == '.') continue;
        if (!fs_->Exists(exp_dir + "/" + name + "/meta.yaml")) continue;
        auto run = ReadRun(exp_dir + "/" + name, name);
        if (run.ok() && run->info.lifecycle_stage == "active") out.push_back(std::move(run).value());
      }
    }
    std::sort(out.begin(), out.end(), [](const Run& a, const Run& b) {
      return a.info.start_time != b.info.start_time ? a.info.start_time > b.info.start_time
                                                    : a.info.run_id < b.info.run_id;
    });
    return out;
  }

  Status LogBatch(const std::string& run_id, const std::vector<Metric>& metrics,
                  const std::map<std::string, std::string>& params,
                  const std::map<std::string, std::string>& tags) override {
    PYFUNC_ASSIGN_OR_RETURN(std::string dir, FindRunDir(run_id));
    PYFUNC_ASSIGN_OR_RETURN(RunInfo info, ReadRunInfo(dir, run_id));
    if (info.lifecycle_stage != "active") return Status::InvalidArgument("run '" + run_id + "': is deleted");
    // Validate everything first: a bad key or a changed param writes nothing.
    for (const Metric& m : metrics) PYFUNC_RETURN_IF_ERROR(ValidateKey(m.key, "metric"));
    for (const auto& [k, v] : tags) PYFUNC_RETURN_IF_ERROR(ValidateKey(k, "tag"));
    for (const auto& [k, v] : params) {
      PYFUNC_RETURN_IF_ERROR(ValidateKey(k, "param"));
      auto old = fs_->ReadFile(dir + "/params/" + k);
      if (old.ok() && *old != v) {
        return Status::InvalidArgument("param '" + k + "' of run " + run_id + ": already logged with value '" + *old +
                                       "', cannot change it to '" + v + "'");
      }
    }
    for (const auto& [k, v] : params) {
      std::string path = dir + "/params/" + k;
      if (fs_->Exists(path)) continue;
      PYFUNC_RETURN_IF_ERROR(MakeDirs(std::filesystem::path(path).parent_path().string()));
      PYFUNC_RETURN_IF_ERROR(CreateParamFile(path, k, v, run_id));
    }
    for (const auto& [k, v] : tags) {
      std::string path = dir + "/tags/" + k;
      PYFUNC_RETURN_IF_ERROR(MakeDirs(std::filesystem::path(path).parent_path().string()));
      PYFUNC_RETURN_IF_ERROR(WriteFileAtomic(fs_, path, v));
    }
    std::map<std::string, std::string> lines;
    for (const Metric& m : metrics) {
      lines[m.key] +=
          std::to_string(m.timestamp) + " " + PythonFloatRepr(m.value) + " " + std::to_string(m.step) + "\n";
    }
    for (const auto& [k, text] : lines) {
      std::string path = dir + "/metrics/" + k;
      PYFUNC_RETURN_IF_ERROR(MakeDirs(std::filesystem::path(path).parent_path().string()));
      PYFUNC_RETURN_IF_ERROR(AppendLines(path, text));
    }
    return Status::OK();
  }

  Result<std::vector<Metric>> GetMetricHistory(const std::string& run_id, const std::string& key) override {
    PYFUNC_RETURN_IF_ERROR(ValidateKey(key, "metric"));
    PYFUNC_ASSIGN_OR_RETURN(std::string dir, FindRunDir(run_id));
    auto text = fs_->ReadFile(dir + "/metrics/" + key);
    if (!text.ok()) return std::vector<Metric>{};
    return ParseMetricLines(key, *text);
  }

  Result<std::vector<LoggedModel>> SearchLoggedModels(const std::string& experiment_id, const std::string& name,
                                                      const std::string& source_run_id) override {
    std::vector<LoggedModel> out;
    if (!AllDigits(experiment_id)) return out;
    std::string dir = root_ + "/" + experiment_id + "/models";
    if (!fs_->IsDirectory(dir)) return out;
    PYFUNC_ASSIGN_OR_RETURN(std::vector<std::string> ids, fs_->ListDir(dir));
    for (const std::string& id : ids) {
      auto m = ReadLoggedModel(dir + "/" + id);
      if (!m.ok()) continue;
      if ((name.empty() || m->name == name) && (source_run_id.empty() || m->source_run_id == source_run_id)) {
        out.push_back(std::move(m).value());
      }
    }
    std::sort(out.begin(), out.end(),
              [](const LoggedModel& a, const LoggedModel& b) { return a.creation_timestamp > b.creation_timestamp; });
    return out;
  }

  Result<LoggedModel> GetLoggedModel(const std::string& model_id) override {
    if (ValidateRunId(model_id).ok() && fs_->IsDirectory(root_)) {
      PYFUNC_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->ListDir(root_));
      for (const std::string& exp : names) {
        if (!AllDigits(exp)) continue;
        std::string dir = root_ + "/" + exp + "/models/" + model_id;
        if (fs_->Exists(dir + "/meta.yaml")) return ReadLoggedModel(dir);
      }
    }
    return Status::NotFound("logged model '" + model_id + "': no such model in " + uri_);
  }

  Result<std::string> GetModelVersionDownloadUri(const std::string& name, const std::string& version) override {
    PYFUNC_ASSIGN_OR_RETURN(std::string dir, RegisteredModelDir(name));
    std::string v = version;
    if (v == "latest" || v == "LATEST" || v == "Latest") {
      PYFUNC_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->ListDir(dir));
      int64_t best = -1;
      for (const std::string& n : names) {
        if (n.rfind("version-", 0) == 0 && AllDigits(n.substr(8)))
          best = std::max<int64_t>(best, std::stoll(n.substr(8)));
      }
      if (best < 0) return Status::NotFound("registered model '" + name + "': has no versions");
      v = std::to_string(best);
    }
    if (!AllDigits(v)) return Status::InvalidArgument("registered model '" + name + "': bad version '" + version + "'");
    auto text = fs_->ReadFile(dir + "/version-" + v + "/meta.yaml");
    if (!text.ok()) return Status::NotFound("registered model '" + name + "': no version " + v);
    PYFUNC_ASSIGN_OR_RETURN(Value meta, ParseYaml(*text, dir + "/version-" + v + "/meta.yaml"));
    std::string loc = StrOf(meta.Find("storage_location"));
    if (loc.empty()) loc = StrOf(meta.Find("source"));
    if (loc.empty()) return Status::NotFound("registered model '" + name + "' version " + v + ": no source");
    return loc;
  }

  Result<std::string> GetModelVersionByAlias(const std::string& name, const std::string& alias) override {
    PYFUNC_ASSIGN_OR_RETURN(std::string dir, RegisteredModelDir(name));
    if (ValidateKey(alias, "alias").ok()) {
      auto text = fs_->ReadFile(dir + "/aliases/" + alias);
      if (text.ok()) {
        std::string v = *text;
        while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
        return v;
      }
      // Older layouts keep aliases only in the registered model's meta.yaml.
      if (auto meta_text = fs_->ReadFile(dir + "/meta.yaml"); meta_text.ok()) {
        auto meta = ParseYaml(*meta_text, dir + "/meta.yaml");
        if (meta.ok()) {
          if (const Value* aliases = meta->Find("aliases"); aliases != nullptr && aliases->is_map()) {
            if (const Value* v = aliases->Find(alias)) return StrOf(v);
          }
        }
      }
    }
    return Status::NotFound("registered model '" + name + "': no alias '" + alias + "'");
  }

  Result<std::unique_ptr<ArtifactRepository>> OpenArtifacts(const std::string& artifact_uri) override {
    std::string path = LocalPathOfUri(artifact_uri);
    if (path.empty()) {
      return Status::InvalidArgument("artifact URI '" + artifact_uri +
                                     "': not a local path; a file store only reads local artifacts");
    }
    return std::unique_ptr<ArtifactRepository>(new LocalArtifactRepository(path));
  }

 private:
  Status EnsureDefaultExperiment() {
    PYFUNC_RETURN_IF_ERROR(MakeDirs(root_));
    (void)MakeDirs(root_ + "/.trash");
    Status st = WriteExperiment(kDefaultExperimentId, kDefaultExperimentName);
    if (st.code() == StatusCode::kAlreadyExists) return Status::OK();  // another process made it
    return st;
  }

  // Creates experiment `id` whole (meta.yaml in a temp dir renamed into place);
  // AlreadyExists if the directory exists.
  Status WriteExperiment(const std::string& id, const std::string& name) {
    PYFUNC_RETURN_IF_ERROR(MakeDirs(root_));
    std::string dst = root_ + "/" + id;
    if (fs_->Exists(dst)) return Status::AlreadyExists(dst + ": exists");
    int64_t now = NowMillis();
    Value::Map meta = {
        {"artifact_location", Value("file://" + dst)},
        {"creation_time", Value(now)},
        {"experiment_id", Value(id)},
        {"last_update_time", Value(now)},
        {"lifecycle_stage", Value("active")},
        {"name", Value(name)},
    };
    PYFUNC_ASSIGN_OR_RETURN(std::string tmp, fs_->MakeTempDir(root_, ".pyfunc-tmp-exp-"));
    Status st = fs_->WriteFile(tmp + "/meta.yaml", DumpYaml(Value(std::move(meta))));
    if (st.ok()) st = fs_->Rename(tmp, dst);
    if (!st.ok()) {
      (void)fs_->RemoveAll(tmp);
      if (fs_->Exists(dst + "/meta.yaml")) return Status::AlreadyExists(dst + ": exists");
    }
    return st;
  }

  Result<Experiment> ReadExperiment(const std::string& id) {
    std::string path = root_ + "/" + id + "/meta.yaml";
    auto text = fs_->ReadFile(path);
    if (!text.ok()) return Status::NotFound("experiment '" + id + "': no such experiment in " + uri_);
    PYFUNC_ASSIGN_OR_RETURN(Value meta, ParseYaml(*text, path));
    if (!meta.is_map()) return Status::InvalidArgument(path + ": expected a mapping");
    Experiment e;
    e.experiment_id = StrOf(meta.Find("experiment_id"));
    if (e.experiment_id.empty()) e.experiment_id = id;
    e.name = StrOf(meta.Find("name"));
    e.artifact_location = StrOf(meta.Find("artifact_location"));
    e.lifecycle_stage = StrOf(meta.Find("lifecycle_stage"));
    if (e.lifecycle_stage.empty()) e.lifecycle_stage = "active";
    e.creation_time = IntOf(meta.Find("creation_time"));
    e.last_update_time = IntOf(meta.Find("last_update_time"));
    return e;
  }

  Result<std::string> FindRunDir(const std::string& run_id) {
    PYFUNC_RETURN_IF_ERROR(ValidateRunId(run_id));
    if (fs_->IsDirectory(root_)) {
      PYFUNC_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->ListDir(root_));
      for (const std::string& exp : names) {
        if (!AllDigits(exp)) continue;
        std::string dir = root_ + "/" + exp + "/" + run_id;
        if (fs_->Exists(dir + "/meta.yaml")) return dir;
      }
    }
    return Status::NotFound("run '" + run_id + "': no such run in " + uri_);
  }

  static Value RunMeta(const RunInfo& info) {
    Value::Map meta = {
        {"artifact_uri", Value(info.artifact_uri)},
        {"end_time", info.end_time ? Value(*info.end_time) : Value()},
        {"entry_point_name", Value("")},
        {"experiment_id", Value(info.experiment_id)},
        {"lifecycle_stage", Value(info.lifecycle_stage)},
        {"run_id", Value(info.run_id)},
        {"run_name", Value(info.run_name)},
        {"source_name", Value("")},
        {"source_type", Value(4)},
        {"source_version", Value("")},
        {"start_time", Value(info.start_time)},
        {"status", Value(static_cast<int>(info.status))},
        {"tags", Value::EmptyList()},
        {"user_id", Value(info.user_id)},
    };
    return Value(std::move(meta));
  }

  Result<RunInfo> ReadRunInfo(const std::string& dir, const std::string& run_id) {
    std::string path = dir + "/meta.yaml";
    PYFUNC_ASSIGN_OR_RETURN(std::string text, fs_->ReadFile(path));
    PYFUNC_ASSIGN_OR_RETURN(Value meta, ParseYaml(text, path));
    if (!meta.is_map()) return Status::InvalidArgument(path + ": expected a mapping");
    RunInfo info;
    info.run_id = StrOf(meta.Find("run_id"));
    if (info.run_id.empty()) info.run_id = StrOf(meta.Find("run_uuid"));
    if (info.run_id != run_id) {
      return Status::InvalidArgument(path + ": run_id '" + info.run_id + "' does not match the directory name");
    }
    info.experiment_id = StrOf(meta.Find("experiment_id"));
    info.run_name = StrOf(meta.Find("run_name"));
    info.user_id = StrOf(meta.Find("user_id"));
    info.artifact_uri = StrOf(meta.Find("artifact_uri"));
    // A store copied or moved elsewhere keeps its old absolute artifact URIs: use the
    // run's own artifacts directory when the recorded one is gone.
    std::string recorded = LocalPathOfUri(info.artifact_uri);
    if (info.artifact_uri.empty() ||
        (!recorded.empty() && !fs_->Exists(recorded) && fs_->IsDirectory(dir + "/artifacts"))) {
      info.artifact_uri = "file://" + dir + "/artifacts";
    }
    info.lifecycle_stage = StrOf(meta.Find("lifecycle_stage"));
    if (info.lifecycle_stage.empty()) info.lifecycle_stage = "active";
    int64_t status = IntOf(meta.Find("status"), 1);
    info.status = status >= 1 && status <= 5 ? static_cast<RunStatus>(status) : RunStatus::kRunning;
    info.start_time = IntOf(meta.Find("start_time"));
    const Value* end = meta.Find("end_time");
    if (end != nullptr && !end->is_null()) info.end_time = IntOf(end);
    return info;
  }

  Result<Run> ReadRun(const std::string& dir, const std::string& run_id) {
    Run run;
    PYFUNC_ASSIGN_OR_RETURN(run.info, ReadRunInfo(dir, run_id));
    ReadKeyFiles(fs_, dir + "/params", "", &run.data.params);
    ReadKeyFiles(fs_, dir + "/tags", "", &run.data.tags);
    if (run.info.run_name.empty()) {
      auto it = run.data.tags.find("mlflow.runName");
      if (it != run.data.tags.end()) run.info.run_name = it->second;
    }
    std::map<std::string, std::string> metric_files;
    ReadKeyFiles(fs_, dir + "/metrics", "", &metric_files);
    for (const auto& [key, text] : metric_files) {
      std::vector<Metric> history = ParseMetricLines(key, text);
      if (history.empty()) continue;
      run.data.metrics.push_back(*std::max_element(history.begin(), history.end(), MetricLess));
    }
    return run;
  }

  Result<LoggedModel> ReadLoggedModel(const std::string& dir) {
    std::string path = dir + "/meta.yaml";
    PYFUNC_ASSIGN_OR_RETURN(std::string text, fs_->ReadFile(path));
    PYFUNC_ASSIGN_OR_RETURN(Value meta, ParseYaml(text, path));
    if (!meta.is_map()) return Status::InvalidArgument(path + ": expected a mapping");
    LoggedModel m;
    m.model_id = StrOf(meta.Find("model_id"));
    m.name = StrOf(meta.Find("name"));
    m.experiment_id = StrOf(meta.Find("experiment_id"));
    m.source_run_id = StrOf(meta.Find("source_run_id"));
    m.artifact_location = StrOf(meta.Find("artifact_location"));
    if (m.artifact_location.empty()) m.artifact_location = "file://" + dir + "/artifacts";
    m.creation_timestamp = IntOf(meta.Find("creation_timestamp"));
    return m;
  }

  Result<std::string> RegisteredModelDir(const std::string& name) {
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == ".." ||
        name.find('\0') != std::string::npos) {
      return Status::NotFound("registered model '" + name + "': no such model");
    }
    std::string dir = root_ + "/models/" + name;
    if (!fs_->Exists(dir + "/meta.yaml")) {
      return Status::NotFound("registered model '" + name + "': no such model in " + uri_);
    }
    return dir;
  }

  FileSystem* fs_ = FileSystem::Default();
  std::string root_;
  std::string uri_;
};

}  // namespace

std::unique_ptr<TrackingStore> NewFileStore(std::string root, std::string uri) {
  return std::make_unique<FileStore>(std::move(root), std::move(uri));
}

}  // namespace pyfunc::tracking_internal
