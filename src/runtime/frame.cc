#include "runtime/frame.h"

#include <cstring>
#include <string>
#include <vector>

namespace pyfunc::runtime {
namespace {

constexpr char kMagic[4] = {'P', 'F', 'F', '1'};
constexpr size_t kHeaderSize = 64;
constexpr size_t kColumnSize = 64;

// A column's wire type is its DataType + 1 (1 int64, 2 float64, 3 bool, 4 string,
// 5 timestamp, 6 int8, 7 int16, 8 int32, 9 uint8, 10 uint16, 11 uint32, 12 uint64,
// 13 float16, 14 float32, 15 binary); 0 is never a type.
uint8_t ToWire(DataType t) { return static_cast<uint8_t>(static_cast<int>(t) + 1); }

bool FromWire(uint8_t wire, DataType* t) {
  if (wire < 1 || wire > kNumDataTypes) return false;
  *t = static_cast<DataType>(wire - 1);
  return true;
}

size_t Align(size_t n, size_t to) { return (n + to - 1) / to * to; }

// Where each piece of each column goes. Computed identically by FrameSize and EncodeFrame.
struct Placement {
  size_t name = 0, validity = 0, values = 0, values_size = 0, offsets = 0, dims = 0;
};

// A tensor cell may have at most this many dimensions (numpy's limit is 64).
constexpr size_t kMaxCellDims = 32;

std::vector<Placement> Place(const Table& table, size_t* total) {
  const int n = table.num_columns();
  const auto rows = static_cast<size_t>(table.num_rows());
  std::vector<Placement> out(n);
  size_t pos = Align(kHeaderSize + n * kColumnSize, 64);
  // Numeric values first, back to back (each at its own width's alignment, so that
  // adjacent columns of one type form one block).
  for (int i = 0; i < n; ++i) {
    const int width = ByteWidth(table.column(i).type());
    if (width == 0) continue;
    pos = Align(pos, static_cast<size_t>(width));
    out[i].values = pos;
    out[i].values_size = static_cast<size_t>(width) * rows * static_cast<size_t>(table.column(i).cell_size());
    pos += out[i].values_size;
  }
  pos = Align(pos, 64);
  for (int i = 0; i < n; ++i) {
    const Column& c = table.column(i);
    out[i].name = pos;
    pos = Align(pos + table.column_name(i).size(), 8);
    if (c.is_tensor()) {
      out[i].dims = pos;
      pos += 8 * c.cell_shape().size();
    }
    if (c.validity() != nullptr) {
      out[i].validity = pos;
      pos = Align(pos + (rows + 7) / 8, 8);
    }
    if (c.type() == DataType::kBool) {
      out[i].values = pos;
      out[i].values_size = (rows + 7) / 8;
      pos = Align(pos + out[i].values_size, 8);
    } else if (IsVariableWidth(c.type())) {
      out[i].offsets = pos;
      pos += 8 * (rows + 1);
      out[i].values = pos;
      out[i].values_size = static_cast<size_t>(c.string_offsets()[rows]);
      pos = Align(pos + out[i].values_size, 8);
    }
  }
  *total = Align(pos, 64);
  return out;
}

template <typename T>
void Put(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}
template <typename T>
T Get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

size_t FrameSize(const Table& table) {
  size_t total = 0;
  Place(table, &total);
  return total;
}

void EncodeFrame(const Table& table, uint32_t shape, uint8_t* dst) {
  size_t total = 0;
  const std::vector<Placement> place = Place(table, &total);
  const auto rows = static_cast<uint64_t>(table.num_rows());
  std::memset(dst, 0, kHeaderSize + place.size() * kColumnSize);
  std::memcpy(dst, kMagic, 4);
  Put<uint32_t>(dst + 4, kFrameVersion);
  Put<uint64_t>(dst + 8, rows);
  Put<uint32_t>(dst + 16, static_cast<uint32_t>(table.num_columns()));
  Put<uint32_t>(dst + 20, shape);
  Put<uint64_t>(dst + 24, total);
  for (int i = 0; i < table.num_columns(); ++i) {
    const Column& c = table.column(i);
    const Placement& p = place[i];
    uint8_t* d = dst + kHeaderSize + i * kColumnSize;
    const std::string& name = table.column_name(i);
    Put<uint64_t>(d + 0, p.name);
    Put<uint32_t>(d + 8, static_cast<uint32_t>(name.size()));
    d[12] = ToWire(c.type());
    d[13] = c.validity() != nullptr ? 1 : 0;
    d[15] = static_cast<uint8_t>(c.cell_shape().size());
    Put<uint64_t>(d + 16, p.validity);
    Put<uint64_t>(d + 24, p.values);
    Put<uint64_t>(d + 32, p.values_size);
    Put<uint64_t>(d + 40, p.offsets);
    Put<uint64_t>(d + 48, p.dims);
    d[56] = static_cast<uint8_t>(c.time_unit());
    std::memcpy(dst + p.name, name.data(), name.size());
    for (size_t k = 0; k < c.cell_shape().size(); ++k) Put<int64_t>(dst + p.dims + 8 * k, c.cell_shape()[k]);
    if (c.validity() != nullptr) std::memcpy(dst + p.validity, c.validity()->data(), (rows + 7) / 8);
    if (IsVariableWidth(c.type())) {
      std::memcpy(dst + p.offsets, c.values()->data(), 8 * (rows + 1));
      if (p.values_size) std::memcpy(dst + p.values, c.string_data()->data(), p.values_size);
    } else if (p.values_size) {
      std::memcpy(dst + p.values, c.values()->data(), p.values_size);
    }
  }
}

Result<Prediction> DecodeFrame(const uint8_t* src, size_t size) {
  auto bad = [](const std::string& what) { return Status::InvalidArgument("malformed result frame: " + what); };
  if (size < kHeaderSize) return bad("shorter than its header");
  if (std::memcmp(src, kMagic, 4) != 0) return bad("bad magic");
  if (Get<uint32_t>(src + 4) != kFrameVersion) return bad("version " + std::to_string(Get<uint32_t>(src + 4)));
  const uint64_t rows = Get<uint64_t>(src + 8);
  const uint32_t ncols = Get<uint32_t>(src + 16);
  const uint32_t shape = Get<uint32_t>(src + 20);
  const uint64_t total = Get<uint64_t>(src + 24);
  if (total > size) return bad("claims " + std::to_string(total) + " bytes, " + std::to_string(size) + " available");
  if (shape > static_cast<uint32_t>(PredictionShape::kColumns)) return bad("unknown shape " + std::to_string(shape));
  if (kHeaderSize + static_cast<uint64_t>(ncols) * kColumnSize > total) return bad("column table out of bounds");
  if (rows > total) return bad("row count larger than the frame");
  // A range [off, off+len) must lie inside the frame (overflow-safe).
  auto inside = [total](uint64_t off, uint64_t len) { return off <= total && len <= total - off; };

  std::vector<std::string> names;
  std::vector<Column> columns;
  std::vector<NullSpelling> nulls;
  for (uint32_t i = 0; i < ncols; ++i) {
    const uint8_t* d = src + kHeaderSize + i * kColumnSize;
    const uint64_t name_off = Get<uint64_t>(d), name_len = Get<uint32_t>(d + 8);
    const uint8_t wire = d[12], has_validity = d[13], null_spelling = d[14], ndim = d[15], unit = d[56];
    const uint64_t validity_off = Get<uint64_t>(d + 16), values_off = Get<uint64_t>(d + 24),
                   values_size = Get<uint64_t>(d + 32), offsets_off = Get<uint64_t>(d + 40),
                   dims_off = Get<uint64_t>(d + 48);
    const std::string col = "column " + std::to_string(i);
    if (!inside(name_off, name_len)) return bad(col + ": name out of bounds");
    if (null_spelling > static_cast<uint8_t>(NullSpelling::kNaT)) {
      return bad(col + ": unknown null spelling " + std::to_string(null_spelling));
    }
    std::string name(reinterpret_cast<const char*>(src + name_off), name_len);
    const uint64_t bitmap_bytes = (rows + 7) / 8;
    std::shared_ptr<Buffer> validity;
    if (has_validity) {
      if (!inside(validity_off, bitmap_bytes)) return bad(col + ": validity out of bounds");
      validity = Buffer::Allocate(bitmap_bytes);
      std::memcpy(validity->mutable_data(), src + validity_off, bitmap_bytes);
    }
    DataType type;
    if (!FromWire(wire, &type)) return bad(col + ": unknown type " + std::to_string(wire));
    if (unit >= kNumTimeUnits || (unit != 0 && type != DataType::kTimestamp)) {
      return bad(col + ": time unit " + std::to_string(unit) + " for a " + DataTypeName(type) + " column");
    }
    std::vector<int64_t> cell_shape;
    uint64_t cell_size = 1;
    if (ndim > 0) {
      if (ByteWidth(type) == 0) return bad(col + ": a " + DataTypeName(type) + " column with tensor cells");
      if (ndim > kMaxCellDims) return bad(col + ": tensor cells of " + std::to_string(ndim) + " dimensions");
      if (!inside(dims_off, 8u * ndim)) return bad(col + ": tensor dimensions out of bounds");
      for (uint8_t k = 0; k < ndim; ++k) {
        const int64_t dim = Get<int64_t>(src + dims_off + 8 * k);
        if (dim < 0 || __builtin_mul_overflow(cell_size, static_cast<uint64_t>(dim), &cell_size)) {
          return bad(col + ": tensor dimension " + std::to_string(dim));
        }
        cell_shape.push_back(dim);
      }
    }
    std::shared_ptr<Buffer> values, data;
    if (type == DataType::kBool) {
      if (values_size < bitmap_bytes || !inside(values_off, bitmap_bytes)) return bad(col + ": values out of bounds");
      values = Buffer::Allocate(bitmap_bytes);
      std::memcpy(values->mutable_data(), src + values_off, bitmap_bytes);
    } else if (IsVariableWidth(type)) {
      if (!inside(offsets_off, 8 * (rows + 1))) return bad(col + ": offsets out of bounds");
      if (!inside(values_off, values_size)) return bad(col + ": " + DataTypeName(type) + " data out of bounds");
      values = Buffer::Allocate(8 * (rows + 1));
      std::memcpy(values->mutable_data(), src + offsets_off, 8 * (rows + 1));
      data = Buffer::Allocate(values_size);
      if (values_size) std::memcpy(data->mutable_data(), src + values_off, values_size);
    } else {
      const uint64_t width = static_cast<uint64_t>(ByteWidth(type));
      uint64_t expected = 0;
      if (__builtin_mul_overflow(width * rows, cell_size, &expected) || values_size != expected ||
          !inside(values_off, values_size)) {
        return bad(col + ": values out of bounds");
      }
      values = Buffer::Allocate(values_size);
      std::memcpy(values->mutable_data(), src + values_off, values_size);
    }
    Result<Column> column =
        ndim > 0 ? Column::MakeTensor(type, static_cast<int64_t>(rows), std::move(cell_shape), validity, values)
                 : Column::Make(type, static_cast<int64_t>(rows), validity, values, data);
    if (!column.ok()) return bad(col + ": " + column.status().message());
    names.push_back(std::move(name));
    columns.push_back(std::move(column).value().WithTimeUnit(static_cast<TimeUnit>(unit)));
    nulls.push_back(static_cast<NullSpelling>(null_spelling));
  }
  Prediction out;
  out.shape = static_cast<PredictionShape>(shape);
  for (NullSpelling n : nulls) {
    if (n != NullSpelling::kDefault) {
      out.nulls = std::move(nulls);
      break;
    }
  }
  if (ncols == 0) {
    out.table = Table::Empty(static_cast<int64_t>(rows));
    return out;
  }
  PYFUNC_ASSIGN_OR_RETURN(out.table, Table::Make(std::move(names), std::move(columns)));
  return out;
}

}  // namespace pyfunc::runtime
