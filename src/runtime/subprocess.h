// ChildProcess: a process started by fork+exec, owned as an RAII object.
//
// The destructor kills (SIGKILL) and reaps a child that is still running, so no
// process outlives its owner. Death is noticed through waitpid, never kill(pid, 0).
// Spawning is safe in a multithreaded program: everything the child needs is
// prepared before fork, and the child only makes async-signal-safe calls before exec.
#ifndef PYFUNC_SRC_RUNTIME_SUBPROCESS_H_
#define PYFUNC_SRC_RUNTIME_SUBPROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pyfunc/status.h"

namespace pyfunc::runtime {

struct SpawnOptions {
  // argv[0] is the program: a path, or a name looked up in PATH.
  std::vector<std::string> argv;
  // The child's whole environment as "NAME=value"; empty inherits the parent's.
  std::vector<std::string> env;
  // Working directory of the child; empty keeps the parent's.
  std::string cwd;
  // Descriptors the child inherits under the same numbers. All others are closed.
  std::vector<int> keep_fds;
  // Where the child's stdout/stderr go; -1 inherits the parent's.
  int stdout_fd = -1;
  int stderr_fd = -1;
  // stdin: /dev/null unless a descriptor is given.
  int stdin_fd = -1;
};

class ChildProcess {
 public:
  // NotFound if the program cannot be found or executed; IOError if fork fails.
  static Result<std::unique_ptr<ChildProcess>> Spawn(const SpawnOptions& options);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Reaps the child if it has exited; true once it has.
  bool Poll();
  // Blocks until the child exits; returns its wait status.
  int Wait();
  // Sends `signal` if the child is still running.
  void Kill(int signal);
  bool exited() const { return exited_; }
  // "exited with status 3", "killed by signal 9 (Killed)", or "running".
  std::string ExitDescription() const;
  int exit_code() const;  // the exit status, 128+signal when killed, -1 while running

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  bool exited_ = false;
  int wait_status_ = 0;
};

// Runs a program to completion; its output goes to `log_fd` (or is inherited when -1).
// Returns the exit code (non-zero is not an error here).
Result<int> RunProcess(const SpawnOptions& options);

// Runs a program to completion and returns (exit code, stdout). stderr is inherited
// unless options.stderr_fd says otherwise.
Result<std::pair<int, std::string>> RunCapture(SpawnOptions options);

// The absolute path of `program` found in PATH (or `program` itself if it has a '/').
// Empty when not found.
std::string FindProgram(const std::string& program);

}  // namespace pyfunc::runtime

#endif  // PYFUNC_SRC_RUNTIME_SUBPROCESS_H_
