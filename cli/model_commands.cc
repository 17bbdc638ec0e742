// pyfunc info | validate | loader-src: inspect and check model directories.
#include <string>

#include <fmt/core.h>

#include "commands.h"
#include "pyfunc/model_dir.h"
#include "pyfunc/model_spec.h"
#include "pyfunc/model_uri.h"

namespace pyfunc::cli {
namespace {

std::string Describe(const Value& v) {
  if (v.is_string() || v.is_timestamp()) return v.as_string();
  return ToJson(v);
}

int Info(const std::string& model, bool json) {
  Result<std::string> local = ResolveModelUri(model);
  if (!local.ok()) return Fail(local.status());
  Result<ModelSpec> spec = ModelSpec::Load(*local);
  if (!spec.ok()) return Fail(spec.status());
  if (json) {
    fmt::print("{}\n", ToJson(spec->document(), 2));
    return 0;
  }
  auto row = [](const std::string& key, const std::string& value) { fmt::print("{:<20}{}\n", key + ":", value); };
  row("model", model);
  std::string flavors;
  for (const std::string& name : spec->flavor_names()) flavors += (flavors.empty() ? "" : ", ") + name;
  row("flavors", flavors.empty() ? "(none)" : flavors);
  if (spec->has_python_function()) {
    Result<PyFuncFlavor> f = spec->python_function();
    if (!f.ok()) return Fail(f.status());
    row("loader_module", f->loader_module);
    if (f->python_version) row("python_version", *f->python_version);
    if (f->data) row("data", *f->data);
    if (f->code) row("code", *f->code);
    if (f->conda_env) row("env.conda", *f->conda_env);
    if (f->python_env) row("env.virtualenv", *f->python_env);
    if (f->predict_fn != "predict") row("predict_fn", f->predict_fn);
    if (f->config.truthy()) row("config", ToJson(f->config));
  }
  for (const char* key : {"run_id", "artifact_path", "model_id", "model_uuid", "mlflow_version", "utc_time_created"}) {
    if (auto v = spec->GetString(key)) row(key, *v);
  }
  if (const Value* sig = spec->document().Find("signature"); sig != nullptr && sig->is_map()) {
    for (const auto& [key, v] : sig->as_map()) {
      if (!v.is_null()) row("signature." + key, Describe(v));
    }
  }
  return 0;
}

int Validate(const std::string& model) {
  Result<std::string> local = ResolveModelUri(model);
  if (!local.ok()) return Fail(local.status());
  auto problems = ValidateModel(*local);
  if (!problems.ok()) return Fail(problems.status());
  if (problems->empty()) {
    fmt::print("{}: valid pyfunc model\n", model);
    return 0;
  }
  for (const auto& p : *problems) fmt::print(stderr, "{}: {}: {}\n", model, p.where, p.message);
  fmt::print(stderr, "pyfunc: error: {}: {} problem{} found\n", model, problems->size(),
             problems->size() == 1 ? "" : "s");
  return kUserError;
}

int LoaderSrc(const std::string& model, const std::string& dst) {
  Result<std::string> local = ResolveModelUri(model);
  if (!local.ok()) return Fail(local.status());
  auto src = ModuleLoaderSource(*local, dst);
  if (!src.ok()) return Fail(src.status());
  fmt::print("{}", *src);
  return 0;
}

}  // namespace

void RegisterModelCommands(CLI::App& app, int* exit_code) {
  struct Args {
    std::string model;
    bool json = false;
    std::string dst;
  };
  auto args = std::make_shared<Args>();

  auto* info = app.add_subcommand("info", "Show a model's MLmodel: flavors, loader, environment, signature");
  info->add_option("model", args->model, "Model directory, MLmodel file or model URI (runs:/, models:/, file://)")
      ->required();
  info->add_flag("--json", args->json, "Print the whole MLmodel document as JSON");
  info->callback([args, exit_code] { *exit_code = Info(args->model, args->json); });

  auto* validate = app.add_subcommand("validate", "Check that a model directory is complete and loadable");
  validate->add_option("model", args->model, "Model directory or model URI (runs:/, models:/, file://)")->required();
  validate->callback([args, exit_code] { *exit_code = Validate(args->model); });

  auto* loader_src =
      app.add_subcommand("loader-src", "Print standalone Python source whose load_pyfunc() loads the model from DST");
  loader_src->add_option("model", args->model, "Model directory or model URI (runs:/, models:/, file://)")->required();
  loader_src->add_option("--dst", args->dst, "Where the model will live when the source runs")->required();
  loader_src->callback([args, exit_code] { *exit_code = LoaderSrc(args->model, args->dst); });
}

}  // namespace pyfunc::cli
