#include "pyfunc/csv.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <istream>
#include <limits>
#include <ostream>
#include <random>
#include <unordered_map>

#include <simdjson.h>

#include "base/posix_error.h"
#include "data/text_format.h"

namespace pyfunc {

namespace {

constexpr size_t kChunkBytes = 1 << 20;

// --- Byte sources --------------------------------------------------------------------

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to n bytes; 0 at the end of the input.
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
};

class FdSource : public ByteSource {
 public:
  FdSource(int fd, bool owned, std::string name) : fd_(fd), owned_(owned), name_(std::move(name)) {}
  ~FdSource() override {
    if (owned_) ::close(fd_);
  }
  Result<size_t> Read(char* buf, size_t n) override {
    for (;;) {
      ssize_t got = ::read(fd_, buf, n);
      if (got >= 0) return static_cast<size_t>(got);
      if (errno == EINTR) continue;
      return base::PosixError(name_ + ": read failed");
    }
  }

 private:
  int fd_;
  bool owned_;
  std::string name_;
};

class StreamSource : public ByteSource {
 public:
  StreamSource(std::istream* in, std::string name) : in_(in), name_(std::move(name)) {}
  Result<size_t> Read(char* buf, size_t n) override {
    in_->read(buf, static_cast<std::streamsize>(n));
    std::streamsize got = in_->gcount();
    if (got == 0 && in_->bad()) return Status::IOError(name_ + ": read failed");
    return static_cast<size_t>(got);
  }

 private:
  std::istream* in_;
  std::string name_;
};

class StringSource : public ByteSource {
 public:
  explicit StringSource(std::string data) : data_(std::move(data)) {}
  Result<size_t> Read(char* buf, size_t n) override {
    size_t k = std::min(n, data_.size() - pos_);
    std::memcpy(buf, data_.data() + pos_, k);
    pos_ += k;
    return k;
  }

 private:
  std::string data_;
  size_t pos_ = 0;
};

// --- Tokens ------------------------------------------------------------------------

bool IsNullToken(std::string_view s) {
  if (s.empty()) return true;
  if (s.size() > 8) return false;
  switch (s[0]) {
    case 'N': return s == "NA" || s == "NaN" || s == "NULL" || s == "None" || s == "N/A";
    case 'n': return s == "nan" || s == "null" || s == "n/a";
    case '-': return s == "-NaN" || s == "-nan" || s == "-1.#IND" || s == "-1.#QNAN";
    case '<': return s == "<NA>";
    case '#': return s == "#N/A" || s == "#NA" || s == "#N/A N/A";
    case '1': return s == "1.#IND" || s == "1.#QNAN";
    default: return false;
  }
}

// 1 = true, 0 = false, -1 = not a bool token.
int BoolToken(std::string_view s) {
  if (s == "True" || s == "true" || s == "TRUE") return 1;
  if (s == "False" || s == "false" || s == "FALSE") return 0;
  return -1;
}

std::string Excerpt(std::string_view s) {
  std::string out;
  AppendCQuoted(s.size() > 40 ? s.substr(0, 40) : s, &out);
  if (s.size() > 40) out.insert(out.size() - 1, "...");
  return out;
}

// Header names as pandas' C parser (pandas/_libs/parsers.pyx, TextReader._get_header)
// makes them unique: an empty name is "Unnamed: <i>"; named columns are visited first,
// then the unnamed ones; a name seen before becomes "<name>.<k>" for the first k from
// the name's count upwards such that "<name>.<k>" is not among the header's current
// names (so "a,a,a.1" gives "a, a.2, a.1"). pandas looks names up in a list, which is
// quadratic; hash tables make this linear: every step of the inner loop either ends it
// or moves the name's counter past a name present in the header.
std::vector<std::string> DedupHeader(std::vector<std::string> header) {
  const size_t n = header.size();
  std::vector<size_t> order;
  order.reserve(n);
  std::vector<size_t> unnamed;
  for (size_t i = 0; i < n; ++i) {
    if (header[i].empty()) {
      header[i] = "Unnamed: " + std::to_string(i);
      unnamed.push_back(i);
    } else {
      order.push_back(i);
    }
  }
  order.insert(order.end(), unnamed.begin(), unnamed.end());
  std::unordered_map<std::string, int64_t> present;  // multiset of the current names
  for (const std::string& name : header) ++present[name];
  std::unordered_map<std::string, int64_t> counts;
  const auto count_of = [&](const std::string& name) {
    auto it = counts.find(name);
    return it == counts.end() ? int64_t{0} : it->second;
  };
  for (size_t i : order) {
    const std::string old_col = header[i];
    std::string col = old_col;
    int64_t cur_count = count_of(col);
    if (cur_count > 0) {
      while (cur_count > 0) {
        counts[old_col] = cur_count + 1;
        col = old_col + "." + std::to_string(cur_count);
        auto it = present.find(col);
        if (it != present.end() && it->second > 0) {
          ++cur_count;
        } else {
          cur_count = count_of(col);
        }
      }
      if (--present[old_col] == 0) present.erase(old_col);
      ++present[col];
      header[i] = col;
    }
    counts[col] = cur_count + 1;
  }
  return header;
}

// --- The reader --------------------------------------------------------------------

class CsvReaderImpl : public CsvReader {
 public:
  CsvReaderImpl(std::unique_ptr<ByteSource> source, CsvReadOptions options, std::string name)
      : source_(std::move(source)), options_(std::move(options)), name_(std::move(name)) {
    buf_.reset(new char[kChunkBytes]);
    std::memset(unquoted_special_, 0, sizeof(unquoted_special_));
    std::memset(quoted_special_, 0, sizeof(quoted_special_));
    unquoted_special_[static_cast<unsigned char>(options_.delimiter)] = 1;
    unquoted_special_[static_cast<unsigned char>('\n')] = 1;
    unquoted_special_[static_cast<unsigned char>('\r')] = 1;
    quoted_special_[static_cast<unsigned char>('"')] = 1;
    quoted_special_[static_cast<unsigned char>('\n')] = 1;
    quoted_special_[static_cast<unsigned char>('\r')] = 1;
  }

  Result<std::vector<std::string>> ColumnNames() override {
    PYFUNC_RETURN_IF_ERROR(EnsureHeader());
    return names_;
  }

  Result<std::optional<Table>> Next() override {
    PYFUNC_RETURN_IF_ERROR(EnsureHeader());
    if (done_) return std::optional<Table>();
    Status st = ReadBatch();
    if (!st.ok()) return Fail(st);
    if (batch_rows_ == 0) {
      done_ = true;
      if (yielded_) return std::optional<Table>();
      yielded_ = true;
      Schema schema;
      for (int j = 0; j < ncols_; ++j) {
        schema.emplace_back(names_[j], fixed_[j] ? types_[j] : DataType::kString);
      }
      return std::optional<Table>(Table::EmptyWithSchema(schema));
    }
    Result<Table> t = BuildBatch();
    if (!t.ok()) return Fail(t.status());
    yielded_ = true;
    return std::optional<Table>(std::move(t).value());
  }

  int64_t lines_read() const override { return line_ - 1; }

 private:
  Status Fail(Status st) {
    error_ = st;
    return st;
  }

  Status Error(int64_t line, int64_t field, const std::string& msg) const {
    return Status::InvalidArgument(name_ + ":" + std::to_string(line) + ":" + std::to_string(field) + ": " + msg);
  }

  // Byte access across chunk boundaries. Returns -1 at the end of the input.
  Status Refill() {
    if (eof_) return Status::OK();
    buf_pos_ = 0;
    buf_len_ = 0;
    PYFUNC_ASSIGN_OR_RETURN(size_t got, source_->Read(buf_.get(), kChunkBytes));
    if (got == 0) eof_ = true;
    buf_len_ = got;
    return Status::OK();
  }

  int NextByte() {
    if (buf_pos_ == buf_len_) {
      Status st = Refill();
      if (!st.ok()) {
        io_error_ = st;
        return -1;
      }
      if (buf_len_ == 0) return -1;
    }
    return static_cast<unsigned char>(buf_[buf_pos_++]);
  }

  int PeekByte() {
    int c = NextByte();
    if (c >= 0) --buf_pos_;
    return c;
  }

  // Appends the run of ordinary bytes at the read position to the arena.
  void ConsumeRun(const uint8_t* special) {
    size_t start = buf_pos_;
    const char* b = buf_.get();
    while (buf_pos_ < buf_len_ && !special[static_cast<unsigned char>(b[buf_pos_])]) ++buf_pos_;
    arena_.append(b + start, buf_pos_ - start);
  }

  void EndField() {
    field_end_.push_back(arena_.size());
    ++row_fields_;
  }

  // Tokenizes one row, appending its fields. Returns false when the input ended
  // before any byte of a new row.
  Result<bool> ReadRow() {
    for (;;) {
      row_line_ = line_;
      row_fields_ = 0;
      size_t row_first_field = field_end_.size();
      size_t row_arena_start = arena_.size();
      bool any_quoted = false;
      bool row_done = false;
      bool saw_any = false;
      while (!row_done) {
        // Start of a field.
        int c = NextByte();
        if (!io_error_.ok()) return io_error_;
        if (c < 0) {
          if (!saw_any) return false;
          EndField();
          break;
        }
        saw_any = true;
        if (c == '"') {
          any_quoted = true;
          int64_t field_line = line_;
          for (;;) {
            ConsumeRun(quoted_special_);
            c = NextByte();
            if (!io_error_.ok()) return io_error_;
            if (c < 0) {
              return Error(field_line, row_fields_ + 1, "unterminated quoted field");
            }
            if (c == '"') {
              if (PeekByte() == '"') {
                NextByte();
                arena_.push_back('"');
                continue;
              }
              break;
            }
            arena_.push_back(static_cast<char>(c));
            if (c == '\n') {
              ++line_;
            } else if (c == '\r') {
              if (PeekByte() == '\n') arena_.push_back(static_cast<char>(NextByte()));
              ++line_;
            }
          }
          c = NextByte();  // what follows the closing quote
        }
        // Unquoted content (or what follows a closing quote).
        for (;;) {
          if (c < 0) {
            if (!io_error_.ok()) return io_error_;
            EndField();
            row_done = true;
            break;
          }
          if (c == options_.delimiter) {
            EndField();
            break;
          }
          if (c == '\n' || c == '\r') {
            if (c == '\r' && PeekByte() == '\n') NextByte();
            ++line_;
            EndField();
            row_done = true;
            break;
          }
          arena_.push_back(static_cast<char>(c));
          ConsumeRun(unquoted_special_);
          c = NextByte();
        }
      }
      // Blank line: one unquoted field of only spaces and tabs.
      if (row_fields_ == 1 && !any_quoted && arena_.find_first_not_of(" \t", row_arena_start) == std::string::npos) {
        arena_.resize(row_arena_start);
        field_end_.resize(row_first_field);
        if (!saw_any) return false;
        continue;
      }
      return true;
    }
  }

  std::string_view Cell(size_t k) const {
    size_t start = k == 0 ? 0 : field_end_[k - 1];
    return std::string_view(arena_.data() + start, field_end_[k] - start);
  }
  std::string_view Cell(int64_t r, int j) const {
    return Cell(static_cast<size_t>(r) * static_cast<size_t>(ncols_) + static_cast<size_t>(j));
  }

  Status EnsureHeader() {
    if (!error_.ok()) return error_;
    if (header_read_) return Status::OK();
    header_read_ = true;
    // Skip a UTF-8 byte order mark. A pipe may deliver fewer than its 3 bytes in one
    // read, so read until there are 3 bytes or the input ends.
    Status st = Refill();
    if (!st.ok()) return Fail(st);
    while (buf_len_ < 3 && buf_len_ > 0) {
      Result<size_t> got = source_->Read(buf_.get() + buf_len_, kChunkBytes - buf_len_);
      if (!got.ok()) return Fail(got.status());
      if (*got == 0) break;  // the end; the next Refill sees it again
      buf_len_ += *got;
    }
    if (buf_len_ >= 3 && std::memcmp(buf_.get(), "\xEF\xBB\xBF", 3) == 0) buf_pos_ = 3;
    Result<bool> got = ReadRow();
    if (!got.ok()) return Fail(got.status());
    if (!*got) return Fail(Status::InvalidArgument(name_ + ": no columns to parse"));
    if (!simdjson::validate_utf8(arena_.data(), arena_.size())) {
      return Fail(Error(row_line_, 1, "header is not valid UTF-8"));
    }
    ncols_ = row_fields_;
    std::vector<std::string> header;
    header.reserve(static_cast<size_t>(ncols_));
    for (int j = 0; j < ncols_; ++j) header.emplace_back(Cell(static_cast<size_t>(j)));
    names_ = DedupHeader(std::move(header));
    arena_.clear();
    field_end_.clear();
    types_.assign(ncols_, DataType::kFloat64);
    fixed_.assign(ncols_, false);
    locked_.assign(ncols_, false);
    std::unordered_map<std::string_view, DataType> given;  // column_types win over schema
    for (const auto& [n, t] : options_.schema) given[n] = t;
    for (const auto& [n, t] : options_.column_types) given[n] = t;
    if (!given.empty()) {
      for (int j = 0; j < ncols_; ++j) {
        auto it = given.find(names_[j]);
        if (it == given.end()) continue;
        types_[j] = it->second;
        fixed_[j] = true;
      }
    }
    return Status::OK();
  }

  Status ReadBatch() {
    arena_.clear();
    field_end_.clear();
    row_lines_.clear();
    batch_rows_ = 0;
    int64_t limit = options_.batch_rows > 0 ? options_.batch_rows : std::numeric_limits<int64_t>::max();
    while (batch_rows_ < limit) {
      PYFUNC_ASSIGN_OR_RETURN(bool got, ReadRow());
      if (!got) break;
      if (row_fields_ > ncols_) {
        return Error(row_line_, ncols_ + 1,
                     "row has " + std::to_string(row_fields_) + " fields, header has " + std::to_string(ncols_));
      }
      for (int j = row_fields_; j < ncols_; ++j) field_end_.push_back(arena_.size());
      row_lines_.push_back(row_line_);
      ++batch_rows_;
    }
    if (!simdjson::validate_utf8(arena_.data(), arena_.size())) {
      for (int64_t r = 0; r < batch_rows_; ++r) {
        for (int j = 0; j < ncols_; ++j) {
          std::string_view cell = Cell(r, j);
          if (!simdjson::validate_utf8(cell.data(), cell.size())) {
            return Error(row_lines_[r], j + 1, "field is not valid UTF-8");
          }
        }
      }
    }
    return Status::OK();
  }

  // Appends one cell's value to `b`, of `type`; false when it does not parse as that.
  static bool AppendCell(std::string_view s, DataType type, ColumnBuilder* b) {
    if (IsNullToken(s)) {
      b->AppendNull();
      return true;
    }
    switch (type) {
      case DataType::kInt64: {
        int64_t v;
        if (!ParseInt64(s, &v)) return false;
        b->AppendInt64(v);
        return true;
      }
      case DataType::kFloat64: {
        double v;
        if (!ParseFloat64(s, &v)) return false;
        b->AppendFloat64(v);
        return true;
      }
      case DataType::kBool: {
        int v = BoolToken(s);
        if (v < 0) return false;
        b->AppendBool(v == 1);
        return true;
      }
      case DataType::kTimestamp: {
        int64_t ns;
        if (!ParseIsoTimestamp(s, &ns)) return false;
        b->AppendTimestamp(ns);
        return true;
      }
      case DataType::kString: b->AppendString(s); return true;
      default:  // the reader's types are the five wide ones (ReadOptions refuses others)
        return false;
    }
    return false;
  }

  // Converts column j of the batch to `type`. Returns -1, or the first row that does
  // not parse as `type`.
  int64_t Convert(int j, DataType type, Column* out) const {
    ColumnBuilder b(type);
    b.Reserve(batch_rows_);
    for (int64_t r = 0; r < batch_rows_; ++r) {
      if (!AppendCell(Cell(r, j), type, &b)) return r;
    }
    *out = b.Finish();
    return -1;
  }

  // Converts every column to its type in one pass over the arena in row order (a pass
  // per column would stride through the whole batch once per column, a cache miss per
  // cell). False when a cell does not parse: the caller then goes column by column.
  bool ConvertAll(std::vector<Column>* out) const {
    std::vector<ColumnBuilder> builders;
    builders.reserve(ncols_);
    for (int j = 0; j < ncols_; ++j) {
      builders.emplace_back(types_[j]);
      builders.back().Reserve(batch_rows_);
    }
    size_t k = 0;
    for (int64_t r = 0; r < batch_rows_; ++r) {
      for (int j = 0; j < ncols_; ++j, ++k) {
        if (!AppendCell(Cell(k), types_[j], &builders[j])) return false;
      }
    }
    for (int j = 0; j < ncols_; ++j) (*out)[j] = builders[j].Finish();
    return true;
  }

  // Infers and converts column j (pandas' order: bool, int64, float64, string).
  // Returns false when the column has no value at all.
  bool Infer(int j, Column* out, DataType* type) const {
    int64_t first = 0;
    while (first < batch_rows_ && IsNullToken(Cell(first, j))) ++first;
    if (first == batch_rows_) {
      *type = batch_rows_ == 0 ? DataType::kString : DataType::kFloat64;
      *out = Column::Nulls(*type, batch_rows_);
      return false;
    }
    std::string_view s = Cell(first, j);
    int64_t iv;
    double dv;
    DataType t = BoolToken(s) >= 0      ? DataType::kBool
                 : ParseInt64(s, &iv)   ? DataType::kInt64
                 : ParseFloat64(s, &dv) ? DataType::kFloat64
                                        : DataType::kString;
    for (;;) {
      int64_t bad = Convert(j, t, out);
      if (bad < 0) break;
      if (t == DataType::kInt64 && ParseFloat64(Cell(bad, j), &dv)) {
        t = DataType::kFloat64;
      } else {
        t = DataType::kString;
      }
    }
    *type = t;
    return true;
  }

  Result<Table> BuildBatch() {
    std::vector<Column> columns(ncols_);
    bool all_typed = true;
    for (int j = 0; j < ncols_; ++j) all_typed = all_typed && (fixed_[j] || locked_[j]);
    if (all_typed && ConvertAll(&columns)) return Table::Make(names_, std::move(columns));
    for (int j = 0; j < ncols_; ++j) {
      if (fixed_[j] || locked_[j]) {
        int64_t bad = Convert(j, types_[j], &columns[j]);
        if (bad < 0) continue;
        std::string_view s = Cell(bad, j);
        double dv;
        if (!fixed_[j] && types_[j] == DataType::kInt64 && ParseFloat64(s, &dv) &&
            Convert(j, DataType::kFloat64, &columns[j]) < 0) {
          types_[j] = DataType::kFloat64;  // documented widening, from this batch on
          continue;
        }
        if (fixed_[j]) {
          return Error(
              row_lines_[bad], j + 1,
              "cannot parse " + Excerpt(s) + " as " + DataTypeName(types_[j]) + " (column '" + names_[j] + "')");
        }
        return Error(row_lines_[bad], j + 1,
                     "value " + Excerpt(s) + " does not fit column '" + names_[j] + "' of type " +
                         DataTypeName(types_[j]) +
                         " inferred from the first batch of rows; pass a type for this column");
      }
      DataType t;
      if (Infer(j, &columns[j], &t)) locked_[j] = true;
      types_[j] = t;
    }
    return Table::Make(names_, std::move(columns));
  }

  std::unique_ptr<ByteSource> source_;
  CsvReadOptions options_;
  std::string name_;

  std::unique_ptr<char[]> buf_;
  size_t buf_pos_ = 0;
  size_t buf_len_ = 0;
  bool eof_ = false;
  Status io_error_;
  uint8_t unquoted_special_[256];
  uint8_t quoted_special_[256];

  int64_t line_ = 1;
  int64_t row_line_ = 1;
  int row_fields_ = 0;

  bool header_read_ = false;
  bool done_ = false;
  bool yielded_ = false;
  Status error_;
  int ncols_ = 0;
  std::vector<std::string> names_;
  std::vector<DataType> types_;
  std::vector<bool> fixed_;   // typed by the caller
  std::vector<bool> locked_;  // inferred from a value in an earlier batch

  // The current batch: all fields' bytes back to back; field k ends at field_end_[k].
  std::string arena_;
  std::vector<size_t> field_end_;
  std::vector<int64_t> row_lines_;
  int64_t batch_rows_ = 0;
};

std::string NameOr(const CsvReadOptions& o, const std::string& fallback) {
  return o.source_name.empty() ? fallback : o.source_name;
}

}  // namespace

CsvReader::~CsvReader() = default;

Result<std::unique_ptr<CsvReader>> CsvReader::OpenFile(const std::string& path, CsvReadOptions options) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + ": no such file");
    return base::PosixError(path);
  }
  std::string name = NameOr(options, path);
  return std::unique_ptr<CsvReader>(
      new CsvReaderImpl(std::make_unique<FdSource>(fd, true, name), std::move(options), name));
}

Result<std::unique_ptr<CsvReader>> CsvReader::FromFd(int fd, CsvReadOptions options) {
  std::string name = NameOr(options, "<input>");
  return std::unique_ptr<CsvReader>(
      new CsvReaderImpl(std::make_unique<FdSource>(fd, false, name), std::move(options), name));
}

Result<std::unique_ptr<CsvReader>> CsvReader::FromStream(std::istream* in, CsvReadOptions options) {
  std::string name = NameOr(options, "<input>");
  return std::unique_ptr<CsvReader>(
      new CsvReaderImpl(std::make_unique<StreamSource>(in, name), std::move(options), name));
}

Result<std::unique_ptr<CsvReader>> CsvReader::FromString(std::string data, CsvReadOptions options) {
  std::string name = NameOr(options, "<input>");
  return std::unique_ptr<CsvReader>(
      new CsvReaderImpl(std::make_unique<StringSource>(std::move(data)), std::move(options), name));
}

namespace {
Result<Table> ReadAll(CsvReader* reader) {
  PYFUNC_ASSIGN_OR_RETURN(std::optional<Table> t, reader->Next());
  if (!t) return Status::Internal("CSV reader returned no batch");
  PYFUNC_ASSIGN_OR_RETURN(std::optional<Table> rest, reader->Next());
  if (rest) return Status::Internal("CSV reader split a whole-input read");
  return std::move(*t);
}
}  // namespace

Result<Table> ReadCsv(std::string_view data, CsvReadOptions options) {
  options.batch_rows = 0;
  PYFUNC_ASSIGN_OR_RETURN(auto reader, CsvReader::FromString(std::string(data), std::move(options)));
  return ReadAll(reader.get());
}

Result<Table> ReadCsvFile(const std::string& path, CsvReadOptions options) {
  options.batch_rows = 0;
  PYFUNC_ASSIGN_OR_RETURN(auto reader, CsvReader::OpenFile(path, std::move(options)));
  return ReadAll(reader.get());
}

// --- Writer ------------------------------------------------------------------------

namespace {

void AppendField(std::string_view s, char delim, bool only_field, std::string* out) {
  bool quote = s.empty() ? only_field : false;
  if (!quote) {
    for (char c : s) {
      if (c == delim || c == '"' || c == '\n' || c == '\r') {
        quote = true;
        break;
      }
    }
  }
  if (!quote) {
    out->append(s);
    return;
  }
  out->push_back('"');
  for (char c : s) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

void AppendRows(const Table& table, const CsvWriteOptions& o, std::string* out) {
  const int ncols = table.num_columns();
  std::string scratch;
  for (int64_t r = 0; r < table.num_rows(); ++r) {
    for (int j = 0; j < ncols; ++j) {
      if (j) out->push_back(o.delimiter);
      const Column& c = table.column(j);
      if (c.IsNull(r)) {
        if (ncols == 1) out->append("\"\"");
        continue;
      }
      if (c.is_tensor()) {  // a cell holding an array: its values as nested lists
        scratch.clear();
        AppendTensorText(c, r, &scratch);
        AppendField(scratch, o.delimiter, ncols == 1, out);
        continue;
      }
      switch (c.type()) {
        case DataType::kInt64: AppendInt64(c.int64_data()[r], out); break;
        case DataType::kFloat64: {
          double v = c.float64_data()[r];
          if (std::isnan(v)) {
            if (ncols == 1) out->append("\"\"");
          } else {
            AppendPythonFloat(v, out);
          }
          break;
        }
        case DataType::kBool: out->append(c.bool_value(r) ? "True" : "False"); break;
        case DataType::kTimestamp: AppendIsoTimestamp(c.int64_data()[r], ' ', out); break;
        case DataType::kString: AppendField(c.string_value(r), o.delimiter, ncols == 1, out); break;
        case DataType::kBinary: {  // pandas writes a bytes cell as its repr: b'...'
          scratch.assign("b'");
          for (unsigned char ch : c.string_value(r)) {
            if (ch == '\\' || ch == '\'') {
              scratch.push_back('\\');
              scratch.push_back(static_cast<char>(ch));
            } else if (ch == '\n') {
              scratch.append("\\n");
            } else if (ch == '\r') {
              scratch.append("\\r");
            } else if (ch == '\t') {
              scratch.append("\\t");
            } else if (ch < 0x20 || ch >= 0x7f) {
              static constexpr char kHex[] = "0123456789abcdef";
              scratch.append("\\x");
              scratch.push_back(kHex[ch >> 4]);
              scratch.push_back(kHex[ch & 15]);
            } else {
              scratch.push_back(static_cast<char>(ch));
            }
          }
          scratch.push_back('\'');
          AppendField(scratch, o.delimiter, ncols == 1, out);
          break;
        }
        case DataType::kUInt64: AppendUInt64(c.data_as<uint64_t>()[r], out); break;
        case DataType::kFloat32: {
          const float v = c.data_as<float>()[r];
          if (std::isnan(v)) {
            if (ncols == 1) out->append("\"\"");
          } else {
            AppendNumpyFloat32(v, out);
          }
          break;
        }
        case DataType::kFloat16: {
          const double v = c.NumberAt(r);
          if (std::isnan(v)) {
            if (ncols == 1) out->append("\"\"");
          } else {
            AppendPythonFloat(v, out);
          }
          break;
        }
        default:  // the narrower integers
          AppendInt64(static_cast<int64_t>(c.NumberAt(r)), out);
          break;
      }
    }
    out->append(o.line_terminator);
  }
}

void AppendHeader(const Table& table, const CsvWriteOptions& o, std::string* out) {
  for (int j = 0; j < table.num_columns(); ++j) {
    if (j) out->push_back(o.delimiter);
    AppendField(table.column_name(j), o.delimiter, table.num_columns() == 1, out);
  }
  out->append(o.line_terminator);
}

}  // namespace

std::string WriteCsvString(const Table& table, const CsvWriteOptions& options) {
  std::string out;
  if (options.header) AppendHeader(table, options, &out);
  AppendRows(table, options, &out);
  return out;
}

CsvWriter::CsvWriter(std::ostream* out, CsvWriteOptions options) : out_(out), options_(std::move(options)) {}

Result<std::unique_ptr<CsvWriter>> CsvWriter::OpenFile(const std::string& path, CsvWriteOptions options) {
  std::random_device rd;
  std::string temp = path + ".tmp" + std::to_string(rd());
  auto file = std::make_unique<std::ofstream>(temp, std::ios::binary | std::ios::trunc);
  if (!file->is_open()) return Status::IOError(path + ": cannot create " + temp);
  std::unique_ptr<CsvWriter> w(new CsvWriter());
  w->out_ = file.get();
  w->owned_ = std::move(file);
  w->path_ = path;
  w->temp_path_ = temp;
  w->options_ = std::move(options);
  return w;
}

CsvWriter::~CsvWriter() {
  if (!temp_path_.empty() && !closed_) {
    owned_.reset();
    std::remove(temp_path_.c_str());
  }
}

Status CsvWriter::Write(const Table& table) {
  if (closed_) return Status::InvalidArgument("CsvWriter: write after Close");
  buf_.clear();
  if (!header_done_) {
    names_ = table.column_names();
    if (options_.header) AppendHeader(table, options_, &buf_);
    header_done_ = true;
  } else if (table.column_names() != names_) {
    return Status::InvalidArgument("CsvWriter: table columns differ from the first table's");
  }
  AppendRows(table, options_, &buf_);
  out_->write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
  if (!*out_) return Status::IOError((path_.empty() ? std::string("CSV output") : path_) + ": write failed");
  return Status::OK();
}

Status CsvWriter::Close() {
  if (closed_) return Status::OK();
  out_->flush();
  bool ok = static_cast<bool>(*out_);
  if (owned_) {
    static_cast<std::ofstream*>(owned_.get())->close();
    ok = ok && !owned_->fail();
  }
  if (!ok) return Status::IOError((path_.empty() ? std::string("CSV output") : path_) + ": write failed");
  if (!temp_path_.empty()) {
    if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
      return base::PosixError(path_ + ": rename failed");
    }
  }
  closed_ = true;
  return Status::OK();
}

}  // namespace pyfunc
