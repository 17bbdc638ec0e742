// The parts of tracking shared by every store: statuses, artifact paths, the tracking
// URI, local artifact directories and the artifact operations of TrackingStore.
#include "pyfunc/tracking.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>

#include "base/ids.h"
#include "pyfunc/file_system.h"
#include "tracking/tracking_internal.h"

namespace pyfunc {

using namespace tracking_internal;

const char* RunStatusName(RunStatus status) {
  switch (status) {
    case RunStatus::kRunning: return "RUNNING";
    case RunStatus::kScheduled: return "SCHEDULED";
    case RunStatus::kFinished: return "FINISHED";
    case RunStatus::kFailed: return "FAILED";
    case RunStatus::kKilled: return "KILLED";
  }
  return "RUNNING";
}

const char* LoggedModelStatusName(LoggedModelStatus status) {
  switch (status) {
    case LoggedModelStatus::kUnspecified: return "UNSPECIFIED";
    case LoggedModelStatus::kPending: return "PENDING";
    case LoggedModelStatus::kReady: return "READY";
    case LoggedModelStatus::kFailed: return "FAILED";
  }
  return "UNSPECIFIED";
}

Result<RunStatus> ParseRunStatus(const std::string& name) {
  for (RunStatus s :
       {RunStatus::kRunning, RunStatus::kScheduled, RunStatus::kFinished, RunStatus::kFailed, RunStatus::kKilled}) {
    if (name == RunStatusName(s)) return s;
  }
  return Status::InvalidArgument("run status: unknown status '" + name +
                                 "' (expected RUNNING, SCHEDULED, FINISHED, FAILED or KILLED)");
}

int64_t NowMillis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

Result<std::string> NormalizeArtifactPath(const std::string& path) {
  if (path.find('\0') != std::string::npos) {
    return Status::InvalidArgument("artifact path '" + path + "': contains a NUL byte");
  }
  if (!path.empty() && (path[0] == '/' || path[0] == '\\')) {
    return Status::InvalidArgument("artifact path '" + path +
                                   "': absolute paths are not allowed (it must stay inside the run's artifact root)");
  }
  std::string out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (part == "..") {
      return Status::InvalidArgument("artifact path '" + path +
                                     "': '..' is not allowed (it must stay inside the run's artifact root)");
    }
    if (!part.empty() && part != ".") out += (out.empty() ? "" : "/") + part;
    start = end + 1;
  }
  return out;
}

// --- the tracking URI -------------------------------------------------------------

namespace {
std::mutex g_uri_mu;
std::string g_uri;  // set by SetTrackingUri

std::string Canonical(const std::string& uri) {
  if (UriScheme(uri).empty()) return "file://" + LocalPathOfUri(uri);
  return uri;
}
}  // namespace

void SetTrackingUri(const std::string& uri) {
  std::lock_guard<std::mutex> lock(g_uri_mu);
  g_uri = uri.empty() ? "" : Canonical(uri);
}

namespace {
// MLflow's test for a file store in ./mlruns (_has_existing_mlruns_data): an all-digit
// experiment directory holding meta.yaml. A sqlite store's artifacts (./mlruns/0/<run>/)
// have none.
bool HasFileStoreData(const std::string& dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    struct stat st;
    if (::lstat((it->path().string() + "/meta.yaml").c_str(), &st) == 0) return true;
  }
  return false;
}
std::once_flag g_file_store_note;
}  // namespace

std::string GetTrackingUri() {
  {
    std::lock_guard<std::mutex> lock(g_uri_mu);
    if (!g_uri.empty()) return g_uri;
  }
  for (const char* var : {"PYFUNC_TRACKING_URI", "MLFLOW_TRACKING_URI"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && *v != '\0') return Canonical(v);
  }
  std::error_code ec;
  std::string cwd = std::filesystem::current_path(ec).string();
  if (ec) cwd = ".";
  struct stat st;
  if (::stat((cwd + "/mlflow.db").c_str(), &st) != 0 && HasFileStoreData(cwd + "/mlruns")) {
    std::call_once(g_file_store_note, [&] {
      std::fprintf(stderr,
                   "pyfunc: tracking to the file store %s/mlruns (it exists and ./mlflow.db does not); MLflow's "
                   "default is sqlite:///mlflow.db, and MLflow reads ./mlruns only with "
                   "MLFLOW_ALLOW_FILE_STORE=true. Set MLFLOW_TRACKING_URI to choose.\n",
                   cwd.c_str());
    });
    return Canonical(cwd + "/mlruns");
  }
  return "sqlite:///" + cwd + "/mlflow.db";
}

Result<std::unique_ptr<TrackingStore>> OpenTrackingStore(const std::string& tracking_uri) {
  std::string scheme = UriScheme(tracking_uri);
  if (scheme.empty() || scheme == "file") {
    std::string root = LocalPathOfUri(tracking_uri);
    if (root.empty()) return Status::InvalidArgument("tracking URI '" + tracking_uri + "': bad file URI");
    return NewFileStore(root, "file://" + root);
  }
  if (scheme == "http" || scheme == "https") return NewRestStore(tracking_uri);
  if (scheme == "sqlite") {
    // sqlite:///relative.db, sqlite:////abs/path.db
    std::string rest = tracking_uri.substr(std::strlen("sqlite:"));
    if (rest.rfind("///", 0) != 0) {
      return Status::InvalidArgument("tracking URI '" + tracking_uri + "': expected sqlite:///<path>");
    }
    std::string path = rest.substr(3);
    size_t q = path.find('?');
    if (q != std::string::npos) path.resize(q);
    if (path.empty() || path == ":memory:") {
      return Status::InvalidArgument("tracking URI '" + tracking_uri + "': no database file");
    }
    return NewSqliteStore(std::filesystem::absolute(path).lexically_normal().string(), tracking_uri);
  }
  return Status::InvalidArgument("tracking URI '" + tracking_uri + "': unsupported scheme '" + scheme +
                                 ":' (use a path, file://, http(s):// or sqlite:///)");
}

// --- helpers ----------------------------------------------------------------------

namespace tracking_internal {

std::string UriScheme(const std::string& uri) {
  size_t colon = uri.find(':');
  if (colon == std::string::npos || colon < 2) return "";  // "C:" drive letters are paths
  for (size_t i = 0; i < colon; ++i) {
    char c = uri[i];
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.')) return "";
  }
  return uri.substr(0, colon);
}

std::string LocalPathOfUri(const std::string& uri) {
  std::string scheme = UriScheme(uri);
  std::string path;
  if (scheme.empty()) {
    path = uri;
  } else if (scheme == "file") {
    path = uri.substr(5);
    if (path.rfind("//", 0) == 0) {  // file://host/path: only an empty host or localhost
      size_t slash = path.find('/', 2);
      std::string host = path.substr(2, slash == std::string::npos ? std::string::npos : slash - 2);
      if (!host.empty() && host != "localhost") return "";
      path = slash == std::string::npos ? "/" : path.substr(slash);
    }
    // Percent-decoding.
    std::string decoded;
    for (size_t i = 0; i < path.size(); ++i) {
      if (path[i] == '%' && i + 2 < path.size() && std::isxdigit(static_cast<unsigned char>(path[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(path[i + 2]))) {
        decoded += static_cast<char>(std::stoi(path.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        decoded += path[i];
      }
    }
    path = decoded;
  } else {
    return "";
  }
  if (path.empty()) return "";
  std::string out = std::filesystem::absolute(path).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

Status ValidateKey(const std::string& key, const char* what) {
  if (key.empty()) return Status::InvalidArgument(std::string(what) + " key: must not be empty");
  if (key.size() > 250)
    return Status::InvalidArgument(std::string(what) + " key '" + key + "': longer than 250 characters");
  for (char c : key) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ' ' || c == '/' ||
          c == ':')) {
      return Status::InvalidArgument(std::string(what) + " key '" + key +
                                     "': only letters, digits, '_', '-', '.', ' ', ':' and '/' are allowed");
    }
  }
  auto norm = NormalizeArtifactPath(key);
  if (!norm.ok() || *norm != key) {
    return Status::InvalidArgument(std::string(what) + " key '" + key + "': not a normalized relative path");
  }
  return Status::OK();
}

Status ValidateRunId(const std::string& run_id) {
  if (run_id.empty() || run_id.size() > 256) return Status::NotFound("run '" + run_id + "': no such run");
  for (char c : run_id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) {
      return Status::NotFound("run '" + run_id + "': no such run (not a valid run id)");
    }
  }
  return Status::OK();
}

std::string NewRunName() {
  static const char* kAdjectives[] = {"bright", "calm",  "clever", "bold",  "gentle", "honest",
                                      "lively", "quiet", "rare",   "swift", "wise",   "able"};
  static const char* kNouns[] = {"otter", "heron", "lynx", "finch", "badger", "crane",
                                 "fox",   "hare",  "owl",  "seal",  "wren",   "yak"};
  std::string hex = base::NewUuidHex();
  unsigned v = static_cast<unsigned>(std::stoul(hex.substr(0, 8), nullptr, 16));
  return std::string(kAdjectives[v % 12]) + "-" + kNouns[(v / 12) % 12] + "-" + std::to_string(v % 1000);
}

std::string JoinArtifactPath(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "/" + b;
}

std::string UrlEncode(const std::string& s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// --- LocalArtifactRepository ---------------------------------------------------------

namespace {
std::string RealPath(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) return "";
  return buf;
}
bool Inside(const std::string& path, const std::string& root) {
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          (root == "/" || path[root.size()] == '/'));
}
std::atomic<uint64_t> g_tmp_counter{0};
}  // namespace

LocalArtifactRepository::LocalArtifactRepository(std::string root) : root_(std::move(root)) {}

Result<std::string> LocalArtifactRepository::Resolve(const std::string& path) const {
  PYFUNC_ASSIGN_OR_RETURN(std::string norm, NormalizeArtifactPath(path));
  std::string real_root = RealPath(root_);
  if (real_root.empty()) real_root = root_;  // not created yet: nothing below it can exist
  std::string current = root_;
  size_t start = 0;
  while (!norm.empty() && start <= norm.size()) {
    size_t end = norm.find('/', start);
    if (end == std::string::npos) end = norm.size();
    current += "/" + norm.substr(start, end - start);
    struct stat st;
    if (::lstat(current.c_str(), &st) != 0) break;  // the rest does not exist yet
    if (S_ISLNK(st.st_mode)) {
      std::string target = RealPath(current);
      if (target.empty() || !Inside(target, real_root)) {
        return Status::InvalidArgument("artifact path '" + path + "': '" + current +
                                       "' is a symlink that leaves the artifact root " + root_);
      }
    }
    start = end + 1;
  }
  return norm.empty() ? root_ : root_ + "/" + norm;
}

Status LocalArtifactRepository::CheckPath(const std::string& path) { return Resolve(path).status(); }

Status LocalArtifactRepository::UploadFile(const std::string& local_file, const std::string& path) {
  PYFUNC_ASSIGN_OR_RETURN(std::string dst, Resolve(path));
  if (dst == root_) return Status::InvalidArgument("artifact path '" + path + "': names the artifact root, not a file");
  FileSystem* fs = FileSystem::Default();
  // Create the parents one level at a time, re-checking each for symlinks pointing out.
  PYFUNC_ASSIGN_OR_RETURN(std::string norm, NormalizeArtifactPath(path));
  std::string rel;
  std::string dir = root_;
  std::error_code ec;
  std::filesystem::create_directories(root_, ec);
  if (ec) return Status::IOError(root_ + ": cannot create directory: " + ec.message());
  size_t slash;
  size_t start = 0;
  while ((slash = norm.find('/', start)) != std::string::npos) {
    rel = norm.substr(0, slash);
    PYFUNC_ASSIGN_OR_RETURN(dir, Resolve(rel));
    if (!fs->IsDirectory(dir)) {
      Status st = fs->CreateDir(dir);
      if (!st.ok() && !(st.code() == StatusCode::kAlreadyExists && fs->IsDirectory(dir))) return st;
    }
    start = slash + 1;
  }
  PYFUNC_ASSIGN_OR_RETURN(dst, Resolve(norm));
  std::string name = dst.substr(dst.rfind('/') + 1);
  std::string tmp = dst.substr(0, dst.rfind('/') + 1) + ".pyfunc-tmp-" + std::to_string(::getpid()) + "-" +
                    std::to_string(g_tmp_counter.fetch_add(1)) + "-" + name;
  Status st = fs->CopyFile(local_file, tmp);
  if (st.ok()) st = fs->Rename(tmp, dst);
  if (!st.ok()) {
    (void)fs->RemoveAll(tmp);
    return st;
  }
  return Status::OK();
}

Result<std::vector<ArtifactInfo>> LocalArtifactRepository::List(const std::string& path) {
  PYFUNC_ASSIGN_OR_RETURN(std::string norm, NormalizeArtifactPath(path));
  PYFUNC_ASSIGN_OR_RETURN(std::string dir, Resolve(norm));
  FileSystem* fs = FileSystem::Default();
  std::vector<ArtifactInfo> out;
  if (!fs->IsDirectory(dir)) return out;
  PYFUNC_ASSIGN_OR_RETURN(std::vector<std::string> names, fs->ListDir(dir));
  for (const std::string& name : names) {
    if (name.rfind(".pyfunc-tmp-", 0) == 0) continue;
    ArtifactInfo info;
    info.path = JoinArtifactPath(norm, name);
    struct stat st;
    if (::stat((dir + "/" + name).c_str(), &st) != 0) continue;
    info.is_dir = S_ISDIR(st.st_mode);
    info.file_size = info.is_dir ? 0 : static_cast<int64_t>(st.st_size);
    out.push_back(std::move(info));
  }
  return out;
}

Status LocalArtifactRepository::DownloadFile(const std::string& path, const std::string& local_file) {
  PYFUNC_ASSIGN_OR_RETURN(std::string src, Resolve(path));
  return FileSystem::Default()->CopyFile(src, local_file);
}

}  // namespace tracking_internal

// --- artifact operations of a run ----------------------------------------------------------

namespace {

Status CollectFiles(const std::string& local_dir, const std::string& rel,
                    std::vector<std::pair<std::string, std::string>>* out) {
  FileSystem* fs = FileSystem::Default();
  PYFUNC_ASSIGN_OR_RETURN(std::vector<std::string> names, fs->ListDir(local_dir));
  for (const std::string& name : names) {
    std::string full = local_dir + "/" + name;
    std::string r = JoinArtifactPath(rel, name);
    if (fs->IsDirectory(full)) {
      PYFUNC_RETURN_IF_ERROR(CollectFiles(full, r, out));
    } else {
      out->emplace_back(full, r);
    }
  }
  return Status::OK();
}

// Recursively downloads directory `path` of repo into local dir `dst` (which exists).
Status DownloadDir(ArtifactRepository& repo, const std::string& path, const std::string& dst, int depth) {
  if (depth > 64) return Status::InvalidArgument("artifact path '" + path + "': too deeply nested");
  PYFUNC_ASSIGN_OR_RETURN(std::vector<ArtifactInfo> entries, repo.List(path));
  FileSystem* fs = FileSystem::Default();
  for (const ArtifactInfo& e : entries) {
    std::string name = e.path.substr(e.path.rfind('/') + 1);
    PYFUNC_ASSIGN_OR_RETURN(std::string checked, NormalizeArtifactPath(name));
    if (checked != name || name.empty()) {
      return Status::InvalidArgument("artifact listing of '" + path + "': bad entry '" + e.path + "'");
    }
    std::string child = JoinArtifactPath(path, name);
    if (e.is_dir) {
      PYFUNC_RETURN_IF_ERROR(fs->CreateDir(dst + "/" + name));
      PYFUNC_RETURN_IF_ERROR(DownloadDir(repo, child, dst + "/" + name, depth + 1));
    } else {
      PYFUNC_RETURN_IF_ERROR(repo.DownloadFile(child, dst + "/" + name));
    }
  }
  return Status::OK();
}

}  // namespace

Status DownloadTree(ArtifactRepository& repo, const std::string& path, const std::string& dst) {
  return DownloadTreeImpl(repo, path, dst).status();
}

// Returns dst for a directory, dst/<basename> for a single file.
Result<std::string> tracking_internal::DownloadTreeImpl(ArtifactRepository& repo, const std::string& path,
                                                        const std::string& dst) {
  PYFUNC_ASSIGN_OR_RETURN(std::string norm, NormalizeArtifactPath(path));
  FileSystem* fs = FileSystem::Default();
  // Is it a directory (has children), a file (listed in its parent), or nothing?
  PYFUNC_ASSIGN_OR_RETURN(std::vector<ArtifactInfo> children, repo.List(norm));
  bool is_file = false;
  if (children.empty()) {
    if (norm.empty()) return Status::NotFound("artifacts: the artifact root is empty");
    size_t slash = norm.rfind('/');
    std::string parent = slash == std::string::npos ? "" : norm.substr(0, slash);
    PYFUNC_ASSIGN_OR_RETURN(std::vector<ArtifactInfo> siblings, repo.List(parent));
    for (const ArtifactInfo& s : siblings) {
      if (s.path == norm || s.path == norm.substr(slash == std::string::npos ? 0 : slash + 1)) {
        is_file = !s.is_dir;
      }
    }
    if (!is_file) return Status::NotFound("artifact '" + norm + "': no such file or directory");
  }
  std::string parent_dir = std::filesystem::path(dst).parent_path().string();
  std::error_code ec;
  std::filesystem::create_directories(parent_dir, ec);
  if (ec) return Status::IOError(parent_dir + ": cannot create directory: " + ec.message());
  std::string base = std::filesystem::path(dst).filename().string();
  PYFUNC_ASSIGN_OR_RETURN(std::string tmp, fs->MakeTempDir(parent_dir, "." + base + ".partial-"));
  Status st;
  std::string result = dst;
  if (is_file) {
    std::string name = norm.substr(norm.rfind('/') == std::string::npos ? 0 : norm.rfind('/') + 1);
    st = repo.DownloadFile(norm, tmp + "/" + name);
    result = dst + "/" + name;
  } else {
    st = DownloadDir(repo, norm, tmp, 0);
  }
  if (st.ok()) st = fs->Rename(tmp, dst);
  if (!st.ok()) {
    (void)fs->RemoveAll(tmp);
    if (st.code() == StatusCode::kAlreadyExists && fs->Exists(dst)) return result;  // another process won
    return st;
  }
  return result;
}

namespace {

Status NotSupported(const TrackingStore& store, const std::string& what) {
  return Status::InvalidArgument(what + ": the tracking store " + store.uri() +
                                 " does not keep MLflow 3 logged models (use sqlite:///... or an MLflow >= 3 server)");
}

// Uploads local_path (a file, or a directory's contents) under `dest` of repo; every
// destination is checked before anything is written.
Status UploadTree(ArtifactRepository& repo, const std::string& local_path, const std::string& dest,
                  const std::string& what) {
  FileSystem* fs = FileSystem::Default();
  std::vector<std::pair<std::string, std::string>> files;  // local file, artifact path
  if (fs->IsDirectory(local_path)) {
    PYFUNC_RETURN_IF_ERROR(CollectFiles(local_path, dest, &files));
  } else {
    files.emplace_back(local_path, JoinArtifactPath(dest, std::filesystem::path(local_path).filename().string()));
  }
  // Check every destination before writing anything.
  for (const auto& [local, path] : files) PYFUNC_RETURN_IF_ERROR(repo.CheckPath(path));
  size_t done = 0;
  for (const auto& [local, path] : files) {
    Status st = repo.UploadFile(local, path);
    if (!st.ok()) {
      return st.WithContext(what + " (" + std::to_string(done) + " of " + std::to_string(files.size()) +
                            " files uploaded before the failure)");
    }
    ++done;
  }
  return Status::OK();
}

}  // namespace

Result<LoggedModel> TrackingStore::CreateLoggedModel(const CreateLoggedModelRequest&) {
  return NotSupported(*this, "create logged model");
}
Status TrackingStore::FinalizeLoggedModel(const std::string&, LoggedModelStatus) {
  return NotSupported(*this, "finalize logged model");
}
Status TrackingStore::LogOutputs(const std::string&, const std::vector<std::string>&, int64_t) {
  return NotSupported(*this, "log run outputs");
}
Status TrackingStore::LogInputs(const std::string&, const std::vector<DatasetInput>&, const std::vector<std::string>&) {
  return NotSupported(*this, "log run inputs");
}

Status TrackingStore::LogArtifacts(const std::string& run_id, const std::string& local_path,
                                   const std::string& artifact_path) {
  PYFUNC_ASSIGN_OR_RETURN(std::string dest, NormalizeArtifactPath(artifact_path));
  if (!FileSystem::Default()->Exists(local_path)) {
    return Status::NotFound("log artifact: " + local_path + ": no such file or directory");
  }
  PYFUNC_ASSIGN_OR_RETURN(Run run, GetRun(run_id));
  PYFUNC_ASSIGN_OR_RETURN(std::unique_ptr<ArtifactRepository> repo, OpenArtifacts(run.info.artifact_uri));
  return UploadTree(*repo, local_path, dest, "log artifacts to run " + run_id);
}

Status TrackingStore::LogLoggedModelArtifacts(const std::string& model_id, const std::string& local_dir) {
  if (!FileSystem::Default()->IsDirectory(local_dir)) {
    return Status::NotFound("log model artifacts: " + local_dir + ": no such directory");
  }
  PYFUNC_ASSIGN_OR_RETURN(LoggedModel model, GetLoggedModel(model_id));
  PYFUNC_ASSIGN_OR_RETURN(std::unique_ptr<ArtifactRepository> repo, OpenArtifacts(model.artifact_location));
  return UploadTree(*repo, local_dir, "", "log artifacts to logged model " + model_id);
}

Result<std::vector<ArtifactInfo>> TrackingStore::ListArtifacts(const std::string& run_id, const std::string& path) {
  PYFUNC_ASSIGN_OR_RETURN(std::string norm, NormalizeArtifactPath(path));
  PYFUNC_ASSIGN_OR_RETURN(Run run, GetRun(run_id));
  PYFUNC_ASSIGN_OR_RETURN(std::unique_ptr<ArtifactRepository> repo, OpenArtifacts(run.info.artifact_uri));
  return repo->List(norm);
}

Result<std::string> TrackingStore::DownloadArtifacts(const std::string& run_id, const std::string& path,
                                                     const std::string& dst_dir) {
  PYFUNC_ASSIGN_OR_RETURN(std::string norm, NormalizeArtifactPath(path));
  PYFUNC_ASSIGN_OR_RETURN(Run run, GetRun(run_id));
  PYFUNC_ASSIGN_OR_RETURN(std::unique_ptr<ArtifactRepository> repo, OpenArtifacts(run.info.artifact_uri));
  std::string base =
      norm.empty() ? "artifacts" : norm.substr(norm.rfind('/') == std::string::npos ? 0 : norm.rfind('/') + 1);
  std::string dst = std::filesystem::absolute(dst_dir).lexically_normal().string() + "/" + base;
  PYFUNC_ASSIGN_OR_RETURN(std::string out, DownloadTreeImpl(*repo, norm, dst));
  // A single file lands as dst_dir/<name>, not dst_dir/<name>/<name>.
  if (out != dst) {
    FileSystem* fs = FileSystem::Default();
    std::string tmp = dst + ".pyfunc-tmp-move";
    PYFUNC_RETURN_IF_ERROR(fs->Rename(dst, tmp));
    PYFUNC_RETURN_IF_ERROR(fs->Rename(tmp + "/" + base, dst));
    (void)fs->RemoveAll(tmp);
  }
  return dst;
}

}  // namespace pyfunc
