// Worker: one Python worker process running one model, seen from the parent.
//
// The protocol (messages, frame layout) is specified in docs/worker-protocol.md.
// A Worker is used by one thread at a time (its Model hands it to one call at a time); it is not
// thread-safe. After any failure other than the model raising, the worker is dead:
// its process has been killed and reaped and alive() is false.
#ifndef PYFUNC_SRC_RUNTIME_WORKER_H_
#define PYFUNC_SRC_RUNTIME_WORKER_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pyfunc/model.h"
#include "pyfunc/prediction.h"
#include "pyfunc/status.h"
#include "pyfunc/table.h"
#include "pyfunc/value.h"
#include "runtime/subprocess.h"

namespace pyfunc::runtime {

inline constexpr int kWorkerProtocol = 2;

struct WorkerOptions {
  std::string python;            // interpreter of the model's environment
  std::vector<std::string> env;  // the worker's whole environment ("NAME=value")
  std::string script;            // path of _worker.py
  std::string model_root;        // the model directory
  Value mlmodel;                 // the MLmodel document
  Value model_config;            // load_model's model_config (null when none)
  std::chrono::milliseconds load_timeout{std::chrono::minutes(5)};
  // Called once the worker has imported pandas, before it loads the model, with that
  // pandas' version (LoadOptions::on_worker_started).
  std::function<void(const std::string& pandas_version)> on_started;
};

// A memfd mapped read-write in this process; shared with the worker by descriptor.
class SharedMemory {
 public:
  static Result<std::unique_ptr<SharedMemory>> Create(size_t size);
  ~SharedMemory();
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  int fd() const { return fd_; }

 private:
  SharedMemory(int fd, uint8_t* data, size_t size) : fd_(fd), data_(data), size_(size) {}
  int fd_;
  uint8_t* data_;
  size_t size_;
};

class Worker {
 public:
  // Spawns the process, checks its handshake and loads the model.
  // NotFound when the interpreter is missing; ModelError when loading raised;
  // DeadlineExceeded when loading took longer than load_timeout; Unavailable when the
  // process died or spoke an unexpected protocol.
  static Result<std::unique_ptr<Worker>> Start(const WorkerOptions& options);
  ~Worker();

  // Scores one batch. ModelError when predict raised (the worker stays alive);
  // DeadlineExceeded when it took longer than `timeout` (the worker is killed);
  // Unavailable when the worker died.
  // `options`: busy polling, the input's shape and whether its types are exact (see
  // PredictOptions in model.h).
  Result<Prediction> Predict(const Table& input, const std::string& params_json, std::chrono::milliseconds timeout,
                             const PredictOptions& options = {});

  bool alive() const { return alive_; }
  // The control socket: readable or hung up while idle only when the worker died.
  int socket_fd() const { return sock_; }
  // For a worker no call is using: true while its process runs and is silent; false,
  // with the process killed and reaped, once it died or sent a message unasked.
  bool CheckIdle();
  pid_t pid() const { return child_ ? child_->pid() : -1; }
  const std::string& python_version() const { return python_version_; }
  const std::string& pandas_version() const { return pandas_version_; }
  // Kills the process (SIGKILL) and reaps it.
  void Kill();

 private:
  Worker() = default;
  using Clock = std::chrono::steady_clock;
  Status Send(const Value& message, int fd = -1);
  Status SendText(const std::string& data, int fd = -1);  // one message: a JSON object's text
  // The next message, a JSON object.
  Result<Value> Receive(Clock::time_point deadline, const char* doing,
                        std::chrono::microseconds busy_poll = std::chrono::microseconds(0));
  Status Map(size_t size);
  Status Died(const char* doing);

  std::unique_ptr<ChildProcess> child_;
  int sock_ = -1;
  std::unique_ptr<SharedMemory> shm_;
  uint64_t seq_ = 0;
  bool alive_ = false;
  std::string python_version_;
  std::string pandas_version_;
  std::string recv_buf_;
};

}  // namespace pyfunc::runtime

#endif  // PYFUNC_SRC_RUNTIME_WORKER_H_
