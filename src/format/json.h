// The project's JSON: one reader and one writer, both in the dialect of Python's json
// module, which is what MLflow's server, clients and workers speak.
//
// Reading is json.loads on simdjson. Strict JSON parsers, simdjson among them, reject what
// json.loads accepts and MLflow clients send: the bare literals NaN, Infinity and
// -Infinity, numbers beyond the double range (1e400 is inf in Python) and integers
// beyond 64 bits (Python ints of any size). Document::Parse accepts them all: a
// non-finite number reads as a marker string that Special() recognises, a big integer as
// a double. Strings read through ClientText() are the client's text whatever bytes it
// holds (no client string can pass for a marker).
//
// Writing is json.dumps(obj, ensure_ascii=True): separators ", " and ": " (one item per
// line with `indent`), non-ASCII as \uXXXX escapes (bytes that are not valid UTF-8 as
// U+FFFD), floats as Python's repr ("1.0", "1e-05"), NaN and infinities as the bare
// literals json.dumps writes.
//
// Private to the library (src/); the public entry points are ParseJsonValue
// (json_codec.h) and ToJson (value.h).
#ifndef PYFUNC_SRC_FORMAT_JSON_H_
#define PYFUNC_SRC_FORMAT_JSON_H_

#include <cstddef>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "pyfunc/status.h"
#include "pyfunc/value.h"

namespace pyfunc::json {

namespace dom = simdjson::dom;

// A parsed document and the parser that owns its memory. Reusable: each Parse replaces
// the previous document (elements of which are then invalid).
class Document {
 public:
  // `max_depth`: the deepest nesting of arrays and objects Parse accepts (simdjson parses
  // without recursion; deeper is an error and too_deep()).
  explicit Document(size_t max_depth = simdjson::DEFAULT_MAX_DEPTH);

  // Parses `text` as json.loads does. InvalidArgument "Invalid input. Ensure that input
  // is a valid JSON formatted string. Error: <simdjson's reason>" (MLflow's message).
  Status Parse(std::string_view text);
  dom::element root() const { return root_; }
  // Whether the last Parse failed on nesting deeper than max_depth.
  bool too_deep() const { return too_deep_; }

 private:
  size_t max_depth_;
  bool too_deep_ = false;
  dom::parser parser_;
  std::string scratch_;
  dom::element root_;
};

// Which of Python's non-finite literals a string element is, kNone for a client string.
enum class Special { kNone, kNaN, kInf, kNegInf };
Special SpecialOf(std::string_view parsed_string);

// The client's text of a string or key read from a parsed document.
std::string_view ClientText(std::string_view parsed_string);
inline std::string_view StringOf(dom::element e) { return ClientText(e.get_string().value_unsafe()); }

// Python's type name of an element as `type(x)` prints it: "<class 'float'>" (NaN
// included), "<class 'str'>", "<class 'list'>", ...
const char* PyTypeName(dom::element e);

// Nesting of arrays and objects that ToValue converts; deeper is InvalidArgument.
inline constexpr int kMaxValueDepth = 128;

// The Value of an element. Objects keep the first position of a repeated key and its last
// value, as json.loads does; NaN/Infinity are floats; an integer beyond int64 a float.
// `path` names the element in the error for nesting deeper than kMaxValueDepth.
Result<Value> ToValue(dom::element e, const std::string& path);

// Parses `text` into a Value (Document::Parse + ToValue).
Result<Value> ParseValue(std::string_view text);

// --- Writing ---------------------------------------------------------------------------

// `s` as a JSON string, as json.dumps writes a str.
void AppendString(std::string_view s, std::string* out);
// `v` as json.dumps writes a float: repr, or NaN / Infinity / -Infinity.
void AppendFloat(double v, std::string* out);
// `v` as json.dumps(v, indent=indent) writes it (compact for indent < 0); keys in map
// order; timestamps as their text. Recursion is bounded by the Value's depth, which every
// parser of untrusted text bounds.
void Append(const Value& v, std::string* out, int indent = -1);

}  // namespace pyfunc::json

#endif  // PYFUNC_SRC_FORMAT_JSON_H_
