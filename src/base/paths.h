// Where pyfunc keeps what it can rebuild: built environments, downloaded models, the
// worker's files.
#ifndef PYFUNC_SRC_BASE_PATHS_H_
#define PYFUNC_SRC_BASE_PATHS_H_

#include <string>

namespace pyfunc::base {

// $XDG_CACHE_HOME/pyfunc, else ~/.cache/pyfunc, else <temp dir>/pyfunc-cache (no
// HOME). Not created here.
std::string CacheRoot();

}  // namespace pyfunc::base

#endif  // PYFUNC_SRC_BASE_PATHS_H_
