// The batch scorer end to end: files in and out, real worker processes (the interpreter
// named by PYFUNC_PYTHON).
#include "pyfunc/batch_scorer.h"

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "pyfunc/model_dir.h"
#include "test_util.h"

namespace pyfunc {
namespace {

using ::pyfunc::testing::TempDir;
using ::testing::HasSubstr;

class BatchScorerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    Result<ModelSpec> spec = ::pyfunc::testing::SaveBehaveModel(dir_->Join("model"));
    ASSERT_TRUE(spec.ok()) << spec.status().ToString();
    std::ofstream csv(dir_->Join("in.csv"));
    csv << "a,b\n";
    for (int i = 0; i < 10; ++i) csv << i << "," << i * 0.5 << "\n";
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::string Read(const std::string& path) { return ::pyfunc::testing::ReadFile(path); }
  static void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }
  // Entries of the scratch directory (a failed run must leave no temporary behind).
  static int Entries() {
    int n = 0;
    DIR* d = ::opendir(dir_->path().c_str());
    while (dirent* e = ::readdir(d)) n += std::string(e->d_name) != "." && std::string(e->d_name) != "..";
    ::closedir(d);
    return n;
  }

  static TempDir* dir_;
};
TempDir* BatchScorerTest::dir_ = nullptr;

TEST_F(BatchScorerTest, BatchesOnWorkersGiveTheOneCallOutputInInputOrder) {
  LoadOptions load;
  load.workers = 2;
  ScoreFileOptions whole;
  whole.input = dir_->Join("in.csv");
  whole.output = dir_->Join("whole.json");
  Result<ScoreFileSummary> one = ScoreFile(dir_->Join("model"), load, whole);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  // The behave model's loader is not one known to predict rows on their own.
  EXPECT_FALSE(one->batching.merge);
  EXPECT_EQ(one->batches, 1);
  EXPECT_EQ(one->rows, 10);

  ScoreFileOptions split = whole;
  split.output = dir_->Join("split.json");
  split.batch_rows = 3;
  split.batching = BatchingMode::kRows;
  int64_t last_rows = -1;
  split.progress = [&](int64_t rows, int64_t, int64_t) { last_rows = rows; };
  Result<ScoreFileSummary> many = ScoreFile(dir_->Join("model"), load, split);
  ASSERT_TRUE(many.ok()) << many.status().ToString();
  EXPECT_TRUE(many->batching.merge);
  EXPECT_EQ(many->batches, 4);
  EXPECT_EQ(many->rows, 10);
  EXPECT_EQ(last_rows, 10);
  const std::string text = Read(dir_->Join("whole.json"));
  EXPECT_EQ(Read(dir_->Join("split.json")), text);
  EXPECT_THAT(text, HasSubstr(R"({"predictions": [{"a": 0, "b": 0.0}, {"a": 1, "b": 0.5})"));
  EXPECT_THAT(text, HasSubstr(R"({"a": 9, "b": 4.5}]})"));

  split.output = dir_->Join("split.csv");
  split.output_format = "csv";
  ASSERT_TRUE(ScoreFile(dir_->Join("model"), load, split).ok());
  std::string csv = Read(dir_->Join("split.csv"));
  EXPECT_EQ(csv.substr(0, 12), "a,b\n0,0.0\n1,");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 11);  // one header for all batches
}

TEST_F(BatchScorerTest, AFailedBatchNamesItsRowsAndLeavesNoOutput) {
  Write(dir_->Join("raise.json"),
        R"({"dataframe_split": {"columns": ["a"], "data": [[1], [2], [3]]}, "params": {"mode": "raise"}})");
  const int before = Entries();
  ScoreFileOptions options;
  options.input = dir_->Join("raise.json");
  options.output = dir_->Join("never.json");
  Result<ScoreFileSummary> r = ScoreFile(dir_->Join("model"), {}, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kModelError);
  EXPECT_THAT(r.status().message(), HasSubstr("rows 0-2"));
  EXPECT_THAT(r.status().message(), HasSubstr("the model refuses: 3 rows"));
  EXPECT_EQ(Entries(), before);  // neither never.json nor its temporary
}

TEST_F(BatchScorerTest, BadInputsAndOptionsAreNamed) {
  ScoreFileOptions options;
  options.input = dir_->Join("missing.csv");
  Result<ScoreFileSummary> r = ScoreFile(dir_->Join("model"), {}, options);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("missing.csv"));

  options.input = dir_->Join("in.csv");
  options.output_format = "xml";
  EXPECT_THAT(ScoreFile(dir_->Join("model"), {}, options).status().message(), HasSubstr("'xml'"));
  options.output_format = "json";
  options.batch_rows = 0;
  EXPECT_EQ(ScoreFile(dir_->Join("model"), {}, options).status().code(), StatusCode::kInvalidArgument);

  Write(dir_->Join("bad.json"), R"({"dataframe_split": {"columns": ["a"], "data": [[1], [}})");
  options.batch_rows = 10;
  options.input = dir_->Join("bad.json");
  r = ScoreFile(dir_->Join("model"), {}, options);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("bad.json"));

  options.input = dir_->Join("in.csv");
  options.output = dir_->Join("no_such_dir/out.json");
  r = ScoreFile(dir_->Join("model"), {}, options);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);  // its directory does not exist
  EXPECT_THAT(r.status().message(), HasSubstr("no_such_dir/out.json: cannot write"));
}

}  // namespace
}  // namespace pyfunc
