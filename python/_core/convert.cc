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
        throw nb::type_error((what + ": keys must be strings, found " +
                              nb::cast<std::string>(nb::str(k.type().attr("__name__")))).c_str());
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
                        " (expected dict, list, str, int, float, bool or None)").c_str());
}

nb::object FromValue(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNull:
      return nb::none();
    case Value::Kind::kBool:
      return nb::bool_(v.as_bool());
    case Value::Kind::kInt:
      return nb::int_(v.as_int());
    case Value::Kind::kFloat:
      return nb::float_(v.as_float());
    case Value::Kind::kString:
    case Value::Kind::kTimestamp:
      return nb::str(v.as_string().c_str(), v.as_string().size());
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
    case StatusCode::kInvalidArgument:
      name = "InvalidArgumentError";
      break;
    case StatusCode::kNotFound:
      name = "NotFoundError";
      break;
    case StatusCode::kAlreadyExists:
      name = "AlreadyExistsError";
      break;
    case StatusCode::kIOError:
      name = "PyfuncIOError";
      break;
    case StatusCode::kModelError:
      name = "PredictionError";
      break;
    case StatusCode::kDeadlineExceeded:
      name = "PyfuncTimeoutError";
      break;
    case StatusCode::kUnavailable:
      name = "WorkerUnavailableError";
      break;
    case StatusCode::kOk:
    case StatusCode::kInternal:
      name = "PyfuncError";
      break;
  }
  std::string_view message = status.message();
  if (status.code() == StatusCode::kModelError) {
    // The input or params did not fit the signature inside a worker: the same class
    // and message as in process (the worker reports "<Python class>: <message>").
    for (const char* kind : {"SchemaEnforcementError", "InvalidParametersError"}) {
      const std::string prefix = std::string(kind) + ": ";
      if (message.substr(0, prefix.size()) == prefix) {
        name = kind;
        message.remove_prefix(prefix.size());
        break;
      }
    }
    // The model did not load in a worker ("loading <model> in <environment>: ModelLoadError:
    // ..."): the in-process class, with the message that says which environment.
    if (message.substr(0, 8) == "loading " && message.find(": ModelLoadError: ") != std::string_view::npos) {
      name = "ModelLoadError";
    }
  }
  nb::object cls = nb::module_::import_("pyfunc.exceptions").attr(name);
  PyErr_SetString(cls.ptr(), std::string(message).c_str());
  throw nb::python_error();
}

}  // namespace pyfunc::python
