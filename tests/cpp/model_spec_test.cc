// MLmodel reading and writing: round trips over tests/data/mlmodel, the flat form,
// and one expected error per malformed file.
#include "pyfunc/model_spec.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "pyfunc/yaml.h"
#include "test_util.h"

namespace pyfunc {
namespace {

namespace fs = std::filesystem;
using ::pyfunc::testing::TestDataDir;
using ::testing::HasSubstr;

std::string ReadText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<fs::path> FilesIn(const std::string& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(TestDataDir() + "/mlmodel/" + dir)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ModelSpecTest, RoundTripIsByteIdentical) {
  auto files = FilesIn("roundtrip");
  ASSERT_GE(files.size(), 5u);
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    const std::string text = ReadText(path);
    Result<ModelSpec> spec = ModelSpec::Parse(text, path.string());
    PYFUNC_ASSERT_OK(spec);
    EXPECT_EQ(spec->ToYaml(), text);
  }
}

TEST(ModelSpecTest, UnknownFieldsAndFlavorsSurvive) {
  const auto path = TestDataDir() + "/mlmodel/roundtrip/mlflow-3.x-sklearn.MLmodel";
  Result<ModelSpec> spec = ModelSpec::Load(path);
  PYFUNC_ASSERT_OK(spec);
  const Value* future = spec->document().Find("some_future_field");
  ASSERT_NE(future, nullptr);
  EXPECT_TRUE(future->Find("when")->is_string());  // quoted: a string that looks like a date
  EXPECT_THAT(spec->ToYaml(), HasSubstr("  when: '2026-01-01'\n"));
  EXPECT_EQ(spec->document().Find("prompts")->kind(), Value::Kind::kNull);
  EXPECT_THAT(spec->ToYaml(), HasSubstr("prompts: null\n"));
  EXPECT_EQ(*spec->GetString("model_id"), "m-c341a2270e7b421f8333e76e6580b504");
}

TEST(ModelSpecTest, InterpretsPythonFunctionFlavorOfEachVersion) {
  auto load = [](const std::string& name) {
    Result<ModelSpec> spec = ModelSpec::Load(TestDataDir() + "/mlmodel/roundtrip/" + name);
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    Result<PyFuncFlavor> f = spec->python_function();
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return *f;
  };
  PyFuncFlavor v0 = load("mlflow-0.1.0-sklearn.MLmodel");
  EXPECT_EQ(v0.loader_module, "mlflow.sklearn");
  EXPECT_EQ(v0.data, "model.pkl");
  EXPECT_EQ(v0.conda_env, "conda.yaml");  // MLflow < 2.0: env is a plain string
  EXPECT_FALSE(v0.python_env.has_value());
  EXPECT_FALSE(v0.python_version.has_value());

  PyFuncFlavor v2 = load("mlflow-2.8-pythonmodel.MLmodel");
  EXPECT_EQ(v2.loader_module, "mlflow.pyfunc.model");
  EXPECT_FALSE(v2.code.has_value());  // `code: null`
  EXPECT_EQ(v2.conda_env, "conda.yaml");
  EXPECT_EQ(v2.python_env, "python_env.yaml");
  EXPECT_EQ(v2.python_version, "3.9.13");
  ASSERT_TRUE(v2.config.is_map());
  EXPECT_EQ(v2.config.Find("threshold")->as_float(), 0.5);
  EXPECT_FALSE(v2.streamable);

  PyFuncFlavor v3 = load("mlflow-3.x-code-model.MLmodel");
  EXPECT_EQ(v3.model_code_path, "/home/u/project/my_model.py");  // absolute by design; only its basename is used
}

TEST(ModelSpecTest, FlatFormIsReadAndNeverWritten) {
  Result<ModelSpec> spec = ModelSpec::Load(TestDataDir() + "/mlmodel/flat/seed-example.MLmodel");
  PYFUNC_ASSERT_OK(spec);
  Result<PyFuncFlavor> f = spec->python_function();
  PYFUNC_ASSERT_OK(f);
  EXPECT_EQ(f->loader_module, "mlflow.sklearn");
  EXPECT_EQ(f->data, "data/model.pkl");
  EXPECT_EQ(f->code, "code");
  EXPECT_EQ(f->conda_env, "mlflow_env.yml");
  const std::string yaml = spec->ToYaml();
  EXPECT_EQ(yaml,
            "flavors:\n"
            "  python_function:\n"
            "    code: code\n"
            "    data: data/model.pkl\n"
            "    env: mlflow_env.yml\n"
            "    loader_module: mlflow.sklearn\n"
            "main: sklearn_iris\n");

  Result<ModelSpec> nested = ModelSpec::Load(TestDataDir() + "/mlmodel/flat/nested-python-function.MLmodel");
  PYFUNC_ASSERT_OK(nested);
  EXPECT_EQ(nested->python_function()->loader_module, "my_loader");
  EXPECT_THAT(nested->ToYaml(), HasSubstr("time_created: 2018-06-05 12:00:00\n"));
}

TEST(ModelSpecTest, BadFilesGiveOneClearError) {
  auto files = FilesIn("bad");
  ASSERT_GE(files.size(), 10u);
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    const std::string text = ReadText(path);
    ASSERT_EQ(text.rfind("# expect: ", 0), 0u) << "each bad file starts with '# expect: <fragment>'";
    const std::string expected = text.substr(10, text.find('\n') - 10);
    Result<ModelSpec> spec = ModelSpec::Load(path.string());
    Status st = spec.ok() ? spec->python_function().status() : spec.status();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(st.message(), HasSubstr(path.string())) << "the message names the file";
    EXPECT_THAT(st.message(), HasSubstr(expected));
  }
}

TEST(ModelSpecTest, MissingPythonFunctionFlavorNamesThePresentOnes) {
  Result<ModelSpec> spec = ModelSpec::Parse("flavors:\n  sklearn:\n    pickled_model: m.pkl\n", "x/MLmodel");
  PYFUNC_ASSERT_OK(spec);
  EXPECT_FALSE(spec->has_python_function());
  Status st = spec->python_function().status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "x/MLmodel: the model has no python_function flavor (flavors: sklearn)");
}

TEST(ModelSpecTest, ImpliedLoaderModuleForPythonModel) {
  Result<ModelSpec> spec = ModelSpec::Parse("flavors:\n  python_function:\n    python_model: python_model.pkl\n", "m");
  PYFUNC_ASSERT_OK(spec);
  EXPECT_EQ(spec->python_function()->loader_module, "mlflow.pyfunc.model");
}

TEST(ModelSpecTest, LoadReportsMissingPaths) {
  Result<ModelSpec> missing = ModelSpec::Load("/nonexistent/model");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  pyfunc::testing::TempDir dir;
  Result<ModelSpec> no_file = ModelSpec::Load(dir.path());
  EXPECT_EQ(no_file.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(no_file.status().message(), HasSubstr("no MLmodel file"));
}

TEST(ModelSpecTest, NewModelHasUuidAndTimestamp) {
  ModelSpec spec = ModelSpec::New();
  ASSERT_TRUE(spec.GetString("model_uuid").has_value());
  EXPECT_EQ(spec.GetString("model_uuid")->size(), 32u);
  EXPECT_NE(*spec.GetString("model_uuid"), *ModelSpec::New().GetString("model_uuid"));
  const std::string t = *spec.GetString("utc_time_created");
  EXPECT_EQ(t[4], '-');
  EXPECT_EQ(t[10], ' ');  // str(datetime): a space, not 'T'
  // Written quoted, because unquoted it would read back as a timestamp.
  EXPECT_THAT(spec.ToYaml(), HasSubstr("utc_time_created: '" + t + "'\n"));
}

TEST(ModelSpecTest, CheckModelRelativePath) {
  EXPECT_EQ(*CheckModelRelativePath("./data/x"), "data/x");
  EXPECT_EQ(*CheckModelRelativePath("code/"), "code");
  EXPECT_EQ(*CheckModelRelativePath("a/../b"), "b");
  EXPECT_FALSE(CheckModelRelativePath("a/../../b").ok());
  EXPECT_FALSE(CheckModelRelativePath("/etc").ok());
  EXPECT_FALSE(CheckModelRelativePath("").ok());
}

}  // namespace
}  // namespace pyfunc
