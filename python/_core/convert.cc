#include "convert.h"

#include <string>
#include <string_view>

#include <nanobind/stl/string.h>

namespace pyfunc::python {

Value ToValue(nb::handle obj, const std::string& what) {
  if (obj.is_none()) return Value();
  if (PyBool_Check(obj.ptr())) return Value(obj.ptr() == Py_True);
  if (PyLong_Check(obj.ptr())) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj.ptr(), &overflow);
    if (overflow != 0) throw nb::value_error((what + ": integer does not fit in 64 bits").c_str());
    return Value(static_cast<int64_t>(v));
  }
  if (PyFloat_Check(obj.ptr())) return Value(PyFloat_AsDouble(obj.ptr()));
  if (PyUnicode_Check(obj.ptr())) return Value(nb::cast<std::string>(obj));
  if (PyDict_Check(obj.ptr())) {
    Value out = Value::EmptyMap();
    for (auto [k, v] : nb::borrow<nb::dict>(obj)) {
      if (!PyUnicode_Check(k.ptr())) {
        throw nb::type_error(
            (what + ": keys must be strings, found " + nb::cast<std::string>(nb::str(k.type().attr("__name__"))))
                .c_str());
      }
      std::string key = nb::cast<std::string>(k);
      out.Set(key, ToValue(v, what + "." + key));
    }
    return out;
  }
  if (PyList_Check(obj.ptr()) || PyTuple_Check(obj.ptr())) {
    Value::List items;
    size_t i = 0;
    for (nb::handle item : obj) items.push_back(ToValue(item, what + "[" + std::to_string(i++) + "]"));
    return Value(std::move(items));
  }
  if (nb::hasattr(obj, "isoformat")) {  // datetime.datetime / datetime.date
    nb::object text = nb::hasattr(obj, "hour") ? obj.attr("isoformat")(" ") : obj.attr("isoformat")();
    return Value::Timestamp(nb::cast<std::string>(text));
  }
  throw nb::type_error((what + ": cannot store a value of type " +
                        nb::cast<std::string>(nb::str(obj.type().attr("__name__"))) +
                        " (expected dict, list, str, int, float, bool or None)")
                           .c_str());
}

nb::object FromValue(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNull: return nb::none();
    case Value::Kind::kBool: return nb::bool_(v.as_bool());
    case Value::Kind::kInt: return nb::int_(v.as_int());
    case Value::Kind::kFloat: return nb::float_(v.as_float());
    case Value::Kind::kString:
    case Value::Kind::kTimestamp: return nb::str(v.as_string().c_str(), v.as_string().size());
    case Value::Kind::kList: {
      nb::list out;
      for (const Value& item : v.as_list()) out.append(FromValue(item));
      return out;
    }
    case Value::Kind::kMap: {
      nb::dict out;
      for (const auto& [key, item] : v.as_map()) out[nb::str(key.c_str(), key.size())] = FromValue(item);
      return out;
    }
  }
  return nb::none();
}

void Raise(const Status& status) {
  // StatusCode -> pyfunc.exceptions class. Keep in step with pyfunc/exceptions.py.
  const char* name = "PyfuncError";
  switch (status.code()) {
    case StatusCode::kInvalidArgument: name = "InvalidArgumentError"; break;
    case StatusCode::kNotFound: name = "NotFoundError"; break;
    case StatusCode::kAlreadyExists: name = "AlreadyExistsError"; break;
    case StatusCode::kIOError: name = "PyfuncIOError"; break;
    case StatusCode::kModelError: name = "PredictionError"; break;
    case StatusCode::kSchemaMismatch: name = "SchemaEnforcementError"; break;
    case StatusCode::kInvalidParams: name = "InvalidParametersError"; break;
    case StatusCode::kLoadFailed: name = "ModelLoadError"; break;
    case StatusCode::kDeadlineExceeded: name = "PyfuncTimeoutError"; break;
    case StatusCode::kUnavailable: name = "WorkerUnavailableError"; break;
    case StatusCode::kOk:
    case StatusCode::kInternal: name = "PyfuncError"; break;
  }
  const std::string& message = status.message();
  nb::object cls = nb::module_::import_("pyfunc.exceptions").attr(name);
  PyErr_SetString(cls.ptr(), message.c_str());
  throw nb::python_error();
}

}  // namespace pyfunc::python
