// pyfunc predict | prepare-env: batch scoring of a file (or stdin) with the library's
// batch scorer (include/pyfunc/batch_scorer.h): this file turns arguments into its
// options and draws the progress bar.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "commands.h"
#include "pyfunc/batch_scorer.h"
#include "pyfunc/batching.h"
#include "pyfunc/environment.h"
#include "pyfunc/model.h"
#include "pyfunc/model_uri.h"

namespace pyfunc::cli {
namespace {

struct PredictArgs {
  std::string model;
  std::string input;          // empty or "-": stdin
  std::string output;         // empty or "-": stdout
  std::string content_type;   // json | csv | parquet | arrow; empty: from the extension, else json
  std::string output_format;  // json | csv | parquet | arrow | arrow-stream; empty: by extension
  std::vector<std::string> carry_columns;
  std::string env_manager = "virtualenv";
  int workers = 1;
  int64_t batch_rows = 65536;
  std::string batching = "auto";
  int worker_threads = 0;
  double timeout = 600;
  bool no_progress = false;
};

// A progress line on stderr (rows, rate, time left), redrawn at most every 200 ms.
class Progress {
 public:
  explicit Progress(int64_t total_bytes) : total_(total_bytes), start_(Clock::now()) {}
  void Update(int64_t rows, int64_t bytes_done) {
    auto now = Clock::now();
    if (now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    Print(rows, bytes_done, false);
  }
  void Done(int64_t rows) { Print(rows, total_, true); }

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
  int64_t total_;
  Clock::time_point start_, last_;
};

int Predict(const PredictArgs& a) {
  if (a.worker_threads < 0) return Fail(Status::InvalidArgument("--worker-threads must not be negative"));
  if (a.workers < 1) return Fail(Status::InvalidArgument("--workers must be at least 1"));
  if (a.batch_rows < 1) return Fail(Status::InvalidArgument("--batch-rows must be at least 1"));
  Result<EnvManager> manager = ParseEnvManager(a.env_manager);
  if (!manager.ok()) return Fail(manager.status());
  Result<BatchingMode> batching = ParseBatchingMode(a.batching);
  if (!batching.ok()) return Fail(batching.status());
  if (std::error_code ec; !a.input.empty() && a.input != "-" && !std::filesystem::exists(a.input, ec)) {
    // Before resolving the model: a missing file should not cost a download.
    return Fail(Status::NotFound(a.input + ": " + (ec ? ec.message() : "No such file or directory")));
  }
  Result<std::string> path = ResolveModelUri(a.model);
  if (!path.ok()) return Fail(path.status());

  LoadOptions load;
  load.env_manager = *manager;
  load.workers = a.workers;
  load.predict_timeout = std::chrono::milliseconds(static_cast<int64_t>(a.timeout * 1000));
  // By default one core is left to parsing; the others are shared by the workers.
  const int cores = UsableCores();
  load.threads_per_worker = a.worker_threads > 0 ? a.worker_threads : std::max(1, (cores - 1) / a.workers);

  ScoreFileOptions options;
  options.input = a.input;
  options.output = a.output;
  options.input_format = a.content_type;
  options.output_format = a.output_format;
  options.carry_columns = a.carry_columns;
  options.batch_rows = a.batch_rows;
  options.batching = *batching;
  const bool show_progress = !a.no_progress && ::isatty(2);
  std::optional<Progress> progress;
  if (show_progress) {
    options.progress = [&progress](int64_t rows, int64_t bytes, int64_t total) {
      if (!progress) progress.emplace(total);
      progress->Update(rows, bytes);
    };
  }
  Result<ScoreFileSummary> summary = ScoreFile(*path, load, options);
  if (!summary.ok()) {
    if (progress) fmt::print(stderr, "\n");
    return Fail(summary.status());
  }
  if (progress) progress->Done(summary->rows);
  if (!summary->batching.merge && summary->rows > a.batch_rows) {
    fmt::print(stderr, "pyfunc predict: the whole input in one predict call: {}{}\n", summary->batching.reason,
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
  auto* predict =
      app.add_subcommand("predict", "Score a CSV, JSON, Parquet or Arrow file (or stdin) with a model, in batches");
  predict->add_option("-m,--model-uri", a->model, "Model directory or URI")->required();
  predict->add_option("-i,--input-path", a->input, "Input file (default: stdin)");
  predict->add_option("-o,--output-path", a->output, "Output file, written atomically (default: stdout)");
  predict
      ->add_option("-t,--content-type", a->content_type,
                   "Input format: json (an MLflow scoring request), csv, parquet or arrow (an Arrow IPC "
                   "file or stream) (default: from the file extension, else json)")
      ->check(CLI::IsMember({"json", "csv", "parquet", "arrow"}));
  predict
      ->add_option("--output-format", a->output_format,
                   "json ({\"predictions\": ...} as MLflow writes it), csv, parquet, arrow (an Arrow IPC file) or "
                   "arrow-stream (default: parquet or arrow by the output's extension, else json)")
      ->check(CLI::IsMember({"json", "csv", "parquet", "arrow", "arrow-stream"}));
  predict
      ->add_option("--carry-columns", a->carry_columns,
                   "Input columns (an id, a key) written beside the predictions in csv, parquet or arrow output")
      ->delimiter(',');
  predict->add_option("--env-manager", a->env_manager, "local, virtualenv (or uv), conda")->capture_default_str();
  predict->add_option("-w,--workers", a->workers, "Worker processes scoring batches in parallel")
      ->capture_default_str();
  predict->add_option("--batch-rows", a->batch_rows, "Rows per batch")->capture_default_str();
  predict
      ->add_option("--batching", a->batching,
                   "Split the input into batches: auto (for models whose rows are known to be independent: "
                   "sklearn, xgboost, lightgbm, catboost, or saved with batching='rows'; any other model gets "
                   "the whole input in one predict call, as from MLflow), rows (always) or off (never)")
      ->check(CLI::IsMember({"auto", "rows", "off"}))
      ->capture_default_str();
  predict
      ->add_option("--worker-threads", a->worker_threads,
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
