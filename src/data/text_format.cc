#include "data/text_format.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>

namespace pyfunc {

namespace {

// Howard Hinnant's days_from_civil / civil_from_days.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

void AppendPadded(int64_t v, int width, std::string* out) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v < 0 ? -v : v);
  int len = static_cast<int>(res.ptr - buf);
  if (v < 0) out->push_back('-');
  for (int i = len; i < width; ++i) out->push_back('0');
  out->append(buf, static_cast<size_t>(len));
}

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

void AppendIsoTimestamp(int64_t ns, char sep, std::string* out) {
  constexpr int64_t kNsPerDay = 86400LL * 1000000000LL;
  int64_t days = ns / kNsPerDay;
  int64_t rem = ns % kNsPerDay;
  if (rem < 0) {
    rem += kNsPerDay;
    --days;
  }
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  AppendPadded(y, 4, out);
  out->push_back('-');
  AppendPadded(m, 2, out);
  out->push_back('-');
  AppendPadded(d, 2, out);
  out->push_back(sep);
  int64_t secs = rem / 1000000000LL;
  int64_t frac = rem % 1000000000LL;
  AppendPadded(secs / 3600, 2, out);
  out->push_back(':');
  AppendPadded(secs / 60 % 60, 2, out);
  out->push_back(':');
  AppendPadded(secs % 60, 2, out);
  if (frac != 0) {
    out->push_back('.');
    if (frac % 1000 == 0)
      AppendPadded(frac / 1000, 6, out);
    else
      AppendPadded(frac, 9, out);
  }
}

bool ParseIsoTimestamp(std::string_view s, int64_t* ns) {
  int year, month, day;
  if (!Digits(s, 0, 4, &year) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, &month) || s[7] != '-' ||
      !Digits(s, 8, 2, &day)) {
    return false;
  }
  static const int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 || day > kDays[month - 1]) return false;
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month == 2 && day == 29 && !leap) return false;
  int hour = 0, minute = 0, second = 0;
  int64_t frac = 0;
  int64_t tz_offset_s = 0;
  size_t p = 10;
  if (p < s.size() && (s[p] == 'T' || s[p] == ' ')) {
    ++p;
    if (!Digits(s, p, 2, &hour) || p + 2 >= s.size() || s[p + 2] != ':' || !Digits(s, p + 3, 2, &minute)) {
      return false;
    }
    p += 5;
    if (p < s.size() && s[p] == ':') {
      if (!Digits(s, p + 1, 2, &second)) return false;
      p += 3;
      if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
        ++p;
        int n = 0;
        while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
          if (n < 9) {
            frac = frac * 10 + (s[p] - '0');
            ++n;
          }
          ++p;
        }
        if (n == 0) return false;
        for (; n < 9; ++n) frac *= 10;
      }
    }
    if (hour > 23 || minute > 59 || second > 59) return false;
    if (p < s.size()) {
      if (s[p] == 'Z' && p + 1 == s.size()) {
        p = s.size();
      } else if (s[p] == '+' || s[p] == '-') {
        int sign = s[p] == '-' ? -1 : 1;
        int th, tm = 0;
        if (!Digits(s, p + 1, 2, &th)) return false;
        size_t q = p + 3;
        if (q < s.size() && s[q] == ':') ++q;
        if (q < s.size() && !Digits(s, q, 2, &tm)) return false;
        if (q < s.size()) q += 2;
        if (q != s.size() || th > 23 || tm > 59) return false;
        tz_offset_s = sign * (th * 3600 + tm * 60);
        p = s.size();
      }
    }
  }
  if (p != s.size()) return false;
  int64_t days = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - tz_offset_s;
  // Range of int64 nanoseconds: about years 1677..2262.
  if (secs > 9223372035LL || secs < -9223372035LL) return false;
  *ns = secs * 1000000000LL + frac;
  return true;
}

void AppendCQuoted(std::string_view s, std::string* out) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '\n': out->append("\\n"); break;
      case '\t': out->append("\\t"); break;
      case '\r': out->append("\\r"); break;
      case '\\': out->append("\\\\"); break;
      case '"': out->append("\\\""); break;
      case '\0': out->append("\\0"); break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static const char kHex[] = "0123456789abcdef";
          out->append("\\x");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

namespace {
std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (x != b[i]) return false;
  }
  return true;
}
}  // namespace

void AppendInt64(int64_t v, std::string* out) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, static_cast<size_t>(res.ptr - buf));
}

void AppendUInt64(uint64_t v, std::string* out) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, static_cast<size_t>(res.ptr - buf));
}

void AppendBase64(std::string_view bytes, bool mime_lines, std::string* out) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t line = 0;
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t a = p[i], b = i + 1 < n ? p[i + 1] : 0, c = i + 2 < n ? p[i + 2] : 0;
    const uint32_t triple = (a << 16) | (b << 8) | c;
    out->push_back(kAlphabet[(triple >> 18) & 63]);
    out->push_back(kAlphabet[(triple >> 12) & 63]);
    out->push_back(i + 1 < n ? kAlphabet[(triple >> 6) & 63] : '=');
    out->push_back(i + 2 < n ? kAlphabet[triple & 63] : '=');
    line += 4;
    if (mime_lines && line == 76) {
      out->push_back('\n');
      line = 0;
    }
  }
  if (mime_lines && line > 0) out->push_back('\n');
}

bool ParseInt64(std::string_view text, int64_t* out) {
  std::string_view s = text;
  if (s.empty()) return false;
  if (s.front() == ' ' || s.back() == ' ' || s.front() == '\t' || s.back() == '\t') s = TrimSpaces(s);
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty() || s[0] == '+' || (s[0] == '-' && s.size() == 1)) return false;
  auto res = std::from_chars(s.data(), s.data() + s.size(), *out);
  return res.ec == std::errc() && res.ptr == s.data() + s.size();
}

namespace {

// A number's text without surrounding spaces and its sign (`*negative`); empty when
// nothing is left or a second sign follows.
std::string_view UnsignedPart(std::string_view s, bool* negative) {
  if (s.empty()) return s;
  if (s.front() == ' ' || s.back() == ' ' || s.front() == '\t' || s.back() == '\t') s = TrimSpaces(s);
  *negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    *negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) return std::string_view();
  return s;
}

}  // namespace

bool ParseFloat64(std::string_view text, double* out) {
  bool negative = false;
  const std::string_view s = UnsignedPart(text, &negative);
  if (s.empty()) return false;
  char c0 = s[0];
  if (c0 == 'i' || c0 == 'I') {
    if (EqualsIgnoreCase(s, "inf") || EqualsIgnoreCase(s, "infinity")) {
      *out = negative ? -HUGE_VAL : HUGE_VAL;
      return true;
    }
    return false;
  }
  if (!((c0 >= '0' && c0 <= '9') || c0 == '.')) return false;  // no "nan" here: that is a null token
  double v;
  auto res = std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::general);
  if (res.ptr != s.data() + s.size()) return false;
  if (res.ec == std::errc::result_out_of_range) {
    // Underflow to 0 / overflow to inf, as strtod would.
    bool tiny = s.find_first_of("eE") != std::string_view::npos && s[s.find_first_of("eE") + 1] == '-';
    v = tiny ? 0.0 : HUGE_VAL;
  } else if (res.ec != std::errc()) {
    return false;
  }
  *out = negative ? -v : v;
  return true;
}

namespace {

// 1e0 .. 1e308, each the double nearest the power (as the literal "1e<k>" is).
const double* PowersOfTen() {
  static const std::array<double, 309> table = [] {
    std::array<double, 309> t{};
    for (int k = 0; k <= 308; ++k) {
      const std::string text = "1e" + std::to_string(k);
      std::from_chars(text.data(), text.data() + text.size(), t[static_cast<size_t>(k)]);
    }
    return t;
  }();
  return table.data();
}

}  // namespace

namespace {

// Whether p[0, 8) are all digits, and if so their value (the SWAR method: subtract '0'
// from each byte, then combine pairs, quads and the two halves by multiplication).
inline bool EightDigits(const char* p, uint32_t* value) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  if (((v & 0xF0F0F0F0F0F0F0F0ULL) | (((v + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) >> 4)) !=
      0x3333333333333333ULL) {
    return false;
  }
  v -= 0x3030303030303030ULL;
  v = v * 10 + (v >> 8);  // byte k: digit k * 10 + digit k+1 (little-endian pairs)
  const uint64_t mask = 0x000000FF000000FFULL;
  v = ((v & mask) * (100 + (1000000ULL << 32)) + ((v >> 16) & mask) * (1 + (10000ULL << 32))) >> 32;
  *value = static_cast<uint32_t>(v);
  return true;
}

}  // namespace

bool ParseFloat64BeforePandas31(std::string_view text, double* out) {
  bool negative = false;
  const std::string_view s = UnsignedPart(text, &negative);
  if (s.empty()) return false;
  if (s[0] == 'i' || s[0] == 'I') return ParseFloat64(text, out);  // inf, infinity
  constexpr int kMaxDigits = 17;
  const auto digit = [](char c) { return static_cast<unsigned char>(c - '0') < 10; };
  // pandas sums `number * 10. + digit` in doubles over the first 17 digits (leading zeros
  // included); integer digits past them raise the exponent, decimal ones are dropped.
  // The first 15 digits stay below 10^15 < 2^53, where each double step is exact, so
  // they are summed as an integer; the 16th and 17th in doubles, as pandas does.
  size_t i = 0;
  int digits = 0;
  int64_t exponent = 0;
  uint64_t exact = 0;
  double number = 0;
  bool dot = false;
  for (; i < s.size(); ++i) {
    // Eight digits at once where they are all integer digits, or are the 10th to 17th.
    uint32_t eight;
    while (i + 8 <= s.size() && (digits <= 7 || digits == 9) && EightDigits(s.data() + i, &eight)) {
      if (digits <= 7) {
        exact = exact * 100000000 + eight;
      } else {
        exact = exact * 1000000 + eight / 100;
        number = static_cast<double>(exact);
        number = number * 10. + static_cast<int>(eight / 10 % 10);
        number = number * 10. + static_cast<int>(eight % 10);
      }
      digits += 8;
      if (dot) exponent -= 8;
      i += 8;
    }
    if (i == s.size()) break;
    const char c = s[i];
    if (c == '.') {
      if (dot) break;
      dot = true;
      continue;
    }
    if (!digit(c)) break;
    if (digits < kMaxDigits) {
      if (digits < 15) {
        exact = exact * 10 + static_cast<uint64_t>(c - '0');
      } else {
        if (digits == 15) number = static_cast<double>(exact);
        number = number * 10. + (c - '0');
      }
      ++digits;
      exponent -= dot;
    } else {
      exponent += !dot;
    }
  }
  if (digits <= 15) number = static_cast<double>(exact);
  if (digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool minus = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) minus = s[i++] == '-';
    if (i == s.size() || !digit(s[i])) return false;
    int64_t n = 0;
    for (; i < s.size() && digit(s[i]); ++i) n = std::min<int64_t>(n * 10 + (s[i] - '0'), 1 << 20);
    exponent += minus ? -n : n;
  }
  if (i != s.size()) return false;
  const double* e = PowersOfTen();
  if (exponent > 308) {
    number = number == 0 ? 0 : HUGE_VAL;
  } else if (exponent > 0) {
    number *= e[exponent];
  } else if (exponent < -308) {  // subnormal, in two steps
    if (exponent < -616) {
      number = 0;
    } else {
      number /= e[-308 - exponent];
      number /= e[308];
    }
  } else {
    number /= e[-exponent];
  }
  *out = negative ? -number : number;
  return true;
}

void AppendTensorText(const Column& c, int64_t r, std::string* out) {
  int64_t element = r * c.cell_size();
  AppendNestedLists(c.cell_shape(), out, [&](std::string* o) {
    const int64_t i = element++;
    if (IsFloating(c.type()))
      AppendPythonFloat(c.NumberAt(i), o);
    else if (c.type() == DataType::kUInt64)
      AppendUInt64(c.data_as<uint64_t>()[i], o);
    else if (c.type() == DataType::kInt64 || c.type() == DataType::kTimestamp)
      AppendInt64(c.int64_data()[i], o);
    else
      AppendInt64(static_cast<int64_t>(c.NumberAt(i)), o);
  });
}

}  // namespace pyfunc
