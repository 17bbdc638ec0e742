// Server: the HTTP scoring server behind `pyfunc serve`.
//
//   pyfunc::ServerOptions options;
//   options.port = 5000;
//   auto server = pyfunc::Server::Start(options);        // listening, not ready
//   auto model = pyfunc::Model::Load(path, load_options);
//   (*server)->SetModel(std::make_shared<pyfunc::Model>(std::move(*model)));  // ready
//   ...
//   (*server)->Drain(std::chrono::seconds(30));           // on SIGTERM
//
// Protocols (one HTTP port, and a gRPC port when ServerOptions::grpc_port is set):
//   * MLflow's scoring protocol, as `mlflow models serve` speaks it: GET /ping and
//     /health (200 "\n" once the model is loaded, 404 before, as MLflow answers without
//     a model), GET /version (pyfunc's version, unquoted, as MLflow writes its own),
//     POST /invocations with `application/json` (dataframe_split, dataframe_records,
//     instances, inputs, plus `params`) or `text/csv`, answering `{"predictions": ...}`.
//     Errors: 415 text/plain for an unsupported content type, charset or content-type
//     parameter; 400 `{"error_code": "BAD_REQUEST", "message": ...}` for bad input or a
//     model that raised; 504 "Request processing time exceeded limit" after `timeout`;
//     503 TEMPORARILY_UNAVAILABLE with `Retry-After` when the queue is full or the
//     server is not ready / draining; 413 over `max_body_size`. The table of these
//     mappings is HttpErrorFromStatus (src/server/http_errors.h).
//   * The Open Inference Protocol (KServe V2) over REST: GET /v2/health/live,
//     /v2/health/ready, /v2/models/{name}, /v2/models/{name}/ready and
//     POST /v2/models/{name}/infer. Each input tensor of shape [N] or [N, 1] is one
//     column named after the tensor; a single input of shape [N, K] becomes K columns
//     "0".."K-1" (as a 2-D array does in MLflow). Output columns become output tensors
//     named after them ("predict" for an unnamed one); a 2-D array output is one
//     [N, K] tensor "predict". `parameters` are the model's params. Errors are
//     `{"error": "..."}` with the statuses above.
//   * The Open Inference Protocol over gRPC (grpc_port; proto/grpc_predict_v2.proto,
//     the wire format of KServe's and Triton's clients): inference.GRPCInferenceService's
//     ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata and ModelInfer,
//     and grpc.health.v1.Health (SERVING once ready). ModelInfer takes typed contents
//     (fp32_contents, int64_contents, bytes_contents, ...) or raw_input_contents
//     (little-endian; BYTES as 4-byte little-endian lengths and bytes) and answers in
//     raw_output_contents, as Triton does. Tensors become columns and predictions tensors
//     by the REST rules above (one implementation, src/server/oip.h) through the same
//     batcher, so a gRPC answer is the REST answer. Codes: NOT_FOUND for another model
//     name, INVALID_ARGUMENT for a malformed request (naming the tensor) and what REST
//     answers 400, DEADLINE_EXCEEDED for 504, UNAVAILABLE for 503 (not ready, draining,
//     queue full), RESOURCE_EXHAUSTED from gRPC for a message over max_body_size
//     (src/server/grpc_errors.h). Any model version names the one model, as in REST.
//   * GET /metrics: Prometheus text format (requests by route and status, gRPC calls by
//     RPC and code, latency histograms per stage, batch sizes, queue depth, worker
//     restarts, readiness).
//
// HTTP/1.1 as strictly as a trusted front end (RFC 9112): framing a proxy could read
// differently — Content-Length with Transfer-Encoding, Content-Lengths that differ or
// are not plain digits, a Transfer-Encoding other than chunked — and bare CR/LF, NUL
// or other control characters, obs-fold, HTTP/1.1 without Host get 400 and the
// connection is closed; see the limits in ServerOptions. Keep-alive, pipelining (in
// order) and `Expect: 100-continue` are supported; refusals have MLflow's error body.
//
// Request bodies are parsed in C++ into Tables (json_codec.h, csv.h) before any Python
// runs, and predicted through a Batcher (batcher.h) with one dispatcher per model
// worker; requests are merged only for models whose rows are independent
// (DecideBatching). Column types are cast to the signature's as MLflow's server casts
// them (numeric strings, floats for longs, a tensor's dtype); extra columns are dropped,
// and a request missing a signature column is refused by the worker's schema
// enforcement with MLflow's INVALID_PARAMETER_VALUE and message. Unified LLM bodies,
// tensors nested beyond a table (named multi-input, N-d) and frames whose cells hold
// arrays or objects travel to the worker as JSON, which builds what MLflow's server builds.
// `application/vnd.apache.parquet` bodies travel as their bytes and are read there by
// pandas.read_parquet, as MLflow's server reads them (the model's environment needs
// pyarrow or fastparquet for it, as with MLflow).
//
// Not supported: validation against type hints of predict; cells of a
// column signature's Array/Object/Map types reach the model as given, unvalidated.
//
// Thread safety: all methods may be called from any thread.
#ifndef PYFUNC_SERVER_H_
#define PYFUNC_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "pyfunc/batching.h"
#include "pyfunc/model.h"
#include "pyfunc/status.h"

namespace pyfunc {

struct ServerOptions {
  // Interface to listen on (MLflow's default: loopback only).
  std::string host = "127.0.0.1";
  // TCP port; 0 picks a free one (see Server::port()).
  int port = 5000;
  // Per-request limit from arrival to response, as MLflow's `-t/--timeout`. A request
  // still queued when it expires is dropped; one whose batch is running gets 504 and
  // its share of the result is discarded. The model's own predict timeout
  // (LoadOptions::predict_timeout) should be the same: it kills a hung worker.
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  // Dynamic batching (batcher.h): rows per merged batch (1 disables merging), extra
  // wait for company (0: never), queued requests before 503.
  int64_t max_batch_rows = 1024;
  std::chrono::microseconds max_batch_delay{0};
  // Which models' requests are merged at all (BatchingMode).
  BatchingMode batching = BatchingMode::kAuto;
  size_t max_queue = 1024;
  // Largest request body accepted. A declared Content-Length over it gets 413 before
  // any of the body is read; a chunked body gets 413 as soon as it passes the limit,
  // without buffering the rest. A POST with neither length nor chunking gets 411.
  size_t max_body_size = 100 * 1024 * 1024;
  // Threads running the HTTP front: I/O and the request handlers. Connections do not
  // hold threads (an idle or slow one costs a socket); a scoring request holds its
  // thread while it waits for its batch, so this bounds the scoring requests in
  // progress at once (batches merge at most this many requests). Each request runs on
  // the thread that read it: no hand-off between threads on the latency path.
  int http_threads = 256;
  // Open connections at most; each costs a file descriptor (`pyfunc serve` raises its
  // soft RLIMIT_NOFILE to the hard limit). At the limit, the connection idle longest
  // between requests is closed to make room; when none is idle, new connections wait
  // in the listen backlog until one closes.
  size_t max_connections = 10000;
  // From a request's first byte to the end of its header; a slower client is
  // disconnected without an answer (slowloris protection).
  std::chrono::milliseconds header_timeout{std::chrono::seconds(10)};
  // Idle time allowed between requests on a keep-alive connection (and before the
  // first); then the server closes it.
  std::chrono::milliseconds keep_alive_timeout{std::chrono::seconds(5)};
  // Longest wait for progress while a body is read or a response written; then the
  // connection is closed.
  std::chrono::milliseconds read_timeout{std::chrono::seconds(5)};
  // Header limits (not options): a request line over 8 KiB gets 414; a header field
  // line over 8 KiB or a header over 64 KiB in all gets 431, counted as bytes arrive.
  // One line per request on stderr: client, method, path, status, bytes, duration.
  bool access_log = false;
  // Busy-polling of worker round trips (PredictOptions::busy_poll) while the server is
  // lightly loaded: no more requests in flight than workers, and a core to spare for
  // each worker besides its own. It saves the thread wake-ups that dominate a small
  // model's latency. 0 disables it.
  std::chrono::microseconds busy_poll{1000};
  // The model's name in the Open Inference Protocol paths and gRPC calls.
  std::string model_name = "model";
  // The Open Inference Protocol over gRPC on this port of `host` (0 picks a free one;
  // see Server::grpc_port()); -1, the default, serves no gRPC. Its calls share the
  // timeout, batcher, queue, drain and metrics with HTTP; max_body_size is its largest
  // message and http_threads its most calls at once. Start fails with InvalidArgument in
  // a build without gRPC (GrpcAvailable()).
  int grpc_port = -1;
};

// Whether this build of pyfunc has the gRPC front (CMake's PYFUNC_WITH_GRPC).
bool GrpcAvailable();

class Server {
 public:
  // Binds host:port and starts serving in background threads. Not ready until
  // SetModel: /invocations answers 503 and /ping 404 until then.
  // IOError when the address cannot be bound.
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options);

  // Starts scoring with `model` (one batcher dispatcher per model worker); ready.
  void SetModel(std::shared_ptr<Model> model);

  int port() const;
  // The gRPC port (ServerOptions::grpc_port), -1 when there is none.
  int grpc_port() const;
  bool ready() const;
  // The batching decision for the model given to SetModel (empty reason before).
  BatchingDecision batching() const;

  // Graceful stop: readiness turns false, the listening socket closes, scoring
  // requests already received are finished (their batches run), then the model is
  // released (its workers stop once no one else holds it). Idle keep-alive connections
  // are not waited for; they close when the Server is destroyed or the process exits.
  // Returns OK when the requests finished within `grace`, DeadlineExceeded otherwise.
  // gRPC stops taking calls at the same time and has until `grace` for those running.
  Status Drain(std::chrono::milliseconds grace);

  // Blocks until the listener has stopped (after Drain and the last connection).
  void Wait();

  ~Server();  // Drain(0) if still running

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pyfunc

#endif  // PYFUNC_SERVER_H_
