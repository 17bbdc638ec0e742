// Helpers shared by the C++ tests.
#ifndef PYFUNC_TESTS_CPP_TEST_UTIL_H_
#define PYFUNC_TESTS_CPP_TEST_UTIL_H_

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "pyfunc/model_dir.h"
#include "pyfunc/status.h"
#include "pyfunc/table.h"

namespace pyfunc::testing {

// EXPECT_OK(status_or_result): prints the Status message on failure.
#define PYFUNC_EXPECT_OK(expr)                                                                         \
  do {                                                                                                 \
    const auto& _st = (expr);                                                                          \
    EXPECT_TRUE(::pyfunc::testing::StatusOf(_st).ok()) << ::pyfunc::testing::StatusOf(_st).ToString(); \
  } while (0)
#define PYFUNC_ASSERT_OK(expr)                                                                         \
  do {                                                                                                 \
    const auto& _st = (expr);                                                                          \
    ASSERT_TRUE(::pyfunc::testing::StatusOf(_st).ok()) << ::pyfunc::testing::StatusOf(_st).ToString(); \
  } while (0)

inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

inline std::string TestDataDir() { return PYFUNC_TEST_DATA_DIR; }

// A column of a fixed-width `type` holding `values` (T of the type's width), null at
// row `null_row` (-1: none).
template <typename T>
Column FixedColumn(DataType type, const std::vector<T>& values, int null_row = -1) {
  ColumnBuilder b(type);
  for (size_t i = 0; i < values.size(); ++i) {
    if (static_cast<int>(i) == null_row)
      b.AppendNull();
    else
      b.AppendFixed(&values[i]);
  }
  return b.Finish();
}

// The whole content of a file ("" when it cannot be read).
inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Saves tests/data/models/behave (a model whose behaviour each call picks with
// params={"mode": ...}; the signature declares the param, as MLflow requires for params
// to reach predict) to `dst`.
inline Result<ModelSpec> SaveBehaveModel(const std::string& dst) {
  SaveModelOptions options;
  options.loader_module = "behave_model";
  options.code_paths = {TestDataDir() + "/models/behave/behave_model.py"};
  options.python_version = "3.11.7";
  ModelSpec model = ModelSpec::New();
  model.SetField("signature", Value(Value::Map{{"inputs", Value()},
                                               {"outputs", Value()},
                                               {"params", Value("[{\"name\": \"mode\", \"type\": \"string\", "
                                                                "\"default\": \"echo\", \"shape\": null}]")}}));
  return SaveModel(dst, options, model);
}

// A fresh temporary directory, removed with its contents when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "pyfunc-test-XXXXXX").string();
    path_ = ::mkdtemp(templ.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace pyfunc::testing

#endif  // PYFUNC_TESTS_CPP_TEST_UTIL_H_
