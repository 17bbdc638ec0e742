#include "pyfunc/table.h"

#include <cassert>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "data/text_format.h"

namespace pyfunc {

namespace {

constexpr size_t kAlignment = 64;

size_t PadTo64(size_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

size_t BitmapBytes(int64_t bits) { return static_cast<size_t>((bits + 7) / 8); }

inline void SetBit(uint8_t* bits, int64_t i) { bits[i >> 3] |= static_cast<uint8_t>(1u << (i & 7)); }
inline void ClearBit(uint8_t* bits, int64_t i) { bits[i >> 3] &= static_cast<uint8_t>(~(1u << (i & 7))); }

int64_t CountSetBits(const uint8_t* bits, int64_t length) {
  int64_t count = 0;
  int64_t full = length / 8;
  for (int64_t i = 0; i < full; ++i) count += __builtin_popcount(bits[i]);
  for (int64_t i = full * 8; i < length; ++i) count += GetBit(bits, i);
  return count;
}

// Copies `length` bits starting at bit `src_offset` of `src` to bit `dst_offset` of `dst`.
void CopyBits(const uint8_t* src, int64_t src_offset, uint8_t* dst, int64_t dst_offset, int64_t length) {
  if ((src_offset & 7) == 0 && (dst_offset & 7) == 0) {
    size_t whole = static_cast<size_t>(length / 8);
    std::memcpy(dst + dst_offset / 8, src + src_offset / 8, whole);
    for (int64_t i = static_cast<int64_t>(whole) * 8; i < length; ++i) {
      if (GetBit(src, src_offset + i))
        SetBit(dst, dst_offset + i);
      else
        ClearBit(dst, dst_offset + i);
    }
    return;
  }
  for (int64_t i = 0; i < length; ++i) {
    if (GetBit(src, src_offset + i))
      SetBit(dst, dst_offset + i);
    else
      ClearBit(dst, dst_offset + i);
  }
}

// Bytes of the values buffer for `length` rows of `cell_size` values each.
size_t ValuesBytes(DataType type, int64_t length, int64_t cell_size = 1) {
  if (type == DataType::kBool) return BitmapBytes(length);
  if (IsVariableWidth(type)) return static_cast<size_t>(length + 1) * 8;
  return static_cast<size_t>(length) * static_cast<size_t>(cell_size) * static_cast<size_t>(ByteWidth(type));
}

// The number of values of a tensor cell of `shape`, or -1 when a dimension is negative
// or the product overflows.
int64_t CellSize(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) return -1;
  }
  return n;
}

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

// --- DataType ----------------------------------------------------------------------

const char* DataTypeName(DataType type) {
  switch (type) {
    case DataType::kInt64: return "int64";
    case DataType::kFloat64: return "float64";
    case DataType::kBool: return "bool";
    case DataType::kString: return "string";
    case DataType::kTimestamp: return "timestamp";
    case DataType::kInt8: return "int8";
    case DataType::kInt16: return "int16";
    case DataType::kInt32: return "int32";
    case DataType::kUInt8: return "uint8";
    case DataType::kUInt16: return "uint16";
    case DataType::kUInt32: return "uint32";
    case DataType::kUInt64: return "uint64";
    case DataType::kFloat16: return "float16";
    case DataType::kFloat32: return "float32";
    case DataType::kBinary: return "binary";
  }
  return "unknown";
}

const char* TimeUnitName(TimeUnit unit) {
  switch (unit) {
    case TimeUnit::kNanosecond: return "ns";
    case TimeUnit::kMicrosecond: return "us";
    case TimeUnit::kMillisecond: return "ms";
    case TimeUnit::kSecond: return "s";
  }
  return "ns";
}

Result<DataType> ParseDataType(std::string_view name) {
  if (name == "int64" || name == "long" || name == "integer") return DataType::kInt64;
  if (name == "float64" || name == "double" || name == "float") return DataType::kFloat64;
  if (name == "bool" || name == "boolean") return DataType::kBool;
  if (name == "string" || name == "str") return DataType::kString;
  if (name == "timestamp" || name == "datetime") return DataType::kTimestamp;
  for (int t = 0; t < kNumDataTypes; ++t) {
    if (name == DataTypeName(static_cast<DataType>(t))) return static_cast<DataType>(t);
  }
  return Status::InvalidArgument("unsupported column type '" + std::string(name) +
                                 "' (expected int64, float64, bool, string, timestamp, binary, "
                                 "int8..int32, uint8..uint64, float16 or float32)");
}

const char* ArrowFormat(DataType type) {
  switch (type) {
    case DataType::kInt64: return "l";
    case DataType::kFloat64: return "g";
    case DataType::kBool: return "b";
    case DataType::kString: return "U";
    case DataType::kTimestamp: return "tsn:UTC";
    case DataType::kInt8: return "c";
    case DataType::kInt16: return "s";
    case DataType::kInt32: return "i";
    case DataType::kUInt8: return "C";
    case DataType::kUInt16: return "S";
    case DataType::kUInt32: return "I";
    case DataType::kUInt64: return "L";
    case DataType::kFloat16: return "e";
    case DataType::kFloat32: return "f";
    case DataType::kBinary: return "Z";
  }
  return "";
}

int ByteWidth(DataType type) {
  switch (type) {
    case DataType::kInt8:
    case DataType::kUInt8: return 1;
    case DataType::kInt16:
    case DataType::kUInt16:
    case DataType::kFloat16: return 2;
    case DataType::kInt32:
    case DataType::kUInt32:
    case DataType::kFloat32: return 4;
    case DataType::kInt64:
    case DataType::kUInt64:
    case DataType::kFloat64:
    case DataType::kTimestamp: return 8;
    case DataType::kBool:
    case DataType::kString:
    case DataType::kBinary: return 0;
  }
  return 0;
}

bool IsUnsigned(DataType type) {
  return type == DataType::kUInt8 || type == DataType::kUInt16 || type == DataType::kUInt32 ||
         type == DataType::kUInt64;
}

bool IsInteger(DataType type) {
  return IsUnsigned(type) || type == DataType::kInt8 || type == DataType::kInt16 || type == DataType::kInt32 ||
         type == DataType::kInt64;
}

bool IsFloating(DataType type) {
  return type == DataType::kFloat16 || type == DataType::kFloat32 || type == DataType::kFloat64;
}

double HalfToDouble(uint16_t bits) {
  const int sign = bits >> 15, exponent = (bits >> 10) & 0x1f, fraction = bits & 0x3ff;
  double v;
  if (exponent == 0)
    v = std::ldexp(fraction, -24);  // zero and subnormals
  else if (exponent == 31)
    v = fraction ? std::nan("") : HUGE_VAL;
  else
    v = std::ldexp(fraction + 1024, exponent - 25);
  return sign ? -v : v;
}

// --- Buffer ------------------------------------------------------------------------

std::shared_ptr<Buffer> Buffer::Allocate(size_t size) {
  size_t padded = PadTo64(size == 0 ? 1 : size);
  void* p = std::aligned_alloc(kAlignment, padded);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, padded);
  return std::shared_ptr<Buffer>(new Buffer(static_cast<uint8_t*>(p), size));
}

Buffer::~Buffer() { std::free(data_); }

// --- Column ------------------------------------------------------------------------

Result<Column> Column::Make(DataType type, int64_t length, std::shared_ptr<Buffer> validity,
                            std::shared_ptr<Buffer> values, std::shared_ptr<Buffer> data) {
  if (length < 0) return Status::InvalidArgument("column length is negative");
  if (!values) return Status::InvalidArgument("column has no values buffer");
  if (values->size() < ValuesBytes(type, length)) {
    return Status::InvalidArgument(std::string(DataTypeName(type)) + " column of " + std::to_string(length) +
                                   " rows needs a values buffer of " + std::to_string(ValuesBytes(type, length)) +
                                   " bytes, got " + std::to_string(values->size()));
  }
  if (validity && validity->size() < BitmapBytes(length)) {
    return Status::InvalidArgument("validity bitmap too small for " + std::to_string(length) + " rows");
  }
  if (IsVariableWidth(type)) {
    if (!data) return Status::InvalidArgument(std::string(DataTypeName(type)) + " column has no data buffer");
    const int64_t* o = reinterpret_cast<const int64_t*>(values->data());
    if (o[0] < 0) return Status::InvalidArgument("string offsets: first offset is negative");
    for (int64_t i = 0; i < length; ++i) {
      if (o[i + 1] < o[i]) {
        return Status::InvalidArgument("string offsets decrease at row " + std::to_string(i));
      }
    }
    if (static_cast<uint64_t>(o[length]) > data->size()) {
      return Status::InvalidArgument("string offsets point past the data buffer");
    }
  } else if (data) {
    return Status::InvalidArgument("only string and binary columns have a data buffer");
  }
  Column c;
  c.type_ = type;
  c.length_ = length;
  c.null_count_ = validity ? length - CountSetBits(validity->data(), length) : 0;
  c.validity_ = c.null_count_ > 0 ? std::move(validity) : nullptr;
  c.values_ = std::move(values);
  c.data_ = std::move(data);
  return c;
}

Result<Column> Column::MakeTensor(DataType type, int64_t length, std::vector<int64_t> cell_shape,
                                  std::shared_ptr<Buffer> validity, std::shared_ptr<Buffer> values) {
  if (cell_shape.empty()) return Make(type, length, std::move(validity), std::move(values));
  if (ByteWidth(type) == 0) {
    return Status::InvalidArgument(std::string("a ") + DataTypeName(type) + " column cannot hold tensor cells");
  }
  const int64_t cell_size = CellSize(cell_shape);
  if (cell_size < 0 || length < 0) return Status::InvalidArgument("tensor cell shape or length is invalid");
  size_t need = 0;
  if (__builtin_mul_overflow(static_cast<size_t>(length), static_cast<size_t>(cell_size) * ByteWidth(type), &need)) {
    return Status::InvalidArgument("tensor column too large");
  }
  if (!values || values->size() < need) {
    return Status::InvalidArgument(std::string(DataTypeName(type)) + " tensor column of " + std::to_string(length) +
                                   " rows needs a values buffer of " + std::to_string(need) + " bytes");
  }
  // Make checks the validity bitmap and counts nulls; the values were checked above.
  PYFUNC_ASSIGN_OR_RETURN(Column c, Make(type, 0, nullptr, Buffer::Allocate(0)));
  if (validity && validity->size() < BitmapBytes(length)) {
    return Status::InvalidArgument("validity bitmap too small for " + std::to_string(length) + " rows");
  }
  c.length_ = length;
  c.null_count_ = validity ? length - CountSetBits(validity->data(), length) : 0;
  c.validity_ = c.null_count_ > 0 ? std::move(validity) : nullptr;
  c.values_ = std::move(values);
  c.cell_shape_ = std::move(cell_shape);
  c.cell_size_ = cell_size;
  return c;
}

Column Column::WithTimeUnit(TimeUnit unit) const {
  Column c = *this;
  if (type_ == DataType::kTimestamp) c.time_unit_ = unit;
  return c;
}

Column Column::Nulls(DataType type, int64_t length) {
  ColumnBuilder b(type);
  b.AppendNulls(length);
  return b.Finish();
}

Result<Column> Column::Slice(int64_t offset, int64_t length) const {
  if (offset < 0 || length < 0 || offset > length_ || length > length_ - offset) {
    return Status::InvalidArgument("slice [" + std::to_string(offset) + ", " + std::to_string(offset) + "+" +
                                   std::to_string(length) + ") out of range for " + std::to_string(length_) + " rows");
  }
  if (offset == 0 && length == length_) return *this;
  ColumnBuilder b(type_, cell_shape_);
  b.AppendFrom(*this, offset, length);
  return b.Finish().WithTimeUnit(time_unit_);
}

Result<Column> Column::Concat(const std::vector<Column>& columns) {
  if (columns.empty()) return Status::InvalidArgument("Concat: no columns");
  if (columns.size() == 1) return columns[0];
  DataType type = columns[0].type();
  int64_t rows = 0, bytes = 0;
  for (const Column& c : columns) {
    if (c.type() != type) {
      return Status::InvalidArgument(std::string("Concat: column types differ: ") + DataTypeName(type) + " and " +
                                     DataTypeName(c.type()));
    }
    if (c.cell_shape() != columns[0].cell_shape()) {
      return Status::InvalidArgument("Concat: the columns' tensor cells differ in shape");
    }
    rows += c.length();
    if (IsVariableWidth(type)) bytes += c.string_offsets()[c.length()] - c.string_offsets()[0];
  }
  ColumnBuilder b(type, columns[0].cell_shape());
  b.Reserve(rows, bytes);
  TimeUnit unit = columns[0].time_unit();
  for (const Column& c : columns) {
    b.AppendFrom(c, 0, c.length());
    if (c.time_unit() != unit) unit = TimeUnit::kNanosecond;
  }
  return b.Finish().WithTimeUnit(unit);
}

double Column::NumberAt(int64_t i) const {
  const uint8_t* p = values_->data();
  switch (type_) {
    case DataType::kInt8: return Load<int8_t>(p + i);
    case DataType::kInt16: return Load<int16_t>(p + 2 * i);
    case DataType::kInt32: return Load<int32_t>(p + 4 * i);
    case DataType::kInt64:
    case DataType::kTimestamp: return static_cast<double>(Load<int64_t>(p + 8 * i));
    case DataType::kUInt8: return Load<uint8_t>(p + i);
    case DataType::kUInt16: return Load<uint16_t>(p + 2 * i);
    case DataType::kUInt32: return Load<uint32_t>(p + 4 * i);
    case DataType::kUInt64: return static_cast<double>(Load<uint64_t>(p + 8 * i));
    case DataType::kFloat16: return HalfToDouble(Load<uint16_t>(p + 2 * i));
    case DataType::kFloat32: return Load<float>(p + 4 * i);
    case DataType::kFloat64: return Load<double>(p + 8 * i);
    case DataType::kBool: return bool_value(i) ? 1.0 : 0.0;
    case DataType::kString:
    case DataType::kBinary: return 0.0;
  }
  return 0.0;
}

Result<Column> Column::CastTo(DataType type) const {
  if (type == type_) return *this;
  const int64_t n = length_ * cell_size_;
  if (type == DataType::kFloat64 && (IsInteger(type_) || IsFloating(type_))) {
    auto values = Buffer::Allocate(static_cast<size_t>(n) * 8);
    double* out = reinterpret_cast<double*>(values->mutable_data());
    for (int64_t i = 0; i < n; ++i) out[i] = IsNull(i / cell_size_) ? 0.0 : NumberAt(i);
    return MakeTensor(DataType::kFloat64, length_, cell_shape_, validity_, std::move(values));
  }
  if (type == DataType::kInt64 && IsInteger(type_) && type_ != DataType::kUInt64) {
    auto values = Buffer::Allocate(static_cast<size_t>(n) * 8);
    int64_t* out = reinterpret_cast<int64_t*>(values->mutable_data());
    for (int64_t i = 0; i < n; ++i) out[i] = IsNull(i / cell_size_) ? 0 : static_cast<int64_t>(NumberAt(i));
    return MakeTensor(DataType::kInt64, length_, cell_shape_, validity_, std::move(values));
  }
  return Status::InvalidArgument(std::string("cannot convert a ") + DataTypeName(type_) + " column to " +
                                 DataTypeName(type));
}

bool Column::Equals(const Column& other) const {
  if (type_ != other.type_ || length_ != other.length_ || null_count_ != other.null_count_ ||
      cell_shape_ != other.cell_shape_ || time_unit_ != other.time_unit_) {
    return false;
  }
  for (int64_t i = 0; i < length_; ++i) {
    if (IsNull(i) != other.IsNull(i)) return false;
    if (IsNull(i)) continue;
    if (is_tensor()) {
      for (int64_t k = i * cell_size_; k < (i + 1) * cell_size_; ++k) {
        const double a = NumberAt(k), b = other.NumberAt(k);
        if (IsFloating(type_) ? !(a == b || (std::isnan(a) && std::isnan(b))) : a != b) return false;
      }
    } else if (IsFloating(type_)) {
      double a = NumberAt(i), b = other.NumberAt(i);
      if (!(a == b || (std::isnan(a) && std::isnan(b)))) return false;
      if (a == 0 && std::signbit(a) != std::signbit(b)) return false;
    } else if (type_ == DataType::kBool) {
      if (bool_value(i) != other.bool_value(i)) return false;
    } else if (IsVariableWidth(type_)) {
      if (string_value(i) != other.string_value(i)) return false;
    } else {
      const size_t w = static_cast<size_t>(ByteWidth(type_));
      if (std::memcmp(values_->data() + i * w, other.values_->data() + i * w, w) != 0) return false;
    }
  }
  return true;
}

// --- ColumnBuilder -----------------------------------------------------------------

ColumnBuilder::ColumnBuilder(DataType type, std::vector<int64_t> cell_shape)
    : type_(type), cell_shape_(std::move(cell_shape)) {
  assert(cell_shape_.empty() || ByteWidth(type) > 0);
  const int64_t cell_size = CellSize(cell_shape_);
  assert(cell_size >= 0);
  row_bytes_ = static_cast<size_t>(ByteWidth(type)) * static_cast<size_t>(cell_size < 0 ? 0 : cell_size);
  values_ = Buffer::Allocate(IsVariableWidth(type) ? 64 : 0);
  if (IsVariableWidth(type)) data_ = Buffer::Allocate(0);
}
ColumnBuilder::~ColumnBuilder() = default;
ColumnBuilder::ColumnBuilder(ColumnBuilder&&) noexcept = default;
ColumnBuilder& ColumnBuilder::operator=(ColumnBuilder&&) noexcept = default;

size_t ColumnBuilder::BuiltValuesBytes(int64_t rows) const {
  if (type_ == DataType::kBool || IsVariableWidth(type_)) return ValuesBytes(type_, rows);
  return static_cast<size_t>(rows) * row_bytes_;
}

// Builders keep Buffer::size() equal to the capacity while building and truncate it to
// the logical size in Finish().
void ColumnBuilder::GrowValues(size_t needed_bytes) {
  if (needed_bytes <= values_->size()) return;
  size_t keep = BuiltValuesBytes(length_);
  auto fresh = Buffer::Allocate(std::max(needed_bytes, values_->size() * 2));
  std::memcpy(fresh->mutable_data(), values_->data(), std::min(keep, values_->size()));
  values_ = std::move(fresh);
}

void ColumnBuilder::GrowData(size_t needed_bytes) {
  if (needed_bytes <= data_->size()) return;
  auto fresh = Buffer::Allocate(std::max(needed_bytes, data_->size() * 2));
  std::memcpy(fresh->mutable_data(), data_->data(), data_size_);
  data_ = std::move(fresh);
}

void ColumnBuilder::Reserve(int64_t rows, int64_t string_bytes) {
  GrowValues(BuiltValuesBytes(length_ + rows));
  if (validity_ && validity_->size() < BitmapBytes(length_ + rows)) {
    auto fresh = Buffer::Allocate(std::max(BitmapBytes(length_ + rows), validity_->size() * 2));
    std::memcpy(fresh->mutable_data(), validity_->data(), BitmapBytes(length_));
    validity_ = std::move(fresh);
  }
  if (IsVariableWidth(type_)) GrowData(data_size_ + static_cast<size_t>(string_bytes));
}

void ColumnBuilder::EnsureValidity() {
  if (validity_) return;
  // All rows so far are valid.
  validity_ = Buffer::Allocate(std::max<size_t>(BitmapBytes(length_ + 1) * 2, 64));
  uint8_t* bits = validity_->mutable_data();
  std::memset(bits, 0xff, static_cast<size_t>(length_ / 8));
  for (int64_t i = length_ / 8 * 8; i < length_; ++i) SetBit(bits, i);
}

void ColumnBuilder::SetValid(bool valid) {
  if (!valid) EnsureValidity();
  if (!validity_) return;
  size_t need = BitmapBytes(length_ + 1);
  if (need > validity_->size()) {
    auto fresh = Buffer::Allocate(std::max(need, validity_->size() * 2));
    std::memcpy(fresh->mutable_data(), validity_->data(), validity_->size());
    validity_ = std::move(fresh);
  }
  if (valid)
    SetBit(validity_->mutable_data(), length_);
  else
    ClearBit(validity_->mutable_data(), length_);
}

void ColumnBuilder::AppendNull() {
  SetValid(false);
  ++null_count_;
  switch (type_) {
    case DataType::kBool:
      GrowValues(BitmapBytes(length_ + 1));
      ClearBit(values_->mutable_data(), length_);
      break;
    case DataType::kString:
    case DataType::kBinary: {
      GrowValues(ValuesBytes(type_, length_ + 1));
      int64_t* o = reinterpret_cast<int64_t*>(values_->mutable_data());
      o[length_ + 1] = o[length_];
      break;
    }
    default: {
      GrowValues(BuiltValuesBytes(length_ + 1));
      const size_t w = row_bytes_;
      std::memset(values_->mutable_data() + length_ * w, 0, w);
      break;
    }
  }
  ++length_;
}

void ColumnBuilder::AppendNulls(int64_t n) {
  Reserve(n);
  for (int64_t i = 0; i < n; ++i) AppendNull();
}

void ColumnBuilder::AppendInt64(int64_t v) {
  assert(type_ == DataType::kInt64);
  GrowValues(static_cast<size_t>(length_ + 1) * 8);
  SetValid(true);
  reinterpret_cast<int64_t*>(values_->mutable_data())[length_++] = v;
}

void ColumnBuilder::AppendTimestamp(int64_t ns) {
  assert(type_ == DataType::kTimestamp);
  GrowValues(static_cast<size_t>(length_ + 1) * 8);
  SetValid(true);
  reinterpret_cast<int64_t*>(values_->mutable_data())[length_++] = ns;
}

void ColumnBuilder::AppendFloat64(double v) {
  assert(type_ == DataType::kFloat64);
  GrowValues(static_cast<size_t>(length_ + 1) * 8);
  SetValid(true);
  reinterpret_cast<double*>(values_->mutable_data())[length_++] = v;
}

void ColumnBuilder::AppendBool(bool v) {
  assert(type_ == DataType::kBool);
  GrowValues(BitmapBytes(length_ + 1));
  SetValid(true);
  if (v)
    SetBit(values_->mutable_data(), length_);
  else
    ClearBit(values_->mutable_data(), length_);
  ++length_;
}

void ColumnBuilder::AppendFixed(const void* value) {
  assert(ByteWidth(type_) > 0);
  const size_t w = row_bytes_;
  GrowValues(static_cast<size_t>(length_ + 1) * w);
  SetValid(true);
  std::memcpy(values_->mutable_data() + length_ * w, value, w);
  ++length_;
}

void ColumnBuilder::AppendString(std::string_view v) {
  assert(IsVariableWidth(type_));
  GrowValues(ValuesBytes(type_, length_ + 1));
  GrowData(data_size_ + v.size());
  SetValid(true);
  if (!v.empty()) std::memcpy(data_->mutable_data() + data_size_, v.data(), v.size());
  data_size_ += v.size();
  reinterpret_cast<int64_t*>(values_->mutable_data())[length_ + 1] = static_cast<int64_t>(data_size_);
  ++length_;
}

void ColumnBuilder::AppendFrom(const Column& column, int64_t offset, int64_t length) {
  assert(column.type() == type_ && column.cell_shape() == cell_shape_);
  if (length <= 0) return;
  int64_t bytes = 0;
  if (IsVariableWidth(type_)) {
    bytes = column.string_offsets()[offset + length] - column.string_offsets()[offset];
  }
  Reserve(length, bytes);
  // Validity.
  if (column.null_count() > 0 || validity_) {
    if (column.null_count() > 0) EnsureValidity();
    if (validity_ && validity_->size() < BitmapBytes(length_ + length)) {
      auto fresh = Buffer::Allocate(BitmapBytes(length_ + length) * 2);
      std::memcpy(fresh->mutable_data(), validity_->data(), validity_->size());
      validity_ = std::move(fresh);
    }
    uint8_t* dst = validity_->mutable_data();
    if (column.validity()) {
      CopyBits(column.validity()->data(), offset, dst, length_, length);
      for (int64_t i = 0; i < length; ++i) null_count_ += column.IsNull(offset + i);
    } else {
      for (int64_t i = 0; i < length; ++i) SetBit(dst, length_ + i);
    }
  }
  // Values.
  switch (type_) {
    case DataType::kBool: CopyBits(column.values()->data(), offset, values_->mutable_data(), length_, length); break;
    case DataType::kString:
    case DataType::kBinary: {
      const int64_t* src = column.string_offsets();
      int64_t* dst = reinterpret_cast<int64_t*>(values_->mutable_data());
      int64_t base = static_cast<int64_t>(data_size_) - src[offset];
      for (int64_t i = 1; i <= length; ++i) dst[length_ + i] = src[offset + i] + base;
      if (bytes > 0) {
        std::memcpy(data_->mutable_data() + data_size_, column.string_data()->data() + src[offset],
                    static_cast<size_t>(bytes));
      }
      data_size_ += static_cast<size_t>(bytes);
      break;
    }
    default: {
      const size_t w = row_bytes_;
      std::memcpy(values_->mutable_data() + length_ * w, column.values()->data() + offset * w,
                  static_cast<size_t>(length) * w);
      break;
    }
  }
  length_ += length;
}

Column ColumnBuilder::Finish() {
  Column c;
  c.type_ = type_;
  c.length_ = length_;
  c.null_count_ = null_count_;
  c.cell_size_ = std::max<int64_t>(CellSize(cell_shape_), 0);
  c.cell_shape_ = cell_shape_;
  values_->Truncate(BuiltValuesBytes(length_));
  c.values_ = std::move(values_);
  if (null_count_ > 0) {
    validity_->Truncate(BitmapBytes(length_));
    c.validity_ = std::move(validity_);
  }
  if (IsVariableWidth(type_)) {
    data_->Truncate(data_size_);
    c.data_ = std::move(data_);
  }
  *this = ColumnBuilder(type_, std::move(cell_shape_));
  return c;
}

// --- Table -------------------------------------------------------------------------

Result<Table> Table::Make(std::vector<std::string> names, std::vector<Column> columns) {
  if (names.size() != columns.size()) {
    return Status::InvalidArgument("table has " + std::to_string(names.size()) + " names but " +
                                   std::to_string(columns.size()) + " columns");
  }
  Table t;
  t.num_rows_ = columns.empty() ? 0 : columns[0].length();
  for (size_t i = 1; i < columns.size(); ++i) {
    if (columns[i].length() != t.num_rows_) {
      return Status::InvalidArgument("column '" + names[i] + "' has " + std::to_string(columns[i].length()) +
                                     " rows, column '" + names[0] + "' has " + std::to_string(t.num_rows_));
    }
  }
  t.names_ = std::move(names);
  t.columns_ = std::move(columns);
  return t;
}

Table Table::Empty(int64_t num_rows) {
  Table t;
  t.num_rows_ = num_rows < 0 ? 0 : num_rows;
  return t;
}

Table Table::EmptyWithSchema(const Schema& schema) {
  Table t;
  for (const auto& [name, type] : schema) {
    t.names_.push_back(name);
    t.columns_.push_back(ColumnBuilder(type).Finish());
  }
  return t;
}

int Table::ColumnIndex(std::string_view name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return static_cast<int>(i);
  }
  return -1;
}

const Column* Table::FindColumn(std::string_view name) const {
  int i = ColumnIndex(name);
  return i < 0 ? nullptr : &columns_[i];
}

Schema Table::schema() const {
  Schema s;
  s.reserve(names_.size());
  for (size_t i = 0; i < names_.size(); ++i) s.emplace_back(names_[i], columns_[i].type());
  return s;
}

Result<Table> Table::Slice(int64_t offset, int64_t length) const {
  if (offset < 0 || length < 0 || offset > num_rows_ || length > num_rows_ - offset) {
    return Status::InvalidArgument("slice [" + std::to_string(offset) + ", " + std::to_string(offset + length) +
                                   ") out of range for a table of " + std::to_string(num_rows_) + " rows");
  }
  Table t;
  t.names_ = names_;
  t.num_rows_ = length;
  t.columns_.reserve(columns_.size());
  for (const Column& c : columns_) {
    PYFUNC_ASSIGN_OR_RETURN(Column s, c.Slice(offset, length));
    t.columns_.push_back(std::move(s));
  }
  return t;
}

Result<Table> Table::Concat(const std::vector<Table>& tables) {
  if (tables.empty()) return Table();
  if (tables.size() == 1) return tables[0];
  const Table& first = tables[0];
  int64_t rows = 0;
  for (size_t t = 0; t < tables.size(); ++t) {
    const Table& other = tables[t];
    if (other.num_columns() != first.num_columns()) {
      return Status::InvalidArgument("Concat: table " + std::to_string(t) + " has " +
                                     std::to_string(other.num_columns()) + " columns, table 0 has " +
                                     std::to_string(first.num_columns()));
    }
    for (int i = 0; i < first.num_columns(); ++i) {
      if (other.names_[i] != first.names_[i] || other.columns_[i].type() != first.columns_[i].type()) {
        return Status::InvalidArgument("Concat: table " + std::to_string(t) + " column " + std::to_string(i) + " is '" +
                                       other.names_[i] + "':" + DataTypeName(other.columns_[i].type()) +
                                       ", table 0 has '" + first.names_[i] +
                                       "':" + DataTypeName(first.columns_[i].type()));
      }
    }
    rows += other.num_rows_;
  }
  Table out;
  out.names_ = first.names_;
  out.num_rows_ = rows;
  std::vector<Column> parts(tables.size());
  for (int i = 0; i < first.num_columns(); ++i) {
    for (size_t t = 0; t < tables.size(); ++t) parts[t] = tables[t].columns_[i];
    PYFUNC_ASSIGN_OR_RETURN(Column c, Column::Concat(parts));
    out.columns_.push_back(std::move(c));
  }
  return out;
}

bool Table::Equals(const Table& other) const {
  if (names_ != other.names_ || num_rows_ != other.num_rows_) return false;
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (!columns_[i].Equals(other.columns_[i])) return false;
  }
  return true;
}

std::string Table::ToString() const {
  std::string out;
  for (size_t i = 0; i < names_.size(); ++i) {
    if (i) out += " | ";
    out += names_[i];
    out += ':';
    out += DataTypeName(columns_[i].type());
    for (int64_t d : columns_[i].cell_shape()) {
      out += '[';
      out += std::to_string(d);
      out += ']';
    }
    if (columns_[i].time_unit() != TimeUnit::kNanosecond) {
      out += '[';
      out += TimeUnitName(columns_[i].time_unit());
      out += ']';
    }
  }
  out += '\n';
  for (int64_t r = 0; r < num_rows_; ++r) {
    for (size_t i = 0; i < columns_.size(); ++i) {
      if (i) out += " | ";
      const Column& c = columns_[i];
      if (c.IsNull(r)) {
        out += "null";
        continue;
      }
      if (c.is_tensor()) {
        AppendTensorText(c, r, &out);
        continue;
      }
      switch (c.type()) {
        case DataType::kInt64: out += std::to_string(c.int64_data()[r]); break;
        case DataType::kUInt64: out += std::to_string(c.data_as<uint64_t>()[r]); break;
        case DataType::kFloat64: AppendPythonFloat(c.float64_data()[r], &out); break;
        case DataType::kFloat32: AppendNumpyFloat32(c.data_as<float>()[r], &out); break;
        case DataType::kFloat16: AppendPythonFloat(c.NumberAt(r), &out); break;
        case DataType::kBool: out += c.bool_value(r) ? "true" : "false"; break;
        case DataType::kTimestamp: AppendIsoTimestamp(c.int64_data()[r], 'T', &out); break;
        case DataType::kString:
        case DataType::kBinary: AppendCQuoted(c.string_value(r), &out); break;
        default: out += std::to_string(static_cast<int64_t>(c.NumberAt(r))); break;
      }
    }
    out += '\n';
  }
  return out;
}

// --- TableBuilder ------------------------------------------------------------------

TableBuilder::TableBuilder(const Schema& schema) {
  for (const auto& [name, type] : schema) {
    names_.push_back(name);
    builders_.emplace_back(type);
  }
}

Result<Table> TableBuilder::Finish() {
  std::vector<Column> columns;
  columns.reserve(builders_.size());
  for (ColumnBuilder& b : builders_) columns.push_back(b.Finish());
  return Table::Make(names_, std::move(columns));
}

}  // namespace pyfunc
