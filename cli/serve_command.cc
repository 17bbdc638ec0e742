// `pyfunc serve`: the scoring server (include/pyfunc/server.h) as a command, with
// `mlflow models serve`'s options, defaults and environment variables, plus the
// batching and operational options MLflow lacks.
//
// Lifecycle: bind the port(s) (not ready: /ping answers 404), load the model (workers
// start), become ready, serve until SIGTERM or SIGINT, then drain: stop accepting,
// finish what was received, exit 0 — or exit 1 when the grace period runs out (the
// workers die with this process).
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <fmt/core.h>

#include "commands.h"
#include "pyfunc/environment.h"
#include "pyfunc/model.h"
#include "pyfunc/model_uri.h"
#include "pyfunc/server.h"

namespace pyfunc::cli {
namespace {

struct ServeArgs {
  std::string model_uri;
  std::string host = "127.0.0.1";
  int port = 5000;
  int grpc_port = -1;  // no gRPC
  int timeout = 60;
  int workers = 1;
  int worker_threads = 0;
  int busy_poll_us = 1000;
  std::string env_manager = "virtualenv";
  bool no_conda = false;
  std::string batching = "auto";
  int64_t max_batch_rows = 1024;
  double max_batch_delay_ms = 0;
  int64_t max_queue = 1024;
  int64_t max_body_size = 100 * 1024 * 1024;
  double grace_period = 30;
  bool access_log = false;
  std::string name = "model";
  int http_threads = 256;
  int64_t max_connections = 10000;
  double header_timeout = 10;
  double keep_alive_timeout = 5;
};

// The process-wide settings a server with thousands of connections and large bodies
// needs; serve owns its process, the library does not touch these.
void TuneProcess(const ServeArgs& a) {
  // One descriptor per connection, plus the workers' pipes and shared memory: raise
  // the soft limit to the hard one (often 1024 -> 1M) when max_connections needs it.
  rlimit fds{};
  if (getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur != RLIM_INFINITY &&
      fds.rlim_cur < static_cast<rlim_t>(a.max_connections) + 256 && fds.rlim_cur < fds.rlim_max) {
    fds.rlim_cur = fds.rlim_max;
    setrlimit(RLIMIT_NOFILE, &fds);
  }
#if defined(__GLIBC__)
  // A freed large block raises glibc's mmap threshold, so that the next ones stay in
  // the threads' arenas: 80 requests of 4.4 MB left 1.4 GB resident. A fixed threshold
  // keeps large blocks mmapped (returned to the system when freed: 30 MB after the
  // same requests); the HTTP front trims what is left after large requests. The arenas
  // themselves stay glibc's (8 per core): capping them at 4 made the HTTP threads
  // contend for arena locks (100-row requests at c=16: 7.2k -> 8.2k req/s without it).
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
}

int Serve(const ServeArgs& a) {
  // Signals are taken by one thread with sigwait; every thread started from here on
  // (HTTP, dispatchers) inherits the mask. Worker processes reset it before exec.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  TuneProcess(a);

  Result<EnvManager> env = ParseEnvManager(a.no_conda ? "local" : a.env_manager);
  if (!env.ok()) return Fail(env.status());
  Result<BatchingMode> batching = ParseBatchingMode(a.batching);
  if (!batching.ok()) return Fail(batching.status());

  ServerOptions so;
  so.host = a.host;
  so.port = a.port;
  so.grpc_port = a.grpc_port;
  so.timeout = std::chrono::seconds(a.timeout);
  so.batching = *batching;
  so.max_batch_rows = a.max_batch_rows;
  so.max_batch_delay = std::chrono::microseconds(static_cast<int64_t>(a.max_batch_delay_ms * 1000));
  so.max_queue = static_cast<size_t>(a.max_queue);
  so.busy_poll = std::chrono::microseconds(a.busy_poll_us);
  so.max_body_size = static_cast<size_t>(a.max_body_size);
  so.access_log = a.access_log;
  so.model_name = a.name;
  so.http_threads = a.http_threads;
  so.max_connections = static_cast<size_t>(a.max_connections);
  so.header_timeout = std::chrono::milliseconds(static_cast<int64_t>(a.header_timeout * 1000));
  so.keep_alive_timeout = std::chrono::milliseconds(static_cast<int64_t>(a.keep_alive_timeout * 1000));
  Result<std::unique_ptr<Server>> server = Server::Start(so);
  if (!server.ok()) return Fail(server.status());
  if ((*server)->grpc_port() >= 0) {
    fmt::print(stderr, "pyfunc serve: listening on http://{}:{} and gRPC {}:{} (loading the model)\n", a.host,
               (*server)->port(), a.host, (*server)->grpc_port());
  } else {
    fmt::print(stderr, "pyfunc serve: listening on http://{}:{} (loading the model)\n", a.host, (*server)->port());
  }

  std::atomic<bool> loaded{false};
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (!loaded.load()) {
      fmt::print(stderr, "pyfunc serve: {} while loading the model; exiting\n", strsignal(sig));
      std::_Exit(1);  // workers already started die with us (they watch their parent)
    }
    fmt::print(stderr, "pyfunc serve: {}: draining (grace period {}s)\n", strsignal(sig), a.grace_period);
    Status st = (*server)->Drain(std::chrono::milliseconds(static_cast<int64_t>(a.grace_period * 1000)));
    if (!st.ok()) {
      fmt::print(stderr, "pyfunc serve: {}; exiting\n", st.message());
      std::_Exit(1);
    }
    // Drained and the workers stopped: idle keep-alive connections close with the process.
    fmt::print(stderr, "pyfunc serve: drained; exiting\n");
    std::_Exit(0);
  });

  Result<std::string> path = ResolveModelUri(a.model_uri);
  if (!path.ok()) std::_Exit(Fail(path.status()));  // the signal thread is blocked in sigwait
  LoadOptions lo;
  lo.env_manager = *env;
  const int workers = a.workers > 0 ? a.workers : UsableCores();
  lo.workers = workers;
  lo.predict_timeout = std::chrono::seconds(a.timeout);
  lo.threads_per_worker = a.worker_threads;
  Result<Model> model = Model::Load(*path, lo);
  if (!model.ok()) std::_Exit(Fail(model.status()));  // the signal thread is blocked in sigwait
  (*server)->SetModel(std::make_shared<Model>(std::move(model).value()));
  loaded = true;
  const BatchingDecision decision = (*server)->batching();
  fmt::print(
      stderr, "pyfunc serve: batching {}: {}{}\n", decision.merge ? "rows" : "off", decision.reason,
      decision.merge || a.batching != "auto" ? "" : "; one request per predict call (--batching rows merges them)");
  fmt::print(stderr, "pyfunc serve: ready ({} worker{}, {})\n", workers, workers == 1 ? "" : "s",
             (*server)->ready() ? "accepting requests" : "draining");

  (*server)->Wait();  // returns only once a drain has begun; the signal thread exits the process
  signal_thread.join();
  return 0;
}

}  // namespace

void RegisterServeCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand("serve",
                                 "Serve a model over HTTP: MLflow's scoring protocol (/invocations) and the "
                                 "Open Inference Protocol (/v2; also over gRPC with --grpc-port), with dynamic "
                                 "batching and /metrics");
  // MLflow uses -h for --host; help stays available as --help.
  cmd->set_help_flag("--help", "Print this help message and exit");
  cmd->add_option("-m,--model-uri", args->model_uri, "Model directory or URI (runs:/, models:/)")
      ->envname("PYFUNC_MODEL_URI")
      ->required();
  cmd->add_option("-h,--host", args->host, "Interface to listen on")->envname("MLFLOW_HOST")->capture_default_str();
  cmd->add_option("-p,--port", args->port, "Port to listen on")->envname("MLFLOW_PORT")->capture_default_str();
  cmd->add_option("--grpc-port", args->grpc_port,
                  "Also serve the Open Inference Protocol over gRPC (inference.GRPCInferenceService) on this port "
                  "of the same host; 0 picks a free one. Off unless given")
      ->envname("PYFUNC_GRPC_PORT")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("-t,--timeout", args->timeout, "Seconds a request may take before it is answered 504")
      ->envname("MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("-w,--workers", args->workers,
                  "Python worker processes (each holds the model); 0: one per usable core (the CPU affinity, "
                  "capped by a container's CPU limit)")
      ->envname("MLFLOW_MODELS_WORKERS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--busy-poll-us", args->busy_poll_us,
                  "While no request waits, poll worker round trips for up to this many microseconds "
                  "instead of sleeping (lower latency; used only with a spare core per worker). 0: off")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--worker-threads", args->worker_threads,
                  "Threads of native libraries (BLAS, OpenMP) per worker; 0: the cores divided among the workers")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--env-manager", args->env_manager, "Where the model's Python runs: local, virtualenv or conda")
      ->capture_default_str();
  cmd->add_flag("--no-conda", args->no_conda, "Same as --env-manager local (MLflow's deprecated flag)");
  cmd->add_option("--batching", args->batching,
                  "Merge concurrent requests into one predict call: auto (for models whose rows are known to be "
                  "independent: sklearn, xgboost, lightgbm, catboost, or a model saved with batching='rows'), "
                  "rows (always) or off (never)")
      ->check(CLI::IsMember({"auto", "rows", "off"}))
      ->capture_default_str();
  cmd->add_option("--max-batch-rows", args->max_batch_rows,
                  "Largest number of rows merged into one predict call (1 disables merging)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-batch-delay-ms", args->max_batch_delay_ms,
                  "Extra time a batch may wait for more requests (0: never wait)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--max-queue", args->max_queue, "Requests waiting for a worker before new ones get 503")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-body-size", args->max_body_size, "Largest request body in bytes (larger: 413)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--grace-period", args->grace_period,
                  "Seconds to finish in-flight requests after SIGTERM/SIGINT before exiting")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--access-log", args->access_log, "Log one line per request to stderr");
  cmd->add_option("--name", args->name,
                  "The model's name in Open Inference Protocol and KServe V1 paths (/v2/models/NAME, /v1/models/NAME)")
      ->capture_default_str();
  cmd->add_option("--http-threads", args->http_threads,
                  "Threads for HTTP I/O and request handlers: scoring requests in progress at once "
                  "(connections do not hold threads)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-connections", args->max_connections,
                  "Open connections at most; at the limit the longest idle one is closed for a new one")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--header-timeout", args->header_timeout,
                  "Seconds a client may take to send a request header; slower ones are disconnected")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--keep-alive-timeout", args->keep_alive_timeout,
                  "Seconds an idle keep-alive connection is kept open between requests")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->callback([args, exit_code] { *exit_code = Serve(*args); });
}

}  // namespace pyfunc::cli
