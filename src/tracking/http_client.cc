#include "tracking/http_client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace pyfunc::tracking_internal {
namespace {

std::once_flag g_curl_once;

double EnvDouble(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  double d = std::strtod(v, &end);
  return end == v || d < 0 ? fallback : d;
}

size_t WriteToString(char* ptr, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(ptr, size * n);
  return size * n;
}

size_t WriteToFile(char* ptr, size_t size, size_t n, void* user) {
  return std::fwrite(ptr, size, n, static_cast<FILE*>(user)) * size;
}

bool Retryable(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: return true;
    default: return false;
  }
}

}  // namespace

HttpClient::HttpClient(std::string base) : base_(std::move(base)) {
  while (!base_.empty() && base_.back() == '/') base_.pop_back();
  std::call_once(g_curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  max_retries_ = static_cast<int>(EnvDouble("PYFUNC_HTTP_MAX_RETRIES", 4));
  backoff_ = EnvDouble("PYFUNC_HTTP_BACKOFF", 0.25);
  timeout_ = static_cast<long>(EnvDouble("PYFUNC_HTTP_TIMEOUT", 120));
}

Result<HttpResponse> HttpClient::Request(const std::string& method, const std::string& path, const std::string& body,
                                         const std::string& content_type) {
  return Perform(method, path, BodyKind::kString, body, content_type, "");
}

Result<HttpResponse> HttpClient::UploadFile(const std::string& path, const std::string& local_file) {
  return Perform("PUT", path, BodyKind::kUploadFile, "", "application/octet-stream", local_file);
}

Result<HttpResponse> HttpClient::DownloadToFile(const std::string& path, const std::string& local_file) {
  return Perform("GET", path, BodyKind::kDownloadFile, "", "", local_file);
}

Result<HttpResponse> HttpClient::Perform(const std::string& method, const std::string& path, BodyKind kind,
                                         const std::string& body, const std::string& content_type,
                                         const std::string& local_file) {
  const std::string url = base_ + path;
  std::string last_error;
  double delay = backoff_;
  const int attempts = max_retries_ + 1;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return Status::Internal(url + ": curl_easy_init failed");
    HttpResponse response;
    std::string download_tmp;
    FILE* in = nullptr;
    FILE* out = nullptr;
    struct curl_slist* headers = nullptr;
    char errbuf[CURL_ERROR_SIZE] = {0};

    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "pyfunc");
    if (const char* v = std::getenv("MLFLOW_TRACKING_INSECURE_TLS"); v != nullptr && std::string(v) == "true") {
      curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    std::string auth;
    if (const char* token = std::getenv("MLFLOW_TRACKING_TOKEN"); token != nullptr && *token != '\0') {
      auth = std::string("Authorization: Bearer ") + token;
      headers = curl_slist_append(headers, auth.c_str());
    } else if (const char* user = std::getenv("MLFLOW_TRACKING_USERNAME"); user != nullptr && *user != '\0') {
      const char* pass = std::getenv("MLFLOW_TRACKING_PASSWORD");
      curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
      curl_easy_setopt(curl, CURLOPT_USERNAME, user);
      curl_easy_setopt(curl, CURLOPT_PASSWORD, pass != nullptr ? pass : "");
    }
    std::string ct = "Content-Type: " + content_type;
    if (!content_type.empty()) headers = curl_slist_append(headers, ct.c_str());

    if (kind == BodyKind::kUploadFile) {
      in = std::fopen(local_file.c_str(), "rb");
      if (in == nullptr) {
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        return Status::NotFound(local_file + ": cannot open for upload");
      }
      std::fseek(in, 0, SEEK_END);
      long size = std::ftell(in);
      std::fseek(in, 0, SEEK_SET);
      curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(curl, CURLOPT_READDATA, in);
      curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
      headers = curl_slist_append(headers, "Expect:");
    } else if (method == "GET") {
      curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
      if (method != "DELETE" || !body.empty()) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
      }
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (kind == BodyKind::kDownloadFile) {
      download_tmp = local_file + ".pyfunc-tmp-dl";
      out = std::fopen(download_tmp.c_str(), "wb");
      if (out == nullptr) {
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        return Status::IOError(download_tmp + ": cannot create");
      }
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WriteToFile);
      curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
    } else {
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WriteToString);
      curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
    }

    CURLcode code = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (in != nullptr) std::fclose(in);
    bool write_failed = false;
    if (out != nullptr) write_failed = std::fclose(out) != 0;

    bool retry = false;
    if (code != CURLE_OK) {
      last_error = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code);
      retry = Retryable(code);
      if (!retry) {
        if (!download_tmp.empty()) ::unlink(download_tmp.c_str());
        return Status::IOError(method + " " + url + ": " + last_error);
      }
    } else if (response.status == 429 || (response.status >= 500 && response.status != 501)) {
      retry = true;
      last_error = "HTTP " + std::to_string(response.status);
    }
    if (!retry) {
      if (!download_tmp.empty()) {
        if (response.status == 200 && !write_failed) {
          if (std::rename(download_tmp.c_str(), local_file.c_str()) != 0) {
            ::unlink(download_tmp.c_str());
            return Status::IOError(local_file + ": cannot rename the download into place");
          }
        } else {
          ::unlink(download_tmp.c_str());
          if (write_failed) return Status::IOError(local_file + ": write failed");
        }
      }
      return response;
    }
    if (!download_tmp.empty()) ::unlink(download_tmp.c_str());
    if (attempt < attempts) {
      std::this_thread::sleep_for(std::chrono::duration<double>(delay));
      delay *= 2;
    }
  }
  return Status::IOError(method + " " + url + ": " + last_error + " (gave up after " + std::to_string(attempts) +
                         " attempt" + (attempts == 1 ? "" : "s") + "; is the tracking server running?)");
}

}  // namespace pyfunc::tracking_internal
