// Container images serving a model (include/pyfunc/image.h): the build context and the
// build.
#include "pyfunc/image.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "pyfunc/environment.h"
#include "pyfunc/file_system.h"
#include "pyfunc/model_uri.h"
#include "pyfunc/version.h"
#include "runtime/subprocess.h"

namespace pyfunc {
namespace {

namespace fs = std::filesystem;
using runtime::FindProgram;
using runtime::RunCapture;
using runtime::RunProcess;
using runtime::SpawnOptions;

// uv builds the model's environment in the image; the version pyfunc is tested with
// (requirements-dev.txt).
constexpr const char* kUvVersion = "0.13.9";

// The DT_NEEDED entries of an ELF64 little-endian file; empty for anything else.
std::vector<std::string> NeededLibraries(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto read = [&](uint64_t off, auto* out) {
    if (off > data.size() || data.size() - off < sizeof(*out)) return false;
    std::memcpy(out, data.data() + off, sizeof(*out));
    return true;
  };
  if (data.size() < 64 ||
      data.compare(0, 4,
                   "\x7f"
                   "ELF") != 0 ||
      data[4] != 2 || data[5] != 1)
    return {};
  uint64_t shoff = 0;
  uint16_t shentsize = 0, shnum = 0;
  if (!read(0x28, &shoff) || !read(0x3a, &shentsize) || !read(0x3c, &shnum) || shentsize < 64) return {};
  std::vector<std::string> needed;
  for (uint16_t i = 0; i < shnum; ++i) {
    const uint64_t sh = shoff + uint64_t{i} * shentsize;
    uint32_t type = 0, link = 0;
    uint64_t offset = 0, size = 0;
    if (!read(sh + 4, &type) || !read(sh + 24, &offset) || !read(sh + 32, &size) || !read(sh + 40, &link)) return {};
    if (type != 6 /* SHT_DYNAMIC */) continue;
    uint64_t stroff = 0;
    if (!read(shoff + uint64_t{link} * shentsize + 24, &stroff)) return {};
    for (uint64_t e = offset; e + 16 <= offset + size; e += 16) {
      int64_t tag = 0;
      uint64_t val = 0;
      if (!read(e, &tag) || !read(e + 8, &val)) return {};
      if (tag == 0) break;
      if (tag != 1 /* DT_NEEDED */ || stroff + val >= data.size()) continue;
      needed.emplace_back(data.c_str() + stroff + val);
    }
  }
  return needed;
}

// The Debian package that installed `path` ("libfmt9"), or empty.
std::string OwningPackage(const std::string& path) {
  std::vector<std::string> candidates = {path};
  std::error_code ec;
  const std::string real = fs::canonical(path, ec).string();
  if (!ec) candidates.push_back(real);
  for (const std::string& p : std::vector<std::string>(candidates)) {
    if (p.rfind("/usr/", 0) == 0)
      candidates.push_back(p.substr(4));  // merged /usr
    else
      candidates.push_back("/usr" + p);
  }
  for (const std::string& p : candidates) {
    SpawnOptions o;
    o.argv = {"dpkg-query", "--search", p};
    o.stderr_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    Result<std::pair<int, std::string>> run = RunCapture(o);
    ::close(o.stderr_fd);
    if (!run.ok() || run->first != 0) continue;
    // "libfmt9:amd64: /usr/lib/x86_64-linux-gnu/libfmt.so.9.1.0"
    const std::string& line = run->second;
    const size_t colon = line.find(": ");
    if (colon == std::string::npos) continue;
    std::string pkg = line.substr(0, colon);
    if (size_t arch = pkg.find(':'); arch != std::string::npos) pkg.resize(arch);
    if (pkg.find(',') == std::string::npos) return pkg;
  }
  return "";
}

// The Debian packages that provide the shared libraries the native files of `wheel_dir`
// (an unpacked wheel) link directly. Libraries are resolved as ldd resolves them here.
// `grpc` tells whether that code links grpc++ (a build with `--grpc-port`).
Result<std::vector<std::string>> RuntimePackages(const std::string& wheel_dir, bool* grpc) {
  *grpc = false;
  std::set<std::string> packages;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(wheel_dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const std::string file = it->path().string();
    const std::vector<std::string> needed = NeededLibraries(file);
    if (needed.empty()) continue;
    SpawnOptions o;
    o.argv = {"ldd", file};
    PYFUNC_ASSIGN_OR_RETURN(auto run, RunCapture(o));
    std::istringstream lines(run.second);
    std::string line;
    std::map<std::string, std::string> resolved;  // soname -> path
    while (std::getline(lines, line)) {
      // "\tlibfmt.so.9 => /lib/x86_64-linux-gnu/libfmt.so.9 (0x...)" or "... => not found"
      const size_t arrow = line.find(" => ");
      if (arrow == std::string::npos) continue;
      std::string name = line.substr(0, arrow);
      name.erase(0, name.find_first_not_of(" \t"));
      std::string rest = line.substr(arrow + 4);
      rest = rest.substr(0, rest.find(" ("));
      resolved[name] = rest;
    }
    const std::string shown = fs::relative(it->path(), wheel_dir).string();
    for (const std::string& lib : needed) {
      if (lib.rfind("ld-linux", 0) == 0) continue;
      if (lib.rfind("libgrpc++.so", 0) == 0) *grpc = true;
      auto r = resolved.find(lib);
      if (r == resolved.end() || r->second.empty() || r->second == "not found") {
        return Status::NotFound("the pyfunc wheel's " + shown + " links " + lib +
                                ", which is not installed here, so no Debian package for the image could be found");
      }
      const std::string pkg = OwningPackage(r->second);
      if (pkg.empty()) {
        return Status::NotFound("the pyfunc wheel's " + shown + " links " + lib + " (" + r->second +
                                "), which no Debian package provides; build pyfunc without it (an image's wheel is "
                                "built with -DPYFUNC_WITH_ARROW=OFF)");
      }
      packages.insert(pkg);
    }
  }
  if (ec) return Status::IOError(wheel_dir + ": " + ec.message());
  // The C and C++ runtimes are in every Debian image.
  for (const char* base : {"libc6", "libstdc++6", "libgcc-s1"}) packages.erase(base);
  return std::vector<std::string>(packages.begin(), packages.end());
}

Result<std::string> FindWheel(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".whl") return e.path().string();
  }
  return Status::NotFound(dir + ": no wheel was built");
}

// Builds a wheel of pyfunc from its source into `out_dir`.
Result<std::string> BuildWheel(const ImageOptions& options, const std::string& out_dir) {
  std::string source = options.source_dir.empty() ? PYFUNC_SOURCE_DIR : options.source_dir;
  std::error_code ec;
  if (!fs::exists(fs::path(source) / "pyproject.toml", ec) || !fs::exists(fs::path(source) / "CMakeLists.txt", ec)) {
    return Status::NotFound("no pyfunc wheel was given and " + source +
                            " is not pyfunc's source tree to build one from (pass a wheel, or the source)");
  }
  PYFUNC_ASSIGN_OR_RETURN(std::string python, ResolveLocalPython(options.python));
  SpawnOptions check;
  check.argv = {python, "-c", "import scikit_build_core, nanobind"};
  check.stderr_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  Result<int> has_backend = RunProcess(check);
  ::close(check.stderr_fd);
  if (!has_backend.ok() || *has_backend != 0) {
    return Status::NotFound(python +
                            " cannot build pyfunc's wheel: it needs scikit-build-core and nanobind "
                            "(pip install scikit-build-core nanobind), or pass a wheel");
  }
  // Release and stripped: the image carries no debug information. Arrow C++ comes from
  // pyarrow, which the image does not have; the scoring server does not need it. gRPC
  // when this machine has grpc++ (the image then serves it on 8081).
  SpawnOptions o;
  o.argv = {python,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            out_dir,
            "--config-settings=build-dir=" + (fs::path(source) / "build" / "image-wheel").string(),
            "--config-settings=cmake.build-type=Release",
            "--config-settings=install.strip=true",
            "--config-settings=cmake.define.PYFUNC_WITH_ARROW=OFF",
            "--config-settings=cmake.define.PYFUNC_WITH_GRPC=AUTO",
            source};
  o.stdout_fd = STDERR_FILENO;
  std::fprintf(stderr, "pyfunc: building a pyfunc wheel from %s\n", source.c_str());
  PYFUNC_ASSIGN_OR_RETURN(int rc, RunProcess(o));
  if (rc != 0)
    return Status::Internal("building pyfunc's wheel from " + source + " failed (pip exited " + std::to_string(rc) +
                            ")");
  return FindWheel(out_dir);
}

Result<DockerContext> WriteDockerContext(const ImageOptions& options, const std::string& model_path,
                                         const std::string& dir) {
  std::error_code ec;
  DockerContext out;
  out.dir = fs::absolute(dir).string();
  out.dockerfile = out.dir + "/Dockerfile";
  std::string wheel;
  if (!options.pyfunc_wheel.empty()) {
    if (!fs::is_regular_file(options.pyfunc_wheel, ec))
      return Status::NotFound(options.pyfunc_wheel + ": no such wheel");
    wheel = options.pyfunc_wheel;
  } else {
    PYFUNC_ASSIGN_OR_RETURN(std::string built_dir, FileSystem::Default()->MakeTempDir(out.dir, ".wheel-"));
    PYFUNC_ASSIGN_OR_RETURN(wheel, BuildWheel(options, built_dir));
  }
  out.wheel = fs::path(wheel).filename().string();
  fs::copy_file(wheel, out.dir + "/" + out.wheel, fs::copy_options::overwrite_existing, ec);
  if (ec) return Status::IOError(out.dir + "/" + out.wheel + ": cannot copy the wheel: " + ec.message());

  // Unpack the wheel to see which shared libraries its native code links.
  PYFUNC_ASSIGN_OR_RETURN(std::string unpacked, FileSystem::Default()->MakeTempDir(out.dir, ".unpacked-"));
  PYFUNC_ASSIGN_OR_RETURN(std::string python, ResolveLocalPython(options.python));
  SpawnOptions unzip;
  unzip.argv = {python, "-m", "zipfile", "-e", wheel, unpacked};
  PYFUNC_ASSIGN_OR_RETURN(int rc, RunProcess(unzip));
  if (rc != 0) return Status::InvalidArgument(wheel + ": not a wheel (it cannot be unpacked as a zip file)");
  bool grpc = false;
  Result<std::vector<std::string>> packages = RuntimePackages(unpacked, &grpc);
  fs::remove_all(unpacked, ec);
  for (const auto& e : fs::directory_iterator(out.dir, ec)) {
    if (e.path().filename().string().rfind(".wheel-", 0) == 0) fs::remove_all(e.path(), ec);
  }
  if (!packages.ok()) return packages.status();

  if (!options.no_model) {
    fs::copy(model_path, out.dir + "/model", fs::copy_options::recursive, ec);
    if (ec) return Status::IOError(model_path + ": cannot copy the model into " + out.dir + ": " + ec.message());
  }

  DockerfileSpec spec;
  spec.base_image = options.base_image.empty() ? kDefaultBaseImage : options.base_image;
  spec.wheel = out.wheel;
  spec.runtime_packages = *packages;
  spec.grpc = grpc;
  spec.uv_version = kUvVersion;
  spec.with_model = !options.no_model;
  spec.model_uri = options.model_uri;
  PYFUNC_RETURN_IF_ERROR(FileSystem::Default()->WriteFile(out.dockerfile, DockerfileText(spec)));
  return out;
}

}  // namespace

std::string DockerfileText(const DockerfileSpec& spec) {
  const std::string wheel = "/tmp/" + spec.wheel;
  const std::string uv = "uv==" + spec.uv_version;
  std::string t;
  t += "# An image serving ";
  t += spec.with_model ? "the model " + spec.model_uri : std::string("the model mounted at /opt/ml/model");
  t += " with pyfunc " PYFUNC_VERSION ".\n";
  t += "# `pyfunc serve` listens on 8080: MLflow's scoring protocol (/ping, /invocations, as\n"
       "# SageMaker calls them), KServe V1 (/v1/models/NAME:predict) and the Open Inference\n"
       "# Protocol (/v2)";
  t += spec.grpc ? ", and on 8081 the Open Inference Protocol over gRPC" : "";
  t += ". SIGTERM drains it.\n"
       "# Written by `pyfunc generate-dockerfile`.\n";
  t += "FROM " + spec.base_image + "\n\n";
  if (!spec.runtime_packages.empty()) {
    t += "# The shared libraries pyfunc's native code links, from the base image's Debian release.\n"
         "RUN apt-get update \\\n"
         " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends";
    for (const std::string& p : spec.runtime_packages) t += " \\\n      " + p;
    t += " \\\n"
         " && apt-get clean \\\n"
         " && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin\n\n";
  }
  // A generic image keeps uv: it builds the environment of the model it is given.
  t += "# pyfunc, from a wheel of its own source. The scoring server is native code: the wheel\n"
       "# goes in without its Python API's dependencies (the model's environment has its own).\n";
  if (!spec.with_model) t += "# uv builds the environment of the model the container is given.\n";
  t += "COPY " + spec.wheel + " " + wheel + "\n";
  t += "RUN python3 -m venv /opt/pyfunc \\\n"
       " && /opt/pyfunc/bin/pip install --quiet --no-cache-dir --no-deps " +
       wheel + " \\\n";
  if (!spec.with_model) t += " && /opt/pyfunc/bin/pip install --quiet --no-cache-dir " + uv + " \\\n";
  t += " && /opt/pyfunc/bin/pip uninstall --quiet --yes pip \\\n"
       " && rm " +
       wheel + "\n\n";
  t += "# Not root: user 1000 in group 0, which owns what the server writes, so that any user\n"
       "# ID in group 0 (as OpenShift assigns them) can run it too.\n"
       "RUN useradd --uid 1000 --gid 0 --no-log-init --create-home --home-dir /home/pyfunc pyfunc \\\n"
       " && mkdir -p /opt/pyfunc/envs /opt/ml/model \\\n"
       " && chown -R 1000:0 /opt/pyfunc/envs /opt/ml \\\n"
       " && chmod -R g=u /opt/pyfunc/envs /opt/ml\n"
       "ENV PATH=/opt/pyfunc/bin:$PATH \\\n"
       "    PYFUNC_ENV_ROOT=/opt/pyfunc/envs \\\n"
       "    XDG_CACHE_HOME=/tmp/.cache \\\n"
       "    PYFUNC_MODEL_URI=/opt/ml/model \\\n"
       "    MLFLOW_HOST=0.0.0.0 \\\n"
       "    MLFLOW_PORT=8080 \\\n"
       "    MLFLOW_MODELS_WORKERS=0";
  t += spec.grpc ? " \\\n    PYFUNC_GRPC_PORT=8081\n" : "\n";
  if (spec.with_model) {
    // uv comes and goes in the one layer: the image does not keep it, nor any cache.
    t += "\n# The model, and its environment built now from its own requirements (with uv, which\n"
         "# the image does not keep; bytecode compiled, so that the first imports are fast):\n"
         "# a container starts without installing anything.\n"
         "COPY --chown=1000:0 model /opt/ml/model\n"
         "RUN /opt/pyfunc/bin/python -m ensurepip --default-pip >/dev/null \\\n"
         " && /opt/pyfunc/bin/pip install --quiet --no-cache-dir " +
         uv +
         " \\\n"
         " && UV_NO_CACHE=1 UV_COMPILE_BYTECODE=1 PIP_NO_CACHE_DIR=1 \\\n"
         "    pyfunc prepare-env -m /opt/ml/model --env-manager virtualenv \\\n"
         " && /opt/pyfunc/bin/pip uninstall --quiet --yes uv pip \\\n"
         " && rm -rf /tmp/.cache /root/.cache \\\n"
         " && chown -R 1000:0 /opt/pyfunc/envs \\\n"
         " && chmod -R g=u /opt/pyfunc/envs\n"
         "USER 1000:0\n";
  } else {
    t += "\n# No model: the one at /opt/ml/model (or named by -m) gets its environment when the\n"
         "# container starts.\n"
         "USER 1000:0\n";
  }
  t += spec.grpc ? "\nEXPOSE 8080 8081\n" : "\nEXPOSE 8080\n";
  t += "STOPSIGNAL SIGTERM\n"
       "ENTRYPOINT [\"pyfunc\"]\n"
       "CMD [\"serve\"]\n";
  return t;
}

Result<DockerContext> GenerateDockerContext(const ImageOptions& options, const std::string& dir) {
  if (options.no_model == !options.model_uri.empty()) {
    return Status::InvalidArgument(options.no_model ? "a generic image (no model) takes no model URI"
                                                    : "no model URI given (or ask for a generic image with no model)");
  }
  std::string model_path;
  if (!options.no_model) {
    PYFUNC_ASSIGN_OR_RETURN(model_path, ResolveModelUri(options.model_uri));
    std::error_code ec;
    if (!fs::exists(fs::path(model_path) / "MLmodel", ec)) {
      return Status::NotFound(options.model_uri + ": not a model directory (it has no MLmodel file)");
    }
  }
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    return Status::AlreadyExists(dir + ": exists and is not empty; give a new directory for the build context");
  }
  const bool existed = fs::exists(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError(dir + ": cannot create the build context: " + ec.message());
  // A failure leaves no half-written context behind.
  Result<DockerContext> out = WriteDockerContext(options, model_path, dir);
  if (!out.ok()) {
    if (existed) {
      for (const auto& e : fs::directory_iterator(dir, ec)) fs::remove_all(e.path(), ec);
    } else {
      fs::remove_all(dir, ec);
    }
  }
  return out;
}

Result<std::string> FindImageBuilder(const std::string& wanted) {
  if (!wanted.empty()) {
    if (wanted != "docker" && wanted != "podman" && wanted != "buildah") {
      return Status::InvalidArgument("unknown image builder '" + wanted + "' (choose docker, podman or buildah)");
    }
    std::string path = FindProgram(wanted);
    if (path.empty()) return Status::NotFound("image builder '" + wanted + "' is not on PATH");
    return path;
  }
  std::string docker = FindProgram("docker");
  if (!docker.empty()) {
    SpawnOptions o;
    o.argv = {docker, "info"};
    o.stdout_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    o.stderr_fd = o.stdout_fd;
    Result<int> rc = RunProcess(o);
    ::close(o.stdout_fd);
    if (rc.ok() && *rc == 0) return docker;
  }
  for (const char* name : {"podman", "buildah"}) {
    if (std::string path = FindProgram(name); !path.empty()) return path;
  }
  return Status::NotFound(
      "no image builder found: install docker (with a running engine), podman or buildah" +
      std::string(docker.empty() ? "" : " (docker is on PATH, but `docker info` reaches no engine)"));
}

Result<BuiltImage> BuildImage(const ImageOptions& options, const ImageBuildOptions& build) {
  if (build.name.empty()) return Status::InvalidArgument("no image name given");
  PYFUNC_ASSIGN_OR_RETURN(std::string builder, FindImageBuilder(build.builder));
  std::string dir = build.context_dir;
  bool temporary = false;
  if (dir.empty()) {
    std::error_code ec;
    const fs::path tmp = fs::temp_directory_path(ec);
    PYFUNC_ASSIGN_OR_RETURN(dir, FileSystem::Default()->MakeTempDir(ec ? "/tmp" : tmp.string(), "pyfunc-image-"));
    temporary = true;
  }
  Result<DockerContext> context = GenerateDockerContext(options, dir);
  auto cleanup = [&] {
    if (temporary) (void)FileSystem::Default()->RemoveAll(dir);
  };
  if (!context.ok()) {
    cleanup();
    return context.status();
  }
  const std::string name = fs::path(builder).filename().string();
  SpawnOptions o;
  // buildah caches layers only when asked; docker and podman do by default.
  if (name == "buildah")
    o.argv = {builder, "bud", "--layers", "-t", build.name, "-f", context->dockerfile, context->dir};
  else
    o.argv = {builder, "build", "-t", build.name, "-f", context->dockerfile, context->dir};
  o.stdout_fd = STDERR_FILENO;
  std::fprintf(stderr, "pyfunc: building image %s with %s\n", build.name.c_str(), builder.c_str());
  Result<int> rc = RunProcess(o);
  cleanup();
  if (!rc.ok()) return rc.status();
  if (*rc != 0) {
    return Status::Internal(name + " could not build image " + build.name + " (exit status " + std::to_string(*rc) +
                            "; its output is above)");
  }
  return BuiltImage{builder, build.name};
}

}  // namespace pyfunc
