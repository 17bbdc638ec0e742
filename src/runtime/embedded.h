// The worker's Python files, compiled into libpyfunc so that a C++ program needs no
// Python package of pyfunc installed to run models out of process. They are written to
// a content-addressed directory of the cache on first use (WorkerScriptDir).
#ifndef PYFUNC_SRC_RUNTIME_EMBEDDED_H_
#define PYFUNC_SRC_RUNTIME_EMBEDDED_H_

#include <string>
#include <vector>

#include "pyfunc/status.h"

namespace pyfunc::runtime {

struct EmbeddedFile {
  const char* name;
  std::string content;
};

// _worker.py, _columns.py, _loading.py, _schema.py and the built-in loaders (generated at
// build time).
const std::vector<EmbeddedFile>& EmbeddedWorkerFiles();

// A directory holding the embedded files: $PYFUNC_WORKER_DIR when set (for developing
// the worker), else <cache>/pyfunc/worker-<content hash>, written once, atomically.
Result<std::string> WorkerScriptDir();

}  // namespace pyfunc::runtime

#endif  // PYFUNC_SRC_RUNTIME_EMBEDDED_H_
