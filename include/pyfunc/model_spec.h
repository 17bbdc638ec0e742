// ModelSpec: the MLmodel file of a model directory.
//
// A ModelSpec holds the whole MLmodel document as a Value tree, so every field that
// pyfunc does not interpret (unknown top-level keys, unknown flavors, `metadata`,
// `config`, ...) survives a read/write round trip unchanged. Typed accessors validate
// the fields pyfunc relies on when the file is parsed, and errors name the file, the
// line and column, the field and what was expected.
//
// Readable shapes: MLflow 0.x to 3.x (`flavors:` mapping), and the flat form of the
// original pyfunc documentation (`loader_module`, `data`, `code`, `env` at top level),
// which is converted to a `flavors.python_function` entry and never written back.
// Written shape: `yaml.safe_dump` of the document, exactly as MLflow writes it.
#ifndef PYFUNC_MODEL_SPEC_H_
#define PYFUNC_MODEL_SPEC_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pyfunc/status.h"
#include "pyfunc/value.h"

namespace pyfunc {

inline constexpr const char* kMLmodelFileName = "MLmodel";
inline constexpr const char* kPyFuncFlavor = "python_function";

// The `python_function` flavor, interpreted. Paths are relative to the model directory
// and were checked not to leave it.
struct PyFuncFlavor {
  std::string loader_module;                  // module whose _load_pyfunc loads the model
  std::optional<std::string> code;            // dir put first on sys.path; absent or null: none
  std::optional<std::string> data;            // path passed to the loader; absent: the model root
  std::optional<std::string> conda_env;       // conda.yaml (MLflow < 2.0 stored only this, as a string)
  std::optional<std::string> python_env;      // python_env.yaml
  std::optional<std::string> python_version;  // writer's interpreter, "3.11.7"
  Value config;                               // `config` (the model_config dict), null when absent
  std::string predict_fn = "predict";
  bool streamable = false;
  std::string predict_stream_fn = "predict_stream";
  std::optional<std::string> model_code_path;  // models from code: the code file's basename is used
};

class ModelSpec {
 public:
  // A new, empty model as MLflow's Model() starts it: `flavors: {}`, a random
  // `model_uuid` and `utc_time_created` of now.
  static ModelSpec New();

  // Reads `path`, a model directory or its MLmodel file.
  // NotFound if it does not exist; InvalidArgument if it is not a valid MLmodel.
  static Result<ModelSpec> Load(const std::string& path);

  // Parses MLmodel text; `source` names it in error messages.
  static Result<ModelSpec> Parse(std::string_view text, const std::string& source);

  // Validates a document already in memory (e.g. a dict from Python).
  static Result<ModelSpec> FromValue(Value document, const std::string& source);

  // The document as MLflow writes it (yaml.safe_dump, sorted keys).
  std::string ToYaml() const;

  const Value& document() const { return doc_; }
  // Direct access for callers that set fields pyfunc does not model. Call Validate()
  // after changing the document this way.
  Value& mutable_document() { return doc_; }
  Status Validate() const;

  // Where this spec was read from ("" for a new one).
  const std::string& source() const { return source_; }

  // A top-level string field (`run_id`, `artifact_path`, `model_uuid`, ...), if set.
  std::optional<std::string> GetString(std::string_view key) const;
  void SetField(std::string_view key, Value value) { doc_.Set(key, std::move(value)); }

  std::vector<std::string> flavor_names() const;
  const Value* flavor(std::string_view name) const;
  // Adds or replaces a flavor, as Model.add_flavor does.
  void AddFlavor(std::string_view name, Value::Map config);

  bool has_python_function() const { return flavor(kPyFuncFlavor) != nullptr; }
  // The interpreted python_function flavor; InvalidArgument naming the source and the
  // flavors present when the model has none.
  Result<PyFuncFlavor> python_function() const;

 private:
  Value doc_ = Value::EmptyMap();
  std::string source_;
};

// Checks a model-relative path from an MLmodel file: relative, and not leaving the
// model directory. Returns the path normalized ("./data/x" -> "data/x").
Result<std::string> CheckModelRelativePath(const std::string& path);

// Now as MLflow writes utc_time_created: "YYYY-MM-DD HH:MM:SS.ffffff" (UTC).
std::string UtcTimeCreatedNow();

}  // namespace pyfunc

#endif  // PYFUNC_MODEL_SPEC_H_
