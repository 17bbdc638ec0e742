#include "pyfunc/csv.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <istream>
#include <limits>
#include <new>
#include <ostream>
#include <random>
#include <system_error>
#include <unordered_map>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <simdjson.h>

#include "base/posix_error.h"
#include "data/text_format.h"

namespace pyfunc {

namespace {

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
//
// Reading goes in two stages. A scan, on the caller's thread, cuts the input into
// chunks of whole rows: it follows quoted fields exactly as the tokenizer reads them,
// 64 bytes at a time where a block holds no quote and no CR, and counts rows and
// physical lines. Each chunk is then tokenized and converted to columns by itself, on
// up to `threads` threads, and the batches are handed out in input order. Column types
// follow the chunks in order: a chunk converted with types that a batch before it has
// since changed is converted again, so every `threads` value gives the same batches.

// Bytes followed by kPad readable bytes (searches read whole 64-byte blocks).
class Bytes {
 public:
  static constexpr size_t kPad = 64;
  Bytes() = default;
  ~Bytes() { std::free(data_); }
  Bytes(Bytes&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        capacity_(std::exchange(o.capacity_, 0)) {}
  Bytes& operator=(Bytes&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      capacity_ = std::exchange(o.capacity_, 0);
    }
    return *this;
  }
  char* data() { return data_; }
  const char* data() const { return data_; }
  size_t size() const { return size_; }
  void Reserve(size_t n) {
    if (n <= capacity_ && data_ != nullptr) return;
    void* p = std::realloc(data_, n + kPad);
    if (p == nullptr) throw std::bad_alloc();
    data_ = static_cast<char*>(p);
    capacity_ = n;
  }
  // Room for `n` more bytes after size(); Commit(k) then takes k of them.
  char* Grow(size_t n) {
    if (size_ + n > capacity_ || data_ == nullptr) Reserve(std::max({capacity_ * 2, size_ + n, size_t{4096}}));
    return data_ + size_;
  }
  void Commit(size_t n) { size_ += n; }
  void Truncate(size_t n) { size_ = std::min(size_, n); }
  // Fills the padding with LF, where every search for a row end stops.
  void Seal() {
    Grow(0);
    std::memset(data_ + size_, '\n', kPad);
  }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// Bit i set when p[i] is a, b or c; p[0, 64) must be readable.
inline uint64_t Mask64(const char* p, char a, char b, char c) {
#if defined(__SSE2__)
  const __m128i va = _mm_set1_epi8(a), vb = _mm_set1_epi8(b), vc = _mm_set1_epi8(c);
  uint64_t m = 0;
  for (int k = 0; k < 4; ++k) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
    const __m128i e = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, va), _mm_cmpeq_epi8(x, vb)), _mm_cmpeq_epi8(x, vc));
    m |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(e))) << (16 * k);
  }
  return m;
#else
  uint64_t m = 0;
  for (int i = 0; i < 64; ++i) m |= static_cast<uint64_t>(p[i] == a || p[i] == b || p[i] == c) << i;
  return m;
#endif
}

// Bits of the LFs of p[0, 64), and whether the block holds a quote or a CR.
inline uint64_t LineFeeds64(const char* p, bool* quote_or_cr) {
#if defined(__SSE2__)
  const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r'), quote = _mm_set1_epi8('"');
  uint64_t m = 0;
  __m128i other = _mm_setzero_si128();
  for (int k = 0; k < 4; ++k) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
    m |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(x, lf)))) << (16 * k);
    other = _mm_or_si128(other, _mm_or_si128(_mm_cmpeq_epi8(x, cr), _mm_cmpeq_epi8(x, quote)));
  }
  *quote_or_cr = _mm_movemask_epi8(other) != 0;
  return m;
#else
  *quote_or_cr = Mask64(p, '"', '\r', '\r') != 0;
  return Mask64(p, '\n', '\n', '\n');
#endif
}

// Cuts the input into whole rows. The states are the tokenizer's: at the start of a
// field, in an unquoted field (a quote there is an ordinary byte), in a quoted field,
// and just after a quote inside a quoted field (a second quote is an escaped one).
class RowScanner {
 public:
  explicit RowScanner(char delimiter) : delimiter_(delimiter) {}

  // Scans d[i, scan_end) until `*found` reaches `want` row ends; d[scan_end] must be
  // readable when scan_end < data_end (a CR there may be followed by LF). Returns where
  // the next scan starts: just past the last row end found, or about scan_end.
  size_t Scan(const char* d, size_t i, size_t scan_end, size_t data_end, int64_t want, int64_t* found) {
    while (i < scan_end && *found < want) {
      bool slow = true;
      uint64_t lf = 0;
      if (i + 64 <= scan_end && (state_ == kFieldStart || state_ == kUnquoted)) lf = LineFeeds64(d + i, &slow);
      if (!slow) {
        const int64_t k = __builtin_popcountll(lf);
        if (*found + k < want) {
          *found += k;
          lines_ += k;
          const char last = d[i + 63];
          state_ = last == delimiter_ || last == '\n' ? kFieldStart : kUnquoted;
          i += 64;
          continue;
        }
        const int64_t need = want - *found;
        for (int64_t n = 1; n < need; ++n) lf &= lf - 1;
        *found = want;
        lines_ += need;
        state_ = kFieldStart;
        return i + static_cast<size_t>(__builtin_ctzll(lf)) + 1;
      }
      const size_t stop = std::min(scan_end, i + 64);
      while (i < stop) {
        const char c = d[i++];
        const bool row_end = c == '\n' || c == '\r';
        if (row_end && c == '\r' && i < data_end && d[i] == '\n') ++i;
        switch (state_) {
          case kQuoted:
            if (c == '"') state_ = kQuoteInQuoted;
            if (row_end) ++lines_;
            continue;
          case kQuoteInQuoted:
            if (c == '"') {
              state_ = kQuoted;
              continue;
            }
            [[fallthrough]];
          case kFieldStart:
            if (c == '"' && state_ == kFieldStart) {
              state_ = kQuoted;
              continue;
            }
            [[fallthrough]];
          case kUnquoted:
            if (c == delimiter_) {
              state_ = kFieldStart;
            } else if (row_end) {
              ++lines_;
              state_ = kFieldStart;
              if (++*found == want) return i;
            } else {
              state_ = kUnquoted;
            }
            continue;
        }
      }
    }
    return i;
  }

  // Line ends seen so far.
  int64_t lines() const { return lines_; }

 private:
  enum State : uint8_t { kFieldStart, kUnquoted, kQuoted, kQuoteInQuoted };
  const char delimiter_;
  State state_ = kFieldStart;
  int64_t lines_ = 0;
};

// Finds the next delimiter, LF or CR at or after a position, 64 bytes at a time. The
// bytes must be followed by padding that holds an LF.
class SpecialFinder {
 public:
  SpecialFinder(const char* d, char delimiter) : d_(d), delimiter_(delimiter) { Load(0); }
  size_t Next(size_t pos) {
    if (pos < base_ || pos >= base_ + 64) {
      Load(pos);
    } else {
      mask_ &= ~uint64_t{0} << (pos - base_);
    }
    while (mask_ == 0) Load(base_ + 64);
    return base_ + static_cast<size_t>(__builtin_ctzll(mask_));
  }

 private:
  void Load(size_t base) {
    base_ = base;
    mask_ = Mask64(d_ + base, delimiter_, '\n', '\r');
  }
  const char* d_;
  const char delimiter_;
  size_t base_ = 0;
  uint64_t mask_ = 0;
};

// Line ends in [p, e) as the tokenizer counts them (CRLF once).
int64_t CountLines(const char* p, const char* e) {
  int64_t k = 0;
  for (; p < e; ++p) k += *p == '\n' || (*p == '\r' && !(p + 1 < e && p[1] == '\n'));
  return k;
}

// Whole rows of the input and, once tokenized, their fields.
struct Chunk {
  struct Span {
    size_t begin, end;
  };
  Bytes bytes;             // the rows; quoted fields are unquoted in place
  int64_t first_line = 1;  // line of the first byte
  int64_t end_line = 1;    // line after the last row (set by Tokenize)
  std::vector<Span> fields;
  std::vector<int64_t> row_lines;  // line where each row starts
  int64_t rows = 0;
  int64_t row_ends = 0;  // counted by the scan (blank rows too); 0 when not scanned

  std::string_view Cell(size_t k) const {
    return std::string_view(bytes.data() + fields[k].begin, fields[k].end - fields[k].begin);
  }
};

Status CsvError(const std::string& name, int64_t line, int64_t field, const std::string& msg) {
  return Status::InvalidArgument(name + ":" + std::to_string(line) + ":" + std::to_string(field) + ": " + msg);
}

// Splits a chunk into rows of fields, some rows at a time. Rows with fewer than `ncols`
// fields are padded with empty ones; more is an error. `ncols` < 0 takes any number
// (the header). Blank rows are dropped.
class Tokenizer {
 public:
  Tokenizer(Chunk* chunk, char delimiter, int ncols, const std::string& name)
      : chunk_(chunk),
        d_(chunk->bytes.data()),
        n_(chunk->bytes.size()),
        delimiter_(delimiter),
        ncols_(ncols),
        name_(name),
        find_(d_, delimiter),
        line_(chunk->first_line) {}

  bool done() const { return pos_ >= n_; }

  // Tokenizes up to `max_rows` more rows (all with a negative count).
  Status Rows(int64_t max_rows) {
    char* d = d_;
    const size_t n = n_;
    std::vector<Chunk::Span>& fields = chunk_->fields;
    const size_t first_byte = pos_;
    for (int64_t got = 0; pos_ < n && (max_rows < 0 || got < max_rows);) {
      const size_t row_first = fields.size();
      const int64_t row_line = line_;
      bool quoted = false;
      for (;;) {
        const size_t begin = pos_;
        size_t end, next;
        if (pos_ < n && d[pos_] == '"') {
          quoted = true;
          const int64_t field_line = line_;
          size_t w = pos_, r = pos_ + 1;
          for (;;) {
            const void* q = std::memchr(d + r, '"', n - r);
            if (q == nullptr) {
              return CsvError(name_, field_line, static_cast<int64_t>(fields.size() - row_first) + 1,
                              "unterminated quoted field");
            }
            const size_t qi = static_cast<size_t>(static_cast<const char*>(q) - d);
            line_ += CountLines(d + r, d + qi);
            std::memmove(d + w, d + r, qi - r);
            w += qi - r;
            if (qi + 1 < n && d[qi + 1] == '"') {
              d[w++] = '"';
              r = qi + 2;
              continue;
            }
            r = qi + 1;
            break;
          }
          next = find_.Next(r);  // bytes after the closing quote belong to the field
          std::memmove(d + w, d + r, next - r);
          end = w + (next - r);
        } else {
          next = find_.Next(pos_);
          end = next;
        }
        fields.push_back({begin, end});
        if (next >= n) {
          pos_ = n;
          break;
        }
        const char c = d[next];
        pos_ = next + 1;
        if (c == delimiter_) continue;
        if (c == '\r' && pos_ < n && d[pos_] == '\n') ++pos_;
        ++line_;
        break;
      }
      const size_t nf = fields.size() - row_first;
      if (nf == 1 && !quoted) {
        const std::string_view only = chunk_->Cell(row_first);
        if (only.find_first_not_of(" \t") == std::string_view::npos) {
          fields.resize(row_first);
          continue;
        }
      }
      if (ncols_ >= 0) {
        if (nf > static_cast<size_t>(ncols_)) {
          return CsvError(name_, row_line, ncols_ + 1,
                          "row has " + std::to_string(nf) + " fields, header has " + std::to_string(ncols_));
        }
        fields.resize(row_first + static_cast<size_t>(ncols_), Chunk::Span{0, 0});
      }
      chunk_->row_lines.push_back(row_line);
      ++chunk_->rows;
      ++got;
    }
    // The bytes just tokenized, while they are in cache (unquoting moved only ASCII).
    utf8_ = utf8_ && simdjson::validate_utf8(d + first_byte, pos_ - first_byte);
    return Status::OK();
  }

  // After the last rows: names the first field that is not UTF-8.
  Status Finish() {
    chunk_->end_line = line_;
    if (utf8_) return Status::OK();
    const std::vector<Chunk::Span>& fields = chunk_->fields;
    const size_t per_row = ncols_ >= 0 ? static_cast<size_t>(ncols_) : fields.size();
    for (size_t k = 0; k < fields.size(); ++k) {
      const std::string_view cell = chunk_->Cell(k);
      if (!simdjson::validate_utf8(cell.data(), cell.size())) {
        const size_t r = per_row == 0 ? 0 : k / per_row;
        return CsvError(name_, chunk_->row_lines[r], static_cast<int64_t>(k - r * per_row) + 1,
                        ncols_ >= 0 ? "field is not valid UTF-8" : "header is not valid UTF-8");
      }
    }
    return Status::OK();
  }

 private:
  Chunk* chunk_;
  char* d_;
  const size_t n_;
  const char delimiter_;
  const int ncols_;
  const std::string& name_;
  SpecialFinder find_;
  size_t pos_ = 0;
  int64_t line_;
  bool utf8_ = true;
};

Status Tokenize(Chunk* chunk, char delimiter, int ncols, const std::string& name) {
  Tokenizer t(chunk, delimiter, ncols, name);
  PYFUNC_RETURN_IF_ERROR(t.Rows(-1));
  return t.Finish();
}

// Appends one cell's value to `b`, of `type`; false when it does not parse as that.
bool AppendCell(std::string_view s, DataType type, FloatRounding rounding, ColumnBuilder* b) {
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
      if (!(rounding == FloatRounding::kCorrect ? ParseFloat64(s, &v) : ParseFloat64BeforePandas31(s, &v))) {
        return false;
      }
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

// What the reader knows of its columns; the same for every chunk.
struct Layout {
  std::string name;  // for messages
  std::vector<std::string> names;
  std::vector<bool> fixed;  // typed by the caller
  FloatRounding rounding = FloatRounding::kCorrect;
  int ncols() const { return static_cast<int>(names.size()); }
};

// Column types as the batches so far left them.
struct ColumnTypes {
  std::vector<DataType> types;
  std::vector<bool> locked;  // inferred from a value in an earlier batch
  bool operator==(const ColumnTypes& o) const { return types == o.types && locked == o.locked; }
};

// Converts a tokenized chunk to a Table with the types in `state`, and updates them
// as the documented rules say (inference, int64 widening to float64).
class ChunkConverter {
 public:
  ChunkConverter(const Chunk& chunk, const Layout& layout)
      : chunk_(chunk), layout_(layout), ncols_(layout.ncols()), rows_(chunk.rows) {}

  Result<Table> Build(ColumnTypes* state) const {
    std::vector<Column> columns(ncols_);
    bool all_typed = true;
    for (int j = 0; j < ncols_; ++j) all_typed = all_typed && (layout_.fixed[j] || state->locked[j]);
    if (all_typed && ConvertAll(state->types, &columns)) return Table::Make(layout_.names, std::move(columns));
    for (int j = 0; j < ncols_; ++j) {
      DataType& type = state->types[j];
      if (layout_.fixed[j] || state->locked[j]) {
        int64_t bad = Convert(j, type, &columns[j]);
        if (bad < 0) continue;
        std::string_view s = Cell(bad, j);
        double dv;
        if (!layout_.fixed[j] && type == DataType::kInt64 && ParseFloat64(s, &dv) &&
            Convert(j, DataType::kFloat64, &columns[j]) < 0) {
          type = DataType::kFloat64;  // documented widening, from this batch on
          continue;
        }
        const int64_t line = chunk_.row_lines[bad];
        if (layout_.fixed[j]) {
          return CsvError(
              layout_.name, line, j + 1,
              "cannot parse " + Excerpt(s) + " as " + DataTypeName(type) + " (column '" + layout_.names[j] + "')");
        }
        return CsvError(layout_.name, line, j + 1,
                        "value " + Excerpt(s) + " does not fit column '" + layout_.names[j] + "' of type " +
                            DataTypeName(type) + " inferred from the first batch of rows; pass a type for this column");
      }
      if (Infer(j, &columns[j], &type)) state->locked[j] = true;
    }
    return Table::Make(layout_.names, std::move(columns));
  }

 private:
  std::string_view Cell(int64_t r, int j) const {
    return chunk_.Cell(static_cast<size_t>(r) * static_cast<size_t>(ncols_) + static_cast<size_t>(j));
  }

  // Converts column j to `type`. Returns -1, or the first row that does not parse.
  int64_t Convert(int j, DataType type, Column* out) const {
    ColumnBuilder b(type);
    b.Reserve(rows_);
    for (int64_t r = 0; r < rows_; ++r) {
      if (!AppendCell(Cell(r, j), type, layout_.rounding, &b)) return r;
    }
    *out = b.Finish();
    return -1;
  }

  // Converts every column in one pass in row order (a pass per column would stride
  // through the whole chunk once per column). False when a cell does not parse: the
  // caller then goes column by column.
  bool ConvertAll(const std::vector<DataType>& types, std::vector<Column>* out) const {
    std::vector<ColumnBuilder> builders;
    builders.reserve(ncols_);
    for (int j = 0; j < ncols_; ++j) {
      builders.emplace_back(types[j]);
      builders.back().Reserve(rows_);
    }
    size_t k = 0;
    for (int64_t r = 0; r < rows_; ++r) {
      for (int j = 0; j < ncols_; ++j, ++k) {
        if (!AppendCell(chunk_.Cell(k), types[j], layout_.rounding, &builders[j])) return false;
      }
    }
    for (int j = 0; j < ncols_; ++j) (*out)[j] = builders[j].Finish();
    return true;
  }

  // Infers and converts column j (pandas' order: bool, int64, float64, string).
  // Returns false when the column has no value at all.
  bool Infer(int j, Column* out, DataType* type) const {
    int64_t first = 0;
    while (first < rows_ && IsNullToken(Cell(first, j))) ++first;
    if (first == rows_) {
      *type = rows_ == 0 ? DataType::kString : DataType::kFloat64;
      *out = Column::Nulls(*type, rows_);
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

  const Chunk& chunk_;
  const Layout& layout_;
  const int ncols_;
  const int64_t rows_;
};

// A digit first, or a minus and a digit: text that is a number or nothing (the null
// tokens that start so, "1.#IND" and "-1.#QNAN", are not numbers to from_chars).
inline bool PlainNumber(std::string_view s) {
  const auto digit = [](char c) { return static_cast<unsigned char>(c - '0') < 10; };
  return !s.empty() && (digit(s[0]) || (s[0] == '-' && s.size() > 1 && digit(s[1])));
}

// Converts rows of a chunk as they are tokenized, every column of a known type.
class RowConverter {
 public:
  static bool Applies(const Layout& layout, const ColumnTypes& types) {
    for (int j = 0; j < layout.ncols(); ++j) {
      if (!layout.fixed[j] && !types.locked[j]) return false;
    }
    return true;
  }
  RowConverter(const Layout& layout, const std::vector<DataType>& types, int64_t rows)
      : types_(types), rounding_(layout.rounding) {
    builders_.reserve(types.size());
    for (DataType t : types) {
      builders_.emplace_back(t);
      builders_.back().Reserve(rows);
    }
  }
  // Rows [first, end) of the chunk; false when a value does not parse as its type.
  bool Append(const Chunk& chunk, int64_t first, int64_t end) {
    const size_t ncols = builders_.size();
    for (ColumnBuilder& b : builders_) b.Reserve(end - first);
    size_t k = static_cast<size_t>(first) * ncols;
    for (int64_t r = first; r < end; ++r) {
      for (size_t j = 0; j < ncols; ++j, ++k) {
        const std::string_view cell = chunk.Cell(k);
        if (types_[j] == DataType::kFloat64 && PlainNumber(cell)) {
          // Most cells of a float column: a number from its first byte to its last.
          double v;
          bool parsed;
          if (rounding_ == FloatRounding::kCorrect) {
            const auto res = std::from_chars(cell.data(), cell.data() + cell.size(), v);
            parsed = res.ec == std::errc() && res.ptr == cell.data() + cell.size();
          } else {
            parsed = ParseFloat64BeforePandas31(cell, &v);
          }
          if (parsed) {
            builders_[j].AppendFloat64(v);
            continue;
          }
        }
        if (!AppendCell(cell, types_[j], rounding_, &builders_[j])) return false;
      }
    }
    return true;
  }
  Result<Table> Finish(const Layout& layout) {
    std::vector<Column> columns;
    columns.reserve(builders_.size());
    for (ColumnBuilder& b : builders_) columns.push_back(b.Finish());
    return Table::Make(layout.names, std::move(columns));
  }

 private:
  const std::vector<DataType>& types_;
  const FloatRounding rounding_;
  std::vector<ColumnBuilder> builders_;
};

// One chunk on its way to becoming a batch.
struct ChunkWork {
  Chunk chunk;
  ColumnTypes before, after;  // the types it was converted with, and what they became
  Status tokenized;
  Result<Table> table = Status::Internal("chunk not converted");

  // Tokenizes, and converts rows in slices as they are tokenized (still in cache) when
  // every column's type is known; else, or when a value does not parse, converts the
  // whole chunk afterwards by the rules.
  void Run(char delimiter, const Layout& layout) {
    constexpr int64_t kSliceRows = 512;
    Tokenizer tokenizer(&chunk, delimiter, layout.ncols(), layout.name);
    std::optional<RowConverter> rows;
    // Room for the rows the scan counted, but never more fields than the chunk has bytes:
    // blank rows count there too, and a wide header over many blank lines must not
    // reserve rows x columns up front (short rows still grow the buffers as they come).
    const size_t ncols = static_cast<size_t>(std::max(1, layout.ncols()));
    const size_t expected = std::min(static_cast<size_t>(chunk.row_ends) * ncols, chunk.bytes.size());
    if (RowConverter::Applies(layout, before))
      rows.emplace(layout, before.types, static_cast<int64_t>(expected / ncols));
    chunk.fields.reserve(expected);
    while (!tokenizer.done()) {
      const int64_t first = chunk.rows;
      tokenized = tokenizer.Rows(kSliceRows);
      if (!tokenized.ok()) return;
      if (rows && !rows->Append(chunk, first, chunk.rows)) rows.reset();
    }
    tokenized = tokenizer.Finish();
    if (!tokenized.ok() || chunk.rows == 0) return;
    after = before;
    table = rows ? rows->Finish(layout) : ChunkConverter(chunk, layout).Build(&after);
  }
};

constexpr size_t kReadBytes = 1 << 20;

class CsvReaderImpl : public CsvReader {
 public:
  CsvReaderImpl(std::unique_ptr<ByteSource> source, CsvReadOptions options, std::string name)
      : source_(std::move(source)), options_(std::move(options)), scanner_(options_.delimiter) {
    layout_.name = std::move(name);
    layout_.rounding = options_.float_rounding;
    threads_ = options_.threads < 1 ? 1 : options_.threads;
  }

  ~CsvReaderImpl() override {
    // The pending chunks' futures wait for their threads before their work is freed.
    pending_.clear();
  }

  Result<std::vector<std::string>> ColumnNames() override {
    PYFUNC_RETURN_IF_ERROR(EnsureHeader());
    return layout_.names;
  }

  Result<std::optional<Table>> Next() override {
    PYFUNC_RETURN_IF_ERROR(EnsureHeader());
    for (;;) {
      Status st = Fill();
      if (!st.ok()) return Fail(st);
      if (pending_.empty()) {
        if (yielded_) return std::optional<Table>();
        yielded_ = true;
        Schema schema;
        for (int j = 0; j < layout_.ncols(); ++j) {
          schema.emplace_back(layout_.names[j], layout_.fixed[j] ? types_.types[j] : DataType::kString);
        }
        return std::optional<Table>(Table::EmptyWithSchema(schema));
      }
      Pending p = std::move(pending_.front());
      pending_.pop_front();
      if (p.done.valid()) p.done.wait();
      ChunkWork& w = *p.work;
      if (!w.tokenized.ok()) return Fail(w.tokenized);
      lines_done_ = w.chunk.end_line;
      if (w.chunk.rows == 0) continue;
      if (!(w.before == types_)) {  // converted before an earlier batch changed the types
        w.after = types_;
        w.table = ChunkConverter(w.chunk, layout_).Build(&w.after);
      }
      if (!w.table.ok()) return Fail(w.table.status());
      types_ = std::move(w.after);
      yielded_ = true;
      Table t = std::move(w.table).value();
      Recycle(std::move(w.chunk));
      p = Pending();
      st = Fill();  // keep the threads busy while the caller uses this batch
      if (!st.ok()) return Fail(st);
      return std::optional<Table>(std::move(t));
    }
  }

  int64_t lines_read() const override { return lines_done_ - 1; }

 private:
  struct Pending {
    std::unique_ptr<ChunkWork> work;
    std::future<void> done;  // declared last: destroyed (waited for) first
  };

  Status Fail(Status st) {
    pending_.clear();
    error_ = st;
    return st;
  }

  // Starts chunks until `threads_` are pending. Until the first batch has set the
  // inferred types, one chunk at a time.
  Status Fill() {
    const size_t limit = yielded_ ? static_cast<size_t>(threads_) : 1;
    while (pending_.size() < limit && !input_done_) {
      PYFUNC_ASSIGN_OR_RETURN(std::optional<Chunk> chunk, ReadChunk(options_.batch_rows > 0 ? options_.batch_rows : 0));
      if (!chunk) {
        input_done_ = true;
        break;
      }
      if (options_.float_rounding_source) {  // before the first conversion starts
        layout_.rounding = options_.float_rounding_source();
        options_.float_rounding_source = nullptr;
      }
      Pending p;
      p.work = std::make_unique<ChunkWork>();
      p.work->chunk = std::move(*chunk);
      p.work->before = types_;
      ChunkWork* w = p.work.get();
      if (threads_ > 1) {
        try {
          p.done = std::async(std::launch::async, [w, this] { w->Run(options_.delimiter, layout_); });
        } catch (const std::system_error&) {
          w->Run(options_.delimiter, layout_);  // no thread to be had: convert here
        }
      } else {
        w->Run(options_.delimiter, layout_);
      }
      pending_.push_back(std::move(p));
    }
    return Status::OK();
  }

  // Chunks whose batches were handed out keep their buffers for later ones: a fresh
  // buffer of a batch's size costs a page fault per 4 KiB on first touch.
  Chunk TakeChunk() {
    if (spare_.empty()) return Chunk();
    Chunk c = std::move(spare_.back());
    spare_.pop_back();
    c.bytes.Truncate(0);
    c.fields.clear();
    c.row_lines.clear();
    c.rows = 0;
    c.row_ends = 0;
    return c;
  }
  void Recycle(Chunk c) {
    if (!eof_ && spare_.size() < static_cast<size_t>(threads_) + 1) spare_.push_back(std::move(c));
  }

  // The next chunk of `want_rows` rows (0: the rest of the input), or nullopt at the end.
  Result<std::optional<Chunk>> ReadChunk(int64_t want_rows) {
    Chunk c = TakeChunk();
    std::swap(c.bytes, carry_);  // the chunk starts with the bytes read past the last one
    c.bytes.Reserve(std::max(c.bytes.size(), last_chunk_bytes_) + kReadBytes);
    c.first_line = scanner_.lines() + 1;
    size_t scanned = 0;
    int64_t found = 0;
    for (;;) {
      const size_t avail = c.bytes.size();
      if (!bom_checked_ && (avail >= 3 || eof_)) {
        bom_checked_ = true;
        if (avail >= 3 && std::memcmp(c.bytes.data(), "\xEF\xBB\xBF", 3) == 0) {
          std::memmove(c.bytes.data(), c.bytes.data() + 3, avail - 3);
          c.bytes.Truncate(avail - 3);
          continue;
        }
      }
      if (want_rows > 0 && bom_checked_) {
        const size_t scan_end = eof_ ? avail : (avail > 0 ? avail - 1 : 0);
        if (scanned < scan_end) {
          scanned = scanner_.Scan(c.bytes.data(), scanned, scan_end, avail, want_rows, &found);
          if (found == want_rows) {
            carry_.Reserve(avail - scanned + kReadBytes);
            std::memcpy(carry_.Grow(avail - scanned), c.bytes.data() + scanned, avail - scanned);
            carry_.Commit(avail - scanned);
            c.bytes.Truncate(scanned);
            break;
          }
        }
      }
      if (eof_) break;
      char* p = c.bytes.Grow(kReadBytes);
      PYFUNC_ASSIGN_OR_RETURN(size_t got, source_->Read(p, kReadBytes));
      if (got == 0) {
        eof_ = true;
      } else {
        c.bytes.Commit(got);
      }
    }
    if (c.bytes.size() == 0) return std::optional<Chunk>();
    c.row_ends = found;
    last_chunk_bytes_ = c.bytes.size();
    c.bytes.Seal();
    return std::optional<Chunk>(std::move(c));
  }

  Status EnsureHeader() {
    if (!error_.ok()) return error_;
    if (header_read_) return Status::OK();
    header_read_ = true;
    // The first non-blank row.
    std::optional<Chunk> header;
    for (;;) {
      Result<std::optional<Chunk>> chunk = ReadChunk(1);
      if (!chunk.ok()) return Fail(chunk.status());
      if (!*chunk) return Fail(Status::InvalidArgument(layout_.name + ": no columns to parse"));
      Status st = Tokenize(&**chunk, options_.delimiter, -1, layout_.name);
      if (!st.ok()) return Fail(st);
      lines_done_ = (*chunk)->end_line;
      if ((*chunk)->rows == 1) {
        header = std::move(*chunk);
        break;
      }
    }
    const int ncols = static_cast<int>(header->fields.size());
    std::vector<std::string> names;
    names.reserve(static_cast<size_t>(ncols));
    for (int j = 0; j < ncols; ++j) names.emplace_back(header->Cell(static_cast<size_t>(j)));
    layout_.names = DedupHeader(std::move(names));
    types_.types.assign(ncols, DataType::kFloat64);
    types_.locked.assign(ncols, false);
    layout_.fixed.assign(ncols, false);
    std::unordered_map<std::string_view, DataType> given;  // column_types win over schema
    for (const auto& [n, t] : options_.schema) given[n] = t;
    for (const auto& [n, t] : options_.column_types) given[n] = t;
    if (!given.empty()) {
      for (int j = 0; j < ncols; ++j) {
        auto it = given.find(layout_.names[j]);
        if (it == given.end()) continue;
        types_.types[j] = it->second;
        layout_.fixed[j] = true;
      }
    }
    return Status::OK();
  }

  std::unique_ptr<ByteSource> source_;
  CsvReadOptions options_;
  RowScanner scanner_;
  int threads_ = 1;
  Layout layout_;
  ColumnTypes types_;

  Bytes carry_;  // bytes read past the last chunk's end
  std::vector<Chunk> spare_;
  size_t last_chunk_bytes_ = 0;
  bool eof_ = false;
  bool bom_checked_ = false;
  bool input_done_ = false;
  bool header_read_ = false;
  bool yielded_ = false;
  Status error_;
  int64_t lines_done_ = 1;
  std::deque<Pending> pending_;
};

std::string NameOr(const CsvReadOptions& o, const std::string& fallback) {
  return o.source_name.empty() ? fallback : o.source_name;
}

}  // namespace

CsvReader::~CsvReader() = default;

FloatRounding FloatRoundingOfPandas(std::string_view version) {
  int major = 0, minor = 0;
  const char* p = version.data();
  const char* end = p + version.size();
  auto r = std::from_chars(p, end, major);
  if (r.ec != std::errc() || r.ptr == end || *r.ptr != '.') return FloatRounding::kCorrect;
  r = std::from_chars(r.ptr + 1, end, minor);
  if (r.ec != std::errc()) return FloatRounding::kCorrect;
  return major < 3 || (major == 3 && minor < 1) ? FloatRounding::kBeforePandas31 : FloatRounding::kCorrect;
}

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
