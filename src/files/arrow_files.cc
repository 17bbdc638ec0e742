// Parquet and Arrow IPC files with Apache Arrow's C++ libraries (see table_files.h).
// The only translation unit of pyfunc that includes Arrow's headers.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <arrow/api.h>
#include <arrow/c/bridge.h>
#include <arrow/io/buffered.h>
#include <arrow/io/file.h>
#include <arrow/ipc/api.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/writer.h>
#include <parquet/exception.h>
#include <parquet/file_reader.h>

#include "base/posix_error.h"
#include "files/table_files.h"

namespace pyfunc {
namespace {

Status FromArrow(const arrow::Status& s, const std::string& where) {
  if (s.ok()) return Status::OK();
  std::string msg = where + ": " + s.message();
  if (s.IsIOError()) return Status::IOError(msg);
  if (s.IsOutOfMemory()) return Status::Internal(msg);
  return Status::InvalidArgument(msg);
}

// The types pyfunc has a column type for, as Arrow names them (for messages).
constexpr const char* kSupported = "integers, floats, bool, string, binary, timestamp, and dictionaries of strings";

bool Readable(const arrow::DataType& t) {
  switch (t.id()) {
    case arrow::Type::NA:
    case arrow::Type::BOOL:
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::INT32:
    case arrow::Type::INT64:
    case arrow::Type::UINT8:
    case arrow::Type::UINT16:
    case arrow::Type::UINT32:
    case arrow::Type::UINT64:
    case arrow::Type::HALF_FLOAT:
    case arrow::Type::FLOAT:
    case arrow::Type::DOUBLE:
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING:
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_BINARY:
    case arrow::Type::TIMESTAMP: return true;
    case arrow::Type::DICTIONARY: {
      const auto& value = *static_cast<const arrow::DictionaryType&>(t).value_type();
      return value.id() == arrow::Type::STRING || value.id() == arrow::Type::LARGE_STRING;
    }
    default: return false;
  }
}

Status CheckSchema(const arrow::Schema& schema, const std::string& name) {
  for (const auto& field : schema.fields()) {
    if (!Readable(*field->type())) {
      return Status::InvalidArgument(name + ": column '" + field->name() + "' has Arrow type " +
                                     field->type()->ToString() + ", which pyfunc cannot read (it reads " + kSupported +
                                     ")");
    }
  }
  return Status::OK();
}

// A dictionary of strings as the plain strings it encodes (pandas reads it as a
// categorical, whose values a model sees).
arrow::Result<std::shared_ptr<arrow::Array>> Decode(const arrow::DictionaryArray& dict) {
  const auto& values = *dict.dictionary();
  arrow::LargeStringBuilder b;
  ARROW_RETURN_NOT_OK(b.Reserve(dict.length()));
  for (int64_t i = 0; i < dict.length(); ++i) {
    if (dict.IsNull(i)) {
      ARROW_RETURN_NOT_OK(b.AppendNull());
      continue;
    }
    const int64_t k = dict.GetValueIndex(i);
    if (k < 0 || k >= values.length()) return arrow::Status::Invalid("dictionary index out of range");
    if (values.IsNull(k)) {
      ARROW_RETURN_NOT_OK(b.AppendNull());
      continue;
    }
    std::string_view v = values.type_id() == arrow::Type::STRING
                             ? static_cast<const arrow::StringArray&>(values).GetView(k)
                             : static_cast<const arrow::LargeStringArray&>(values).GetView(k);
    ARROW_RETURN_NOT_OK(b.Append(v));
  }
  return b.Finish();
}

TimeUnit UnitOf(const arrow::DataType& t) {
  switch (static_cast<const arrow::TimestampType&>(t).unit()) {
    case arrow::TimeUnit::SECOND: return TimeUnit::kSecond;
    case arrow::TimeUnit::MILLI: return TimeUnit::kMillisecond;
    case arrow::TimeUnit::MICRO: return TimeUnit::kMicrosecond;
    default: return TimeUnit::kNanosecond;
  }
}

// An Arrow record batch as a pyfunc Table (copied into pyfunc's buffers).
Result<Table> ToTable(const arrow::RecordBatch& batch, const std::string& where) {
  std::vector<std::shared_ptr<arrow::Array>> columns = batch.columns();
  std::vector<std::shared_ptr<arrow::Field>> fields = batch.schema()->fields();
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i]->type_id() != arrow::Type::DICTIONARY) continue;
    auto decoded = Decode(static_cast<const arrow::DictionaryArray&>(*columns[i]));
    if (!decoded.ok()) return FromArrow(decoded.status(), where + ": column '" + fields[i]->name() + "'");
    columns[i] = *decoded;
    fields[i] = fields[i]->WithType(arrow::large_utf8());
  }
  auto plain = arrow::RecordBatch::Make(arrow::schema(fields), batch.num_rows(), columns);
  ArrowSchema c_schema;
  ArrowArray c_array;
  PYFUNC_RETURN_IF_ERROR(FromArrow(arrow::ExportRecordBatch(*plain, &c_array, &c_schema), where));
  Result<Table> table = ImportTable(&c_schema, &c_array);
  if (!table.ok()) return table.status().WithContext(where);
  // Timestamps keep the unit they had, as pandas.read_parquet keeps it.
  std::vector<std::string> names;
  std::vector<Column> out;
  for (int i = 0; i < table->num_columns(); ++i) {
    names.push_back(table->column_name(i));
    Column c = table->column(i);
    if (fields[i]->type()->id() == arrow::Type::TIMESTAMP) c = c.WithTimeUnit(UnitOf(*fields[i]->type()));
    out.push_back(std::move(c));
  }
  if (out.empty()) return table;
  return Table::Make(std::move(names), std::move(out));
}

// The exceptions Parquet's reader throws, as a Status.
template <typename F>
auto Catching(const std::string& where, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Status::InvalidArgument(where + ": " + e.what());
  }
}

Result<std::shared_ptr<arrow::io::ReadableFile>> OpenFd(int fd, const std::string& name) {
  int copy = ::dup(fd);
  if (copy < 0) return base::PosixError(name);
  auto file = arrow::io::ReadableFile::Open(copy);
  if (!file.ok()) {
    ::close(copy);
    return FromArrow(file.status(), name);
  }
  return *file;
}

class ParquetReader : public TableFileReader {
 public:
  static Result<std::unique_ptr<TableFileReader>> Open(int fd, const std::string& name, int64_t batch_rows) {
    auto reader = std::unique_ptr<ParquetReader>(new ParquetReader(name));
    PYFUNC_ASSIGN_OR_RETURN(reader->file_, OpenFd(fd, name));
    PYFUNC_RETURN_IF_ERROR(Catching(name, [&]() -> Status {
      parquet::ArrowReaderProperties props;
      props.set_batch_size(batch_rows > 0 ? batch_rows : (int64_t{1} << 40));
      props.set_use_threads(true);
      parquet::arrow::FileReaderBuilder builder;
      PYFUNC_RETURN_IF_ERROR(FromArrow(builder.Open(reader->file_), name + ": not a Parquet file"));
      builder.properties(props);
      auto built = builder.Build();
      PYFUNC_RETURN_IF_ERROR(FromArrow(built.status(), name));
      reader->reader_ = std::move(*built);
      std::shared_ptr<arrow::Schema> schema;
      PYFUNC_RETURN_IF_ERROR(FromArrow(reader->reader_->GetSchema(&schema), name));
      PYFUNC_RETURN_IF_ERROR(CheckSchema(*schema, name));
      reader->row_groups_ = reader->reader_->parquet_reader()->metadata()->num_row_groups();
      return Status::OK();
    }));
    return std::unique_ptr<TableFileReader>(std::move(reader));
  }

  Result<std::optional<Table>> Next() override {
    while (row_group_ < row_groups_) {
      const std::string where = name_ + ": row group " + std::to_string(row_group_);
      PYFUNC_ASSIGN_OR_RETURN(std::optional<Table> t, Catching(where, [&]() -> Result<std::optional<Table>> {
                                if (!batches_) {
                                  auto r = reader_->GetRecordBatchReader({row_group_});
                                  PYFUNC_RETURN_IF_ERROR(FromArrow(r.status(), where));
                                  batches_ = std::move(*r);
                                }
                                std::shared_ptr<arrow::RecordBatch> batch;
                                PYFUNC_RETURN_IF_ERROR(FromArrow(batches_->ReadNext(&batch), where));
                                if (!batch) return std::optional<Table>();
                                PYFUNC_ASSIGN_OR_RETURN(Table table, ToTable(*batch, where));
                                return std::optional<Table>(std::move(table));
                              }));
      if (t) return t;
      batches_.reset();
      done_ += reader_->parquet_reader()->metadata()->RowGroup(row_group_)->total_compressed_size();
      ++row_group_;
    }
    return std::optional<Table>();
  }
  int64_t bytes_done() const override { return done_; }

 private:
  explicit ParquetReader(std::string name) : name_(std::move(name)) {}
  std::string name_;
  std::shared_ptr<arrow::io::ReadableFile> file_;
  std::unique_ptr<parquet::arrow::FileReader> reader_;
  std::unique_ptr<arrow::RecordBatchReader> batches_;  // of row_group_
  int row_groups_ = 0, row_group_ = 0;
  int64_t done_ = 0;
};

// A pipe (standard input, say) as Arrow's input stream; ReadableFile needs to seek.
class PipeInputStream : public arrow::io::InputStream {
 public:
  explicit PipeInputStream(int fd) : fd_(fd) {}
  arrow::Status Close() override {
    closed_ = true;
    return arrow::Status::OK();
  }
  bool closed() const override { return closed_; }
  arrow::Result<int64_t> Tell() const override { return position_; }
  arrow::Result<int64_t> Read(int64_t nbytes, void* out) override {
    int64_t done = 0;
    while (done < nbytes) {
      ssize_t n = ::read(fd_, static_cast<char*>(out) + done, static_cast<size_t>(nbytes - done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return arrow::Status::IOError(std::strerror(errno));
      if (n == 0) break;
      done += n;
    }
    position_ += done;
    return done;
  }
  arrow::Result<std::shared_ptr<arrow::Buffer>> Read(int64_t nbytes) override {
    ARROW_ASSIGN_OR_RAISE(std::unique_ptr<arrow::ResizableBuffer> buffer, arrow::AllocateResizableBuffer(nbytes));
    ARROW_ASSIGN_OR_RAISE(int64_t n, Read(nbytes, buffer->mutable_data()));
    ARROW_RETURN_NOT_OK(buffer->Resize(n, false));
    return std::shared_ptr<arrow::Buffer>(std::move(buffer));
  }

 private:
  int fd_;
  int64_t position_ = 0;
  bool closed_ = false;
};

class ArrowReader : public TableFileReader {
 public:
  static Result<std::unique_ptr<TableFileReader>> Open(int fd, const std::string& name, int64_t batch_rows) {
    auto reader = std::unique_ptr<ArrowReader>(new ArrowReader(name, batch_rows));
    // The file format starts with "ARROW1"; a stream with a message.
    if (::lseek(fd, 0, SEEK_CUR) < 0) {
      auto pipe = arrow::io::BufferedInputStream::Create(1 << 16, arrow::default_memory_pool(),
                                                         std::make_shared<PipeInputStream>(fd));
      PYFUNC_RETURN_IF_ERROR(FromArrow(pipe.status(), name));
      auto head = (*pipe)->Peek(6);
      PYFUNC_RETURN_IF_ERROR(FromArrow(head.status(), name));
      if (*head == "ARROW1") {
        return Status::InvalidArgument(name +
                                       ": an Arrow IPC file (the random-access format) cannot be read from a "
                                       "pipe; give its path, or send the Arrow IPC stream format");
      }
      reader->input_ = *pipe;
      auto r = arrow::ipc::RecordBatchStreamReader::Open(reader->input_);
      PYFUNC_RETURN_IF_ERROR(FromArrow(r.status(), name + ": not an Arrow IPC stream"));
      reader->stream_reader_ = *r;
      reader->schema_ = reader->stream_reader_->schema();
      PYFUNC_RETURN_IF_ERROR(CheckSchema(*reader->schema_, name));
      return std::unique_ptr<TableFileReader>(std::move(reader));
    }
    PYFUNC_ASSIGN_OR_RETURN(reader->file_, OpenFd(fd, name));
    reader->input_ = reader->file_;
    char magic[6] = {};
    if (::pread(fd, magic, sizeof(magic), 0) == sizeof(magic) && std::string_view(magic, sizeof(magic)) == "ARROW1") {
      auto r = arrow::ipc::RecordBatchFileReader::Open(reader->file_);
      PYFUNC_RETURN_IF_ERROR(FromArrow(r.status(), name + ": not an Arrow IPC file"));
      reader->file_reader_ = *r;
      reader->schema_ = reader->file_reader_->schema();
      struct stat st;
      if (::fstat(fd, &st) == 0) reader->total_ = st.st_size;
    } else {
      auto r = arrow::ipc::RecordBatchStreamReader::Open(reader->file_);
      PYFUNC_RETURN_IF_ERROR(FromArrow(r.status(), name + ": not an Arrow IPC stream or file"));
      reader->stream_reader_ = *r;
      reader->schema_ = reader->stream_reader_->schema();
    }
    PYFUNC_RETURN_IF_ERROR(CheckSchema(*reader->schema_, name));
    return std::unique_ptr<TableFileReader>(std::move(reader));
  }

  Result<std::optional<Table>> Next() override {
    while (!batch_ || offset_ >= batch_->num_rows()) {
      const std::string where = name_ + ": record batch " + std::to_string(index_);
      std::shared_ptr<arrow::RecordBatch> next;
      if (file_reader_) {
        if (index_ >= file_reader_->num_record_batches()) return std::optional<Table>();
        auto r = file_reader_->ReadRecordBatch(index_);
        PYFUNC_RETURN_IF_ERROR(FromArrow(r.status(), where));
        next = *r;
      } else {
        PYFUNC_RETURN_IF_ERROR(FromArrow(stream_reader_->ReadNext(&next), where));
        if (!next) return std::optional<Table>();
      }
      ++index_;
      batch_ = std::move(next);
      offset_ = 0;
      if (batch_->num_rows() == 0 && !emitted_) break;  // an empty batch still has the columns
    }
    const int64_t n = batch_rows_ > 0 ? std::min(batch_rows_, batch_->num_rows() - offset_) : batch_->num_rows();
    std::shared_ptr<arrow::RecordBatch> part = batch_->Slice(offset_, n);
    offset_ += std::max<int64_t>(n, 1);
    emitted_ = true;
    PYFUNC_ASSIGN_OR_RETURN(Table t, ToTable(*part, name_ + ": record batch " + std::to_string(index_ - 1)));
    return std::optional<Table>(std::move(t));
  }
  int64_t bytes_done() const override {
    if (file_reader_) {
      const int n = file_reader_->num_record_batches();
      return n ? total_ * std::min(index_, n) / n : total_;
    }
    auto pos = input_->Tell();
    return pos.ok() ? *pos : 0;
  }

 private:
  ArrowReader(std::string name, int64_t batch_rows) : name_(std::move(name)), batch_rows_(batch_rows) {}
  std::string name_;
  int64_t batch_rows_;
  std::shared_ptr<arrow::io::ReadableFile> file_;
  std::shared_ptr<arrow::io::InputStream> input_;  // file_, or a pipe
  std::shared_ptr<arrow::ipc::RecordBatchFileReader> file_reader_;
  std::shared_ptr<arrow::ipc::RecordBatchStreamReader> stream_reader_;
  std::shared_ptr<arrow::Schema> schema_;
  std::shared_ptr<arrow::RecordBatch> batch_;
  int index_ = 0;
  int64_t offset_ = 0, total_ = 0;
  bool emitted_ = false;
};

// Arrow's output stream over an OutputFile (temporary sibling, renamed on Commit).
class OutputFileStream : public arrow::io::OutputStream {
 public:
  explicit OutputFileStream(OutputFile* out) : out_(out) {}
  arrow::Status Close() override {
    closed_ = true;
    return arrow::Status::OK();
  }
  bool closed() const override { return closed_; }
  arrow::Result<int64_t> Tell() const override { return position_; }
  arrow::Status Write(const void* data, int64_t n) override {
    Status s = out_->Write(std::string_view(static_cast<const char*>(data), static_cast<size_t>(n)));
    if (!s.ok()) return arrow::Status::IOError(s.message());
    position_ += n;
    return arrow::Status::OK();
  }

 private:
  OutputFile* out_;
  int64_t position_ = 0;
  bool closed_ = false;
};

// Timestamps as the unit they had in pandas (pyfunc holds nanoseconds), without a zone,
// as numpy's datetime64 has none.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> WithTimeUnits(const std::shared_ptr<arrow::RecordBatch>& batch,
                                                                 const Table& table) {
  std::vector<std::shared_ptr<arrow::Array>> columns = batch->columns();
  std::vector<std::shared_ptr<arrow::Field>> fields = batch->schema()->fields();
  bool changed = false;
  for (int i = 0; i < table.num_columns(); ++i) {
    const Column& c = table.column(i);
    if (c.type() != DataType::kTimestamp || c.is_tensor()) continue;
    static constexpr arrow::TimeUnit::type kUnits[] = {arrow::TimeUnit::NANO, arrow::TimeUnit::MICRO,
                                                       arrow::TimeUnit::MILLI, arrow::TimeUnit::SECOND};
    static constexpr int64_t kScale[] = {1, 1000, 1000000, 1000000000};
    const int u = static_cast<int>(c.time_unit());
    ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Buffer> values, arrow::AllocateBuffer(c.length() * 8));
    auto* out = reinterpret_cast<int64_t*>(values->mutable_data());
    const int64_t* in = c.int64_data();
    for (int64_t r = 0; r < c.length(); ++r) out[r] = in[r] / kScale[u];
    auto type = arrow::timestamp(kUnits[u]);
    auto data = columns[i]->data()->Copy();
    data->type = type;
    data->buffers[1] = values;
    columns[i] = arrow::MakeArray(data);
    fields[i] = fields[i]->WithType(type);
    changed = true;
  }
  if (!changed) return batch;
  return arrow::RecordBatch::Make(arrow::schema(fields), batch->num_rows(), columns);
}

struct ColumnKind {
  std::string name;
  DataType type;
  std::vector<int64_t> cell_shape;
};

class ArrowWriter : public TableFileWriter {
 public:
  ArrowWriter(TableFileFormat format, OutputFile* out)
      : format_(format), out_(out), sink_(std::make_shared<OutputFileStream>(out)) {}

  Status Write(const Table& table) override {
    const std::string& name = out_->name();
    PYFUNC_ASSIGN_OR_RETURN(Table t, Conform(table));
    ArrowSchema c_schema;
    ArrowArray c_array;
    PYFUNC_RETURN_IF_ERROR(ExportTable(t, &c_schema, &c_array));
    auto imported = arrow::ImportRecordBatch(&c_array, &c_schema);
    PYFUNC_RETURN_IF_ERROR(FromArrow(imported.status(), name));
    auto batch = WithTimeUnits(*imported, t);
    PYFUNC_RETURN_IF_ERROR(FromArrow(batch.status(), name));
    if (!started_) PYFUNC_RETURN_IF_ERROR(Start((*batch)->schema()));
    return Catching(name, [&]() -> Status {
      if (parquet_) return FromArrow(parquet_->WriteRecordBatch(**batch), name);
      return FromArrow(ipc_->WriteRecordBatch(**batch), name);
    });
  }

  Status Finish() override {
    const std::string& name = out_->name();
    if (!started_) PYFUNC_RETURN_IF_ERROR(Start(arrow::schema({})));
    return Catching(name, [&]() -> Status {
      if (parquet_) return FromArrow(parquet_->Close(), name);
      return FromArrow(ipc_->Close(), name);
    });
  }

 private:
  // The first batch sets the columns; a later one is cast to them where that is lossless
  // (an int64 batch of a float64 column) or its column is all nulls.
  Result<Table> Conform(const Table& table) {
    if (!started_) {
      for (int i = 0; i < table.num_columns(); ++i) {
        kinds_.push_back({table.column_name(i), table.column(i).type(), table.column(i).cell_shape()});
      }
      return table;
    }
    if (table.num_columns() != static_cast<int>(kinds_.size())) {
      return Status::InvalidArgument(out_->name() + ": a batch has " + std::to_string(table.num_columns()) +
                                     " columns, the first had " + std::to_string(kinds_.size()));
    }
    std::vector<std::string> names;
    std::vector<Column> columns;
    for (int i = 0; i < table.num_columns(); ++i) {
      const ColumnKind& k = kinds_[i];
      Column c = table.column(i);
      if (table.column_name(i) != k.name) {
        return Status::InvalidArgument(out_->name() + ": a batch has column '" + table.column_name(i) +
                                       "' where the first had '" + k.name + "'");
      }
      if (c.type() != k.type || c.cell_shape() != k.cell_shape) {
        if (c.null_count() == c.length() && k.cell_shape.empty()) {
          c = Column::Nulls(k.type, c.length());
        } else {
          Result<Column> cast = c.cell_shape() == k.cell_shape ? c.CastTo(k.type) : Status::InvalidArgument("");
          if (!cast.ok()) {
            return Status::InvalidArgument(out_->name() + ": column '" + k.name + "' is " + DataTypeName(c.type()) +
                                           " in a batch, " + DataTypeName(k.type) + " in the first");
          }
          c = *cast;
        }
      }
      names.push_back(table.column_name(i));
      columns.push_back(std::move(c));
    }
    if (columns.empty()) return table;
    return Table::Make(std::move(names), std::move(columns));
  }

  Status Start(const std::shared_ptr<arrow::Schema>& schema) {
    const std::string& name = out_->name();
    started_ = true;
    return Catching(name, [&]() -> Status {
      if (format_ == TableFileFormat::kParquet) {
        auto props = parquet::WriterProperties::Builder().compression(parquet::Compression::SNAPPY)->build();
        auto arrow_props = parquet::ArrowWriterProperties::Builder().store_schema()->build();
        auto w = parquet::arrow::FileWriter::Open(*schema, arrow::default_memory_pool(), sink_, props, arrow_props);
        PYFUNC_RETURN_IF_ERROR(FromArrow(w.status(), name));
        parquet_ = std::move(*w);
        return Status::OK();
      }
      auto w = format_ == TableFileFormat::kArrowFile ? arrow::ipc::MakeFileWriter(sink_, schema)
                                                      : arrow::ipc::MakeStreamWriter(sink_, schema);
      PYFUNC_RETURN_IF_ERROR(FromArrow(w.status(), name));
      ipc_ = *w;
      return Status::OK();
    });
  }

  TableFileFormat format_;
  OutputFile* out_;
  std::shared_ptr<OutputFileStream> sink_;
  bool started_ = false;
  std::vector<ColumnKind> kinds_;
  std::unique_ptr<parquet::arrow::FileWriter> parquet_;
  std::shared_ptr<arrow::ipc::RecordBatchWriter> ipc_;
};

}  // namespace

bool ArrowFilesAvailable() { return true; }

Result<std::unique_ptr<TableFileReader>> OpenParquetReader(int fd, const std::string& name, int64_t batch_rows) {
  return ParquetReader::Open(fd, name, batch_rows);
}

Result<std::unique_ptr<TableFileReader>> OpenArrowReader(int fd, const std::string& name, int64_t batch_rows) {
  return ArrowReader::Open(fd, name, batch_rows);
}

Result<std::unique_ptr<TableFileWriter>> OpenTableFileWriter(TableFileFormat format, OutputFile* out) {
  return std::unique_ptr<TableFileWriter>(new ArrowWriter(format, out));
}

}  // namespace pyfunc
