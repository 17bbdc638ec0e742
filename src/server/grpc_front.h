// The gRPC front of the scoring server: the Open Inference Protocol's
// inference.GRPCInferenceService (proto/grpc_predict_v2.proto) on a port of its own,
// beside the HTTP front (http_server.h). Private to src/server.
//
// It holds no model: each RPC asks the GrpcBackend (the Server, server.cc), which scores
// through the same batcher as HTTP. RPCs run on gRPC's synchronous server threads, at
// most `threads` at once; ModelInfer blocks its thread on its batch, as an HTTP handler
// does. Messages over `max_message_size` are refused by gRPC with RESOURCE_EXHAUSTED
// before they are parsed. The standard grpc.health.v1.Health service answers SERVING
// once the model is ready (SetServing), for Kubernetes' gRPC probes.
//
// grpc_front.cc is built with gRPC (CMake's PYFUNC_WITH_GRPC); without it
// grpc_front_unavailable.cc stands in, and StartGrpcFront says that the build has no gRPC.
#ifndef PYFUNC_SRC_SERVER_GRPC_FRONT_H_
#define PYFUNC_SRC_SERVER_GRPC_FRONT_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "pyfunc/prediction.h"
#include "pyfunc/status.h"
#include "server/metrics.h"
#include "server/oip.h"

namespace pyfunc::server {

struct GrpcFrontOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: a free one
  size_t max_message_size = 100 * 1024 * 1024;
  int threads = 256;
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};  // per ModelInfer, as HTTP's
  bool access_log = false;
};

// What the front asks of the server. Called from the front's threads concurrently.
class GrpcBackend {
 public:
  virtual ~GrpcBackend() = default;
  virtual bool Ready() = 0;
  virtual const std::string& ModelName() = 0;
  virtual std::vector<OipTensorMetadata> ModelInputs() = 0;
  // Scores a parsed infer request by `deadline`, as the REST path does (counted in
  // flight for drains, extra columns dropped, the batcher).
  virtual Result<Prediction> Infer(OipRequest request, std::chrono::steady_clock::time_point deadline) = 0;
  virtual Metrics& ServerMetrics() = 0;
};

class GrpcFront {
 public:
  virtual ~GrpcFront() = default;  // Shutdown(now) if not shut down
  virtual int port() const = 0;
  // The health service's answer: SERVING or NOT_SERVING.
  virtual void SetServing(bool serving) = 0;
  // Stops taking calls (new ones fail UNAVAILABLE), waits for those running until
  // `deadline` and cancels what is left then. Blocks until the server has stopped.
  virtual void Shutdown(std::chrono::system_clock::time_point deadline) = 0;
};

// Whether this build has the gRPC front.
bool GrpcFrontAvailable();

// Binds host:port and serves in gRPC's threads. IOError when the address cannot be
// bound; InvalidArgument in a build without gRPC.
Result<std::unique_ptr<GrpcFront>> StartGrpcFront(const GrpcFrontOptions& options, GrpcBackend* backend);

}  // namespace pyfunc::server

#endif  // PYFUNC_SRC_SERVER_GRPC_FRONT_H_
