// CSV reading and writing for prediction inputs and outputs.
//
// MLflow's scoring server reads `text/csv` bodies with `pandas.read_csv`, so the reader
// infers what pandas would infer and the writer writes what `DataFrame.to_csv(index=False)`
// writes. Where the Table model differs from pandas, the difference is stated below.
//
// Syntax (RFC 4180, as pandas' C parser reads it):
//   * the first non-blank row is the header; a UTF-8 byte order mark before it is skipped;
//   * fields are separated by `delimiter`, rows by LF, CRLF or a lone CR;
//   * a field starting with `"` is quoted: it may hold delimiters, newlines and `""`
//     (one quote); characters after its closing quote are appended (pandas does the
//     same with `"ab"c`); a quote inside an unquoted field is an ordinary character;
//   * blank lines (empty or only spaces/tabs) are skipped;
//   * a row with fewer fields than the header is padded with nulls (as pandas does);
//     a row with more fields is an error (pandas would sometimes turn the first column
//     into an index instead);
//   * empty header names become "Unnamed: <i>"; duplicates are renamed as pandas' C
//     parser renames them: named columns first, then unnamed ones, a repeat of "a"
//     becomes "a.<k>" for the smallest k from a's count on that no current name of the
//     header takes ("a,a,a" → a, a.1, a.2; "a,a,a.1" → a, a.2, a.1); linear time;
//   * string fields must be valid UTF-8 and may contain NUL bytes.
//
// Types, per column, in this order of precedence:
//   1. `column_types` (explicit overrides by name);
//   2. `schema` (the model signature's input columns, by name; extra schema names are
//      ignored, CSV columns not in it are inferred);
//   3. inference, as pandas.read_csv: a column whose non-null fields are all
//      True/False/true/false/TRUE/FALSE is bool; else all integers (optional sign and
//      surrounding spaces) → int64; else all numbers (decimals, exponents, inf/Infinity
//      in any case) → float64; else string. An integer beyond the int64 range makes the
//      column float64 (pandas would use uint64 or object). A column with no values at
//      all is float64 (pandas: all-NaN float64), or string when the input has no rows
//      (pandas: object).
// Nulls: an empty field and pandas' default NA tokens (`NA`, `N/A`, `NaN`, `nan`,
// `-NaN`, `NULL`, `null`, `None`, `<NA>`, `#N/A`, `n/a`, `#NA`, `-nan`, `1.#IND`,
// `-1.#IND`, `1.#QNAN`, `-1.#QNAN`, `#N/A N/A`), quoted or not, are nulls in every
// column type. pandas turns them into NaN; for an int64 column with nulls pandas would
// give float64, for a bool column with nulls an object column — the Table keeps the
// type and marks the nulls, and the Python worker converts as pandas would.
// Explicitly typed columns parse: int64 as above; float64 any number; bool the six
// tokens above; timestamp ISO 8601 ("2024-01-02", "2024-01-02 03:04:05.123",
// "...T...Z", "...+02:00", converted to UTC); string anything.
//
// Streaming: a CsvReader yields Tables of at most `batch_rows` rows and holds only one
// batch in memory (`threads` batches when it converts on threads). Inferred types are decided by the first batch and
// then kept, so every batch has the same schema, with two exceptions a user would expect:
//   * an inferred int64 column meeting a non-integer number in a later batch widens to
//     float64 from that batch on (earlier batches stay int64; Column::CastTo converts);
//   * a column that had only nulls so far is inferred again from the next batch that
//     has a value in it.
// Any other later value that does not fit (text in a numeric column, a non-bool in a
// bool column) is an InvalidArgument naming line, column and the type, with the hint
// to pass a type for that column. ReadCsv (whole input) infers over all rows.
//
// Errors are InvalidArgument (IOError for reads that fail, NotFound for a missing
// file) with messages "<source>:<line>:<field>: <detail>", e.g.
// "input.csv:17:3: unterminated quoted field" (line where the field starts; fields
// counted from 1) or "input.csv:4:5: row has 5 fields, header has 4".
//
// Thread safety: a CsvReader or CsvWriter is used by one thread at a time.
#ifndef PYFUNC_CSV_H_
#define PYFUNC_CSV_H_

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pyfunc/status.h"
#include "pyfunc/table.h"

namespace pyfunc {

// How the reader turns decimal text into doubles. MLflow reads CSV with
// pandas.read_csv, whose C parser rounds correctly from pandas 3.1 on; before that it
// keeps the first 17 digits (leading zeros included) in a double and scales it by a
// double power of ten, which puts about half of all 17-digit values one bit away from
// the correctly rounded double. A caller that knows the pandas of the model's
// environment reads numbers as that pandas does, so predictions match MLflow's bit for
// bit.
enum class FloatRounding { kCorrect, kBeforePandas31 };

// The rounding of pandas `version` ("2.3.3", "3.1.0rc1"); kCorrect when the version
// is empty or unreadable.
FloatRounding FloatRoundingOfPandas(std::string_view version);

struct CsvReadOptions {
  // Field separator (a single byte, not `"`, CR or LF).
  char delimiter = ',';
  // Largest number of rows per Table from CsvReader::Next. Larger batches amortize
  // per-batch work; smaller ones bound memory. Ignored by ReadCsv, which reads all rows
  // into one Table.
  int64_t batch_rows = 64 * 1024;
  // Types from the model signature (name → type); see the precedence above.
  Schema schema;
  // Explicit per-column types; they win over `schema`.
  Schema column_types;
  // Name used in error messages; defaults to the path, or "<input>".
  std::string source_name;
  // Chunks of `batch_rows` rows tokenized and converted at once, each on a thread of
  // the reader's own while the caller uses earlier batches; 1 converts on the calling
  // thread. The batches are the same for every value. Ignored by ReadCsv.
  int threads = 1;
  FloatRounding float_rounding = FloatRounding::kCorrect;
  // When set, called once, on the thread calling Next, before the first value is
  // converted; its answer replaces `float_rounding`. (The batch scorer waits there for
  // its workers to say which pandas they import, while the input is already read.)
  std::function<FloatRounding()> float_rounding_source;
};

class CsvReader {
 public:
  // Reads the file at `path`. NotFound / IOError if it cannot be opened.
  static Result<std::unique_ptr<CsvReader>> OpenFile(const std::string& path, CsvReadOptions options = {});
  // Reads from a file descriptor, which the reader does not close.
  static Result<std::unique_ptr<CsvReader>> FromFd(int fd, CsvReadOptions options = {});
  // Reads from a stream, which must outlive the reader.
  static Result<std::unique_ptr<CsvReader>> FromStream(std::istream* in, CsvReadOptions options = {});
  // Reads from a string (copied).
  static Result<std::unique_ptr<CsvReader>> FromString(std::string data, CsvReadOptions options = {});

  virtual ~CsvReader();

  // Reads the header (if not yet read) and returns the column names.
  // InvalidArgument "<source>: no columns to parse" for an empty input.
  virtual Result<std::vector<std::string>> ColumnNames() = 0;
  // The next batch of 1..batch_rows rows, or std::nullopt at the end of the input.
  // A header-only input yields one Table with zero rows first (so the schema is seen).
  // After an error the reader is unusable and every call returns the same error.
  virtual Result<std::optional<Table>> Next() = 0;
  // Physical lines consumed so far.
  virtual int64_t lines_read() const = 0;
};

// Reads the whole input into one Table (inference over all rows, like pandas).
Result<Table> ReadCsv(std::string_view data, CsvReadOptions options = {});
Result<Table> ReadCsvFile(const std::string& path, CsvReadOptions options = {});

struct CsvWriteOptions {
  char delimiter = ',';
  // Write the column names as the first row.
  bool header = true;
  // Row terminator (pandas: os.linesep, "\n" on POSIX).
  std::string line_terminator = "\n";
};

// Writes as pandas' `to_csv(index=False)`: fields quoted only when they contain the
// delimiter, a quote, CR or LF (quotes doubled), or when a one-column row's only field
// is empty; floats as Python's repr ("1.0", "1e+16", "inf"); NaN and nulls as empty
// fields; bools True/False; timestamps "YYYY-MM-DD HH:MM:SS[.ffffff]" per value
// (pandas picks one format per column; this writes each value's shortest).
class CsvWriter {
 public:
  // Writes to a stream, which must outlive the writer.
  explicit CsvWriter(std::ostream* out, CsvWriteOptions options = {});
  // Writes to `path` through a temporary sibling renamed into place by Close(); if the
  // writer is destroyed without a successful Close(), the temporary is removed and
  // `path` is untouched.
  static Result<std::unique_ptr<CsvWriter>> OpenFile(const std::string& path, CsvWriteOptions options = {});
  ~CsvWriter();
  CsvWriter(const CsvWriter&) = delete;
  CsvWriter& operator=(const CsvWriter&) = delete;

  // Appends the rows of `table`. The first call writes the header; later tables must
  // have the same column names (InvalidArgument otherwise). IOError on write failure.
  Status Write(const Table& table);
  // Flushes; for OpenFile, also renames the temporary into place.
  Status Close();

 private:
  CsvWriter() = default;
  std::ostream* out_ = nullptr;
  std::unique_ptr<std::ostream> owned_;
  std::string path_, temp_path_;
  CsvWriteOptions options_;
  std::vector<std::string> names_;
  bool header_done_ = false;
  bool closed_ = false;
  std::string buf_;
};

// The whole table as CSV text.
std::string WriteCsvString(const Table& table, const CsvWriteOptions& options = {});

}  // namespace pyfunc

#endif  // PYFUNC_CSV_H_
