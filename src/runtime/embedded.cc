#include "runtime/embedded.h"

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "base/hash.h"
#include "base/paths.h"
#include "pyfunc/file_system.h"

namespace pyfunc::runtime {

Result<std::string> WorkerScriptDir() {
  if (const char* dev = std::getenv("PYFUNC_WORKER_DIR"); dev != nullptr && *dev) return std::string(dev);
  static std::mutex mu;
  static std::string cached;
  std::lock_guard<std::mutex> lock(mu);
  if (!cached.empty()) return cached;

  base::Sha256 hash;
  for (const EmbeddedFile& f : EmbeddedWorkerFiles()) {
    hash.Update(std::string_view(f.name, std::char_traits<char>::length(f.name) + 1));  // with its NUL
    hash.Update(f.content);
  }
  const std::string hex = hash.HexDigest().substr(0, 16);

  const std::string base = base::CacheRoot();
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
