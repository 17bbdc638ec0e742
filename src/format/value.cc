#include "pyfunc/value.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "format/json.h"
#include "pyfunc/status.h"

namespace pyfunc {

namespace {

[[noreturn]] void WrongKind(const char* wanted, const Value& v) {
  std::fprintf(stderr, "pyfunc::Value: %s requested from a %s\n", wanted, v.TypeName());
  std::abort();
}

}  // namespace

Value Value::Timestamp(std::string text) {
  Value v(std::move(text));
  v.kind_ = Kind::kTimestamp;
  return v;
}

bool Value::as_bool() const {
  if (kind_ != Kind::kBool) WrongKind("bool", *this);
  return int_ != 0;
}

int64_t Value::as_int() const {
  if (kind_ != Kind::kInt) WrongKind("int", *this);
  return int_;
}

double Value::as_float() const {
  if (kind_ != Kind::kFloat) WrongKind("float", *this);
  return float_;
}

const std::string& Value::as_string() const {
  if (kind_ != Kind::kString && kind_ != Kind::kTimestamp) WrongKind("str", *this);
  return str_;
}

const Value::List& Value::as_list() const {
  if (kind_ != Kind::kList) WrongKind("list", *this);
  return list_;
}

Value::List& Value::as_list() {
  if (kind_ != Kind::kList) WrongKind("list", *this);
  return list_;
}

const Value::Map& Value::as_map() const {
  if (kind_ != Kind::kMap) WrongKind("dict", *this);
  return map_;
}

Value::Map& Value::as_map() {
  if (kind_ != Kind::kMap) WrongKind("dict", *this);
  return map_;
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kNull: return false;
    case Kind::kBool:
    case Kind::kInt: return int_ != 0;
    case Kind::kFloat: return float_ != 0;
    case Kind::kString:
    case Kind::kTimestamp: return !str_.empty();
    case Kind::kList: return !list_.empty();
    case Kind::kMap: return !map_.empty();
  }
  return false;
}

const Value* Value::Find(std::string_view key) const {
  if (kind_ != Kind::kMap) return nullptr;
  for (const auto& entry : map_) {
    if (entry.first == key) return &entry.second;
  }
  return nullptr;
}

Value* Value::Find(std::string_view key) { return const_cast<Value*>(static_cast<const Value*>(this)->Find(key)); }

void Value::Set(std::string_view key, Value value) {
  if (kind_ != Kind::kMap) WrongKind("dict", *this);
  if (Value* existing = Find(key)) {
    *existing = std::move(value);
    return;
  }
  map_.emplace_back(std::string(key), std::move(value));
}

bool Value::Erase(std::string_view key) {
  if (kind_ != Kind::kMap) return false;
  for (auto it = map_.begin(); it != map_.end(); ++it) {
    if (it->first == key) {
      map_.erase(it);
      return true;
    }
  }
  return false;
}

const char* Value::TypeName() const {
  switch (kind_) {
    case Kind::kNull: return "NoneType";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kTimestamp: return "datetime";
    case Kind::kList: return "list";
    case Kind::kMap: return "dict";
  }
  return "?";
}

bool Value::operator==(const Value& other) const {
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case Kind::kNull: return true;
    case Kind::kBool:
    case Kind::kInt: return int_ == other.int_;
    case Kind::kFloat: return float_ == other.float_ || (std::isnan(float_) && std::isnan(other.float_));
    case Kind::kString:
    case Kind::kTimestamp: return str_ == other.str_;
    case Kind::kList: return list_ == other.list_;
    case Kind::kMap: return map_ == other.map_;
  }
  return false;
}

namespace {

// Writes shortest round-trip digits given in scientific form ("-d.ddde+XX") as Python
// and numpy write them: positional for 1e-4 <= |v| < 10^max_decpt, scientific otherwise.
void AppendShortest(std::string_view sci, int max_decpt, std::string* out) {
  bool negative = false;
  if (!sci.empty() && sci[0] == '-') {
    negative = true;
    sci.remove_prefix(1);
  }
  size_t e = sci.find('e');
  std::string_view mantissa = sci.substr(0, e);
  int exp10 = 0;
  std::from_chars(sci.data() + e + 1 + (sci[e + 1] == '+' ? 1 : 0), sci.data() + sci.size(), exp10);
  char digits[32];
  size_t nd = 0;
  for (char c : mantissa) {
    if (c != '.') digits[nd++] = c;
  }
  while (nd > 1 && digits[nd - 1] == '0') --nd;
  int decpt = exp10 + 1;  // value = 0.d1d2... * 10^decpt
  if (negative) out->push_back('-');
  if (decpt > -4 && decpt <= max_decpt) {
    if (decpt <= 0) {
      out->append("0.");
      out->append(static_cast<size_t>(-decpt), '0');
      out->append(digits, nd);
    } else if (static_cast<size_t>(decpt) >= nd) {
      out->append(digits, nd);
      out->append(static_cast<size_t>(decpt) - nd, '0');
      out->append(".0");
    } else {
      out->append(digits, static_cast<size_t>(decpt));
      out->push_back('.');
      out->append(digits + decpt, nd - static_cast<size_t>(decpt));
    }
    return;
  }
  out->push_back(digits[0]);
  if (nd > 1) {
    out->push_back('.');
    out->append(digits + 1, nd - 1);
  }
  int x = decpt - 1;
  out->push_back('e');
  out->push_back(x < 0 ? '-' : '+');
  if (x < 0) x = -x;
  if (x < 10) out->push_back('0');
  out->append(std::to_string(x));
}

template <typename F>
void AppendFloatText(F v, int max_decpt, std::string* out) {
  if (std::isnan(v)) {
    out->append("nan");
    return;
  }
  if (std::isinf(v)) {
    out->append(v < 0 ? "-inf" : "inf");
    return;
  }
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  AppendShortest(std::string_view(buf, static_cast<size_t>(res.ptr - buf)), max_decpt, out);
}

}  // namespace

void AppendPythonFloat(double v, std::string* out) { AppendFloatText(v, 16, out); }

void AppendNumpyFloat32(float v, std::string* out) { AppendFloatText(v, 6, out); }

std::string PythonFloatRepr(double v) {
  std::string out;
  AppendPythonFloat(v, &out);
  return out;
}

size_t Utf8SequenceLength(std::string_view s) {
  if (s.empty()) return 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned char c = p[0];
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // beyond U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < n || p[1] < lo || p[1] > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if ((p[k] & 0xC0) != 0x80) return 0;
  }
  return n;
}

std::string ToJson(const Value& value, int indent) {
  std::string out;
  json::Append(value, &out, indent);
  return out;
}

}  // namespace pyfunc
