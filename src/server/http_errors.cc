// Status → HTTP status and MLflow error body: the one table of the server
// (include/pyfunc/server.h). Error codes, statuses, sqlstate and error_class are those
// of MLflow 3's MlflowException (mlflow/exceptions.py, ERROR_CODE_TO_HTTP_STATUS).
#include <string>
#include <string_view>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "server/http_errors.h"
#include "server/limits.h"

namespace pyfunc {
namespace {

constexpr const char* kJson = "application/json";

// MLflow's serialize_as_json(): keys in this order, json.dumps separators.
std::string MlflowErrorBody(const char* error_code, const std::string& message, const std::string* stack_trace,
                            const char* sqlstate, const char* error_class) {
  nlohmann::ordered_json j;
  j["error_code"] = error_code;
  j["message"] = server::BoundMessage(message);
  if (stack_trace != nullptr) j["stack_trace"] = server::BoundMessage(*stack_trace);
  if (sqlstate != nullptr) {
    j["sqlstate"] = sqlstate;
    j["error_class"] = error_class;
  }
  // ", " and ": " separators and \uXXXX escapes, as Python's json.dumps.
  std::string compact = j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(compact.size() + 16);
  bool in_string = false;
  bool escaped = false;
  for (const char c : compact) {
    out += c;
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == ',' || c == ':') {
      out += ' ';
    }
  }
  return out;
}

HttpError Json(int status, const char* error_code, const std::string& message, const std::string* stack_trace,
               const char* sqlstate, const char* error_class) {
  HttpError e;
  e.status = status;
  e.content_type = kJson;
  e.body = MlflowErrorBody(error_code, message, stack_trace, sqlstate, error_class);
  return e;
}

}  // namespace

HttpError HttpErrorFromStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      return Json(400, "BAD_REQUEST", status.message(), nullptr, "KAM00", "INVALID_PARAMETER_VALUE");
    case StatusCode::kNotFound:
      return Json(404, "RESOURCE_DOES_NOT_EXIST", status.message(), nullptr, "KAM00", "RESOURCE_NOT_FOUND");
    case StatusCode::kAlreadyExists:
      return Json(400, "RESOURCE_ALREADY_EXISTS", status.message(), nullptr, "KAM00", "RESOURCE_ALREADY_EXISTS");
    case StatusCode::kSchemaMismatch:
      // The input did not fit the model's signature (PyFuncModel's schema enforcement):
      // MLflow answers with its INVALID_PARAMETER_VALUE and the enforcement message.
      return Json(400, "INVALID_PARAMETER_VALUE", status.message(), nullptr, "KAM01", "SCHEMA_ENFORCEMENT_FAILED");
    case StatusCode::kInvalidParams:
      // Params that do not fit the params schema: MLflow's plain INVALID_PARAMETER_VALUE.
      return Json(400, "INVALID_PARAMETER_VALUE", status.message(), nullptr, "KAM00", "INVALID_PARAMETER_VALUE");
    case StatusCode::kModelError: {
      // MLflow's server wraps any other exception of the model in this message, with
      // the traceback as stack_trace; the worker gives us "Type: message".
      return Json(400, "BAD_REQUEST",
                  "Encountered an unexpected error while evaluating the model. Verify that the serialized "
                  "input Dataframe is compatible with the model for inference.",
                  &status.message(), "KAM00", "INVALID_PARAMETER_VALUE");
    }
    case StatusCode::kDeadlineExceeded: {
      HttpError e;
      e.status = 504;
      e.content_type = kJson;  // MLflow labels its plain-text 504 body as JSON
      e.body = "Request processing time exceeded limit";
      return e;
    }
    case StatusCode::kUnavailable: {
      HttpError e = Json(503, "TEMPORARILY_UNAVAILABLE", status.message(), nullptr, "XXM00", "CLIENT_INTERNAL_ERROR");
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
  return Json(500, "INTERNAL_ERROR", status.message(), nullptr, "XXM00", "CLIENT_INTERNAL_ERROR");
}

HttpError UnsupportedMediaType(const std::string& message) {
  HttpError e;
  e.status = 415;
  e.content_type = "text/plain";
  e.body = message;
  return e;
}

HttpError PayloadTooLarge(size_t limit) {
  return Json(413, "RESOURCE_EXHAUSTED",
              fmt::format("The request body is larger than the server's limit of {} bytes (--max-body-size).", limit),
              nullptr, nullptr, nullptr);
}

}  // namespace pyfunc
