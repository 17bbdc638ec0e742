// Status → HTTP status and MLflow error body: the one table of the server
// (src/server/http_errors.h). Error codes, statuses, sqlstate and error_class are those
// of MLflow 3's MlflowException (mlflow/exceptions.py, ERROR_CODE_TO_HTTP_STATUS).
#include <string>
#include <string_view>

#include <fmt/core.h>

#include "server/http_errors.h"

#include "pyfunc/value.h"
#include "server/limits.h"

namespace pyfunc {
namespace {

HttpError Json(int status, const char* error_code, const std::string& message, const char* sqlstate,
               const char* error_class) {
  HttpError e;
  e.status = status;
  e.error_code = error_code;
  e.message = message;
  e.sqlstate = sqlstate;
  e.error_class = error_class;
  return e;
}

HttpError PlainText(int status, const std::string& message, const char* content_type) {
  HttpError e;
  e.status = status;
  e.message = message;
  e.content_type = content_type;
  return e;
}

}  // namespace

HttpError HttpErrorFromStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      return Json(400, "BAD_REQUEST", status.message(), "KAM00", "INVALID_PARAMETER_VALUE");
    case StatusCode::kNotFound:
      return Json(404, "RESOURCE_DOES_NOT_EXIST", status.message(), "KAM00", "RESOURCE_NOT_FOUND");
    case StatusCode::kAlreadyExists:
      return Json(400, "RESOURCE_ALREADY_EXISTS", status.message(), "KAM00", "RESOURCE_ALREADY_EXISTS");
    case StatusCode::kSchemaMismatch:
      // The input did not fit the model's signature (PyFuncModel's schema enforcement):
      // MLflow answers with its INVALID_PARAMETER_VALUE and the enforcement message.
      return Json(400, "INVALID_PARAMETER_VALUE", status.message(), "KAM01", "SCHEMA_ENFORCEMENT_FAILED");
    case StatusCode::kInvalidParams:
      // Params that do not fit the params schema: MLflow's plain INVALID_PARAMETER_VALUE.
      return Json(400, "INVALID_PARAMETER_VALUE", status.message(), "KAM00", "INVALID_PARAMETER_VALUE");
    case StatusCode::kModelError: {
      // MLflow's server wraps any other exception of the model in this message, with
      // the traceback as stack_trace; the worker gives us "Type: message".
      HttpError e = Json(400, "BAD_REQUEST",
                         "Encountered an unexpected error while evaluating the model. Verify that the serialized "
                         "input Dataframe is compatible with the model for inference.",
                         "KAM00", "INVALID_PARAMETER_VALUE");
      e.stack_trace = status.message();
      return e;
    }
    case StatusCode::kDeadlineExceeded:
      // MLflow labels its plain-text 504 body as JSON.
      return PlainText(504, "Request processing time exceeded limit", "application/json");
    case StatusCode::kUnavailable: {
      HttpError e = Json(503, "TEMPORARILY_UNAVAILABLE", status.message(), "XXM00", "CLIENT_INTERNAL_ERROR");
      e.header_name = "Retry-After";
      e.header_value = "1";
      return e;
    }
    case StatusCode::kOk:
    case StatusCode::kIOError:
    case StatusCode::kInternal:
    case StatusCode::kLoadFailed:  // a server answers only once its model has loaded
      break;
  }
  return Json(500, "INTERNAL_ERROR", status.message(), "XXM00", "CLIENT_INTERNAL_ERROR");
}

HttpError EndpointNotFound(const std::string& message) {
  return Json(404, "ENDPOINT_NOT_FOUND", message, "KAM00", "RESOURCE_NOT_FOUND");
}

HttpError UnsupportedMediaType(const std::string& message) { return PlainText(415, message, "text/plain"); }

HttpError PayloadTooLarge(size_t limit) {
  return Json(413, "RESOURCE_EXHAUSTED",
              fmt::format("The request body is larger than the server's limit of {} bytes (--max-body-size).", limit),
              nullptr, nullptr);
}

std::string HttpError::Body() const {
  if (error_code.empty()) return message;
  Value::Map fields;
  fields.emplace_back("error_code", error_code);
  fields.emplace_back("message", server::BoundMessage(message));
  if (stack_trace) fields.emplace_back("stack_trace", server::BoundMessage(*stack_trace));
  if (sqlstate != nullptr) {
    fields.emplace_back("sqlstate", sqlstate);
    fields.emplace_back("error_class", error_class);
  }
  return ToJson(Value(std::move(fields)));
}

std::string HttpError::OipBody() const {
  Value::Map fields;
  fields.emplace_back("error", server::BoundMessage(stack_trace ? message + ": " + *stack_trace : message));
  return ToJson(Value(std::move(fields)));
}

}  // namespace pyfunc
