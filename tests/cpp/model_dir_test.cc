// save_model / add_to_model / validate on real directories, including a failure
// injected at every write of a save that must leave nothing behind.
#include "pyfunc/model_dir.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "pyfunc/yaml.h"
#include "test_util.h"

namespace pyfunc {
namespace {

namespace fs = std::filesystem;
using ::pyfunc::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

void WriteText(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string ReadText(const std::string& path) {
  Result<std::string> r = FileSystem::Default()->ReadFile(path);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : "";
}

// Inputs of a typical save: a data file, a code file and a code package, a conda file.
struct SaveInputs {
  explicit SaveInputs(const TempDir& dir) {
    WriteText(dir.Join("in/model.pkl"), "pickled bytes");
    WriteText(dir.Join("in/loader.py"), "def _load_pyfunc(path):\n    return None\n");
    WriteText(dir.Join("in/pkg/__init__.py"), "");
    WriteText(dir.Join("in/pkg/util.py"), "X = 1\n");
    WriteText(dir.Join("in/pkg/__pycache__/util.cpython-311.pyc"), "junk");
    WriteText(dir.Join("in/env.yml"),
              "name: test\nchannels:\n- conda-forge\ndependencies:\n- python=3.10.4\n- pip=23.1\n"
              "- pip:\n  - scikit-learn==1.3.0\n  - pandas\n");
    options.loader_module = "loader";
    options.data_path = dir.Join("in/model.pkl");
    options.code_paths = {dir.Join("in/loader.py"), dir.Join("in/pkg")};
    options.conda_env_path = dir.Join("in/env.yml");
    options.python_version = "3.11.7";
  }
  SaveModelOptions options;
};

TEST(SaveModelTest, WritesTheSeedLayout) {
  TempDir dir;
  SaveInputs in(dir);
  const std::string dst = dir.Join("model");
  Result<ModelSpec> spec = SaveModel(dst, in.options);
  PYFUNC_ASSERT_OK(spec);

  EXPECT_EQ(ReadText(dst + "/data/model.pkl"), "pickled bytes");
  EXPECT_TRUE(fs::exists(dst + "/code/loader.py"));
  EXPECT_TRUE(fs::exists(dst + "/code/pkg/util.py"));
  EXPECT_FALSE(fs::exists(dst + "/code/pkg/__pycache__"));
  EXPECT_EQ(ReadText(dst + "/requirements.txt"), "scikit-learn==1.3.0\npandas");  // no trailing newline, as MLflow
  EXPECT_EQ(ReadText(dst + "/python_env.yaml"),
            "python: 3.10.4\nbuild_dependencies:\n- pip==23.1\n- setuptools\n- wheel\ndependencies:\n"
            "- -r requirements.txt\n");
  Result<Value> conda = ParseYaml(ReadText(dst + "/conda.yaml"), "conda.yaml");
  PYFUNC_ASSERT_OK(conda);
  EXPECT_EQ(conda->Find("name")->as_string(), "test");

  Result<ModelSpec> loaded = ModelSpec::Load(dst);
  PYFUNC_ASSERT_OK(loaded);
  EXPECT_EQ(loaded->ToYaml(), spec->ToYaml());
  Result<PyFuncFlavor> f = loaded->python_function();
  PYFUNC_ASSERT_OK(f);
  EXPECT_EQ(f->loader_module, "loader");
  EXPECT_EQ(f->data, "data/model.pkl");
  EXPECT_EQ(f->code, "code");
  EXPECT_EQ(f->conda_env, "conda.yaml");
  EXPECT_EQ(f->python_env, "python_env.yaml");
  EXPECT_EQ(f->python_version, "3.11.7");

  Result<std::vector<ValidationProblem>> problems = ValidateModel(dst);
  PYFUNC_ASSERT_OK(problems);
  EXPECT_TRUE(problems->empty());
  // Only the model directory is left in the parent: no temporary siblings.
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 2);  // in/ and model/
}

TEST(SaveModelTest, DefaultEnvironmentWithoutCondaFile) {
  TempDir dir;
  SaveModelOptions options;
  options.loader_module = "m";
  options.python_version = "3.11.7";
  options.pip_requirements = {"numpy==2.0.0"};
  PYFUNC_ASSERT_OK(SaveModel(dir.Join("model"), options));
  EXPECT_EQ(
      ReadText(dir.Join("model/conda.yaml")),
      "channels:\n- conda-forge\ndependencies:\n- python=3.11.7\n- pip\n- pip:\n  - numpy==2.0.0\nname: mlflow-env\n");
  EXPECT_EQ(ReadText(dir.Join("model/requirements.txt")), "numpy==2.0.0");
  Result<ModelSpec> spec = ModelSpec::Load(dir.Join("model"));
  PYFUNC_ASSERT_OK(spec);
  EXPECT_FALSE(spec->python_function()->data.has_value());
  EXPECT_FALSE(spec->python_function()->code.has_value());
}

TEST(SaveModelTest, RefusesANonEmptyDestinationAndChangesNothing) {
  TempDir dir;
  SaveInputs in(dir);
  WriteText(dir.Join("model/keep.txt"), "mine");
  Result<ModelSpec> spec = SaveModel(dir.Join("model"), in.options);
  EXPECT_EQ(spec.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(spec.status().message(), HasSubstr("not empty"));
  EXPECT_EQ(ReadText(dir.Join("model/keep.txt")), "mine");
  EXPECT_FALSE(fs::exists(dir.Join("model/MLmodel")));
}

TEST(SaveModelTest, AnEmptyDestinationDirectoryIsUsed) {
  TempDir dir;
  SaveInputs in(dir);
  fs::create_directory(dir.Join("model"));
  PYFUNC_EXPECT_OK(SaveModel(dir.Join("model"), in.options));
  EXPECT_TRUE(fs::exists(dir.Join("model/MLmodel")));
}

TEST(SaveModelTest, BadInputsAreReportedBeforeAnythingIsWritten) {
  TempDir dir;
  SaveInputs in(dir);
  SaveModelOptions missing_data = in.options;
  missing_data.data_path = dir.Join("in/nope.pkl");
  EXPECT_EQ(SaveModel(dir.Join("m1"), missing_data).status().code(), StatusCode::kNotFound);

  SaveModelOptions clash = in.options;
  WriteText(dir.Join("other/loader.py"), "");
  clash.code_paths.push_back(dir.Join("other/loader.py"));
  Result<ModelSpec> r = SaveModel(dir.Join("m2"), clash);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("code/loader.py"));

  SaveModelOptions bad_conda = in.options;
  WriteText(dir.Join("in/bad.yml"), "dependencies: python=3\n");
  bad_conda.conda_env_path = dir.Join("in/bad.yml");
  r = SaveModel(dir.Join("m3"), bad_conda);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("dependencies: expected a list"));

  SaveModelOptions no_loader = in.options;
  no_loader.loader_module = "";
  EXPECT_EQ(SaveModel(dir.Join("m4"), no_loader).status().code(), StatusCode::kInvalidArgument);

  for (const char* name : {"m1", "m2", "m3", "m4"}) EXPECT_FALSE(fs::exists(dir.Join(name))) << name;
}

// Fails the n-th write-like call (0-based), counting CreateDir, CopyFile, WriteFile and Rename.
class FailingFileSystem : public FileSystemWrapper {
 public:
  FailingFileSystem(int fail_at) : FileSystemWrapper(FileSystem::Default()), fail_at_(fail_at) {}
  Status CreateDir(const std::string& p) override { return Step() ? FileSystemWrapper::CreateDir(p) : Injected(p); }
  Status CopyFile(const std::string& f, const std::string& t) override {
    return Step() ? FileSystemWrapper::CopyFile(f, t) : Injected(t);
  }
  Status WriteFile(const std::string& p, std::string_view d) override {
    return Step() ? FileSystemWrapper::WriteFile(p, d) : Injected(p);
  }
  Status Rename(const std::string& f, const std::string& t) override {
    return Step() ? FileSystemWrapper::Rename(f, t) : Injected(t);
  }
  int calls() const { return calls_; }

 private:
  bool Step() { return calls_++ != fail_at_; }
  static Status Injected(const std::string& p) { return Status::IOError(p + ": injected failure (ENOSPC)"); }
  int fail_at_;
  int calls_ = 0;
};

TEST(SaveModelTest, AFailureAtAnyStepLeavesNothingBehind) {
  TempDir dir;
  SaveInputs in(dir);
  // Count the steps of a successful save first.
  FailingFileSystem counter(-1);
  SaveModelOptions options = in.options;
  options.file_system = &counter;
  PYFUNC_ASSERT_OK(SaveModel(dir.Join("probe"), options));
  const int steps = counter.calls();
  ASSERT_GE(steps, 8);

  for (int fail_at = 0; fail_at < steps; ++fail_at) {
    SCOPED_TRACE("failing step " + std::to_string(fail_at));
    FailingFileSystem failing(fail_at);
    options.file_system = &failing;
    Result<ModelSpec> r = SaveModel(dir.Join("model"), options);
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.status().message(), HasSubstr("injected failure"));
    EXPECT_FALSE(fs::exists(dir.Join("model")));
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    EXPECT_THAT(names, ElementsAre("in", "probe")) << "no temporary directory is left";
  }
}

TEST(AddToModelTest, AddsOnlyWhatIsGiven) {
  ModelSpec spec = ModelSpec::New();
  PYFUNC_ASSERT_OK(AddToModel(spec, "my.loader", "data/x.pkl", "", Value("conda.yaml")));
  const Value* f = spec.flavor(kPyFuncFlavor);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->Find("loader_module")->as_string(), "my.loader");
  EXPECT_EQ(f->Find("data")->as_string(), "data/x.pkl");
  EXPECT_EQ(f->Find("code"), nullptr);
  EXPECT_EQ(f->Find("env")->as_string(), "conda.yaml");
  EXPECT_EQ(f->Find("python_version"), nullptr);

  EXPECT_EQ(AddToModel(spec, "").code(), StatusCode::kInvalidArgument);
  Status escape = AddToModel(spec, "m", "../outside");
  EXPECT_EQ(escape.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(escape.message(), HasSubstr("leaves the model directory"));
}

TEST(ValidateModelTest, ReportsEveryProblem) {
  TempDir dir;
  WriteText(dir.Join("m/MLmodel"),
            "flavors:\n  python_function:\n    loader_module: x\n    data: data/model.pkl\n    code: code\n"
            "    env:\n      conda: conda.yaml\n      virtualenv: python_env.yaml\n");
  WriteText(dir.Join("m/code"), "a file, not a directory");
  WriteText(dir.Join("m/conda.yaml"), "name: x\n");
  Result<std::vector<ValidationProblem>> problems = ValidateModel(dir.Join("m"));
  PYFUNC_ASSERT_OK(problems);
  std::vector<std::string> wheres;
  for (const auto& p : *problems) wheres.push_back(p.where + ": " + p.message);
  EXPECT_THAT(
      wheres,
      ElementsAre("flavors.python_function.code: 'code' is not a directory",
                  "flavors.python_function.data: 'data/model.pkl' does not exist in the model directory",
                  "flavors.python_function.env.virtualenv: 'python_env.yaml' does not exist in the model directory"));
}

TEST(ValidateModelTest, SymlinkOutOfTheModelIsAProblem) {
  TempDir dir;
  WriteText(dir.Join("secret.pkl"), "x");
  WriteText(dir.Join("m/MLmodel"), "flavors:\n  python_function:\n    loader_module: x\n    data: data/model.pkl\n");
  fs::create_directories(dir.Join("m/data"));
  fs::create_symlink(dir.Join("secret.pkl"), dir.Join("m/data/model.pkl"));
  Result<std::vector<ValidationProblem>> problems = ValidateModel(dir.Join("m"));
  PYFUNC_ASSERT_OK(problems);
  ASSERT_EQ(problems->size(), 1u);
  EXPECT_THAT((*problems)[0].message, HasSubstr("resolves outside the model directory"));
}

TEST(ValidateModelTest, BadMLmodelAndMissingModel) {
  TempDir dir;
  WriteText(dir.Join("m/MLmodel"), "flavors:\n  sklearn: {}\n");
  Result<std::vector<ValidationProblem>> problems = ValidateModel(dir.Join("m"));
  PYFUNC_ASSERT_OK(problems);
  ASSERT_EQ(problems->size(), 1u);
  EXPECT_THAT((*problems)[0].message, HasSubstr("no python_function flavor (flavors: sklearn)"));
  EXPECT_EQ(ValidateModel(dir.Join("nope")).status().code(), StatusCode::kNotFound);
}

TEST(ModuleLoaderSourceTest, HardCodesTheLoading) {
  TempDir dir;
  SaveInputs in(dir);
  PYFUNC_ASSERT_OK(SaveModel(dir.Join("model"), in.options));
  Result<std::string> src = ModuleLoaderSource(dir.Join("model"), "deploy/it's");
  PYFUNC_ASSERT_OK(src);
  EXPECT_THAT(*src, HasSubstr("def load_pyfunc():\n    sys.path = [os.path.abspath('deploy/it\\'s/code')] + sys.path; "
                              "return _loader('loader')('deploy/it\\'s/data/model.pkl')\n"));
  EXPECT_EQ(src->rfind("\n\nimport importlib\n", 0), 0u);
}

TEST(ValidateModelTest, EveryEscapingSymlinkIsAProblem) {
  // Only the paths the flavor names were checked; a link elsewhere in the model was not.
  TempDir dir;
  WriteText(dir.Join("outside/secret.txt"), "x");
  WriteText(dir.Join("m/MLmodel"), "flavors:\n  python_function:\n    loader_module: x\n");
  WriteText(dir.Join("m/inside.txt"), "y");
  fs::create_directories(dir.Join("m/artifacts"));
  fs::create_symlink(dir.Join("outside"), dir.Join("m/artifacts/dir_link"));
  fs::create_symlink(dir.Join("m/inside.txt"), dir.Join("m/artifacts/ok_link"));
  fs::create_symlink("../inside.txt", dir.Join("m/artifacts/ok_relative"));
  fs::create_symlink("../../outside/missing", dir.Join("m/artifacts/dangling"));
  Result<std::vector<ValidationProblem>> problems = ValidateModel(dir.Join("m"));
  PYFUNC_ASSERT_OK(problems);
  std::vector<std::string> wheres;
  for (const auto& p : *problems) wheres.push_back(p.where);
  std::sort(wheres.begin(), wheres.end());
  EXPECT_THAT(wheres, ElementsAre("artifacts/dangling", "artifacts/dir_link"));
}

TEST(CheckSymlinksInsideModelTest, RefusesALinkOutOfTheModel) {
  // `validate` refused a data file linked out of the model, but serve and predict
  // followed the link; Model::Load now calls this check.
  TempDir dir;
  WriteText(dir.Join("secret.pkl"), "x");
  WriteText(dir.Join("m/MLmodel"), "flavors:\n  python_function:\n    loader_module: x\n    data: data/model.pkl\n");
  fs::create_directories(dir.Join("m/data"));
  PYFUNC_EXPECT_OK(CheckSymlinksInsideModel(dir.Join("m")));
  fs::create_symlink(dir.Join("secret.pkl"), dir.Join("m/data/model.pkl"));
  Status st = CheckSymlinksInsideModel(dir.Join("m"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("/m/data/model.pkl: symbolic link resolves outside the model directory, to "));
  EXPECT_THAT(st.message(), HasSubstr("secret.pkl"));
  // The MLmodel file's path names the same directory.
  EXPECT_FALSE(CheckSymlinksInsideModel(dir.Join("m/MLmodel")).ok());
}

TEST(CheckSymlinksInsideModelTest, TheModelDirectoryItselfMayBeALink) {
  TempDir dir;
  WriteText(dir.Join("real/MLmodel"), "flavors:\n  python_function:\n    loader_module: x\n");
  WriteText(dir.Join("real/data/a.txt"), "a");
  fs::create_symlink("a.txt", dir.Join("real/data/b.txt"));
  fs::create_symlink(dir.Join("real"), dir.Join("link"));
  PYFUNC_EXPECT_OK(CheckSymlinksInsideModel(dir.Join("link")));
  PYFUNC_EXPECT_OK(CheckSymlinksInsideModel(dir.Join("link/MLmodel")));
}

}  // namespace
}  // namespace pyfunc
