#include "runtime/subprocess.h"
#include "base/posix_error.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace pyfunc::runtime {
namespace {

std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

bool IsExecutable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

}  // namespace

std::string FindProgram(const std::string& program) {
  if (program.empty()) return "";
  if (program.find('/') != std::string::npos) return IsExecutable(program) ? program : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + program;
    if (IsExecutable(candidate)) return candidate;
    start = end + 1;
  }
  return "";
}

Result<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return Status::InvalidArgument("spawn: empty argv");
  const std::string program = FindProgram(options.argv[0]);
  if (program.empty()) return Status::NotFound(options.argv[0] + ": program not found");

  // Everything the child touches is prepared before fork.
  std::vector<char*> argv = CStrings(options.argv);
  std::vector<char*> envp = CStrings(options.env);
  char** env = options.env.empty() ? environ : envp.data();
  int report[2];  // the child writes errno here if exec fails; closed by a successful exec
  if (::pipe2(report, O_CLOEXEC) != 0) return base::PosixError("pipe");

  const pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(report[0]);
    ::close(report[1]);
    return base::PosixError("fork", err);
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(options.stdin_fd >= 0 ? options.stdin_fd : devnull, 0);
    if (options.stdout_fd >= 0) ::dup2(options.stdout_fd, 1);
    if (options.stderr_fd >= 0) ::dup2(options.stderr_fd, 2);
    // Close-on-exec for everything above stderr, then keep what was asked for.
    ::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
    for (int fd : options.keep_fds) ::fcntl(fd, F_SETFD, 0);
    ::fcntl(report[1], F_SETFD, FD_CLOEXEC);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) {
      int err = errno;
      (void)!::write(report[1], &err, sizeof(err));
      ::_exit(127);
    }
    ::execve(program.c_str(), argv.data(), env);
    int err = errno;
    (void)!::write(report[1], &err, sizeof(err));
    ::_exit(127);
  }
  ::close(report[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(report[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  auto child = std::unique_ptr<ChildProcess>(new ChildProcess(pid));
  if (n == static_cast<ssize_t>(sizeof(child_errno))) {
    child->Wait();
    return Status::NotFound(program + ": cannot execute: " + std::strerror(child_errno));
  }
  return child;
}

ChildProcess::~ChildProcess() {
  if (!exited_) {
    ::kill(pid_, SIGKILL);
    Wait();
  }
}

bool ChildProcess::Poll() {
  if (exited_) return true;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exited_ = true;
    wait_status_ = status;
  }
  return exited_;
}

int ChildProcess::Wait() {
  while (!exited_) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, 0);
    if (r == pid_) {
      exited_ = true;
      wait_status_ = status;
    } else if (r < 0 && errno != EINTR) {
      exited_ = true;  // not our child any more (ECHILD): nothing left to reap
    }
  }
  return wait_status_;
}

void ChildProcess::Kill(int signal) {
  if (!Poll()) ::kill(pid_, signal);
}

int ChildProcess::exit_code() const {
  if (!exited_) return -1;
  if (WIFEXITED(wait_status_)) return WEXITSTATUS(wait_status_);
  if (WIFSIGNALED(wait_status_)) return 128 + WTERMSIG(wait_status_);
  return -1;
}

std::string ChildProcess::ExitDescription() const {
  if (!exited_) return "running";
  if (WIFEXITED(wait_status_)) return "exited with status " + std::to_string(WEXITSTATUS(wait_status_));
  if (WIFSIGNALED(wait_status_)) {
    int sig = WTERMSIG(wait_status_);
    return "killed by signal " + std::to_string(sig) + " (" + ::strsignal(sig) + ")";
  }
  return "stopped";
}

Result<int> RunProcess(const SpawnOptions& options) {
  PYFUNC_ASSIGN_OR_RETURN(std::unique_ptr<ChildProcess> child, ChildProcess::Spawn(options));
  child->Wait();
  return child->exit_code();
}

Result<std::pair<int, std::string>> RunCapture(SpawnOptions options) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return base::PosixError("pipe");
  options.stdout_fd = out[1];
  Result<std::unique_ptr<ChildProcess>> child = ChildProcess::Spawn(options);
  ::close(out[1]);
  if (!child.ok()) {
    ::close(out[0]);
    return child.status();
  }
  std::string text;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(out[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  (*child)->Wait();
  return std::make_pair((*child)->exit_code(), std::move(text));
}

}  // namespace pyfunc::runtime
