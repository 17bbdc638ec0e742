// The HTTP front (src/server/http_server.h) alone, with a trivial echo handler, over
// raw loopback sockets: framing that could smuggle a request behind a proxy is refused
// and the connection closed, limits hold while reading, and the server keeps answering
// normal requests after each hostile one.
#include "server/http_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace pyfunc::server {
namespace {

using std::chrono::milliseconds;

// A connected loopback socket with blocking sends and deadline-bound reads.
class Client {
 public:
  explicit Client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  // False when the peer reset the connection or stopped reading.
  bool Send(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

  // Reads one response (head and Content-Length body); "" on timeout or EOF first.
  std::string ReadResponse(milliseconds timeout = milliseconds(3000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const size_t head_end = in_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t length = 0;
        const size_t cl = in_.find("Content-Length: ");
        if (cl != std::string::npos && cl < head_end) length = std::stoul(in_.substr(cl + 16));
        if (in_.size() >= head_end + 4 + length) {
          std::string r = in_.substr(0, head_end + 4 + length);
          in_.erase(0, head_end + 4 + length);
          return r;
        }
      }
      if (!Fill(deadline)) return "";
    }
  }
  // True when the server closes the connection (EOF or reset) within `timeout`,
  // after any data it still sends.
  bool Closed(milliseconds timeout = milliseconds(3000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (Fill(deadline)) {}
    return eof_;
  }

 private:
  bool Fill(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    in_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string in_;
};

int StatusOf(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0) return 0;
  return std::stoi(response.substr(9, 3));
}

std::string BodyOf(const std::string& response) { return response.substr(response.find("\r\n\r\n") + 4); }

std::string Get(const std::string& path) { return "GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n"; }

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions options = {}) {
    options.port = 0;
    HttpRouter router;
    router.Handle("GET", "/ping", [](const HttpRequest&, HttpResponse& res) { res.Set(200, "pong", "text/plain"); });
    router.Handle("POST", "/echo", [](const HttpRequest& req, HttpResponse& res) {
      res.Set(200, req.body, "application/octet-stream");
    });
    router.Handle("GET", "/v2/models/{name}/ready", [](const HttpRequest& req, HttpResponse& res) {
      res.Set(200, "ready:" + req.params.at(0), "text/plain");
    });
    router.Handle("GET", "/sleep", [](const HttpRequest&, HttpResponse& res) {
      std::this_thread::sleep_for(milliseconds(300));
      res.Set(200, "slept", "text/plain");
    });
    HttpHooks hooks;
    hooks.refusal = [](int status, std::string_view message, HttpResponse* res) {
      res->Set(status, "refused: " + std::string(message), "text/plain");
    };
    Result<std::unique_ptr<HttpServer>> s = HttpServer::Start(options, std::move(router), std::move(hooks));
    ASSERT_TRUE(s.ok()) << s.status().message();
    server_ = std::move(s).value();
  }

  // The server still answers a normal request on a new connection.
  void ExpectServing() {
    Client c(server_->port());
    ASSERT_TRUE(c.Send(Get("/ping")));
    const std::string r = c.ReadResponse();
    EXPECT_EQ(StatusOf(r), 200) << r;
    EXPECT_EQ(BodyOf(r), "pong");
  }

  // Sends `raw` and expects a refusal with `status` whose body names the problem,
  // then the connection closed and the server still serving.
  void ExpectRefused(const std::string& raw, int status, const std::string& fragment) {
    Client c(server_->port());
    ASSERT_TRUE(c.connected());
    c.Send(raw);
    const std::string r = c.ReadResponse();
    EXPECT_EQ(StatusOf(r), status) << raw << "\n--> " << r;
    EXPECT_NE(r.find("Connection: close"), std::string::npos) << r;
    EXPECT_NE(BodyOf(r).find(fragment), std::string::npos) << r;
    EXPECT_TRUE(c.Closed()) << raw;
    ExpectServing();
  }

  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, AmbiguousFramingIsRefusedAndTheConnectionClosed) {
  StartServer();
  const std::string post = "POST /echo HTTP/1.1\r\nHost: t\r\n";
  // Each of these is read differently by some proxy in front (RFC 9112 section 6).
  ExpectRefused(post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "Transfer-Encoding");
  ExpectRefused(post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400, "Content-Length");
  ExpectRefused(post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, "Content-Length");
  ExpectRefused(post + "Content-Length: 0x22\r\n\r\n", 400, "Content-Length");
  ExpectRefused(post + "Content-Length: +85\r\n\r\n", 400, "Content-Length");
  ExpectRefused(post + "Content-Length: 5 5\r\n\r\nhello", 400, "Content-Length");
  ExpectRefused(post + "Transfer-Encoding: gzip\r\n\r\nhello", 400, "unsupported Transfer-Encoding 'gzip'");
  ExpectRefused(post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400, "unsupported Transfer-Encoding");
  ExpectRefused(post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
                "Transfer-Encoding");
  ExpectRefused("POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "HTTP/1.0");
  ExpectRefused(post + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400, "chunked");
}

TEST_F(HttpServerTest, ForbiddenHeaderBytesAreRefused) {
  StartServer();
  ExpectRefused("GET /ping HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n", 400, "bare CR");
  static constexpr char kNul[] = "GET /ping HTTP/1.1\r\nHost: t\r\nX-A: a\0b\r\n\r\n";
  ExpectRefused(std::string(kNul, sizeof(kNul) - 1), 400, "control character 0x00");
  ExpectRefused("GET /ping HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n", 400, "obsolete line folding");
  ExpectRefused("GET /ping HTTP/1.1\r\nHost: t\r\nX-A: a\r\n\tb\r\n\r\n", 400, "obsolete line folding");
  ExpectRefused("GET /ping HTTP/1.1\nHost: t\r\n\r\n", 400, "bare LF");
  ExpectRefused("GET /ping HTTP/1.1\r\n\r\n", 400, "without Host");
  ExpectRefused("GET /ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host");
  ExpectRefused("GET /ping HTTP/2.0\r\nHost: t\r\n\r\n", 505, "HTTP/2.0");
  ExpectRefused("POST /echo HTTP/1.1\r\nHost: t\r\n\r\nhello", 411, "Content-Length");
  ExpectRefused("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417, "Expect");
}

// The refusal comes while the client is still sending: the server counted the bytes
// as they arrived instead of buffering the whole line or header first.
TEST_F(HttpServerTest, LineAndHeaderLimitsAreEnforcedWhileReading) {
  HttpServerOptions o;
  o.max_request_line = 1024;
  o.max_header_line = 512;
  o.max_header_bytes = 4096;
  StartServer(o);
  ExpectRefused("GET /" + std::string(2000, 'a'), 414, "longer than 1024");
  ExpectRefused("GET /ping HTTP/1.1\r\nHost: t\r\nX-Long: " + std::string(1000, 'b'), 431, "longer than 512");
  std::string many = "GET /ping HTTP/1.1\r\nHost: t\r\n";
  for (int i = 0; i < 100; ++i) many += "X-Field-" + std::to_string(i) + ": " + std::string(60, 'c') + "\r\n";
  ExpectRefused(many, 431, "larger than 4096");
  // Just under the limits is fine.
  Client c(server_->port());
  c.Send("GET /ping?" + std::string(900, 'q') + " HTTP/1.1\r\nHost: t\r\nX-A: " + std::string(400, 'a') + "\r\n\r\n");
  EXPECT_EQ(StatusOf(c.ReadResponse()), 200);
}

TEST_F(HttpServerTest, BodyLimitHoldsForDeclaredAndChunkedBodies) {
  HttpServerOptions o;
  o.max_body_size = 1000;
  StartServer(o);
  // Declared over the limit: 413 on the header alone, no body sent.
  ExpectRefused("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n", 413, "1001");
  // Chunked: 413 as soon as the chunks pass the limit, while the body is unfinished.
  std::string chunked = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) chunked += "190\r\n" + std::string(400, 'x') + "\r\n";
  ExpectRefused(chunked, 413, "larger than the limit");
  // A chunked body within the limit, with an extension and a trailer, is decoded.
  Client c(server_->port());
  c.Send(
      "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
  const std::string r = c.ReadResponse();
  EXPECT_EQ(StatusOf(r), 200) << r;
  EXPECT_EQ(BodyOf(r), "hello world");
  // Exactly at the limit.
  c.Send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'y'));
  EXPECT_EQ(BodyOf(c.ReadResponse()), std::string(1000, 'y'));
}

TEST_F(HttpServerTest, ExpectContinueGetsAnInterimResponseBeforeTheBody) {
  StartServer();
  Client c(server_->port());
  c.Send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  const std::string interim = c.ReadResponse();
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  c.Send("hello");
  const std::string r = c.ReadResponse();
  EXPECT_EQ(StatusOf(r), 200) << r;
  EXPECT_EQ(BodyOf(r), "hello");
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrderAndHalfCloseIsAnswered) {
  StartServer();
  Client c(server_->port());
  c.Send(Get("/sleep") + "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc" + Get("/v2/models/m1/ready") +
         "\r\n" + Get("/ping"));
  c.ShutdownWrite();  // the client has said everything; it still wants its answers
  EXPECT_EQ(BodyOf(c.ReadResponse()), "slept");
  EXPECT_EQ(BodyOf(c.ReadResponse()), "abc");
  EXPECT_EQ(BodyOf(c.ReadResponse()), "ready:m1");
  EXPECT_EQ(BodyOf(c.ReadResponse()), "pong");
  EXPECT_TRUE(c.Closed());
}

TEST_F(HttpServerTest, RoutesByFixedPathAndSegments) {
  StartServer();
  Client c(server_->port());
  c.Send(Get("/v2/models/a%20b/ready"));
  EXPECT_EQ(BodyOf(c.ReadResponse()), "ready:a b");
  c.Send(Get("/v2/models//ready"));  // an empty segment does not match {name}
  EXPECT_EQ(StatusOf(c.ReadResponse()), 404);
  c.Send(Get("/nowhere"));
  std::string r = c.ReadResponse();
  EXPECT_EQ(StatusOf(r), 404);
  EXPECT_NE(r.find("No route for GET /nowhere"), std::string::npos) << r;
  c.Send("POST /ping HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  r = c.ReadResponse();
  EXPECT_EQ(StatusOf(r), 405);
  EXPECT_NE(r.find("Allow: GET"), std::string::npos) << r;
  c.Send("HEAD /ping HTTP/1.1\r\nHost: t\r\n\r\n" + Get("/ping"));
  // HEAD: the GET route's head, no body (the next response follows directly).
  std::string both;
  for (int i = 0; i < 50 && both.find("pong") == std::string::npos; ++i) {
    std::string part = c.ReadResponse(milliseconds(100));
    both += part;
  }
  EXPECT_EQ(both.find("HTTP/1.1 200 OK"), 0u) << both;
  EXPECT_NE(both.find("HTTP/1.1 200 OK", 5), std::string::npos) << both;
}

TEST_F(HttpServerTest, SlowAndIdleConnectionsAreClosedByTheirDeadlines) {
  HttpServerOptions o;
  o.header_timeout = milliseconds(300);
  o.keep_alive_timeout = milliseconds(300);
  StartServer(o);
  Client slow(server_->port());
  Client idle(server_->port());
  const auto start = std::chrono::steady_clock::now();
  const std::string head = Get("/ping");
  bool sent_all = true;
  for (size_t i = 0; i < 8; ++i) {  // a byte every 100 ms: the header would take 2 s
    sent_all = sent_all && slow.Send(head.substr(i, 1));
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(slow.Closed(milliseconds(1000)));
  EXPECT_TRUE(idle.Closed(milliseconds(1000)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  ExpectServing();
}

TEST_F(HttpServerTest, ConnectionsAreBoundedAndTheLongestIdleMakesRoom) {
  HttpServerOptions o;
  o.max_connections = 4;
  StartServer(o);
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(std::make_unique<Client>(server_->port()));
    idle.back()->Send(Get("/ping"));
    EXPECT_EQ(StatusOf(idle.back()->ReadResponse()), 200);  // accepted; now idle
  }
  EXPECT_EQ(server_->connections(), 4u);
  ExpectServing();  // a fifth client is answered: the longest idle one was closed for it
  int closed = 0;
  for (auto& c : idle) closed += c->Closed(milliseconds(200)) ? 1 : 0;
  EXPECT_EQ(closed, 1);  // one made room, the others stay open
  EXPECT_LE(server_->connections(), 4u);
}

TEST_F(HttpServerTest, StopAcceptingFinishesRequestsInProgressAndClosesIdleConnections) {
  StartServer();
  Client idle(server_->port());
  idle.Send(Get("/ping"));
  EXPECT_EQ(StatusOf(idle.ReadResponse()), 200);
  {
    Client busy(server_->port());
    busy.Send(Get("/sleep"));
    std::this_thread::sleep_for(milliseconds(100));
    server_->StopAccepting();
    const std::string r = busy.ReadResponse();
    EXPECT_EQ(BodyOf(r), "slept");
    EXPECT_NE(r.find("Connection: close"), std::string::npos) << r;
    EXPECT_TRUE(idle.Closed(milliseconds(1000)));
    EXPECT_TRUE(busy.Closed(milliseconds(1000)));
  }
  server_->Wait();
  EXPECT_FALSE(Client(server_->port()).connected());
}

}  // namespace
}  // namespace pyfunc::server
