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
#include "format/json.h"
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

// Field `key` of a message when it is a string, else `otherwise`.
std::string StringField(const Value& message, std::string_view key, const char* otherwise = "") {
  const Value* v = message.Find(key);
  return v != nullptr && v->is_string() ? v->as_string() : std::string(otherwise);
}

// Field `key` of a message when it is a non-negative integer, else -1.
int64_t SizeField(const Value& message, std::string_view key) {
  const Value* v = message.Find(key);
  return v != nullptr && v->is_int() && v->as_int() >= 0 ? v->as_int() : -1;
}

// A worker's {"op": "error"} as a Status: its "kind" says whether the model's signature
// refused the input ("schema") or the params ("params"), with MLflow's message, the
// request could not be made into the model's input ("input"), or the loader failed
// ("load"); any other exception of the model is a ModelError. Load and model errors
// read "<Python type>: <message>".
Status ErrorOfWorker(const Value& reply) {
  const std::string kind = StringField(reply, "kind");
  std::string message = StringField(reply, "message");
  if (kind == "schema") return Status::SchemaMismatch(std::move(message));
  if (kind == "params") return Status::InvalidParams(std::move(message));
  if (kind == "load") return Status::LoadFailed(StringField(reply, "type", "Error") + ": " + message);
  if (kind == "input") return Status::InvalidArgument(std::move(message));
  return Status::ModelError(StringField(reply, "type", "Error") + ": " + message);
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
  spawn.argv = {options.python,         options.script, "--fd",
                std::to_string(fds[1]), "--protocol",   std::to_string(kWorkerProtocol)};
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
  PYFUNC_ASSIGN_OR_RETURN(Value hello, w->Receive(deadline, "starting"));
  if (StringField(hello, "op") == "error" && StringField(hello, "type") == "MissingDependency") {
    w->Kill();
    return Status::NotFound(
        fmt::format("the Python at {} cannot run the model's worker ({}): install numpy and pandas into it, or choose "
                    "another interpreter with PYFUNC_PYTHON, or let pyfunc build one with --env-manager virtualenv",
                    options.python, StringField(hello, "message")));
  }
  if (StringField(hello, "op") != "hello" || StringField(hello, "magic") != kMagic ||
      SizeField(hello, "protocol") != kWorkerProtocol) {
    w->Kill();
    return Status::Unavailable("worker " + std::to_string(w->pid()) + " answered the handshake with " + ToJson(hello) +
                               "; expected protocol " + std::to_string(kWorkerProtocol));
  }
  w->python_version_ = StringField(hello, "python");
  w->pandas_version_ = StringField(hello, "pandas");
  if (options.on_started) options.on_started(w->pandas_version_);
  // The signature, parsed here once: the worker enforces it without parsing MLmodel's
  // JSON text again. A part that does not parse is left out (the worker names the error).
  Value::Map schema;
  const Value* signature = options.mlmodel.Find("signature");
  for (const char* part : {"inputs", "params"}) {
    const Value* text = signature != nullptr ? signature->Find(part) : nullptr;
    if (text == nullptr || !text->is_string()) {
      schema.emplace_back(part, Value());
      continue;
    }
    Result<Value> parsed = json::ParseValue(text->as_string());
    if (parsed.ok() && parsed->is_list()) schema.emplace_back(part, std::move(parsed).value());
  }
  const Value load(Value::Map{{"op", "load"},
                              {"model_root", options.model_root},
                              {"mlmodel", options.mlmodel},
                              {"schema", Value(std::move(schema))},
                              {"model_config", options.model_config}});
  PYFUNC_RETURN_IF_ERROR(w->Send(load));
  PYFUNC_ASSIGN_OR_RETURN(Value loaded, w->Receive(deadline, "loading the model"));
  if (StringField(loaded, "op") == "error") {
    w->Kill();
    return ErrorOfWorker(loaded);
  }
  if (StringField(loaded, "op") != "loaded") {
    w->Kill();
    return Status::Unavailable("worker sent " + ToJson(loaded) + " instead of 'loaded'");
  }
  PYFUNC_RETURN_IF_ERROR(w->Map(kMinMapping));
  PYFUNC_ASSIGN_OR_RETURN(Value mapped, w->Receive(deadline, "mapping shared memory"));
  if (StringField(mapped, "op") != "mapped") {
    w->Kill();
    return Status::Unavailable("worker sent " + ToJson(mapped) + " instead of 'mapped'");
  }
  return w;
}

Worker::~Worker() {
  if (alive_ && sock_ >= 0) {
    (void)Send(Value(Value::Map{{"op", "exit"}}));
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

Status Worker::Send(const Value& message, int fd) { return SendText(ToJson(message), fd); }

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

Result<Value> Worker::Receive(Clock::time_point deadline, const char* doing, std::chrono::microseconds busy_poll) {
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
      for (struct pollfd q = {sock_, POLLIN, 0}; ::poll(&q, 1, 0) == 0 && Clock::now() < until;) {}
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
    Result<Value> parsed = Status::Internal("unparsed");
    if (message.empty()) {
      parsed = json::ParseValue(std::string_view(buf.data(), static_cast<size_t>(n)));
    } else {
      message.append(buf.data(), n);
      parsed = json::ParseValue(message);
    }
    if (!parsed.ok() || !parsed->is_map()) {
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
  PYFUNC_RETURN_IF_ERROR(Send(Value(Value::Map{{"op", "map"}, {"size", static_cast<int64_t>(size)}}), shm->fd()));
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
    PYFUNC_ASSIGN_OR_RETURN(Value mapped, Receive(deadline, "mapping shared memory"));
    if (StringField(mapped, "op") != "mapped") {
      Kill();
      return Status::Unavailable("worker sent " + ToJson(mapped) + " instead of 'mapped'");
    }
  }
  EncodeFrame(input, static_cast<uint32_t>(options.input_shape), shm_->data());
  const uint64_t seq = ++seq_;
  Value::Map request{{"op", "predict"},
                     {"seq", static_cast<int64_t>(seq)},
                     {"offset", 0},
                     {"size", static_cast<int64_t>(in_size)},
                     {"out_offset", static_cast<int64_t>(out_offset)}};
  if (busy_poll.count() > 0) request.emplace_back("busy_poll_us", static_cast<int64_t>(busy_poll.count()));
  if (options.exact_types) request.emplace_back("exact", true);
  // The params are already JSON text, written once per batch: spliced in as they are.
  std::string text = ToJson(Value(std::move(request)));
  text.pop_back();  // the closing brace
  text += ", \"params\": ";
  text += params_json.empty() ? "null" : params_json;
  text += '}';
  PYFUNC_RETURN_IF_ERROR(SendText(text));
  while (true) {
    PYFUNC_ASSIGN_OR_RETURN(Value reply, Receive(deadline, "predicting", busy_poll));
    const std::string op = StringField(reply, "op");
    if (SizeField(reply, "seq") != static_cast<int64_t>(seq)) {
      Kill();
      const Value* got = reply.Find("seq");
      return Status::Unavailable("worker answered request " + (got != nullptr ? ToJson(*got) : "null") +
                                 " while request " + std::to_string(seq) + " was in flight");
    }
    if (op == "grow") {
      const int64_t need = SizeField(reply, "need");
      if (need < 0 || static_cast<uint64_t>(need) > (uint64_t{1} << 40)) {
        Kill();
        return Status::Unavailable("worker asked for " + ToJson(reply) + " of shared memory");
      }
      PYFUNC_RETURN_IF_ERROR(Map(static_cast<size_t>(need) + static_cast<size_t>(need) / 4));
      continue;
    }
    if (op == "error") return ErrorOfWorker(reply);
    if (op != "result") {
      Kill();
      return Status::Unavailable("worker sent '" + op + "' instead of a result");
    }
    const int64_t offset = SizeField(reply, "offset"), size = SizeField(reply, "size");
    if (offset < 0 || size < 0 || static_cast<uint64_t>(offset) > shm_->size() ||
        static_cast<uint64_t>(size) > shm_->size() - static_cast<uint64_t>(offset)) {
      Kill();
      return Status::Unavailable("worker's result lies outside shared memory");
    }
    Result<Prediction> out = DecodeFrame(shm_->data() + offset, size);
    if (!out.ok()) Kill();
    return out;
  }
}

}  // namespace pyfunc::runtime
