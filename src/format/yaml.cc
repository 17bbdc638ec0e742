// YAML with PyYAML's semantics: parsing via yaml-cpp plus PyYAML SafeLoader's YAML 1.1
// implicit resolvers, and an emitter that follows PyYAML's Emitter state for state
// (indentation, quoting choice, 80-column folding) so its output is byte-identical to
// `yaml.safe_dump(..., default_flow_style=False)`.
#include "pyfunc/yaml.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <unordered_map>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace pyfunc {
namespace {

// ---------------------------------------------------------------------------
// Implicit resolution (PyYAML resolver.py), in PyYAML's registration order.
//
// Each matcher below accepts exactly the strings that PyYAML's regular expression of the
// same name accepts, written as a single left-to-right scan (no std::regex: its
// backtracking recursion overflows the stack on a long scalar, and it costs far more).

enum class Resolved { kStr, kBool, kFloat, kInt, kMerge, kNull, kTimestamp, kValue };

// A cursor over a scalar's text for the matchers.
class Scan {
 public:
  explicit Scan(std::string_view s) : s_(s) {}
  bool done() const { return i_ == s_.size(); }
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool EatAny(std::string_view set) {
    if (i_ < s_.size() && set.find(s_[i_]) != std::string_view::npos) {
      ++i_;
      return true;
    }
    return false;
  }
  bool EatDigit() { return EatRange('0', '9'); }
  bool EatRange(char lo, char hi) {
    if (i_ < s_.size() && s_[i_] >= lo && s_[i_] <= hi) {
      ++i_;
      return true;
    }
    return false;
  }
  bool EatWord(std::string_view w) {
    if (s_.substr(i_, w.size()) == w) {
      i_ += w.size();
      return true;
    }
    return false;
  }
  // [0-9_]*  (or another class given as a predicate)
  template <typename Pred>
  void Skip(Pred pred) {
    while (i_ < s_.size() && pred(s_[i_])) ++i_;
  }
  void SkipDigitsUnderscores() {
    Skip([](char c) { return (c >= '0' && c <= '9') || c == '_'; });
  }
  // (?::[0-5]?[0-9])+ — at least one group. Two digits are taken when they fit: a digit
  // after a one-digit group could only start another ':' group, so this is PyYAML's match.
  bool SexagesimalGroups() {
    int groups = 0;
    while (i_ < s_.size() && s_[i_] == ':') {
      size_t save = i_++;
      if (i_ + 1 < s_.size() && s_[i_] >= '0' && s_[i_] <= '5' && s_[i_ + 1] >= '0' && s_[i_ + 1] <= '9') {
        i_ += 2;
      } else if (!EatDigit()) {
        i_ = save;
        break;
      }
      ++groups;
    }
    return groups > 0;
  }
  // (?:[eE][-+][0-9]+)?
  bool OptionalExponent() {
    if (!EatAny("eE")) return true;
    if (!EatAny("-+") || !EatDigit()) return false;
    Skip([](char c) { return c >= '0' && c <= '9'; });
    return true;
  }
  // [0-9][0-9]?
  bool OneOrTwoDigits() {
    if (!EatDigit()) return false;
    EatDigit();
    return true;
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

bool IsYamlBool(std::string_view s) {
  for (std::string_view w : {"yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
                             "on", "On", "ON", "off", "Off", "OFF"}) {
    if (s == w) return true;
  }
  return false;
}

bool IsYamlNull(std::string_view s) { return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL"; }

// ^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
//  |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
//  |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
//  |[-+]?\.(?:inf|Inf|INF)
//  |\.(?:nan|NaN|NAN))$
bool IsYamlFloat(std::string_view s) {
  {
    Scan c(s);
    c.EatAny("-+");
    if (c.EatDigit()) {
      c.SkipDigitsUnderscores();
      if (c.Eat('.')) {
        c.SkipDigitsUnderscores();
        if (c.OptionalExponent() && c.done()) return true;
      }
    }
  }
  {
    Scan c(s);
    if (c.Eat('.') && c.EatDigit()) {
      c.SkipDigitsUnderscores();
      if (c.OptionalExponent() && c.done()) return true;
    }
  }
  {
    Scan c(s);
    c.EatAny("-+");
    if (c.EatDigit()) {
      c.SkipDigitsUnderscores();
      if (c.SexagesimalGroups() && c.Eat('.')) {
        c.SkipDigitsUnderscores();
        if (c.done()) return true;
      }
    }
  }
  {
    Scan c(s);
    c.EatAny("-+");
    if (c.Eat('.') && (c.EatWord("inf") || c.EatWord("Inf") || c.EatWord("INF")) && c.done()) return true;
  }
  return s == ".nan" || s == ".NaN" || s == ".NAN";
}

// ^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+
//  |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$
bool IsYamlInt(std::string_view s) {
  std::string_view rest = s;
  if (!rest.empty() && (rest[0] == '-' || rest[0] == '+')) rest.remove_prefix(1);
  if (rest.empty()) return false;
  const auto all = [](std::string_view t, auto pred) {
    if (t.empty()) return false;
    for (char c : t)
      if (!pred(c)) return false;
    return true;
  };
  if (rest.substr(0, 2) == "0b" && all(rest.substr(2), [](char c) { return c == '0' || c == '1' || c == '_'; }))
    return true;
  if (rest.substr(0, 2) == "0x" &&
      all(rest.substr(2), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == '_'; })) {
    return true;
  }
  if (rest[0] == '0') {
    return rest.size() == 1 || all(rest.substr(1), [](char c) { return (c >= '0' && c <= '7') || c == '_'; });
  }
  if (rest[0] < '1' || rest[0] > '9') return false;
  Scan c(rest);
  c.EatDigit();
  c.SkipDigitsUnderscores();
  if (c.done()) return true;
  return c.SexagesimalGroups() && c.done();
}

// ^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
//  |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9]
//   (?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$
bool IsYamlTimestamp(std::string_view s) {
  Scan c(s);
  for (int i = 0; i < 4; ++i)
    if (!c.EatDigit()) return false;
  if (!c.Eat('-')) return false;
  if (s.size() == 10) {
    Scan d(s.substr(5));
    if (d.EatDigit() && d.EatDigit() && d.Eat('-') && d.EatDigit() && d.EatDigit() && d.done()) return true;
  }
  if (!c.OneOrTwoDigits() || !c.Eat('-') || !c.OneOrTwoDigits()) return false;
  if (!c.EatAny("Tt")) {
    if (!c.EatAny(" \t")) return false;
    c.Skip([](char ch) { return ch == ' ' || ch == '\t'; });
  }
  if (!c.OneOrTwoDigits() || !c.Eat(':') || !c.EatDigit() || !c.EatDigit() || !c.Eat(':') || !c.EatDigit() ||
      !c.EatDigit()) {
    return false;
  }
  if (c.Eat('.')) c.Skip([](char ch) { return ch >= '0' && ch <= '9'; });
  if (c.done()) return true;
  c.Skip([](char ch) { return ch == ' ' || ch == '\t'; });
  if (c.Eat('Z')) return c.done();
  if (!c.EatAny("-+") || !c.OneOrTwoDigits()) return false;
  if (c.done()) return true;
  return c.Eat(':') && c.EatDigit() && c.EatDigit() && c.done();
}

Resolved ResolvePlain(std::string_view s) {
  if (s.empty()) return Resolved::kNull;
  const char c = s[0];
  const auto in = [c](const char* set) { return std::string_view(set).find(c) != std::string_view::npos; };
  if (in("yYnNtTfFoO") && IsYamlBool(s)) return Resolved::kBool;
  if (in("-+0123456789.") && IsYamlFloat(s)) return Resolved::kFloat;
  if (in("-+0123456789") && IsYamlInt(s)) return Resolved::kInt;
  if (s == "<<") return Resolved::kMerge;
  if (in("~nN") && IsYamlNull(s)) return Resolved::kNull;
  if (in("0123456789") && IsYamlTimestamp(s)) return Resolved::kTimestamp;
  if (s == "=") return Resolved::kValue;
  return Resolved::kStr;
}

std::string StripUnderscores(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s)
    if (c != '_') out += c;
  return out;
}

std::string Quoted(std::string_view text) {
  std::string out = "'";
  out.append(text.substr(0, 60));
  if (text.size() > 60) out += "...";
  return out + "'";
}

Status IntError(const std::string& where, std::string_view text) {
  std::string shown(text.substr(0, 60));
  if (text.size() > 60) shown += "...";
  return Status::InvalidArgument(where + ": integer " + shown + " does not fit in 64 bits");
}

// PyYAML's construct_yaml_int, in 64 bits: a value beyond int64 is an error (PyYAML
// makes a Python int of any size; pyfunc's Value has int64 only, and a float would not
// write back as the same text).
Result<Value> ConstructInt(std::string_view text, const std::string& where) {
  if (!IsYamlInt(text)) {
    return Status::InvalidArgument(where + ": cannot construct an int from " + Quoted(text));
  }
  std::string v = StripUnderscores(text);
  bool negative = false;
  if (!v.empty() && (v[0] == '-' || v[0] == '+')) {
    negative = v[0] == '-';
    v.erase(0, 1);
  }
  const uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  uint64_t magnitude = 0;
  if (v == "0") return Value(0);
  if (v.find(':') != std::string::npos) {
    // Base 60: "1:20" is 80. Every part is 1-2 digits after the first (the syntax
    // checked above), so only the multiplication and the addition can overflow.
    size_t start = 0;
    while (true) {
      const size_t colon = v.find(':', start);
      const size_t end = colon == std::string::npos ? v.size() : colon;
      uint64_t part = 0;
      auto [ptr, ec] = std::from_chars(v.data() + start, v.data() + end, part);
      if (ec != std::errc() || ptr != v.data() + end) return IntError(where, text);
      if (__builtin_mul_overflow(magnitude, uint64_t{60}, &magnitude) ||
          __builtin_add_overflow(magnitude, part, &magnitude) || magnitude > limit) {
        return IntError(where, text);
      }
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  } else {
    int base = 10;
    std::string_view digits = v;
    if (v.rfind("0b", 0) == 0) {
      base = 2;
      digits.remove_prefix(2);
    } else if (v.rfind("0x", 0) == 0) {
      base = 16;
      digits.remove_prefix(2);
    } else if (v[0] == '0') {
      base = 8;
      digits.remove_prefix(1);
    }
    if (digits.empty()) {  // "0x_": PyYAML's int('', 16) fails too
      return Status::InvalidArgument(where + ": cannot construct an int from " + Quoted(text));
    }
    // Parsed as unsigned so that INT64_MIN is representable.
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
    if (ec != std::errc() || ptr != digits.data() + digits.size() || magnitude > limit) {
      return IntError(where, text);
    }
  }
  return Value(negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude));
}

// Python's float(text) for what PyYAML passes it: decimal forms, "inf"/"nan"; a value
// beyond the double range is ±inf and one below it 0, as in Python. False otherwise.
bool PythonFloat(const std::string& text, double* out) {
  if (text.empty() || text.find_first_of("xXpP") != std::string::npos) return false;  // no hex floats
  char* end = nullptr;
  errno = 0;
  *out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

// PyYAML's construct_yaml_float.
Result<Value> ConstructFloat(std::string_view text, const std::string& where) {
  std::string v = StripUnderscores(text);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  double sign = 1;
  if (!v.empty() && (v[0] == '-' || v[0] == '+')) {
    if (v[0] == '-') sign = -1;
    v.erase(0, 1);
  }
  if (v == ".inf") return Value(sign * std::numeric_limits<double>::infinity());
  if (v == ".nan") return Value(std::numeric_limits<double>::quiet_NaN());
  const auto bad = [&] { return Status::InvalidArgument(where + ": cannot construct a float from " + Quoted(text)); };
  if (v.find(':') != std::string::npos) {
    // Base 60 ("1:30.5" is 90.5), each part read as a float as PyYAML does.
    double value = 0;
    size_t start = 0;
    while (true) {
      const size_t colon = v.find(':', start);
      double part;
      if (!PythonFloat(v.substr(start, colon == std::string::npos ? std::string::npos : colon - start), &part)) {
        return bad();
      }
      value = value * 60 + part;
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    return Value(sign * value);
  }
  double value;
  if (!PythonFloat(v, &value)) return bad();
  return Value(sign * value);
}

// yaml-cpp decodes the escapes "\N" (U+0085) and "\_" (U+00A0) to the bare bytes 0x85 and
// 0xA0. The input was checked to be valid UTF-8, so any byte that does not start a
// well-formed sequence here came from such an escape: it is taken as the Latin-1 code
// point it names and encoded as UTF-8.
std::string RepairUtf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceLength(std::string_view(s).substr(i));
    if (n > 0) {
      out.append(s, i, n);
      i += n;
    } else {
      const unsigned char c = s[i];
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
      ++i;
    }
  }
  return out;
}

// PyYAML reads a document as UTF-8 text and refuses the characters it cannot print
// (reader.py NON_PRINTABLE): everything but TAB, LF, CR, 0x20-0x7E, U+0085,
// U+00A0-U+D7FF, U+E000-U+FFFD and U+10000-U+10FFFF. So does pyfunc, before yaml-cpp
// (which would pass other bytes through) sees the text.
Status CheckYamlText(std::string_view text, const std::string& source) {
  int line = 1, column = 1;
  for (size_t i = 0; i < text.size();) {
    const size_t n = Utf8SequenceLength(text.substr(i));
    const auto where = [&] { return source + ":" + std::to_string(line) + ":" + std::to_string(column); };
    if (n == 0) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "0x%02X", static_cast<unsigned char>(text[i]));
      return Status::InvalidArgument(where() + ": not valid UTF-8 (byte " + buf + ")");
    }
    const auto* p = reinterpret_cast<const unsigned char*>(text.data() + i);
    uint32_t cp = n == 1   ? p[0]
                  : n == 2 ? ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu)
                  : n == 3 ? ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu)
                           : ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
    const bool printable = cp == 0x09 || cp == 0x0A || cp == 0x0D || (cp >= 0x20 && cp <= 0x7E) || cp == 0x85 ||
                           (cp >= 0xA0 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) || cp >= 0x10000;
    if (!printable) {
      char buf[16];
      std::snprintf(buf, sizeof(buf), "#x%04x", cp);
      return Status::InvalidArgument(where() + ": unacceptable character " + buf +
                                     ": special characters are not allowed");
    }
    if (cp == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    i += n;
  }
  return Status::OK();
}

std::string Where(const std::string& source, const YAML::Mark& mark) {
  if (mark.line < 0) return source;
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

// yaml-cpp keeps an alias as a second reference to its anchor's node, so the document
// is a graph; Value is a tree, so each reference is expanded into a copy. A few bytes of
// nested aliases can name billions of nodes (the "billion laughs"), so the expansion has
// a budget proportional to the document's size.
constexpr int64_t kNodeBudgetBase = 100000;
constexpr int64_t kNodesPerByte = 4;
// yaml-cpp itself refuses documents nested deeper than about 500 levels; this bound
// makes the limit of Convert's recursion explicit.
constexpr int kMaxDepth = 512;

struct ConvertState {
  const std::string& source;
  int64_t budget;  // nodes still allowed
  int64_t limit;
};

Result<Value> ConvertScalar(const YAML::Node& node, const std::string& source) {
  const std::string text = RepairUtf8(node.Scalar());
  const std::string& tag = node.Tag();
  static const std::string kCore = "tag:yaml.org,2002:";
  const auto where = [&] { return Where(source, node.Mark()); };
  if (tag == "!" || tag == kCore + "str") return Value(text);
  if (tag == "?" || tag.empty()) {
    switch (ResolvePlain(text)) {
      case Resolved::kStr: return Value(text);
      case Resolved::kBool: {
        const char c = text[0];
        return Value(c == 'y' || c == 'Y' || c == 't' || c == 'T' || text == "on" || text == "On" || text == "ON");
      }
      case Resolved::kFloat: return ConstructFloat(text, where());
      case Resolved::kInt: return ConstructInt(text, where());
      case Resolved::kNull: return Value();
      case Resolved::kTimestamp: return Value::Timestamp(text);
      case Resolved::kMerge:
      case Resolved::kValue: return Status::InvalidArgument(where() + ": unsupported YAML value '" + text + "'");
    }
  }
  if (tag == kCore + "int") return ConstructInt(text, where());
  if (tag == kCore + "float") return ConstructFloat(text, where());
  if (tag == kCore + "bool") {
    return Value(ResolvePlain(text) == Resolved::kBool &&
                 (text[0] == 't' || text[0] == 'T' || text[0] == 'y' || text[0] == 'Y' || text == "on" ||
                  text == "On" || text == "ON"));
  }
  if (tag == kCore + "null") return Value();
  return Status::InvalidArgument(where() + ": unsupported YAML tag '" + tag + "'");
}

Status BudgetError(const ConvertState& state, const YAML::Mark& mark) {
  return Status::InvalidArgument(
      Where(state.source, mark) + ": alias expansion exceeds " + std::to_string(state.limit) +
      " nodes: the document refers to its anchors too often (the limit is " + std::to_string(kNodesPerByte) +
      " nodes per byte of the document plus " + std::to_string(kNodeBudgetBase) + ")");
}

Result<Value> Convert(const YAML::Node& node, ConvertState& state, int depth) {
  if (--state.budget < 0) return BudgetError(state, node.Mark());
  if (depth > kMaxDepth) {
    return Status::InvalidArgument(Where(state.source, node.Mark()) + ": nested deeper than " +
                                   std::to_string(kMaxDepth) + " levels");
  }
  const YAML::Mark mark = node.Mark();
  Value out;
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: break;
    case YAML::NodeType::Scalar: {
      PYFUNC_ASSIGN_OR_RETURN(out, ConvertScalar(node, state.source));
      break;
    }
    case YAML::NodeType::Sequence: {
      Value::List items;
      items.reserve(node.size());
      for (const auto& child : node) {
        PYFUNC_ASSIGN_OR_RETURN(Value item, Convert(child, state, depth + 1));
        items.push_back(std::move(item));
      }
      out = Value(std::move(items));
      break;
    }
    case YAML::NodeType::Map: {
      Value::Map entries;
      // A repeated key keeps its first position and takes the last value, as a Python
      // dict does; the index makes that linear in the number of keys.
      std::unordered_map<std::string, size_t> index;
      for (const auto& entry : node) {
        if (!entry.first.IsScalar()) {
          return Status::InvalidArgument(Where(state.source, entry.first.Mark()) + ": mapping keys must be scalars");
        }
        if (--state.budget < 0) return BudgetError(state, entry.first.Mark());
        PYFUNC_ASSIGN_OR_RETURN(Value item, Convert(entry.second, state, depth + 1));
        std::string key = RepairUtf8(entry.first.Scalar());
        auto [it, inserted] = index.try_emplace(key, entries.size());
        if (inserted) {
          entries.emplace_back(std::move(key), std::move(item));
        } else {
          entries[it->second].second = std::move(item);
        }
      }
      out = Value(std::move(entries));
      break;
    }
  }
  out.set_position(mark.line + 1, mark.column + 1);
  return out;
}

// ---------------------------------------------------------------------------
// Emitter (PyYAML emitter.py, for the events that safe_dump of plain data produces).

constexpr int kBestIndent = 2;
constexpr int kBestWidth = 80;

// Code points of `s`. A byte that does not start well-formed UTF-8 (a Value can hold any
// bytes) becomes U+FFFD, so that everything written is valid UTF-8 YAML that ParseYaml
// reads back.
std::u32string DecodeUtf8(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  const std::string_view v(s);
  for (size_t i = 0; i < v.size();) {
    const size_t n = Utf8SequenceLength(v.substr(i));
    const auto* p = reinterpret_cast<const unsigned char*>(v.data() + i);
    switch (n) {
      case 0:
        out.push_back(0xFFFD);
        i += 1;
        continue;
      case 1: out.push_back(p[0]); break;
      case 2: out.push_back(((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu)); break;
      case 3: out.push_back(((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu)); break;
      default:
        out.push_back(((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu));
        break;
    }
    i += n;
  }
  return out;
}

bool IsBreak(char32_t ch) { return ch == U'\n' || ch == 0x85 || ch == 0x2028 || ch == 0x2029; }
bool IsSpaceOrBreakOrNul(char32_t ch) { return ch == 0 || ch == U' ' || ch == U'\t' || ch == U'\r' || IsBreak(ch); }

struct Analysis {
  bool empty = false;
  bool multiline = false;
  bool allow_block_plain = true;
  bool allow_single_quoted = true;
};

Analysis AnalyzeScalar(const std::u32string& s) {
  Analysis a;
  if (s.empty()) {
    a.empty = true;
    return a;
  }
  bool block_indicators = false, line_breaks = false, special = false;
  bool leading_space = false, leading_break = false, trailing_space = false, trailing_break = false;
  bool break_space = false, space_break = false;
  auto starts = [&](const char32_t* p) { return s.compare(0, 3, p) == 0; };
  if (starts(U"---") || starts(U"...")) block_indicators = true;
  bool preceded_by_ws = true;
  bool followed_by_ws = s.size() == 1 || IsSpaceOrBreakOrNul(s[1]);
  bool previous_space = false, previous_break = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char32_t ch = s[i];
    if (i == 0) {
      if (std::u32string_view(U"#,[]{}&*!|>'\"%@`").find(ch) != std::u32string_view::npos) block_indicators = true;
      if ((ch == U'?' || ch == U':') && followed_by_ws) block_indicators = true;
      if (ch == U'-' && followed_by_ws) block_indicators = true;
    } else {
      if (ch == U':' && followed_by_ws) block_indicators = true;
      if (ch == U'#' && preceded_by_ws) block_indicators = true;
    }
    if (IsBreak(ch)) line_breaks = true;
    if (!(ch == U'\n' || (ch >= 0x20 && ch <= 0x7E))) special = true;  // allow_unicode=False
    if (ch == U' ') {
      if (i == 0) leading_space = true;
      if (i == s.size() - 1) trailing_space = true;
      if (previous_break) break_space = true;
      previous_space = true;
      previous_break = false;
    } else if (IsBreak(ch)) {
      if (i == 0) leading_break = true;
      if (i == s.size() - 1) trailing_break = true;
      if (previous_space) space_break = true;
      previous_space = false;
      previous_break = true;
    } else {
      previous_space = previous_break = false;
    }
    preceded_by_ws = IsSpaceOrBreakOrNul(ch);
    followed_by_ws = i + 2 >= s.size() || IsSpaceOrBreakOrNul(s[i + 2]);
  }
  a.multiline = line_breaks;
  if (leading_space || leading_break || trailing_space || trailing_break) a.allow_block_plain = false;
  if (break_space) a.allow_block_plain = a.allow_single_quoted = false;
  if (space_break || special) a.allow_block_plain = a.allow_single_quoted = false;
  if (line_breaks) a.allow_block_plain = false;
  if (block_indicators) a.allow_block_plain = false;
  return a;
}

// Python's repr(float) followed by PyYAML's represent_float adjustments.
std::string FloatText(double d) {
  if (std::isnan(d)) return ".nan";
  if (std::isinf(d)) return d > 0 ? ".inf" : "-.inf";
  std::string out = PythonFloatRepr(d);
  if (out.find('.') == std::string::npos && out.find('e') != std::string::npos) {
    out.replace(out.find('e'), 1, ".0e");  // "1e+16" -> "1.0e+16"
  }
  return out;
}

class Emitter {
 public:
  explicit Emitter(const DumpYamlOptions& options) : options_(options) {}

  std::string Emit(const Value& root) {
    EmitNode(root, /*root=*/true, /*mapping=*/false, /*simple_key=*/false);
    if (open_ended_) {
      // A plain root scalar: PyYAML closes the document with "...".
      WriteIndent();
      out_ += "...";
      column_ += 3;
    }
    WriteIndent();
    return std::move(out_);
  }

 private:
  void WriteLineBreak() {
    out_ += '\n';
    whitespace_ = indention_ = true;
    column_ = 0;
  }

  void WriteIndent() {
    const int indent = indent_ < 0 ? 0 : indent_;
    if (!indention_ || column_ > indent || (column_ == indent && !whitespace_)) WriteLineBreak();
    if (column_ < indent) {
      whitespace_ = true;
      out_.append(indent - column_, ' ');
      column_ = indent;
    }
  }

  void WriteIndicator(const char* indicator, bool need_whitespace, bool whitespace = false, bool indention = false) {
    std::string data = (whitespace_ || !need_whitespace) ? indicator : std::string(" ") + indicator;
    whitespace_ = whitespace;
    indention_ = indention_ && indention;
    column_ += static_cast<int>(data.size());
    out_ += data;
  }

  void Write(const std::u32string& text, size_t start, size_t end) {
    for (size_t i = start; i < end; ++i) out_ += static_cast<char>(text[i]);  // ASCII only here
    column_ += static_cast<int>(end - start);
  }

  void IncreaseIndent(bool flow, bool indentless) {
    indents_.push_back(indent_);
    if (indent_ < 0) {
      indent_ = flow ? kBestIndent : 0;
    } else if (!indentless) {
      indent_ += kBestIndent;
    }
  }

  void PopIndent() {
    indent_ = indents_.back();
    indents_.pop_back();
  }

  void EmitNode(const Value& v, bool root, bool mapping, bool simple_key) {
    if (v.is_list()) {
      if (v.as_list().empty()) return EmitEmptyFlow("[", "]");
      const bool indentless = mapping && !indention_;
      IncreaseIndent(false, indentless);
      for (const Value& item : v.as_list()) {
        WriteIndent();
        WriteIndicator("-", true, false, true);
        EmitNode(item, false, false, false);
      }
      PopIndent();
    } else if (v.is_map()) {
      if (v.as_map().empty()) return EmitEmptyFlow("{", "}");
      IncreaseIndent(false, false);
      std::vector<const std::pair<std::string, Value>*> entries;
      for (const auto& entry : v.as_map()) entries.push_back(&entry);
      if (options_.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->first < b->first; });
      }
      for (const auto* entry : entries) {
        WriteIndent();
        const std::u32string key = DecodeUtf8(entry->first);
        const Analysis ka = AnalyzeScalar(key);
        // check_simple_key: the prepared tag "!!str" counts towards the 128 limit.
        if (key.size() + 5 < 128 && !ka.empty && !ka.multiline) {
          EmitScalar(Value(entry->first), false, true);
          WriteIndicator(":", false);
        } else {
          WriteIndicator("?", true, false, true);
          EmitScalar(Value(entry->first), false, false);
          WriteIndent();
          WriteIndicator(":", true, false, true);
        }
        EmitNode(entry->second, false, true, false);
      }
      PopIndent();
    } else {
      EmitScalar(v, root, simple_key);
    }
  }

  void EmitEmptyFlow(const char* open, const char* close) {
    WriteIndicator(open, true, true);
    WriteIndicator(close, false);
  }

  void EmitScalar(const Value& v, bool root, bool simple_key) {
    IncreaseIndent(true, false);
    std::string text;
    bool is_str = false;
    switch (v.kind()) {
      case Value::Kind::kNull: text = "null"; break;
      case Value::Kind::kBool: text = v.as_bool() ? "true" : "false"; break;
      case Value::Kind::kInt: text = std::to_string(v.as_int()); break;
      case Value::Kind::kFloat: text = FloatText(v.as_float()); break;
      case Value::Kind::kTimestamp: text = v.as_string(); break;
      case Value::Kind::kString:
        text = v.as_string();
        is_str = true;
        break;
      default: break;
    }
    const std::u32string u = DecodeUtf8(text);
    const Analysis a = AnalyzeScalar(u);
    const bool implicit_plain = !is_str || ResolvePlain(text) == Resolved::kStr;
    const bool split = !simple_key;
    if (implicit_plain && !(simple_key && (a.empty || a.multiline)) && a.allow_block_plain) {
      if (root) open_ended_ = true;
      WritePlain(u, split);
    } else if (a.allow_single_quoted && !(simple_key && a.multiline)) {
      WriteSingleQuoted(u, split);
    } else {
      WriteDoubleQuoted(u, split);
    }
    PopIndent();
  }

  void WritePlain(const std::u32string& text, bool split) {
    if (text.empty()) return;
    if (!whitespace_) {
      out_ += ' ';
      column_ += 1;
    }
    whitespace_ = indention_ = false;
    bool spaces = false;
    size_t start = 0;
    for (size_t end = 0; end <= text.size(); ++end) {
      const bool have = end < text.size();
      const char32_t ch = have ? text[end] : 0;
      if (spaces) {
        if (!have || ch != U' ') {
          if (start + 1 == end && column_ > kBestWidth && split) {
            WriteIndent();
            whitespace_ = indention_ = false;
          } else {
            Write(text, start, end);
          }
          start = end;
        }
      } else if (!have || ch == U' ') {
        Write(text, start, end);
        start = end;
      }
      if (have) spaces = ch == U' ';
    }
  }

  void WriteSingleQuoted(const std::u32string& text, bool split) {
    WriteIndicator("'", true);
    bool spaces = false, breaks = false;
    size_t start = 0;
    for (size_t end = 0; end <= text.size(); ++end) {
      const bool have = end < text.size();
      const char32_t ch = have ? text[end] : 0;
      if (spaces) {
        if (!have || ch != U' ') {
          if (start + 1 == end && column_ > kBestWidth && split && start != 0 && end != text.size()) {
            WriteIndent();
          } else {
            Write(text, start, end);
          }
          start = end;
        }
      } else if (breaks) {
        if (!have || !IsBreak(ch)) {
          if (text[start] == U'\n') WriteLineBreak();
          for (size_t i = start; i < end; ++i) WriteLineBreak();  // only '\n' reaches here
          WriteIndent();
          start = end;
        }
      } else if (!have || ch == U' ' || IsBreak(ch) || ch == U'\'') {
        if (start < end) {
          Write(text, start, end);
          start = end;
        }
      }
      if (have && ch == U'\'') {
        out_ += "''";
        column_ += 2;
        start = end + 1;
      }
      if (have) {
        spaces = ch == U' ';
        breaks = IsBreak(ch);
      }
    }
    WriteIndicator("'", false);
  }

  static const char* Escape(char32_t ch) {
    switch (ch) {
      case 0: return "0";
      case 0x07: return "a";
      case 0x08: return "b";
      case 0x09: return "t";
      case 0x0A: return "n";
      case 0x0B: return "v";
      case 0x0C: return "f";
      case 0x0D: return "r";
      case 0x1B: return "e";
      case U'"': return "\"";
      case U'\\': return "\\";
      case 0x85: return "N";
      case 0xA0: return "_";
      case 0x2028: return "L";
      case 0x2029: return "P";
      default: return nullptr;
    }
  }

  void WriteDoubleQuoted(const std::u32string& text, bool split) {
    WriteIndicator("\"", true);
    size_t start = 0;
    for (size_t end = 0; end <= text.size(); ++end) {
      const bool have = end < text.size();
      const char32_t ch = have ? text[end] : 0;
      if (!have || ch == U'"' || ch == U'\\' || ch == 0x85 || ch == 0x2028 || ch == 0x2029 || ch == 0xFEFF ||
          !(ch >= 0x20 && ch <= 0x7E)) {
        if (start < end) {
          Write(text, start, end);
          start = end;
        }
        if (have) {
          std::string data;
          if (const char* e = Escape(ch)) {
            data = std::string("\\") + e;
          } else {
            char buf[16];
            if (ch <= 0xFF) {
              std::snprintf(buf, sizeof(buf), "\\x%02X", static_cast<unsigned>(ch));
            } else if (ch <= 0xFFFF) {
              std::snprintf(buf, sizeof(buf), "\\u%04X", static_cast<unsigned>(ch));
            } else {
              std::snprintf(buf, sizeof(buf), "\\U%08X", static_cast<unsigned>(ch));
            }
            data = buf;
          }
          out_ += data;
          column_ += static_cast<int>(data.size());
          start = end + 1;
        }
      }
      if (end > 0 && end + 1 < text.size() && (ch == U' ' || start >= end) &&
          column_ + static_cast<int>(end - start) > kBestWidth && split) {
        if (start < end) {
          Write(text, start, end);
          start = end;
        }
        out_ += '\\';
        column_ += 1;
        WriteIndent();
        whitespace_ = indention_ = false;
        if (text[start] == U' ') {
          out_ += '\\';
          column_ += 1;
        }
      }
    }
    WriteIndicator("\"", false);
  }

  const DumpYamlOptions& options_;
  std::string out_;
  int column_ = 0;
  bool whitespace_ = true;
  bool indention_ = true;
  bool open_ended_ = false;
  int indent_ = -1;  // PyYAML's None
  std::vector<int> indents_;
};

}  // namespace

Result<Value> ParseYaml(std::string_view text, const std::string& source) {
  PYFUNC_RETURN_IF_ERROR(CheckYamlText(text, source));
  try {
    YAML::Node root = YAML::Load(std::string(text));
    const int64_t limit = kNodeBudgetBase + kNodesPerByte * static_cast<int64_t>(text.size());
    ConvertState state{source, limit, limit};
    return Convert(root, state, 0);
  } catch (const YAML::ParserException& e) {
    return Status::InvalidArgument(Where(source, e.mark) + ": not valid YAML: " + e.msg);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(source + ": not valid YAML: " + e.msg);
  } catch (const std::exception& e) {
    // yaml-cpp reports some failures with standard exceptions; none may escape.
    return Status::InvalidArgument(source + ": not valid YAML: " + e.what());
  }
}

std::string DumpYaml(const Value& value, const DumpYamlOptions& options) { return Emitter(options).Emit(value); }

}  // namespace pyfunc
