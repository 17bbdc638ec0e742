#include "pyfunc/batch_scorer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "base/cores.h"
#include "base/posix_error.h"
#include "files/table_files.h"
#include "pyfunc/csv.h"
#include "pyfunc/file_system.h"
#include "pyfunc/json_codec.h"
#include "pyfunc/signature.h"

namespace pyfunc {
namespace {

// Produces input batches: CSV streamed from a descriptor, or a JSON request split.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual Result<std::optional<Table>> Next() = 0;
  virtual int64_t bytes_done() const = 0;
  Value params;
  InputShape shape = InputShape::kDataFrame;  // what predict is given (PredictOptions)
  bool unwrapped = false;                     // a unified LLM request: answer unwrapped
};

class CsvSource : public BatchSource {
 public:
  CsvSource(std::unique_ptr<CsvReader> r, int fd) : reader_(std::move(r)), fd_(fd) {}
  Result<std::optional<Table>> Next() override { return reader_->Next(); }
  int64_t bytes_done() const override {
    off_t pos = ::lseek(fd_, 0, SEEK_CUR);
    return pos < 0 ? 0 : pos;
  }

 private:
  std::unique_ptr<CsvReader> reader_;
  int fd_;
};

// Batches of a Parquet or Arrow file; with `whole`, the file's batches as one table (a
// model whose rows may depend on each other gets the whole input in one call).
class FileSource : public BatchSource {
 public:
  FileSource(std::unique_ptr<TableFileReader> r, bool whole) : reader_(std::move(r)), whole_(whole) {}
  Result<std::optional<Table>> Next() override {
    if (!whole_) return reader_->Next();
    if (done_) return std::optional<Table>();
    done_ = true;
    std::vector<Table> parts;
    for (;;) {
      PYFUNC_ASSIGN_OR_RETURN(std::optional<Table> part, reader_->Next());
      if (!part) break;
      parts.push_back(std::move(*part));
    }
    if (parts.empty()) return std::optional<Table>();
    if (parts.size() == 1) return std::optional<Table>(std::move(parts[0]));
    PYFUNC_ASSIGN_OR_RETURN(Table all, Table::Concat(parts));
    return std::optional<Table>(std::move(all));
  }
  int64_t bytes_done() const override { return reader_->bytes_done(); }

 private:
  std::unique_ptr<TableFileReader> reader_;
  const bool whole_;
  bool done_ = false;
};

class JsonSource : public BatchSource {
 public:
  JsonSource(Table t, int64_t batch, int64_t size) : table_(std::move(t)), batch_(batch), size_(size) {}
  Result<std::optional<Table>> Next() override {
    if (offset_ >= table_.num_rows() && !(offset_ == 0 && !emitted_)) return std::optional<Table>();
    emitted_ = true;
    const int64_t n = std::min(batch_, table_.num_rows() - offset_);
    PYFUNC_ASSIGN_OR_RETURN(Table t, table_.Slice(offset_, n));
    offset_ += n;
    return std::optional<Table>(std::move(t));
  }
  int64_t bytes_done() const override { return table_.num_rows() ? size_ * offset_ / table_.num_rows() : size_; }

 private:
  Table table_;
  int64_t batch_, size_;
  int64_t offset_ = 0;
  bool emitted_ = false;
};

// Parses batches on a thread of its own, ahead of the scoring: the input is parsed
// while the workers start (importing a model's libraries takes a second or more) and
// while they score. Parsed batches wait in a queue of at most kReadAheadBytes (and at
// least one batch), so memory stays bounded whatever the input's size.
class ReadAhead {
 public:
  static constexpr size_t kReadAheadBytes = size_t{192} << 20;

  explicit ReadAhead(BatchSource* source) : source_(source), thread_([this] { Run(); }) {}
  ~ReadAhead() { Stop(); }

  // The next batch, nullopt at the end, or the source's error.
  Result<std::optional<Table>> Next() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !queue_.empty() || ended_; });
    if (!queue_.empty()) {
      Table t = std::move(queue_.front().first);
      bytes_ -= queue_.front().second;
      queue_.pop_front();
      cv_.notify_all();
      return std::optional<Table>(std::move(t));
    }
    if (!error_.ok()) return error_;
    return std::optional<Table>();
  }

  // Stops reading (the consumer failed or finished) and joins the thread.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  static size_t Bytes(const Table& t) {
    size_t n = 0;
    for (const Column& c : t.columns()) {
      for (const Buffer* b : {c.validity(), c.values(), c.string_data()}) n += b ? b->size() : 0;
    }
    return n;
  }

  void Run() {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
      }
      Result<std::optional<Table>> batch = source_->Next();
      std::unique_lock<std::mutex> lock(mu_);
      if (!batch.ok() || !batch->has_value()) {
        if (!batch.ok()) error_ = batch.status();
        ended_ = true;
        cv_.notify_all();
        return;
      }
      const size_t size = Bytes(**batch);
      cv_.wait(lock, [&] { return stop_ || queue_.empty() || bytes_ + size <= kReadAheadBytes; });
      if (stop_) return;
      bytes_ += size;
      queue_.emplace_back(std::move(**batch), size);
      cv_.notify_all();
    }
  }

  BatchSource* source_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Table, size_t>> queue_;  // GUARDED_BY(mu_)
  size_t bytes_ = 0;                            // GUARDED_BY(mu_)
  bool ended_ = false;                          // GUARDED_BY(mu_)
  bool stop_ = false;                           // GUARDED_BY(mu_)
  Status error_;                                // GUARDED_BY(mu_)
  std::thread thread_;
};

// The predictions of a batch as a table of named columns (a single unnamed column is
// "prediction"), with the input columns carried beside them in front.
Result<Table> OutputTable(const Prediction& p, const Table& carried) {
  Table t = p.table;
  if (t.num_columns() == 1 && t.column_name(0).empty()) t = *Table::Make({"prediction"}, {t.column(0)});
  if (carried.num_columns() == 0) return t;
  if (t.num_rows() != carried.num_rows()) {
    return Status::InvalidArgument("the model returned " + std::to_string(t.num_rows()) + " rows for " +
                                   std::to_string(carried.num_rows()) +
                                   " input rows, so input columns cannot be carried beside them");
  }
  std::vector<std::string> names;
  std::vector<Column> columns;
  for (const Table* part : {&carried, static_cast<const Table*>(&t)}) {
    for (int i = 0; i < part->num_columns(); ++i) {
      if (std::find(names.begin(), names.end(), part->column_name(i)) != names.end()) {
        return Status::InvalidArgument("the carried input column '" + part->column_name(i) +
                                       "' has the name of a prediction column");
      }
      names.push_back(part->column_name(i));
      columns.push_back(part->column(i));
    }
  }
  return Table::Make(std::move(names), std::move(columns));
}

// Formats each batch's predictions: one MLflow body for the whole input, CSV rows under
// one header, or a Parquet / Arrow IPC file of record batches.
class PredictionWriter {
 public:
  PredictionWriter(OutputFile* out, const std::string& format, bool unwrapped)
      : out_(out), format_(format), json_(unwrapped) {}
  Status Open() {
    if (format_ != "parquet" && format_ != "arrow" && format_ != "arrow-stream") return Status::OK();
    const TableFileFormat f = format_ == "parquet" ? TableFileFormat::kParquet
                              : format_ == "arrow" ? TableFileFormat::kArrowFile
                                                   : TableFileFormat::kArrowStream;
    PYFUNC_ASSIGN_OR_RETURN(table_, OpenTableFileWriter(f, out_));
    return Status::OK();
  }
  Status Write(const Prediction& p, const Table& carried) {
    if (table_ || format_ == "csv") {
      PYFUNC_ASSIGN_OR_RETURN(Table t, OutputTable(p, carried));
      if (table_) return table_->Write(t);
      CsvWriteOptions o;
      o.header = !header_written_;
      header_written_ = true;
      return out_->Write(WriteCsvString(t, o));
    }
    std::string text;
    PYFUNC_RETURN_IF_ERROR(json_.Append(p, &text));
    return out_->Write(text);
  }
  Status Finish() {
    if (table_) return table_->Finish();
    if (format_ == "csv") return Status::OK();
    std::string text;
    json_.Finish(&text);
    return out_->Write(text);
  }

 private:
  OutputFile* out_;
  const std::string format_;
  PredictionStreamWriter json_;
  std::unique_ptr<TableFileWriter> table_;
  bool header_written_ = false;
};

// Columns `names` of a batch, in that order (an empty table of its rows for none).
Result<Table> SelectColumns(const Table& batch, const std::vector<std::string>& names, const std::string& input) {
  std::vector<Column> columns;
  for (const std::string& name : names) {
    const Column* c = batch.FindColumn(name);
    if (c == nullptr) {
      std::string have;
      for (const std::string& n : batch.column_names()) have += (have.empty() ? "'" : ", '") + n + "'";
      return Status::InvalidArgument(input + " has no column '" + name + "' to carry into the output (it has " +
                                     (have.empty() ? "none" : have) + ")");
    }
    columns.push_back(*c);
  }
  if (columns.empty()) return Table::Empty(batch.num_rows());
  return Table::Make(names, std::move(columns));
}

// A value set once by whichever thread comes first, and waited for by others.
template <typename T>
class Once {
 public:
  void Set(T value) {
    std::lock_guard<std::mutex> lock(mu_);
    if (value_) return;
    value_ = value;
    cv_.notify_all();
  }
  T Get() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return value_.has_value(); });
    return *value_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<T> value_;
};

// Threads the CSV reader converts on: one per core (at most 4). While the input is
// parsed the workers mostly wait for batches, so parsing may take every core.
int CsvThreads() { return std::min(base::UsableCores(), 4); }

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The input's format from its name: csv, parquet, arrow, else json (an MLflow request).
std::string InputFormatOf(const std::string& path) {
  if (EndsWith(path, ".csv")) return "csv";
  for (const char* ext : {".parquet", ".pq", ".parq"}) {
    if (EndsWith(path, ext)) return "parquet";
  }
  for (const char* ext : {".arrow", ".arrows", ".feather", ".ipc"}) {
    if (EndsWith(path, ext)) return "arrow";
  }
  return "json";
}

// The output's: parquet and Arrow by extension, else json, as MLflow writes whatever the
// name (a .csv output too: CSV is asked for with output_format).
std::string OutputFormatOf(const std::string& path) {
  const std::string in = InputFormatOf(path);
  if (in == "parquet") return in;
  if (in == "arrow") return EndsWith(path, ".arrows") ? "arrow-stream" : "arrow";
  return "json";
}

Result<std::string> ReadAll(int fd, const std::string& name) {
  std::string data;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::PosixError(name);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd > 0) ::close(fd);
  }
};

// Scores batches on a fixed set of threads, one per worker process, and hands their
// results back in input order.
class ScoringThreads {
 public:
  ScoringThreads(const Model* model, const Value* params, PredictOptions options, int threads)
      : model_(model), params_(params), options_(options) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~ScoringThreads() { Stop(); }

  // Queues batch `id` (ids count up from 0).
  void Add(int64_t id, Table table) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.emplace_back(id, std::move(table));
    }
    cv_.notify_all();
  }
  // Waits until batch `id` is scored and returns its result.
  Result<Prediction> Take(int64_t id) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_.count(id) > 0; });
    Result<Prediction> out = std::move(done_.at(id));
    done_.erase(id);
    return out;
  }
  // Whether batch `id` is scored.
  bool Done(int64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return done_.count(id) > 0;
  }
  // Drops queued batches, lets running ones finish and joins the threads.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      jobs_.clear();
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void Run() {
    for (;;) {
      std::pair<int64_t, Table> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      Result<Prediction> out = model_->Predict(job.second, *params_, options_);
      {
        std::lock_guard<std::mutex> lock(mu_);
        done_.emplace(job.first, std::move(out));
      }
      cv_.notify_all();
    }
  }

  const Model* model_;
  const Value* params_;
  const PredictOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<int64_t, Table>> jobs_;  // GUARDED_BY(mu_)
  std::map<int64_t, Result<Prediction>> done_;  // GUARDED_BY(mu_)
  bool stop_ = false;                           // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

}  // namespace

Result<ScoreFileSummary> ScoreFile(const std::string& model_dir, const LoadOptions& load,
                                   const ScoreFileOptions& options) {
  if (load.workers < 1) return Status::InvalidArgument("workers must be at least 1");
  if (options.batch_rows < 1) return Status::InvalidArgument("batch rows must be at least 1");
  std::string type = options.input_format.empty() ? InputFormatOf(options.input) : options.input_format;
  const std::string& input = options.input;
  if (type != "csv" && type != "json" && type != "parquet" && type != "arrow") {
    return Status::InvalidArgument("input format must be csv, json, parquet or arrow, not '" + type + "'");
  }
  const std::string out_format = options.output_format.empty() ? OutputFormatOf(options.output) : options.output_format;
  if (out_format != "csv" && out_format != "json" && out_format != "parquet" && out_format != "arrow" &&
      out_format != "arrow-stream") {
    return Status::InvalidArgument("output format must be json, csv, parquet, arrow or arrow-stream, not '" +
                                   out_format + "'");
  }
  if (!options.carry_columns.empty() && out_format == "json") {
    return Status::InvalidArgument("carried input columns need an output of columns (csv, parquet, arrow), not json");
  }
  if (!options.carry_columns.empty() && type == "json") {
    return Status::InvalidArgument("input columns are carried from csv, parquet or arrow input, not json");
  }

  // Open the input before loading the model: a missing file should not cost a model load.
  int fd = 0;
  int64_t total = 0;
  const std::string input_name = input.empty() || input == "-" ? "<stdin>" : input;
  if (input_name != "<stdin>") {
    fd = ::open(input.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return base::PosixError(input);
    struct stat st;
    if (::fstat(fd, &st) == 0) total = st.st_size;
  }
  FdCloser closer{fd};
  if (type == "parquet" && fd == 0) {
    return Status::InvalidArgument("parquet input is read from a file (by row group), not from standard input");
  }

  PYFUNC_ASSIGN_OR_RETURN(ModelSpec spec, ModelSpec::Load(model_dir));
  PYFUNC_RETURN_IF_ERROR(spec.python_function().status());
  ScoreFileSummary summary;
  summary.batching = DecideBatching(spec, options.batching);
  const bool split = summary.batching.merge;
  const InputSchema input_schema = ReadInputSchema(spec);
  // A Parquet or Arrow file is opened (its footer and schema checked) before the workers
  // start, and so is the output: neither failure should cost a model load.
  std::unique_ptr<BatchSource> source;
  auto open_table_file = [&]() -> Status {
    const int64_t rows = split ? options.batch_rows : 0;
    Result<std::unique_ptr<TableFileReader>> reader =
        type == "parquet" ? OpenParquetReader(fd, input_name, rows) : OpenArrowReader(fd, input_name, rows);
    if (!reader.ok()) return reader.status();
    source = std::make_unique<FileSource>(std::move(reader).value(), !split);
    return Status::OK();
  };
  const bool table_file = type == "parquet" || type == "arrow";
  if (table_file && fd != 0) PYFUNC_RETURN_IF_ERROR(open_table_file());
  PYFUNC_ASSIGN_OR_RETURN(OutputFile output, OutputFile::Open(options.output));

  // The workers start (Python and the model's imports take a second or more) while the
  // first batch is read. Its numbers are converted once the first worker has said which
  // pandas it imports (MLflow's answer follows that pandas' reading of the CSV), or the
  // load has ended without one.
  auto rounding = std::make_shared<Once<FloatRounding>>();
  LoadOptions load_options = load;
  load_options.on_worker_started = [rounding, user = load.on_worker_started](const std::string& pandas_version) {
    rounding->Set(FloatRoundingOfPandas(pandas_version));
    if (user) user(pandas_version);
  };
  std::future<Result<Model>> loading = std::async(std::launch::async, [model_dir, load_options, rounding] {
    Result<Model> m = Model::Load(model_dir, load_options);
    rounding->Set(FloatRounding::kCorrect);  // no effect once a worker has set it
    return m;
  });
  std::optional<Model> model;
  auto ready = [&]() -> Status {
    if (model) return Status::OK();
    Result<Model> loaded = loading.get();
    if (!loaded.ok()) return loaded.status();
    model.emplace(std::move(loaded).value());
    return Status::OK();
  };
  // Every return below waits for the load, so no worker outlives the call.
  struct LoadJoiner {
    std::future<Result<Model>>* f;
    ~LoadJoiner() {
      if (f->valid()) f->wait();
    }
  } joiner{&loading};

  if (table_file && fd == 0) {
    PYFUNC_RETURN_IF_ERROR(open_table_file());
  } else if (type == "csv") {
    CsvReadOptions o;
    o.batch_rows = split ? options.batch_rows : 0;  // 0: all rows
    o.schema = input_schema.typed;
    o.source_name = input_name;
    o.threads = CsvThreads();
    o.float_rounding_source = [rounding] { return rounding->Get(); };
    PYFUNC_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader, CsvReader::FromFd(fd, o));
    source = std::make_unique<CsvSource>(std::move(reader), fd);
  } else if (type == "json") {
    PYFUNC_ASSIGN_OR_RETURN(std::string body, ReadAll(fd, input_name));
    JsonReadOptions o;
    o.schema = input_schema.typed;
    o.params_keys = ReadParamNames(spec);
    Result<ScoringRequest> request = ParseScoringRequest(body, o);
    if (!request.ok()) return request.status().WithContext(input_name);
    auto json = std::make_unique<JsonSource>(std::move(request->table),
                                             split ? options.batch_rows : std::numeric_limits<int64_t>::max(),
                                             static_cast<int64_t>(body.size()));
    json->params = request->params;
    json->shape = PredictInputShape(*request, input_schema.columns);
    json->unwrapped = request->format == RequestFormat::kUnifiedLlm;
    source = std::move(json);
  }

  PredictionWriter writer(&output, out_format, source->unwrapped);
  PYFUNC_RETURN_IF_ERROR(writer.Open());

  struct Span {
    int64_t first, rows;
    Table carried;  // the input columns written beside the predictions
  };
  std::map<int64_t, Span> spans;  // batch -> its rows, until written
  std::optional<ScoringThreads> scoring;
  int64_t next_batch = 0, next_write = 0, rows_read = 0;
  // Writes the next batch's result (waiting for it).
  auto write_next = [&]() -> Status {
    Result<Prediction> result = scoring->Take(next_write);
    Span span = std::move(spans.at(next_write));
    spans.erase(next_write);
    ++next_write;
    const std::string where = "rows " + std::to_string(span.first) + "-" + std::to_string(span.first + span.rows - 1);
    if (!result.ok()) return result.status().WithContext(where);
    Status written = writer.Write(*result, span.carried);
    if (!written.ok()) return written.WithContext(where);
    summary.rows += span.rows;
    return Status::OK();
  };

  // Carried columns bypass the model unless its signature names them.
  std::vector<std::string> bypass;
  for (const std::string& name : options.carry_columns) {
    const auto& named = input_schema.all_names;
    if (std::find(named.begin(), named.end(), name) == named.end()) bypass.push_back(name);
  }
  std::optional<std::vector<std::string>> model_input;  // unset: every column

  Status failure;
  ReadAhead ahead(source.get());
  while (failure.ok()) {
    Result<std::optional<Table>> batch = ahead.Next();
    if (!batch.ok()) {
      failure = batch.status();
      break;
    }
    if (!batch->has_value()) break;
    failure = ready();
    if (!failure.ok()) break;
    if (!scoring) {
      PredictOptions po;
      po.input_shape = source->shape;
      scoring.emplace(&*model, &source->params, po, load.workers);
    }
    // At most `workers` batches scored or waiting to be written; the finished ones are
    // written as they come, in order.
    while (failure.ok() &&
           (next_batch - next_write >= load.workers || (next_write < next_batch && scoring->Done(next_write)))) {
      failure = write_next();
    }
    if (!failure.ok()) break;
    const int64_t rows = (*batch)->num_rows();
    if (!bypass.empty() && !model_input) {
      model_input.emplace();
      for (const std::string& name : (*batch)->column_names()) {
        if (std::find(bypass.begin(), bypass.end(), name) == bypass.end()) model_input->push_back(name);
      }
    }
    Result<Table> carried = SelectColumns(**batch, options.carry_columns, input_name);
    if (!carried.ok()) {
      failure = carried.status();
      break;
    }
    spans[next_batch] = {rows_read, rows, std::move(carried).value()};
    rows_read += rows;
    if (model_input) {
      Result<Table> features = SelectColumns(**batch, *model_input, input_name);
      if (!features.ok()) {
        failure = features.status();
        break;
      }
      **batch = std::move(features).value();
    }
    scoring->Add(next_batch++, std::move(**batch));
    if (options.progress) options.progress(summary.rows, source->bytes_done(), total);
  }
  ahead.Stop();
  while (failure.ok() && next_write < next_batch) failure = write_next();
  if (scoring) scoring->Stop();
  if (failure.ok()) failure = ready();  // an empty input still needs a model that loads
  if (failure.ok()) failure = writer.Finish();
  if (failure.ok()) failure = output.Commit();
  if (!failure.ok()) return failure;
  summary.batches = next_batch;
  if (options.progress) options.progress(summary.rows, total, total);
  return summary;
}

}  // namespace pyfunc
