// The Open Inference Protocol REST codec (src/server/oip.h).
#include "server/oip.h"

#include <cstdint>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "data/text_format.h"
#include "server/limits.h"

namespace pyfunc::server {
namespace {

using Json = nlohmann::json;

Result<DataType> TypeOfOipDatatype(const std::string& dt) {
  if (dt == "BOOL") return DataType::kBool;
  if (dt == "INT8" || dt == "INT16" || dt == "INT32" || dt == "INT64" || dt == "UINT8" || dt == "UINT16" ||
      dt == "UINT32" || dt == "UINT64")
    return DataType::kInt64;
  if (dt == "FP16" || dt == "FP32" || dt == "FP64") return DataType::kFloat64;
  if (dt == "BYTES") return DataType::kString;
  return Status::InvalidArgument(fmt::format("unsupported datatype '{}'", BoundMessage(dt, 64)));
}

// The leaves of a (nested) data array in row-major order, without recursion; stops
// once more than `limit` leaves are found (the caller refuses that count anyway).
std::vector<const Json*> Leaves(const Json& data, size_t limit) {
  std::vector<const Json*> out;
  if (!data.is_array()) {
    out.push_back(&data);
    return out;
  }
  // Each entry: an array and the index of its next element to visit.
  std::vector<std::pair<const Json*, size_t>> stack = {{&data, 0}};
  while (!stack.empty() && out.size() <= limit) {
    auto& [array, next] = stack.back();
    if (next == array->size()) {
      stack.pop_back();
      continue;
    }
    const Json& e = (*array)[next++];
    if (e.is_array()) {
      stack.emplace_back(&e, 0);
    } else {
      out.push_back(&e);
    }
  }
  return out;
}

Status AppendOipValue(const Json& v, ColumnBuilder* b, const std::string& where) {
  if (v.is_null()) {
    b->AppendNull();
    return Status::OK();
  }
  switch (b->type()) {
    case DataType::kBool:
      if (!v.is_boolean()) break;
      b->AppendBool(v.get<bool>());
      return Status::OK();
    case DataType::kInt64:
      if (v.is_number_unsigned()) {
        if (v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
          return Status::InvalidArgument(fmt::format("{}: {} does not fit a 64-bit integer", where, v.dump()));
        }
        b->AppendInt64(static_cast<int64_t>(v.get<uint64_t>()));
        return Status::OK();
      }
      if (!v.is_number_integer()) break;
      b->AppendInt64(v.get<int64_t>());
      return Status::OK();
    case DataType::kFloat64:
      if (!v.is_number()) break;
      b->AppendFloat64(v.get<double>());
      return Status::OK();
    case DataType::kString:
      if (!v.is_string()) break;
      b->AppendString(v.get_ref<const std::string&>());
      return Status::OK();
    default:  // requests are read into the wide types; the worker narrows them
      break;
  }
  return Status::InvalidArgument(
      fmt::format("{}: expected {} data, found {}", where, DataTypeName(b->type()), v.type_name()));
}

// Nesting is bounded by the parse, so this recursion is too.
Value JsonToValue(const Json& j) {
  switch (j.type()) {
    case Json::value_t::boolean:
      return Value(j.get<bool>());
    case Json::value_t::number_integer:
      return Value(j.get<int64_t>());
    case Json::value_t::number_unsigned:
      if (j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return Value(j.get<double>());
      return Value(j.get<int64_t>());
    case Json::value_t::number_float:
      return Value(j.get<double>());
    case Json::value_t::string:
      return Value(j.get<std::string>());
    case Json::value_t::array: {
      Value::List l;
      for (const auto& e : j) l.push_back(JsonToValue(e));
      return Value(std::move(l));
    }
    case Json::value_t::object: {
      Value::Map m;
      for (const auto& [k, v] : j.items()) m.emplace_back(k, JsonToValue(v));
      return Value(std::move(m));
    }
    default:
      return Value();
  }
}

// A tensor's shape: [N] or [N, K] of non-negative integers whose product is computed
// without overflow.
struct Shape {
  int64_t rows = 0;
  int64_t width = 1;
  size_t values = 0;  // rows * width
};

Result<Shape> ParseShape(const Json& shape, const std::string& where, const OipLimits& limits) {
  if (shape.size() < 1 || shape.size() > 2) return Status::InvalidArgument(where + ": shape must be [N] or [N, K]");
  int64_t dims[2] = {0, 1};
  for (size_t i = 0; i < shape.size(); ++i) {
    const Json& d = shape[i];
    const bool ok = d.is_number_unsigned() ? d.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX)
                                           : d.is_number_integer() && d.get<int64_t>() >= 0;
    if (!ok) return Status::InvalidArgument(fmt::format("{}: shape[{}] is not a size: {}", where, i,
                                                        BoundMessage(d.dump(), 64)));
    dims[i] = d.get<int64_t>();
  }
  Shape s;
  s.rows = dims[0];
  s.width = dims[1];
  if (static_cast<uint64_t>(s.width) > limits.max_columns) {
    return Status::InvalidArgument(fmt::format("{}: shape [{}, {}] has more than {} columns", where, s.rows,
                                               s.width, limits.max_columns));
  }
  int64_t product = 0;
  if (__builtin_mul_overflow(s.rows, s.width, &product)) {
    return Status::InvalidArgument(fmt::format("{}: shape [{}, {}] holds more values than any request can carry",
                                               where, s.rows, s.width));
  }
  s.values = static_cast<size_t>(product);
  return s;
}

// The column's values in row-major order (a tensor cell's values one after another;
// a null row's as nulls).
Json ColumnData(const Column& c) {
  Json data = Json::array();
  const int64_t cell = c.cell_size();
  for (int64_t r = 0; r < c.length(); ++r) {
    for (int64_t i = r * cell; i < (r + 1) * cell; ++i) {
      if (c.IsNull(r)) {
        data.push_back(nullptr);
        continue;
      }
      switch (c.type()) {
        case DataType::kInt64:
        case DataType::kTimestamp:
          data.push_back(c.int64_data()[i]);
          break;
        case DataType::kUInt64:
          data.push_back(c.data_as<uint64_t>()[i]);
          break;
        case DataType::kFloat16:
        case DataType::kFloat32:
        case DataType::kFloat64:
          data.push_back(c.NumberAt(i));  // NaN/inf become null: JSON has no NaN
          break;
        case DataType::kBool:
          data.push_back(c.bool_value(i));
          break;
        case DataType::kString:
          data.push_back(std::string(c.string_value(i)));
          break;
        case DataType::kBinary: {  // BYTES in JSON: base64 text
          std::string text;
          AppendBase64(c.string_value(i), /*mime_lines=*/false, &text);
          data.push_back(std::move(text));
          break;
        }
        default:  // the narrower integers
          data.push_back(static_cast<int64_t>(c.NumberAt(i)));
          break;
      }
    }
  }
  return data;
}

}  // namespace

const char* OipDatatype(DataType t) {
  switch (t) {
    case DataType::kInt64:
    case DataType::kTimestamp:
      return "INT64";
    case DataType::kInt8: return "INT8";
    case DataType::kInt16: return "INT16";
    case DataType::kInt32: return "INT32";
    case DataType::kUInt8: return "UINT8";
    case DataType::kUInt16: return "UINT16";
    case DataType::kUInt32: return "UINT32";
    case DataType::kUInt64: return "UINT64";
    case DataType::kFloat16: return "FP16";
    case DataType::kFloat32: return "FP32";
    case DataType::kFloat64:
      return "FP64";
    case DataType::kBool:
      return "BOOL";
    case DataType::kString:
    case DataType::kBinary:
      return "BYTES";
  }
  return "BYTES";
}

Result<OipRequest> ParseOipRequest(std::string_view body, const OipLimits& limits) {
  // The parser itself keeps its state on the heap; the callback refuses depth beyond
  // the limit so that nothing after it (conversion, destruction) meets deep nesting.
  bool too_deep = false;
  Json::parser_callback_t depth_check = [&too_deep, &limits](int depth, Json::parse_event_t, Json&) {
    if (depth > limits.max_depth) too_deep = true;
    return !too_deep;
  };
  Json j = Json::parse(body.begin(), body.end(), depth_check, /*allow_exceptions=*/false);
  if (too_deep) {
    return Status::InvalidArgument(fmt::format("the body nests arrays or objects deeper than {} levels",
                                               limits.max_depth));
  }
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("the body is not a JSON object");
  OipRequest out;
  if (auto it = j.find("id"); it != j.end() && it->is_string()) out.id = it->get<std::string>();
  if (auto it = j.find("parameters"); it != j.end() && it->is_object()) {
    Value::Map m;
    for (const auto& [k, v] : it->items())
      if (k != "content_type" && k != "headers") m.emplace_back(k, JsonToValue(v));
    if (!m.empty()) out.params = Value(std::move(m));
  }
  auto inputs = j.find("inputs");
  if (inputs == j.end() || !inputs->is_array() || inputs->empty())
    return Status::InvalidArgument("'inputs' must be a non-empty list of tensors");
  if (inputs->size() > limits.max_columns) {
    return Status::InvalidArgument(
        fmt::format("'inputs' holds {} tensors; at most {} are accepted", inputs->size(), limits.max_columns));
  }
  std::vector<std::string> names;
  std::vector<Column> columns;
  for (size_t t = 0; t < inputs->size(); ++t) {
    const Json& in = (*inputs)[t];
    const std::string where = fmt::format("inputs[{}]", t);
    if (!in.is_object() || !in.contains("name") || !in["name"].is_string() || !in.contains("shape") ||
        !in["shape"].is_array() || !in.contains("datatype") || !in["datatype"].is_string() || !in.contains("data"))
      return Status::InvalidArgument(where + ": a tensor needs 'name', 'shape', 'datatype' and 'data'");
    const std::string& name = in["name"].get_ref<const std::string&>();
    PYFUNC_ASSIGN_OR_RETURN(Shape shape, ParseShape(in["shape"], where, limits));
    PYFUNC_ASSIGN_OR_RETURN(DataType type, TypeOfOipDatatype(in["datatype"].get<std::string>()));
    if (shape.width != 1 && inputs->size() != 1)
      return Status::InvalidArgument(where + ": a tensor of shape [N, K] with K > 1 must be the only input");
    const std::vector<const Json*> values = Leaves(in["data"], shape.values);
    if (values.size() != shape.values) {
      return Status::InvalidArgument(fmt::format("{}: shape [{}, {}] holds {} values, data has {}{}", where,
                                                 shape.rows, shape.width, shape.values, values.size(),
                                                 values.size() > shape.values ? " or more" : ""));
    }
    for (int64_t k = 0; k < shape.width; ++k) {
      ColumnBuilder b(type);
      b.Reserve(shape.rows);
      for (int64_t r = 0; r < shape.rows; ++r)
        PYFUNC_RETURN_IF_ERROR(AppendOipValue(*values[r * shape.width + k], &b, where + ".data"));
      names.push_back(shape.width == 1 ? name : std::to_string(k));
      columns.push_back(b.Finish());
    }
  }
  PYFUNC_ASSIGN_OR_RETURN(out.table, Table::Make(std::move(names), std::move(columns)));
  return out;
}

std::string OipResponse(const std::string& model_name, const std::optional<std::string>& id, const Prediction& p) {
  Json out;
  out["model_name"] = model_name;
  if (id) out["id"] = *id;
  Json outputs = Json::array();
  const Table& t = p.table;
  bool same_type = t.num_columns() > 0;
  for (int i = 0; i < t.num_columns(); ++i) {
    same_type = same_type && t.column(i).type() == t.column(0).type() && !t.column(i).is_tensor();
  }
  if (p.shape == PredictionShape::kArray2D && same_type) {
    Json data = Json::array();
    std::vector<Json> cols;
    for (int i = 0; i < t.num_columns(); ++i) cols.push_back(ColumnData(t.column(i)));
    for (int64_t r = 0; r < t.num_rows(); ++r)
      for (int i = 0; i < t.num_columns(); ++i) data.push_back(cols[i][r]);
    outputs.push_back({{"name", "predict"},
                       {"shape", {t.num_rows(), t.num_columns()}},
                       {"datatype", OipDatatype(t.column(0).type())},
                       {"data", std::move(data)}});
  } else {
    for (int i = 0; i < t.num_columns(); ++i) {
      const std::string name = t.column_name(i).empty() ? "predict" : t.column_name(i);
      Json shape = Json::array({t.num_rows()});
      for (int64_t d : t.column(i).cell_shape()) shape.push_back(d);
      outputs.push_back({{"name", name},
                         {"shape", std::move(shape)},
                         {"datatype", OipDatatype(t.column(i).type())},
                         {"data", ColumnData(t.column(i))}});
    }
  }
  out["outputs"] = std::move(outputs);
  return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string OipError(std::string_view message) {
  return Json{{"error", BoundMessage(message)}}.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace pyfunc::server
