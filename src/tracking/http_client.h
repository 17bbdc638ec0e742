// HttpClient: the HTTP calls of the REST store, on libcurl, with retries.
//
// Connection errors, timeouts, 429 and 5xx answers are retried with exponential backoff
// (PYFUNC_HTTP_MAX_RETRIES retries, default 4; first delay PYFUNC_HTTP_BACKOFF seconds,
// default 0.25, doubling); then the call fails with IOError naming the URL, the attempts
// and the last error. PYFUNC_HTTP_TIMEOUT (seconds, default 120) bounds each attempt.
// Credentials come from MLFLOW_TRACKING_TOKEN (bearer) or MLFLOW_TRACKING_USERNAME and
// MLFLOW_TRACKING_PASSWORD (basic); MLFLOW_TRACKING_INSECURE_TLS=true skips TLS checks.
#ifndef PYFUNC_SRC_TRACKING_HTTP_CLIENT_H_
#define PYFUNC_SRC_TRACKING_HTTP_CLIENT_H_

#include <string>
#include <vector>

#include "pyfunc/status.h"

namespace pyfunc::tracking_internal {

struct HttpResponse {
  long status = 0;
  std::string body;
};

class HttpClient {
 public:
  // base: "http(s)://host[:port][/prefix]" without a trailing slash.
  explicit HttpClient(std::string base);
  const std::string& base() const { return base_; }

  // `path` starts with '/' and is appended to base (with its query string, encoded by
  // the caller). A body is sent when non-empty or when method is POST/PUT/PATCH.
  // Returns the final response of any status (after retries); IOError only when no
  // usable response came.
  Result<HttpResponse> Request(const std::string& method, const std::string& path, const std::string& body = "",
                               const std::string& content_type = "application/json");
  // PUT the contents of a local file.
  Result<HttpResponse> UploadFile(const std::string& path, const std::string& local_file);
  // GET into a local file (written only on a 200 answer).
  Result<HttpResponse> DownloadToFile(const std::string& path, const std::string& local_file);

 private:
  enum class BodyKind { kString, kUploadFile, kDownloadFile };
  Result<HttpResponse> Perform(const std::string& method, const std::string& path, BodyKind kind,
                               const std::string& body, const std::string& content_type, const std::string& local_file);

  std::string base_;
  int max_retries_ = 4;
  double backoff_ = 0.25;
  long timeout_ = 120;
};

}  // namespace pyfunc::tracking_internal

#endif  // PYFUNC_SRC_TRACKING_HTTP_CLIENT_H_
