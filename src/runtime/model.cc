#include "pyfunc/model.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "base/cores.h"
#include "base/posix_error.h"
#include "pyfunc/file_system.h"
#include "pyfunc/model_dir.h"
#include "runtime/embedded.h"
#include "runtime/worker.h"

namespace pyfunc {
namespace {

// True for "scheme:..." (runs:/, models:/, file://, s3://): a letter, then letters, digits,
// '+', '-' or '.', then ':' (RFC 3986), before any '/'.
bool HasUriScheme(const std::string& s) {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  for (size_t i = 1; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == ':') return i > 1;  // "C:" would be a drive letter elsewhere; a one-letter scheme is not used
    if (!std::isalnum(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return false;
}

}  // namespace

// The worker pool. Calls borrow an idle worker (Acquire) and give it back (Release).
// A supervisor thread watches the idle workers' sockets, so that a worker that dies
// while no call uses it is noticed at once, and starts a replacement for every worker
// that died, off the request path; a call waits for a worker only when none is alive.
struct Model::Impl {
  std::string path;
  ModelSpec spec;
  PythonEnvironment env;
  std::string pandas_version;  // of the first worker started
  runtime::WorkerOptions worker_options;
  std::chrono::milliseconds predict_timeout{0};
  int workers = 0;

  std::mutex mu;
  std::condition_variable cv;                          // a worker became idle, or a restart ended
  std::vector<std::unique_ptr<runtime::Worker>> idle;  // GUARDED_BY(mu)
  int busy = 0;                                        // workers lent to calls; GUARDED_BY(mu)
  int dead = 0;                                        // workers to replace; GUARDED_BY(mu)
  Status restart_error;                                // the last failed replacement; GUARDED_BY(mu)
  int64_t restarts = 0;                                // GUARDED_BY(mu)
  bool stopping = false;                               // GUARDED_BY(mu)
  int wake_fd = -1;                                    // eventfd: a worker died, or stop
  std::thread supervisor;

  ~Impl() {
    if (supervisor.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mu);
        stopping = true;
      }
      Wake();
      supervisor.join();
    }
    if (wake_fd >= 0) ::close(wake_fd);
  }

  void Wake() {
    const uint64_t one = 1;
    while (::write(wake_fd, &one, sizeof(one)) < 0 && errno == EINTR) {}
  }

  Result<std::unique_ptr<runtime::Worker>> Acquire() {
    std::unique_lock<std::mutex> lock(mu);
    // Waits while a worker is busy or being replaced; fails at once when none is alive
    // and the last replacement failed (it is retried meanwhile, with backoff).
    const bool got = cv.wait_for(lock, predict_timeout,
                                 [this] { return !idle.empty() || stopping || (busy == 0 && !restart_error.ok()); });
    if (!idle.empty()) {
      std::unique_ptr<runtime::Worker> w = std::move(idle.back());
      idle.pop_back();
      ++busy;
      return w;
    }
    if (!restart_error.ok()) return restart_error.WithContext("restarting a worker");
    if (!got) {
      return Status::Unavailable("no worker became free within " + std::to_string(predict_timeout.count()) +
                                 " ms (workers are being restarted)");
    }
    return Status::Unavailable("the model is being unloaded");
  }

  void Release(std::unique_ptr<runtime::Worker> w) {
    const bool alive = w->alive();
    {
      std::lock_guard<std::mutex> lock(mu);
      --busy;
      if (alive) {
        idle.push_back(std::move(w));
      } else {
        ++dead;
      }
    }
    if (alive) {
      cv.notify_one();
    } else {
      Wake();
    }
  }

  void Supervise();
};

void Model::Impl::Supervise() {
  using Clock = std::chrono::steady_clock;
  std::chrono::milliseconds backoff(100);
  Clock::time_point next_restart = Clock::now();
  std::unique_lock<std::mutex> lock(mu);
  while (!stopping) {
    if (dead > 0 && Clock::now() >= next_restart) {
      lock.unlock();
      Result<std::unique_ptr<runtime::Worker>> fresh = runtime::Worker::Start(worker_options);
      lock.lock();
      if (fresh.ok()) {
        idle.push_back(std::move(fresh).value());
        --dead;
        ++restarts;
        restart_error = Status::OK();
        backoff = std::chrono::milliseconds(100);
      } else {
        restart_error = fresh.status();
        next_restart = Clock::now() + backoff;
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(10));
      }
      cv.notify_all();
      continue;
    }
    // One round: watch the sockets of the workers idle now, for up to 100 ms. A worker
    // that a call borrows meanwhile wakes the round once at most (its reply), and is then
    // left out of it; workers that become idle are watched from the next round.
    std::vector<struct pollfd> fds = {{wake_fd, POLLIN, 0}};
    for (const auto& w : idle) fds.push_back({w->socket_fd(), POLLIN, 0});
    const Clock::time_point round_end =
        std::min(Clock::now() + std::chrono::milliseconds(100), dead > 0 ? next_restart : Clock::time_point::max());
    lock.unlock();
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(round_end - Clock::now()).count();
      if (left < 0) break;
      const int r = ::poll(fds.data(), fds.size(), static_cast<int>(left));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      if (fds[0].revents != 0) {
        uint64_t count;
        (void)::read(wake_fd, &count, sizeof(count));
        break;  // a worker died (restart it now) or stop
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        const int fd = fds[i].fd;
        fds[i].fd = -1;  // out of this round
        std::unique_ptr<runtime::Worker> w;
        {
          std::lock_guard<std::mutex> guard(mu);
          for (auto it = idle.begin(); it != idle.end(); ++it) {
            if ((*it)->socket_fd() == fd) {
              w = std::move(*it);
              idle.erase(it);
              break;
            }
          }
        }
        if (!w) continue;  // a call borrowed it: its reply woke us
        const bool alive = w->CheckIdle();
        std::lock_guard<std::mutex> guard(mu);
        if (alive) {
          idle.push_back(std::move(w));
          cv.notify_one();
        } else {
          ++dead;
          next_restart = std::min(next_restart, Clock::now());
        }
      }
    }
    lock.lock();
  }
}

Result<Model> Model::Load(const std::string& model_dir, const LoadOptions& options) {
  if (options.workers < 1) return Status::InvalidArgument("workers must be at least 1");
  if (HasUriScheme(model_dir)) {
    return Status::InvalidArgument("'" + model_dir +
                                   "' is a URI, not a model directory: resolve it first (ResolveModelUri in "
                                   "pyfunc/model_uri.h)");
  }
  std::string path = model_dir;
  PYFUNC_ASSIGN_OR_RETURN(ModelSpec spec, ModelSpec::Load(path));
  PYFUNC_RETURN_IF_ERROR(spec.python_function().status());
  PYFUNC_RETURN_IF_ERROR(CheckSymlinksInsideModel(path));  // as `pyfunc validate` refuses it
  if (FileSystem::Default()->IsDirectory(path) == false) path = std::filesystem::path(path).parent_path().string();
  path = std::filesystem::absolute(path).lexically_normal().string();

  auto impl = std::make_shared<Impl>();
  impl->path = path;
  impl->spec = spec;
  impl->predict_timeout = options.predict_timeout;
  EnvironmentOptions env_options;
  env_options.manager = options.env_manager;
  env_options.python = options.python;
  env_options.env_root = options.env_root;
  env_options.quiet = options.quiet;
  PYFUNC_ASSIGN_OR_RETURN(impl->env, PrepareEnvironment(path, spec, env_options));
  PYFUNC_ASSIGN_OR_RETURN(std::string script_dir, runtime::WorkerScriptDir());

  runtime::WorkerOptions& w = impl->worker_options;
  w.python = impl->env.python;
  w.env = impl->env.env;
  w.env.push_back("PYTHONUNBUFFERED=1");
  const int cores = base::UsableCores();
  const int threads =
      options.threads_per_worker > 0 ? options.threads_per_worker : std::max(1, cores / options.workers);
  for (const char* name : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                           "NUMEXPR_NUM_THREADS"}) {
    const std::string prefix = std::string(name) + "=";
    bool set = false;
    for (const std::string& e : w.env) set = set || e.compare(0, prefix.size(), prefix) == 0;
    if (!set) w.env.push_back(prefix + std::to_string(threads));
  }
  w.script = script_dir + "/_worker.py";
  w.model_root = path;
  w.mlmodel = spec.document();
  w.model_config = options.model_config;
  w.load_timeout = options.load_timeout;
  w.on_started = options.on_worker_started;
  impl->workers = options.workers;
  // Workers start in parallel: each spends most of its start importing the model's
  // libraries, which is CPU-bound and single-threaded.
  std::vector<Result<std::unique_ptr<runtime::Worker>>> started;
  for (int i = 0; i < options.workers; ++i) started.emplace_back(Status::Internal("not started"));
  {
    std::vector<std::thread> starters;
    for (int i = 1; i < options.workers; ++i) {
      starters.emplace_back([&started, &w, i] { started[i] = runtime::Worker::Start(w); });
    }
    started[0] = runtime::Worker::Start(w);
    for (std::thread& t : starters) t.join();
  }
  for (auto& worker : started) {
    if (!worker.ok()) return worker.status().WithContext("loading " + path + " in " + impl->env.description);
    if (impl->pandas_version.empty()) impl->pandas_version = (*worker)->pandas_version();
    impl->idle.push_back(std::move(worker).value());
  }
  impl->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl->wake_fd < 0) return base::PosixError("eventfd");
  impl->supervisor = std::thread([p = impl.get()] { p->Supervise(); });
  return Model(std::move(impl));
}

Result<Prediction> Model::Predict(const Table& input, const Value& params, const PredictOptions& options) const {
  Impl& impl = *impl_;
  PYFUNC_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Worker> worker, impl.Acquire());
  const std::string params_json = params.is_null() ? "" : ToJson(params);
  Result<Prediction> out = worker->Predict(input, params_json, impl.predict_timeout, options);
  impl.Release(std::move(worker));
  return out;
}

const ModelSpec& Model::spec() const { return impl_->spec; }
const std::string& Model::path() const { return impl_->path; }
std::chrono::milliseconds Model::predict_timeout() const { return impl_->predict_timeout; }
const std::string& Model::environment_description() const { return impl_->env.description; }
const std::string& Model::pandas_version() const { return impl_->pandas_version; }
int Model::num_workers() const { return impl_->workers; }
int Model::live_workers() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return static_cast<int>(impl_->idle.size()) + impl_->busy;
}
int64_t Model::worker_restarts() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->restarts;
}

Model::Model(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

int UsableCores() { return base::UsableCores(); }

}  // namespace pyfunc
