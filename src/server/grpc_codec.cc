// The Open Inference Protocol's gRPC codec (src/server/grpc_codec.h).
#include "server/grpc_codec.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "server/limits.h"

namespace pyfunc::server {
namespace {

static_assert(std::endian::native == std::endian::little, "raw tensor contents are little-endian");

// The fields of InferTensorContents, in field order.
enum Field { kBool = 0, kInt, kInt64, kUint, kUint64, kFp32, kFp64, kBytes, kNumFields, kRawOnly = kNumFields };
constexpr const char* kFieldNames[kNumFields] = {"bool_contents", "int_contents",    "int64_contents",
                                                 "uint_contents", "uint64_contents", "fp32_contents",
                                                 "fp64_contents", "bytes_contents"};

// Where a datatype's elements go: its typed field, and its width in raw contents (0 for
// BYTES, whose elements carry their lengths).
struct Layout {
  Field field;
  int width;
  bool is_signed;  // of the integers
};

// A datatype OipColumnType accepted.
Layout LayoutOf(std::string_view dt) {
  if (dt == "BOOL") return {kBool, 1, false};
  if (dt == "INT8") return {kInt, 1, true};
  if (dt == "INT16") return {kInt, 2, true};
  if (dt == "INT32") return {kInt, 4, true};
  if (dt == "INT64") return {kInt64, 8, true};
  if (dt == "UINT8") return {kUint, 1, false};
  if (dt == "UINT16") return {kUint, 2, false};
  if (dt == "UINT32") return {kUint, 4, false};
  if (dt == "UINT64") return {kUint64, 8, false};
  if (dt == "FP16") return {kRawOnly, 2, false};
  if (dt == "FP32") return {kFp32, 4, false};
  if (dt == "FP64") return {kFp64, 8, false};
  return {kBytes, 0, false};  // BYTES
}

int FieldSize(const inference::InferTensorContents& c, int f) {
  switch (f) {
    case kBool: return c.bool_contents_size();
    case kInt: return c.int_contents_size();
    case kInt64: return c.int64_contents_size();
    case kUint: return c.uint_contents_size();
    case kUint64: return c.uint64_contents_size();
    case kFp32: return c.fp32_contents_size();
    case kFp64: return c.fp64_contents_size();
    default: return c.bytes_contents_size();
  }
}

Status AppendUInt64(const OipInput& in, uint64_t v, ColumnBuilder* b) {
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument(fmt::format("{}: {} does not fit a 64-bit integer", in.where, v));
  }
  b->AppendInt64(static_cast<int64_t>(v));
  return Status::OK();
}

Status ReadTyped(const OipInput& in, std::string_view datatype, const inference::InferTensorContents& c,
                 OipColumns* out) {
  const Layout layout = LayoutOf(datatype);
  for (int f = 0; f < kNumFields; ++f) {
    if (f == layout.field || FieldSize(c, f) == 0) continue;
    return Status::InvalidArgument(
        fmt::format("{}: {} elements go in {}; the tensor has {}", in.where, BoundMessage(datatype, 64),
                    layout.field == kRawOnly ? "raw_input_contents" : kFieldNames[layout.field], kFieldNames[f]));
  }
  if (layout.field == kRawOnly && in.values > 0) {
    return Status::InvalidArgument(
        fmt::format("{}: {} has no typed contents; its elements go in raw_input_contents", in.where, datatype));
  }
  const size_t found = layout.field == kRawOnly ? 0 : static_cast<size_t>(FieldSize(c, layout.field));
  PYFUNC_RETURN_IF_ERROR(CheckOipValueCount(in, found));
  // Appends element i with `append_one(i, builder)`, which cannot fail.
  const auto each = [&](auto&& append_one) {
    return AppendOipColumns(
        in,
        [&](size_t i, ColumnBuilder* b) {
          append_one(static_cast<int>(i), b);
          return Status::OK();
        },
        out);
  };
  switch (layout.field) {
    case kBool: return each([&](int i, ColumnBuilder* b) { b->AppendBool(c.bool_contents(i)); });
    case kInt: return each([&](int i, ColumnBuilder* b) { b->AppendInt64(c.int_contents(i)); });
    case kInt64: return each([&](int i, ColumnBuilder* b) { b->AppendInt64(c.int64_contents(i)); });
    case kUint: return each([&](int i, ColumnBuilder* b) { b->AppendInt64(c.uint_contents(i)); });
    case kUint64:
      return AppendOipColumns(
          in, [&](size_t i, ColumnBuilder* b) { return AppendUInt64(in, c.uint64_contents(static_cast<int>(i)), b); },
          out);
    case kFp32: return each([&](int i, ColumnBuilder* b) { b->AppendFloat64(c.fp32_contents(i)); });
    case kFp64: return each([&](int i, ColumnBuilder* b) { b->AppendFloat64(c.fp64_contents(i)); });
    case kBytes: return each([&](int i, ColumnBuilder* b) { b->AppendString(c.bytes_contents(i)); });
    default: return each([](int, ColumnBuilder*) {});  // FP16 with no elements: an empty column
  }
}

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// The elements of a BYTES tensor's raw contents: each a 4-byte little-endian length and
// that many bytes, exactly `in.values` of them filling `raw`.
Result<std::vector<std::string_view>> SplitRawBytes(const OipInput& in, std::string_view raw) {
  std::vector<std::string_view> out;
  // Each element takes at least 4 bytes: a count the shape asks for beyond that is
  // refused before anything is reserved for it.
  if (in.values > raw.size() / 4) {
    return Status::InvalidArgument(
        fmt::format("{}: shape [{}, {}] holds {} BYTES elements; raw contents of {} bytes "
                    "hold at most {}",
                    in.where, in.rows, in.width, in.values, raw.size(), raw.size() / 4));
  }
  out.reserve(in.values);
  size_t pos = 0;
  while (pos < raw.size()) {
    if (raw.size() - pos < 4) {
      return Status::InvalidArgument(
          fmt::format("{}: raw contents end inside the length of BYTES element {} ({} bytes left)", in.where,
                      out.size(), raw.size() - pos));
    }
    const uint32_t length = Load<uint32_t>(raw.data() + pos);
    pos += 4;
    if (length > raw.size() - pos) {
      return Status::InvalidArgument(
          fmt::format("{}: BYTES element {} of {} bytes runs past the raw contents' end "
                      "({} bytes left)",
                      in.where, out.size(), length, raw.size() - pos));
    }
    if (out.size() == in.values) {
      return Status::InvalidArgument(fmt::format("{}: shape [{}, {}] holds {} values, raw contents have more", in.where,
                                                 in.rows, in.width, in.values));
    }
    out.push_back(raw.substr(pos, length));
    pos += length;
  }
  PYFUNC_RETURN_IF_ERROR(CheckOipValueCount(in, out.size()));
  return out;
}

Status ReadRaw(const OipInput& in, std::string_view datatype, std::string_view raw, OipColumns* out) {
  const Layout layout = LayoutOf(datatype);
  if (layout.field == kBytes) {
    PYFUNC_ASSIGN_OR_RETURN(std::vector<std::string_view> elements, SplitRawBytes(in, raw));
    return AppendOipColumns(
        in,
        [&](size_t i, ColumnBuilder* b) {
          b->AppendString(elements[i]);
          return Status::OK();
        },
        out);
  }
  const size_t width = static_cast<size_t>(layout.width);
  if (raw.size() % width != 0 || raw.size() / width != in.values) {
    return Status::InvalidArgument(fmt::format(
        "{}: raw contents of {} bytes; shape [{}, {}] of {} takes {} bytes", in.where, raw.size(), in.rows, in.width,
        BoundMessage(datatype, 64),
        in.values <= raw.size() ? fmt::format("{}", in.values * width) : fmt::format("{} x {}", in.values, width)));
  }
  const char* p = raw.data();
  const auto append = [&](auto read) {
    return AppendOipColumns(
        in, [&](size_t i, ColumnBuilder* b) { return read(p + i * width, b); }, out);
  };
  const auto integer = [&](auto type_tag) {
    using T = decltype(type_tag);
    return append([](const char* q, ColumnBuilder* b) {
      b->AppendInt64(static_cast<int64_t>(Load<T>(q)));
      return Status::OK();
    });
  };
  if (datatype == "BOOL") {
    return append([&](const char* q, ColumnBuilder* b) {
      const uint8_t v = static_cast<uint8_t>(*q);
      if (v > 1) {
        return Status::InvalidArgument(
            fmt::format("{}: BOOL element {} is the byte {}, not 0 or 1", in.where, q - raw.data(), v));
      }
      b->AppendBool(v == 1);
      return Status::OK();
    });
  }
  if (datatype == "INT8") return integer(int8_t{});
  if (datatype == "INT16") return integer(int16_t{});
  if (datatype == "INT32") return integer(int32_t{});
  if (datatype == "INT64") return integer(int64_t{});
  if (datatype == "UINT8") return integer(uint8_t{});
  if (datatype == "UINT16") return integer(uint16_t{});
  if (datatype == "UINT32") return integer(uint32_t{});
  if (datatype == "UINT64") {
    return append([&](const char* q, ColumnBuilder* b) { return AppendUInt64(in, Load<uint64_t>(q), b); });
  }
  if (datatype == "FP16") {
    return append([](const char* q, ColumnBuilder* b) {
      b->AppendFloat64(HalfToDouble(Load<uint16_t>(q)));
      return Status::OK();
    });
  }
  if (datatype == "FP32") {
    return append([](const char* q, ColumnBuilder* b) {
      b->AppendFloat64(Load<float>(q));
      return Status::OK();
    });
  }
  return append([](const char* q, ColumnBuilder* b) {  // FP64
    b->AppendFloat64(Load<double>(q));
    return Status::OK();
  });
}

Result<Value> ParameterValue(const std::string& key, const inference::InferParameter& p) {
  switch (p.parameter_choice_case()) {
    case inference::InferParameter::kBoolParam: return Value(p.bool_param());
    case inference::InferParameter::kInt64Param: return Value(static_cast<int64_t>(p.int64_param()));
    case inference::InferParameter::kStringParam: return Value(p.string_param());
    case inference::InferParameter::kDoubleParam: return Value(p.double_param());
    case inference::InferParameter::kUint64Param:
      if (p.uint64_param() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Status::InvalidArgument(
            fmt::format("parameters['{}']: {} does not fit a 64-bit integer", BoundMessage(key, 64), p.uint64_param()));
      }
      return Value(static_cast<int64_t>(p.uint64_param()));
    case inference::InferParameter::PARAMETER_CHOICE_NOT_SET: break;
  }
  return Value();
}

// Appends the raw bytes of element `index` of `c` as datatype OipDatatype(c.type()).
void AppendRawElement(const Column& c, int64_t row, int64_t index, std::string* out) {
  const DataType type = c.type();
  const bool null = c.IsNull(row);
  if (IsVariableWidth(type)) {
    const std::string_view v = null ? std::string_view() : c.string_value(index);
    const uint32_t length = static_cast<uint32_t>(v.size());
    out->append(reinterpret_cast<const char*>(&length), 4);
    out->append(v);
    return;
  }
  if (type == DataType::kBool) {
    out->push_back(!null && c.bool_value(index) ? 1 : 0);
    return;
  }
  const size_t width = static_cast<size_t>(ByteWidth(type));
  if (!null) {
    out->append(reinterpret_cast<const char*>(c.values()->data()) + static_cast<size_t>(index) * width, width);
    return;
  }
  if (type == DataType::kFloat64) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    out->append(reinterpret_cast<const char*>(&nan), 8);
  } else if (type == DataType::kFloat32) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    out->append(reinterpret_cast<const char*>(&nan), 4);
  } else if (type == DataType::kFloat16) {
    const uint16_t nan = 0x7e00;
    out->append(reinterpret_cast<const char*>(&nan), 2);
  } else {
    out->append(width, '\0');
  }
}

}  // namespace

Result<OipRequest> ParseGrpcInferRequest(const inference::ModelInferRequest& request, const OipLimits& limits) {
  OipRequest out;
  if (!request.id().empty()) out.id = request.id();
  if (!request.parameters().empty()) {
    Value::Map m;
    for (const auto& [key, p] : request.parameters()) {
      if (IsOipProtocolParameter(key)) continue;
      PYFUNC_ASSIGN_OR_RETURN(Value v, ParameterValue(key, p));
      m.emplace_back(key, std::move(v));
    }
    // A protobuf map has no order; sorted, equal params compare equal (and merge).
    std::sort(m.begin(), m.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    if (!m.empty()) out.params = Value(std::move(m));
  }
  const size_t num_inputs = static_cast<size_t>(request.inputs_size());
  PYFUNC_RETURN_IF_ERROR(CheckOipInputCount(num_inputs, limits));
  const size_t num_raw = static_cast<size_t>(request.raw_input_contents_size());
  if (num_raw != 0 && num_raw != num_inputs) {
    return Status::InvalidArgument(
        fmt::format("raw_input_contents has {} entries for {} inputs: either every input's elements are raw or none",
                    num_raw, num_inputs));
  }
  OipColumns columns;
  for (size_t t = 0; t < num_inputs; ++t) {
    const inference::ModelInferRequest::InferInputTensor& tensor = request.inputs(static_cast<int>(t));
    PYFUNC_ASSIGN_OR_RETURN(OipInput input, ReadOipInput(t, tensor.name(), tensor.datatype(), tensor.shape().data(),
                                                         static_cast<size_t>(tensor.shape_size()), num_inputs, limits));
    if (num_raw == 0) {
      PYFUNC_RETURN_IF_ERROR(ReadTyped(input, tensor.datatype(), tensor.contents(), &columns));
      continue;
    }
    if (tensor.has_contents()) {
      for (int f = 0; f < kNumFields; ++f) {
        if (FieldSize(tensor.contents(), f) != 0) {
          return Status::InvalidArgument(fmt::format(
              "{}: the tensor has {} beside raw_input_contents: a request's elements are raw or typed, not both",
              input.where, kFieldNames[f]));
        }
      }
    }
    PYFUNC_RETURN_IF_ERROR(
        ReadRaw(input, tensor.datatype(), request.raw_input_contents(static_cast<int>(t)), &columns));
  }
  PYFUNC_ASSIGN_OR_RETURN(out.table, Table::Make(std::move(columns.names), std::move(columns.columns)));
  return out;
}

void WriteGrpcInferResponse(const std::string& model_name, const std::string& id, const Prediction& p,
                            inference::ModelInferResponse* response) {
  response->set_model_name(model_name);
  if (!id.empty()) response->set_id(id);
  for (const OipOutput& o : OipOutputs(p)) {
    inference::ModelInferResponse::InferOutputTensor* tensor = response->add_outputs();
    tensor->set_name(o.name);
    tensor->set_datatype(OipDatatype(o.type));
    for (int64_t d : o.shape) tensor->add_shape(d);
    std::string* raw = response->add_raw_output_contents();
    const int width = ByteWidth(o.type);
    if (o.column >= 0 && width > 0 && p.table.column(o.column).null_count() == 0) {
      // A column of fixed-width values without nulls is its values buffer as it is.
      const Column& c = p.table.column(o.column);
      if (c.length() == 0 || c.cell_size() == 0) continue;
      raw->assign(reinterpret_cast<const char*>(c.values()->data()),
                  static_cast<size_t>(c.length() * c.cell_size()) * static_cast<size_t>(width));
      continue;
    }
    ForEachOipElement(p.table, o,
                      [&](const Column& c, int64_t row, int64_t index) { AppendRawElement(c, row, index, raw); });
  }
}

}  // namespace pyfunc::server
