#include "pyfunc/signature.h"

#include "pyfunc/json_codec.h"

namespace pyfunc {

InputSchema ReadInputSchema(const ModelSpec& spec) {
  InputSchema out;
  const Value* signature = spec.document().Find("signature");
  if (signature == nullptr || !signature->is_map()) return out;
  const Value* inputs = signature->Find("inputs");
  if (inputs == nullptr || !inputs->is_string()) return out;
  Result<Value> parsed = ParseJsonValue(inputs->as_string());
  if (!parsed.ok() || !parsed->is_list()) return out;
  bool columns = !parsed->as_list().empty();
  for (const Value& col : parsed->as_list()) {
    const Value* type = col.Find("type");
    columns = columns && type != nullptr && type->is_string() && type->as_string() != "tensor";
  }
  for (const Value& col : parsed->as_list()) {
    const Value* name = col.Find("name");
    const Value* type = col.Find("type");
    if (name == nullptr || !name->is_string() || type == nullptr || !type->is_string() ||
        type->as_string() == "tensor") {
      InputSchema unnamed;  // tensor or unnamed signatures: no column checks
      unnamed.columns = columns;
      return unnamed;
    }
    out.all_names.push_back(name->as_string());
    const Value* required = col.Find("required");
    if (required == nullptr || required->truthy()) out.required.push_back(name->as_string());
    // The readers type the columns they can read; MLflow's binary columns (base64 text in
    // a request) stay text here and are decoded by the worker's schema enforcement.
    Result<DataType> t = ParseDataType(type->as_string());
    if (t.ok() && *t != DataType::kBinary) out.typed.emplace_back(name->as_string(), *t);
  }
  out.named = !out.all_names.empty();
  out.columns = columns;
  return out;
}

std::vector<std::string> ReadParamNames(const ModelSpec& spec) {
  std::vector<std::string> out;
  const Value* signature = spec.document().Find("signature");
  const Value* params = signature != nullptr && signature->is_map() ? signature->Find("params") : nullptr;
  if (params == nullptr || !params->is_string()) return out;
  Result<Value> parsed = ParseJsonValue(params->as_string());
  if (!parsed.ok() || !parsed->is_list()) return out;
  for (const Value& p : parsed->as_list()) {
    const Value* name = p.Find("name");
    if (name != nullptr && name->is_string()) out.push_back(name->as_string());
  }
  return out;
}

}  // namespace pyfunc
