// ResolveModelUri: plain paths, file://, runs:/, models:/ and mlflow-artifacts: URIs.
#include "pyfunc/model_uri.h"

#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>

#include "base/ids.h"
#include "base/paths.h"
#include "pyfunc/file_system.h"
#include "pyfunc/tracking.h"
#include "tracking/tracking_internal.h"

namespace pyfunc {

using namespace tracking_internal;

namespace {

std::string DefaultCacheDir() {
  if (const char* v = std::getenv("PYFUNC_CACHE_DIR"); v != nullptr && *v != '\0') return v;
  return base::CacheRoot() + "/models";
}

// FNV-1a, as a stable cache key.
std::string HashHex(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

class Resolver {
 public:
  Resolver(TrackingStore& store, std::string cache_dir) : store_(store), cache_dir_(std::move(cache_dir)) {}

  // The local path of `sub` below artifact URI `artifact_uri`. Remote artifacts are
  // downloaded once into a directory keyed by their URI when `immutable` (logged models,
  // registered versions); a run's artifacts can change, so they are downloaded afresh.
  Result<std::string> Materialize(const std::string& artifact_uri, const std::string& sub, const std::string& what,
                                  bool immutable = true) {
    PYFUNC_ASSIGN_OR_RETURN(std::string norm, NormalizeArtifactPath(sub));
    PYFUNC_ASSIGN_OR_RETURN(std::unique_ptr<ArtifactRepository> repo, store_.OpenArtifacts(artifact_uri));
    if (auto* local = dynamic_cast<LocalArtifactRepository*>(repo.get())) {
      PYFUNC_ASSIGN_OR_RETURN(std::string path, local->Resolve(norm));
      if (!FileSystem::Default()->Exists(path)) {
        return Status::NotFound(what + ": no artifact '" + norm + "' (looked in " + path + ")");
      }
      return path;
    }
    std::string dst = cache_dir_ + "/" + HashHex(store_.uri() + "|" + artifact_uri + "|" + norm);
    FileSystem* fs = FileSystem::Default();
    if (!immutable) dst += "-" + base::NewUuidHex().substr(0, 12);
    if (fs->IsDirectory(dst)) {
      auto names = fs->ListDir(dst);
      if (names.ok() && names->size() == 1 && !norm.empty() && (*names)[0] == BaseName(norm) &&
          !fs->IsDirectory(dst + "/" + (*names)[0])) {
        return dst + "/" + (*names)[0];
      }
      return dst;
    }
    auto out = DownloadTreeImpl(*repo, norm, dst);
    if (!out.ok() && out.status().code() == StatusCode::kNotFound) {
      return Status::NotFound(what + ": no artifact '" + norm + "' in " + artifact_uri);
    }
    return out;
  }

  Result<std::string> Resolve(const std::string& uri, int depth) {
    if (depth > 4) return Status::InvalidArgument(uri + ": model URIs refer to each other too deeply");
    std::string scheme = UriScheme(uri);
    if (scheme == "runs") return ResolveRuns(uri, depth);
    if (scheme == "models") return ResolveModels(uri, depth);
    if (scheme == "mlflow-artifacts") return Materialize(uri, "", uri, /*immutable=*/false);
    std::string path = LocalPathOfUri(uri);
    if (path.empty()) {
      return Status::InvalidArgument(uri + ": unsupported model URI scheme '" + scheme +
                                     ":' (use a path, file://, runs:/, models:/ or mlflow-artifacts:/)");
    }
    if (!FileSystem::Default()->Exists(path)) return Status::NotFound(uri + ": no such model directory");
    return path;
  }

 private:
  Result<std::string> ResolveRuns(const std::string& uri, int depth) {
    std::string rest = uri.substr(std::strlen("runs:"));
    while (!rest.empty() && rest[0] == '/') rest.erase(0, 1);
    size_t slash = rest.find('/');
    std::string run_id = rest.substr(0, slash);
    std::string sub = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (run_id.empty()) return Status::InvalidArgument(uri + ": expected runs:/<run_id>/<path>");
    PYFUNC_ASSIGN_OR_RETURN(std::string norm, NormalizeArtifactPath(sub));
    auto run = store_.GetRun(run_id);
    if (!run.ok()) return run.status().WithContext(uri);
    auto found = Materialize(run->info.artifact_uri, norm, uri, /*immutable=*/false);
    if (found.ok() || found.status().code() != StatusCode::kNotFound || norm.empty()) return found;
    // MLflow 3: the model's files live with a logged model named after the first segment.
    size_t s = norm.find('/');
    std::string name = norm.substr(0, s);
    std::string model_sub = s == std::string::npos ? "" : norm.substr(s + 1);
    auto models = store_.SearchLoggedModels(run->info.experiment_id, name, run_id);
    if (!models.ok() || models->empty()) {
      return Status::NotFound(uri + ": run " + run_id + " has no artifact '" + norm + "' and no logged model named '" +
                              name + "'");
    }
    return Materialize((*models)[0].artifact_location, model_sub, uri);
  }

  Result<std::string> ResolveModels(const std::string& uri, int depth) {
    std::string rest = uri.substr(std::strlen("models:"));
    while (!rest.empty() && rest[0] == '/') rest.erase(0, 1);
    if (rest.empty())
      return Status::InvalidArgument(
          uri + ": expected models:/<name>/<version>, models:/<name>@<alias> or models:/<model_id>");
    size_t slash = rest.find('/');
    std::string first = rest.substr(0, slash);
    std::string after = slash == std::string::npos ? "" : rest.substr(slash + 1);
    std::string source;
    std::string sub;
    size_t at = first.find('@');
    if (at != std::string::npos) {
      std::string name = first.substr(0, at), alias = first.substr(at + 1);
      if (name.empty() || alias.empty()) return Status::InvalidArgument(uri + ": expected models:/<name>@<alias>");
      auto version = store_.GetModelVersionByAlias(name, alias);
      if (!version.ok()) return version.status().WithContext(uri);
      auto src = store_.GetModelVersionDownloadUri(name, *version);
      if (!src.ok()) return src.status().WithContext(uri);
      source = *src;
      sub = after;
    } else if (after.empty()) {
      auto model = store_.GetLoggedModel(first);
      if (!model.ok()) return model.status().WithContext(uri);
      return Materialize(model->artifact_location, "", uri);
    } else {
      size_t s2 = after.find('/');
      std::string version = after.substr(0, s2);
      sub = s2 == std::string::npos ? "" : after.substr(s2 + 1);
      bool digits = !version.empty() && version.find_first_not_of("0123456789") == std::string::npos;
      std::string lower = version;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!digits && lower != "latest") {
        return Status::InvalidArgument(uri + ": '" + version +
                                       "' is a stage; stages are deprecated in MLflow, use a version number, "
                                       "'latest' or an alias (models:/<name>@<alias>)");
      }
      auto src = store_.GetModelVersionDownloadUri(first, digits ? version : "latest");
      if (!src.ok()) return src.status().WithContext(uri);
      source = *src;
    }
    std::string sscheme = UriScheme(source);
    if (sscheme == "models" || sscheme == "runs") {
      PYFUNC_ASSIGN_OR_RETURN(std::string base, Resolve(source, depth + 1));
      if (sub.empty()) return base;
      PYFUNC_ASSIGN_OR_RETURN(std::string norm, NormalizeArtifactPath(sub));
      LocalArtifactRepository local(base);
      PYFUNC_ASSIGN_OR_RETURN(std::string p, local.Resolve(norm));
      if (!FileSystem::Default()->Exists(p)) return Status::NotFound(uri + ": no artifact '" + norm + "'");
      return p;
    }
    return Materialize(source, sub, uri);
  }

  TrackingStore& store_;
  std::string cache_dir_;
};

}  // namespace

bool IsTrackingModelUri(const std::string& uri) {
  std::string scheme = UriScheme(uri);
  return scheme == "runs" || scheme == "models" || scheme == "mlflow-artifacts";
}

Result<std::string> ResolveModelUri(const std::string& uri, const ResolveModelUriOptions& options) {
  if (uri.empty()) return Status::InvalidArgument("model URI: must not be empty");
  if (!IsTrackingModelUri(uri)) {
    std::string path = LocalPathOfUri(uri);
    if (path.empty()) {
      return Status::InvalidArgument(uri + ": unsupported model URI scheme '" + UriScheme(uri) +
                                     ":' (use a path, file://, runs:/, models:/ or mlflow-artifacts:/)");
    }
    if (!FileSystem::Default()->Exists(path)) return Status::NotFound(uri + ": no such model directory");
    return path;
  }
  std::string tracking_uri = options.tracking_uri.empty() ? GetTrackingUri() : options.tracking_uri;
  PYFUNC_ASSIGN_OR_RETURN(std::unique_ptr<TrackingStore> store, OpenTrackingStore(tracking_uri));
  Resolver resolver(*store, options.cache_dir.empty() ? DefaultCacheDir() : options.cache_dir);
  Result<std::string> out = resolver.Resolve(uri, 0);
  // The default store is ./mlflow.db (MLflow's default since 3.7); runs logged before to a
  // ./mlruns file store are not in it. Say so when that is the likely reason.
  std::string cwd = std::filesystem::current_path().string();
  if (!out.ok() && out.status().code() == StatusCode::kNotFound && tracking_uri == "sqlite:///" + cwd + "/mlflow.db" &&
      FileSystem::Default()->Exists(cwd + "/mlruns/0/meta.yaml")) {
    return Status::NotFound(out.status().message() +
                            " (./mlruns holds a file store too; to read it, set "
                            "MLFLOW_TRACKING_URI=file://" +
                            cwd + "/mlruns)");
  }
  return out;
}

}  // namespace pyfunc
