#include "runtime/worker.h"

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/core.h>

#include "base/posix_error.h"
#include "runtime/frame.h"

namespace pyfunc::runtime {
namespace {

// A control message travels in packets of at most kPacketPayload bytes: far below the
// socket's largest datagram (net.core.wmem_default, ~208 KiB), which a model's
// MLmodel or exception text can exceed. Every packet but a message's last starts with
// kMorePackets; JSON text never holds that byte raw, so a packet without it ends the
// message.
constexpr size_t kPacketPayload = 32 * 1024;
constexpr char kMorePackets = '\x01';
// The longest control message accepted from a worker (its errors are cut far shorter).
constexpr size_t kMaxMessage = 64 << 20;
constexpr size_t kMinMapping = 1 << 20;
constexpr const char* kMagic = "pyfunc-worker";

size_t Align64(size_t n) { return (n + 63) / 64 * 64; }

// True when the JSON text nests arrays and objects at most `limit` deep (strings
// skipped), so that parsing it cannot recurse further than that.
bool NestsAtMost(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

// A worker's {"op": "error"} as a Status: its "kind" says whether the model's signature
// refused the input ("schema") or the params ("params"), with MLflow's message, the
// request could not be made into the model's input ("input"), or the loader failed
// ("load"); any other exception of the model is a ModelError. Load and model errors
// read "<Python type>: <message>".
Status ErrorOfWorker(const nlohmann::json& reply) {
  const std::string kind = reply.value("kind", "");
  std::string message = reply.value("message", "");
  if (kind == "schema") return Status::SchemaMismatch(std::move(message));
  if (kind == "params") return Status::InvalidParams(std::move(message));
  if (kind == "load") return Status::LoadFailed(reply.value("type", "Error") + ": " + message);
  if (kind == "input") return Status::InvalidArgument(std::move(message));
  return Status::ModelError(reply.value("type", "Error") + ": " + message);
}

}  // namespace

Result<std::unique_ptr<SharedMemory>> SharedMemory::Create(size_t size) {
  int fd = ::memfd_create("pyfunc-frames", MFD_CLOEXEC);
  if (fd < 0) return base::PosixError("memfd_create");
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int err = errno;
    ::close(fd);
    return base::PosixError("shared memory of " + std::to_string(size) + " bytes", err);
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    ::close(fd);
    return base::PosixError("mmap", err);
  }
  return std::unique_ptr<SharedMemory>(new SharedMemory(fd, static_cast<uint8_t*>(p), size));
}

SharedMemory::~SharedMemory() {
  ::munmap(data_, size_);
  ::close(fd_);
}

Result<std::unique_ptr<Worker>> Worker::Start(const WorkerOptions& options) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return base::PosixError("socketpair");
  }
  SpawnOptions spawn;
  spawn.argv = {options.python, options.script, "--fd", std::to_string(fds[1]), "--protocol",
                std::to_string(kWorkerProtocol)};
  spawn.env = options.env;
  spawn.keep_fds = {fds[1]};
  Result<std::unique_ptr<ChildProcess>> child = ChildProcess::Spawn(spawn);
  ::close(fds[1]);
  if (!child.ok()) {
    ::close(fds[0]);
    return child.status().WithContext("starting a worker");
  }
  std::unique_ptr<Worker> w(new Worker());
  w->child_ = std::move(child).value();
  w->sock_ = fds[0];
  w->alive_ = true;

  const auto deadline = Clock::now() + options.load_timeout;
  PYFUNC_ASSIGN_OR_RETURN(nlohmann::json hello, w->Receive(deadline, "starting"));
  if (hello.value("op", "") == "error" && hello.value("type", "") == "MissingDependency") {
    w->Kill();
    return Status::NotFound(fmt::format(
        "the Python at {} cannot run the model's worker ({}): install numpy and pandas into it, or choose "
        "another interpreter with PYFUNC_PYTHON, or let pyfunc build one with --env-manager virtualenv",
        options.python, hello.value("message", "")));
  }
  if (hello.value("op", "") != "hello" || hello.value("magic", "") != kMagic ||
      hello.value("protocol", -1) != kWorkerProtocol) {
    w->Kill();
    return Status::Unavailable("worker " + std::to_string(w->pid()) + " answered the handshake with " +
                               hello.dump() + "; expected protocol " + std::to_string(kWorkerProtocol));
  }
  w->python_version_ = hello.value("python", "");
  nlohmann::json load = {{"op", "load"}, {"model_root", options.model_root}};
  load["mlmodel"] = nlohmann::json::parse(options.mlmodel_json);
  // The signature, parsed here once: the worker enforces it without parsing MLmodel's
  // JSON text again. A part that does not parse is left out (the worker names the error).
  nlohmann::json schema = nlohmann::json::object();
  const nlohmann::json& signature = load["mlmodel"].contains("signature") ? load["mlmodel"]["signature"]
                                                                          : nlohmann::json();
  for (const char* part : {"inputs", "params"}) {
    if (!signature.is_object() || !signature.contains(part) || !signature[part].is_string()) {
      schema[part] = nullptr;
      continue;
    }
    const std::string& text = signature[part].get_ref<const std::string&>();
    if (!NestsAtMost(text, 64)) continue;
    nlohmann::json parsed = nlohmann::json::parse(text, nullptr, false);
    if (parsed.is_array()) schema[part] = std::move(parsed);
  }
  load["schema"] = std::move(schema);
  load["model_config"] = nlohmann::json::parse(options.model_config_json);
  PYFUNC_RETURN_IF_ERROR(w->Send(load));
  PYFUNC_ASSIGN_OR_RETURN(nlohmann::json loaded, w->Receive(deadline, "loading the model"));
  if (loaded.value("op", "") == "error") {
    w->Kill();
    return ErrorOfWorker(loaded);
  }
  if (loaded.value("op", "") != "loaded") {
    w->Kill();
    return Status::Unavailable("worker sent " + loaded.dump() + " instead of 'loaded'");
  }
  PYFUNC_RETURN_IF_ERROR(w->Map(kMinMapping));
  PYFUNC_ASSIGN_OR_RETURN(nlohmann::json mapped, w->Receive(deadline, "mapping shared memory"));
  if (mapped.value("op", "") != "mapped") {
    w->Kill();
    return Status::Unavailable("worker sent " + mapped.dump() + " instead of 'mapped'");
  }
  return w;
}

Worker::~Worker() {
  if (alive_ && sock_ >= 0) {
    (void)Send({{"op", "exit"}});
  }
  if (sock_ >= 0) ::close(sock_);  // the worker also exits when its socket closes
  if (child_ && !child_->exited()) {
    // Give a polite exit a moment, then make sure.
    for (int i = 0; i < 50 && !child_->Poll(); ++i) ::usleep(2000);
    child_.reset();  // kills and reaps if still running
  }
}

void Worker::Kill() {
  alive_ = false;
  if (child_) {
    child_->Kill(SIGKILL);
    child_->Wait();
  }
}

Status Worker::Died(const char* doing) {
  alive_ = false;
  std::string how = "closed its channel";
  if (child_) {
    // The socket closed: the process is exiting; reap it to say how it ended.
    for (int i = 0; i < 500 && !child_->Poll(); ++i) ::usleep(1000);
    if (!child_->Poll()) {
      child_->Kill(SIGKILL);
      child_->Wait();
    }
    how = child_->ExitDescription();
  }
  return Status::Unavailable("worker " + std::to_string(pid()) + " " + how + " while " + doing);
}

Status Worker::Send(const nlohmann::json& message, int fd) {
  return SendText(message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), fd);
}

Status Worker::SendText(const std::string& data, int fd) {
  size_t sent = 0;
  std::string packet;
  do {
    const size_t n = std::min(kPacketPayload, data.size() - sent);
    const bool last = sent + n == data.size();
    struct iovec iov[2];
    int iovs = 0;
    if (!last) iov[iovs++] = {const_cast<char*>(&kMorePackets), 1};
    iov[iovs++] = {const_cast<char*>(data.data() + sent), n};
    struct msghdr msg = {};
    msg.msg_iov = iov;
    msg.msg_iovlen = iovs;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (fd >= 0 && sent == 0) {  // descriptors travel with a message's first packet
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    while (::sendmsg(sock_, &msg, MSG_NOSIGNAL) < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE || errno == ECONNRESET) return Died("receiving a message");
      const int err = errno;
      Kill();  // a message cut in the middle leaves the channel unusable
      return base::PosixError("sending to worker", err);
    }
    sent += n;
  } while (sent < data.size());
  return Status::OK();
}

Result<nlohmann::json> Worker::Receive(Clock::time_point deadline, const char* doing,
                                       std::chrono::microseconds busy_poll) {
  std::string& buf = recv_buf_;
  if (buf.size() < kPacketPayload + 1) buf.resize(kPacketPayload + 1);
  std::string message;  // the packets of a message that came in several
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      Kill();
      return Status::DeadlineExceeded("worker " + std::to_string(pid()) + " timed out while " + doing +
                                      "; it was stopped");
    }
    if (busy_poll.count() > 0) {
      // Poll without sleeping first: the reply of a short predict comes sooner than a
      // sleeping thread would be woken.
      const auto until = std::min(deadline, Clock::now() + busy_poll);
      busy_poll = std::chrono::microseconds(0);
      for (struct pollfd q = {sock_, POLLIN, 0}; ::poll(&q, 1, 0) == 0 && Clock::now() < until;) {
      }
    }
    struct pollfd p = {sock_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (r < 0 && errno != EINTR) return base::PosixError("poll");
    if (r <= 0) continue;
    ssize_t n = ::recv(sock_, buf.data(), buf.size(), MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ECONNRESET) return Died(doing);
      return base::PosixError("receiving from worker");
    }
    if (n == 0) return Died(doing);
    if (static_cast<size_t>(n) > buf.size() || message.size() + n > kMaxMessage) {
      Kill();
      return Status::Unavailable("worker sent an oversized message while " + std::string(doing));
    }
    if (buf[0] == kMorePackets) {
      message.append(buf.data() + 1, n - 1);
      continue;
    }
    nlohmann::json parsed;
    if (message.empty()) {
      parsed = nlohmann::json::parse(buf.begin(), buf.begin() + n, nullptr, false);
    } else {
      message.append(buf.data(), n);
      parsed = nlohmann::json::parse(message, nullptr, false);
    }
    if (parsed.is_discarded() || !parsed.is_object()) {
      Kill();
      return Status::Unavailable("worker sent a malformed message while " + std::string(doing));
    }
    return parsed;
  }
}

bool Worker::CheckIdle() {
  if (!alive_) return false;
  struct pollfd p = {sock_, POLLIN, 0};
  if (::poll(&p, 1, 0) == 0) return true;
  // An idle worker has nothing to say: its socket closed (it died) or it broke the protocol.
  (void)Died("idle");
  return false;
}

Status Worker::Map(size_t size) {
  size = std::max(Align64(size), kMinMapping);
  PYFUNC_ASSIGN_OR_RETURN(std::unique_ptr<SharedMemory> shm, SharedMemory::Create(size));
  PYFUNC_RETURN_IF_ERROR(Send({{"op", "map"}, {"size", size}}, shm->fd()));
  shm_ = std::move(shm);
  return Status::OK();
}

Result<Prediction> Worker::Predict(const Table& input, const std::string& params_json,
                                   std::chrono::milliseconds timeout, const PredictOptions& options) {
  const std::chrono::microseconds busy_poll = options.busy_poll;
  if (!alive_) return Status::Unavailable("worker " + std::to_string(pid()) + " is not running");
  const auto deadline = Clock::now() + timeout;
  const size_t in_size = FrameSize(input);
  const size_t out_offset = Align64(in_size);
  // Room for the input and a result of about the same size; the worker asks for more.
  const size_t want = out_offset + std::max<size_t>(in_size, 64 * 1024);
  if (shm_->size() < want) {
    PYFUNC_RETURN_IF_ERROR(Map(want + want / 2));
    PYFUNC_ASSIGN_OR_RETURN(nlohmann::json mapped, Receive(deadline, "mapping shared memory"));
    if (mapped.value("op", "") != "mapped") {
      Kill();
      return Status::Unavailable("worker sent " + mapped.dump() + " instead of 'mapped'");
    }
  }
  EncodeFrame(input, static_cast<uint32_t>(options.input_shape), shm_->data());
  const uint64_t seq = ++seq_;
  nlohmann::json request = {{"op", "predict"}, {"seq", seq}, {"offset", 0}, {"size", in_size}, {"out_offset", out_offset}};
  if (busy_poll.count() > 0) request["busy_poll_us"] = busy_poll.count();
  if (options.exact_types) request["exact"] = true;
  // The params are already JSON text (Python's dialect: NaN allowed): spliced in as they are.
  std::string text = request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.pop_back();  // the closing brace
  text += ",\"params\":";
  text += params_json.empty() ? "null" : params_json;
  text += '}';
  PYFUNC_RETURN_IF_ERROR(SendText(text));
  while (true) {
    PYFUNC_ASSIGN_OR_RETURN(nlohmann::json reply, Receive(deadline, "predicting", busy_poll));
    const std::string op = reply.value("op", "");
    if (reply.value("seq", uint64_t{0}) != seq) {
      Kill();
      return Status::Unavailable("worker answered request " + reply.value("seq", nlohmann::json()).dump() +
                                 " while request " + std::to_string(seq) + " was in flight");
    }
    if (op == "grow") {
      PYFUNC_RETURN_IF_ERROR(Map(reply.value("need", size_t{0}) + reply.value("need", size_t{0}) / 4));
      continue;
    }
    if (op == "error") return ErrorOfWorker(reply);
    if (op != "result") {
      Kill();
      return Status::Unavailable("worker sent '" + op + "' instead of a result");
    }
    const uint64_t offset = reply.value("offset", uint64_t{0}), size = reply.value("size", uint64_t{0});
    if (offset > shm_->size() || size > shm_->size() - offset) {
      Kill();
      return Status::Unavailable("worker's result lies outside shared memory");
    }
    Result<Prediction> out = DecodeFrame(shm_->data() + offset, size);
    if (!out.ok()) Kill();
    return out;
  }
}

}  // namespace pyfunc::runtime
