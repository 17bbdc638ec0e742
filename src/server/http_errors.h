// Error responses of the scoring server: MLflow's status codes and JSON bodies.
#ifndef PYFUNC_SRC_SERVER_HTTP_ERRORS_H_
#define PYFUNC_SRC_SERVER_HTTP_ERRORS_H_

#include <cstddef>
#include <string>

#include "pyfunc/status.h"

namespace pyfunc {

// An error response: status, content type and body.
struct HttpError {
  int status = 500;
  std::string content_type;
  std::string body;
  // Extra header (e.g. "Retry-After" for 503), empty when none.
  std::string header_name;
  std::string header_value;
};

// The one table from Status to HTTP (src/server/http_errors.cc):
//   kInvalidArgument   400 BAD_REQUEST               (bad body, missing column)
//   kNotFound          404 RESOURCE_DOES_NOT_EXIST
//   kAlreadyExists     400 RESOURCE_ALREADY_EXISTS
//   kModelError        400 BAD_REQUEST "Encountered an unexpected error while evaluating
//                      the model. ..." with the Python error as `stack_trace` (MLflow)
//   kDeadlineExceeded  504, body "Request processing time exceeded limit" (MLflow's
//                      plain text labelled application/json)
//   kUnavailable       503 TEMPORARILY_UNAVAILABLE, Retry-After: 1
//   kIOError/kInternal 500 INTERNAL_ERROR
// JSON bodies are MLflow's MlflowException.serialize_as_json(): error_code, message,
// [stack_trace], sqlstate and error_class where MLflow 3 writes them.
HttpError HttpErrorFromStatus(const Status& status);
// 415 for a /invocations Content-Type MLflow refuses (text/plain, MLflow's messages).
HttpError UnsupportedMediaType(const std::string& message);
// 413 for a body over the limit.
HttpError PayloadTooLarge(size_t limit);

}  // namespace pyfunc

#endif  // PYFUNC_SRC_SERVER_HTTP_ERRORS_H_
