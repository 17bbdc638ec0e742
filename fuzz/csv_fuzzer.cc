// libFuzzer harness for CSV input: ReadCsv (inferred and typed columns), the streaming
// reader in small batches, and writing back what was read. The streaming reader on
// threads must give the same batches and the same error as on the calling thread.
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
  const auto stream = [&](int threads) {
    pyfunc::CsvReadOptions streaming;
    streaming.batch_rows = 2;
    streaming.threads = threads;
    streaming.delimiter = size > 0 && data[0] == ';' ? ';' : ',';
    std::string seen;
    auto reader = pyfunc::CsvReader::FromString(std::string(text), streaming);
    if (!reader.ok()) return reader.status().ToString();
    for (int i = 0; i < 1000; ++i) {
      pyfunc::Result<std::optional<pyfunc::Table>> batch = (*reader)->Next();
      if (!batch.ok()) return seen + batch.status().ToString();
      if (!*batch) break;
      seen += (*batch)->ToString();
    }
    return seen + std::to_string((*reader)->lines_read());
  };
  if (stream(1) != stream(3)) __builtin_trap();
  return 0;
}
