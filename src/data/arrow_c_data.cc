// Export to and import from the Arrow C Data Interface.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "pyfunc/table.h"

namespace pyfunc {

namespace {

// --- Export ------------------------------------------------------------------------

struct SchemaPrivate {
  std::string format;
  std::string name;
  std::vector<ArrowSchema*> children;
};

void ReleaseSchema(ArrowSchema* schema) {
  if (schema == nullptr || schema->release == nullptr) return;
  auto* priv = static_cast<SchemaPrivate*>(schema->private_data);
  for (ArrowSchema* child : priv->children) {
    if (child->release != nullptr) child->release(child);
    delete child;
  }
  delete priv;
  schema->release = nullptr;
}

void FillSchema(ArrowSchema* out, std::string format, std::string name, int64_t flags) {
  auto* priv = new SchemaPrivate{std::move(format), std::move(name), {}};
  out->format = priv->format.c_str();
  out->name = priv->name.c_str();
  out->metadata = nullptr;
  out->flags = flags;
  out->n_children = 0;
  out->children = nullptr;
  out->dictionary = nullptr;
  out->release = ReleaseSchema;
  out->private_data = priv;
}

struct ArrayPrivate {
  std::vector<std::shared_ptr<Buffer>> owned;
  std::vector<const void*> buffers;
  std::vector<ArrowArray*> children;
};

void ReleaseArray(ArrowArray* array) {
  if (array == nullptr || array->release == nullptr) return;
  auto* priv = static_cast<ArrayPrivate*>(array->private_data);
  for (ArrowArray* child : priv->children) {
    if (child->release != nullptr) child->release(child);
    delete child;
  }
  delete priv;
  array->release = nullptr;
}

void FillColumnArray(const Column& column, ArrowArray* out) {
  auto* priv = new ArrayPrivate;
  // A default-constructed Column has no values buffer; Arrow consumers prefer
  // non-null pointers even for zero-length arrays.
  std::shared_ptr<Buffer> values = column.values_buffer();
  if (!values) values = Buffer::Allocate(8);
  priv->owned.push_back(column.validity_buffer());
  priv->owned.push_back(values);
  priv->buffers.push_back(column.validity() ? column.validity()->data() : nullptr);
  priv->buffers.push_back(values->data());
  if (IsVariableWidth(column.type())) {
    std::shared_ptr<Buffer> data = column.string_data_buffer();
    if (!data) data = Buffer::Allocate(0);
    priv->owned.push_back(data);
    priv->buffers.push_back(data->data());
  }
  out->length = column.length();
  out->null_count = column.null_count();
  out->offset = 0;
  out->n_buffers = static_cast<int64_t>(priv->buffers.size());
  out->n_children = 0;
  out->buffers = priv->buffers.data();
  out->children = nullptr;
  out->dictionary = nullptr;
  out->release = ReleaseArray;
  out->private_data = priv;
}

// Fills one level of a column of tensor cells: level k < ndim is a fixed-size list
// "+w:<dim k>" of `length` entries (the column's validity at level 0), whose child is
// the next level; level ndim is the values, length * cell size of them.
void FillTensorLevel(const Column& column, size_t level, int64_t length, const std::string& name, ArrowSchema* schema,
                     ArrowArray* array) {
  const std::vector<int64_t>& shape = column.cell_shape();
  if (level == shape.size()) {
    FillSchema(schema, ArrowFormat(column.type()), name, 0);
    auto* priv = new ArrayPrivate;
    std::shared_ptr<Buffer> values = column.values_buffer() ? column.values_buffer() : Buffer::Allocate(8);
    priv->owned.push_back(values);
    priv->buffers.push_back(nullptr);
    priv->buffers.push_back(values->data());
    *array = ArrowArray{length, 0, 0, 2, 0, priv->buffers.data(), nullptr, nullptr, ReleaseArray, priv};
    return;
  }
  FillSchema(schema, "+w:" + std::to_string(shape[level]), name, level == 0 ? ARROW_FLAG_NULLABLE : 0);
  auto* spriv = static_cast<SchemaPrivate*>(schema->private_data);
  auto* child_schema = new ArrowSchema;
  auto* child_array = new ArrowArray;
  FillTensorLevel(column, level + 1, length * shape[level], "item", child_schema, child_array);
  spriv->children.push_back(child_schema);
  schema->n_children = 1;
  schema->children = spriv->children.data();
  auto* priv = new ArrayPrivate;
  const bool top = level == 0;
  if (top) priv->owned.push_back(column.validity_buffer());
  priv->buffers.push_back(top && column.validity() ? column.validity()->data() : nullptr);
  priv->children.push_back(child_array);
  *array = ArrowArray{length,
                      top ? column.null_count() : 0,
                      0,
                      1,
                      1,
                      priv->buffers.data(),
                      priv->children.data(),
                      nullptr,
                      ReleaseArray,
                      priv};
}

// One column as an Arrow array with its schema.
void FillColumn(const Column& column, const std::string& name, ArrowSchema* schema, ArrowArray* array) {
  if (column.is_tensor()) {
    FillTensorLevel(column, 0, column.length(), name, schema, array);
    return;
  }
  FillSchema(schema, ArrowFormat(column.type()), name, ARROW_FLAG_NULLABLE);
  FillColumnArray(column, array);
}

// --- Import ------------------------------------------------------------------------

// Releases a consumed struct pair on every return path.
struct Consumed {
  ArrowSchema* schema;
  ArrowArray* array;
  ~Consumed() {
    if (array && array->release) array->release(array);
    if (schema && schema->release) schema->release(schema);
  }
};

bool Bit(const void* bits, int64_t i) { return (static_cast<const uint8_t*>(bits)[i >> 3] >> (i & 7)) & 1; }

template <typename T>
const T* Buf(const ArrowArray* a, int i) {
  return static_cast<const T*>(a->buffers[i]);
}

Result<Column> ImportChild(const ArrowSchema* schema, const ArrowArray* array, const std::string& where) {
  std::string format = schema->format ? schema->format : "";
  auto fail = [&](const std::string& msg) { return Status::InvalidArgument(where + ": " + msg); };
  if (schema->dictionary != nullptr || array->dictionary != nullptr) {
    return fail("dictionary-encoded arrays are not supported");
  }
  if (array->length < 0 || array->offset < 0) return fail("negative length or offset");
  const int64_t n = array->length, off = array->offset;
  if (format == "n") return Column::Nulls(DataType::kFloat64, n);

  const bool var_width = format == "u" || format == "U" || format == "z" || format == "Z";
  int64_t needed_buffers = var_width ? 3 : 2;
  if (array->n_buffers != needed_buffers) {
    return fail("format '" + format + "' needs " + std::to_string(needed_buffers) + " buffers, got " +
                std::to_string(array->n_buffers));
  }
  if (n > 0 && array->buffers[1] == nullptr) return fail("missing values buffer");
  const void* validity = array->null_count != 0 ? array->buffers[0] : nullptr;
  auto valid = [&](int64_t i) { return validity == nullptr || Bit(validity, off + i); };

  DataType type = DataType::kInt64;
  int64_t ts_scale = 1;
  bool found = false;
  if (format == "u" || format == "z") {
    type = format == "u" ? DataType::kString : DataType::kBinary;
    found = true;
  }
  for (int t = 0; t < kNumDataTypes && !found; ++t) {
    if (format == ArrowFormat(static_cast<DataType>(t))) {
      type = static_cast<DataType>(t);
      found = true;
    }
  }
  if (found && type == DataType::kTimestamp) found = false;  // handled below, any zone
  if (!found && format.size() >= 4 && format.compare(0, 2, "ts") == 0 && format[3] == ':') {
    type = DataType::kTimestamp;
    found = true;
    switch (format[2]) {
      case 'n': ts_scale = 1; break;
      case 'u': ts_scale = 1000; break;
      case 'm': ts_scale = 1000000; break;
      case 's': ts_scale = 1000000000; break;
      default: return fail("unsupported timestamp format '" + format + "'");
    }
  }
  if (!found) return fail("unsupported Arrow format '" + format + "'");
  if (var_width && n > 0 && array->buffers[2] == nullptr) return fail("missing data buffer");

  ColumnBuilder b(type);
  if (n == 0) return b.Finish();
  b.Reserve(n);
  switch (type) {
    case DataType::kBool:
      for (int64_t i = 0; i < n; ++i) {
        if (!valid(i))
          b.AppendNull();
        else
          b.AppendBool(Bit(array->buffers[1], off + i));
      }
      break;
    case DataType::kTimestamp:
      for (int64_t i = 0; i < n; ++i) {
        if (!valid(i)) {
          b.AppendNull();
          continue;
        }
        int64_t v = Buf<int64_t>(array, 1)[off + i];
        int64_t ns;
        if (__builtin_mul_overflow(v, ts_scale, &ns)) {
          return fail("timestamp at row " + std::to_string(i) + " overflows int64 nanoseconds");
        }
        b.AppendTimestamp(ns);
      }
      break;
    case DataType::kString:
    case DataType::kBinary: {
      const char* data = Buf<char>(array, 2);
      const bool large = format == "U" || format == "Z";
      for (int64_t i = 0; i < n; ++i) {
        if (!valid(i)) {
          b.AppendNull();
          continue;
        }
        int64_t begin, end;
        if (large) {
          begin = Buf<int64_t>(array, 1)[off + i];
          end = Buf<int64_t>(array, 1)[off + i + 1];
        } else {
          begin = Buf<int32_t>(array, 1)[off + i];
          end = Buf<int32_t>(array, 1)[off + i + 1];
        }
        if (begin < 0 || end < begin) return fail("bad offsets at row " + std::to_string(i));
        b.AppendString(std::string_view(data + begin, static_cast<size_t>(end - begin)));
      }
      break;
    }
    default: {  // fixed-width numbers: one copy of the values, null slots zeroed
      const auto* values = static_cast<const uint8_t*>(array->buffers[1]);
      const size_t w = static_cast<size_t>(ByteWidth(type));
      std::shared_ptr<Buffer> out = Buffer::Allocate(static_cast<size_t>(n) * w);
      std::memcpy(out->mutable_data(), values + static_cast<size_t>(off) * w, static_cast<size_t>(n) * w);
      std::shared_ptr<Buffer> bits;
      if (validity != nullptr) {
        bits = Buffer::Allocate(static_cast<size_t>((n + 7) / 8));
        uint8_t* dst = bits->mutable_data();
        for (int64_t i = 0; i < n; ++i) {
          if (valid(i)) {
            dst[i >> 3] |= static_cast<uint8_t>(1u << (i & 7));
          } else {
            std::memset(out->mutable_data() + static_cast<size_t>(i) * w, 0, w);
          }
        }
      }
      return Column::Make(type, n, std::move(bits), std::move(out));
    }
  }
  return b.Finish();
}

}  // namespace

Status ExportColumn(const Column& column, const std::string& name, ArrowSchema* out_schema, ArrowArray* out_array) {
  FillColumn(column, name, out_schema, out_array);
  return Status::OK();
}

Status ExportTable(const Table& table, ArrowSchema* out_schema, ArrowArray* out_array) {
  FillSchema(out_schema, "+s", "", 0);
  auto* spriv = static_cast<SchemaPrivate*>(out_schema->private_data);
  auto* apriv = new ArrayPrivate;
  apriv->buffers.push_back(nullptr);  // no struct-level validity
  for (int i = 0; i < table.num_columns(); ++i) {
    auto* cs = new ArrowSchema;
    auto* ca = new ArrowArray;
    FillColumn(table.column(i), table.column_name(i), cs, ca);
    spriv->children.push_back(cs);
    apriv->children.push_back(ca);
  }
  out_schema->n_children = static_cast<int64_t>(spriv->children.size());
  out_schema->children = spriv->children.data();
  out_array->length = table.num_rows();
  out_array->null_count = 0;
  out_array->offset = 0;
  out_array->n_buffers = 1;
  out_array->n_children = static_cast<int64_t>(apriv->children.size());
  out_array->buffers = apriv->buffers.data();
  out_array->children = apriv->children.data();
  out_array->dictionary = nullptr;
  out_array->release = ReleaseArray;
  out_array->private_data = apriv;
  return Status::OK();
}

Result<Column> ImportColumn(ArrowSchema* schema, ArrowArray* array) {
  Consumed consumed{schema, array};
  if (schema == nullptr || array == nullptr || schema->release == nullptr || array->release == nullptr) {
    return Status::InvalidArgument("Arrow import: released or null struct");
  }
  return ImportChild(schema, array, "Arrow import");
}

Result<Table> ImportTable(ArrowSchema* schema, ArrowArray* array) {
  Consumed consumed{schema, array};
  if (schema == nullptr || array == nullptr || schema->release == nullptr || array->release == nullptr) {
    return Status::InvalidArgument("Arrow import: released or null struct");
  }
  if (schema->format == nullptr || std::strcmp(schema->format, "+s") != 0) {
    return Status::InvalidArgument(std::string("Arrow import: expected a struct array (format "
                                               "'+s'), got '") +
                                   (schema->format ? schema->format : "") + "'");
  }
  if (schema->n_children != array->n_children) {
    return Status::InvalidArgument("Arrow import: schema has " + std::to_string(schema->n_children) +
                                   " children, array has " + std::to_string(array->n_children));
  }
  if (array->null_count != 0 && array->n_buffers > 0 && array->buffers[0] != nullptr) {
    return Status::InvalidArgument("Arrow import: struct-level nulls are not supported");
  }
  std::vector<std::string> names;
  std::vector<Column> columns;
  for (int64_t i = 0; i < schema->n_children; ++i) {
    const ArrowSchema* cs = schema->children[i];
    const ArrowArray* ca = array->children[i];
    std::string name = cs->name ? cs->name : "";
    // A child of a sliced struct is read at the struct's offset plus its own.
    ArrowArray view = *ca;
    view.offset += array->offset;
    view.length = array->length;
    if (ca->length < array->offset + array->length) {
      return Status::InvalidArgument("Arrow import: column '" + name + "' is shorter than the struct");
    }
    PYFUNC_ASSIGN_OR_RETURN(Column c, ImportChild(cs, &view, "Arrow import: column '" + name + "'"));
    names.push_back(std::move(name));
    columns.push_back(std::move(c));
  }
  if (columns.empty()) return Table::Empty(array->length);
  return Table::Make(std::move(names), std::move(columns));
}

}  // namespace pyfunc
