// Error responses of the scoring server: MLflow's status codes and JSON bodies.
#ifndef PYFUNC_SRC_SERVER_HTTP_ERRORS_H_
#define PYFUNC_SRC_SERVER_HTTP_ERRORS_H_

#include <cstddef>
#include <optional>
#include <string>

#include "pyfunc/status.h"

namespace pyfunc {

// An error response of the scoring server: its status, MLflow's error fields and the
// body rendered from them, once, for the protocol that answers.
struct HttpError {
  int status = 500;
  // MLflow's error_code; empty for a plain-text body, which is then `message` itself.
  std::string error_code;
  std::string message;
  std::optional<std::string> stack_trace;
  const char* sqlstate = nullptr;  // with error_class, where MLflow 3 writes them
  const char* error_class = nullptr;
  std::string content_type = "application/json";
  // Extra header (e.g. "Retry-After" for 503), empty when none.
  std::string header_name;
  std::string header_value;

  // MLflow's MlflowException.serialize_as_json(): error_code, message, [stack_trace],
  // [sqlstate, error_class], as json.dumps writes them; a plain-text error's message.
  // Messages are cut to server::kMaxErrorMessageBytes.
  std::string Body() const;
  // The Open Inference Protocol's {"error": "<message>[: <stack_trace>]"}.
  std::string OipBody() const;
};

// The one table from Status to HTTP (src/server/http_errors.cc):
//   kInvalidArgument   400 BAD_REQUEST               (a malformed body or request)
//   kSchemaMismatch    400 INVALID_PARAMETER_VALUE   KAM01 SCHEMA_ENFORCEMENT_FAILED (the
//                      input does not fit the signature: a missing column, a bad cast)
//   kInvalidParams     400 INVALID_PARAMETER_VALUE   (params that do not fit their schema)
//   kNotFound          404 RESOURCE_DOES_NOT_EXIST
//   kAlreadyExists     400 RESOURCE_ALREADY_EXISTS
//   kModelError        400 BAD_REQUEST "Encountered an unexpected error while evaluating
//                      the model. ..." with the Python error as `stack_trace` (MLflow)
//   kDeadlineExceeded  504, body "Request processing time exceeded limit" (MLflow's
//                      plain text labelled application/json)
//   kUnavailable       503 TEMPORARILY_UNAVAILABLE, Retry-After: 1
//   kIOError/kInternal 500 INTERNAL_ERROR (and kLoadFailed: a server answers only once
//                      its model has loaded)
HttpError HttpErrorFromStatus(const Status& status);
// 404 ENDPOINT_NOT_FOUND for a path the server does not route.
HttpError EndpointNotFound(const std::string& message);
// 415 for a /invocations Content-Type MLflow refuses (text/plain, MLflow's messages).
HttpError UnsupportedMediaType(const std::string& message);
// 413 for a body over the limit.
HttpError PayloadTooLarge(size_t limit);

}  // namespace pyfunc

#endif  // PYFUNC_SRC_SERVER_HTTP_ERRORS_H_
