// libFuzzer harness for CSV input: ReadCsv (inferred and typed columns), the streaming
// reader in small batches, and writing back what was read.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "pyfunc/csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  pyfunc::Result<pyfunc::Table> t = pyfunc::ReadCsv(text);
  if (t.ok()) (void)pyfunc::WriteCsvString(*t);
  pyfunc::CsvReadOptions typed;
  typed.column_types = {{"a", pyfunc::DataType::kInt64},
                        {"b", pyfunc::DataType::kTimestamp},
                        {"c", pyfunc::DataType::kBool},
                        {"a.1", pyfunc::DataType::kFloat64}};
  (void)pyfunc::ReadCsv(text, typed);
  pyfunc::CsvReadOptions streaming;
  streaming.batch_rows = 2;
  streaming.delimiter = size > 0 && data[0] == ';' ? ';' : ',';
  auto reader = pyfunc::CsvReader::FromString(std::string(text), streaming);
  if (reader.ok()) {
    for (int i = 0; i < 1000; ++i) {
      pyfunc::Result<std::optional<pyfunc::Table>> batch = (*reader)->Next();
      if (!batch.ok() || !*batch) break;
    }
  }
  return 0;
}
