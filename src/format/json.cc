// The project's JSON reader and writer (src/format/json.h).
#include "format/json.h"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <vector>

namespace pyfunc::json {
namespace {

// simdjson, like strict JSON, rejects what Python's json.loads (MLflow's server) reads:
// the bare literals NaN, Infinity and -Infinity; numbers beyond the double range (1e400
// is inf in Python); integers beyond 64 bits (Python ints of any size; pandas makes an
// object column of them, a Table a float64 one). A body that fails to parse is rewritten
// (RewriteForSimdjson) and parsed again: a non-finite number becomes one of the marker
// strings below and a big integer a double literal.
//
// A marker is a NUL followed by a name. So that no string of the client's can pass for
// one, the rewrite also prepends a NUL to every string (or key) of the body that starts
// with a NUL, and every body with a NUL or a "\u0000" escape goes through the rewrite. So
// in every parsed document, a string that starts with a NUL is a marker if it is exactly
// one, and otherwise the client's string with one NUL prepended (ClientText removes it).
constexpr std::string_view kNaNMarker("\0NaN", 4);
constexpr std::string_view kInfMarker("\0Inf", 4);
constexpr std::string_view kNegInfMarker("\0-Inf", 5);

bool IsMarker(std::string_view s) { return s == kNaNMarker || s == kInfMarker || s == kNegInfMarker; }

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Copies `text` rewritten for simdjson as described above. Only the characters outside
// strings, and the first character of each string, are looked at; the output is at most
// four times as long as the input.
void RewriteForSimdjson(std::string_view text, std::string* out) {
  out->clear();
  out->reserve(text.size() + text.size() / 8 + 64);
  // A literal replaced by a marker, unless it stands where a key would (`{NaN: 1}` is not
  // JSON for Python either, and stays an error).
  const auto replace = [&](size_t i, size_t len, const char* marker) {
    size_t j = i + len;
    while (j < text.size() && IsJsonSpace(text[j])) ++j;
    if (j < text.size() && text[j] == ':') {
      out->append(text.substr(i, len));
    } else {
      out->append(marker);
    }
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {
      out->push_back('"');
      if (text.substr(i + 1, 6) == "\\u0000" || (i + 1 < text.size() && text[i + 1] == '\0')) {
        out->append("\\u0000");
      }
      for (++i; i < text.size(); ++i) {
        out->push_back(text[i]);
        if (text[i] == '\\' && i + 1 < text.size()) {
          out->push_back(text[++i]);
        } else if (text[i] == '"') {
          break;
        }
      }
    } else if (c == 'N' && text.substr(i, 3) == "NaN") {
      replace(i, 3, "\"\\u0000NaN\"");
      i += 2;
    } else if (c == 'I' && text.substr(i, 8) == "Infinity") {
      replace(i, 8, "\"\\u0000Inf\"");
      i += 7;
    } else if (c == '-' && text.substr(i, 9) == "-Infinity") {
      replace(i, 9, "\"\\u0000-Inf\"");
      i += 8;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t end = i;
      bool integer = true;
      while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '-' ||
                                   text[end] == '+' || text[end] == '.' || text[end] == 'e' || text[end] == 'E')) {
        if (text[end] == '.' || text[end] == 'e' || text[end] == 'E') integer = false;
        ++end;
      }
      const std::string token(text.substr(i, end - i));
      i = end - 1;
      const bool negative = token[0] == '-';
      if (integer) {
        uint64_t magnitude;
        auto [ptr, ec] = std::from_chars(token.data() + negative, token.data() + token.size(), magnitude);
        const bool fits = ec == std::errc() && (!negative || magnitude <= (uint64_t{1} << 63));
        if (fits || ptr != token.data() + token.size() || token.size() == static_cast<size_t>(negative)) {
          out->append(token);  // fits, or not a number: simdjson decides
          continue;
        }
      }
      char* parsed_end = nullptr;
      errno = 0;
      const double v = std::strtod(token.c_str(), &parsed_end);
      if (parsed_end != token.c_str() + token.size() || (!integer && errno != ERANGE)) {
        out->append(token);  // an ordinary double, or not a number: simdjson decides
      } else if (std::isinf(v)) {
        out->append(negative ? "\"\\u0000-Inf\"" : "\"\\u0000Inf\"");
      } else if (v == 0) {
        out->append(negative ? "-0.0" : "0.0");  // below the double range: 0, as in Python
      } else {
        char buf[64];
        auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
        out->append(buf, static_cast<size_t>(res.ptr - buf));
      }
    } else {
      out->push_back(c);
    }
  }
}

void AppendIndent(int indent, int level, std::string* out) {
  out->push_back('\n');
  out->append(static_cast<size_t>(indent) * static_cast<size_t>(level), ' ');
}

}  // namespace

Special SpecialOf(std::string_view s) {
  if (s.empty() || s[0] != '\0') return Special::kNone;
  if (s == kNaNMarker) return Special::kNaN;
  if (s == kInfMarker) return Special::kInf;
  if (s == kNegInfMarker) return Special::kNegInf;
  return Special::kNone;
}

std::string_view ClientText(std::string_view s) {
  if (!s.empty() && s[0] == '\0' && !IsMarker(s)) s.remove_prefix(1);
  return s;
}

Document::Document(size_t max_depth) : max_depth_(max_depth) {}

Status Document::Parse(std::string_view text) {
  too_deep_ = false;
  if (parser_.max_depth() != max_depth_) {
    // The capacity grows with each document; only the depth is fixed here.
    if (parser_.allocate(simdjson::SIMDJSON_PADDING, max_depth_) != simdjson::SUCCESS) {
      return Status::Internal("cannot allocate a JSON parser");
    }
  }
  const bool has_nul =
      std::memchr(text.data(), '\0', text.size()) != nullptr || text.find("\\u0000") != std::string_view::npos;
  simdjson::error_code err = simdjson::SUCCESS;
  if (!has_nul) {
    err = parser_.parse(text.data(), text.size(), true).get(root_);
    if (!err) return Status::OK();
  }
  RewriteForSimdjson(text, &scratch_);
  const simdjson::error_code err2 = parser_.parse(scratch_.data(), scratch_.size(), true).get(root_);
  if (!err2) return Status::OK();
  too_deep_ = (has_nul ? err2 : err) == simdjson::DEPTH_ERROR;
  return Status::InvalidArgument(
      std::string("Invalid input. Ensure that input is a valid JSON formatted string. Error: ") +
      simdjson::error_message(has_nul ? err2 : err));
}

const char* PyTypeName(dom::element e) {
  switch (e.type()) {
    case dom::element_type::ARRAY: return "<class 'list'>";
    case dom::element_type::OBJECT: return "<class 'dict'>";
    case dom::element_type::INT64:
    case dom::element_type::UINT64: return "<class 'int'>";
    case dom::element_type::DOUBLE: return "<class 'float'>";
    case dom::element_type::STRING: {
      std::string_view s = e.get_string().value_unsafe();
      if (IsMarker(s)) return "<class 'float'>";
      return "<class 'str'>";
    }
    case dom::element_type::BOOL: return "<class 'bool'>";
    case dom::element_type::NULL_VALUE: return "<class 'NoneType'>";
  }
  return "<class 'object'>";
}

namespace {

// Recursive, to a depth of kMaxValueDepth at most.
Result<Value> ToValueAt(dom::element e, const std::string& path, int depth) {
  switch (e.type()) {
    case dom::element_type::NULL_VALUE: return Value();
    case dom::element_type::BOOL: return Value(e.get_bool().value_unsafe());
    case dom::element_type::INT64: return Value(static_cast<int64_t>(e.get_int64().value_unsafe()));
    case dom::element_type::UINT64: return Value(static_cast<double>(e.get_uint64().value_unsafe()));
    case dom::element_type::DOUBLE: return Value(e.get_double().value_unsafe());
    case dom::element_type::STRING: {
      std::string_view s = e.get_string().value_unsafe();
      if (s == kNaNMarker) return Value(std::numeric_limits<double>::quiet_NaN());
      if (s == kInfMarker) return Value(HUGE_VAL);
      if (s == kNegInfMarker) return Value(-HUGE_VAL);
      return Value(std::string(ClientText(s)));
    }
    case dom::element_type::ARRAY:
    case dom::element_type::OBJECT: break;
  }
  if (depth >= kMaxValueDepth) {
    return Status::InvalidArgument(path + ": nested deeper than " + std::to_string(kMaxValueDepth) + " levels");
  }
  if (e.type() == dom::element_type::ARRAY) {
    Value::List list;
    dom::array arr = e.get_array().value_unsafe();
    list.reserve(arr.size());
    for (dom::element v : arr) {
      PYFUNC_ASSIGN_OR_RETURN(Value item, ToValueAt(v, path, depth + 1));
      list.push_back(std::move(item));
    }
    return Value(std::move(list));
  }
  // A repeated key keeps its first position and takes the last value, as json.loads does.
  Value::Map map;
  std::unordered_map<std::string_view, size_t> index;
  dom::object obj = e.get_object().value_unsafe();
  for (dom::key_value_pair kv : obj) {
    PYFUNC_ASSIGN_OR_RETURN(Value item, ToValueAt(kv.value, path, depth + 1));
    auto [it, inserted] = index.try_emplace(kv.key, map.size());
    if (inserted) {
      map.emplace_back(std::string(ClientText(kv.key)), std::move(item));
    } else {
      map[it->second].second = std::move(item);
    }
  }
  return Value(std::move(map));
}

}  // namespace

Result<Value> ToValue(dom::element e, const std::string& path) { return ToValueAt(e, path, 0); }

Result<Value> ParseValue(std::string_view text) {
  Document doc;
  PYFUNC_RETURN_IF_ERROR(doc.Parse(text));
  return ToValue(doc.root(), "$");
}

// --- Writing -----------------------------------------------------------------------

void AppendString(std::string_view s, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  auto u_escape = [&](uint32_t cp) {
    out->append("\\u");
    for (int shift = 12; shift >= 0; shift -= 4) out->push_back(kHex[(cp >> shift) & 15]);
  };
  out->push_back('"');
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      switch (c) {
        case '"': out->append("\\\""); break;
        case '\\': out->append("\\\\"); break;
        case '\n': out->append("\\n"); break;
        case '\r': out->append("\\r"); break;
        case '\t': out->append("\\t"); break;
        case '\b': out->append("\\b"); break;
        case '\f': out->append("\\f"); break;
        default:
          if (c < 0x20)
            u_escape(c);
          else
            out->push_back(static_cast<char>(c));
      }
      ++p;
      continue;
    }
    // A well-formed sequence (value.h's Utf8SequenceLength) is escaped as its code
    // point; a byte that starts none becomes U+FFFD.
    const size_t len = Utf8SequenceLength(std::string_view(reinterpret_cast<const char*>(p), end - p));
    uint32_t cp = 0xFFFD;
    if (len == 2) {
      cp = ((c & 0x1Fu) << 6) | (p[1] & 0x3Fu);
    } else if (len == 3) {
      cp = ((c & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    } else if (len == 4) {
      cp = ((c & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      u_escape(0xD800 + (cp >> 10));
      u_escape(0xDC00 + (cp & 0x3FF));
    } else {
      u_escape(cp);
    }
    p += len == 0 ? 1 : len;
  }
  out->push_back('"');
}

void AppendFloat(double v, std::string* out) {
  if (std::isnan(v))
    out->append("NaN");
  else if (std::isinf(v))
    out->append(v < 0 ? "-Infinity" : "Infinity");
  else
    AppendPythonFloat(v, out);
}

void Append(const Value& v, std::string* out, int indent) {
  // Each entry: a list or map being written and the index of its next item.
  struct Open {
    const Value* container;
    size_t next;
  };
  std::vector<Open> stack;
  const Value* cur = &v;
  for (;;) {
    if (cur != nullptr) {
      switch (cur->kind()) {
        case Value::Kind::kNull: out->append("null"); break;
        case Value::Kind::kBool: out->append(cur->as_bool() ? "true" : "false"); break;
        case Value::Kind::kInt: out->append(std::to_string(cur->as_int())); break;
        case Value::Kind::kFloat: AppendFloat(cur->as_float(), out); break;
        case Value::Kind::kString:
        case Value::Kind::kTimestamp: AppendString(cur->as_string(), out); break;
        case Value::Kind::kList:
          if (cur->as_list().empty()) {
            out->append("[]");
          } else {
            out->push_back('[');
            stack.push_back({cur, 0});
          }
          break;
        case Value::Kind::kMap:
          if (cur->as_map().empty()) {
            out->append("{}");
          } else {
            out->push_back('{');
            stack.push_back({cur, 0});
          }
          break;
      }
      cur = nullptr;
    }
    if (stack.empty()) return;
    Open& top = stack.back();
    const bool is_list = top.container->is_list();
    const size_t size = is_list ? top.container->as_list().size() : top.container->as_map().size();
    const int level = static_cast<int>(stack.size());
    if (top.next == size) {
      if (indent >= 0) AppendIndent(indent, level - 1, out);
      out->push_back(is_list ? ']' : '}');
      stack.pop_back();
      continue;
    }
    if (top.next > 0) out->append(indent >= 0 ? "," : ", ");
    if (indent >= 0) AppendIndent(indent, level, out);
    if (is_list) {
      cur = &top.container->as_list()[top.next++];
    } else {
      const auto& [key, value] = top.container->as_map()[top.next++];
      AppendString(key, out);
      out->append(": ");
      cur = &value;
    }
  }
}

}  // namespace pyfunc::json
