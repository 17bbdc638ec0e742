// Scoring requests in: the JSON bodies of MLflow's scoring protocol read into Tables
// (include/pyfunc/json_codec.h).
#include "pyfunc/json_codec.h"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <unordered_map>

#include "data/text_format.h"
#include "format/json.h"

namespace pyfunc {

namespace dom = simdjson::dom;
using json::ClientText;
using json::PyTypeName;
using json::StringOf;
using json::ToValue;

namespace {

constexpr const char* kFormatSet = "{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}";
constexpr const char* kRequiredInputFormat =
    "The input must be a JSON dictionary with exactly one of the input fields ";
constexpr const char* kProtocolChangeInfo =
    "IMPORTANT: The MLflow Model scoring protocol has changed in MLflow version 2.0. If you are"
    " seeing this error, you are likely using an outdated scoring request format. To resolve the"
    " error, either update your request format or adjust your MLflow Model's requirements file to"
    " specify an older version of MLflow (for example, change the 'mlflow' requirement specifier"
    " to 'mlflow==1.30.0'). If you are making a request using the MLflow client"
    " (e.g. via `mlflow.pyfunc.spark_udf()`), upgrade your MLflow client to a version >= 2.0 in"
    " order to use the new request format. For more information about the updated MLflow"
    " Model scoring protocol in MLflow 2.0, see"
    " https://mlflow.org/docs/latest/models.html#deploy-mlflow-models.";

Status InvalidInput(const std::string& msg) { return Status::InvalidArgument("Invalid input. " + msg); }

std::string PyRepr(std::string_view s) {
  // Python's repr of a str (single quotes unless the text holds one and no double).
  bool single = s.find('\'') == std::string_view::npos || s.find('"') != std::string_view::npos;
  char q = single ? '\'' : '"';
  std::string out(1, q);
  for (char c : s) {
    if (c == q || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  out.push_back(q);
  return out;
}

// --- Cells -------------------------------------------------------------------------

enum class CellKind { kMissing, kNull, kBool, kInt, kFloat, kNaN, kString, kNested };

struct Cell {
  dom::element e;
  bool present = false;
};

CellKind Classify(const Cell& c) {
  if (!c.present) return CellKind::kMissing;
  switch (c.e.type()) {
    case dom::element_type::NULL_VALUE: return CellKind::kNull;
    case dom::element_type::BOOL: return CellKind::kBool;
    case dom::element_type::INT64: return CellKind::kInt;
    case dom::element_type::UINT64: return CellKind::kFloat;  // beyond int64
    case dom::element_type::DOUBLE: return CellKind::kFloat;
    case dom::element_type::STRING: {
      std::string_view s = c.e.get_string().value_unsafe();
      switch (json::SpecialOf(s)) {
        case json::Special::kNone: return CellKind::kString;
        case json::Special::kNaN: return CellKind::kNaN;
        case json::Special::kInf:
        case json::Special::kNegInf: return CellKind::kFloat;
      }
      return CellKind::kString;
    }
    case dom::element_type::ARRAY:
    case dom::element_type::OBJECT: return CellKind::kNested;
  }
  return CellKind::kNested;
}

const char* KindName(CellKind k) {
  switch (k) {
    case CellKind::kMissing:
    case CellKind::kNull: return "null";
    case CellKind::kBool: return "boolean";
    case CellKind::kInt:
    case CellKind::kFloat:
    case CellKind::kNaN: return "number";
    case CellKind::kString: return "string";
    case CellKind::kNested: return "nested value";
  }
  return "value";
}

const char* ElementName(dom::element e) {
  switch (e.type()) {
    case dom::element_type::ARRAY: return "array";
    case dom::element_type::OBJECT: return "object";
    case dom::element_type::STRING: return "string";
    case dom::element_type::BOOL: return "boolean";
    case dom::element_type::NULL_VALUE: return "null";
    default: return "number";
  }
}

double NumberOf(const Cell& c) {
  switch (c.e.type()) {
    case dom::element_type::INT64: return static_cast<double>(c.e.get_int64().value_unsafe());
    case dom::element_type::UINT64: return static_cast<double>(c.e.get_uint64().value_unsafe());
    case dom::element_type::DOUBLE: return c.e.get_double().value_unsafe();
    default: {
      const json::Special special = json::SpecialOf(c.e.get_string().value_unsafe());
      if (special == json::Special::kNaN) return std::numeric_limits<double>::quiet_NaN();
      return special == json::Special::kNegInf ? -HUGE_VAL : HUGE_VAL;
    }
  }
}

std::string KeyPath(std::string_view key) {
  bool plain = !key.empty() && !(key[0] >= '0' && key[0] <= '9');
  for (char c : key) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) plain = false;
  }
  if (plain) return "." + std::string(key);
  std::string out = "[\"";
  for (char c : key) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"]";
}

// One column being collected: its cells and how to name a cell's JSON path.
struct PendingColumn {
  std::string name;
  std::vector<Cell> cells;
  std::function<std::string(int64_t)> path;
};

Status CellError(const PendingColumn& col, int64_t row, const std::string& detail) {
  return Status::InvalidArgument(col.path(row) + ": " + detail);
}

// Python's int(str) for the decimal strings a request carries: optional spaces and
// sign, digits with single underscores between them; false if it is not one or does
// not fit int64.
bool ParsePythonInt(std::string_view s, int64_t* out) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  std::string digits;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) digits += s[i++];
  bool last_digit = false;
  for (; i < s.size(); ++i) {
    if (s[i] >= '0' && s[i] <= '9') {
      digits += s[i];
      last_digit = true;
    } else if (s[i] == '_' && last_digit && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '9') {
      last_digit = false;
    } else {
      return false;
    }
  }
  if (!last_digit) return false;
  const char* begin = digits.data() + (digits[0] == '+' ? 1 : 0);
  auto [end, ec] = std::from_chars(begin, digits.data() + digits.size(), *out);
  return ec == std::errc() && end == digits.data() + digits.size();
}

// Python's float(str): optional spaces, a decimal or exponent number, or nan / inf /
// infinity in any case with an optional sign; false otherwise.
bool ParsePythonFloat(std::string_view s, double* out) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  if (s.empty()) return false;
  std::string t;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {  // allowed only between digits
      if (i == 0 || i + 1 == s.size() || !std::isdigit(static_cast<unsigned char>(s[i - 1])) ||
          !std::isdigit(static_cast<unsigned char>(s[i + 1])))
        return false;
      continue;
    }
    t += static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
  }
  std::string_view body = t;
  const bool negative = !body.empty() && body[0] == '-';
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) body.remove_prefix(1);
  if (body == "nan") {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (body == "inf" || body == "infinity") {
    *out = negative ? -HUGE_VAL : HUGE_VAL;
    return true;
  }
  if (body.empty() || !(std::isdigit(static_cast<unsigned char>(body[0])) || body[0] == '.')) return false;
  auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), *out);
  if (end != body.data() + body.size() || (ec != std::errc() && ec != std::errc::result_out_of_range)) return false;
  if (ec == std::errc::result_out_of_range) *out = std::strtod(std::string(body).c_str(), nullptr);
  if (negative) *out = -*out;
  return true;
}

Result<Column> BuildTyped(const PendingColumn& col, DataType type) {
  ColumnBuilder b(type);
  b.Reserve(static_cast<int64_t>(col.cells.size()));
  std::string text;
  for (size_t r = 0; r < col.cells.size(); ++r) {
    const Cell& c = col.cells[r];
    CellKind k = Classify(c);
    int64_t row = static_cast<int64_t>(r);
    if (k == CellKind::kMissing || k == CellKind::kNull) {
      b.AppendNull();
      continue;
    }
    if (k == CellKind::kNested) {
      return CellError(col, row, std::string("expected a number, string, boolean or null, found ") + ElementName(c.e));
    }
    auto mismatch = [&]() {
      return CellError(
          col, row,
          std::string("cannot convert ") + KindName(k) + " to " + DataTypeName(type) + " (column '" + col.name + "')");
    };
    switch (type) {
      case DataType::kInt64:
        if (k == CellKind::kInt) {
          b.AppendInt64(c.e.get_int64().value_unsafe());
        } else if (k == CellKind::kNaN) {
          b.AppendNull();
        } else if (k == CellKind::kFloat) {
          // MLflow's server casts request columns with astype: 57.5 becomes 57.
          double v = NumberOf(c);
          if (!(std::isfinite(v) && std::fabs(v) < 9.2e18)) return mismatch();
          b.AppendInt64(static_cast<int64_t>(v));
        } else if (k == CellKind::kBool) {
          b.AppendInt64(c.e.get_bool().value_unsafe() ? 1 : 0);
        } else if (k == CellKind::kString) {
          int64_t v;
          if (!ParsePythonInt(StringOf(c.e), &v)) {
            return CellError(
                col, row,
                "invalid literal for int() with base 10: " + PyRepr(StringOf(c.e)) + " (column '" + col.name + "')");
          }
          b.AppendInt64(v);
        } else {
          return mismatch();
        }
        break;
      case DataType::kFloat64:
        if (k == CellKind::kInt || k == CellKind::kFloat || k == CellKind::kNaN) {
          b.AppendFloat64(NumberOf(c));
        } else if (k == CellKind::kString) {
          // As astype(float64) reads a numeric string ("5.1"), the way MLflow's server does.
          double v;
          if (!ParsePythonFloat(StringOf(c.e), &v)) {
            return CellError(
                col, row,
                "could not convert string to float: " + PyRepr(StringOf(c.e)) + " (column '" + col.name + "')");
          }
          b.AppendFloat64(v);
        } else if (k == CellKind::kBool) {
          b.AppendFloat64(c.e.get_bool().value_unsafe() ? 1.0 : 0.0);
        } else {
          return mismatch();
        }
        break;
      case DataType::kBool:
        if (k == CellKind::kBool) {
          b.AppendBool(c.e.get_bool().value_unsafe());
        } else if (k == CellKind::kInt &&
                   (c.e.get_int64().value_unsafe() == 0 || c.e.get_int64().value_unsafe() == 1)) {
          b.AppendBool(c.e.get_int64().value_unsafe() == 1);
        } else if (k == CellKind::kNaN) {
          b.AppendNull();
        } else {
          return mismatch();
        }
        break;
      case DataType::kString:
        if (k == CellKind::kString) {
          b.AppendString(StringOf(c.e));
        } else if (k == CellKind::kNaN) {
          b.AppendNull();
        } else if (k == CellKind::kBool) {
          b.AppendString(c.e.get_bool().value_unsafe() ? "True" : "False");
        } else if (k == CellKind::kInt) {
          b.AppendString(std::to_string(c.e.get_int64().value_unsafe()));
        } else {
          text.clear();
          if (c.e.type() == dom::element_type::UINT64) {
            text = std::to_string(c.e.get_uint64().value_unsafe());
          } else {
            AppendPythonFloat(NumberOf(c), &text);
          }
          b.AppendString(text);
        }
        break;
      case DataType::kTimestamp: {
        int64_t ns;
        if (k == CellKind::kNaN) {
          b.AppendNull();
        } else if (k == CellKind::kString && ParseIsoTimestamp(StringOf(c.e), &ns)) {
          b.AppendTimestamp(ns);
        } else if (k == CellKind::kString) {
          return CellError(col, row,
                           "cannot parse " + PyRepr(StringOf(c.e)) + " as a timestamp (column '" + col.name + "')");
        } else {
          return mismatch();
        }
        break;
      }
      default:  // requests are read into the wide types; the worker narrows them
        return mismatch();
    }
  }
  return b.Finish();
}

Result<Column> BuildInferred(const PendingColumn& col) {
  bool has_bool = false, has_int = false, has_float = false, has_string = false;
  int64_t first_bool = -1, first_number = -1, first_string = -1;
  for (size_t r = 0; r < col.cells.size(); ++r) {
    switch (Classify(col.cells[r])) {
      case CellKind::kMissing:
      case CellKind::kNull:
      case CellKind::kNaN: break;
      case CellKind::kBool:
        has_bool = true;
        if (first_bool < 0) first_bool = static_cast<int64_t>(r);
        break;
      case CellKind::kInt:
        has_int = true;
        if (first_number < 0) first_number = static_cast<int64_t>(r);
        break;
      case CellKind::kFloat:
        has_float = true;
        if (first_number < 0) first_number = static_cast<int64_t>(r);
        break;
      case CellKind::kString:
        has_string = true;
        if (first_string < 0) first_string = static_cast<int64_t>(r);
        break;
      case CellKind::kNested:
        return CellError(
            col, static_cast<int64_t>(r),
            std::string("expected a number, string, boolean or null, found ") + ElementName(col.cells[r].e));
    }
  }
  int kinds = (has_bool ? 1 : 0) + ((has_int || has_float) ? 1 : 0) + (has_string ? 1 : 0);
  if (kinds > 1) {
    // Report the later of the first two conflicting kinds.
    int64_t firsts[] = {first_bool, first_number, first_string};
    const char* names[] = {"boolean", "number", "string"};
    int a = -1, b = -1;
    for (int i = 0; i < 3; ++i) {
      if (firsts[i] < 0) continue;
      if (a < 0 || firsts[i] < firsts[a]) {
        b = a;
        a = i;
      } else if (b < 0 || firsts[i] < firsts[b]) {
        b = i;
      }
    }
    return CellError(col, firsts[b],
                     std::string("expected a ") + names[a] + " like the column's earlier values, found " + names[b] +
                         " (column '" + col.name + "' mixes types)");
  }
  DataType type = has_string          ? DataType::kString
                  : has_bool          ? DataType::kBool
                  : has_float         ? DataType::kFloat64
                  : has_int           ? DataType::kInt64
                  : col.cells.empty() ? DataType::kString
                                      : DataType::kFloat64;
  return BuildTyped(col, type);
}

Result<Table> BuildTable(std::vector<PendingColumn>& columns, const JsonReadOptions& options, int64_t rows) {
  std::vector<std::string> names;
  std::vector<Column> built;
  std::unordered_map<std::string_view, const DataType*> schema;  // the last entry of a name wins
  for (const auto& [n, t] : options.schema) schema[n] = &t;
  for (PendingColumn& col : columns) {
    col.cells.resize(static_cast<size_t>(rows));  // missing trailing cells are nulls
    auto it = schema.find(col.name);
    const DataType* typed = it == schema.end() ? nullptr : it->second;
    Result<Column> c = typed ? BuildTyped(col, *typed) : BuildInferred(col);
    if (!c.ok()) return c.status();
    names.push_back(col.name);
    built.push_back(std::move(c).value());
  }
  if (built.empty()) return Table::Empty(rows);
  return Table::Make(std::move(names), std::move(built));
}

std::string IndexPath(const std::string& prefix, int64_t i) { return prefix + "[" + std::to_string(i) + "]"; }

// --- Request shapes ------------------------------------------------------------------

// A list of objects → one column per key (first-appearance order).
Status CollectRecords(dom::array list, const std::string& prefix, bool require_all_keys,
                      std::vector<PendingColumn>* columns) {
  int64_t r = 0;
  std::unordered_map<std::string_view, size_t> index;  // key → column
  for (dom::element item : list) {
    dom::object obj;
    if (item.get_object().get(obj)) {
      return Status::InvalidArgument(IndexPath(prefix, r) + ": expected an object, found " + ElementName(item));
    }
    for (dom::key_value_pair kv : obj) {
      auto [it, inserted] = index.try_emplace(kv.key, columns->size());
      const size_t j = it->second;
      if (inserted) {
        PendingColumn col;
        col.name = std::string(ClientText(kv.key));
        std::string key_path = KeyPath(col.name);
        col.path = [prefix, key_path](int64_t row) { return IndexPath(prefix, row) + key_path; };
        columns->push_back(std::move(col));
      }
      auto& cells = (*columns)[j].cells;
      if (cells.size() < static_cast<size_t>(r + 1)) cells.resize(static_cast<size_t>(r + 1));
      cells[static_cast<size_t>(r)] = Cell{kv.value, true};
    }
    ++r;
  }
  if (require_all_keys) {
    for (const PendingColumn& col : *columns) {
      size_t present = 0;
      for (const Cell& c : col.cells) present += c.present;
      if (present != static_cast<size_t>(r)) {
        return InvalidInput("The length of values for each input/column name are not the same");
      }
    }
  }
  return Status::OK();
}

// A list of lists (or of scalars, each one row of one value) → columns "0", "1", ...
// With `names`, rows may not be longer than names.size().
Status CollectRows(dom::array list, const std::string& prefix, const std::vector<std::string>* names,
                   bool strict_rectangle, std::vector<PendingColumn>* columns, int64_t* rows) {
  int64_t r = 0;
  int64_t first_width = -1;
  auto ensure_column = [&](size_t j) {
    while (columns->size() <= j) {
      PendingColumn col;
      size_t k = columns->size();
      col.name = names ? (*names)[k] : std::to_string(k);
      col.path = [prefix, k](int64_t row) { return IndexPath(prefix, row) + "[" + std::to_string(k) + "]"; };
      columns->push_back(std::move(col));
    }
  };
  if (names && !names->empty()) ensure_column(names->size() - 1);
  for (dom::element item : list) {
    dom::array row;
    if (item.get_array().get(row)) {
      // A scalar row: one value in the first column.
      if (names && names->empty()) {
        return Status::InvalidArgument(IndexPath(prefix, r) + ": a value for a table with no columns");
      }
      ensure_column(0);
      auto& cells = (*columns)[0].cells;
      cells.resize(static_cast<size_t>(r + 1));
      cells[static_cast<size_t>(r)] = Cell{item, true};
      (*columns)[0].path = [prefix](int64_t row) { return IndexPath(prefix, row); };
      ++r;
      continue;
    }
    int64_t width = static_cast<int64_t>(row.size());
    if (names && width > static_cast<int64_t>(names->size())) {
      return Status::InvalidArgument(IndexPath(prefix, r) + ": row has " + std::to_string(width) +
                                     " values, but there are " + std::to_string(names->size()) + " columns");
    }
    if (strict_rectangle) {
      if (first_width < 0) first_width = width;
      if (width != first_width) {
        return Status::InvalidArgument(IndexPath(prefix, r) + ": row has " + std::to_string(width) +
                                       " values, row 0 has " + std::to_string(first_width));
      }
    }
    size_t j = 0;
    for (dom::element v : row) {
      ensure_column(j);
      auto& cells = (*columns)[j].cells;
      cells.resize(static_cast<size_t>(r + 1));
      cells[static_cast<size_t>(r)] = Cell{v, true};
      ++j;
    }
    ++r;
  }
  *rows = r;
  return Status::OK();
}

Result<std::vector<std::string>> ColumnNames(dom::element e, const std::string& path) {
  dom::array arr;
  if (e.get_array().get(arr)) {
    return Status::InvalidArgument(path + ": expected an array of column names, found " + ElementName(e));
  }
  std::vector<std::string> names;
  int64_t i = 0;
  for (dom::element v : arr) {
    std::string_view s;
    int64_t n;
    if (!v.get_string().get(s)) {
      names.emplace_back(ClientText(s));
    } else if (!v.get_int64().get(n)) {
      names.push_back(std::to_string(n));
    } else {
      return Status::InvalidArgument(IndexPath(path, i) + ": expected a column name, found " + ElementName(v));
    }
    ++i;
  }
  return names;
}

// True when a cell holds an array or an object (MLflow's pandas makes an object column
// of lists or dicts of it; a table column cannot hold them).
bool HoldsNestedCells(const std::vector<PendingColumn>& columns) {
  for (const PendingColumn& col : columns) {
    for (const Cell& c : col.cells) {
      if (c.present && (c.e.is_array() || c.e.is_object())) return true;
    }
  }
  return false;
}

// The request as kFrameJson: one string cell holding {"<key>": value}, from which the
// worker builds the DataFrame as MLflow's server does (pandas' own constructor).
Status FrameAsJson(const char* key, dom::element e, const std::string& prefix, ScoringRequest* out) {
  PYFUNC_ASSIGN_OR_RETURN(Value value, ToValue(e, prefix));
  out->shape = InputShape::kFrameJson;
  TableBuilder b({{"", DataType::kString}});
  b.column(0).AppendString(ToJson(Value(Value::Map{{key, std::move(value)}})));
  PYFUNC_ASSIGN_OR_RETURN(out->table, b.Finish());
  return Status::OK();
}

Status ParseSplit(dom::element e, const JsonReadOptions& options, ScoringRequest* out) {
  const std::string prefix = "$.dataframe_split";
  dom::object obj;
  if (e.get_object().get(obj)) {
    std::string got = e.type() == dom::element_type::ARRAY ? "list" : std::string("type ") + PyTypeName(e);
    return InvalidInput("Dataframe split format must be a dictionary. Got " + got + ".");
  }
  bool has_data = false, extra = false;
  std::string keys = "{";
  for (dom::key_value_pair kv : obj) {
    if (keys.size() > 1) keys += ", ";
    keys += PyRepr(ClientText(kv.key));
    if (kv.key == "data")
      has_data = true;
    else if (kv.key != "columns" && kv.key != "index")
      extra = true;
  }
  keys += "}";
  if (!has_data || extra) {
    return InvalidInput(
        "Dataframe split format must have 'data' field and optionally 'columns' and 'index' "
        "fields. Got " +
        (keys == "{}" ? std::string("set()") : keys) + ".'");
  }
  std::optional<std::vector<std::string>> names;
  dom::element columns_e;
  if (!obj["columns"].get(columns_e) && !columns_e.is_null()) {
    PYFUNC_ASSIGN_OR_RETURN(names, ColumnNames(columns_e, prefix + ".columns"));
  }
  dom::element data_e = obj["data"].value_unsafe();
  dom::array data;
  if (data_e.get_array().get(data)) {
    return Status::InvalidArgument(prefix + ".data: expected an array of rows, found " + ElementName(data_e));
  }
  std::vector<PendingColumn> columns;
  int64_t rows = 0;
  PYFUNC_RETURN_IF_ERROR(CollectRows(data, prefix + ".data", names ? &*names : nullptr, false, &columns, &rows));
  if (HoldsNestedCells(columns)) return FrameAsJson("dataframe_split", e, prefix, out);
  dom::element index_e;
  if (!obj["index"].get(index_e) && !index_e.is_null()) {
    dom::array index;
    if (index_e.get_array().get(index)) {
      return Status::InvalidArgument(prefix + ".index: expected an array, found " + ElementName(index_e));
    }
    if (static_cast<int64_t>(index.size()) != rows && !(rows == 0 && columns.empty())) {
      return Status::InvalidArgument(prefix + ".index: has " + std::to_string(index.size()) + " entries, data has " +
                                     std::to_string(rows) + " rows");
    }
    if (rows == 0 && columns.empty()) rows = static_cast<int64_t>(index.size());
  }
  out->shape = InputShape::kDataFrame;
  PYFUNC_ASSIGN_OR_RETURN(out->table, BuildTable(columns, options, rows));
  return Status::OK();
}

Status ParseRecords(dom::element e, const JsonReadOptions& options, ScoringRequest* out) {
  const std::string prefix = "$.dataframe_records";
  dom::array list;
  if (e.get_array().get(list)) {
    std::string got = e.type() == dom::element_type::OBJECT ? "dictionary" : std::string("type ") + PyTypeName(e);
    return InvalidInput("Dataframe records format must be a list of records. Got " + got + ".");
  }
  std::vector<PendingColumn> columns;
  int64_t rows = static_cast<int64_t>(list.size());
  out->shape = InputShape::kDataFrame;
  if (rows > 0 && list.at(0).value_unsafe().is_object()) {
    PYFUNC_RETURN_IF_ERROR(CollectRecords(list, prefix, false, &columns));
  } else {
    PYFUNC_RETURN_IF_ERROR(CollectRows(list, prefix, nullptr, false, &columns, &rows));
  }
  if (HoldsNestedCells(columns)) return FrameAsJson("dataframe_records", e, prefix, out);
  PYFUNC_ASSIGN_OR_RETURN(out->table, BuildTable(columns, options, rows));
  return Status::OK();
}

// True when `instances`/`inputs` hold tensors that are not columns of scalars: a dict
// (or records) whose values are arrays of arrays / arrays, or rows of more than two
// dimensions. MLflow makes each of them an ndarray; a table cannot hold them.
bool HoldsNestedTensors(dom::element e) {
  auto nested_array = [](dom::element v) {
    dom::array a;
    if (v.get_array().get(a)) return false;
    for (dom::element x : a) return x.is_array();
    return false;
  };
  dom::array list;
  dom::object obj;
  if (!e.get_object().get(obj)) {
    for (dom::key_value_pair kv : obj)
      if (nested_array(kv.value)) return true;
    return false;
  }
  if (e.get_array().get(list)) return false;
  for (dom::element first : list) {
    dom::object record;
    if (!first.get_object().get(record)) {
      for (dom::key_value_pair kv : record)
        if (kv.value.is_array()) return true;
      return false;
    }
    return nested_array(first);
  }
  return false;
}

// `instances` and `inputs`.
Status ParseTensorInput(dom::element e, bool instances, const JsonReadOptions& options, ScoringRequest* out) {
  const std::string prefix = instances ? "$.instances" : "$.inputs";
  if (options.schema.empty() && HoldsNestedTensors(e)) {
    out->shape = InputShape::kTensorsJson;
    PYFUNC_ASSIGN_OR_RETURN(Value value, ToValue(e, prefix));
    TableBuilder b({{"", DataType::kString}});
    b.column(0).AppendString(ToJson(Value(Value::Map{{instances ? "instances" : "inputs", std::move(value)}})));
    PYFUNC_ASSIGN_OR_RETURN(out->table, b.Finish());
    return Status::OK();
  }
  std::vector<PendingColumn> columns;
  int64_t rows = 0;
  dom::array list;
  dom::object obj;
  if (!e.get_array().get(list)) {
    rows = static_cast<int64_t>(list.size());
    dom::element first;
    if (rows > 0) first = list.at(0).value_unsafe();
    if (rows > 0 && first.is_object()) {
      out->shape = instances ? InputShape::kColumns : InputShape::kRecords;
      PYFUNC_RETURN_IF_ERROR(CollectRecords(list, prefix, instances, &columns));
    } else if (rows > 0 && first.is_array()) {
      out->shape = InputShape::kArray2D;
      PYFUNC_RETURN_IF_ERROR(CollectRows(list, prefix, nullptr, true, &columns, &rows));
      int64_t r = 0;
      for (dom::element item : list) {
        if (!item.is_array()) {
          return Status::InvalidArgument(IndexPath(prefix, r) + ": expected an array like row 0, found " +
                                         ElementName(item));
        }
        ++r;
      }
    } else {
      out->shape = InputShape::kArray1D;
      PendingColumn col;
      col.path = [prefix](int64_t row) { return IndexPath(prefix, row); };
      for (dom::element item : list) col.cells.push_back(Cell{item, true});
      columns.push_back(std::move(col));
    }
  } else if (!e.get_object().get(obj)) {
    out->shape = InputShape::kColumns;
    bool all_scalars = true;
    int64_t length = -1;
    for (dom::key_value_pair kv : obj) {
      if (kv.value.is_array()) {
        all_scalars = false;
        int64_t n = static_cast<int64_t>(kv.value.get_array().value_unsafe().size());
        if (length >= 0 && n != length) {
          return InvalidInput("The length of values for each input/column name are not the same");
        }
        length = n;
      }
    }
    rows = all_scalars ? 1 : length;
    if (obj.size() == 0) rows = 0;
    for (dom::key_value_pair kv : obj) {
      PendingColumn col;
      col.name = std::string(ClientText(kv.key));
      std::string key_path = prefix + KeyPath(col.name);
      if (kv.value.is_array()) {
        col.path = [key_path](int64_t row) { return IndexPath(key_path, row); };
        dom::array arr = kv.value.get_array().value_unsafe();
        for (dom::element v : arr) col.cells.push_back(Cell{v, true});
      } else {
        // A scalar beside lists is broadcast, as pandas.DataFrame(dict) does.
        col.path = [key_path](int64_t) { return key_path; };
        col.cells.assign(static_cast<size_t>(rows), Cell{kv.value, true});
      }
      columns.push_back(std::move(col));
    }
  } else {
    out->shape = InputShape::kScalar;
    rows = 1;
    PendingColumn col;
    col.path = [prefix](int64_t) { return prefix; };
    col.cells.push_back(Cell{e, true});
    columns.push_back(std::move(col));
  }
  PYFUNC_ASSIGN_OR_RETURN(out->table, BuildTable(columns, options, rows));
  return Status::OK();
}

}  // namespace

const char* RequestFormatName(RequestFormat format) {
  switch (format) {
    case RequestFormat::kDataFrameSplit: return "dataframe_split";
    case RequestFormat::kDataFrameRecords: return "dataframe_records";
    case RequestFormat::kInstances: return "instances";
    case RequestFormat::kInputs: return "inputs";
    case RequestFormat::kUnifiedLlm: return "unified LLM";
  }
  return "";
}

Result<ScoringRequest> ParseScoringRequest(std::string_view body, const JsonReadOptions& options) {
  json::Document doc;
  PYFUNC_RETURN_IF_ERROR(doc.Parse(body));
  const dom::element root = doc.root();
  dom::object obj;
  if (root.get_object().get(obj)) {
    if (root.is_array()) {
      return InvalidInput(std::string(kRequiredInputFormat) + kFormatSet + ". Received a list.");
    }
    return InvalidInput(std::string(kRequiredInputFormat) + kFormatSet + ". Received unexpected input type '" +
                        PyTypeName(root) + ".");
  }
  ScoringRequest req;
  bool llm = false;
  for (dom::key_value_pair kv : obj) llm = llm || kv.key == "messages" || kv.key == "prompt" || kv.key == "input";
  if (llm) {
    // MLflow's unified LLM format: the body is the input, less the params schema's keys.
    req.format = RequestFormat::kUnifiedLlm;
    req.shape = InputShape::kJson;
    Value::Map data, params;
    for (dom::key_value_pair kv : obj) {
      const std::string key(ClientText(kv.key));
      const bool is_param =
          std::find(options.params_keys.begin(), options.params_keys.end(), key) != options.params_keys.end();
      PYFUNC_ASSIGN_OR_RETURN(Value value, ToValue(kv.value, "$" + KeyPath(ClientText(kv.key))));
      (is_param ? params : data).emplace_back(std::string(ClientText(kv.key)), std::move(value));
    }
    if (!params.empty()) req.params = Value(std::move(params));
    TableBuilder b({{"", DataType::kString}});
    b.column(0).AppendString(ToJson(Value(std::move(data))));
    PYFUNC_ASSIGN_OR_RETURN(req.table, b.Finish());
    return req;
  }
  std::vector<std::string_view> format_keys;
  dom::element data;
  for (dom::key_value_pair kv : obj) {
    if (kv.key == "params") {
      PYFUNC_ASSIGN_OR_RETURN(req.params, ToValue(kv.value, "$.params"));
      continue;
    }
    RequestFormat f;
    if (kv.key == "dataframe_split")
      f = RequestFormat::kDataFrameSplit;
    else if (kv.key == "dataframe_records")
      f = RequestFormat::kDataFrameRecords;
    else if (kv.key == "instances")
      f = RequestFormat::kInstances;
    else if (kv.key == "inputs")
      f = RequestFormat::kInputs;
    else
      continue;
    format_keys.push_back(kv.key);
    req.format = f;
    data = kv.value;
  }
  if (format_keys.size() != 1) {
    std::string list = "[";
    for (size_t i = 0; i < format_keys.size(); ++i) {
      if (i) list += ", ";
      list += PyRepr(format_keys[i]);
    }
    list += "]";
    return Status::InvalidArgument(std::string(kRequiredInputFormat) + kFormatSet +
                                   ". Received dictionary with input fields: " + list + ". " + kProtocolChangeInfo);
  }
  switch (req.format) {
    case RequestFormat::kDataFrameSplit: PYFUNC_RETURN_IF_ERROR(ParseSplit(data, options, &req)); break;
    case RequestFormat::kDataFrameRecords: PYFUNC_RETURN_IF_ERROR(ParseRecords(data, options, &req)); break;
    case RequestFormat::kInstances: PYFUNC_RETURN_IF_ERROR(ParseTensorInput(data, true, options, &req)); break;
    case RequestFormat::kInputs: PYFUNC_RETURN_IF_ERROR(ParseTensorInput(data, false, options, &req)); break;
    case RequestFormat::kUnifiedLlm: break;  // handled above
  }
  return req;
}

InputShape PredictInputShape(const ScoringRequest& request, bool column_signature) {
  if (request.format == RequestFormat::kUnifiedLlm || !column_signature) return request.shape;
  // A request handed over as its text is made into the model's input in the worker, as
  // MLflow's server makes it, whatever the signature.
  if (request.shape == InputShape::kFrameJson || request.shape == InputShape::kTensorsJson) return request.shape;
  return InputShape::kDataFrame;
}

Result<Value> ParseJsonValue(std::string_view text) { return json::ParseValue(text); }

Result<Table> ParseJsonLines(std::string_view text, const JsonReadOptions& options) {
  // Each line is parsed into its own document; the parsers stay alive until the table
  // is built because the cells point into their tapes.
  std::vector<std::unique_ptr<json::Document>> docs;
  std::vector<PendingColumn> columns;
  std::unordered_map<std::string, size_t> index;  // key → column
  int64_t rows = 0;
  int64_t line = 0;
  size_t pos = 0;
  std::vector<int64_t> row_lines;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view l = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.find_first_not_of(" \t") == std::string_view::npos) {
      if (nl == text.size()) break;
      continue;
    }
    docs.push_back(std::make_unique<json::Document>());
    Status st = docs.back()->Parse(l);
    if (!st.ok()) return Status::InvalidArgument("<input>:" + std::to_string(line) + ": " + st.message());
    const dom::element root = docs.back()->root();
    dom::object obj;
    if (root.get_object().get(obj)) {
      return Status::InvalidArgument("<input>:" + std::to_string(line) + ": expected an object, found " +
                                     ElementName(root));
    }
    for (dom::key_value_pair kv : obj) {
      auto [it, inserted] = index.try_emplace(std::string(kv.key), columns.size());
      const size_t j = it->second;
      if (inserted) {
        PendingColumn col;
        col.name = std::string(ClientText(kv.key));
        std::string key_path = KeyPath(col.name);
        const std::vector<int64_t>* lines = &row_lines;  // outlives the paths' use
        col.path = [lines, key_path](int64_t row) {
          return "<input>:" + std::to_string((*lines)[static_cast<size_t>(row)]) + ": $" + key_path;
        };
        columns.push_back(std::move(col));
      }
      auto& cells = columns[j].cells;
      cells.resize(static_cast<size_t>(rows + 1));
      cells[static_cast<size_t>(rows)] = Cell{kv.value, true};
    }
    row_lines.push_back(line);
    ++rows;
    if (nl == text.size()) break;
  }
  return BuildTable(columns, options, rows);
}

}  // namespace pyfunc
