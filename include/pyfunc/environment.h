// Environments: the Python interpreter a model's worker runs in.
//
// Managers (MLflow's names):
//   local       the Python pyfunc is installed in: $PYFUNC_PYTHON, else the `python`
//               beside this executable when it lives in a virtual environment's bin/
//               (`.venv/bin/pyfunc`, activated or not), else `python3` on PATH (from
//               Python, the calling interpreter unless $PYFUNC_PYTHON is set).
//   virtualenv  a virtual environment built from the model's python_env.yaml, else the
//               pip part of its conda.yaml, else its requirements.txt; created with `uv`
//               when it is on PATH, else `python -m venv` + pip. `uv` is accepted as a
//               manager name and means the same.
//   conda       `conda env create` from conda.yaml, with conda, mamba or micromamba.
//
// Built environments are cached under the environment root ($PYFUNC_ENV_ROOT, else
// $XDG_CACHE_HOME/pyfunc/envs, else ~/.cache/pyfunc/envs), one directory per hash of
// what defines them (interpreter version, build dependencies, requirement lines with
// `-r`/`-c` files expanded), and reused by every later run. A file lock makes two
// processes that build the same environment at once build it once; an environment
// whose build failed or was interrupted is removed and rebuilt.
#ifndef PYFUNC_ENVIRONMENT_H_
#define PYFUNC_ENVIRONMENT_H_

#include <string>
#include <string_view>
#include <vector>

#include "pyfunc/model_spec.h"
#include "pyfunc/status.h"

namespace pyfunc {

enum class EnvManager { kLocal, kVirtualenv, kConda };

// "local", "virtualenv" (or "uv"), "conda"; InvalidArgument naming the choices otherwise.
Result<EnvManager> ParseEnvManager(std::string_view name);
const char* EnvManagerName(EnvManager manager);

struct EnvironmentOptions {
  EnvManager manager = EnvManager::kLocal;
  // The local interpreter, and the base interpreter of virtualenvs when the model's
  // Python version is not found. Empty: the default local interpreter (see above).
  std::string python;
  // Where environments are cached. Empty: see the header comment.
  std::string env_root;
  // Progress and the tail of a failed build's log go to stderr unless quiet.
  bool quiet = false;
};

struct PythonEnvironment {
  std::string python;            // interpreter that runs the worker
  std::vector<std::string> env;  // the whole process environment for it ("NAME=value")
  std::string root;              // the environment's directory; empty for local
  std::string description;       // e.g. "virtualenv .../pyfunc-3f2a... (Python 3.11.7)"
  bool created = false;          // built by this call rather than reused
};

// Returns the environment of the model in `model_dir`, building it if needed.
// NotFound when an interpreter or conda is missing; InvalidArgument for a malformed
// python_env.yaml / conda.yaml; Internal (with the build log's tail) when the build fails.
Result<PythonEnvironment> PrepareEnvironment(const std::string& model_dir, const ModelSpec& spec,
                                             const EnvironmentOptions& options);

// The interpreter `python` names (or the default local one), as an absolute path.
Result<std::string> ResolveLocalPython(const std::string& python);

}  // namespace pyfunc

#endif  // PYFUNC_ENVIRONMENT_H_
