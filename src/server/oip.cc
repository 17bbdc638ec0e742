// The Open Inference Protocol REST codec (src/server/oip.h), on the project's JSON reader
// and writer (src/format/json.h).
#include "server/oip.h"

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "data/text_format.h"
#include "format/json.h"
#include "server/limits.h"

namespace pyfunc::server {
namespace {

namespace dom = simdjson::dom;

// The JSON text of an element for an error message, bounded.
std::string Quote(dom::element e) { return BoundMessage(simdjson::to_string(e), 64); }

// The leaves of a (nested) data array in row-major order, without recursion; stops
// once more than `limit` leaves are found (the caller refuses that count anyway).
std::vector<dom::element> Leaves(dom::element data, size_t limit) {
  std::vector<dom::element> out;
  if (!data.is_array()) {
    out.push_back(data);
    return out;
  }
  // Each entry: the position in an array being visited and its end.
  std::vector<std::pair<dom::array::iterator, dom::array::iterator>> stack;
  const dom::array top = data.get_array().value_unsafe();
  stack.emplace_back(top.begin(), top.end());
  while (!stack.empty() && out.size() <= limit) {
    auto& [next, end] = stack.back();
    if (next == end) {
      stack.pop_back();
      continue;
    }
    const dom::element e = *next;
    ++next;
    if (e.is_array()) {
      const dom::array a = e.get_array().value_unsafe();
      stack.emplace_back(a.begin(), a.end());
    } else {
      out.push_back(e);
    }
  }
  return out;
}

Status AppendOipValue(dom::element v, ColumnBuilder* b, const std::string& where) {
  if (v.is_null()) {
    b->AppendNull();
    return Status::OK();
  }
  switch (b->type()) {
    case DataType::kBool:
      if (!v.is_bool()) break;
      b->AppendBool(v.get_bool().value_unsafe());
      return Status::OK();
    case DataType::kInt64:
      if (v.type() == dom::element_type::UINT64) {  // simdjson's type of integers beyond int64
        return Status::InvalidArgument(fmt::format("{}: {} does not fit a 64-bit integer", where, Quote(v)));
      }
      if (!v.is_int64()) break;
      b->AppendInt64(v.get_int64().value_unsafe());
      return Status::OK();
    case DataType::kFloat64:
      if (v.is_number()) {
        b->AppendFloat64(v.get_double().value_unsafe());
        return Status::OK();
      }
      if (v.is_string()) {  // Python's NaN / Infinity literals
        const json::Special special = json::SpecialOf(v.get_string().value_unsafe());
        if (special == json::Special::kNone) break;
        b->AppendFloat64(special == json::Special::kNaN   ? std::nan("")
                         : special == json::Special::kInf ? HUGE_VAL
                                                          : -HUGE_VAL);
        return Status::OK();
      }
      break;
    case DataType::kString:
      if (!v.is_string() || json::SpecialOf(v.get_string().value_unsafe()) != json::Special::kNone) break;
      b->AppendString(json::StringOf(v));
      return Status::OK();
    default:  // requests are read into the wide types; the worker narrows them
      break;
  }
  return Status::InvalidArgument(
      fmt::format("{}: expected {} data, found {}", where, DataTypeName(b->type()), json::PyTypeName(v)));
}

// Appends element i of the column's values (a tensor cell's values one after another; a
// null row's as nulls). NaN and infinities are null: the protocol's JSON has no NaN.
void AppendOipData(const Column& c, int64_t row, int64_t i, std::string* out) {
  if (c.IsNull(row)) {
    out->append("null");
    return;
  }
  switch (c.type()) {
    case DataType::kInt64:
    case DataType::kTimestamp: AppendInt64(c.int64_data()[i], out); return;
    case DataType::kUInt64: AppendUInt64(c.data_as<uint64_t>()[i], out); return;
    case DataType::kFloat16:
    case DataType::kFloat32:
    case DataType::kFloat64: {
      const double v = c.NumberAt(i);
      if (std::isfinite(v)) {
        AppendPythonFloat(v, out);
      } else {
        out->append("null");
      }
      return;
    }
    case DataType::kBool: out->append(c.bool_value(i) ? "true" : "false"); return;
    case DataType::kString: json::AppendString(c.string_value(i), out); return;
    case DataType::kBinary: {  // BYTES in JSON: base64 text
      std::string text;
      AppendBase64(c.string_value(i), /*mime_lines=*/false, &text);
      json::AppendString(text, out);
      return;
    }
    default:  // the narrower integers
      AppendInt64(static_cast<int64_t>(c.NumberAt(i)), out);
      return;
  }
}

// One output tensor: {"name": ..., "shape": [...], "datatype": ..., "data": [...]}, the
// data written by `data`.
template <typename WriteData>
void AppendTensor(std::string_view name, const std::vector<int64_t>& shape, DataType type, std::string* out,
                  WriteData&& data) {
  out->append("{\"name\": ");
  json::AppendString(name, out);
  out->append(", \"shape\": [");
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out->append(", ");
    AppendInt64(shape[i], out);
  }
  out->append("], \"datatype\": \"");
  out->append(OipDatatype(type));
  out->append("\", \"data\": [");
  data(out);
  out->append("]}");
}

}  // namespace

const char* OipDatatype(DataType t) {
  switch (t) {
    case DataType::kInt64:
    case DataType::kTimestamp: return "INT64";
    case DataType::kInt8: return "INT8";
    case DataType::kInt16: return "INT16";
    case DataType::kInt32: return "INT32";
    case DataType::kUInt8: return "UINT8";
    case DataType::kUInt16: return "UINT16";
    case DataType::kUInt32: return "UINT32";
    case DataType::kUInt64: return "UINT64";
    case DataType::kFloat16: return "FP16";
    case DataType::kFloat32: return "FP32";
    case DataType::kFloat64: return "FP64";
    case DataType::kBool: return "BOOL";
    case DataType::kString:
    case DataType::kBinary: return "BYTES";
  }
  return "BYTES";
}

Result<DataType> OipColumnType(std::string_view dt) {
  if (dt == "BOOL") return DataType::kBool;
  if (dt == "INT8" || dt == "INT16" || dt == "INT32" || dt == "INT64" || dt == "UINT8" || dt == "UINT16" ||
      dt == "UINT32" || dt == "UINT64")
    return DataType::kInt64;
  if (dt == "FP16" || dt == "FP32" || dt == "FP64") return DataType::kFloat64;
  if (dt == "BYTES") return DataType::kString;
  return Status::InvalidArgument(fmt::format("unsupported datatype '{}'", BoundMessage(dt, 64)));
}

Status CheckOipInputCount(size_t num_inputs, const OipLimits& limits) {
  if (num_inputs == 0) return Status::InvalidArgument("'inputs' must be a non-empty list of tensors");
  if (num_inputs > limits.max_columns) {
    return Status::InvalidArgument(
        fmt::format("'inputs' holds {} tensors; at most {} are accepted", num_inputs, limits.max_columns));
  }
  return Status::OK();
}

Result<OipInput> ReadOipInput(size_t index, std::string_view name, std::string_view datatype, const int64_t* shape,
                              size_t rank, size_t num_inputs, const OipLimits& limits) {
  OipInput in;
  in.where = fmt::format("inputs[{}] '{}'", index, BoundMessage(name, 64));
  in.name = std::string(name);
  if (rank < 1 || rank > 2) return Status::InvalidArgument(in.where + ": shape must be [N] or [N, K]");
  for (size_t i = 0; i < rank; ++i) {
    if (shape[i] < 0)
      return Status::InvalidArgument(fmt::format("{}: shape[{}] is not a size: {}", in.where, i, shape[i]));
  }
  in.rows = shape[0];
  in.width = rank == 2 ? shape[1] : 1;
  if (static_cast<uint64_t>(in.width) > limits.max_columns) {
    return Status::InvalidArgument(
        fmt::format("{}: shape [{}, {}] has more than {} columns", in.where, in.rows, in.width, limits.max_columns));
  }
  int64_t product = 0;
  if (__builtin_mul_overflow(in.rows, in.width, &product)) {
    return Status::InvalidArgument(
        fmt::format("{}: shape [{}, {}] holds more values than any request can carry", in.where, in.rows, in.width));
  }
  in.values = static_cast<size_t>(product);
  Result<DataType> type = OipColumnType(datatype);
  if (!type.ok()) return Status::InvalidArgument(in.where + ": " + type.status().message());
  in.type = *type;
  if (in.width != 1 && num_inputs != 1)
    return Status::InvalidArgument(in.where + ": a tensor of shape [N, K] with K > 1 must be the only input");
  return in;
}

Status CheckOipValueCount(const OipInput& in, size_t found, bool more) {
  if (found == in.values && !more) return Status::OK();
  return Status::InvalidArgument(fmt::format("{}: shape [{}, {}] holds {} values, data has {}{}", in.where, in.rows,
                                             in.width, in.values, found, more ? " or more" : ""));
}

bool IsOipProtocolParameter(std::string_view key) { return key == "content_type" || key == "headers"; }

std::vector<OipOutput> OipOutputs(const Prediction& p) {
  const Table& t = p.table;
  bool same_type = t.num_columns() > 0;
  for (int i = 0; i < t.num_columns(); ++i) {
    same_type = same_type && t.column(i).type() == t.column(0).type() && !t.column(i).is_tensor();
  }
  std::vector<OipOutput> out;
  if (p.shape == PredictionShape::kArray2D && same_type) {
    out.push_back({"predict", {t.num_rows(), t.num_columns()}, t.column(0).type(), -1});
    return out;
  }
  for (int i = 0; i < t.num_columns(); ++i) {
    const Column& c = t.column(i);
    OipOutput o{t.column_name(i).empty() ? "predict" : t.column_name(i), {t.num_rows()}, c.type(), i};
    for (int64_t d : c.cell_shape()) o.shape.push_back(d);
    out.push_back(std::move(o));
  }
  return out;
}

std::vector<OipTensorMetadata> OipModelInputs(const Schema& typed) {
  std::vector<OipTensorMetadata> out;
  for (const auto& [col, type] : typed) out.push_back({col, OipDatatype(type), {-1}});
  return out;
}

Result<OipRequest> ParseOipRequest(std::string_view body, const OipLimits& limits) {
  // simdjson parses without recursion and refuses nesting beyond the document's depth
  // limit, so nothing after it (conversion, destruction) meets deep nesting.
  json::Document doc(static_cast<size_t>(limits.max_depth));
  if (Status st = doc.Parse(body); !st.ok()) {
    if (doc.too_deep()) {
      return Status::InvalidArgument(
          fmt::format("the body nests arrays or objects deeper than {} levels", limits.max_depth));
    }
    return Status::InvalidArgument("the body is not a JSON object");
  }
  dom::object j;
  if (doc.root().get_object().get(j)) return Status::InvalidArgument("the body is not a JSON object");
  OipRequest out;
  if (dom::element id; !j["id"].get(id) && id.is_string()) out.id = std::string(json::StringOf(id));
  if (dom::object parameters; !j["parameters"].get(parameters)) {
    Value::Map m;
    for (dom::key_value_pair kv : parameters) {
      const std::string_view key = json::ClientText(kv.key);
      if (IsOipProtocolParameter(key)) continue;
      PYFUNC_ASSIGN_OR_RETURN(Value v, json::ToValue(kv.value, "parameters"));
      m.emplace_back(std::string(key), std::move(v));
    }
    if (!m.empty()) out.params = Value(std::move(m));
  }
  dom::array inputs;
  if (j["inputs"].get(inputs)) return Status::InvalidArgument("'inputs' must be a non-empty list of tensors");
  const size_t num_inputs = inputs.size();
  PYFUNC_RETURN_IF_ERROR(CheckOipInputCount(num_inputs, limits));
  OipColumns columns;
  size_t t = 0;
  for (dom::element in : inputs) {
    const size_t index = t++;
    dom::object tensor;
    dom::element name, shape_array, datatype, data;
    if (in.get_object().get(tensor) || tensor["name"].get(name) || !name.is_string() ||
        tensor["shape"].get(shape_array) || !shape_array.is_array() || tensor["datatype"].get(datatype) ||
        !datatype.is_string() || tensor["data"].get(data))
      return Status::InvalidArgument(
          fmt::format("inputs[{}]: a tensor needs 'name', 'shape', 'datatype' and 'data'", index));
    // The shape's JSON: at most two sizes (read as int64; the rules check the rest).
    const dom::array shape_json = shape_array.get_array().value_unsafe();
    int64_t dims[2] = {0, 0};
    const size_t rank = shape_json.size();
    if (rank <= 2) {
      size_t i = 0;
      for (dom::element d : shape_json) {
        if (!d.is_int64() || d.get_int64().value_unsafe() < 0) {
          return Status::InvalidArgument(fmt::format("inputs[{}]: shape[{}] is not a size: {}", index, i, Quote(d)));
        }
        dims[i++] = d.get_int64().value_unsafe();
      }
    }
    PYFUNC_ASSIGN_OR_RETURN(OipInput input, ReadOipInput(index, json::StringOf(name), json::StringOf(datatype), dims,
                                                         rank, num_inputs, limits));
    const std::vector<dom::element> values = Leaves(data, input.values);
    PYFUNC_RETURN_IF_ERROR(CheckOipValueCount(input, values.size(), values.size() > input.values));
    const std::string where = input.where + ".data";
    PYFUNC_RETURN_IF_ERROR(AppendOipColumns(
        input, [&](size_t i, ColumnBuilder* b) { return AppendOipValue(values[i], b, where); }, &columns));
  }
  PYFUNC_ASSIGN_OR_RETURN(out.table, Table::Make(std::move(columns.names), std::move(columns.columns)));
  return out;
}

std::string OipResponse(const std::string& model_name, const std::optional<std::string>& id, const Prediction& p) {
  std::string out = "{\"model_name\": ";
  json::AppendString(model_name, &out);
  if (id) {
    out.append(", \"id\": ");
    json::AppendString(*id, &out);
  }
  out.append(", \"outputs\": [");
  bool first_output = true;
  for (const OipOutput& o : OipOutputs(p)) {
    if (!first_output) out.append(", ");
    first_output = false;
    AppendTensor(o.name, o.shape, o.type, &out, [&](std::string* text) {
      bool first = true;
      ForEachOipElement(p.table, o, [&](const Column& c, int64_t row, int64_t index) {
        if (!first) text->append(", ");
        first = false;
        AppendOipData(c, row, index, text);
      });
    });
  }
  out.append("]}");
  return out;
}

}  // namespace pyfunc::server
