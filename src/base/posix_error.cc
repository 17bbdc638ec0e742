#include "base/posix_error.h"

#include <cstring>

namespace pyfunc::base {

Status PosixError(const std::string& context, int err) {
  std::string msg = context + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
    case ENOTDIR: return Status::NotFound(std::move(msg));
    case EEXIST:
    case ENOTEMPTY: return Status::AlreadyExists(std::move(msg));
    default: return Status::IOError(std::move(msg));
  }
}

}  // namespace pyfunc::base
