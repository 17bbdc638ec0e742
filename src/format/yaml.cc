// YAML with PyYAML's semantics: parsing via yaml-cpp plus PyYAML SafeLoader's YAML 1.1
// implicit resolvers, and an emitter that follows PyYAML's Emitter state for state
// (indentation, quoting choice, 80-column folding) so its output is byte-identical to
// `yaml.safe_dump(..., default_flow_style=False)`.
#include "pyfunc/yaml.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <regex>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace pyfunc {
namespace {

// ---------------------------------------------------------------------------
// Implicit resolution (PyYAML resolver.py), in PyYAML's registration order.

enum class Resolved { kStr, kBool, kFloat, kInt, kMerge, kNull, kTimestamp, kValue };

const std::regex& BoolRe() {
  static const std::regex re(
      "^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$");
  return re;
}
const std::regex& FloatRe() {
  static const std::regex re(
      R"(^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?)"
      R"(|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?)"
      R"(|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*)"
      R"(|[-+]?\.(?:inf|Inf|INF))"
      R"(|\.(?:nan|NaN|NAN))$)");
  return re;
}
const std::regex& IntRe() {
  static const std::regex re(
      R"(^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*))"
      R"(|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$)");
  return re;
}
const std::regex& NullRe() {
  static const std::regex re("^(?:~|null|Null|NULL|)$");
  return re;
}
const std::regex& TimestampRe() {
  static const std::regex re(
      R"(^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9])"
      R"(|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?)"
      R"((?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?)"
      R"((?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$)");
  return re;
}

Resolved ResolvePlain(const std::string& s) {
  if (s.empty()) return Resolved::kNull;
  const char c = s[0];
  const auto in = [c](const char* set) { return std::string_view(set).find(c) != std::string_view::npos; };
  if (in("yYnNtTfFoO") && std::regex_match(s, BoolRe())) return Resolved::kBool;
  if (in("-+0123456789.") && std::regex_match(s, FloatRe())) return Resolved::kFloat;
  if (in("-+0123456789") && std::regex_match(s, IntRe())) return Resolved::kInt;
  if (s == "<<") return Resolved::kMerge;
  if (in("~nN") && std::regex_match(s, NullRe())) return Resolved::kNull;
  if (in("0123456789") && std::regex_match(s, TimestampRe())) return Resolved::kTimestamp;
  if (s == "=") return Resolved::kValue;
  return Resolved::kStr;
}

std::string StripUnderscores(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s)
    if (c != '_') out += c;
  return out;
}

// Parses "a:b:c" in base 60 (YAML 1.1 sexagesimal numbers).
double Sexagesimal(const std::string& digits) {
  double value = 0;
  size_t start = 0;
  while (true) {
    size_t colon = digits.find(':', start);
    std::string part = digits.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    value = value * 60 + std::stod(part);
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return value;
}

Result<Value> ConstructInt(const std::string& text, const std::string& where) {
  std::string v = StripUnderscores(text);
  int sign = 1;
  if (!v.empty() && (v[0] == '-' || v[0] == '+')) {
    if (v[0] == '-') sign = -1;
    v = v.substr(1);
  }
  int base = 10;
  std::string digits = v;
  if (v == "0") return Value(0);
  if (v.rfind("0b", 0) == 0) {
    base = 2;
    digits = v.substr(2);
  } else if (v.rfind("0x", 0) == 0) {
    base = 16;
    digits = v.substr(2);
  } else if (v[0] == '0') {
    base = 8;
    digits = v.substr(1);
  } else if (v.find(':') != std::string::npos) {
    return Value(static_cast<int64_t>(sign * Sexagesimal(v)));
  }
  // Parse the magnitude as unsigned so that INT64_MIN is representable.
  uint64_t magnitude = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
  const uint64_t limit = sign < 0 ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  if (ec != std::errc() || ptr != digits.data() + digits.size() || magnitude > limit) {
    return Status::InvalidArgument(where + ": integer " + text + " does not fit in 64 bits");
  }
  return Value(sign < 0 ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude));
}

Value ConstructFloat(const std::string& text) {
  std::string v = StripUnderscores(text);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  double sign = 1;
  if (!v.empty() && (v[0] == '-' || v[0] == '+')) {
    if (v[0] == '-') sign = -1;
    v = v.substr(1);
  }
  if (v == ".inf") return Value(sign * std::numeric_limits<double>::infinity());
  if (v == ".nan") return Value(std::numeric_limits<double>::quiet_NaN());
  if (v.find(':') != std::string::npos) return Value(sign * Sexagesimal(v));
  return Value(sign * std::strtod(v.c_str(), nullptr));
}

// yaml-cpp writes the "\N" escape (U+0085) as a bare 0x85 byte. Bytes that do not form
// valid UTF-8 are taken as the Latin-1 code points they name and re-encoded.
std::string RepairUtf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = s[i];
    int extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : -1;
    bool valid = extra >= 0 && i + extra < s.size();
    for (int k = 1; valid && k <= extra; ++k) valid = (static_cast<unsigned char>(s[i + k]) >> 6) == 0x2;
    if (valid) {
      out.append(s, i, extra + 1);
      i += extra + 1;
    } else {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
      ++i;
    }
  }
  return out;
}

std::string Where(const std::string& source, const YAML::Mark& mark) {
  if (mark.line < 0) return source;
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

Result<Value> Convert(const YAML::Node& node, const std::string& source) {
  const YAML::Mark mark = node.Mark();
  const std::string where = Where(source, mark);
  Value out;
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out = Value();
      break;
    case YAML::NodeType::Scalar: {
      const std::string text = RepairUtf8(node.Scalar());
      const std::string& tag = node.Tag();
      static const std::string kCore = "tag:yaml.org,2002:";
      if (tag == "!" || tag == kCore + "str") {
        out = Value(text);
      } else if (tag == "?" || tag.empty()) {
        switch (ResolvePlain(text)) {
          case Resolved::kStr:
            out = Value(text);
            break;
          case Resolved::kBool: {
            std::string lower = text;
            std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
            out = Value(lower == "yes" || lower == "true" || lower == "on");
            break;
          }
          case Resolved::kFloat:
            out = ConstructFloat(text);
            break;
          case Resolved::kInt: {
            PYFUNC_ASSIGN_OR_RETURN(out, ConstructInt(text, where));
            break;
          }
          case Resolved::kNull:
            out = Value();
            break;
          case Resolved::kTimestamp:
            out = Value::Timestamp(text);
            break;
          case Resolved::kMerge:
          case Resolved::kValue:
            return Status::InvalidArgument(where + ": unsupported YAML value '" + text + "'");
        }
      } else if (tag == kCore + "int") {
        PYFUNC_ASSIGN_OR_RETURN(out, ConstructInt(text, where));
      } else if (tag == kCore + "float") {
        out = ConstructFloat(text);
      } else if (tag == kCore + "bool") {
        out = Value(ResolvePlain(text) == Resolved::kBool && (text[0] == 't' || text[0] == 'T' ||
                                                                text[0] == 'y' || text[0] == 'Y' ||
                                                                text == "on" || text == "On" || text == "ON"));
      } else if (tag == kCore + "null") {
        out = Value();
      } else {
        return Status::InvalidArgument(where + ": unsupported YAML tag '" + tag + "'");
      }
      break;
    }
    case YAML::NodeType::Sequence: {
      Value::List items;
      items.reserve(node.size());
      for (const auto& child : node) {
        PYFUNC_ASSIGN_OR_RETURN(Value item, Convert(child, source));
        items.push_back(std::move(item));
      }
      out = Value(std::move(items));
      break;
    }
    case YAML::NodeType::Map: {
      out = Value::EmptyMap();
      for (const auto& entry : node) {
        if (!entry.first.IsScalar()) {
          return Status::InvalidArgument(Where(source, entry.first.Mark()) +
                                         ": mapping keys must be scalars");
        }
        PYFUNC_ASSIGN_OR_RETURN(Value item, Convert(entry.second, source));
        out.Set(RepairUtf8(entry.first.Scalar()), std::move(item));  // a repeated key: the last wins
      }
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

std::u32string DecodeUtf8(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    char32_t cp;
    int extra;
    if (c < 0x80) {
      cp = c;
      extra = 0;
    } else if ((c >> 5) == 0x6) {
      cp = c & 0x1F;
      extra = 1;
    } else if ((c >> 4) == 0xE) {
      cp = c & 0x0F;
      extra = 2;
    } else if ((c >> 3) == 0x1E) {
      cp = c & 0x07;
      extra = 3;
    } else {
      out.push_back(c);  // not UTF-8: keep the byte as a Latin-1 code point
      ++i;
      continue;
    }
    if (i + extra >= s.size() && extra > 0) {
      out.push_back(c);
      ++i;
      continue;
    }
    bool valid = true;
    for (int k = 1; k <= extra; ++k) {
      unsigned char cc = s[i + k];
      if ((cc >> 6) != 0x2) {
        valid = false;
        break;
      }
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!valid) {
      out.push_back(c);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += extra + 1;
  }
  return out;
}

bool IsBreak(char32_t ch) { return ch == U'\n' || ch == 0x85 || ch == 0x2028 || ch == 0x2029; }
bool IsSpaceOrBreakOrNul(char32_t ch) {
  return ch == 0 || ch == U' ' || ch == U'\t' || ch == U'\r' || IsBreak(ch);
}

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

  void WriteIndicator(const char* indicator, bool need_whitespace, bool whitespace = false,
                      bool indention = false) {
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
        std::stable_sort(entries.begin(), entries.end(),
                         [](auto* a, auto* b) { return a->first < b->first; });
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
      case Value::Kind::kNull:
        text = "null";
        break;
      case Value::Kind::kBool:
        text = v.as_bool() ? "true" : "false";
        break;
      case Value::Kind::kInt:
        text = std::to_string(v.as_int());
        break;
      case Value::Kind::kFloat:
        text = FloatText(v.as_float());
        break;
      case Value::Kind::kTimestamp:
        text = v.as_string();
        break;
      case Value::Kind::kString:
        text = v.as_string();
        is_str = true;
        break;
      default:
        break;
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
      if (!have || ch == U'"' || ch == U'\\' || ch == 0x85 || ch == 0x2028 || ch == 0x2029 ||
          ch == 0xFEFF || !(ch >= 0x20 && ch <= 0x7E)) {
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
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    return Status::InvalidArgument(Where(source, e.mark) + ": not valid YAML: " + e.msg);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(source + ": not valid YAML: " + e.msg);
  }
  try {
    return Convert(root, source);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(source + ": not valid YAML: " + e.msg);
  }
}

std::string DumpYaml(const Value& value, const DumpYamlOptions& options) {
  return Emitter(options).Emit(value);
}

}  // namespace pyfunc
