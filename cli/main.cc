// The `pyfunc` command-line tool: thin commands over libpyfunc.
//
// Exit status: 0 on success, 1 on a user error (bad model, missing file) with a
// one-line message on stderr, 2 on bad usage (unknown option, missing argument).
#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "pyfunc/model_dir.h"
#include "pyfunc/model_spec.h"
#include "pyfunc/version.h"

namespace {

constexpr int kUserError = 1;
constexpr int kUsageError = 2;

int Fail(const pyfunc::Status& status) {
  std::string msg = status.message();
  for (char& c : msg)
    if (c == '\n') c = ' ';
  fmt::print(stderr, "pyfunc: error: {}\n", msg);
  return kUserError;
}

std::string Describe(const pyfunc::Value& v) {
  if (v.is_string() || v.is_timestamp()) return v.as_string();
  return pyfunc::ToJson(v);
}

int Info(const std::string& model, bool json) {
  pyfunc::Result<pyfunc::ModelSpec> spec = pyfunc::ModelSpec::Load(model);
  if (!spec.ok()) return Fail(spec.status());
  if (json) {
    fmt::print("{}\n", pyfunc::ToJson(spec->document(), 2));
    return 0;
  }
  auto row = [](const std::string& key, const std::string& value) { fmt::print("{:<20}{}\n", key + ":", value); };
  row("model", model);
  std::string flavors;
  for (const std::string& name : spec->flavor_names()) flavors += (flavors.empty() ? "" : ", ") + name;
  row("flavors", flavors.empty() ? "(none)" : flavors);
  if (spec->has_python_function()) {
    pyfunc::Result<pyfunc::PyFuncFlavor> f = spec->python_function();
    if (!f.ok()) return Fail(f.status());
    row("loader_module", f->loader_module);
    if (f->python_version) row("python_version", *f->python_version);
    if (f->data) row("data", *f->data);
    if (f->code) row("code", *f->code);
    if (f->conda_env) row("env.conda", *f->conda_env);
    if (f->python_env) row("env.virtualenv", *f->python_env);
    if (f->predict_fn != "predict") row("predict_fn", f->predict_fn);
    if (f->config.truthy()) row("config", pyfunc::ToJson(f->config));
  }
  for (const char* key : {"run_id", "artifact_path", "model_id", "model_uuid", "mlflow_version", "utc_time_created"}) {
    if (auto v = spec->GetString(key)) row(key, *v);
  }
  if (const pyfunc::Value* sig = spec->document().Find("signature"); sig != nullptr && sig->is_map()) {
    for (const auto& [key, v] : sig->as_map()) {
      if (!v.is_null()) row("signature." + key, Describe(v));
    }
  }
  return 0;
}

int Validate(const std::string& model) {
  auto problems = pyfunc::ValidateModel(model);
  if (!problems.ok()) return Fail(problems.status());
  if (problems->empty()) {
    fmt::print("{}: valid pyfunc model\n", model);
    return 0;
  }
  for (const auto& p : *problems) fmt::print(stderr, "{}: {}: {}\n", model, p.where, p.message);
  fmt::print(stderr, "pyfunc: error: {}: {} problem{} found\n", model, problems->size(), problems->size() == 1 ? "" : "s");
  return kUserError;
}

int LoaderSrc(const std::string& model, const std::string& dst) {
  auto src = pyfunc::ModuleLoaderSource(model, dst);
  if (!src.ok()) return Fail(src.status());
  fmt::print("{}", *src);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pyfunc: load, check and score pyfunc (MLflow python_function) models", "pyfunc"};
  app.set_version_flag("--version", std::string("pyfunc ") + PYFUNC_VERSION);
  app.require_subcommand(1);

  std::string model;
  bool json = false;
  auto* info = app.add_subcommand("info", "Show a model's MLmodel: flavors, loader, environment, signature");
  info->add_option("model", model, "Model directory or MLmodel file")->required();
  info->add_flag("--json", json, "Print the whole MLmodel document as JSON");

  auto* validate = app.add_subcommand("validate", "Check that a model directory is complete and loadable");
  validate->add_option("model", model, "Model directory")->required();

  std::string dst;
  auto* loader_src = app.add_subcommand(
      "loader-src", "Print standalone Python source whose load_pyfunc() loads the model from DST");
  loader_src->add_option("model", model, "Model directory")->required();
  loader_src->add_option("--dst", dst, "Where the model will live when the source runs")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion&) {
    fmt::print("pyfunc {}\n", PYFUNC_VERSION);
    return 0;
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "pyfunc: usage error: {}\nRun 'pyfunc --help' for usage.\n", e.what());
    return kUsageError;
  }

  if (info->parsed()) return Info(model, json);
  if (validate->parsed()) return Validate(model);
  if (loader_src->parsed()) return LoaderSrc(model, dst);
  return kUsageError;
}
