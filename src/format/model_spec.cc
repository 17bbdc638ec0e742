#include "pyfunc/model_spec.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>

#include "base/ids.h"
#include "pyfunc/file_system.h"
#include "pyfunc/yaml.h"

namespace pyfunc {
namespace {

namespace fs = std::filesystem;

// "<source>:<line>:<column>: <field>: <message>", the position taken from `node`.
Status FieldError(const std::string& source, const Value& node, const std::string& field, const std::string& message) {
  std::string where = source;
  if (node.line() > 0) where += ":" + std::to_string(node.line()) + ":" + std::to_string(node.column());
  return Status::InvalidArgument(where + ": " + field + ": " + message);
}

Status ExpectKind(const std::string& source, const Value& node, const std::string& field,
                  std::initializer_list<Value::Kind> kinds, const char* expected) {
  for (Value::Kind k : kinds)
    if (node.kind() == k) return Status::OK();
  return FieldError(source, node, field, std::string("expected ") + expected + ", found " + node.TypeName());
}

constexpr auto kStr = Value::Kind::kString;
constexpr auto kNull = Value::Kind::kNull;
constexpr auto kMap = Value::Kind::kMap;
constexpr auto kList = Value::Kind::kList;
constexpr auto kBool = Value::Kind::kBool;
constexpr auto kInt = Value::Kind::kInt;
constexpr auto kTimestamp = Value::Kind::kTimestamp;

// Keys of the seed's flat form that belong to the python_function flavor.
constexpr const char* kFlatFlavorKeys[] = {"loader_module", "data", "code", "env"};

// Moves a flat-form python_function flavor under `flavors`.
void NormalizeFlatForm(Value& doc) {
  if (doc.Find("flavors") != nullptr) return;
  Value flavor = Value::EmptyMap();
  if (const Value* nested = doc.Find(kPyFuncFlavor); nested != nullptr && nested->is_map()) {
    flavor = *nested;
    doc.Erase(kPyFuncFlavor);
  } else if (doc.Find("loader_module") != nullptr) {
    for (const char* key : kFlatFlavorKeys) {
      if (const Value* v = doc.Find(key)) {
        flavor.Set(key, *v);
        doc.Erase(key);
      }
    }
  } else {
    return;
  }
  Value flavors = Value::EmptyMap();
  flavors.Set(kPyFuncFlavor, std::move(flavor));
  doc.Set("flavors", std::move(flavors));
}

Status ValidatePathField(const std::string& source, const Value& node, const std::string& field) {
  PYFUNC_RETURN_IF_ERROR(ExpectKind(source, node, field, {kStr}, "a path (string)"));
  Result<std::string> checked = CheckModelRelativePath(node.as_string());
  if (!checked.ok()) return FieldError(source, node, field, checked.status().message());
  return Status::OK();
}

Status ValidatePyFunc(const std::string& source, const Value& flavor) {
  const std::string f = "flavors.python_function";
  const Value* loader = flavor.Find("loader_module");
  if (loader == nullptr) {
    // MLflow always writes loader_module; a PythonModel or models-from-code flavor
    // still names what loads it, so we can fall back to MLflow's loader module.
    if (flavor.Find("python_model") == nullptr && flavor.Find("model_code_path") == nullptr) {
      return FieldError(source, flavor, f,
                        "missing 'loader_module' (the Python module that loads the model), "
                        "and no 'python_model' or 'model_code_path' to load it otherwise");
    }
  } else {
    PYFUNC_RETURN_IF_ERROR(ExpectKind(source, *loader, f + ".loader_module", {kStr}, "a module name (string)"));
    if (loader->as_string().empty()) return FieldError(source, *loader, f + ".loader_module", "is empty");
  }
  for (const char* key : {"code", "data"}) {
    const Value* v = flavor.Find(key);
    if (v == nullptr || v->is_null()) continue;
    PYFUNC_RETURN_IF_ERROR(ValidatePathField(source, *v, f + "." + key));
  }
  if (const Value* env = flavor.Find("env"); env != nullptr && !env->is_null()) {
    PYFUNC_RETURN_IF_ERROR(
        ExpectKind(source, *env, f + ".env", {kStr, kMap}, "a conda file path or a mapping {conda, virtualenv}"));
    if (env->is_string()) {
      PYFUNC_RETURN_IF_ERROR(ValidatePathField(source, *env, f + ".env"));
    } else {
      for (const auto& [key, v] : env->as_map()) {
        if (v.is_null()) continue;
        PYFUNC_RETURN_IF_ERROR(ValidatePathField(source, v, f + ".env." + key));
      }
    }
  }
  for (const char* key : {"python_version", "predict_fn", "predict_stream_fn", "python_model", "model_path",
                          "model_code_path", "cloudpickle_version"}) {
    const Value* v = flavor.Find(key);
    if (v == nullptr || v->is_null()) continue;
    PYFUNC_RETURN_IF_ERROR(ExpectKind(source, *v, f + "." + key, {kStr}, "a string"));
  }
  for (const char* key : {"python_model", "model_path"}) {
    const Value* v = flavor.Find(key);
    if (v != nullptr && v->is_string()) PYFUNC_RETURN_IF_ERROR(ValidatePathField(source, *v, f + "." + key));
  }
  if (const Value* v = flavor.Find("streamable"); v != nullptr && !v->is_null()) {
    PYFUNC_RETURN_IF_ERROR(ExpectKind(source, *v, f + ".streamable", {kBool}, "true or false"));
  }
  if (const Value* v = flavor.Find("config"); v != nullptr && !v->is_null()) {
    PYFUNC_RETURN_IF_ERROR(ExpectKind(source, *v, f + ".config", {kMap}, "a mapping"));
  }
  if (const Value* v = flavor.Find("artifacts"); v != nullptr && !v->is_null()) {
    PYFUNC_RETURN_IF_ERROR(ExpectKind(source, *v, f + ".artifacts", {kMap}, "a mapping"));
    for (const auto& [name, art] : v->as_map()) {
      const std::string af = f + ".artifacts." + name;
      PYFUNC_RETURN_IF_ERROR(ExpectKind(source, art, af, {kMap}, "a mapping {path, uri}"));
      const Value* p = art.Find("path");
      if (p == nullptr) return FieldError(source, art, af, "missing 'path'");
      PYFUNC_RETURN_IF_ERROR(ValidatePathField(source, *p, af + ".path"));
    }
  }
  return Status::OK();
}

Status ValidateDocument(const std::string& source, const Value& doc) {
  // Errors about the whole document point at where it starts (line 1 when it is empty).
  const std::string doc_where = source + ":" + std::to_string(doc.line() > 0 ? doc.line() : 1) + ":" +
                                std::to_string(doc.line() > 0 ? doc.column() : 1);
  if (!doc.is_map()) {
    return Status::InvalidArgument(doc_where + ": expected a mapping of MLmodel fields, found " +
                                   (doc.is_null() ? std::string("an empty document") : doc.TypeName()));
  }
  const Value* flavors = doc.Find("flavors");
  if (flavors == nullptr) {
    return Status::InvalidArgument(doc_where +
                                   ": no 'flavors' mapping (and no python_function "
                                   "flavor in the flat form)");
  }
  PYFUNC_RETURN_IF_ERROR(
      ExpectKind(source, *flavors, "flavors", {kMap}, "a mapping of flavor names to configurations"));
  for (const auto& [name, config] : flavors->as_map()) {
    PYFUNC_RETURN_IF_ERROR(ExpectKind(source, config, "flavors." + name, {kMap}, "a mapping"));
  }
  if (const Value* pf = flavors->Find(kPyFuncFlavor)) PYFUNC_RETURN_IF_ERROR(ValidatePyFunc(source, *pf));

  for (const char* key :
       {"artifact_path", "run_id", "mlflow_version", "model_uuid", "model_id", "databricks_runtime"}) {
    if (const Value* v = doc.Find(key)) PYFUNC_RETURN_IF_ERROR(ExpectKind(source, *v, key, {kStr, kNull}, "a string"));
  }
  if (const Value* v = doc.Find("utc_time_created")) {
    PYFUNC_RETURN_IF_ERROR(ExpectKind(source, *v, "utc_time_created", {kStr, kTimestamp, kNull}, "a timestamp string"));
  }
  if (const Value* v = doc.Find("model_size_bytes")) {
    PYFUNC_RETURN_IF_ERROR(ExpectKind(source, *v, "model_size_bytes", {kInt, kNull}, "an integer"));
  }
  for (const char* key : {"metadata", "saved_input_example_info", "resources", "auth_policy"}) {
    if (const Value* v = doc.Find(key)) PYFUNC_RETURN_IF_ERROR(ExpectKind(source, *v, key, {kMap, kNull}, "a mapping"));
  }
  for (const char* key : {"env_vars", "prompts"}) {
    if (const Value* v = doc.Find(key)) PYFUNC_RETURN_IF_ERROR(ExpectKind(source, *v, key, {kList, kNull}, "a list"));
  }
  for (const char* key : {"is_signature_from_type_hint", "type_hint_from_example"}) {
    if (const Value* v = doc.Find(key))
      PYFUNC_RETURN_IF_ERROR(ExpectKind(source, *v, key, {kBool, kNull}, "true or false"));
  }
  if (const Value* sig = doc.Find("signature"); sig != nullptr && !sig->is_null()) {
    PYFUNC_RETURN_IF_ERROR(ExpectKind(source, *sig, "signature", {kMap}, "a mapping {inputs, outputs, params}"));
    for (const auto& [key, v] : sig->as_map()) {
      PYFUNC_RETURN_IF_ERROR(ExpectKind(source, v, "signature." + key, {kStr, kNull}, "a JSON string"));
    }
  }
  return Status::OK();
}

std::optional<std::string> OptString(const Value& map, const char* key) {
  const Value* v = map.Find(key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return v->as_string();
}

}  // namespace

Result<std::string> CheckModelRelativePath(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("empty path");
  fs::path p(path);
  if (p.is_absolute())
    return Status::InvalidArgument("path '" + path + "' is absolute; it must be relative to the model directory");
  fs::path normal = p.lexically_normal();
  if (!normal.empty() && *normal.begin() == "..") {
    return Status::InvalidArgument("path '" + path + "' leaves the model directory");
  }
  std::string out = normal.string();
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

std::string UtcTimeCreatedNow() {
  const auto now = std::chrono::system_clock::now();
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  std::string out = buf;
  if (micros != 0) {  // str(datetime) drops a zero fraction
    std::snprintf(buf, sizeof(buf), ".%06lld", static_cast<long long>(micros));
    out += buf;
  }
  return out;
}

ModelSpec ModelSpec::New() {
  ModelSpec spec;
  spec.doc_.Set("flavors", Value::EmptyMap());
  spec.doc_.Set("model_uuid", base::NewUuidHex());
  spec.doc_.Set("utc_time_created", UtcTimeCreatedNow());
  return spec;
}

Result<ModelSpec> ModelSpec::Load(const std::string& path) {
  FileSystem* fsys = FileSystem::Default();
  if (!fsys->Exists(path)) return Status::NotFound(path + ": no such model directory or MLmodel file");
  std::string file = path;
  if (fsys->IsDirectory(path)) {
    file = (fs::path(path) / kMLmodelFileName).string();
    if (!fsys->Exists(file)) return Status::NotFound(path + ": not a model directory (no MLmodel file)");
  }
  PYFUNC_ASSIGN_OR_RETURN(std::string text, fsys->ReadFile(file));
  return Parse(text, file);
}

Result<ModelSpec> ModelSpec::Parse(std::string_view text, const std::string& source) {
  PYFUNC_ASSIGN_OR_RETURN(Value doc, ParseYaml(text, source));
  return FromValue(std::move(doc), source);
}

Result<ModelSpec> ModelSpec::FromValue(Value document, const std::string& source) {
  if (document.is_map()) NormalizeFlatForm(document);
  PYFUNC_RETURN_IF_ERROR(ValidateDocument(source, document));
  ModelSpec spec;
  spec.doc_ = std::move(document);
  spec.source_ = source;
  return spec;
}

Status ModelSpec::Validate() const { return ValidateDocument(source_.empty() ? "MLmodel" : source_, doc_); }

std::string ModelSpec::ToYaml() const { return DumpYaml(doc_); }

std::optional<std::string> ModelSpec::GetString(std::string_view key) const {
  const Value* v = doc_.Find(key);
  if (v == nullptr || !(v->is_string() || v->is_timestamp())) return std::nullopt;
  return v->as_string();
}

std::vector<std::string> ModelSpec::flavor_names() const {
  std::vector<std::string> names;
  if (const Value* flavors = doc_.Find("flavors"); flavors != nullptr && flavors->is_map()) {
    for (const auto& entry : flavors->as_map()) names.push_back(entry.first);
  }
  return names;
}

const Value* ModelSpec::flavor(std::string_view name) const {
  const Value* flavors = doc_.Find("flavors");
  return flavors == nullptr ? nullptr : flavors->Find(name);
}

void ModelSpec::AddFlavor(std::string_view name, Value::Map config) {
  Value* flavors = doc_.Find("flavors");
  if (flavors == nullptr || !flavors->is_map()) {
    doc_.Set("flavors", Value::EmptyMap());
    flavors = doc_.Find("flavors");
  }
  flavors->Set(name, Value(std::move(config)));
}

Result<PyFuncFlavor> ModelSpec::python_function() const {
  const std::string source = source_.empty() ? "MLmodel" : source_;
  const Value* conf = flavor(kPyFuncFlavor);
  if (conf == nullptr) {
    std::string present;
    for (const std::string& name : flavor_names()) present += (present.empty() ? "" : ", ") + name;
    return Status::InvalidArgument(
        source + ": the model has no python_function flavor (flavors: " + (present.empty() ? "none" : present) + ")");
  }
  PYFUNC_RETURN_IF_ERROR(ValidatePyFunc(source, *conf));
  PyFuncFlavor out;
  if (auto loader = OptString(*conf, "loader_module")) {
    out.loader_module = *loader;
  } else if (conf->Find("model_code_path") != nullptr) {
    out.loader_module = "mlflow.pyfunc.loaders.code_model";
  } else {
    out.loader_module = "mlflow.pyfunc.model";
  }
  if (auto v = OptString(*conf, "code")) out.code = *CheckModelRelativePath(*v);
  if (auto v = OptString(*conf, "data")) out.data = *CheckModelRelativePath(*v);
  if (const Value* env = conf->Find("env"); env != nullptr) {
    if (env->is_string()) {
      out.conda_env = *CheckModelRelativePath(env->as_string());
    } else if (env->is_map()) {
      if (auto v = OptString(*env, "conda")) out.conda_env = *CheckModelRelativePath(*v);
      if (auto v = OptString(*env, "virtualenv")) out.python_env = *CheckModelRelativePath(*v);
    }
  }
  out.python_version = OptString(*conf, "python_version");
  if (const Value* v = conf->Find("config")) out.config = *v;
  if (auto v = OptString(*conf, "predict_fn")) out.predict_fn = *v;
  if (const Value* v = conf->Find("streamable"); v != nullptr && v->is_bool()) out.streamable = v->as_bool();
  if (auto v = OptString(*conf, "predict_stream_fn")) out.predict_stream_fn = *v;
  out.model_code_path = OptString(*conf, "model_code_path");
  return out;
}

}  // namespace pyfunc
