// pyfunc predict | prepare-env: batch scoring of a file (or stdin) through the runtime.
//
// The input is read in batches of --batch-rows rows (CSV is streamed; a JSON request is
// parsed once and split), --workers batches are scored in parallel, and the output is
// written in input order. Parsing runs ahead of the scoring on a thread of its own, into a
// queue bounded in bytes, so memory stays bounded however large the input is. A file output is written to a temporary sibling and renamed into
// place at the end: a failed run leaves no partial file.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <future>
#include <limits>
#include <optional>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/core.h>

#include "commands.h"
#include "pyfunc/csv.h"
#include "pyfunc/environment.h"
#include "pyfunc/file_system.h"
#include "pyfunc/json_codec.h"
#include "pyfunc/model.h"
#include "pyfunc/model_uri.h"
#include "pyfunc/server.h"
#include "pyfunc/signature.h"

namespace pyfunc::cli {
namespace {

struct PredictArgs {
  std::string model;
  std::string input;   // empty or "-": stdin
  std::string output;  // empty or "-": stdout
  std::string content_type;   // json | csv; empty: from the input's extension, else json
  std::string output_format = "json";
  std::string env_manager = "virtualenv";
  int workers = 1;
  int64_t batch_rows = 65536;
  std::string batching = "auto";
  int worker_threads = 0;
  double timeout = 600;
  bool no_progress = false;
};

// Output sink: stdout, or a temporary sibling of the output file renamed by Commit().
class Output {
 public:
  static Result<Output> Open(const std::string& path) {
    Output out;
    if (path.empty() || path == "-") {
      out.fd_ = 1;
      return out;
    }
    std::filesystem::path p(path);
    out.path_ = path;
    out.tmp_ = (p.parent_path() / ("." + p.filename().string() + ".partial-" + std::to_string(::getpid()))).string();
    out.fd_ = ::open(out.tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out.fd_ < 0) return Status::IOError(path + ": cannot write: " + std::strerror(errno));
    return out;
  }
  Output() = default;
  Output(Output&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)), tmp_(std::move(o.tmp_)) { o.fd_ = -1; }
  ~Output() {
    if (fd_ > 2) {
      ::close(fd_);
      ::unlink(tmp_.c_str());  // not committed: leave nothing behind
    }
  }
  Status Write(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::IOError((path_.empty() ? std::string("stdout") : path_) + ": " + std::strerror(errno));
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return Status::OK();
  }
  Status Commit() {
    if (fd_ <= 2) return Status::OK();
    if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
      fd_ = -1;
      ::unlink(tmp_.c_str());
      return Status::IOError(path_ + ": " + std::strerror(errno));
    }
    fd_ = -1;
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
      ::unlink(tmp_.c_str());
      return Status::IOError(path_ + ": " + std::strerror(errno));
    }
    return Status::OK();
  }

 private:
  int fd_ = -1;
  std::string path_, tmp_;
};

// Formats predictions as MLflow's {"predictions": [...]} (streamed batch by batch) or CSV.
class PredictionWriter {
 public:
  PredictionWriter(Output* out, bool csv) : out_(out), csv_(csv) {}
  Status Write(const Prediction& p) {
    std::string text;
    if (csv_) {
      Table t = p.table;
      if (t.num_columns() == 1 && t.column_name(0).empty()) {
        t = *Table::Make({"prediction"}, {t.column(0)});
      }
      CsvWriteOptions o;
      o.header = !header_written_;
      header_written_ = true;
      text = WriteCsvString(t, o);
    } else {
      std::string body;
      AppendPredictionJson(p, &body);  // "[...]", or any JSON for an object (kJson)
      if ((p.shape == PredictionShape::kJson || p.shape == PredictionShape::kColumns) &&
          (body.empty() || body[0] != '[')) {
        // A dict, a str, ...: the predictions as a whole, which no other batch can join.
        if (any_rows_ || whole_) {
          return Status::InvalidArgument(
              "the model returned a single object (not one prediction per row) for a batch; such output "
              "cannot be joined across batches: score the input in one batch (--batch-rows)");
        }
        whole_ = true;
        return out_->Write(unwrapped_ ? body : "{\"predictions\": " + body);
      }
      if (whole_) {
        return Status::InvalidArgument(
            "the model returned a single object for an earlier batch; score the input in one batch "
            "(--batch-rows)");
      }
      if (unwrapped_) {
        any_rows_ = true;
        return out_->Write(body);
      }
      if (body.size() > 2) {
        text = (any_rows_ ? ", " : "{\"predictions\": [") + body.substr(1, body.size() - 2);
        any_rows_ = true;
      }
    }
    return out_->Write(text);
  }
  Status Finish() {
    if (csv_) return Status::OK();
    if (unwrapped_) return out_->Write(whole_ || any_rows_ ? "\n" : "[]\n");
    if (whole_) return out_->Write("}\n");
    return out_->Write(any_rows_ ? "]}\n" : "{\"predictions\": []}\n");
  }
  // MLflow's unified LLM requests are answered with the predictions alone, unwrapped.
  void set_unwrapped(bool unwrapped) { unwrapped_ = unwrapped; }

 private:
  Output* out_;
  bool csv_;
  bool any_rows_ = false;
  bool whole_ = false;  // a single object was written as the predictions
  bool unwrapped_ = false;
  bool header_written_ = false;
};

class Progress {
 public:
  Progress(bool enabled, int64_t total_bytes) : enabled_(enabled), total_(total_bytes), start_(Clock::now()) {}
  void Update(int64_t rows, int64_t bytes_done) {
    if (!enabled_) return;
    auto now = Clock::now();
    if (now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    Print(rows, bytes_done, false);
  }
  void Done(int64_t rows) {
    if (enabled_) Print(rows, total_, true);
  }

 private:
  using Clock = std::chrono::steady_clock;
  void Print(int64_t rows, int64_t bytes, bool done) {
    const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
    const double rate = secs > 0 ? rows / secs : 0;
    std::string eta = "";
    if (!done && total_ > 0 && bytes > 0 && secs > 0) {
      const double left = (total_ - bytes) / (bytes / secs);
      eta = fmt::format(" | ETA {}:{:02d}", static_cast<int>(left) / 60, static_cast<int>(left) % 60);
    }
    fmt::print(stderr, "\r\033[K{} rows | {:.0f} rows/s{}{}", rows, rate, eta, done ? "\n" : "");
    std::fflush(stderr);
  }
  bool enabled_;
  int64_t total_;
  Clock::time_point start_, last_;
};

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
  int64_t bytes_done() const override {
    return table_.num_rows() ? size_ * offset_ / table_.num_rows() : size_;
  }

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

Result<std::string> ReadAll(int fd, const std::string& name) {
  std::string data;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(name + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

int Predict(const PredictArgs& a) {
  if (a.workers < 1) return Fail(Status::InvalidArgument("--workers must be at least 1"));
  if (a.batch_rows < 1) return Fail(Status::InvalidArgument("--batch-rows must be at least 1"));
  if (a.worker_threads < 0) return Fail(Status::InvalidArgument("--worker-threads must not be negative"));
  std::string type = a.content_type;
  if (type.empty()) type = a.input.size() > 4 && a.input.compare(a.input.size() - 4, 4, ".csv") == 0 ? "csv" : "json";
  Result<EnvManager> manager = ParseEnvManager(a.env_manager);
  if (!manager.ok()) return Fail(manager.status());
  Result<BatchingMode> batching = ParseBatchingMode(a.batching);
  if (!batching.ok()) return Fail(batching.status());

  // Open the input before loading the model: a missing file should not cost a model load.
  int fd = 0;
  int64_t total = 0;
  const std::string input_name = a.input.empty() || a.input == "-" ? "<stdin>" : a.input;
  if (input_name != "<stdin>") {
    fd = ::open(a.input.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Fail(Status::NotFound(a.input + ": " + std::strerror(errno)));
    struct stat st;
    if (::fstat(fd, &st) == 0) total = st.st_size;
  }
  struct FdCloser {
    int fd;
    ~FdCloser() {
      if (fd > 0) ::close(fd);
    }
  } closer{fd};

  LoadOptions options;
  options.env_manager = *manager;
  options.workers = a.workers;
  options.predict_timeout = std::chrono::milliseconds(static_cast<int64_t>(a.timeout * 1000));
  // By default one core is left to parsing; the others are shared by the workers.
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  options.threads_per_worker = a.worker_threads > 0 ? a.worker_threads : std::max(1, (cores - 1) / a.workers);
  // The workers start (Python and the model's imports take a second or more) while
  // the first batch is read and parsed: only the MLmodel is needed for that.
  Result<std::string> path = ResolveModelUri(a.model);
  if (!path.ok()) return Fail(path.status());
  Result<ModelSpec> spec = ModelSpec::Load(*path);
  if (!spec.ok()) return Fail(spec.status());
  if (Status st = spec->python_function().status(); !st.ok()) return Fail(st);
  // A model whose rows may depend on each other gets the whole input in one predict
  // call, as MLflow gives it: split into batches, it would answer differently.
  const BatchingDecision split = DecideBatching(*spec, *batching);
  const InputSchema input_schema = ReadInputSchema(*spec);
  const Schema& schema = input_schema.typed;
  std::future<Result<Model>> loading =
      std::async(std::launch::async, [p = *path, options] { return Model::Load(p, options); });
  std::optional<Model> model;
  // Waits for the workers; a failed load is the run's error.
  auto ready = [&]() -> Status {
    if (model) return Status::OK();
    Result<Model> loaded = loading.get();
    if (!loaded.ok()) return loaded.status();
    model.emplace(std::move(loaded).value());
    return Status::OK();
  };

  std::unique_ptr<BatchSource> source;
  if (type == "csv") {
    CsvReadOptions o;
    o.batch_rows = split.merge ? a.batch_rows : 0;  // 0: all rows
    o.schema = schema;
    o.source_name = input_name;
    Result<std::unique_ptr<CsvReader>> reader = CsvReader::FromFd(fd, o);
    if (!reader.ok()) return Fail(reader.status());
    source = std::make_unique<CsvSource>(std::move(reader).value(), fd);
  } else {
    Result<std::string> body = ReadAll(fd, input_name);
    if (!body.ok()) return Fail(body.status());
    JsonReadOptions o;
    o.schema = schema;
    o.params_keys = ReadParamNames(*spec);
    Result<ScoringRequest> request = ParseScoringRequest(*body, o);
    if (!request.ok()) return Fail(request.status().WithContext(input_name));
    auto json = std::make_unique<JsonSource>(std::move(request->table),
                                             split.merge ? a.batch_rows : std::numeric_limits<int64_t>::max(),
                                             static_cast<int64_t>(body->size()));
    json->params = request->params;
    json->shape = PredictInputShape(*request, input_schema.columns);
    json->unwrapped = request->format == RequestFormat::kUnifiedLlm;
    source = std::move(json);
  }

  Result<Output> output = Output::Open(a.output);
  if (!output.ok()) return Fail(output.status());
  PredictionWriter writer(&*output, a.output_format == "csv");
  writer.set_unwrapped(source->unwrapped);
  Progress progress(!a.no_progress && ::isatty(2), total);

  // Up to `workers` batches in flight; results are written in input order.
  struct Slot {
    bool done = false;
    Result<Prediction> result = Status::Internal("pending");
    int64_t first_row = 0, rows = 0;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::map<int64_t, Slot> slots;  // by batch number
  int in_flight = 0;
  int64_t next_batch = 0, next_write = 0, rows_read = 0, rows_written = 0;
  Status failure;
  std::map<int64_t, std::thread> threads;  // by batch number, until joined
  std::vector<int64_t> finished;           // batches whose thread has ended; GUARDED_BY(mu)

  auto write_ready = [&](std::unique_lock<std::mutex>& lock) -> Status {
    while (true) {
      auto it = slots.find(next_write);
      if (it == slots.end() || !it->second.done) return Status::OK();
      Slot slot = std::move(it->second);
      slots.erase(it);
      ++next_write;
      lock.unlock();
      Status st = slot.result.ok() ? writer.Write(*slot.result)
                                   : slot.result.status().WithContext(
                                         fmt::format("rows {}-{}", slot.first_row, slot.first_row + slot.rows - 1));
      lock.lock();
      if (!st.ok()) return st;
      rows_written += slot.rows;
    }
  };

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
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return in_flight < a.workers; });
    failure = write_ready(lock);
    if (!failure.ok()) break;
    const int64_t id = next_batch++;
    Slot& slot = slots[id];
    slot.first_row = rows_read;
    slot.rows = (*batch)->num_rows();
    rows_read += slot.rows;
    ++in_flight;
    lock.unlock();
    threads.emplace(id, std::thread([&, id, table = std::move(**batch)] {
      PredictOptions po;
      po.input_shape = source->shape;
      Result<Prediction> out = model->Predict(table, source->params, po);
      std::lock_guard<std::mutex> g(mu);
      slots[id].result = std::move(out);
      slots[id].done = true;
      finished.push_back(id);
      --in_flight;
      cv.notify_all();
    }));
    progress.Update(rows_written, source->bytes_done());
    // Join the threads of finished batches, so at most `workers` threads are alive.
    std::vector<int64_t> ended;
    {
      std::lock_guard<std::mutex> g(mu);
      ended.swap(finished);
    }
    for (int64_t done_id : ended) {
      threads[done_id].join();
      threads.erase(done_id);
    }
  }
  ahead.Stop();
  for (auto& [id, t] : threads) t.join();
  if (failure.ok()) failure = ready();  // an empty input still needs a model that loads
  if (failure.ok()) {
    std::unique_lock<std::mutex> lock(mu);
    failure = write_ready(lock);
  }
  if (failure.ok()) failure = writer.Finish();
  if (failure.ok()) failure = output->Commit();
  if (!failure.ok()) {
    if (!a.no_progress && ::isatty(2)) fmt::print(stderr, "\n");
    return Fail(failure);
  }
  progress.Done(rows_written);
  if (!split.merge && rows_written > a.batch_rows) {
    fmt::print(stderr, "pyfunc predict: the whole input in one predict call: {}{}\n", split.reason,
               a.batching == "auto" ? " (--batching rows scores it in batches of --batch-rows)" : "");
  }
  return 0;
}

int PrepareEnv(const std::string& model_uri, const std::string& env_manager) {
  Result<EnvManager> manager = ParseEnvManager(env_manager);
  if (!manager.ok()) return Fail(manager.status());
  Result<std::string> path = ResolveModelUri(model_uri);
  if (!path.ok()) return Fail(path.status());
  Result<ModelSpec> spec = ModelSpec::Load(*path);
  if (!spec.ok()) return Fail(spec.status());
  EnvironmentOptions options;
  options.manager = *manager;
  Result<PythonEnvironment> env = PrepareEnvironment(*path, *spec, options);
  if (!env.ok()) return Fail(env.status());
  fmt::print("{} {}\n", env->created ? "created" : "ready", env->description);
  return 0;
}

}  // namespace

void RegisterPredictCommands(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<PredictArgs>();
  auto* predict = app.add_subcommand("predict", "Score a CSV or JSON file (or stdin) with a model, in batches");
  predict->add_option("-m,--model-uri", a->model, "Model directory or URI")->required();
  predict->add_option("-i,--input-path", a->input, "Input file (default: stdin)");
  predict->add_option("-o,--output-path", a->output, "Output file, written atomically (default: stdout)");
  predict->add_option("-t,--content-type", a->content_type,
                      "Input format: json (an MLflow scoring request) or csv (default: from the file "
                      "extension, else json)")
      ->check(CLI::IsMember({"json", "csv"}));
  predict->add_option("--output-format", a->output_format,
                      "json ({\"predictions\": ...} as MLflow writes it) or csv")
      ->check(CLI::IsMember({"json", "csv"}))
      ->capture_default_str();
  predict->add_option("--env-manager", a->env_manager, "local, virtualenv (or uv), conda")->capture_default_str();
  predict->add_option("-w,--workers", a->workers, "Worker processes scoring batches in parallel")
      ->capture_default_str();
  predict->add_option("--batch-rows", a->batch_rows, "Rows per batch")->capture_default_str();
  predict->add_option("--batching", a->batching,
                      "Split the input into batches: auto (for models whose rows are known to be independent: "
                      "sklearn, xgboost, lightgbm, catboost, or saved with batching='rows'; any other model gets "
                      "the whole input in one predict call, as from MLflow), rows (always) or off (never)")
      ->check(CLI::IsMember({"auto", "rows", "off"}))
      ->capture_default_str();
  predict->add_option("--worker-threads", a->worker_threads,
                      "Threads of native libraries (BLAS, OpenMP) per worker; 0: the cores but one, "
                      "divided among the workers")
      ->capture_default_str();
  predict->add_option("--timeout", a->timeout, "Seconds one batch may take")->capture_default_str();
  predict->add_flag("--no-progress", a->no_progress, "No progress bar (none is shown when stderr is not a terminal)");
  predict->callback([a, exit_code] { *exit_code = Predict(*a); });

  auto env = std::make_shared<std::pair<std::string, std::string>>("", "virtualenv");
  auto* prepare = app.add_subcommand("prepare-env", "Build (or find) a model's environment ahead of time");
  prepare->add_option("-m,--model-uri,model", env->first, "Model directory or URI")->required();
  prepare->add_option("--env-manager", env->second, "virtualenv (or uv), conda, local")->capture_default_str();
  prepare->callback([env, exit_code] { *exit_code = PrepareEnv(env->first, env->second); });
}

}  // namespace pyfunc::cli
