// pyfunc._core: the native library bound for Python. Bindings convert types and
// errors and release the GIL around blocking work; behaviour lives in libpyfunc.
#include <nanobind/nanobind.h>

#include "convert.h"
#include "pyfunc/version.h"

NB_MODULE(_core, m) {
  m.doc() = "Native core of pyfunc (libpyfunc bound with nanobind).";
  m.attr("__version__") = PYFUNC_VERSION;
  pyfunc::python::BindFormat(m);
  pyfunc::python::BindTracking(m);
  pyfunc::python::BindRuntime(m);
}
