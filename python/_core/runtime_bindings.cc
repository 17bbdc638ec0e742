// Bindings of the runtime: a natively loaded model (worker processes in the model's
// environment) scored with columns that pyfunc/_workers.py takes out of pandas.
//
// Columns cross as (name, kind, values, mask): kind is a DataTypeName. Fixed-width
// kinds ("int8".."uint64", "float16".."float64", "timestamp" as int64 ns) carry their
// values' bytes as a 1-D contiguous numpy uint8 array (values.view(numpy.uint8)),
// "bool" a numpy bool array, "string" a list of str or None and "binary" a list of
// bytes or None; mask is None or a numpy bool array, True where the value is present.
// A fifth item, a tuple of ints, is the shape of each row's tensor cell (a fixed-width
// kind only; values then hold rows * product(shape) values); absent or () for scalars.
// Results always carry it. A timestamp kind may name its unit, "timestamp[us]" (values
// still ns; see TimeUnit in table.h).
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cstring>

#include "convert.h"
#include "pyfunc/batch_scorer.h"
#include "pyfunc/model.h"

namespace pyfunc::python {
namespace {

using BoolArray = nb::ndarray<const bool, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

std::shared_ptr<Buffer> PackBits(const bool* v, int64_t n) {
  auto buf = Buffer::Allocate(static_cast<size_t>((n + 7) / 8));
  uint8_t* bits = buf->mutable_data();
  for (int64_t i = 0; i < n; ++i)
    if (v[i]) bits[i >> 3] |= static_cast<uint8_t>(1u << (i & 7));
  return buf;
}

using ByteArray = nb::ndarray<const uint8_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

// The values of a fixed-width column, copied from the bytes of its numpy array.
// `count` values (rows times the cell size).
std::shared_ptr<Buffer> CopyFixed(nb::handle values, DataType type, int64_t count, const std::string& name) {
  auto arr = nb::cast<ByteArray>(values);
  const size_t width = static_cast<size_t>(ByteWidth(type));
  if (arr.shape(0) != width * static_cast<size_t>(count)) {
    throw nb::value_error(("column '" + name + "' (" + DataTypeName(type) + ") has " + std::to_string(arr.shape(0)) +
                           " bytes of values, expected " + std::to_string(count) + " of " + std::to_string(width))
                              .c_str());
  }
  auto buf = Buffer::Allocate(width * static_cast<size_t>(count));
  if (count) std::memcpy(buf->mutable_data(), arr.data(), width * static_cast<size_t>(count));
  return buf;
}

// The tuple's optional fifth item: the tensor cell shape (empty for scalar cells).
std::vector<int64_t> CellShapeOf(const nb::tuple& tup, const std::string& name) {
  std::vector<int64_t> shape;
  if (tup.size() < 5 || tup[4].is_none()) return shape;
  for (nb::handle d : tup[4]) {
    const int64_t dim = nb::cast<int64_t>(d);
    if (dim < 0) throw nb::value_error(("column '" + name + "': negative tensor dimension").c_str());
    shape.push_back(dim);
  }
  return shape;
}

Table TableFromColumns(const nb::list& columns, int64_t rows) {
  std::vector<std::string> names;
  std::vector<Column> cols;
  for (nb::handle item : columns) {
    auto tup = nb::cast<nb::tuple>(item);
    const std::string name = nb::cast<std::string>(tup[0]);
    const std::string kind = nb::cast<std::string>(tup[1]);
    nb::handle values = tup[2];
    nb::handle mask = tup[3];
    std::shared_ptr<Buffer> validity;
    if (!mask.is_none()) {
      auto m = nb::cast<BoolArray>(mask);
      validity = PackBits(m.data(), rows);
    }
    TimeUnit unit = TimeUnit::kNanosecond;
    std::string base = kind;
    for (int u = 0; u < kNumTimeUnits; ++u) {
      if (kind == std::string("timestamp[") + TimeUnitName(static_cast<TimeUnit>(u)) + "]") {
        base = "timestamp";
        unit = static_cast<TimeUnit>(u);
      }
    }
    Result<DataType> parsed = ParseDataType(base);
    if (!parsed.ok()) throw nb::value_error(("column '" + name + "': unknown kind " + kind).c_str());
    const DataType type = parsed.value();
    Result<Column> col = Status::Internal("unset");
    std::vector<int64_t> cell_shape = CellShapeOf(tup, name);
    if (!cell_shape.empty() && ByteWidth(type) == 0) {
      throw nb::value_error(("column '" + name + "': a " + kind + " column cannot hold tensor cells").c_str());
    }
    if (ByteWidth(type) > 0) {
      int64_t count = rows;
      for (int64_t d : cell_shape) {
        if (__builtin_mul_overflow(count, d, &count))
          throw nb::value_error(("column '" + name + "' is too large").c_str());
      }
      col = Column::MakeTensor(type, rows, std::move(cell_shape), validity, CopyFixed(values, type, count, name));
    } else if (type == DataType::kBool) {
      auto arr = nb::cast<BoolArray>(values);
      col = Column::Make(DataType::kBool, rows, validity, PackBits(arr.data(), rows));
    } else {  // string, binary
      ColumnBuilder b(type);
      b.Reserve(rows);
      for (nb::handle v : nb::cast<nb::list>(values)) {
        if (v.is_none()) {
          b.AppendNull();
          continue;
        }
        Py_ssize_t size = 0;
        const char* data = nullptr;
        if (type == DataType::kString) {
          data = PyUnicode_AsUTF8AndSize(v.ptr(), &size);
          if (data == nullptr) throw nb::python_error();
        } else {
          char* bytes = nullptr;
          if (PyBytes_AsStringAndSize(v.ptr(), &bytes, &size) != 0) throw nb::python_error();
          data = bytes;
        }
        b.AppendString(std::string_view(data, static_cast<size_t>(size)));
      }
      col = b.Finish();
    }
    names.push_back(name);
    cols.push_back(Unwrap(std::move(col)).WithTimeUnit(unit));
  }
  if (cols.empty()) return Table::Empty(rows);
  return Unwrap(Table::Make(std::move(names), std::move(cols)));
}

// A numpy copy of a fixed-width column's values, in its dtype.
nb::object NumpyCopy(const Column& c) {
  const DataType t = c.type();
  const size_t width = static_cast<size_t>(ByteWidth(t)), n = static_cast<size_t>(c.length() * c.cell_size());
  auto* copy = new uint8_t[width * n + 8];
  if (n) std::memcpy(copy, c.values()->data(), width * n);
  nb::capsule owner(copy, [](void* p) noexcept { delete[] static_cast<uint8_t*>(p); });
  nb::dlpack::dtype dtype;
  dtype.code = static_cast<uint8_t>(IsFloating(t)   ? nb::dlpack::dtype_code::Float
                                    : IsUnsigned(t) ? nb::dlpack::dtype_code::UInt
                                                    : nb::dlpack::dtype_code::Int);
  dtype.bits = static_cast<uint8_t>(8 * width);
  dtype.lanes = 1;
  size_t shape[1] = {n};
  return nb::cast(nb::ndarray<nb::numpy, nb::ndim<1>>(copy, 1, shape, owner, nullptr, dtype));
}

nb::object BoolsOf(const uint8_t* bits, int64_t n) {
  bool* out = new bool[static_cast<size_t>(n) + 1];
  for (int64_t i = 0; i < n; ++i) out[i] = GetBit(bits, i);
  nb::capsule owner(out, [](void* p) noexcept { delete[] static_cast<bool*>(p); });
  size_t shape[1] = {static_cast<size_t>(n)};
  return nb::cast(nb::ndarray<nb::numpy, bool, nb::ndim<1>>(out, 1, shape, owner));
}

nb::tuple PredictionToPython(const Prediction& p) {
  nb::list columns;
  const Table& t = p.table;
  const int64_t n = t.num_rows();
  for (int i = 0; i < t.num_columns(); ++i) {
    const Column& c = t.column(i);
    nb::object mask = c.validity() ? BoolsOf(c.validity()->data(), n) : nb::none();
    nb::object values;
    std::string kind = DataTypeName(c.type());
    if (c.time_unit() != TimeUnit::kNanosecond) kind = kind + "[" + TimeUnitName(c.time_unit()) + "]";
    if (ByteWidth(c.type()) > 0) {
      values = NumpyCopy(c);
    } else if (c.type() == DataType::kBool) {
      values = BoolsOf(c.values()->data(), n);
    } else {  // string, binary
      nb::list items;
      for (int64_t r = 0; r < n; ++r) {
        if (c.IsNull(r)) {
          items.append(nb::none());
          continue;
        }
        std::string_view s = c.string_value(r);
        PyObject* o = c.type() == DataType::kString
                          ? PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "surrogateescape")
                          : PyBytes_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
        if (o == nullptr) throw nb::python_error();
        items.append(nb::steal(o));
      }
      values = items;
    }
    nb::list cell_shape;
    for (int64_t d : c.cell_shape()) cell_shape.append(d);
    columns.append(nb::make_tuple(t.column_name(i), kind, values, mask, nb::tuple(cell_shape)));
  }
  return nb::make_tuple(static_cast<int>(p.shape), columns, n);
}

// The LoadOptions of a Python call's arguments (timeouts in seconds).
LoadOptions LoadOptionsOf(const std::string& env_manager, int workers, const std::string& python,
                          const std::string& env_root, double predict_timeout, bool quiet) {
  LoadOptions options;
  options.env_manager = Unwrap(ParseEnvManager(env_manager));
  options.workers = workers;
  options.python = python;
  options.env_root = env_root;
  options.predict_timeout = std::chrono::milliseconds(static_cast<int64_t>(predict_timeout * 1000));
  options.quiet = quiet;
  return options;
}

}  // namespace

void BindRuntime(nb::module_& m) {
  nb::class_<Model>(m, "NativeModel",
                    "A pyfunc model loaded in worker processes of its environment (include/pyfunc/model.h).")
      .def_static(
          "load",
          [](const std::string& path, const std::string& env_manager, int workers, const std::string& python,
             const std::string& env_root, double load_timeout, double predict_timeout, nb::handle model_config,
             bool quiet) {
            LoadOptions options = LoadOptionsOf(env_manager, workers, python, env_root, predict_timeout, quiet);
            options.load_timeout = std::chrono::milliseconds(static_cast<int64_t>(load_timeout * 1000));
            options.model_config = ToValue(model_config, "model_config");
            Result<Model> model = [&] {
              nb::gil_scoped_release release;
              return Model::Load(path, options);
            }();
            return Unwrap(std::move(model));
          },
          nb::arg("path"), nb::arg("env_manager") = "local", nb::arg("workers") = 1, nb::arg("python") = "",
          nb::arg("env_root") = "", nb::arg("load_timeout") = 300.0, nb::arg("predict_timeout") = 60.0,
          nb::arg("model_config").none() = nb::none(), nb::arg("quiet") = false)
      .def(
          "predict_columns",
          [](const Model& model, const nb::list& columns, int64_t rows, nb::handle params, int input_shape) {
            Table input = TableFromColumns(columns, rows);
            Value p = ToValue(params, "params");
            if (input_shape < 0 || input_shape > 9 || input_shape == 1 || input_shape == 4 || input_shape == 8) {
              Unwrap(Result<int>(
                  Status::InvalidArgument("input_shape " + std::to_string(input_shape) + " is not an input shape")));
            }
            PredictOptions options;
            options.input_shape = static_cast<InputShape>(input_shape);
            options.exact_types = true;  // a Python caller's own objects
            Result<Prediction> out = [&] {
              nb::gil_scoped_release release;
              return model.Predict(input, p, options);
            }();
            return PredictionToPython(Unwrap(std::move(out)));
          },
          nb::arg("columns"), nb::arg("rows"), nb::arg("params").none() = nb::none(), nb::arg("input_shape") = 0,
          "Scores columns [(name, kind, values, mask)]; returns (shape, columns, rows). input_shape: what "
          "predict is given (0 DataFrame, 2 1-D array, 3 2-D array, 5 dict of arrays, 6 records)")
      .def_prop_ro("path", &Model::path)
      .def_prop_ro("environment", &Model::environment_description)
      .def_prop_ro("workers", &Model::num_workers)
      .def_prop_ro("worker_restarts", &Model::worker_restarts)
      .def_prop_ro("mlmodel", [](const Model& model) { return FromValue(model.spec().document()); });

  m.def(
      "score_file",
      [](const std::string& model_dir, const std::string& input, const std::string& output,
         const std::string& input_format, const std::string& output_format, int64_t batch_rows,
         const std::string& batching, const std::string& env_manager, int workers, const std::string& python,
         const std::string& env_root, double predict_timeout, bool quiet,
         const std::vector<std::string>& carry_columns) {
        if (batch_rows < 1) Unwrap(Result<int>(Status::InvalidArgument("batch_rows must be at least 1")));
        const LoadOptions load = LoadOptionsOf(env_manager, workers, python, env_root, predict_timeout, quiet);
        ScoreFileOptions options;
        options.input = input;
        options.output = output;
        options.input_format = input_format;
        options.output_format = output_format;
        options.carry_columns = carry_columns;
        options.batch_rows = batch_rows;
        options.batching = Unwrap(ParseBatchingMode(batching));
        Result<ScoreFileSummary> summary = [&] {
          nb::gil_scoped_release release;
          return ScoreFile(model_dir, load, options);
        }();
        ScoreFileSummary s = Unwrap(std::move(summary));
        nb::dict out;
        out["rows"] = s.rows;
        out["batches"] = s.batches;
        out["batched"] = s.batching.merge;
        out["batching_reason"] = s.batching.reason;
        return out;
      },
      nb::arg("model_dir"), nb::arg("input"), nb::arg("output"), nb::arg("input_format") = "",
      nb::arg("output_format") = "", nb::arg("batch_rows") = 65536, nb::arg("batching") = "auto",
      nb::arg("env_manager") = "local", nb::arg("workers") = 1, nb::arg("python") = "", nb::arg("env_root") = "",
      nb::arg("predict_timeout") = 60.0, nb::arg("quiet") = false,
      nb::arg("carry_columns") = std::vector<std::string>(),
      "Scores a CSV, Parquet or Arrow IPC file or an MLflow scoring request (JSON) with the model in "
      "model_dir, writing "
      "predictions atomically (batch_scorer.h). Returns {rows, batches, batched, batching_reason}.");

  m.def(
      "prepare_environment",
      [](const std::string& path, const std::string& env_manager, const std::string& python,
         const std::string& env_root, bool quiet) {
        EnvironmentOptions options;
        options.manager = Unwrap(ParseEnvManager(env_manager));
        options.python = python;
        options.env_root = env_root;
        options.quiet = quiet;
        ModelSpec spec = Unwrap(ModelSpec::Load(path));
        Result<PythonEnvironment> env = [&] {
          nb::gil_scoped_release release;
          return PrepareEnvironment(path, spec, options);
        }();
        PythonEnvironment e = Unwrap(std::move(env));
        return nb::make_tuple(e.python, e.root, e.description, e.created);
      },
      nb::arg("path"), nb::arg("env_manager") = "virtualenv", nb::arg("python") = "", nb::arg("env_root") = "",
      nb::arg("quiet") = false, "Builds (or finds) a model's environment: (python, root, description, created).");
}

}  // namespace pyfunc::python
