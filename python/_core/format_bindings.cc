// Bindings of the format layer: MLmodel documents, YAML, model directories.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "convert.h"
#include "pyfunc/model_dir.h"
#include "pyfunc/model_spec.h"
#include "pyfunc/yaml.h"

namespace pyfunc::python {
namespace {

ModelSpec SpecFromDict(nb::handle doc, const std::string& source) {
  if (doc.is_none()) return ModelSpec::New();
  return Unwrap(ModelSpec::FromValue(ToValue(doc, "model"), source));
}

nb::dict SaveModelPy(const std::string& dst_path, const std::string& loader_module,
                     std::optional<std::string> data_path, std::vector<std::string> code_paths, nb::handle conda_env,
                     std::vector<std::string> pip_requirements, const std::string& python_version,
                     std::vector<std::string> build_dependencies, nb::handle extra_flavor_keys, nb::handle model) {
  SaveModelOptions options;
  options.loader_module = loader_module;
  options.data_path = std::move(data_path);
  options.code_paths = std::move(code_paths);
  if (PyUnicode_Check(conda_env.ptr())) {
    options.conda_env_path = nb::cast<std::string>(conda_env);
  } else if (!conda_env.is_none()) {
    options.conda_env = ToValue(conda_env, "conda_env");
    if (!options.conda_env.is_map()) throw nb::type_error("conda_env must be a path or a dict");
  }
  options.pip_requirements = std::move(pip_requirements);
  options.python_version = python_version;
  options.build_dependencies = std::move(build_dependencies);
  if (!extra_flavor_keys.is_none()) options.extra_flavor_keys = ToValue(extra_flavor_keys, "kwargs").as_map();
  ModelSpec spec = SpecFromDict(model, "model");
  Result<ModelSpec> saved = [&] {
    nb::gil_scoped_release release;
    return SaveModel(dst_path, options, std::move(spec));
  }();
  return nb::borrow<nb::dict>(FromValue(Unwrap(std::move(saved)).document()));
}

}  // namespace

void BindFormat(nb::module_& m) {
  m.def(
      "read_model",
      [](const std::string& path) {
        Result<ModelSpec> spec = [&] {
          nb::gil_scoped_release release;
          return ModelSpec::Load(path);
        }();
        return FromValue(Unwrap(std::move(spec)).document());
      },
      nb::arg("path"),
      "Reads a model directory's MLmodel (or an MLmodel file) into a dict; the seed's flat "
      "form is returned with its python_function flavor under 'flavors'.");
  m.def(
      "parse_model",
      [](const std::string& text, const std::string& source) {
        return FromValue(Unwrap(ModelSpec::Parse(text, source)).document());
      },
      nb::arg("text"), nb::arg("source") = "MLmodel", "Parses and validates MLmodel text.");
  m.def(
      "model_to_yaml", [](nb::handle doc) { return SpecFromDict(doc, "model").ToYaml(); }, nb::arg("model"),
      "Validates an MLmodel dict and returns its YAML as MLflow writes it.");
  m.def(
      "python_function_conf",
      [](nb::handle doc) {
        ModelSpec spec = SpecFromDict(doc, "model");
        PyFuncFlavor f = Unwrap(spec.python_function());
        nb::dict out = nb::borrow<nb::dict>(FromValue(*spec.flavor(kPyFuncFlavor)));
        out["loader_module"] = f.loader_module;  // filled in when only implied
        return out;
      },
      nb::arg("model"), "The validated python_function flavor of an MLmodel dict; error if it has none.");
  m.def(
      "new_model", [] { return FromValue(ModelSpec::New().document()); },
      "A new MLmodel dict: empty flavors, a fresh model_uuid and utc_time_created.");
  m.def(
      "parse_yaml",
      [](const std::string& text, const std::string& source) { return FromValue(Unwrap(ParseYaml(text, source))); },
      nb::arg("text"), nb::arg("source") = "<string>", "yaml.safe_load with PyYAML's typing rules.");
  m.def(
      "dump_yaml",
      [](nb::handle obj, bool sort_keys) {
        DumpYamlOptions options;
        options.sort_keys = sort_keys;
        return DumpYaml(ToValue(obj, "value"), options);
      },
      nb::arg("obj").none(), nb::arg("sort_keys") = true,
      "yaml.safe_dump(obj, default_flow_style=False), byte for byte.");
  m.def("save_model", &SaveModelPy, nb::arg("dst_path"), nb::arg("loader_module"),
        nb::arg("data_path").none() = nb::none(), nb::arg("code_paths") = std::vector<std::string>{},
        nb::arg("conda_env").none() = nb::none(), nb::arg("pip_requirements") = std::vector<std::string>{},
        nb::arg("python_version") = "",
        nb::arg("build_dependencies") = std::vector<std::string>{"pip", "setuptools", "wheel"},
        nb::arg("extra_flavor_keys").none() = nb::none(), nb::arg("model").none() = nb::none(),
        "Saves a pyfunc model directory atomically; returns the MLmodel dict.");
  m.def(
      "add_to_model",
      [](nb::handle model, const std::string& loader_module, const std::string& data, const std::string& code,
         nb::handle env, const std::string& python_version, nb::handle extra) {
        ModelSpec spec = SpecFromDict(model, "model");
        Value::Map extra_map;
        if (!extra.is_none()) extra_map = ToValue(extra, "kwargs").as_map();
        Check(AddToModel(spec, loader_module, data, code, ToValue(env, "env"), python_version, extra_map));
        return FromValue(spec.document());
      },
      nb::arg("model").none(), nb::arg("loader_module"), nb::arg("data") = "", nb::arg("code") = "",
      nb::arg("env").none() = nb::none(), nb::arg("python_version") = "", nb::arg("extra").none() = nb::none(),
      "Adds the python_function flavor to an MLmodel dict and returns the new dict.");
  m.def(
      "validate_model",
      [](const std::string& path) {
        std::vector<std::pair<std::string, std::string>> out;
        for (const auto& p : Unwrap(ValidateModel(path))) out.emplace_back(p.where, p.message);
        return out;
      },
      nb::arg("path"), "Problems of a model directory as (where, message) pairs; empty when valid.");
  m.def(
      "module_loader_src",
      [](const std::string& src_path, const std::string& dst_path) {
        return Unwrap(ModuleLoaderSource(src_path, dst_path));
      },
      nb::arg("src_path"), nb::arg("dst_path"), "Standalone loader source (get_module_loader_src).");
}

}  // namespace pyfunc::python
