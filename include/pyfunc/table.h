// Table: the columnar data that flows through a prediction.
//
// A Table is a list of named columns of equal length. Every codec (CSV, JSON) produces
// and consumes Tables, the batcher merges and splits them, and the runtime copies their
// buffers into shared memory, where the Python worker maps numeric columns with
// `numpy.frombuffer` without copying.
//
// Memory layout: each column is laid out exactly as the Arrow C Data Interface lays out
// the corresponding Arrow type, always with offset 0 (see "Buffers" below):
//
//   DataType     Arrow format   buffers (Arrow order)
//   kInt64       "l"            validity, int64 values (little-endian, 8 bytes per row)
//   kFloat64     "g"            validity, IEEE-754 double values (8 bytes per row)
//   kBool        "b"            validity, values bit-packed LSB-first (bit i of byte i/8)
//   kString      "U"            validity, int64 offsets (length+1 of them), UTF-8 bytes
//   kTimestamp   "tsn:UTC"      validity, int64 nanoseconds since the Unix epoch, UTC
//   kInt8..32    "c" "s" "i"    validity, 1/2/4-byte signed values
//   kUInt8..64   "C" "S" "I" "L" validity, 1/2/4/8-byte unsigned values
//   kFloat16/32  "e" "f"        validity, IEEE-754 half / single values
//   kBinary      "Z"            validity, int64 offsets (length+1 of them), bytes
//
// The narrow numeric types and binary exist so that what a model returns (an int32
// column, a float32 array, bytes) keeps its type through worker processes, as numpy
// and MLflow keep it; the codecs that read text (CSV, JSON) produce the five wide types.
//
// Strings use Arrow's "large utf8" (64-bit offsets): no 2 GiB limit per column, and the
// offsets map to a numpy int64 array directly. A string may contain NUL bytes. The
// validity bitmap is LSB-first, 1 = valid; a column without nulls has no validity
// buffer at all (validity() == nullptr).
//
// Buffers: every buffer starts on a 64-byte boundary, is contiguous, and its
// allocation is zero-padded up to a multiple of 64 bytes (as Arrow recommends).
// A column's buffers always describe rows [0, length): Slice and Concat produce new,
// compact buffers, and ImportTable copies foreign buffers into pyfunc-owned ones, so a
// consumer never needs an offset. Buffers are immutable once a column is built and are
// shared (reference-counted) between copies of a Column or Table, so copying a Table is
// cheap and never copies data.
//
// Tensor cells: a column of a fixed-width type may hold, in each row, a tensor of one
// shape (`cell_shape()`, e.g. {3} for a float32 vector per row, {2, 2} for a matrix):
// what a dict of N-d arrays or an N-d array has per first-axis entry. The values buffer
// holds the rows one after another, each `cell_size()` elements in C order (numpy's
// layout of an array of shape (rows, *cell_shape)); validity is per row. Such columns
// come from the Python side (a model's dict of 2-D arrays, a caller's N-d arrays) and
// go back to it or to a JSON writer, which writes each cell as nested lists. A column
// of scalar cells has an empty cell_shape and a cell_size of 1.
//
// Nulls versus NaN: a float64 column may hold NaN values that are *valid*; a null is a
// cleared validity bit (the value slot holds 0). pandas does not distinguish them
// (both are NaN). Conversions that match pandas (the worker, the JSON writer) treat a
// null float64 as NaN; an int64 column with nulls becomes float64 with NaN in pandas,
// and a bool column with nulls becomes an object column of True/False/None.
//
// Thread safety: a built Column or Table is immutable and may be read from any number
// of threads. Builders are not thread-safe.
#ifndef PYFUNC_TABLE_H_
#define PYFUNC_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pyfunc/arrow_c_data.h"
#include "pyfunc/status.h"

namespace pyfunc {

enum class DataType : uint8_t {
  kInt64 = 0,
  kFloat64 = 1,
  kBool = 2,
  kString = 3,
  kTimestamp = 4,
  kInt8 = 5,
  kInt16 = 6,
  kInt32 = 7,
  kUInt8 = 8,
  kUInt16 = 9,
  kUInt32 = 10,
  kUInt64 = 11,
  kFloat16 = 12,
  kFloat32 = 13,
  kBinary = 14,
};
inline constexpr int kNumDataTypes = 15;

// Bytes per value of a fixed-width type (1, 2, 4 or 8); 0 for kBool (bit-packed) and
// for kString and kBinary (offsets + data).
int ByteWidth(DataType type);
// kInt8..kInt64 and kUInt8..kUInt64.
bool IsInteger(DataType type);
bool IsUnsigned(DataType type);
// kFloat16, kFloat32, kFloat64.
bool IsFloating(DataType type);
// kString and kBinary: int64 offsets and a data buffer.
inline bool IsVariableWidth(DataType type) { return type == DataType::kString || type == DataType::kBinary; }
// An IEEE-754 half-precision value (its bits) as a double (exact).
double HalfToDouble(uint16_t bits);

// The unit of the datetimes a timestamp column held where it came from (numpy's
// datetime64 unit). The values are nanoseconds whatever the unit; the unit travels so
// that a caller's datetime64[us] column (pandas 3's default for parsed text) comes back
// as datetime64[us], as it would from MLflow in process.
enum class TimeUnit : uint8_t { kNanosecond = 0, kMicrosecond = 1, kMillisecond = 2, kSecond = 3 };
inline constexpr int kNumTimeUnits = 4;
// "ns", "us", "ms", "s".
const char* TimeUnitName(TimeUnit unit);

// "int64", "float64", "bool", "string", "timestamp", "int8", ..., "uint64", "float16",
// "float32", "binary" (the numpy dtype names, where there is one).
const char* DataTypeName(DataType type);
// Parses a DataTypeName, or one of MLflow's column types (`long`, `integer` → int64;
// `double`, `float` → float64; `boolean` → bool; `string` → string; `datetime` →
// timestamp), or a DataTypeName. InvalidArgument for anything else (arrays, objects).
// MLflow's `integer` and `float` name int32 and float32 columns; they parse to the wide
// types because the text codecs read into those (the worker narrows by the signature).
Result<DataType> ParseDataType(std::string_view name);
// The Arrow format string of the type ("l", "g", "b", "U", "tsn:UTC").
const char* ArrowFormat(DataType type);

// Column names and types, in column order. Also the form the CSV reader takes a model
// signature in.
using Schema = std::vector<std::pair<std::string, DataType>>;

// A block of immutable bytes: 64-byte aligned, zero-padded to a multiple of 64 bytes.
class Buffer {
 public:
  // A zero-filled buffer of `size` bytes (never fails short of std::bad_alloc).
  static std::shared_ptr<Buffer> Allocate(size_t size);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  const uint8_t* data() const { return data_; }
  // Logical size in bytes (the padding beyond it is not counted).
  size_t size() const { return size_; }
  // Writable access, for builders and codecs before the buffer is shared.
  uint8_t* mutable_data() { return data_; }
  // Shrinks the logical size (never grows; the allocation is kept).
  void Truncate(size_t size) {
    if (size < size_) size_ = size;
  }

 private:
  Buffer(uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t* data_;
  size_t size_;
};

// True when bit i of an LSB-first bitmap is set.
inline bool GetBit(const uint8_t* bits, int64_t i) { return (bits[i >> 3] >> (i & 7)) & 1; }

// One column: a type, a length and its Arrow-layout buffers.
class Column {
 public:
  Column() = default;  // an empty int64 column
  // Assembles a column from buffers; checks sizes (values, offsets monotone and within
  // the data buffer, validity large enough) and counts nulls. `validity` may be null
  // (no nulls). For kString, `data` holds the UTF-8 bytes; for other types it must be
  // null. UTF-8 validity of strings is not checked here.
  static Result<Column> Make(DataType type, int64_t length, std::shared_ptr<Buffer> validity,
                             std::shared_ptr<Buffer> values, std::shared_ptr<Buffer> data = nullptr);
  // A column of tensor cells of `cell_shape` (each dimension >= 0; empty: scalars, as
  // Make): `values` holds length * product(cell_shape) values of the fixed-width `type`.
  // InvalidArgument for other types or a buffer too small.
  static Result<Column> MakeTensor(DataType type, int64_t length, std::vector<int64_t> cell_shape,
                                   std::shared_ptr<Buffer> validity, std::shared_ptr<Buffer> values);
  // A column of `length` nulls.
  static Column Nulls(DataType type, int64_t length);

  DataType type() const { return type_; }
  int64_t length() const { return length_; }
  int64_t null_count() const { return null_count_; }
  // The shape of each row's tensor; empty for scalar cells (see "Tensor cells" above).
  const std::vector<int64_t>& cell_shape() const { return cell_shape_; }
  bool is_tensor() const { return !cell_shape_.empty(); }
  // Values per row: the product of cell_shape() (1 for scalar cells).
  int64_t cell_size() const { return cell_size_; }
  // Timestamp columns: the unit their datetimes had (see TimeUnit); kNanosecond else.
  TimeUnit time_unit() const { return time_unit_; }
  // This column (sharing its buffers) with the time unit set; a column of another type
  // than kTimestamp is returned as it is.
  Column WithTimeUnit(TimeUnit unit) const;

  // --- Buffers (what the shared-memory layer copies) ---
  // Validity bitmap, ceil(length/8) bytes; nullptr when the column has no nulls.
  const Buffer* validity() const { return validity_.get(); }
  // Values: fixed-width types: ByteWidth*length bytes; bool: ceil(length/8) bytes;
  // string and binary: the (length+1) int64 offsets. Never null.
  const Buffer* values() const { return values_.get(); }
  // String and binary only: the bytes, offsets()[length] of them. nullptr otherwise.
  const Buffer* string_data() const { return data_.get(); }
  // Shared handles to the same buffers (for a consumer that keeps them alive).
  const std::shared_ptr<Buffer>& validity_buffer() const { return validity_; }
  const std::shared_ptr<Buffer>& values_buffer() const { return values_; }
  const std::shared_ptr<Buffer>& string_data_buffer() const { return data_; }

  // --- Element access (no bounds or type checks in release builds) ---
  bool IsNull(int64_t i) const { return validity_ && !GetBit(validity_->data(), i); }
  bool IsValid(int64_t i) const { return !IsNull(i); }
  // kInt64 and kTimestamp.
  const int64_t* int64_data() const { return reinterpret_cast<const int64_t*>(values_->data()); }
  const double* float64_data() const { return reinterpret_cast<const double*>(values_->data()); }
  // Values of any fixed-width type as T (T must match the type's width and kind).
  template <typename T>
  const T* data_as() const {
    return reinterpret_cast<const T*>(values_->data());
  }
  // A numeric value (integers, floats, bool) as a double, for writers and casts. `i`
  // indexes values: row i for scalar cells, row i / cell_size() of tensor cells.
  double NumberAt(int64_t i) const;
  bool bool_value(int64_t i) const { return GetBit(values_->data(), i); }
  const int64_t* string_offsets() const { return int64_data(); }
  std::string_view string_value(int64_t i) const {
    const int64_t* o = string_offsets();
    return std::string_view(reinterpret_cast<const char*>(data_->data()) + o[i], static_cast<size_t>(o[i + 1] - o[i]));
  }

  // Rows [offset, offset+length) as a new compact column (copies those rows; the whole
  // range returns this column's buffers shared). InvalidArgument when out of range.
  Result<Column> Slice(int64_t offset, int64_t length) const;
  // The columns one after another. InvalidArgument if the types or cell shapes differ
  // or `columns` is empty. Timestamps keep their time unit when all have the same one.
  static Result<Column> Concat(const std::vector<Column>& columns);
  // Converts to another type where the conversion is lossless in the pandas sense:
  // any integer or float → float64, signed integers and uint8..32 → int64, and
  // anything → itself (tensor cells keep their shape). InvalidArgument otherwise.
  Result<Column> CastTo(DataType type) const;

  // Same type, cell shape, time unit, length, validity and values (floats compared equal
  // or both NaN; the contents of null slots are ignored).
  bool Equals(const Column& other) const;

 private:
  DataType type_ = DataType::kInt64;
  int64_t length_ = 0;
  int64_t null_count_ = 0;
  std::vector<int64_t> cell_shape_;
  int64_t cell_size_ = 1;
  TimeUnit time_unit_ = TimeUnit::kNanosecond;
  std::shared_ptr<Buffer> validity_;
  std::shared_ptr<Buffer> values_;
  std::shared_ptr<Buffer> data_;
  friend class ColumnBuilder;
};

// Appends values and nulls to a growing column. Append with a type other than the
// builder's is a programming error (checked with assert). The validity bitmap is only
// materialized once the first null is appended.
class ColumnBuilder {
 public:
  // `cell_shape`: tensor cells of that shape (a fixed-width type only); AppendFixed then
  // appends a whole cell and AppendFrom takes columns of the same cell shape.
  explicit ColumnBuilder(DataType type, std::vector<int64_t> cell_shape = {});
  ~ColumnBuilder();
  ColumnBuilder(ColumnBuilder&&) noexcept;
  ColumnBuilder& operator=(ColumnBuilder&&) noexcept;

  DataType type() const { return type_; }
  int64_t length() const { return length_; }

  // Reserves room for `rows` more rows (and, for strings, `string_bytes` more bytes).
  void Reserve(int64_t rows, int64_t string_bytes = 0);
  void AppendNull();
  void AppendNulls(int64_t n);
  void AppendInt64(int64_t v);            // kInt64
  void AppendFloat64(double v);           // kFloat64
  void AppendBool(bool v);                // kBool
  void AppendString(std::string_view v);  // kString and kBinary (any bytes, NUL included)
  // Any fixed-width type: one row, ByteWidth(type()) * cell size bytes from `value`,
  // in the type's layout.
  void AppendFixed(const void* value);
  void AppendTimestamp(int64_t ns);  // kTimestamp, ns since epoch UTC
  // Appends rows [offset, offset+length) of a column of the same type.
  void AppendFrom(const Column& column, int64_t offset, int64_t length);

  // Returns the built column and resets the builder to empty (same type).
  Column Finish();

 private:
  size_t BuiltValuesBytes(int64_t rows) const;
  void GrowValues(size_t needed_bytes);
  void GrowData(size_t needed_bytes);
  void EnsureValidity();
  void SetValid(bool valid);

  DataType type_;
  std::vector<int64_t> cell_shape_;
  size_t row_bytes_ = 0;  // fixed-width types: bytes per row
  int64_t length_ = 0;
  int64_t null_count_ = 0;
  std::shared_ptr<Buffer> validity_;  // null until the first null
  std::shared_ptr<Buffer> values_;
  std::shared_ptr<Buffer> data_;  // strings only
  size_t data_size_ = 0;
};

// A Table: named columns of equal length. Names need not be unique (pandas allows
// duplicates); lookups by name find the first.
class Table {
 public:
  Table() = default;  // no columns, no rows
  // InvalidArgument if names and columns differ in number or the lengths differ.
  static Result<Table> Make(std::vector<std::string> names, std::vector<Column> columns);
  // A table with `num_rows` rows and no columns (pandas: DataFrame(index=range(n))).
  static Table Empty(int64_t num_rows);
  // A table of the given schema with zero rows.
  static Table EmptyWithSchema(const Schema& schema);

  int num_columns() const { return static_cast<int>(columns_.size()); }
  int64_t num_rows() const { return num_rows_; }
  const std::string& column_name(int i) const { return names_[i]; }
  const std::vector<std::string>& column_names() const { return names_; }
  const Column& column(int i) const { return columns_[i]; }
  const std::vector<Column>& columns() const { return columns_; }
  // Index of the first column with this name, or -1.
  int ColumnIndex(std::string_view name) const;
  // The column with this name, or nullptr.
  const Column* FindColumn(std::string_view name) const;
  Schema schema() const;

  // Rows [offset, offset+length). InvalidArgument when offset < 0, length < 0 or
  // offset+length > num_rows(). Copies the rows (see "Buffers" above).
  Result<Table> Slice(int64_t offset, int64_t length) const;
  // The tables' rows one after another. All tables must have the same column names
  // and types, in the same order (InvalidArgument naming the first difference).
  // An empty list gives an empty Table.
  static Result<Table> Concat(const std::vector<Table>& tables);

  bool Equals(const Table& other) const;  // names, types and values
  // A small text rendering for tests and debugging:
  //   a:int64 | b:string
  //   1 | "x"
  //   null | "y\n"
  // floats in shortest round-trip form, strings quoted with C escapes, timestamps ISO.
  std::string ToString() const;

 private:
  std::vector<std::string> names_;
  std::vector<Column> columns_;
  int64_t num_rows_ = 0;
};

// Builds a Table row by row or column by column over a fixed schema.
class TableBuilder {
 public:
  explicit TableBuilder(const Schema& schema);
  int num_columns() const { return static_cast<int>(builders_.size()); }
  ColumnBuilder& column(int i) { return builders_[i]; }
  // InvalidArgument if the columns have different lengths. Resets the builders.
  Result<Table> Finish();

 private:
  std::vector<std::string> names_;
  std::vector<ColumnBuilder> builders_;
};

// --- Arrow C Data Interface ------------------------------------------------------
//
// A Table crosses the interface as a struct array (format "+s", no validity buffer,
// length = num_rows) whose children are the columns, each child schema named after
// its column and flagged ARROW_FLAG_NULLABLE.

// Exports `table` into caller-provided structs. The exported arrays share the table's
// buffers (no copy); their release callbacks drop the references, so the data stays
// valid until both structs are released, independently of `table`'s lifetime.
// The caller must eventually call out_schema->release and out_array->release.
Status ExportTable(const Table& table, ArrowSchema* out_schema, ArrowArray* out_array);
// Exports one column as a plain array (with `name` in the schema). Tensor cells are
// exported as nested fixed-size lists ("+w:<dim>" per dimension, the values the
// innermost child), as Arrow's fixed_shape_tensor stores them.
Status ExportColumn(const Column& column, const std::string& name, ArrowSchema* out_schema, ArrowArray* out_array);

// Imports a "+s" struct array. Accepted child formats: "l", "g", "b", "U", "Z", "c",
// "s", "i", "C", "S", "I", "L", "e", "f" (each as its DataType), "u" and "z" (int32
// offsets, widened to int64), "tsn:<tz>", "tsu:<tz>", "tsm:<tz>", "tss:<tz>" (converted
// to ns, the timezone dropped: values are UTC by definition of the interface) and "n"
// (all-null, becomes float64). Offsets (array->offset) are honoured. The data is copied
// into pyfunc buffers. Both structs are consumed: their release callbacks have been
// called when this returns, whether it succeeds or not. InvalidArgument for an
// unsupported format, a struct-level null, dictionary arrays or inconsistent lengths.
Result<Table> ImportTable(ArrowSchema* schema, ArrowArray* array);
// Imports one plain (non-struct) array as a Column, consuming both structs likewise.
Result<Column> ImportColumn(ArrowSchema* schema, ArrowArray* array);

}  // namespace pyfunc

#endif  // PYFUNC_TABLE_H_
