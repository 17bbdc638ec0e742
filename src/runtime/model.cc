#include "pyfunc/model.h"

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "pyfunc/file_system.h"
#include "pyfunc/model_uri.h"
#include "runtime/embedded.h"
#include "runtime/worker.h"

namespace pyfunc {

struct Model::Impl {
  std::string path;
  ModelSpec spec;
  PythonEnvironment env;
  runtime::WorkerOptions worker_options;
  std::chrono::milliseconds predict_timeout{0};

  std::mutex mu;
  std::condition_variable idle_cv;
  std::vector<std::unique_ptr<runtime::Worker>> idle;  // GUARDED_BY(mu); null entries: to restart
  int workers = 0;
  int64_t restarts = 0;  // GUARDED_BY(mu)

  std::unique_ptr<runtime::Worker> Acquire() {
    std::unique_lock<std::mutex> lock(mu);
    idle_cv.wait(lock, [this] { return !idle.empty(); });
    std::unique_ptr<runtime::Worker> w = std::move(idle.back());
    idle.pop_back();
    return w;
  }

  void Release(std::unique_ptr<runtime::Worker> w) {
    {
      std::lock_guard<std::mutex> lock(mu);
      idle.push_back(std::move(w));  // a dead worker comes back as a slot to restart
    }
    idle_cv.notify_one();
  }
};

Result<Model> Model::Load(const std::string& uri, const LoadOptions& options) {
  if (options.workers < 1) return Status::InvalidArgument("workers must be at least 1");
  PYFUNC_ASSIGN_OR_RETURN(std::string path, ResolveModelUri(uri));
  PYFUNC_ASSIGN_OR_RETURN(ModelSpec spec, ModelSpec::Load(path));
  PYFUNC_RETURN_IF_ERROR(spec.python_function().status());
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
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int threads = options.threads_per_worker > 0 ? options.threads_per_worker
                                                     : std::max(1, cores / options.workers);
  for (const char* name : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                           "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"}) {
    const std::string prefix = std::string(name) + "=";
    bool set = false;
    for (const std::string& e : w.env) set = set || e.compare(0, prefix.size(), prefix) == 0;
    if (!set) w.env.push_back(prefix + std::to_string(threads));
  }
  w.script = script_dir + "/_worker.py";
  w.model_root = path;
  w.mlmodel_json = ToJson(spec.document());
  w.model_config_json = ToJson(options.model_config);
  w.load_timeout = options.load_timeout;
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
    impl->idle.push_back(std::move(worker).value());
  }
  return Model(std::move(impl));
}

Result<Prediction> Model::Predict(const Table& input, const Value& params, const PredictOptions& options) const {
  Impl& impl = *impl_;
  std::unique_ptr<runtime::Worker> worker = impl.Acquire();
  if (!worker || !worker->alive()) {
    // Replace a worker that died or timed out on an earlier call.
    worker.reset();
    Result<std::unique_ptr<runtime::Worker>> fresh = runtime::Worker::Start(impl.worker_options);
    if (!fresh.ok()) {
      impl.Release(nullptr);
      return fresh.status().WithContext("restarting a worker");
    }
    worker = std::move(fresh).value();
    std::lock_guard<std::mutex> lock(impl.mu);
    ++impl.restarts;
  }
  const std::string params_json = params.is_null() ? "" : ToJson(params);
  Result<Prediction> out =
      worker->Predict(input, params_json, impl.predict_timeout, options.busy_poll, options.input_shape);
  impl.Release(std::move(worker));
  return out;
}

const ModelSpec& Model::spec() const { return impl_->spec; }
const std::string& Model::path() const { return impl_->path; }
std::chrono::milliseconds Model::predict_timeout() const { return impl_->predict_timeout; }
const std::string& Model::environment_description() const { return impl_->env.description; }
int Model::num_workers() const { return impl_->workers; }
int64_t Model::worker_restarts() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->restarts;
}

Model::Model(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

}  // namespace pyfunc
