#include "pyfunc/environment.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>

#include "base/hash.h"
#include "base/paths.h"
#include "pyfunc/file_system.h"
#include "pyfunc/model_dir.h"
#include "pyfunc/yaml.h"
#include "runtime/subprocess.h"

extern char** environ;

namespace pyfunc {
namespace {

namespace fs = std::filesystem;
using runtime::FindProgram;
using runtime::RunCapture;
using runtime::SpawnOptions;

constexpr const char* kReadyMarker = ".pyfunc-env-ready";

std::vector<std::string> CurrentEnviron() {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) out.emplace_back(*e);
  return out;
}

// The environment with `name` removed, then the `set` entries added.
std::vector<std::string> EnvWith(std::vector<std::string> env, const std::vector<std::string>& remove,
                                 const std::vector<std::pair<std::string, std::string>>& set) {
  std::vector<std::string> out;
  for (std::string& e : env) {
    const std::string name = e.substr(0, e.find('='));
    bool drop = false;
    for (const auto& r : remove) drop = drop || name == r;
    for (const auto& s : set) drop = drop || name == s.first;
    if (!drop) out.push_back(std::move(e));
  }
  for (const auto& [k, v] : set) out.push_back(k + "=" + v);
  return out;
}

std::string GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// "3.11.7" of an interpreter, cached per path.
Result<std::string> PythonVersion(const std::string& python) {
  static std::mutex mu;
  static std::map<std::string, std::string> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = cache.find(python); it != cache.end()) return it->second;
  }
  SpawnOptions o;
  o.argv = {python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"};
  PYFUNC_ASSIGN_OR_RETURN(auto run, RunCapture(o));
  std::string v = run.second;
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  if (run.first != 0 || v.empty()) return Status::NotFound(python + ": not a working Python interpreter");
  std::lock_guard<std::mutex> lock(mu);
  cache[python] = v;
  return v;
}

std::string MajorMinor(const std::string& version) {
  size_t first = version.find('.');
  if (first == std::string::npos) return version;
  size_t second = version.find('.', first + 1);
  return version.substr(0, second);
}

std::string DefaultEnvRoot() {
  if (std::string r = GetEnv("PYFUNC_ENV_ROOT"); !r.empty()) return r;
  return base::CacheRoot() + "/envs";
}

// What defines a virtualenv: interpreter version, build dependencies, dependencies.
struct VenvSpec {
  std::string python;  // wanted version
  std::vector<std::string> build_dependencies;
  std::vector<std::string> dependencies;  // lines as written ("-r requirements.txt", "numpy==2")
};

std::string ScalarText(const Value& v) {
  if (v.is_string() || v.is_timestamp()) return v.as_string();
  if (v.is_int()) return std::to_string(v.as_int());
  if (v.is_float()) {  // `python: 3.10` reads as a float: keep what was meant
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", v.as_float());
    return buf;
  }
  return "";
}

Result<std::vector<std::string>> StringList(const Value* v, const std::string& where) {
  std::vector<std::string> out;
  if (v == nullptr || v->is_null()) return out;
  if (!v->is_list()) return Status::InvalidArgument(where + ": expected a list, found " + v->TypeName());
  for (const Value& item : v->as_list()) {
    std::string s = ScalarText(item);
    if (s.empty()) return Status::InvalidArgument(where + ": expected strings, found " + item.TypeName());
    out.push_back(s);
  }
  return out;
}

Result<VenvSpec> ReadVenvSpec(const std::string& model_dir, const PyFuncFlavor& flavor,
                              const std::string& local_version) {
  FileSystem* fsys = FileSystem::Default();
  VenvSpec spec;
  const std::string fallback = flavor.python_version.value_or(local_version);
  if (flavor.python_env && fsys->Exists(model_dir + "/" + *flavor.python_env)) {
    const std::string path = model_dir + "/" + *flavor.python_env;
    PYFUNC_ASSIGN_OR_RETURN(std::string text, fsys->ReadFile(path));
    PYFUNC_ASSIGN_OR_RETURN(Value doc, ParseYaml(text, path));
    if (!doc.is_map())
      return Status::InvalidArgument(path + ": expected a mapping {python, build_dependencies, dependencies}");
    const Value* python = doc.Find("python");
    spec.python = python ? ScalarText(*python) : fallback;
    if (spec.python.empty()) return Status::InvalidArgument(path + ": python: expected a version such as 3.11.7");
    PYFUNC_ASSIGN_OR_RETURN(spec.build_dependencies,
                            StringList(doc.Find("build_dependencies"), path + ": build_dependencies"));
    PYFUNC_ASSIGN_OR_RETURN(spec.dependencies, StringList(doc.Find("dependencies"), path + ": dependencies"));
    return spec;
  }
  if (flavor.conda_env && fsys->Exists(model_dir + "/" + *flavor.conda_env)) {
    const std::string path = model_dir + "/" + *flavor.conda_env;
    PYFUNC_ASSIGN_OR_RETURN(std::string text, fsys->ReadFile(path));
    PYFUNC_ASSIGN_OR_RETURN(Value doc, ParseYaml(text, path));
    Result<DerivedPythonEnv> derived = DerivePythonEnv(doc, fallback, {"pip", "setuptools", "wheel"});
    if (!derived.ok()) return derived.status().WithContext(path);
    spec.python = derived->python_env.Find("python")->as_string();
    PYFUNC_ASSIGN_OR_RETURN(spec.build_dependencies, StringList(derived->python_env.Find("build_dependencies"), path));
    spec.dependencies = derived->requirements;
    return spec;
  }
  spec.python = fallback;
  if (fsys->Exists(model_dir + "/" + kRequirementsFileName)) spec.dependencies = {"-r requirements.txt"};
  return spec;
}

// pip arguments for one requirement line, with -r/-c paths made absolute.
std::vector<std::string> PipArgs(const std::string& line, const std::string& base_dir) {
  for (const char* flag : {"-r", "-c", "--requirement", "--constraint"}) {
    const std::string f = flag;
    if (line.rfind(f, 0) == 0 && (line.size() == f.size() || line[f.size()] == ' ' || line[f.size()] == '=')) {
      std::string path = line.substr(f.size());
      path.erase(0, path.find_first_not_of(" ="));
      if (!path.empty() && path[0] != '/') path = base_dir + "/" + path;
      return {f.size() == 2 ? f : (f == "--requirement" ? "-r" : "-c"), path};
    }
  }
  return {line};
}

// The requirement lines with -r/-c files inlined (for hashing and inspection).
void Expand(const std::vector<std::string>& lines, const std::string& base_dir, int depth, std::string* out,
            std::vector<std::string>* names) {
  for (const std::string& raw : lines) {
    std::string line = raw.substr(0, raw.find(" #"));
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> args = PipArgs(line, base_dir);
    if (args.size() == 2 && depth < 8) {
      // The file's content, not its path, is what the environment depends on: the same
      // model in another directory (or an image's /opt/ml/model) is the same environment.
      *out += args[0] + "\n";
      Result<std::string> text = FileSystem::Default()->ReadFile(args[1]);
      if (!text.ok()) {
        *out += "<unreadable>\n";
        continue;
      }
      std::vector<std::string> inner;
      size_t start = 0;
      while (start <= text->size()) {
        size_t end = text->find('\n', start);
        if (end == std::string::npos) end = text->size();
        inner.push_back(text->substr(start, end - start));
        start = end + 1;
      }
      Expand(inner, fs::path(args[1]).parent_path().string(), depth + 1, out, args[0] == "-r" ? names : nullptr);
    } else {
      *out += line + "\n";
      if (names) {
        size_t end = line.find_first_of("=<>!~[; @");
        std::string name = line.substr(0, end);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        names->push_back(name);
      }
    }
  }
}

// Finds an interpreter of version `wanted` (X.Y or X.Y.Z).
std::string FindInterpreter(const std::string& wanted, const std::string& local) {
  const std::string mm = MajorMinor(wanted);
  std::vector<std::string> candidates = {local, FindProgram("python" + mm)};
  const std::string pyenv_root = GetEnv("PYENV_ROOT").empty() ? GetEnv("HOME") + "/.pyenv" : GetEnv("PYENV_ROOT");
  candidates.push_back(pyenv_root + "/versions/" + wanted + "/bin/python");
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(pyenv_root + "/versions", ec)) {
    if (MajorMinor(e.path().filename().string()) == mm) candidates.push_back((e.path() / "bin/python").string());
  }
  std::string best;
  for (const std::string& c : candidates) {
    if (c.empty() || ::access(c.c_str(), X_OK) != 0) continue;
    Result<std::string> v = PythonVersion(c);
    if (!v.ok()) continue;
    if (*v == wanted) return c;  // exact match wins
    if (best.empty() && MajorMinor(*v) == mm) best = c;
  }
  return best;
}

// Holds an exclusive flock on a file for its lifetime.
class FileLock {
 public:
  static Result<FileLock> Acquire(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Status::IOError(path + ": cannot open lock file");
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) {
        ::close(fd);
        return Status::IOError(path + ": cannot lock");
      }
    }
    return FileLock(fd);
  }
  FileLock(FileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

std::string Tail(const std::string& path, size_t bytes) {
  Result<std::string> text = FileSystem::Default()->ReadFile(path);
  if (!text.ok()) return "";
  return text->size() > bytes ? "..." + text->substr(text->size() - bytes) : *text;
}

Status RunLogged(const std::vector<std::string>& argv, const std::vector<std::string>& env, int log_fd,
                 const std::string& log_path, const std::string& what) {
  const std::string line = "$ " + [&] {
    std::string s;
    for (const auto& a : argv) s += a + " ";
    return s;
  }() + "\n";
  (void)!::write(log_fd, line.data(), line.size());
  SpawnOptions o;
  o.argv = argv;
  o.env = env;
  o.stdout_fd = log_fd;
  o.stderr_fd = log_fd;
  PYFUNC_ASSIGN_OR_RETURN(int code, runtime::RunProcess(o));
  if (code != 0) {
    return Status::Internal(what + " failed (exit status " + std::to_string(code) + "); log " + log_path + ":\n" +
                            Tail(log_path, 2000));
  }
  return Status::OK();
}

Result<PythonEnvironment> PrepareVirtualenv(const std::string& model_dir, const PyFuncFlavor& flavor,
                                            const EnvironmentOptions& options, const std::string& local) {
  PYFUNC_ASSIGN_OR_RETURN(std::string local_version, PythonVersion(local));
  PYFUNC_ASSIGN_OR_RETURN(VenvSpec spec, ReadVenvSpec(model_dir, flavor, local_version));
  std::string base = FindInterpreter(spec.python, local);
  if (base.empty()) {
    base = local;
    if (!options.quiet) {
      std::fprintf(stderr,
                   "pyfunc: warning: the model wants Python %s, which is not installed here; using %s (Python %s)\n",
                   spec.python.c_str(), local.c_str(), local_version.c_str());
    }
  }
  PYFUNC_ASSIGN_OR_RETURN(std::string base_version, PythonVersion(base));

  std::string identity = "pyfunc-venv-1\npython " + base_version + "\n";
  for (const auto& b : spec.build_dependencies) identity += "build " + b + "\n";
  std::vector<std::string> names;
  Expand(spec.dependencies, model_dir, 0, &identity, &names);
  const bool has_pandas = std::find(names.begin(), names.end(), "pandas") != names.end();
  const std::string root = options.env_root.empty() ? DefaultEnvRoot() : options.env_root;
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return Status::IOError(root + ": cannot create the environment root: " + ec.message());
  const std::string dir = root + "/pyfunc-" + base::Sha256Hex(identity).substr(0, 24);

  PythonEnvironment out;
  out.root = dir;
  out.python = dir + "/bin/python";
  out.env = EnvWith(CurrentEnviron(), {"PYTHONHOME", "PYTHONPATH", "__PYVENV_LAUNCHER__"},
                    {{"VIRTUAL_ENV", dir}, {"PATH", dir + "/bin:" + GetEnv("PATH")}});
  out.description = "virtualenv " + dir + " (Python " + base_version + ")";

  // A finished environment is used without its lock: the marker is written last, and an
  // environment root that is read-only (an image's, for another user) works.
  if (fs::exists(dir + "/" + kReadyMarker)) return out;
  PYFUNC_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(dir + ".lock"));
  if (fs::exists(dir + "/" + kReadyMarker)) return out;
  if (fs::exists(dir)) fs::remove_all(dir, ec);  // an interrupted or failed build

  if (!options.quiet) std::fprintf(stderr, "pyfunc: creating %s\n", out.description.c_str());
  const std::string log_path = dir + ".log";
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) return Status::IOError(log_path + ": cannot write the build log");
  const std::vector<std::string> pip_env = EnvWith(CurrentEnviron(), {"PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV"},
                                                   {{"PIP_NO_INPUT", "1"}, {"PIP_DISABLE_PIP_VERSION_CHECK", "1"}});
  std::string uv = FindProgram("uv");
  if (uv.empty()) {
    const std::string beside = fs::path(local).parent_path().string() + "/uv";
    if (::access(beside.c_str(), X_OK) == 0) uv = beside;
  }
  std::vector<std::string> deps;
  for (const auto& d : spec.dependencies) {
    for (auto& a : PipArgs(d, model_dir)) deps.push_back(a);
  }
  if (!has_pandas) deps.push_back("pandas");  // the worker needs pandas (and numpy with it)
  // uv when available (much faster), else the standard library's venv and pip.
  const std::vector<std::string> create =
      uv.empty() ? std::vector<std::string>{base, "-m", "venv", dir}
                 : std::vector<std::string>{uv, "venv", "--quiet", "--seed", "--python", base, dir};
  const std::vector<std::string> install = uv.empty()
                                               ? std::vector<std::string>{out.python, "-m", "pip", "install", "--quiet"}
                                               : std::vector<std::string>{uv, "pip", "install", "--python", out.python};
  auto install_all = [&](const std::vector<std::string>& packages, const char* what) {
    std::vector<std::string> argv = install;
    argv.insert(argv.end(), packages.begin(), packages.end());
    return RunLogged(argv, pip_env, log_fd, log_path, what);
  };
  Status st = RunLogged(create, pip_env, log_fd, log_path, "creating the virtualenv");
  if (st.ok() && !spec.build_dependencies.empty()) {
    st = install_all(spec.build_dependencies, "installing build dependencies");
  }
  if (st.ok()) st = install_all(deps, "installing the model's requirements");
  ::close(log_fd);
  if (!st.ok()) {
    fs::remove_all(dir, ec);
    return st.WithContext("building " + out.description);
  }
  PYFUNC_RETURN_IF_ERROR(FileSystem::Default()->WriteFile(dir + "/" + kReadyMarker, identity));
  out.created = true;
  return out;
}

Result<PythonEnvironment> PrepareConda(const std::string& model_dir, const PyFuncFlavor& flavor,
                                       const EnvironmentOptions& options) {
  std::string conda;
  for (const char* name : {"conda", "mamba", "micromamba"}) {
    conda = FindProgram(name);
    if (!conda.empty()) break;
  }
  if (std::string home = GetEnv("MLFLOW_CONDA_HOME"); conda.empty() && !home.empty())
    conda = FindProgram(home + "/bin/conda");
  if (conda.empty()) {
    return Status::NotFound(
        "env manager 'conda' needs conda, mamba or micromamba on PATH, and none was found "
        "(use --env-manager virtualenv or local)");
  }
  if (!flavor.conda_env) return Status::InvalidArgument(model_dir + ": the model has no conda environment file");
  const std::string file = model_dir + "/" + *flavor.conda_env;
  PYFUNC_ASSIGN_OR_RETURN(std::string text, FileSystem::Default()->ReadFile(file));
  const std::string root = options.env_root.empty() ? DefaultEnvRoot() : options.env_root;
  std::error_code ec;
  fs::create_directories(root, ec);
  const std::string dir = root + "/pyfunc-conda-" + base::Sha256Hex(text).substr(0, 24);
  PythonEnvironment out;
  out.root = dir;
  out.python = dir + "/bin/python";
  out.env = EnvWith(CurrentEnviron(), {"PYTHONHOME", "PYTHONPATH"},
                    {{"CONDA_PREFIX", dir}, {"PATH", dir + "/bin:" + GetEnv("PATH")}});
  out.description = "conda environment " + dir;
  PYFUNC_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(dir + ".lock"));
  if (fs::exists(dir + "/" + kReadyMarker)) return out;
  if (fs::exists(dir)) fs::remove_all(dir, ec);
  if (!options.quiet) std::fprintf(stderr, "pyfunc: creating %s\n", out.description.c_str());
  const std::string log_path = dir + ".log";
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) return Status::IOError(log_path + ": cannot write the build log");
  std::vector<std::string> argv = {conda, "env", "create", "--yes", "-p", dir, "-f", file};
  if (fs::path(conda).filename() == "micromamba") argv = {conda, "create", "--yes", "-p", dir, "-f", file};
  Status st = RunLogged(argv, CurrentEnviron(), log_fd, log_path, "conda env create");
  ::close(log_fd);
  if (!st.ok()) {
    fs::remove_all(dir, ec);
    return st;
  }
  PYFUNC_RETURN_IF_ERROR(FileSystem::Default()->WriteFile(dir + "/" + kReadyMarker, text));
  out.created = true;
  return out;
}

}  // namespace

Result<EnvManager> ParseEnvManager(std::string_view name) {
  if (name == "local") return EnvManager::kLocal;
  if (name == "virtualenv" || name == "uv") return EnvManager::kVirtualenv;
  if (name == "conda") return EnvManager::kConda;
  return Status::InvalidArgument("unknown env manager '" + std::string(name) +
                                 "' (choose local, virtualenv, uv or conda)");
}

const char* EnvManagerName(EnvManager manager) {
  switch (manager) {
    case EnvManager::kLocal: return "local";
    case EnvManager::kVirtualenv: return "virtualenv";
    case EnvManager::kConda: return "conda";
  }
  return "?";
}

// The interpreter of the virtual environment this program is installed in: `python`
// beside the executable when that directory is a venv's bin/ (pyvenv.cfg one level up),
// as for `.venv/bin/pyfunc` run without activating the venv. Empty otherwise.
static std::string PythonBesideExecutable() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  const std::filesystem::path bin = exe.parent_path();
  for (const char* name : {"python", "python3"}) {
    const std::filesystem::path candidate = bin / name;
    if (std::filesystem::exists(bin.parent_path() / "pyvenv.cfg", ec) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate.string();
  }
  return "";
}

Result<std::string> ResolveLocalPython(const std::string& python) {
  std::string wanted = python;
  if (wanted.empty()) wanted = GetEnv("PYFUNC_PYTHON");
  if (wanted.empty()) wanted = PythonBesideExecutable();
  if (wanted.empty()) wanted = "python3";
  std::string found = FindProgram(wanted);
  if (found.empty()) return Status::NotFound("Python interpreter '" + wanted + "' not found (set PYFUNC_PYTHON)");
  return found;
}

Result<PythonEnvironment> PrepareEnvironment(const std::string& model_dir, const ModelSpec& spec,
                                             const EnvironmentOptions& options) {
  PYFUNC_ASSIGN_OR_RETURN(PyFuncFlavor flavor, spec.python_function());
  PYFUNC_ASSIGN_OR_RETURN(std::string local, ResolveLocalPython(options.python));
  switch (options.manager) {
    case EnvManager::kLocal: {
      PythonEnvironment out;
      out.python = local;
      out.env = CurrentEnviron();
      PYFUNC_ASSIGN_OR_RETURN(std::string version, PythonVersion(local));
      out.description = "local interpreter " + local + " (Python " + version + ")";
      return out;
    }
    case EnvManager::kVirtualenv: return PrepareVirtualenv(model_dir, flavor, options, local);
    case EnvManager::kConda: return PrepareConda(model_dir, flavor, options);
  }
  return Status::Internal("unknown env manager");
}

}  // namespace pyfunc
