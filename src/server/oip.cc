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

Result<DataType> TypeOfOipDatatype(std::string_view dt) {
  if (dt == "BOOL") return DataType::kBool;
  if (dt == "INT8" || dt == "INT16" || dt == "INT32" || dt == "INT64" || dt == "UINT8" || dt == "UINT16" ||
      dt == "UINT32" || dt == "UINT64")
    return DataType::kInt64;
  if (dt == "FP16" || dt == "FP32" || dt == "FP64") return DataType::kFloat64;
  if (dt == "BYTES") return DataType::kString;
  return Status::InvalidArgument(fmt::format("unsupported datatype '{}'", BoundMessage(dt, 64)));
}

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

// A tensor's shape: [N] or [N, K] of non-negative integers whose product is computed
// without overflow.
struct Shape {
  int64_t rows = 0;
  int64_t width = 1;
  size_t values = 0;  // rows * width
};

Result<Shape> ParseShape(dom::array shape, const std::string& where, const OipLimits& limits) {
  if (shape.size() < 1 || shape.size() > 2) return Status::InvalidArgument(where + ": shape must be [N] or [N, K]");
  int64_t dims[2] = {0, 1};
  size_t i = 0;
  for (dom::element d : shape) {
    if (!d.is_int64() || d.get_int64().value_unsafe() < 0) {
      return Status::InvalidArgument(fmt::format("{}: shape[{}] is not a size: {}", where, i, Quote(d)));
    }
    dims[i++] = d.get_int64().value_unsafe();
  }
  Shape s;
  s.rows = dims[0];
  s.width = dims[1];
  if (static_cast<uint64_t>(s.width) > limits.max_columns) {
    return Status::InvalidArgument(
        fmt::format("{}: shape [{}, {}] has more than {} columns", where, s.rows, s.width, limits.max_columns));
  }
  int64_t product = 0;
  if (__builtin_mul_overflow(s.rows, s.width, &product)) {
    return Status::InvalidArgument(
        fmt::format("{}: shape [{}, {}] holds more values than any request can carry", where, s.rows, s.width));
  }
  s.values = static_cast<size_t>(product);
  return s;
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
      if (key == "content_type" || key == "headers") continue;
      PYFUNC_ASSIGN_OR_RETURN(Value v, json::ToValue(kv.value, "parameters"));
      m.emplace_back(std::string(key), std::move(v));
    }
    if (!m.empty()) out.params = Value(std::move(m));
  }
  dom::array inputs;
  if (j["inputs"].get(inputs) || inputs.size() == 0)
    return Status::InvalidArgument("'inputs' must be a non-empty list of tensors");
  const size_t num_inputs = inputs.size();
  if (num_inputs > limits.max_columns) {
    return Status::InvalidArgument(
        fmt::format("'inputs' holds {} tensors; at most {} are accepted", num_inputs, limits.max_columns));
  }
  std::vector<std::string> names;
  std::vector<Column> columns;
  size_t t = 0;
  for (dom::element in : inputs) {
    const std::string where = fmt::format("inputs[{}]", t++);
    dom::object tensor;
    dom::element name, shape_array, datatype, data;
    if (in.get_object().get(tensor) || tensor["name"].get(name) || !name.is_string() ||
        tensor["shape"].get(shape_array) || !shape_array.is_array() || tensor["datatype"].get(datatype) ||
        !datatype.is_string() || tensor["data"].get(data))
      return Status::InvalidArgument(where + ": a tensor needs 'name', 'shape', 'datatype' and 'data'");
    PYFUNC_ASSIGN_OR_RETURN(Shape shape, ParseShape(shape_array.get_array().value_unsafe(), where, limits));
    PYFUNC_ASSIGN_OR_RETURN(DataType type, TypeOfOipDatatype(json::StringOf(datatype)));
    if (shape.width != 1 && num_inputs != 1)
      return Status::InvalidArgument(where + ": a tensor of shape [N, K] with K > 1 must be the only input");
    const std::vector<dom::element> values = Leaves(data, shape.values);
    if (values.size() != shape.values) {
      return Status::InvalidArgument(fmt::format("{}: shape [{}, {}] holds {} values, data has {}{}", where, shape.rows,
                                                 shape.width, shape.values, values.size(),
                                                 values.size() > shape.values ? " or more" : ""));
    }
    for (int64_t k = 0; k < shape.width; ++k) {
      ColumnBuilder b(type);
      b.Reserve(shape.rows);
      for (int64_t r = 0; r < shape.rows; ++r)
        PYFUNC_RETURN_IF_ERROR(AppendOipValue(values[r * shape.width + k], &b, where + ".data"));
      names.push_back(shape.width == 1 ? std::string(json::StringOf(name)) : std::to_string(k));
      columns.push_back(b.Finish());
    }
  }
  PYFUNC_ASSIGN_OR_RETURN(out.table, Table::Make(std::move(names), std::move(columns)));
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
  const Table& t = p.table;
  bool same_type = t.num_columns() > 0;
  for (int i = 0; i < t.num_columns(); ++i) {
    same_type = same_type && t.column(i).type() == t.column(0).type() && !t.column(i).is_tensor();
  }
  if (p.shape == PredictionShape::kArray2D && same_type) {
    AppendTensor("predict", {t.num_rows(), t.num_columns()}, t.column(0).type(), &out, [&](std::string* o) {
      for (int64_t r = 0; r < t.num_rows(); ++r) {
        for (int i = 0; i < t.num_columns(); ++i) {
          if (r || i) o->append(", ");
          AppendOipData(t.column(i), r, r, o);
        }
      }
    });
  } else {
    for (int i = 0; i < t.num_columns(); ++i) {
      const Column& c = t.column(i);
      std::vector<int64_t> shape = {t.num_rows()};
      for (int64_t d : c.cell_shape()) shape.push_back(d);
      if (i) out.append(", ");
      AppendTensor(t.column_name(i).empty() ? "predict" : t.column_name(i), shape, c.type(), &out, [&](std::string* o) {
        const int64_t cell = c.cell_size();
        for (int64_t r = 0; r < c.length(); ++r) {
          for (int64_t k = r * cell; k < (r + 1) * cell; ++k) {
            if (k) o->append(", ");
            AppendOipData(c, r, k, o);
          }
        }
      });
    }
  }
  out.append("]}");
  return out;
}

}  // namespace pyfunc::server
