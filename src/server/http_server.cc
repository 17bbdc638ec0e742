// The HTTP/1.1 front of the scoring server (http_server.h).
//
// Parsing is two passes over each header, both bounded: a byte scan of our own that
// enforces the line and header limits as bytes arrive and refuses what RFC 9112 lets a
// server refuse but Beast accepts (obs-fold, bare CR/LF, control characters), then
// Beast's request_parser for the request line, the fields and the body framing
// (Content-Length lists, chunked decoding, body_limit), then checks on the parsed
// fields (Transfer-Encoding other than chunked, Host). Beast gets only a header that
// passed the scan, so its own leniencies never decide how a request is framed.
#include "server/http_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <fmt/core.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

namespace pyfunc::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr size_t kInitialBuffer = 16 * 1024;
constexpr size_t kBodyBuffer = 256 * 1024;  // reads while a large body streams in
constexpr size_t kMinRead = 4 * 1024;
constexpr size_t kKeptBuffer = 64 * 1024;  // larger buffers are freed between requests
// Unconsumed bytes allowed while Beast waits for the end of a chunk-size line (a
// chunk extension, or a trailer field, cannot grow without bound).
constexpr size_t kMaxChunkLine = 16 * 1024;
constexpr auto kLingerTime = std::chrono::seconds(2);

// A request body read into a std::string that grows as bytes arrive. Beast's
// string_body reserves the declared Content-Length up front, so a client declaring
// 100 MB and sending nothing would make the server allocate 100 MB per connection.
struct GrowingBody {
  using value_type = std::string;
  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(bhttp::header<isRequest, Fields>&, value_type& body) : body_(body) {}
    void init(const boost::optional<std::uint64_t>& length, error_code& ec) {
      if (length) body_.reserve(static_cast<size_t>(std::min<std::uint64_t>(*length, kInitialReserve)));
      ec = {};
    }
    template <class ConstBufferSequence>
    size_t put(const ConstBufferSequence& buffers, error_code& ec) {
      size_t n = 0;
      for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
        const asio::const_buffer b = *it;
        body_.append(static_cast<const char*>(b.data()), b.size());
        n += b.size();
      }
      ec = {};
      return n;
    }
    void finish(error_code& ec) { ec = {}; }

   private:
    static constexpr std::uint64_t kInitialReserve = 64 * 1024;
    value_type& body_;
  };
};

const char* Reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

bool IEquals(std::string_view a, std::string_view b) {
  return beast::iequals(beast::string_view(a.data(), a.size()), beast::string_view(b.data(), b.size()));
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The path of a request target, split into segments and percent-decoded one by one
// (so that an encoded '/' stays inside its segment).
std::vector<std::string> PathSegments(std::string_view target) {
  if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0) {  // absolute-form
    const size_t scheme = target.find("://") + 3;
    const size_t slash = target.find('/', scheme);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  target = target.substr(0, target.find_first_of("?#"));
  std::vector<std::string> out;
  if (target.empty() || target[0] != '/') {
    out.emplace_back(target);
    return out;
  }
  size_t start = 1;
  for (;;) {
    const size_t slash = target.find('/', start);
    const std::string_view raw =
        target.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    std::string seg;
    seg.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      int hi, lo;
      if (raw[i] == '%' && i + 2 < raw.size() && (hi = HexDigit(raw[i + 1])) >= 0 && (lo = HexDigit(raw[i + 2])) >= 0) {
        seg.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
      } else {
        seg.push_back(raw[i]);
      }
    }
    out.push_back(std::move(seg));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

std::string JoinPath(const std::vector<std::string>& segments) {
  std::string p;
  for (const std::string& s : segments) p += "/" + s;
  return p;
}

}  // namespace

std::string_view HttpRequest::Header(std::string_view name) const {
  for (const auto& [n, v] : headers)
    if (IEquals(n, name)) return v;
  return {};
}

// --- routing ------------------------------------------------------------------------

void HttpRouter::Handle(std::string method, std::string_view pattern, HttpHandler handler) {
  Route r;
  r.method = std::move(method);
  for (std::string& s : PathSegments(pattern)) {
    r.segments.push_back(s.size() > 2 && s.front() == '{' && s.back() == '}' ? "{}" : std::move(s));
  }
  r.handler = std::move(handler);
  routes_.push_back(std::move(r));
}

HttpRouter::Match HttpRouter::Find(std::string_view method, std::string_view path, const HttpHandler** handler,
                                   std::vector<std::string>* params, std::string* allow) const {
  const std::vector<std::string> segments = PathSegments(path);
  const std::string_view want = method == "HEAD" ? std::string_view("GET") : method;
  bool path_known = false;
  allow->clear();
  for (const Route& r : routes_) {
    if (r.segments.size() != segments.size()) continue;
    bool match = true;
    for (size_t i = 0; i < segments.size() && match; ++i) {
      match = r.segments[i] == "{}" ? !segments[i].empty() : r.segments[i] == segments[i];
    }
    if (!match) continue;
    if (r.method != want) {
      path_known = true;
      if (allow->find(r.method) == std::string::npos) *allow += (allow->empty() ? "" : ", ") + r.method;
      continue;
    }
    params->clear();
    for (size_t i = 0; i < segments.size(); ++i)
      if (r.segments[i] == "{}") params->push_back(segments[i]);
    *handler = &r.handler;
    return Match::kFound;
  }
  return path_known ? Match::kWrongMethod : Match::kNoRoute;
}

// --- the server ---------------------------------------------------------------------

class Connection;

class HttpServer::Impl {
 public:
  Impl(const HttpServerOptions& o, HttpRouter r, HttpHooks h)
      : options(o),
        router(std::move(r)),
        hooks(std::move(h)),
        io(std::max(1, o.threads)),
        work(asio::make_work_guard(io)),
        accept_strand(asio::make_strand(io)),
        acceptor(accept_strand),
        retry_timer(accept_strand),
        trim_timer(accept_strand) {}

  void Accept();
  void EvictLongestIdle();
  void OnAccept(const error_code& ec, tcp::socket socket);
  void Register(const std::shared_ptr<Connection>& c);
  void Unregister(Connection* c);
  void StopAccepting();
  void CloseAll();
  void ScheduleTrim();

  void Refusal(int status, std::string_view message, HttpResponse* res) const {
    res->headers.clear();
    if (hooks.refusal) {
      hooks.refusal(status, message, res);
    } else {
      res->Set(status, std::string(message) + "\n", "text/plain");
    }
    res->status = status;
  }

  const HttpServerOptions options;
  const HttpRouter router;
  const HttpHooks hooks;
  int port = 0;
  std::atomic<bool> draining{false};

  // The registry outlives the io_context's queued handlers (declared before it), since
  // destroying those handlers destroys connections, which unregister themselves.
  mutable std::mutex mu;
  std::condition_variable cv;
  std::unordered_set<Connection*> connections;  // guarded by mu
  bool accepting = true;                        // guarded by mu
  bool paused = false;                          // guarded by mu: at max_connections
  std::atomic<bool> trim_pending{false};
  bool backlog_wait = false;
  std::atomic<int> busy_threads{0};
  int thread_count = 1;  // on accept_strand: an async_wait for a waiting client

  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  asio::strand<asio::io_context::executor_type> accept_strand;  // acceptor and both timers
  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;
  asio::steady_timer trim_timer;
  std::vector<std::thread> threads;
};

// Counts a thread as busy (in a handler, or waiting for a connection's next request).
struct Busy {
  explicit Busy(HttpServer::Impl& s);
  ~Busy();
  HttpServer::Impl& s;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpServer::Impl* s, tcp::socket socket)
      : s_(*s), socket_(std::move(socket)), timer_(socket_.get_executor()) {
    error_code ec;
    const tcp::endpoint ep = socket_.remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string();
  }
  ~Connection() { s_.Unregister(this); }

  auto executor() { return socket_.get_executor(); }

  // On the strand.
  void Start() { Process(); }

  // On the strand: closes the connection if it is between requests (eviction, drain).
  void CloseIfIdle() {
    if (idle_.load() && !closed_) Close();
  }
  void Close() {
    if (closed_) return;
    closed_ = true;
    idle_ = false;
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    timer_.cancel();
  }

  bool idle() const { return idle_.load(); }
  Clock::rep idle_since() const { return idle_since_.load(); }

 private:
  enum class Phase { kHeader, kBody, kHandling, kLinger };

  struct Scan {
    int status = 0;  // a refusal, when not 0
    std::string message;
    size_t header_end = 0;  // relative to begin_, once the empty line was seen
  };

  size_t buffered() const { return end_ - begin_; }
  const char* data() const { return buf_.get() + begin_; }

  // The deadline is kept in a member and the timer re-armed only when it must fire
  // earlier than it is set to; a timer that fires early for a deadline that moved later
  // sleeps again. So a request costs no timer operation in the common case.
  void SetDeadline(Clock::time_point t) {
    deadline_ = t;
    if (t == Clock::time_point::max() || (timer_armed_ && armed_at_ <= t)) return;
    timer_armed_ = true;
    armed_at_ = t;
    const uint64_t gen = ++timer_gen_;
    timer_.expires_at(t);
    timer_.async_wait([self = shared_from_this(), gen](const error_code& ec) { self->OnTimer(ec, gen); });
  }

  void OnTimer(const error_code& ec, uint64_t gen) {
    if (ec == asio::error::operation_aborted || gen != timer_gen_ || closed_) return;
    timer_armed_ = false;
    if (deadline_ == Clock::time_point::max()) return;
    if (Clock::now() >= deadline_) return Close();  // too slow or idle too long: no answer owed
    SetDeadline(deadline_);
  }

  void ReadMore() {
    if (begin_ == end_) begin_ = end_ = 0;
    const size_t want = phase_ == Phase::kBody ? kBodyBuffer : kInitialBuffer;
    if (cap_ - end_ < kMinRead && begin_ > 0) {
      std::memmove(buf_.get(), buf_.get() + begin_, buffered());
      end_ -= begin_;
      begin_ = 0;
    }
    if (cap_ < want || cap_ - end_ < kMinRead) {
      // Never beyond what the limits allow to be pending: the header limit plus one read.
      const size_t limit = s_.options.max_header_bytes + kBodyBuffer + kMaxChunkLine;
      size_t cap = std::max({want, cap_ * 2, end_ + kMinRead});
      cap = std::min(cap, std::max(limit, end_ + kMinRead));
      auto bigger = std::make_unique<char[]>(cap);
      if (end_ > begin_) std::memcpy(bigger.get(), buf_.get() + begin_, buffered());
      end_ -= begin_;
      begin_ = 0;
      buf_ = std::move(bigger);
      cap_ = cap;
    }
    socket_.async_read_some(asio::buffer(buf_.get() + end_, cap_ - end_),
                            [self = shared_from_this()](const error_code& ec, size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(const error_code& ec, size_t n) {
    if (closed_) return;
    if (ec) return Close();  // EOF or reset: a partial request has no one to answer
    end_ += n;
    if (phase_ == Phase::kLinger) {
      begin_ = end_ = 0;  // discarded: the client is still sending what we refused
      return ReadMore();
    }
    if (phase_ == Phase::kBody) SetDeadline(Clock::now() + s_.options.io_timeout);
    Process();
  }

  void Process() {
    if (phase_ == Phase::kHeader) {
      if (!header_started_) {
        // Empty lines before a request line are ignored (RFC 9112 section 2.2).
        size_t skip = 0;
        while (skip + 1 < buffered() && data()[skip] == '\r' && data()[skip + 1] == '\n') skip += 2;
        begin_ += skip;
        if (buffered() == 0 || (buffered() == 1 && data()[0] == '\r')) {
          if (s_.draining.load()) return Close();
          idle_since_ = Clock::now().time_since_epoch().count();
          idle_ = true;
          SetDeadline(Clock::now() + s_.options.keep_alive_timeout);
          return ReadMore();
        }
        idle_ = false;
        header_started_ = true;
        SetDeadline(Clock::now() + s_.options.header_timeout);
      }
      Scan r = ScanHeader();
      if (r.status != 0) return Refuse(r.status, r.message);
      if (r.header_end == 0) return ReadMore();
      if (!ParseHeader(r.header_end)) return;
      phase_ = Phase::kBody;
      SetDeadline(Clock::now() + s_.options.io_timeout);
      if (expect_continue_ && !parser_->is_done() && buffered() == 0) {
        static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
        asio::async_write(socket_, asio::buffer(k100.data(), k100.size()),
                          [self = shared_from_this()](const error_code& ec, size_t) {
                            if (ec || self->closed_) return self->Close();
                            self->Process();
                          });
        return;
      }
    }
    // The body: Beast decodes it (Content-Length or chunked) within body_limit.
    while (!parser_->is_done()) {
      if (buffered() == 0) return ReadMore();
      error_code ec;
      const size_t n = parser_->put(asio::buffer(data(), buffered()), ec);
      begin_ += n;
      if (ec == bhttp::error::need_more) {
        if (n > 0) continue;
        if (buffered() > kMaxChunkLine) return Refuse(400, "a chunk-size line or trailer field is too long");
        return ReadMore();
      }
      if (ec == bhttp::error::body_limit) return Refuse(413, "the request body is larger than the limit");
      if (ec) return Refuse(400, fmt::format("malformed chunked body: {}", ec.message()));
    }
    Dispatch();
  }

  // The first pass over a header (see the file comment): limits and forbidden bytes,
  // resumed where the previous read stopped.
  Scan ScanHeader() {
    const HttpServerOptions& o = s_.options;
    const char* p = data();
    const size_t n = buffered();
    Scan r;
    for (size_t i = scan_; i < n; ++i) {
      const unsigned char c = static_cast<unsigned char>(p[i]);
      const size_t line_len = i - line_start_;  // bytes of this line before c
      if (c == '\n') {
        if (i == 0 || p[i - 1] != '\r') {
          r.status = 400;
          r.message = "a header line ends with a bare LF (RFC 9112 section 2.2: lines end with CRLF)";
          return r;
        }
        const size_t content = line_len - 1;
        line_start_ = i + 1;
        if (request_line_) {
          request_line_ = false;
        } else if (content == 0) {
          scan_ = 0;
          r.header_end = i + 1;
          return r;
        }
        continue;
      }
      if (c == '\r') {
        if (i + 1 == n) {
          scan_ = i;  // the LF may come with the next read
          return r;
        }
        if (p[i + 1] != '\n') {
          r.status = 400;
          r.message = "a bare CR in the header (RFC 9112 section 2.2)";
          return r;
        }
        continue;
      }
      if (line_len == 0 && !request_line_ && (c == ' ' || c == '\t')) {
        r.status = 400;
        r.message =
            "obsolete line folding (a header line starting with SP or HTAB) is not accepted (RFC 9112 "
            "section 5.2)";
        return r;
      }
      if ((c < 0x20 && c != '\t') || c == 0x7f || (request_line_ && c == '\t')) {
        r.status = 400;
        r.message = fmt::format("control character 0x{:02x} in the {}", c, request_line_ ? "request line" : "header");
        return r;
      }
      if (request_line_ && line_len + 1 > o.max_request_line) {
        r.status = 414;
        r.message = fmt::format("the request line is longer than {} bytes", o.max_request_line);
        return r;
      }
      if (!request_line_ && line_len + 1 > o.max_header_line) {
        r.status = 431;
        r.message = fmt::format("a header field line is longer than {} bytes", o.max_header_line);
        return r;
      }
      if (i + 1 > o.max_header_bytes) {
        r.status = 431;
        r.message = fmt::format("the request header is larger than {} bytes", o.max_header_bytes);
        return r;
      }
    }
    scan_ = n;
    return r;
  }

  // Beast parses the scanned header; then what it leaves to the application.
  // False when the request was refused.
  bool ParseHeader(size_t header_end) {
    const HttpServerOptions& o = s_.options;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(std::min<size_t>(o.max_header_bytes + 4, UINT32_MAX)));
    parser_->body_limit(static_cast<std::uint64_t>(o.max_body_size));
    parser_->eager(true);
    error_code ec;
    const size_t n = parser_->put(asio::buffer(data(), header_end), ec);
    begin_ += header_end;
    line_start_ = 0;
    request_line_ = true;
    scan_ = 0;
    header_started_ = false;
    if (ec == bhttp::error::body_limit) {
      Refuse(413, fmt::format("Content-Length {} is larger than the limit of {} bytes",
                              parser_->content_length().value_or(0), o.max_body_size));
      return false;
    }
    if (ec == bhttp::error::bad_content_length) {
      Refuse(400,
             "invalid Content-Length: not a decimal number, several that differ, or with Transfer-Encoding "
             "(RFC 9112 section 6.3)");
      return false;
    }
    if (ec == bhttp::error::bad_transfer_encoding) {
      Refuse(400, "Transfer-Encoding together with Content-Length, or repeated (RFC 9112 section 6.1)");
      return false;
    }
    if (ec == bhttp::error::bad_version) {
      // Beast knows only HTTP/1.x: a well-formed other version is 505, not 400.
      const std::string_view head(data() - header_end, header_end);
      const std::string_view line = head.substr(0, head.find("\r\n"));
      const std::string_view v = line.substr(line.rfind(' ') + 1);
      if (v.size() == 8 && v.substr(0, 5) == "HTTP/" && std::isdigit(static_cast<unsigned char>(v[5])) && v[6] == '.' &&
          std::isdigit(static_cast<unsigned char>(v[7]))) {
        Refuse(505, fmt::format("{} is not supported (HTTP/1.1 and HTTP/1.0 are)", v));
        return false;
      }
    }
    if (ec || n != header_end || !parser_->is_header_done()) {
      Refuse(400, fmt::format("malformed request header: {}", ec ? ec.message() : "trailing bytes"));
      return false;
    }
    const auto& msg = parser_->get();
    const unsigned version = msg.version();
    if (version != 10 && version != 11) {
      Refuse(505, fmt::format("HTTP/{}.{} is not supported (HTTP/1.1 and HTTP/1.0 are)", version / 10, version % 10));
      return false;
    }
    int hosts = 0, encodings = 0;
    std::string_view encoding;
    for (const auto& f : msg) {
      if (f.name() == bhttp::field::host) ++hosts;
      if (f.name() == bhttp::field::transfer_encoding) {
        ++encodings;
        encoding = TrimOws(std::string_view(f.value().data(), f.value().size()));
      }
    }
    if (version == 11 && hosts != 1) {
      Refuse(400, hosts == 0 ? "an HTTP/1.1 request without Host (RFC 9112 section 3.2)"
                             : "more than one Host field (RFC 9112 section 3.2)");
      return false;
    }
    if (encodings > 0 && (encodings > 1 || !IEquals(encoding, "chunked") || version == 10)) {
      Refuse(400, version == 10 ? "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 section 6.1)"
                                : fmt::format("unsupported Transfer-Encoding '{}': only chunked is accepted "
                                              "(RFC 9112 section 6.1)",
                                              std::string(encoding).substr(0, 100)));
      return false;
    }
    const bool framed = parser_->content_length().has_value() || parser_->chunked();
    const auto method = msg.method();
    if (!framed && (method == bhttp::verb::post || method == bhttp::verb::put || method == bhttp::verb::patch)) {
      Refuse(411, "a request body needs Content-Length or Transfer-Encoding: chunked");
      return false;
    }
    expect_continue_ = false;
    const auto expect = msg.find(bhttp::field::expect);
    if (expect != msg.end()) {
      const std::string_view v = TrimOws(std::string_view(expect->value().data(), expect->value().size()));
      if (!IEquals(v, "100-continue")) {
        Refuse(417, fmt::format("unsupported Expect '{}'", std::string(v).substr(0, 100)));
        return false;
      }
      expect_continue_ = version == 11;
    }
    return true;
  }

  void Dispatch() {
    phase_ = Phase::kHandling;
    SetDeadline(Clock::time_point::max());
    auto& msg = parser_->get();
    HttpRequest req;
    req.method = std::string_view(msg.method_string().data(), msg.method_string().size());
    req.target = std::string_view(msg.target().data(), msg.target().size());
    req.version = static_cast<int>(msg.version());
    req.headers.reserve(8);
    for (const auto& f : msg)
      req.headers.emplace_back(std::string_view(f.name_string().data(), f.name_string().size()),
                               std::string_view(f.value().data(), f.value().size()));
    req.body = std::move(msg.body());
    req.remote_addr = remote_;
    req.start = Clock::now();
    body_size_ = req.body.size();
    keep_alive_ = msg.keep_alive() && !s_.draining.load();

    HttpResponse res;
    const HttpHandler* handler = nullptr;
    std::string allow;
    req.path = JoinPath(PathSegments(req.target));
    switch (s_.router.Find(req.method, req.target, &handler, &req.params, &allow)) {
      case HttpRouter::Match::kFound:
        try {
          Busy busy(s_);
          (*handler)(req, res);
        } catch (const std::exception& e) {
          s_.Refusal(500, fmt::format("internal error: {}", e.what()), &res);
        }
        break;
      case HttpRouter::Match::kNoRoute:
        s_.Refusal(404, fmt::format("No route for {} {}", req.method, req.path), &res);
        break;
      case HttpRouter::Match::kWrongMethod:
        s_.Refusal(405, fmt::format("Method {} is not allowed for {}", req.method, req.path), &res);
        res.headers.emplace_back("Allow", allow);
        break;
    }
    keep_alive_ = keep_alive_ && !s_.draining.load();  // a drain began while the handler ran
    if (s_.hooks.on_response) s_.hooks.on_response(req, res);
    Write(res, req.method == "HEAD");
  }

  void Refuse(int status, std::string message) {
    phase_ = Phase::kHandling;
    SetDeadline(Clock::time_point::max());
    keep_alive_ = false;
    HttpRequest req;
    if (parser_ && parser_->is_header_done()) {
      const auto& msg = parser_->get();
      req.method = std::string_view(msg.method_string().data(), msg.method_string().size());
      req.target = std::string_view(msg.target().data(), msg.target().size());
      req.path = JoinPath(PathSegments(req.target));
      req.version = static_cast<int>(msg.version());
    }
    req.remote_addr = remote_;
    req.start = Clock::now();
    HttpResponse res;
    s_.Refusal(status, message, &res);
    if (s_.hooks.on_response) s_.hooks.on_response(req, res);
    Write(res, false);
  }

  void Write(HttpResponse& res, bool head_only) {
    out_head_.clear();
    fmt::format_to(std::back_inserter(out_head_), "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
                   res.status, Reason(res.status), res.content_type, res.body.size());
    for (const auto& [k, v] : res.headers) fmt::format_to(std::back_inserter(out_head_), "{}: {}\r\n", k, v);
    if (!keep_alive_) {
      out_head_ += "Connection: close\r\n";
    } else if (parser_ && parser_->get().version() == 10) {
      out_head_ += "Connection: keep-alive\r\n";
    }
    out_head_ += "\r\n";
    out_body_ = head_only ? std::string() : std::move(res.body);
    // Written at once when the socket takes it all (the common case): an asynchronous
    // write's completion is queued to the io_context and wakes another thread, which
    // then carries on with this connection — a hand-off on every request.
    size_t done = 0;
    iovec iov[2] = {{out_head_.data(), out_head_.size()}, {out_body_.data(), out_body_.size()}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = out_body_.empty() ? 1 : 2;
    const ssize_t n = ::sendmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      done = static_cast<size_t>(n);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return Close();
    }
    if (done == out_head_.size() + out_body_.size()) {
      // Inline, up to a depth: a long run of pipelined requests, or a client served by
      // WaitBrieflyForNextRequest, would otherwise grow the stack without bound.
      if (inline_depth_ < kMaxInlineDepth) {
        ++inline_depth_;
        OnWritten({});
        --inline_depth_;
      } else {
        asio::post(socket_.get_executor(), [self = shared_from_this()] { self->OnWritten({}); });
      }
      return;
    }
    SetDeadline(Clock::now() + s_.options.io_timeout);
    const size_t head_left = done < out_head_.size() ? out_head_.size() - done : 0;
    const std::array<asio::const_buffer, 2> bufs{
        asio::buffer(out_head_.data() + (out_head_.size() - head_left), head_left),
        asio::buffer(out_body_.data() + (done - (out_head_.size() - head_left)),
                     out_body_.size() - (done - (out_head_.size() - head_left)))};
    asio::async_write(socket_, bufs,
                      [self = shared_from_this()](const error_code& ec, size_t) { self->OnWritten(ec); });
  }

  void OnWritten(const error_code& ec) {
    if (ec || closed_) return Close();
    // A request's cost in memory shows in its body or its response (a narrow body can
    // still make a wide table: a CSV header of 100,000 names is under 1 MB).
    const size_t request_bytes = std::max(body_size_, out_body_.size());
    out_body_ = std::string();
    parser_.reset();
    if (request_bytes >= s_.options.trim_after_body_bytes && s_.options.trim_after_body_bytes > 0) s_.ScheduleTrim();
    if (!keep_alive_) return Linger();
    phase_ = Phase::kHeader;
    if (buffered() == 0 && cap_ > kKeptBuffer) {
      buf_.reset();
      cap_ = begin_ = end_ = 0;
    }
    if (buffered() == 0) WaitBrieflyForNextRequest();
    Process();  // a pipelined or just-received request, or wait for the next one
  }

  // A keep-alive client usually sends its next request right after reading the answer.
  // Waiting for it here, in the kernel, for up to next_request_wait, lets this thread
  // serve it directly: through the reactor, the thread polling epoll would take it and
  // wake another thread to poll in its place, two thread wake-ups per request that
  // cost a lone client about 0.1 ms on a small machine. Only while the server is
  // nearly idle (at most two other threads busy): under load the reactor serves many
  // ready connections per wake-up, which beats a thread asleep on each.
  void WaitBrieflyForNextRequest() {
    const auto wait = s_.options.next_request_wait;
    if (wait.count() <= 0 || s_.busy_threads.load(std::memory_order_relaxed) > 2) return;
    Busy busy(s_);
    pollfd p{socket_.native_handle(), POLLIN, 0};
    const timespec ts{0, static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count())};
    if (::ppoll(&p, 1, &ts, nullptr) != 1 || (p.revents & POLLIN) == 0) return;
    if (cap_ < kInitialBuffer) {
      buf_ = std::make_unique<char[]>(kInitialBuffer);
      cap_ = kInitialBuffer;
      begin_ = end_ = 0;
    }
    const ssize_t n = ::recv(socket_.native_handle(), buf_.get() + end_, cap_ - end_, MSG_DONTWAIT);
    if (n > 0) end_ += static_cast<size_t>(n);
    // 0 (EOF) or an error: left to the asynchronous read, which sees it again.
  }

  // After a final response: stop sending, and read (and drop) what the client still
  // sends for a while, so that closing with unread data does not reset the connection
  // before the client has read our answer.
  void Linger() {
    phase_ = Phase::kLinger;
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    begin_ = end_ = 0;
    SetDeadline(Clock::now() + std::min<Clock::duration>(kLingerTime, s_.options.io_timeout));
    ReadMore();
  }

  HttpServer::Impl& s_;
  tcp::socket socket_;  // its executor is this connection's strand
  asio::steady_timer timer_;
  std::string remote_;

  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0, begin_ = 0, end_ = 0;
  // Header scan state, offsets relative to begin_.
  size_t scan_ = 0, line_start_ = 0;
  bool request_line_ = true;
  bool header_started_ = false;

  Phase phase_ = Phase::kHeader;
  std::optional<bhttp::request_parser<GrowingBody>> parser_;
  bool expect_continue_ = false;
  bool keep_alive_ = true;
  bool closed_ = false;
  size_t body_size_ = 0;
  static constexpr int kMaxInlineDepth = 8;
  int inline_depth_ = 0;
  std::string out_head_, out_body_;

  Clock::time_point deadline_ = Clock::time_point::max();
  Clock::time_point armed_at_ = Clock::time_point::max();
  bool timer_armed_ = false;
  uint64_t timer_gen_ = 0;

  // Read by the acceptor (eviction) from other threads.
  std::atomic<bool> idle_{false};
  std::atomic<Clock::rep> idle_since_{0};
};

Busy::Busy(HttpServer::Impl& impl) : s(impl) { s.busy_threads.fetch_add(1, std::memory_order_relaxed); }
Busy::~Busy() { s.busy_threads.fetch_sub(1, std::memory_order_relaxed); }

void HttpServer::Impl::Accept() {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!accepting) return;
    if (connections.size() >= options.max_connections) {
      // At the limit: accepting resumes when a connection closes (Unregister). When a
      // client is waiting in the backlog, the connection idle longest makes room.
      paused = true;
      if (!backlog_wait) {
        backlog_wait = true;
        acceptor.async_wait(tcp::acceptor::wait_read, asio::bind_executor(accept_strand, [this](const error_code& ec) {
                              backlog_wait = false;
                              if (!ec) EvictLongestIdle();
                            }));
      }
      return;
    }
  }
  acceptor.async_accept(asio::make_strand(io),
                        asio::bind_executor(accept_strand, [this](const error_code& ec, tcp::socket socket) {
                          OnAccept(ec, std::move(socket));
                        }));
}

void HttpServer::Impl::EvictLongestIdle() {
  std::lock_guard<std::mutex> lock(mu);
  if (!accepting || connections.size() < options.max_connections) return;
  Connection* oldest = nullptr;
  for (Connection* c : connections)
    if (c->idle() && (oldest == nullptr || c->idle_since() < oldest->idle_since())) oldest = c;
  if (oldest == nullptr) return;
  if (std::shared_ptr<Connection> c = oldest->weak_from_this().lock()) {
    // Moved into the handler: the last reference must not be dropped here, under
    // `mu`, where the connection's destructor would lock it again.
    auto ex = c->executor();
    asio::post(ex, [c = std::move(c)] { c->CloseIfIdle(); });
  }
}

void HttpServer::Impl::OnAccept(const error_code& ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted) return;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!accepting) return;
  }
  if (ec) {
    // Out of descriptors or memory: wait a little instead of spinning.
    retry_timer.expires_after(std::chrono::milliseconds(50));
    retry_timer.async_wait([this](const error_code& e) {
      if (!e) Accept();
    });
    return;
  }
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);  // a response is one write: no Nagle delay
  auto c = std::make_shared<Connection>(this, std::move(socket));
  Register(c);
  asio::dispatch(c->executor(), [c] { c->Start(); });
  Accept();
}

void HttpServer::Impl::Register(const std::shared_ptr<Connection>& c) {
  std::lock_guard<std::mutex> lock(mu);
  connections.insert(c.get());
}

void HttpServer::Impl::Unregister(Connection* c) {
  std::lock_guard<std::mutex> lock(mu);
  connections.erase(c);
  if (paused && accepting) {
    paused = false;
    asio::post(accept_strand, [this] { Accept(); });
  }
  if (!accepting && connections.empty()) cv.notify_all();
}

void HttpServer::Impl::StopAccepting() {
  draining = true;
  std::vector<std::shared_ptr<Connection>> open;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (accepting) {
      accepting = false;
      asio::post(accept_strand, [this] {
        error_code ec;
        acceptor.close(ec);
        retry_timer.cancel();
      });
    }
    for (Connection* c : connections)
      if (std::shared_ptr<Connection> p = c->weak_from_this().lock()) open.push_back(std::move(p));
    if (connections.empty()) cv.notify_all();
  }
  for (auto& c : open) asio::post(c->executor(), [c] { c->CloseIfIdle(); });
}

void HttpServer::Impl::CloseAll() {
  std::vector<std::shared_ptr<Connection>> open;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (Connection* c : connections)
      if (std::shared_ptr<Connection> p = c->weak_from_this().lock()) open.push_back(std::move(p));
  }
  for (auto& c : open) asio::post(c->executor(), [c] { c->Close(); });
}

void HttpServer::Impl::ScheduleTrim() {
#if defined(__GLIBC__)
  if (trim_pending.exchange(true)) return;
  asio::post(accept_strand, [this] {
    // Coalesced: one trim shortly after a burst of large requests, not one per request.
    trim_timer.expires_after(std::chrono::milliseconds(50));
    trim_timer.async_wait([this](const error_code& ec) {
      trim_pending = false;
      if (!ec) malloc_trim(0);
    });
  });
#endif
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options, HttpRouter router,
                                                      HttpHooks hooks) {
  auto impl = std::make_shared<Impl>(options, std::move(router), std::move(hooks));
  Impl& s = *impl;
  error_code ec;
  const std::string where = fmt::format("{}:{}", options.host, options.port);
  tcp::endpoint endpoint;
  const asio::ip::address address = asio::ip::make_address(options.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, static_cast<unsigned short>(options.port));
  } else {
    tcp::resolver resolver(s.io);
    auto results = resolver.resolve(options.host, std::to_string(options.port), tcp::resolver::passive, ec);
    if (ec || results.empty())
      return Status::IOError(fmt::format("cannot listen on {}: cannot resolve the host ({})", where, ec.message()));
    endpoint = results.begin()->endpoint();
  }
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(SOMAXCONN, ec);
  if (ec) return Status::IOError(fmt::format("cannot listen on {}: {}", where, ec.message()));
  s.port = s.acceptor.local_endpoint(ec).port();
  asio::post(s.accept_strand, [&s] { s.Accept(); });
  const int threads = std::max(1, options.threads);
  s.thread_count = threads;
  s.threads.reserve(threads);
  for (int i = 0; i < threads; ++i) s.threads.emplace_back([&s] { s.io.run(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

int HttpServer::port() const { return impl_->port; }

size_t HttpServer::connections() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->connections.size();
}

void HttpServer::StopAccepting() { impl_->StopAccepting(); }

void HttpServer::Wait() {
  Impl& s = *impl_;
  std::unique_lock<std::mutex> lock(s.mu);
  s.cv.wait(lock, [&] { return !s.accepting && s.connections.empty(); });
}

HttpServer::~HttpServer() {
  Impl& s = *impl_;
  s.StopAccepting();
  s.CloseAll();
  asio::post(s.accept_strand, [&s] { s.trim_timer.cancel(); });
  s.work.reset();
  for (std::thread& t : s.threads) t.join();
}

}  // namespace pyfunc::server
