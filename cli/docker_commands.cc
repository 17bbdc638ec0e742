// pyfunc generate-dockerfile | build-docker: container images that serve a model
// (include/pyfunc/image.h), with `mlflow models generate-dockerfile` / `build-docker`'s
// options where they apply.
#include <memory>
#include <string>

#include <fmt/core.h>

#include "commands.h"
#include "pyfunc/image.h"

namespace pyfunc::cli {
namespace {

struct ImageArgs {
  std::string model_uri;
  bool no_model = false;
  std::string base_image = kDefaultBaseImage;
  std::string wheel;
  std::string source;
  std::string dir = "pyfunc-dockerfile";
  std::string name = "pyfunc-model";
  std::string builder;
};

ImageOptions ToOptions(const ImageArgs& a) {
  ImageOptions o;
  o.model_uri = a.model_uri;
  o.no_model = a.no_model;
  o.base_image = a.base_image;
  o.pyfunc_wheel = a.wheel;
  o.source_dir = a.source;
  return o;
}

void AddImageOptions(CLI::App* cmd, ImageArgs* a) {
  cmd->add_option("-m,--model-uri", a->model_uri, "The model to serve: a directory or URI (runs:/, models:/)");
  cmd->add_flag("--no-model", a->no_model,
                "A generic image without a model: it serves the model mounted at /opt/ml/model, or named by -m");
  cmd->add_option("--base-image", a->base_image,
                  "The image to build on: Python 3.11 on Debian 12, as pyfunc's wheel is built")
      ->capture_default_str();
  cmd->add_option("--pyfunc-wheel", a->wheel, "A pyfunc wheel to install (default: one built from pyfunc's source)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--pyfunc-source", a->source, "pyfunc's source tree to build the wheel from")
      ->check(CLI::ExistingDirectory);
}

int GenerateDockerfile(const ImageArgs& a) {
  Result<DockerContext> context = GenerateDockerContext(ToOptions(a), a.dir);
  if (!context.ok()) return Fail(context.status());
  fmt::print("{}\n", context->dockerfile);
  return 0;
}

int BuildDocker(const ImageArgs& a) {
  ImageBuildOptions build;
  build.name = a.name;
  build.builder = a.builder;
  Result<BuiltImage> image = BuildImage(ToOptions(a), build);
  if (!image.ok()) return Fail(image.status());
  fmt::print("{}\n", image->name);
  return 0;
}

}  // namespace

void RegisterDockerCommands(CLI::App& app, int* exit_code) {
  auto g = std::make_shared<ImageArgs>();
  auto* generate =
      app.add_subcommand("generate-dockerfile",
                         "Write a build context (Dockerfile, pyfunc's wheel, the model) for an image serving a model");
  AddImageOptions(generate, g.get());
  generate->add_option("-d,--output-directory", g->dir, "Directory for the build context (new or empty)")
      ->capture_default_str();
  generate->callback([g, exit_code] { *exit_code = GenerateDockerfile(*g); });

  auto b = std::make_shared<ImageArgs>();
  auto* build = app.add_subcommand("build-docker", "Build an image serving a model, with docker, podman or buildah");
  AddImageOptions(build, b.get());
  build->add_option("-n,--name", b->name, "The image's name")->capture_default_str();
  build->add_option("--builder", b->builder, "docker, podman or buildah (default: the first that works)")
      ->check(CLI::IsMember({"docker", "podman", "buildah"}));
  build->callback([b, exit_code] { *exit_code = BuildDocker(*b); });
}

}  // namespace pyfunc::cli
