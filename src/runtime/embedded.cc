#include "runtime/embedded.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "pyfunc/file_system.h"

namespace pyfunc::runtime {

Result<std::string> WorkerScriptDir() {
  if (const char* dev = std::getenv("PYFUNC_WORKER_DIR"); dev != nullptr && *dev) return std::string(dev);
  static std::mutex mu;
  static std::string cached;
  std::lock_guard<std::mutex> lock(mu);
  if (!cached.empty()) return cached;

  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (const EmbeddedFile& f : EmbeddedWorkerFiles()) {
    EVP_DigestUpdate(ctx, f.name, std::char_traits<char>::length(f.name) + 1);
    EVP_DigestUpdate(ctx, f.content.data(), f.content.size());
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  char hex[17];
  for (int i = 0; i < 8; ++i) std::snprintf(hex + 2 * i, 3, "%02x", digest[i]);

  std::string base;
  if (const char* c = std::getenv("XDG_CACHE_HOME"); c != nullptr && *c) {
    base = std::string(c) + "/pyfunc";
  } else if (const char* home = std::getenv("HOME"); home != nullptr && *home) {
    base = std::string(home) + "/.cache/pyfunc";
  } else {
    base = "/tmp/pyfunc-cache";
  }
  std::error_code ec;
  std::filesystem::create_directories(base, ec);
  if (ec) return Status::IOError(base + ": cannot create the cache directory: " + ec.message());
  const std::string dir = base + "/worker-" + hex;
  FileSystem* fs = FileSystem::Default();
  if (!fs->Exists(dir + "/_worker.py")) {
    PYFUNC_ASSIGN_OR_RETURN(std::string tmp, fs->MakeTempDir(base, ".worker-"));
    for (const EmbeddedFile& f : EmbeddedWorkerFiles()) {
      Status st = fs->WriteFile(tmp + "/" + f.name, f.content);
      if (!st.ok()) {
        (void)fs->RemoveAll(tmp);
        return st;
      }
    }
    // Another process may have won the race: its directory has the same content.
    if (!fs->Rename(tmp, dir).ok()) (void)fs->RemoveAll(tmp);
  }
  cached = dir;
  return cached;
}

}  // namespace pyfunc::runtime
