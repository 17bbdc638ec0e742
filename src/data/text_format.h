// Text forms of values shared by the codecs (src/data, the server's OIP codec) and
// Table::ToString.
#ifndef PYFUNC_SRC_DATA_TEXT_FORMAT_H_
#define PYFUNC_SRC_DATA_TEXT_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pyfunc/table.h"
#include "pyfunc/value.h"  // AppendPythonFloat

namespace pyfunc {

// Appends ns-since-epoch (UTC) as "YYYY-MM-DD<sep>HH:MM:SS", followed by ".ffffff"
// when there are sub-second microseconds and ".fffffffff" when there are nanoseconds
// (pandas Timestamp.isoformat()).
void AppendIsoTimestamp(int64_t ns, char sep, std::string* out);

// Parses "YYYY-MM-DD", optionally followed by 'T' or ' ' and "HH:MM[:SS[.fraction]]",
// optionally followed by "Z" or "+HH:MM"/"-HH:MM"/"+HHMM" (converted to UTC).
// Returns false on anything else or out-of-range fields.
bool ParseIsoTimestamp(std::string_view text, int64_t* ns);

// Appends `v` in decimal (as Python's str(int)).
void AppendInt64(int64_t v, std::string* out);
void AppendUInt64(uint64_t v, std::string* out);

// Appends `bytes` in base64 (RFC 4648 alphabet, '=' padding). With `mime_lines`, as
// Python's base64.encodebytes writes it (MLflow's JSON encoding of bytes): a newline
// after every 76 characters and at the end of non-empty output.
void AppendBase64(std::string_view bytes, bool mime_lines, std::string* out);

// Appends `s` in double quotes with C escapes (\n, \t, \r, \\, \", \0, \xHH for other
// control bytes); other bytes (UTF-8 included) verbatim.
void AppendCQuoted(std::string_view s, std::string* out);

// Parses a whole string as an int64 / double the way pandas' C parser does: optional
// surrounding spaces, optional sign; doubles also accept "inf"/"infinity" in any case.
// Returns false when the text is not such a number or an int overflows.
bool ParseInt64(std::string_view text, int64_t* out);
bool ParseFloat64(std::string_view text, double* out);
// As ParseFloat64, with the value rounded as pandas' C parser rounds it before pandas
// 3.1 (precise_xstrtod): the first 17 digits, leading zeros included, accumulated in a
// double (later digits dropped), then one multiplication or division by the double
// nearest a power of ten. For 17-digit values this differs from the correctly rounded
// double in the last bit about half the time.
bool ParseFloat64BeforePandas31(std::string_view text, double* out);

// Writes a tensor of `shape` as nested lists, "[[a, b], [c, d]]" (as numpy's tolist()
// and json.dumps write it), calling `leaf(out)` once per value, in C order.
template <typename Leaf>
void AppendNestedLists(const std::vector<int64_t>& shape, std::string* out, Leaf&& leaf) {
  auto emit = [&](auto&& self, size_t dim) -> void {
    out->push_back('[');
    for (int64_t k = 0; k < shape[dim]; ++k) {
      if (k) out->append(", ");
      if (dim + 1 < shape.size())
        self(self, dim + 1);
      else
        leaf(out);
    }
    out->push_back(']');
  };
  if (!shape.empty()) emit(emit, 0);
}

// Row r's tensor cell of `c` as nested lists of Python numbers ("[[1, 2], [3.5, 4.0]]"):
// floats in shortest round-trip form, integers in decimal.
void AppendTensorText(const Column& c, int64_t r, std::string* out);

}  // namespace pyfunc

#endif  // PYFUNC_SRC_DATA_TEXT_FORMAT_H_
