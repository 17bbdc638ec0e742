// Container images that serve a model with `pyfunc serve`.
//
//   pyfunc::ImageOptions options;
//   options.model_uri = "runs:/<run_id>/model";
//   auto context = pyfunc::GenerateDockerContext(options, "pyfunc-dockerfile");
//   auto built = pyfunc::BuildImage(options, {.name = "wine-quality"});
//
// A build context is a directory holding a Dockerfile, a wheel of pyfunc built from its
// own source (not taken from a package index), and the model under model/. Its image:
//   * installs pyfunc's shared libraries from the base image's Debian release (the ones
//     the wheel's native code links, found with ldd and dpkg on the machine that built
//     it), then pyfunc and uv into /opt/pyfunc;
//   * builds the model's environment at build time from the model's own requirements
//     (`pyfunc prepare-env`), so that a container starts without installing anything;
//   * runs as user 1000, group 0, which owns what the server writes (any user ID in group
//     0 works, as OpenShift assigns them);
//   * serves on 8080 (`pyfunc serve` with MLFLOW_HOST=0.0.0.0, MLFLOW_PORT=8080, and a
//     worker per core the container may use, MLFLOW_MODELS_WORKERS=0, as MLflow's image
//     starts one per core):
//     MLflow's /ping and /invocations (the SageMaker serving contract), KServe V1 and the
//     Open Inference Protocol; ENTRYPOINT ["pyfunc"], CMD ["serve"], so that
//     `docker run IMAGE serve` (as SageMaker starts it) and KServe's `args: [serve, ...]`
//     both run the server; SIGTERM drains it. When the wheel's pyfunc was built with
//     gRPC, the Open Inference Protocol's gRPC service is on 8081 (PYFUNC_GRPC_PORT).
// With `no_model`, the image has no model and serves the one mounted at /opt/ml/model
// (SageMaker), or the one named by `-m` (KServe's /mnt/models); that model's
// environment is built when the container starts, into /opt/pyfunc/envs.
//
// The wheel's native code links the Debian libraries of the machine that built it, so
// the base image must be of the same Debian release (the default is Python 3.11 on
// Debian 12, as pyfunc's own build).
#ifndef PYFUNC_IMAGE_H_
#define PYFUNC_IMAGE_H_

#include <string>
#include <vector>

#include "pyfunc/status.h"

namespace pyfunc {

// The base image when none is given: the official Python image of the Debian release
// pyfunc is built on.
inline constexpr const char* kDefaultBaseImage = "python:3.11-slim-bookworm";

struct ImageOptions {
  // The model to bake in: a directory or any URI ResolveModelUri takes (runs:/,
  // models:/name@alias). Empty only with no_model.
  std::string model_uri;
  // A generic image: no model, serves /opt/ml/model or what `-m` names.
  bool no_model = false;
  // FROM; empty: kDefaultBaseImage.
  std::string base_image;
  // A pyfunc wheel to install. Empty: one is built from `source_dir` with `python`
  // (pip wheel, Release, stripped, in the stable build directory build/image-wheel of
  // the source, so that rebuilds are incremental).
  std::string pyfunc_wheel;
  // pyfunc's source tree; empty: the one this pyfunc was built from, when it exists.
  std::string source_dir;
  // The Python that builds the wheel (with scikit-build-core and nanobind installed);
  // empty: $PYFUNC_PYTHON, else the python beside the running executable, else python3.
  std::string python;
};

struct DockerContext {
  std::string dir;         // the build context
  std::string dockerfile;  // dir + "/Dockerfile"
  std::string wheel;       // the wheel's file name inside dir
};

// Writes the build context into `dir` (created; it must not exist or be empty).
// NotFound for a missing model or wheel; FailedPrecondition when no wheel is given and
// none can be built (no source tree, no Python with the build backend), or when the
// wheel links a library no Debian package provides; the message names it.
Result<DockerContext> GenerateDockerContext(const ImageOptions& options, const std::string& dir);

// What a Dockerfile is made of (GenerateDockerContext fills it in).
struct DockerfileSpec {
  std::string base_image;
  std::string wheel;                          // file name in the context
  std::vector<std::string> runtime_packages;  // Debian packages the wheel's native code needs
  std::string uv_version;
  bool with_model = true;
  bool grpc = false;      // the wheel's pyfunc serves gRPC: on 8081 (PYFUNC_GRPC_PORT)
  std::string model_uri;  // for the header comment
};

// The Dockerfile's text.
std::string DockerfileText(const DockerfileSpec& spec);

struct ImageBuildOptions {
  // The image's name (-t).
  std::string name;
  // docker, podman or buildah; empty: the first that works (docker only with a
  // reachable engine).
  std::string builder;
  // Keep the build context here instead of a temporary directory removed afterwards.
  std::string context_dir;
};

struct BuiltImage {
  std::string builder;  // the program that built it
  std::string name;
};

// Generates a context and builds it. FailedPrecondition naming the builders tried when
// none is available; Internal with the builder's exit status when the build fails.
Result<BuiltImage> BuildImage(const ImageOptions& options, const ImageBuildOptions& build);

// The image builder to use: `wanted` when given (NotFound when it is not on PATH), else
// docker (when `docker info` reaches an engine), podman or buildah.
Result<std::string> FindImageBuilder(const std::string& wanted = "");

}  // namespace pyfunc

#endif  // PYFUNC_IMAGE_H_
