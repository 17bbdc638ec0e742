// The scoring server's HTTP/1.1 front: listener, connections, a strict request parser
// with limits enforced while reading, deadlines, and routing. Private to src/server;
// server.cc registers the scoring routes on it.
//
// Model: one Boost.Asio io_context run by `threads` threads. Each connection is a
// chain of asynchronous operations on its own strand (read the header under a
// deadline, read the body, run the handler, write, then the next request), so an idle
// or slow connection costs a socket and a few KiB, not a thread. A handler runs on the
// thread that completed the read of its request and may block (scoring waits for its
// batch): `threads` bounds the handlers running at once, not the connections.
//
// Strictness (RFC 9112), each refusal answered with the status below and
// `Connection: close`, the connection then closed (after the client has had the
// chance to read the answer):
//   400  Content-Length with Transfer-Encoding, Content-Lengths that differ or are not
//        1*DIGIT, a Transfer-Encoding other than exactly `chunked` (or in HTTP/1.0),
//        bare CR or LF, NUL or another control character in the header, obs-fold (a
//        header line starting with SP/HTAB), HTTP/1.1 without Host (or with two),
//        a malformed request line, header field or chunk
//   411  POST/PUT/PATCH with neither Content-Length nor chunked framing
//   413  a declared Content-Length over `max_body_size` (before any body is read), or a
//        chunked body passing it (as soon as it does; the rest is not buffered)
//   414  a request line longer than `max_request_line`
//   431  a header line longer than `max_header_line`, or a header over `max_header_bytes`
//   417  an Expect other than 100-continue;  505  an HTTP version other than 1.0/1.1
//   404  no route for the path;  405  a route for the path but not for the method
// These limits are counted while reading: a connection never buffers more than
// max_header_bytes of header plus one read of body.
#ifndef PYFUNC_SERVER_HTTP_SERVER_H_
#define PYFUNC_SERVER_HTTP_SERVER_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pyfunc/status.h"

namespace pyfunc::server {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: a free port (HttpServer::port())
  // Threads running the I/O and the handlers. A handler that blocks holds its thread.
  int threads = 4;
  // Open connections at most (each costs a file descriptor). At the limit the
  // connection idle longest between requests is closed to make room; when none is
  // idle, new connections wait in the listen backlog until one closes.
  size_t max_connections = 10000;
  size_t max_request_line = 8 * 1024;        // 414 beyond
  size_t max_header_line = 8 * 1024;         // 431 beyond (one field line)
  size_t max_header_bytes = 64 * 1024;       // 431 beyond (request line and all fields)
  size_t max_body_size = 100 * 1024 * 1024;  // 413 beyond, declared or chunked
  // From the first byte of a request to the end of its header; a slower client is
  // disconnected (slowloris).
  std::chrono::milliseconds header_timeout{10000};
  // Idle time allowed between requests on a keep-alive connection (and before the
  // first one).
  std::chrono::milliseconds keep_alive_timeout{5000};
  // Longest wait for progress while reading a body or writing a response.
  std::chrono::milliseconds io_timeout{5000};
  // After answering on a keep-alive connection, how long the thread waits (asleep in
  // the kernel) for that connection's next request before handing the connection back
  // to the reactor; only while the server is nearly idle (at most two other threads
  // busy). It saves a lone client two thread wake-ups per request. 0: never wait.
  std::chrono::microseconds next_request_wait{500};
  // After a request whose body or response reached this size is answered, freed memory
  // is handed back to the operating system (malloc_trim, coalesced to one per 50 ms): a
  // burst of large requests would otherwise leave the allocator's arenas at their peak.
  // 0: never.
  size_t trim_after_body_bytes = 256 * 1024;
};

// A request as the handler sees it. Header names and values point into storage that
// lives until the handler returns.
struct HttpRequest {
  std::string_view method;
  std::string_view target;  // as sent (path and query)
  std::string path;         // the path of the target, percent-decoded segment by segment
  int version = 11;         // 10 or 11
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string body;
  // The segments matched by `{...}` in the route's pattern, in order.
  std::vector<std::string> params;
  std::string remote_addr;
  // When the whole request had been received (before routing).
  std::chrono::steady_clock::time_point start;

  // The value of the first field named `name` (case-insensitive); empty when none.
  std::string_view Header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra fields

  void Set(int s, std::string b, std::string type) {
    status = s;
    SetContent(std::move(b), std::move(type));
  }
  void SetContent(std::string b, std::string type) {
    body = std::move(b);
    content_type = std::move(type);
  }
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponse&)>;

// Routes by method and path. A pattern is a fixed path ("/ping") or one with whole
// segments captured by `{name}` ("/v2/models/{name}/infer"); no regular expressions
// run on client paths. HEAD is served by the GET route without the body.
class HttpRouter {
 public:
  void Handle(std::string method, std::string_view pattern, HttpHandler handler);

  enum class Match { kFound, kNoRoute, kWrongMethod };
  // The handler for `method path`, with the captured segments in `*params`; on
  // kWrongMethod `*allow` lists the methods the path has.
  Match Find(std::string_view method, std::string_view path, const HttpHandler** handler,
             std::vector<std::string>* params, std::string* allow) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{}" for a capture
    HttpHandler handler;
  };
  std::vector<Route> routes_;
};

struct HttpHooks {
  // The body of a refusal the HTTP layer makes itself (the statuses above); `message`
  // names the problem. Unset: a text/plain body with the message.
  std::function<void(int status, std::string_view message, HttpResponse* response)> refusal;
  // Called once per response before it is written, refusals included (their request
  // has what was parsed before the refusal: often no method or path).
  std::function<void(const HttpRequest&, const HttpResponse&)> on_response;
};

class HttpServer {
 public:
  // Binds host:port (IOError when it cannot) and starts serving on `options.threads`
  // threads.
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options, HttpRouter router,
                                                   HttpHooks hooks);

  int port() const;
  // Open connections now.
  size_t connections() const;

  // Graceful stop, returning at once: the listening socket closes, connections idle
  // between requests close, every other one closes after answering the request it is
  // reading or handling (with `Connection: close`).
  void StopAccepting();
  // Blocks until StopAccepting has been called and the last connection has closed.
  void Wait();

  // Closes every connection and joins the threads (waiting for running handlers).
  ~HttpServer();

  class Impl;

 private:
  explicit HttpServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace pyfunc::server

#endif  // PYFUNC_SERVER_HTTP_SERVER_H_
