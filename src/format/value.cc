#include "pyfunc/value.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "pyfunc/status.h"

namespace pyfunc {

namespace {

[[noreturn]] void WrongKind(const char* wanted, const Value& v) {
  std::fprintf(stderr, "pyfunc::Value: %s requested from a %s\n", wanted, v.TypeName());
  std::abort();
}

nlohmann::ordered_json ToJsonTree(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNull:
      return nullptr;
    case Value::Kind::kBool:
      return v.as_bool();
    case Value::Kind::kInt:
      return v.as_int();
    case Value::Kind::kFloat:
      if (!std::isfinite(v.as_float())) return nullptr;
      return v.as_float();
    case Value::Kind::kString:
    case Value::Kind::kTimestamp:
      return v.as_string();
    case Value::Kind::kList: {
      auto out = nlohmann::ordered_json::array();
      for (const Value& item : v.as_list()) out.push_back(ToJsonTree(item));
      return out;
    }
    case Value::Kind::kMap: {
      auto out = nlohmann::ordered_json::object();
      for (const auto& [key, item] : v.as_map()) out[key] = ToJsonTree(item);
      return out;
    }
  }
  return nullptr;
}

}  // namespace

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kInvalidArgument:
      return "InvalidArgument";
    case StatusCode::kNotFound:
      return "NotFound";
    case StatusCode::kAlreadyExists:
      return "AlreadyExists";
    case StatusCode::kIOError:
      return "IOError";
    case StatusCode::kInternal:
      return "Internal";
    case StatusCode::kModelError:
      return "ModelError";
    case StatusCode::kDeadlineExceeded:
      return "DeadlineExceeded";
    case StatusCode::kUnavailable:
      return "Unavailable";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_);
}

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
    case Kind::kNull:
      return false;
    case Kind::kBool:
    case Kind::kInt:
      return int_ != 0;
    case Kind::kFloat:
      return float_ != 0;
    case Kind::kString:
    case Kind::kTimestamp:
      return !str_.empty();
    case Kind::kList:
      return !list_.empty();
    case Kind::kMap:
      return !map_.empty();
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

Value* Value::Find(std::string_view key) {
  return const_cast<Value*>(static_cast<const Value*>(this)->Find(key));
}

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
    case Kind::kNull:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kTimestamp:
      return "datetime";
    case Kind::kList:
      return "list";
    case Kind::kMap:
      return "dict";
  }
  return "?";
}

bool Value::operator==(const Value& other) const {
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case Kind::kNull:
      return true;
    case Kind::kBool:
    case Kind::kInt:
      return int_ == other.int_;
    case Kind::kFloat:
      return float_ == other.float_ || (std::isnan(float_) && std::isnan(other.float_));
    case Kind::kString:
    case Kind::kTimestamp:
      return str_ == other.str_;
    case Kind::kList:
      return list_ == other.list_;
    case Kind::kMap:
      return map_ == other.map_;
  }
  return false;
}

void AppendPythonFloat(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("nan");
    return;
  }
  if (std::isinf(v)) {
    out->append(v < 0 ? "-inf" : "inf");
    return;
  }
  // Shortest round-trip digits in scientific form: "-d.ddde+XX".
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
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
  if (decpt > -4 && decpt <= 16) {
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

std::string PythonFloatRepr(double v) {
  std::string out;
  AppendPythonFloat(v, &out);
  return out;
}

std::string ToJson(const Value& value, int indent) { return ToJsonTree(value).dump(indent); }

}  // namespace pyfunc
