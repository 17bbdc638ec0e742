// Conversions shared by the pyfunc._core binding files: Value <-> Python objects, and
// Status -> the Python exception types of pyfunc.exceptions (one table, in convert.cc).
#ifndef PYFUNC_PYTHON_CORE_CONVERT_H_
#define PYFUNC_PYTHON_CORE_CONVERT_H_

#include <nanobind/nanobind.h>

#include "pyfunc/status.h"
#include "pyfunc/value.h"

namespace pyfunc::python {

namespace nb = nanobind;

// dict/list/tuple/str/int/float/bool/None (and datetime/date, kept as ISO text).
// TypeError naming `what` for anything else.
Value ToValue(nb::handle obj, const std::string& what);
nb::object FromValue(const Value& value);

// Raises the pyfunc.exceptions type for status.code() with status.message().
[[noreturn]] void Raise(const Status& status);

template <typename T>
T Unwrap(Result<T> result) {
  if (!result.ok()) Raise(result.status());
  return std::move(result).value();
}

inline void Check(const Status& status) {
  if (!status.ok()) Raise(status);
}

void BindFormat(nb::module_& m);
void BindRuntime(nb::module_& m);
void BindTracking(nb::module_& m);

}  // namespace pyfunc::python

#endif  // PYFUNC_PYTHON_CORE_CONVERT_H_
