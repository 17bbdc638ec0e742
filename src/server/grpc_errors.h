// Status → gRPC status of the scoring server's gRPC front (grpc_front.h): the one table
// of that boundary, beside HTTP's (http_errors.h). It needs no gRPC headers: the codes
// are gRPC's canonical numbers, which grpc::StatusCode takes as they are.
#ifndef PYFUNC_SRC_SERVER_GRPC_ERRORS_H_
#define PYFUNC_SRC_SERVER_GRPC_ERRORS_H_

#include <string>

#include "pyfunc/status.h"

namespace pyfunc::server {

// gRPC's status codes (grpc/status.h, google.rpc.Code), those the server answers.
enum class GrpcCode : int {
  kOk = 0,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kResourceExhausted = 8,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
};

struct GrpcError {
  GrpcCode code = GrpcCode::kInternal;
  std::string message;  // bounded as HTTP error bodies are (limits.h)
};

// The table, row for row the HTTP one (HttpErrorFromStatus) with the same messages as
// the Open Inference Protocol's REST error bodies:
//   kInvalidArgument, kSchemaMismatch, kInvalidParams, kModelError (400 in HTTP)
//                      INVALID_ARGUMENT; a model error's message is MLflow's "Encountered
//                      an unexpected error while evaluating the model. ...: <the Python error>"
//   kNotFound          NOT_FOUND
//   kAlreadyExists     ALREADY_EXISTS
//   kDeadlineExceeded  DEADLINE_EXCEEDED "Request processing time exceeded limit"
//   kUnavailable       UNAVAILABLE (503: not ready, draining, the queue full), which
//                      clients' retry policies retry
//   kIOError, kInternal, kLoadFailed  INTERNAL
GrpcError GrpcErrorFromStatus(const Status& status);

// "OK", "INVALID_ARGUMENT", ... (metric labels); "UNKNOWN" for a code not listed above.
const char* GrpcCodeName(int code);

}  // namespace pyfunc::server

#endif  // PYFUNC_SRC_SERVER_GRPC_ERRORS_H_
