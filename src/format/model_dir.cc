#include "pyfunc/model_dir.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "pyfunc/yaml.h"

namespace pyfunc {
namespace {

namespace fs = std::filesystem;

std::string BaseName(const std::string& path) {
  fs::path p(path);
  if (!p.has_filename()) p = p.parent_path();  // "dir/" -> "dir"
  return p.filename().string();
}

bool SkipCodeEntry(const std::string& name) {
  return name == "__pycache__" || (name.size() > 4 && name.compare(name.size() - 4, 4, ".pyc") == 0);
}

std::string Join(const std::vector<std::string>& lines, const char* sep) {
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += sep;
    out += lines[i];
  }
  return out;
}

// "pip=23.0" -> "pip==23.0"; "pip" -> "pip"; "pip<=23" -> "pip<=23" (conda to pip specifiers).
std::string CondaToPipSpec(const std::string& dep) {
  size_t pos = dep.find_first_of("=<>!~");
  if (pos == std::string::npos) return dep;
  if (dep[pos] == '=' && (pos + 1 >= dep.size() || dep[pos + 1] != '=')) {
    return dep.substr(0, pos) + "==" + dep.substr(pos + 1);
  }
  return dep;
}

std::string PackageName(const std::string& dep) {
  size_t pos = dep.find_first_of("=<>!~ [");
  return pos == std::string::npos ? dep : dep.substr(0, pos);
}

// A Python string literal for `s` (single-quoted, escaped as repr() would).
std::string PyLiteral(const std::string& s) {
  std::string out = "'";
  for (unsigned char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\'': out += "\\'"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);  // UTF-8 bytes pass through: Python 3 source is UTF-8
        }
    }
  }
  return out + "'";
}

}  // namespace

Result<DerivedPythonEnv> DerivePythonEnv(const Value& conda_env, const std::string& fallback_python,
                                         const std::vector<std::string>& build_dependencies) {
  if (!conda_env.is_map()) {
    return Status::InvalidArgument(std::string("conda environment: expected a mapping, found ") + conda_env.TypeName());
  }
  std::string python = fallback_python;
  std::map<std::string, std::string> build;  // name -> pip specifier, from conda deps
  DerivedPythonEnv out;
  if (const Value* deps = conda_env.Find("dependencies"); deps != nullptr && !deps->is_null()) {
    if (!deps->is_list()) {
      return Status::InvalidArgument(std::string("conda environment: dependencies: expected a list, found ") +
                                     deps->TypeName());
    }
    for (const Value& dep : deps->as_list()) {
      if (dep.is_string()) {
        const std::string& d = dep.as_string();
        const std::string name = PackageName(d);
        if (name == "python") {
          size_t pos = d.find_first_of("=<>");
          if (pos != std::string::npos) {
            std::string version = d.substr(d.find_first_not_of("=<>", pos));
            if (!version.empty()) python = version;
          }
        } else if (name == "pip" || name == "setuptools" || name == "wheel") {
          build[name] = CondaToPipSpec(d);
        }
      } else if (dep.is_map()) {
        const Value* pip = dep.Find("pip");
        if (pip == nullptr) continue;
        if (!pip->is_list()) {
          return Status::InvalidArgument(std::string("conda environment: dependencies.pip: expected a list, found ") +
                                         pip->TypeName());
        }
        for (const Value& req : pip->as_list()) {
          if (!req.is_string()) {
            return Status::InvalidArgument(
                std::string("conda environment: dependencies.pip: expected strings, found ") + req.TypeName());
          }
          out.requirements.push_back(req.as_string());
        }
      } else {
        return Status::InvalidArgument(
            std::string("conda environment: dependencies: expected strings or {pip: [...]}, found ") + dep.TypeName());
      }
    }
  }
  if (python.empty()) {
    return Status::InvalidArgument(
        "conda environment: no python=<version> dependency, and no interpreter version to fall back on");
  }
  Value::List build_list;
  for (const std::string& dep : build_dependencies) {
    auto it = build.find(PackageName(dep));
    build_list.emplace_back(it != build.end() ? it->second : dep);
  }
  out.python_env = Value::EmptyMap();
  out.python_env.Set("python", python);
  if (!build_list.empty()) out.python_env.Set("build_dependencies", Value(std::move(build_list)));
  out.python_env.Set("dependencies", Value(Value::List{Value("-r requirements.txt")}));
  return out;
}

Status AddToModel(ModelSpec& model, const std::string& loader_module, const std::string& data, const std::string& code,
                  const Value& env, const std::string& python_version, const Value::Map& extra) {
  if (loader_module.empty()) return Status::InvalidArgument("add_to_model: loader_module is required");
  Value flavor(extra);
  flavor.Set("loader_module", loader_module);
  if (!python_version.empty()) flavor.Set("python_version", python_version);
  if (!code.empty()) flavor.Set("code", code);
  if (!data.empty()) flavor.Set("data", data);
  if (env.truthy()) {
    if (!env.is_string() && !env.is_map()) {
      return Status::InvalidArgument(std::string("add_to_model: env must be a path or a mapping, not ") +
                                     env.TypeName());
    }
    flavor.Set("env", env);
  }
  model.AddFlavor(kPyFuncFlavor, std::move(flavor.as_map()));
  return model.Validate().WithContext("add_to_model");
}

Result<ModelSpec> SaveModel(const std::string& dst_path, const SaveModelOptions& options, ModelSpec model) {
  FileSystem* fsys = options.file_system ? options.file_system : FileSystem::Default();
  if (options.loader_module.empty()) return Status::InvalidArgument("save_model: loader_module is required");
  if (dst_path.empty()) return Status::InvalidArgument("save_model: dst_path is empty");

  // Everything that can be checked before writing is checked first.
  if (fsys->Exists(dst_path)) {
    if (!fsys->IsDirectory(dst_path)) return Status::AlreadyExists(dst_path + ": exists and is not a directory");
    PYFUNC_ASSIGN_OR_RETURN(std::vector<std::string> entries, fsys->ListDir(dst_path));
    if (!entries.empty()) return Status::AlreadyExists(dst_path + ": already exists and is not empty");
  }
  if (options.data_path && !fsys->Exists(*options.data_path)) {
    return Status::NotFound("save_model: data_path " + *options.data_path + " does not exist");
  }
  std::set<std::string> code_names;
  for (const std::string& code : options.code_paths) {
    if (!fsys->Exists(code)) return Status::NotFound("save_model: code path " + code + " does not exist");
    const std::string name = BaseName(code);
    if (!code_names.insert(name).second) {
      return Status::InvalidArgument("save_model: two code paths copy to code/" + name);
    }
  }
  Value conda = options.conda_env;
  if (options.conda_env_path) {
    Result<std::string> text = fsys->ReadFile(*options.conda_env_path);
    if (!text.ok()) return text.status().WithContext("save_model: conda_env");
    PYFUNC_ASSIGN_OR_RETURN(conda, ParseYaml(*text, *options.conda_env_path));
    if (!conda.is_map()) {
      return Status::InvalidArgument(*options.conda_env_path + ": expected a conda environment mapping, found " +
                                     (conda.is_null() ? std::string("an empty document") : conda.TypeName()));
    }
  } else if (conda.is_null()) {
    // MLflow's default environment: the interpreter, pip, and the pip requirements.
    conda = Value::EmptyMap();
    conda.Set("name", "mlflow-env");
    conda.Set("channels", Value(Value::List{Value("conda-forge")}));
    Value::List deps;
    if (!options.python_version.empty()) deps.emplace_back("python=" + options.python_version);
    deps.emplace_back("pip");
    if (!options.pip_requirements.empty()) {
      Value::List pip;
      for (const std::string& r : options.pip_requirements) pip.emplace_back(r);
      Value pip_entry = Value::EmptyMap();
      pip_entry.Set("pip", Value(std::move(pip)));
      deps.push_back(std::move(pip_entry));
    }
    conda.Set("dependencies", Value(std::move(deps)));
  }
  Result<DerivedPythonEnv> derived = DerivePythonEnv(conda, options.python_version, options.build_dependencies);
  if (!derived.ok()) return derived.status().WithContext("save_model");

  std::string data_rel, code_rel;
  if (options.data_path) data_rel = std::string(kDataDirName) + "/" + BaseName(*options.data_path);
  if (!options.code_paths.empty()) code_rel = kCodeDirName;
  Value env = Value::EmptyMap();
  env.Set("conda", kCondaFileName);
  env.Set("virtualenv", kPythonEnvFileName);
  PYFUNC_RETURN_IF_ERROR(AddToModel(model, options.loader_module, data_rel, code_rel, env, options.python_version,
                                    options.extra_flavor_keys));

  // Build the directory next to its destination, then rename it into place.
  const fs::path dst = fs::path(dst_path).lexically_normal();
  fs::path parent = dst.parent_path();
  if (parent.empty()) parent = ".";
  if (!fsys->IsDirectory(parent.string())) {
    return Status::NotFound("save_model: parent directory " + parent.string() + " does not exist");
  }
  std::string name = dst.filename().string();
  if (name.empty()) name = dst.parent_path().filename().string();
  PYFUNC_ASSIGN_OR_RETURN(std::string tmp, fsys->MakeTempDir(parent.string(), "." + name + ".saving-"));
  auto build = [&]() -> Status {
    if (options.data_path) {
      PYFUNC_RETURN_IF_ERROR(fsys->CreateDir(tmp + "/" + kDataDirName));
      PYFUNC_RETURN_IF_ERROR(CopyTree(fsys, *options.data_path, tmp + "/" + data_rel));
    }
    if (!options.code_paths.empty()) {
      PYFUNC_RETURN_IF_ERROR(fsys->CreateDir(tmp + "/" + kCodeDirName));
      for (const std::string& code : options.code_paths) {
        PYFUNC_RETURN_IF_ERROR(CopyTree(fsys, code, tmp + "/" + kCodeDirName + "/" + BaseName(code), SkipCodeEntry));
      }
    }
    PYFUNC_RETURN_IF_ERROR(fsys->WriteFile(tmp + "/" + kCondaFileName, DumpYaml(conda)));
    DumpYamlOptions unsorted;
    unsorted.sort_keys = false;
    PYFUNC_RETURN_IF_ERROR(fsys->WriteFile(tmp + "/" + kPythonEnvFileName, DumpYaml(derived->python_env, unsorted)));
    PYFUNC_RETURN_IF_ERROR(fsys->WriteFile(tmp + "/" + kRequirementsFileName, Join(derived->requirements, "\n")));
    PYFUNC_RETURN_IF_ERROR(fsys->WriteFile(tmp + "/" + kMLmodelFileName, model.ToYaml()));
    if (fsys->Exists(dst.string())) PYFUNC_RETURN_IF_ERROR(fsys->RemoveAll(dst.string()));  // checked empty above
    return fsys->Rename(tmp, dst.string());
  };
  Status st = build();
  if (!st.ok()) {
    (void)fsys->RemoveAll(tmp);
    return st.WithContext("save_model " + dst_path);
  }
  return model;
}

namespace {

bool IsInside(const fs::path& root, const fs::path& p) {
  auto mismatch = std::mismatch(root.begin(), root.end(), p.begin(), p.end());
  return mismatch.first == root.end();
}

// The model directory of `path` (a directory, or its MLmodel file), resolved.
fs::path ModelRoot(const std::string& path) {
  std::error_code ec;
  const fs::path dir = fs::is_directory(path, ec) ? fs::path(path) : fs::path(path).parent_path();
  fs::path root = fs::weakly_canonical(dir.empty() ? fs::path(".") : dir, ec);
  return ec ? fs::absolute(dir).lexically_normal() : root;
}

// Where the link `p` leads, following a chain of links (40 at most, as the kernel does)
// even when it dangles, so that a link to a missing file outside counts as outside.
fs::path ResolveLink(fs::path p, std::error_code& ec) {
  for (int hops = 0; hops < 40; ++hops) {
    const fs::path target = fs::read_symlink(p, ec);
    if (ec) return {};
    p = fs::weakly_canonical(target.is_absolute() ? target : p.parent_path() / target, ec);
    if (ec) return {};
    std::error_code st_ec;
    if (!fs::is_symlink(fs::symlink_status(p, st_ec))) return p;
  }
  ec = std::make_error_code(std::errc::too_many_symbolic_link_levels);
  return {};
}

// Relative paths of the symbolic links under `root` that resolve outside it (or dangle
// towards outside). Links to directories are not descended into: the directory they
// name is checked as a whole.
std::vector<std::pair<std::string, std::string>> EscapingSymlinks(const fs::path& root) {
  std::vector<std::pair<std::string, std::string>> found;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code link_ec;
    if (!it->is_symlink(link_ec)) continue;
    const fs::path real = ResolveLink(it->path(), link_ec);
    if (link_ec || !IsInside(root, real)) {
      found.emplace_back(it->path().lexically_relative(root).string(), link_ec ? link_ec.message() : real.string());
    }
  }
  return found;
}

}  // namespace

Status CheckSymlinksInsideModel(const std::string& path) {
  const fs::path root = ModelRoot(path);
  const auto found = EscapingSymlinks(root);
  if (found.empty()) return Status::OK();
  std::string more = found.size() > 1 ? " (and " + std::to_string(found.size() - 1) + " more)" : "";
  return Status::InvalidArgument((root / found[0].first).string() +
                                 ": symbolic link resolves outside the model directory, to " + found[0].second + more);
}

Result<std::vector<ValidationProblem>> ValidateModel(const std::string& path) {
  FileSystem* fsys = FileSystem::Default();
  std::vector<ValidationProblem> problems;
  Result<ModelSpec> spec = ModelSpec::Load(path);
  if (!spec.ok()) {
    if (spec.status().code() == StatusCode::kNotFound && !fsys->Exists(path)) return spec.status();
    problems.push_back({kMLmodelFileName, spec.status().message()});
    return problems;
  }
  Result<PyFuncFlavor> flavor = spec->python_function();
  if (!flavor.ok()) {
    problems.push_back({"flavors", flavor.status().message()});
    return problems;
  }
  const fs::path root = fsys->IsDirectory(path) ? fs::path(path) : fs::path(path).parent_path();
  const std::string f = "flavors.python_function.";
  std::set<std::string> reported_outside;
  auto check = [&](const std::string& field, const std::optional<std::string>& rel, bool want_dir) {
    if (!rel) return;
    const fs::path full = root / *rel;
    if (!fsys->Exists(full.string())) {
      problems.push_back({f + field, "'" + *rel + "' does not exist in the model directory"});
      return;
    }
    // A symlink may point outside the model; the resolved path must stay inside.
    std::error_code ec;
    const fs::path real = fs::weakly_canonical(full, ec);
    const fs::path real_root = fs::weakly_canonical(root, ec);
    auto mismatch = std::mismatch(real_root.begin(), real_root.end(), real.begin(), real.end());
    if (mismatch.first != real_root.end()) {
      problems.push_back({f + field, "'" + *rel + "' resolves outside the model directory"});
      reported_outside.insert(fs::path(*rel).lexically_normal().string());
    } else if (want_dir && !fsys->IsDirectory(full.string())) {
      problems.push_back({f + field, "'" + *rel + "' is not a directory"});
    }
  };
  check("code", flavor->code, true);
  check("data", flavor->data, false);
  check("env.conda", flavor->conda_env, false);
  check("env.virtualenv", flavor->python_env, false);
  const Value* conf = spec->flavor(kPyFuncFlavor);
  for (const char* key : {"python_model", "model_path"}) {
    const Value* v = conf->Find(key);
    if (v == nullptr || !v->is_string()) continue;
    // Old sklearn models: model_path is inside the data path when `data` is set.
    std::string rel = v->as_string();
    if (std::string(key) == "model_path" && flavor->data && !fsys->Exists((root / rel).string())) {
      rel = *flavor->data + "/" + rel;
      if (fsys->Exists((root / *flavor->data).string()) && !fsys->IsDirectory((root / *flavor->data).string()))
        continue;
    }
    check(key, rel, false);
  }
  if (const Value* arts = conf->Find("artifacts"); arts != nullptr && arts->is_map()) {
    for (const auto& [name, art] : arts->as_map()) {
      if (const Value* p = art.Find("path"); p != nullptr && p->is_string())
        check("artifacts." + name + ".path", p->as_string(), false);
    }
  }
  if (flavor->model_code_path) {
    check("model_code_path", BaseName(*flavor->model_code_path), false);
  }
  // Links that no field names are refused too: loading refuses the whole directory.
  for (const auto& [rel, target] : EscapingSymlinks(ModelRoot(path))) {
    if (reported_outside.count(rel) > 0) continue;
    problems.push_back({rel, "symbolic link resolves outside the model directory, to " + target});
  }
  return problems;
}

Result<std::string> ModuleLoaderSource(const std::string& src_path, const std::string& dst_path) {
  PYFUNC_ASSIGN_OR_RETURN(ModelSpec spec, ModelSpec::Load(src_path));
  PYFUNC_ASSIGN_OR_RETURN(PyFuncFlavor flavor, spec.python_function());
  std::string update_path;
  if (flavor.code) {
    update_path = "sys.path = [os.path.abspath(" + PyLiteral(dst_path + "/" + *flavor.code) + ")] + sys.path; ";
  }
  const std::string data_path = flavor.data ? dst_path + "/" + *flavor.data : dst_path;
  std::string src;
  src += "\n\nimport importlib\nimport os\nimport sys\n\n";
  src += "def load_pyfunc():\n";
  src +=
      "    " + update_path + "return _loader(" + PyLiteral(flavor.loader_module) + ")(" + PyLiteral(data_path) + ")\n";
  src += "\n";
  src += "def _loader(module_name):\n";
  src += "    # MLflow >= 0.7 loader modules define _load_pyfunc; older ones load_pyfunc.\n";
  src += "    module = importlib.import_module(module_name)\n";
  src += "    loader = getattr(module, '_load_pyfunc', None)\n";
  src += "    return loader if loader is not None else module.load_pyfunc\n";
  src += "\n";
  return src;
}

}  // namespace pyfunc
