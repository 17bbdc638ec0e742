// Private pieces shared by the tracking stores (src/tracking only).
#ifndef PYFUNC_SRC_TRACKING_TRACKING_INTERNAL_H_
#define PYFUNC_SRC_TRACKING_TRACKING_INTERNAL_H_

#include <memory>
#include <string>
#include <vector>

#include "pyfunc/model_spec.h"
#include "pyfunc/tracking.h"
#include "pyfunc/value.h"  // PythonFloatRepr

namespace pyfunc::tracking_internal {

// A local directory of artifacts. Every path is checked to stay inside the root, also
// through symlinks; uploads go to a temporary sibling renamed into place.
class LocalArtifactRepository final : public ArtifactRepository {
 public:
  explicit LocalArtifactRepository(std::string root);
  std::string LocalRoot() const override { return root_; }
  Status UploadFile(const std::string& local_file, const std::string& path) override;
  Result<std::vector<ArtifactInfo>> List(const std::string& path) override;
  Status DownloadFile(const std::string& path, const std::string& local_file) override;
  Status CheckPath(const std::string& path) override;

  // The absolute local path of artifact `path`, checked to stay inside the root (the
  // parts that exist are resolved through symlinks).
  Result<std::string> Resolve(const std::string& path) const;

 private:
  std::string root_;
};

class HttpClient;

// Artifacts behind an MLflow server's artifact proxy: `base` is the part after
// `mlflow-artifacts:/` (e.g. "1/<run_id>/artifacts").
std::unique_ptr<ArtifactRepository> NewProxyArtifactRepository(std::shared_ptr<HttpClient> http, std::string base);

std::unique_ptr<TrackingStore> NewFileStore(std::string root, std::string uri);
Result<std::unique_ptr<TrackingStore>> NewRestStore(const std::string& uri);
Result<std::unique_ptr<TrackingStore>> NewSqliteStore(const std::string& db_path, std::string uri);

// DownloadTree that returns dst for a directory and dst/<basename> for a single file.
Result<std::string> DownloadTreeImpl(ArtifactRepository& repo, const std::string& path, const std::string& dst);

// "file:///a/b" or "/a/b" or "a/b" -> absolute local path; empty for other schemes.
std::string LocalPathOfUri(const std::string& uri);
// "scheme" of "scheme:..." (letters, digits, +.-), or "" for a plain path.
std::string UriScheme(const std::string& uri);
// Checks a param/metric/tag key as MLflow does (no "..", not absolute, sane characters).
Status ValidateKey(const std::string& key, const char* what);
// A run id may only hold [0-9A-Za-z_-]: NotFound otherwise (it names a directory).
Status ValidateRunId(const std::string& run_id);
std::string NewRunName();
std::string JoinArtifactPath(const std::string& a, const std::string& b);
// Percent-encodes each segment of a '/'-separated path (or a query value when
// `keep_slash` is false).
std::string UrlEncode(const std::string& s, bool keep_slash);

}  // namespace pyfunc::tracking_internal

#endif  // PYFUNC_SRC_TRACKING_TRACKING_INTERNAL_H_
