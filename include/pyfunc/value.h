// Value: a YAML/JSON document tree as MLflow's Python code sees it.
//
// MLmodel files hold free-form maps (flavor configurations, `metadata`, `config`,
// unknown top-level keys) that pyfunc must carry through a read/write round trip
// unchanged. Value is that tree: null, bool, int, float, string, timestamp, list and
// map, with the YAML 1.1 typing rules of PyYAML's SafeLoader (so `yes` is a bool and
// `'2023-12-07 02:46:07'` a string) and the source line of each node for error messages.
//
// Maps keep their keys in insertion order; the YAML emitter sorts them as PyYAML does.
#ifndef PYFUNC_VALUE_H_
#define PYFUNC_VALUE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pyfunc {

class Value {
 public:
  enum class Kind { kNull, kBool, kInt, kFloat, kString, kTimestamp, kList, kMap };
  using List = std::vector<Value>;
  using Map = std::vector<std::pair<std::string, Value>>;

  Value() = default;  // null
  Value(std::nullptr_t) {}
  Value(bool b) : kind_(Kind::kBool), int_(b ? 1 : 0) {}
  Value(int i) : kind_(Kind::kInt), int_(i) {}
  Value(int64_t i) : kind_(Kind::kInt), int_(i) {}
  Value(double d) : kind_(Kind::kFloat), float_(d) {}
  Value(const char* s) : kind_(Kind::kString), str_(s) {}
  Value(std::string s) : kind_(Kind::kString), str_(std::move(s)) {}
  Value(List l) : kind_(Kind::kList), list_(std::move(l)) {}
  Value(Map m) : kind_(Kind::kMap), map_(std::move(m)) {}

  // A YAML timestamp (an unquoted `2018-06-05 12:00:00`), kept as its source text.
  static Value Timestamp(std::string text);
  static Value EmptyMap() { return Value(Map{}); }
  static Value EmptyList() { return Value(List{}); }

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::kNull; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_timestamp() const { return kind_ == Kind::kTimestamp; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_map() const { return kind_ == Kind::kMap; }

  // Accessors; calling the wrong one is a programming error (checked, aborts).
  bool as_bool() const;
  int64_t as_int() const;
  double as_float() const;
  const std::string& as_string() const;  // string or timestamp text
  const List& as_list() const;
  List& as_list();
  const Map& as_map() const;
  Map& as_map();

  // Python truthiness: null, false, 0, 0.0, "", [] and {} are false.
  bool truthy() const;

  // Map helpers. Find returns nullptr when the key is absent (or this is not a map).
  const Value* Find(std::string_view key) const;
  Value* Find(std::string_view key);
  // Sets key to value, replacing an existing entry in place or appending a new one.
  void Set(std::string_view key, Value value);
  // Removes key; returns whether it was present.
  bool Erase(std::string_view key);

  // Type name as Python would say it: "NoneType", "bool", "int", "float", "str",
  // "datetime", "list", "dict".
  const char* TypeName() const;

  // 1-based line and column of the node in the document it was parsed from; 0 if none.
  int line() const { return line_; }
  int column() const { return column_; }
  void set_position(int line, int column) {
    line_ = line;
    column_ = column;
  }

  // Structural equality (positions are ignored; map order is significant).
  bool operator==(const Value& other) const;
  bool operator!=(const Value& other) const { return !(*this == other); }

 private:
  Kind kind_ = Kind::kNull;
  int64_t int_ = 0;
  double float_ = 0;
  std::string str_;
  List list_;
  Map map_;
  int line_ = 0;
  int column_ = 0;
};

// Appends `v` as Python's repr(float) writes it: shortest round-trip digits, fixed
// notation for 1e-4 <= |v| < 1e16 with at least one decimal ("1.0"), otherwise
// "1e+16" / "1.5e-05"; NaN and infinities as "nan", "inf", "-inf". MLflow's files
// (metrics, YAML) and pandas' CSV output write floats this way.
void AppendPythonFloat(double v, std::string* out);
// Appends `v` as numpy's str(numpy.float32) writes it (pandas' CSV output of a float32
// column): shortest digits that round-trip as float32, positional for 1e-4 <= |v| < 1e6.
void AppendNumpyFloat32(float v, std::string* out);
std::string PythonFloatRepr(double v);

// JSON text of a Value as Python's json.dumps(value, indent=indent) writes it (compact,
// with ", " and ": ", for indent < 0): keys in map order, non-ASCII as \uXXXX (bytes
// that are not valid UTF-8 as U+FFFD), floats as repr, NaN and infinities as NaN /
// Infinity / -Infinity (which json.loads reads), timestamps as their text. Linear in
// the size of the Value. Used for `pyfunc info --json`, worker messages and params.
std::string ToJson(const Value& value, int indent = -1);

// Length (1-4) of the well-formed UTF-8 sequence that starts `s`, or 0 when `s` is empty
// or does not start with one (overlong forms, surrogates, code points beyond U+10FFFF and
// truncated sequences are not well-formed).
size_t Utf8SequenceLength(std::string_view s);

}  // namespace pyfunc

#endif  // PYFUNC_VALUE_H_
