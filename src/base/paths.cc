#include "base/paths.h"

#include <cstdlib>
#include <filesystem>

namespace pyfunc::base {

std::string CacheRoot() {
  if (const char* c = std::getenv("XDG_CACHE_HOME"); c != nullptr && *c != '\0') return std::string(c) + "/pyfunc";
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/.cache/pyfunc";
  }
  std::error_code ec;
  std::filesystem::path tmp = std::filesystem::temp_directory_path(ec);
  return (ec ? std::string("/tmp") : tmp.string()) + "/pyfunc-cache";
}

}  // namespace pyfunc::base
