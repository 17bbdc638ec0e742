// Model directories: the seed's save_model / add_to_model, validation, and the
// standalone loader source of get_module_loader_src.
//
// A saved model directory looks like MLflow's:
//   MLmodel            the ModelSpec, with a python_function flavor
//   data/<name>        a copy of data_path (file or directory), if given
//   code/<name>...     copies of code_paths, if given
//   conda.yaml         the conda environment (the given file, or a default one)
//   python_env.yaml    derived from it, for virtualenv-based environment managers
//   requirements.txt   the pip requirements of the environment
#ifndef PYFUNC_MODEL_DIR_H_
#define PYFUNC_MODEL_DIR_H_

#include <optional>
#include <string>
#include <vector>

#include "pyfunc/file_system.h"
#include "pyfunc/model_spec.h"
#include "pyfunc/status.h"
#include "pyfunc/value.h"

namespace pyfunc {

inline constexpr const char* kCondaFileName = "conda.yaml";
inline constexpr const char* kPythonEnvFileName = "python_env.yaml";
inline constexpr const char* kRequirementsFileName = "requirements.txt";
inline constexpr const char* kCodeDirName = "code";
inline constexpr const char* kDataDirName = "data";

struct SaveModelOptions {
  // The module whose `_load_pyfunc(data_path)` loads the model. Required.
  std::string loader_module;
  // A file or directory copied to data/<basename>; the flavor's `data` points at it.
  std::optional<std::string> data_path;
  // Files or directories copied to code/<basename> (`__pycache__` and *.pyc skipped);
  // the flavor's `code` is then "code". Base names must be distinct.
  std::vector<std::string> code_paths;
  // The conda environment: a YAML file path, or the environment as a Value (a mapping).
  // When neither is given a default environment is written: the interpreter version
  // below plus `pip_requirements`.
  std::optional<std::string> conda_env_path;
  Value conda_env;
  std::vector<std::string> pip_requirements;
  // The writing interpreter's version ("3.11.7"): the flavor's `python_version` and the
  // fallback Python of python_env.yaml. Empty: not recorded.
  std::string python_version;
  // Build dependencies recorded in python_env.yaml ("pip==24.0", ...).
  std::vector<std::string> build_dependencies = {"pip", "setuptools", "wheel"};
  // Extra keys for the python_function flavor (add_to_model's **kwargs).
  Value::Map extra_flavor_keys;
  // Where files are written; FileSystem::Default() when null.
  FileSystem* file_system = nullptr;
};

// Saves a pyfunc model to `dst_path` and returns its ModelSpec (`model` plus the
// python_function flavor). The directory is built in a temporary sibling and renamed
// into place, so on any failure nothing is left at `dst_path`.
// AlreadyExists if `dst_path` exists and is not an empty directory; NotFound if an
// input path does not exist; InvalidArgument for bad options or a bad conda file.
Result<ModelSpec> SaveModel(const std::string& dst_path, const SaveModelOptions& options,
                            ModelSpec model = ModelSpec::New());

// Adds the python_function flavor to `model` (the seed's add_to_model): `loader_module`,
// then `code`, `data` and `env` only when non-empty. `env` is a conda file path
// (MLflow < 2.0 form) or a mapping {conda, virtualenv}; pass a null Value for none.
// `python_version`, when non-empty, is recorded as MLflow >= 0.5 does.
Status AddToModel(ModelSpec& model, const std::string& loader_module, const std::string& data = "",
                  const std::string& code = "", const Value& env = Value(), const std::string& python_version = "",
                  const Value::Map& extra = {});

// One problem found by ValidateModel.
struct ValidationProblem {
  std::string where;    // the field or file, e.g. "flavors.python_function.data"
  std::string message;  // what is wrong
};

// Checks a model directory: the MLmodel file parses, the python_function flavor is
// complete, every path it references exists inside the directory, and no symbolic link
// in it resolves outside it. Returns every
// problem found (empty when the model is valid). NotFound if `path` does not exist.
Result<std::vector<ValidationProblem>> ValidateModel(const std::string& path);

// Checks that every symbolic link under the model directory `path` (or the directory of
// the MLmodel file `path`) resolves inside that directory. A model is loaded, served and
// scored only when it passes, so that a link cannot make pyfunc read files elsewhere
// (MLflow follows such links). InvalidArgument "<link>: symbolic link resolves outside
// the model directory, to <target>" naming the first such link.
Status CheckSymlinksInsideModel(const std::string& path);

// The python_env.yaml document (`python`, `build_dependencies`, `dependencies`)
// derived from a conda environment, as MLflow derives it: `python=X` gives the
// version (else `fallback_python`), pip/setuptools/wheel become build dependencies
// and the pip section becomes `-r requirements.txt`. Also returns the pip section.
struct DerivedPythonEnv {
  Value python_env;
  std::vector<std::string> requirements;
};
Result<DerivedPythonEnv> DerivePythonEnv(const Value& conda_env, const std::string& fallback_python,
                                         const std::vector<std::string>& build_dependencies);

// Standalone Python source whose `load_pyfunc()` loads the model at `src_path` once it
// is deployed at `dst_path`, with no dependency on pyfunc, MLflow or any parsing
// library (MLflow 0.x's get_module_loader_src).
Result<std::string> ModuleLoaderSource(const std::string& src_path, const std::string& dst_path);

}  // namespace pyfunc

#endif  // PYFUNC_MODEL_DIR_H_
