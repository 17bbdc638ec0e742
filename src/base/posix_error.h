// errno as a Status: the one place that maps OS errors to codes and messages.
#ifndef PYFUNC_SRC_BASE_POSIX_ERROR_H_
#define PYFUNC_SRC_BASE_POSIX_ERROR_H_

#include <cerrno>
#include <string>

#include "pyfunc/status.h"

namespace pyfunc::base {

// "<context>: <strerror(err)>", as NotFound for ENOENT/ENOTDIR, AlreadyExists for
// EEXIST/ENOTEMPTY and IOError for anything else.
Status PosixError(const std::string& context, int err = errno);

}  // namespace pyfunc::base

#endif  // PYFUNC_SRC_BASE_POSIX_ERROR_H_
