// Status and Result<T>: how pyfunc reports expected failures.
//
// Every operation that can fail for a reason a user can fix (a bad MLmodel file, a
// missing path, a bad argument) returns a Status or a Result<T> instead of throwing.
// Messages read "context: detail", e.g. "model/MLmodel:3:5: flavors: expected a mapping".
//
// Thread safety: Status and Result are values; distinct objects may be used from
// different threads without synchronization.
#ifndef PYFUNC_STATUS_H_
#define PYFUNC_STATUS_H_

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace pyfunc {

// A few codes, chosen by what a caller does about them (and how they map to the
// Python exception types and HTTP statuses at the boundaries).
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,   // the caller passed something wrong (bad file content, bad option)
  kNotFound,          // a path, run or model that does not exist
  kAlreadyExists,     // a destination that must not exist does
  kIOError,           // the operating system refused (permissions, disk full, ...)
  kInternal,          // a bug or an unexpected state
  kModelError,        // the model's own code raised (the message carries the Python error)
  kDeadlineExceeded,  // a prediction or a load took longer than its timeout
  kUnavailable,       // no worker can take the work (it died, the pool is closing, a queue is full)
  // The input or the params do not fit the model's signature (MLflow's schema
  // enforcement, run where the model runs); the message is MLflow's.
  kSchemaMismatch,  // the input: Python's SchemaEnforcementError
  kInvalidParams,   // the params: Python's InvalidParametersError ("Invalid parameters found")
  kLoadFailed,      // the model's loader could not load it (Python's ModelLoadError); the
                    // message reads "ModelLoadError: <text>"
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) { return Status(StatusCode::kInvalidArgument, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(StatusCode::kNotFound, std::move(msg)); }
  static Status AlreadyExists(std::string msg) { return Status(StatusCode::kAlreadyExists, std::move(msg)); }
  static Status IOError(std::string msg) { return Status(StatusCode::kIOError, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(StatusCode::kInternal, std::move(msg)); }
  static Status ModelError(std::string msg) { return Status(StatusCode::kModelError, std::move(msg)); }
  static Status DeadlineExceeded(std::string msg) { return Status(StatusCode::kDeadlineExceeded, std::move(msg)); }
  static Status Unavailable(std::string msg) { return Status(StatusCode::kUnavailable, std::move(msg)); }
  static Status SchemaMismatch(std::string msg) { return Status(StatusCode::kSchemaMismatch, std::move(msg)); }
  static Status InvalidParams(std::string msg) { return Status(StatusCode::kInvalidParams, std::move(msg)); }
  static Status LoadFailed(std::string msg) { return Status(StatusCode::kLoadFailed, std::move(msg)); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "<code name>: <message>", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>".
  Status WithContext(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : data_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(data_).ok()) {
      data_ = Status::Internal("Result constructed from an OK status without a value");
    }
  }

  bool ok() const { return std::holds_alternative<T>(data_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(data_);
  }
  const T& value() const& { return std::get<T>(data_); }
  T& value() & { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace pyfunc

// Propagates a non-OK Status out of the current function.
#define PYFUNC_RETURN_IF_ERROR(expr)         \
  do {                                       \
    ::pyfunc::Status _pyfunc_st = (expr);    \
    if (!_pyfunc_st.ok()) return _pyfunc_st; \
  } while (0)

#define PYFUNC_CONCAT_INNER_(a, b) a##b
#define PYFUNC_CONCAT_(a, b) PYFUNC_CONCAT_INNER_(a, b)

// Declares `lhs` from a Result, or returns its Status.
#define PYFUNC_ASSIGN_OR_RETURN(lhs, expr) \
  PYFUNC_ASSIGN_OR_RETURN_IMPL_(PYFUNC_CONCAT_(_pyfunc_res_, __LINE__), lhs, expr)
#define PYFUNC_ASSIGN_OR_RETURN_IMPL_(res, lhs, expr) \
  auto res = (expr);                                  \
  if (!res.ok()) return res.status();                 \
  lhs = std::move(res).value()

#endif  // PYFUNC_STATUS_H_
