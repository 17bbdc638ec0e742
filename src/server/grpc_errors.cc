// Status → gRPC status (src/server/grpc_errors.h), derived from the HTTP table so that
// the two protocols cannot drift apart in what they tell a client.
#include "server/grpc_errors.h"

#include "server/http_errors.h"
#include "server/limits.h"

namespace pyfunc::server {

GrpcError GrpcErrorFromStatus(const Status& status) {
  const HttpError e = HttpErrorFromStatus(status);
  GrpcError g;
  g.message = BoundMessage(e.stack_trace ? e.message + ": " + *e.stack_trace : e.message);
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kSchemaMismatch:
    case StatusCode::kInvalidParams:
    case StatusCode::kModelError: g.code = GrpcCode::kInvalidArgument; break;
    case StatusCode::kNotFound: g.code = GrpcCode::kNotFound; break;
    case StatusCode::kAlreadyExists: g.code = GrpcCode::kAlreadyExists; break;
    case StatusCode::kDeadlineExceeded: g.code = GrpcCode::kDeadlineExceeded; break;
    case StatusCode::kUnavailable: g.code = GrpcCode::kUnavailable; break;
    case StatusCode::kOk:
    case StatusCode::kIOError:
    case StatusCode::kInternal:
    case StatusCode::kLoadFailed: g.code = GrpcCode::kInternal; break;
  }
  return g;
}

const char* GrpcCodeName(int code) {
  switch (static_cast<GrpcCode>(code)) {
    case GrpcCode::kOk: return "OK";
    case GrpcCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case GrpcCode::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
    case GrpcCode::kNotFound: return "NOT_FOUND";
    case GrpcCode::kAlreadyExists: return "ALREADY_EXISTS";
    case GrpcCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case GrpcCode::kUnimplemented: return "UNIMPLEMENTED";
    case GrpcCode::kInternal: return "INTERNAL";
    case GrpcCode::kUnavailable: return "UNAVAILABLE";
  }
  return "UNKNOWN";
}

}  // namespace pyfunc::server
